package statetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lempgw/lempgw/state"
)

// The leases' tests (Store.AcquireLease, RenewLease, ReleaseLease,
// GetLease). They share one store; each part uses names of its own.
func testLeases(t *testing.T, s state.Store) {
	t.Run("Grant", func(t *testing.T) { testLeaseGrant(t, s) })
	t.Run("Expiry", func(t *testing.T) { testLeaseExpiry(t, s) })
	t.Run("Release", func(t *testing.T) { testLeaseRelease(t, s) })
	t.Run("Concurrent", func(t *testing.T) { testLeaseConcurrent(t, s) })
	t.Run("Validation", func(t *testing.T) { testLeaseValidation(t, s) })
}

func acquire(t *testing.T, s state.Store, name, holder string, ttl time.Duration) (state.Lease, bool) {
	t.Helper()
	l, ok, err := s.AcquireLease(t.Context(), name, holder, ttl)
	if err != nil {
		t.Fatalf("AcquireLease(%q, %q): %v", name, holder, err)
	}
	return l, ok
}

func renew(t *testing.T, s state.Store, l state.Lease, ttl time.Duration) bool {
	t.Helper()
	ok, err := s.RenewLease(t.Context(), l, ttl)
	if err != nil {
		t.Fatalf("RenewLease(%+v): %v", l, err)
	}
	return ok
}

func testLeaseGrant(t *testing.T, s state.Store) {
	ctx := t.Context()
	if _, err := s.GetLease(ctx, "grant"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("GetLease of a free lease: %v, want ErrNotFound", err)
	}
	a, ok := acquire(t, s, "grant", "node-a", time.Minute)
	if !ok || a.Name != "grant" || a.Holder != "node-a" || a.Token == 0 || a.TTL <= 0 || a.TTL > time.Minute {
		t.Fatalf("first AcquireLease: %+v, %v", a, ok)
	}
	// Held: another holder, and the holder itself, get the current grant.
	for _, who := range []string{"node-b", "node-a"} {
		cur, ok := acquire(t, s, "grant", who, time.Minute)
		if ok || cur.Holder != "node-a" || cur.Token != a.Token {
			t.Fatalf("AcquireLease by %s of a held lease: %+v, %v; want node-a's grant, false", who, cur, ok)
		}
	}
	got, err := s.GetLease(ctx, "grant")
	if err != nil || got.Holder != "node-a" || got.Token != a.Token || got.TTL <= 0 {
		t.Fatalf("GetLease: %+v, %v", got, err)
	}
	// Renew: only with the grant's holder and token.
	if !renew(t, s, a, time.Minute) {
		t.Fatal("the holder's RenewLease failed")
	}
	for _, bad := range []state.Lease{
		{Name: "grant", Holder: "node-b", Token: a.Token},
		{Name: "grant", Holder: "node-a", Token: a.Token + 1},
		{Name: "other", Holder: "node-a", Token: a.Token},
	} {
		if renew(t, s, bad, time.Minute) {
			t.Fatalf("RenewLease(%+v) of someone else's grant succeeded", bad)
		}
	}
	// Other names are independent.
	if o, ok := acquire(t, s, "grant-2", "node-b", time.Minute); !ok || o.Holder != "node-b" {
		t.Fatalf("AcquireLease of another name: %+v, %v", o, ok)
	}
	// Holders with odd bytes round-trip.
	odd := "n:1 {x}\u00e9"
	if o, ok := acquire(t, s, "grant:odd{}", odd, time.Minute); !ok || o.Holder != odd {
		t.Fatalf("AcquireLease with holder %q: %+v, %v", odd, o, ok)
	}
	if g, err := s.GetLease(ctx, "grant:odd{}"); err != nil || g.Holder != odd {
		t.Fatalf("GetLease with holder %q: %+v, %v", odd, g, err)
	}
}

func testLeaseExpiry(t *testing.T, s state.Store) {
	const ttl = 200 * time.Millisecond
	a, ok := acquire(t, s, "expiry", "node-a", ttl)
	if !ok {
		t.Fatal("AcquireLease failed")
	}
	// Renewing keeps it past its first TTL.
	for range 3 {
		time.Sleep(ttl / 2)
		if !renew(t, s, a, ttl) {
			t.Fatal("RenewLease within the TTL failed")
		}
	}
	if _, ok := acquire(t, s, "expiry", "node-b", ttl); ok {
		t.Fatal("a renewed lease was granted to another holder")
	}
	time.Sleep(2 * ttl)
	if _, err := s.GetLease(t.Context(), "expiry"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("GetLease of an expired lease: %v, want ErrNotFound", err)
	}
	if renew(t, s, a, ttl) {
		t.Fatal("RenewLease of an expired lease succeeded")
	}
	b, ok := acquire(t, s, "expiry", "node-b", time.Minute)
	if !ok || b.Holder != "node-b" || b.Token <= a.Token {
		t.Fatalf("AcquireLease after the expiry: %+v, %v; want node-b with a token above %d", b, ok, a.Token)
	}
	// The old holder can neither renew nor release the new grant.
	if renew(t, s, a, time.Minute) {
		t.Fatal("the old holder renewed the new grant")
	}
	if err := s.ReleaseLease(t.Context(), a); err != nil {
		t.Fatalf("ReleaseLease of an old grant: %v", err)
	}
	if g, err := s.GetLease(t.Context(), "expiry"); err != nil || g.Token != b.Token {
		t.Fatalf("after the old holder's release: %+v, %v; want the new grant", g, err)
	}
	// Even the same holder gets a new token on a new grant.
	if err := s.ReleaseLease(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	c, ok := acquire(t, s, "expiry", "node-b", time.Minute)
	if !ok || c.Token <= b.Token {
		t.Fatalf("AcquireLease after a release: %+v, %v; want a token above %d", c, ok, b.Token)
	}
}

func testLeaseRelease(t *testing.T, s state.Store) {
	ctx := t.Context()
	a, _ := acquire(t, s, "release", "node-a", time.Minute)
	if err := s.ReleaseLease(ctx, state.Lease{Name: "release", Holder: "node-b", Token: a.Token}); err != nil {
		t.Fatal(err)
	}
	if _, ok := acquire(t, s, "release", "node-b", time.Minute); ok {
		t.Fatal("a release by another holder freed the lease")
	}
	if err := s.ReleaseLease(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetLease(ctx, "release"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("GetLease after the release: %v, want ErrNotFound", err)
	}
	if err := s.ReleaseLease(ctx, a); err != nil {
		t.Fatalf("a second release: %v", err)
	}
	if b, ok := acquire(t, s, "release", "node-b", time.Minute); !ok || b.Token <= a.Token {
		t.Fatalf("AcquireLease after the release: %+v, %v", b, ok)
	}
}

func testLeaseConcurrent(t *testing.T, s state.Store) {
	const n = 16
	for round := range 5 {
		name := fmt.Sprintf("race-%d", round)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var winners []string
		var tokens = map[uint64]bool{}
		for i := range n {
			wg.Go(func() {
				holder := fmt.Sprintf("node-%d", i)
				l, ok, err := s.AcquireLease(t.Context(), name, holder, time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				tokens[l.Token] = true
				if ok {
					winners = append(winners, holder)
				}
			})
		}
		wg.Wait()
		if len(winners) != 1 || len(tokens) != 1 {
			t.Fatalf("round %d: %d concurrent AcquireLease: winners %v, tokens seen %v; want one", round, n, winners, tokens)
		}
	}
}

func testLeaseValidation(t *testing.T, s state.Store) {
	ctx := t.Context()
	long := make([]byte, 300)
	for i := range long {
		long[i] = 'x'
	}
	for _, c := range []struct {
		name, holder string
		ttl          time.Duration
	}{
		{"", "a", time.Second},
		{"v", "", time.Second},
		{"v", "a", 0},
		{"v", "a", -time.Second},
		{"v", "a", time.Microsecond},
		{"v", string(long), time.Second},
	} {
		if _, _, err := s.AcquireLease(ctx, c.name, c.holder, c.ttl); err == nil {
			t.Errorf("AcquireLease(%q, %.10q, %v) accepted", c.name, c.holder, c.ttl)
		}
	}
	for _, l := range []state.Lease{{}, {Name: "v", Holder: "a"}, {Name: "v", Token: 1}, {Holder: "a", Token: 1}} {
		if _, err := s.RenewLease(ctx, l, time.Second); err == nil {
			t.Errorf("RenewLease(%+v) accepted", l)
		}
		if err := s.ReleaseLease(ctx, l); err == nil {
			t.Errorf("ReleaseLease(%+v) accepted", l)
		}
	}
	if _, err := s.RenewLease(ctx, state.Lease{Name: "v", Holder: "a", Token: 1}, 0); err == nil {
		t.Error("RenewLease with ttl 0 accepted")
	}
	if _, err := s.GetLease(ctx, ""); err == nil || errors.Is(err, state.ErrNotFound) {
		t.Errorf("GetLease(\"\"): %v, want a validation error", err)
	}
	if _, err := s.GetLease(ctx, "v"); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("nothing was granted by the refused calls: GetLease: %v", err)
	}
}

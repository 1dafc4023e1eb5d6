package state

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"
	"weak"
)

// The memory store's leases, kept beside the store (keyed by a weak
// pointer to it, like its wake-ups) and dropped with it.
var memLeaseTables struct {
	mu sync.Mutex
	m  map[weak.Pointer[Memory]]*memLeases
}

type memLeases struct {
	mu     sync.Mutex
	grants map[string]memGrant // name -> current grant (maybe expired)
	tokens map[string]uint64   // name -> last token; never deleted, so never reused
}

type memGrant struct {
	holder string
	token  uint64
	exp    time.Time
}

func (m *Memory) leases() *memLeases {
	key := weak.Make(m)
	memLeaseTables.mu.Lock()
	defer memLeaseTables.mu.Unlock()
	if memLeaseTables.m == nil {
		memLeaseTables.m = map[weak.Pointer[Memory]]*memLeases{}
	}
	t := memLeaseTables.m[key]
	if t == nil {
		t = &memLeases{grants: map[string]memGrant{}, tokens: map[string]uint64{}}
		memLeaseTables.m[key] = t
		runtime.AddCleanup(m, func(k weak.Pointer[Memory]) {
			memLeaseTables.mu.Lock()
			delete(memLeaseTables.m, k)
			memLeaseTables.mu.Unlock()
		}, key)
	}
	return t
}

// liveLocked returns name's grant if it has not expired; the caller holds t.mu.
func (t *memLeases) liveLocked(name string, now time.Time) (memGrant, bool) {
	g, ok := t.grants[name]
	if !ok {
		return memGrant{}, false
	}
	if !now.Before(g.exp) {
		delete(t.grants, name)
		return memGrant{}, false
	}
	return g, true
}

func (m *Memory) AcquireLease(_ context.Context, name, holder string, ttl time.Duration) (Lease, bool, error) {
	if err := checkLeaseArgs(name, holder, ttl); err != nil {
		return Lease{}, false, err
	}
	t := m.leases()
	t.mu.Lock()
	defer t.mu.Unlock()
	now := m.now()
	if g, ok := t.liveLocked(name, now); ok {
		return Lease{Name: name, Holder: g.holder, Token: g.token, TTL: g.exp.Sub(now)}, false, nil
	}
	t.tokens[name]++
	g := memGrant{holder: holder, token: t.tokens[name], exp: expiryAt(now, ttl)}
	t.grants[name] = g
	return Lease{Name: name, Holder: holder, Token: g.token, TTL: g.exp.Sub(now)}, true, nil
}

func (m *Memory) RenewLease(_ context.Context, l Lease, ttl time.Duration) (bool, error) {
	if err := checkLease(l); err != nil {
		return false, err
	}
	if err := checkLeaseArgs(l.Name, l.Holder, ttl); err != nil {
		return false, err
	}
	t := m.leases()
	t.mu.Lock()
	defer t.mu.Unlock()
	now := m.now()
	g, ok := t.liveLocked(l.Name, now)
	if !ok || g.token != l.Token || g.holder != l.Holder {
		return false, nil
	}
	g.exp = expiryAt(now, ttl)
	t.grants[l.Name] = g
	return true, nil
}

func (m *Memory) ReleaseLease(_ context.Context, l Lease) error {
	if err := checkLease(l); err != nil {
		return err
	}
	t := m.leases()
	t.mu.Lock()
	defer t.mu.Unlock()
	if g, ok := t.liveLocked(l.Name, m.now()); ok && g.token == l.Token && g.holder == l.Holder {
		delete(t.grants, l.Name)
	}
	return nil
}

func (m *Memory) GetLease(_ context.Context, name string) (Lease, error) {
	if name == "" {
		return Lease{}, checkLeaseArgs(name, "-", time.Millisecond)
	}
	t := m.leases()
	t.mu.Lock()
	defer t.mu.Unlock()
	now := m.now()
	g, ok := t.liveLocked(name, now)
	if !ok {
		return Lease{}, fmt.Errorf("lease %q: %w", name, ErrNotFound)
	}
	return Lease{Name: name, Holder: g.holder, Token: g.token, TTL: g.exp.Sub(now)}, nil
}

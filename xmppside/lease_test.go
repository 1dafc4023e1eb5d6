package xmppside_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lempgw/lempgw/bridge"
	"github.com/lempgw/lempgw/internal/lemptest"
	"github.com/lempgw/lempgw/internal/testenv"
	"github.com/lempgw/lempgw/state"
	"github.com/lempgw/lempgw/xmppside"
)

// cutStore is a real store whose lease calls fail while cut is set: the
// node using it has lost the store (a partition), the others have not.
type cutStore struct {
	state.Store
	cut atomic.Bool
}

var errCut = errors.New("store unreachable (cut by the test)")

func (s *cutStore) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (state.Lease, bool, error) {
	if s.cut.Load() {
		return state.Lease{}, false, errCut
	}
	return s.Store.AcquireLease(ctx, name, holder, ttl)
}

func (s *cutStore) RenewLease(ctx context.Context, l state.Lease, ttl time.Duration) (bool, error) {
	if s.cut.Load() {
		return false, errCut
	}
	return s.Store.RenewLease(ctx, l, ttl)
}

// leaseNode is one gateway node with a component under a link lease.
type leaseNode struct {
	gw   *lemptest.Gateway
	comp *xmppside.Component
	reg  *prometheus.Registry
	stop func()
}

func startLeaseNode(t *testing.T, srv *testenv.XMPPServer, st state.Store, ls xmppside.LeaseStore, id string, ttl time.Duration) *leaseNode {
	t.Helper()
	n := &leaseNode{reg: prometheus.NewRegistry()}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	n.gw = lemptest.Start(t, st, lemptest.Options{Remote: func(core *bridge.Core) {
		comp, err := xmppside.New(xmppside.Config{
			Link: xmppside.LinkConfig{
				Address: srv.ComponentAddr, Domain: srv.ComponentDomain, Secret: srv.ComponentSecret,
				ServerDomain: srv.Domain, PingInterval: 2 * time.Second, PingTimeout: 3 * time.Second,
				MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
			},
			Core:     core,
			Registry: n.reg,
			Log:      slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: testLogLevel()})).With("node", id),
			Lease:    xmppside.LeaseConfig{Store: ls, Holder: id, TTL: ttl},
		})
		if err != nil {
			t.Fatal(err)
		}
		core.SetRemote(comp)
		n.comp = comp
		wg.Go(func() { comp.Run(ctx) })
	}})
	var once sync.Once
	n.stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(n.stop)
	return n
}

// gauge reads a gauge without labels from n's registry.
func (n *leaseNode) gauge(name string) float64 {
	mfs, _ := n.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

func (n *leaseNode) linkUp() bool { return n.gauge("lempgw_component_up") == 1 }

// until polls cond every 5ms for up to d and returns how long it took.
func until(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// TestLeaseLossStopsLink: a holder that can no longer renew its lease
// drops its link and stops sending before the lease can be granted again;
// the other node then takes the link and drains the queue the first node's
// users write to. A holder that stops gracefully releases the lease, and
// the other takes it well within the TTL.
func TestLeaseLossStopsLink(t *testing.T) {
	srv := testenv.StartProsody(t)
	srv.Register(t, "bob", "bob-pw")
	const ttl = 600 * time.Millisecond
	st := state.NewMemory()
	cutA := &cutStore{Store: st}
	a := startLeaseNode(t, srv, st, cutA, "node-a", ttl)
	until(t, 10*time.Second, "node-a holds the link", func() bool { return a.comp.Holding() && a.linkUp() })
	b := startLeaseNode(t, srv, st, st, "node-b", ttl)
	time.Sleep(ttl) // b tries a few times
	if b.comp.Holding() || b.linkUp() || !b.comp.Up() {
		t.Fatalf("standby: holding %v, link up %v, ready %v; want false, false, true", b.comp.Holding(), b.linkUp(), b.comp.Up())
	}
	if got := a.gauge("lempgw_component_lease_held") + b.gauge("lempgw_component_lease_held"); got != 1 {
		t.Fatalf("lempgw_component_lease_held summed over the nodes: %v, want 1", got)
	}
	a.gw.User(t, "alice", false)
	alice := a.gw.Login(t, "alice")
	bob := newJabber(t, srv, "bob")
	bobJID := "bob@" + srv.Domain
	alice.Send(`{"m":{"id":"m1","r":"` + bobJID + `","t":"t","c":"before"}}`)
	alice.Expect(`{"m":{"id":"m1","r":"alice","sr":{"id":"m1"}}}`)
	if m := bob.next(); body(m) != "before" {
		t.Fatalf("bob got %+v", m)
	}

	// a loses the store: it stops by its own clock, before the lease expires.
	cutA.cut.Store(true)

	var aDropped, bTook time.Duration
	var wg sync.WaitGroup
	wg.Go(func() {
		aDropped = until(t, 2*ttl, "node-a stops holding", func() bool { return !a.comp.Holding() && !a.linkUp() })
	})
	bTook = until(t, 3*ttl, "node-b takes the link", func() bool { return b.comp.Holding() })
	wg.Wait()
	until(t, 5*time.Second, "node-b's link up", b.linkUp)
	t.Logf("store cut from the holder: it stopped after %v, the other node took the lease after %v (TTL %v)", aDropped.Round(time.Millisecond), bTook.Round(time.Millisecond), ttl)
	if aDropped >= bTook {
		t.Fatalf("node-a stopped after %v, node-b took the lease after %v: both held it", aDropped, bTook)
	}
	if aDropped > ttl {
		t.Fatalf("node-a stopped %v after its last chance to renew; the TTL is %v", aDropped, ttl)
	}

	// alice is still on node a: her message is queued there and sent by b.
	alice.Send(`{"m":{"id":"m2","r":"` + bobJID + `","t":"t","c":"after"}}`)
	alice.Expect(`{"m":{"id":"m2","r":"alice","sr":{"id":"m2"}}}`)
	if m := bob.next(); body(m) != "after" {
		t.Fatalf("bob got %+v", m)
	}

	// a has the store again and waits as a standby; b stops gracefully and
	// releases: a takes over at its next try, not after a TTL.
	cutA.cut.Store(false)
	time.Sleep(ttl / 2)
	if a.comp.Holding() {
		t.Fatal("node-a took the lease while node-b held it")
	}
	b.stop()
	took := until(t, ttl, "node-a takes the released lease", func() bool { return a.comp.Holding() })
	until(t, 5*time.Second, "node-a's link up", a.linkUp)
	t.Logf("graceful stop of the holder: the standby took the lease after %v", took.Round(time.Millisecond))
	alice.Send(`{"m":{"id":"m3","r":"` + bobJID + `","t":"t","c":"again"}}`)
	alice.Expect(`{"m":{"id":"m3","r":"alice","sr":{"id":"m3"}}}`)
	if m := bob.next(); body(m) != "again" {
		t.Fatalf("bob got %+v", m)
	}
}

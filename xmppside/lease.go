package xmppside

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lempgw/lempgw/bridge"
	"github.com/lempgw/lempgw/state"
)

// The component link across several gateway nodes (docs/operations.md,
// "The component link across nodes"). The outbound queues (OutboundQueue,
// RoomQueue) are in the shared store, so any node could drain them, but
// two nodes draining one queue would send its items twice, and Prosody
// takes one connection per component domain. So one node at a time holds a
// lease in the store and drains both queues; in LinkLease mode it also
// holds both links, in LinkEveryNode mode (ejabberd's domain_balancing)
// every node keeps its own main link for inbound stanzas.

// Link modes (xmpp.link).
const (
	// LinkLease: the lease holder runs both component links and drains
	// both queues; the other nodes are standbys without a link.
	LinkLease = "lease"
	// LinkEveryNode: every node keeps its main link (the XMPP server
	// balances inbound stanzas over them); the lease holder alone drains
	// the queues and runs the MUC link. Experimental: ejabberd balances the
	// answers to a node's pings over every node's link too, and an answer
	// that reaches another node is lost (docs/operations.md).
	LinkEveryNode = "every-node"
)

// LeaseStore is what the lease needs of the state store: the lease itself,
// and the wake-ups that tell the holder there is something to send.
type LeaseStore interface {
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (state.Lease, bool, error)
	RenewLease(ctx context.Context, l state.Lease, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, l state.Lease) error
	Wake(ctx context.Context, node string, ws ...state.Wake) error
	Wakes(ctx context.Context, node string) (<-chan state.Wake, func(), error)
}

// LeaseConfig configures the lease. With a nil Store there is none: the
// component always runs its links and drains the queues (one node).
type LeaseConfig struct {
	Store LeaseStore
	Mode  string // LinkLease (default) or LinkEveryNode
	// Holder is this node's id (node.id): the lease's holder, and the node
	// the other nodes' wake-ups are sent to.
	Holder string
	// Name of the lease; default "xmpp-link:" + the component domain.
	Name string
	// TTL: a holder that stops renewing (crash, lost store) loses the lease
	// this long after its last renewal; it renews every TTL/3. Default 15s.
	TTL time.Duration
	// Poll: the holder reads the queues again this often even when nobody
	// woke it (a wake-up is only a hint). Default 2s.
	Poll time.Duration
}

// DefaultLeaseTTL is LeaseConfig.TTL's default.
const DefaultLeaseTTL = 15 * time.Second

func (lc *LeaseConfig) defaults(domain string) error {
	if lc.Store == nil {
		return nil
	}
	switch lc.Mode {
	case "":
		lc.Mode = LinkLease
	case LinkLease, LinkEveryNode:
	default:
		return fmt.Errorf("xmpp.link %q: want %q or %q", lc.Mode, LinkLease, LinkEveryNode)
	}
	if lc.Holder == "" {
		return errors.New("xmppside: the lease needs a holder (node.id)")
	}
	if lc.Name == "" {
		lc.Name = "xmpp-link:" + domain
	}
	if lc.TTL <= 0 {
		lc.TTL = DefaultLeaseTTL
	}
	if lc.TTL < 30*time.Millisecond {
		return fmt.Errorf("xmpp.lease_ttl %v: want at least 30ms", lc.TTL)
	}
	if lc.Poll <= 0 {
		lc.Poll = 2 * time.Second
	}
	return nil
}

// leaseState is this node's view of the lease.
type leaseState struct {
	cfg  LeaseConfig
	held prometheus.Gauge

	// until is the local deadline of the grant this node holds, in ns
	// since epoch on the monotonic clock, 0 when it holds none. It is the
	// start of the last successful renewal plus 90% of the TTL, so it
	// passes before the store lets another node take the lease; the holder
	// stops its senders and links when it passes.
	until atomic.Int64
	epoch time.Time

	mu     sync.Mutex
	holder string // the holder as last seen ("" = unknown or nobody)

	forward chan struct{} // relay -> forwarder
	pending atomic.Uint32 // queues to wake the holder for: pendingOut, pendingRoom
}

func newLeaseState(cfg LeaseConfig, reg prometheus.Registerer) (*leaseState, error) {
	ls := &leaseState{cfg: cfg, forward: make(chan struct{}, 1), epoch: time.Now(),
		held: prometheus.NewGauge(prometheus.GaugeOpts{Name: "lempgw_component_lease_held",
			Help: "1 while this node holds the component link lease (xmpp.link): it drains the outbound queues."})}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if err := reg.Register(ls.held); err != nil {
		return nil, err
	}
	return ls, nil
}

// holding reports whether this node holds the lease now, by its own clock.
func (ls *leaseState) holding() bool {
	u := ls.until.Load()
	return u != 0 && int64(time.Since(ls.epoch)) < u
}

// setUntil records the local deadline of the grant; the zero time: none.
func (ls *leaseState) setUntil(t time.Time) {
	if t.IsZero() {
		ls.until.Store(0)
		return
	}
	ls.until.Store(max(int64(t.Sub(ls.epoch)), 1))
}

// deadline is the local deadline of the grant held (the zero time: none).
func (ls *leaseState) deadline() time.Time {
	u := ls.until.Load()
	if u == 0 {
		return time.Time{}
	}
	return ls.epoch.Add(time.Duration(u))
}

// Holding reports whether this node holds the component link lease (true
// when there is no lease: a single node always does).
func (c *Component) Holding() bool { return c.lease == nil || c.lease.holding() }

// leaseLoop tries to take the lease every TTL/10 (at most every second),
// and while it holds it runs the holder's part (active) and renews the
// lease every TTL/3.
func (c *Component) leaseLoop(ctx context.Context) {
	ls := c.lease
	retry := min(max(ls.cfg.TTL/10, 20*time.Millisecond), time.Second)
	if ls.cfg.Mode == LinkEveryNode {
		// docs/operations.md, "The component link across nodes".
		c.log.Warn(`xmpp.link "every-node" is experimental: the server may hand the answers to this node's pings to another node's link, which drops the link (keepalive) or sends stanzas twice (barrier)`)
	}
	failing := false
	standby := c.startRelay(ctx)
	defer func() { standby() }()
	for ctx.Err() == nil {
		start := time.Now()
		actx, cancel := context.WithTimeout(ctx, ls.cfg.TTL/3)
		l, ok, err := ls.cfg.Store.AcquireLease(actx, ls.cfg.Name, ls.cfg.Holder, ls.cfg.TTL)
		cancel()
		switch {
		case err != nil:
			if !failing && ctx.Err() == nil {
				c.log.Warn("component link lease: store unavailable", "err", err)
			}
			failing = true
		case ok:
			failing = false
			standby() // the senders read the wake-ups now
			c.hold(ctx, l, start)
			standby = c.startRelay(ctx)
		default:
			failing = false
			ls.mu.Lock()
			if ls.holder != l.Holder {
				c.log.Info("component link lease held by another node", "holder", l.Holder, "token", l.Token, "mode", ls.cfg.Mode)
			}
			ls.holder = l.Holder
			ls.mu.Unlock()
		}
		select {
		case <-time.After(retry):
		case <-ctx.Done():
		}
	}
}

// hold runs the holder's part while l, granted at granted, is renewed.
// When it is lost (not renewed in time, taken over) or ctx ends, sending
// stops at once, the links the holder runs are closed, and the lease is
// released if it is still ours.
func (c *Component) hold(ctx context.Context, l state.Lease, granted time.Time) {
	ls := c.lease
	ttl := ls.cfg.TTL
	safe := ttl - ttl/10
	ls.setUntil(granted.Add(safe))
	ls.mu.Lock()
	ls.holder = ls.cfg.Holder
	ls.mu.Unlock()
	ls.held.Set(1)
	c.log.Info("component link lease acquired: this node drains the outbound queues", "token", l.Token, "mode", ls.cfg.Mode, "ttl", ttl)

	actx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); c.active(actx) }()
	c.Notify() // read what queued while nobody held the lease
	if c.muc != nil {
		c.NotifyRooms()
	}

	renew := time.NewTicker(ttl / 3)
	defer renew.Stop()
	expire := time.NewTimer(time.Until(ls.deadline()))
	defer expire.Stop()
	reason := ""
	for reason == "" {
		select {
		case <-ctx.Done():
			reason = "stopping"
		case <-expire.C:
			if !ls.holding() {
				reason = "not renewed in time"
			} else {
				expire.Reset(time.Until(ls.deadline()))
			}
		case <-renew.C:
			start := time.Now()
			rctx, cancel := context.WithDeadline(ctx, ls.deadline())
			ok, err := ls.cfg.Store.RenewLease(rctx, l, ttl)
			cancel()
			switch {
			case err != nil:
				if ctx.Err() == nil {
					c.log.Warn("component link lease: renewal failed; retrying until it runs out", "err", err)
				}
			case !ok:
				reason = "taken over or expired"
			default:
				ls.setUntil(start.Add(safe))
				expire.Reset(time.Until(ls.deadline()))
			}
		}
	}
	ls.setUntil(time.Time{})
	ls.held.Set(0)
	stop() // the senders and the holder's links end with actx
	<-done
	ls.mu.Lock()
	if ls.holder == ls.cfg.Holder {
		ls.holder = ""
	}
	ls.mu.Unlock()
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := ls.cfg.Store.ReleaseLease(rctx, l); err != nil && reason == "stopping" {
		c.log.Warn("component link lease: release failed; it expires by itself", "err", err, "in", ttl)
	}
	if reason == "stopping" {
		c.log.Info("component link lease released", "token", l.Token)
	} else {
		c.log.Warn("component link lease lost: stopped sending", "token", l.Token, "reason", reason)
	}
}

// active runs what only the lease holder runs (what a single node always
// runs), until ctx ends: the links the mode gives the holder and the
// queues' senders.
func (c *Component) active(ctx context.Context) {
	var wg sync.WaitGroup
	if c.lease == nil || c.lease.cfg.Mode != LinkEveryNode {
		wg.Go(func() { c.link.run(ctx) })
	}
	wg.Go(func() { c.sendLoop(ctx, c.out) })
	if c.lease != nil {
		wg.Go(func() { c.poll(ctx) })
	}
	if c.muc != nil {
		wg.Go(func() { c.roomLink.run(ctx) })
		wg.Go(func() { c.sendLoop(ctx, c.roomOut) })
	}
	wg.Wait()
}

// Wake-up bits of leaseState.pending.
const (
	pendingOut  = 1
	pendingRoom = 2
)

// relay runs while this node does not hold the lease, until ctx ends: the
// core's Notify and NotifyRooms, which wake the local senders, become
// wake-ups of the holder (forwarder). The item is durable already, so a lost
// wake-up only delays it until the holder's next poll.
func (c *Component) relay(ctx context.Context) {
	ls := c.lease
	for {
		var bit uint32
		select {
		case <-c.wake:
			bit = pendingOut
		case <-c.roomWake: // nil without the MUC service
			bit = pendingRoom
		case <-ctx.Done():
			return
		}
		for {
			old := ls.pending.Load()
			if old&bit != 0 || ls.pending.CompareAndSwap(old, old|bit) {
				break
			}
		}
		c.wakeSender(ls.forward)
	}
}

// startRelay starts relay; the returned function stops it and waits.
func (c *Component) startRelay(ctx context.Context) (stop func()) {
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); c.relay(rctx) }()
	return func() { cancel(); <-done }
}

// forwarder sends the wake-ups relay asked for, one batch at a time, to
// the holder as last seen.
func (c *Component) forwarder(ctx context.Context) {
	ls := c.lease
	for {
		select {
		case <-ls.forward:
		case <-ctx.Done():
			return
		}
		bits := ls.pending.Swap(0)
		ls.mu.Lock()
		holder := ls.holder
		ls.mu.Unlock()
		if holder == "" || holder == ls.cfg.Holder {
			continue // nobody known to wake: the next holder reads its queues at once
		}
		var ws []state.Wake
		if bits&pendingOut != 0 {
			ws = append(ws, state.Wake{Kind: state.WakeQueue, User: bridge.OutboundQueue, Node: ls.cfg.Holder})
		}
		if bits&pendingRoom != 0 {
			ws = append(ws, state.Wake{Kind: state.WakeQueue, User: bridge.RoomQueue, Node: ls.cfg.Holder})
		}
		if len(ws) == 0 {
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := ls.cfg.Store.Wake(wctx, holder, ws...); err != nil && ctx.Err() == nil {
			c.log.Debug("waking the component link holder", "holder", holder, "err", err)
		}
		cancel()
	}
}

// wakes listens for the other nodes' wake-ups of the queues this node
// drains while it holds the lease. It resubscribes after a failure.
func (c *Component) wakes(ctx context.Context) {
	ls := c.lease
	for ctx.Err() == nil {
		ws, stop, err := ls.cfg.Store.Wakes(ctx, ls.cfg.Holder)
		if err != nil {
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
			}
			continue
		}
		func() {
			defer stop()
			for {
				select {
				case w, ok := <-ws:
					if !ok {
						return
					}
					if w.Kind != state.WakeQueue {
						continue
					}
					switch w.User {
					case bridge.OutboundQueue:
						c.wakeSender(c.wake)
					case bridge.RoomQueue:
						if c.roomWake != nil {
							c.wakeSender(c.roomWake)
						}
					}
				case <-ctx.Done():
					return
				}
			}
		}()
	}
}

// wakeSender wakes a local sender (coalescing).
func (c *Component) wakeSender(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// poll wakes the holder's senders every Poll until ctx ends: other nodes
// write to the queues, and their wake-ups are only hints.
func (c *Component) poll(ctx context.Context) {
	t := time.NewTicker(c.lease.cfg.Poll)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			c.wakeSender(c.wake)
			if c.roomWake != nil {
				c.wakeSender(c.roomWake)
			}
		case <-ctx.Done():
			return
		}
	}
}

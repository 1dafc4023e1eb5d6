package xmppside

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lempgw/lempgw/bridge"
	"github.com/lempgw/lempgw/mapping"
	"github.com/lempgw/lempgw/xmppside/muc"
)

// Config configures the XMPP side.
type Config struct {
	Link LinkConfig
	// MUC, when its Domain is set, hosts LEMP groups as MUC rooms on a
	// second component link (xmpp.muc_domain).
	MUC        LinkConfig
	MUCHistory int // messages a joining Jabber user is shown; 0 = muc.DefaultHistory
	// RoomCheck is how often LEMP members' occupants in rooms of the XMPP
	// server check they are in (XEP-0410 self-ping) and rejoin; default 5m.
	RoomCheck time.Duration
	Core      *bridge.Core
	Log       *slog.Logger
	Workers   int // inbound workers (stanzas are sharded by sender); default 8
	QueueLen  int // stanzas queued per worker; default 256
	Registry  prometheus.Registerer
	Now       func() time.Time
	// Lease, with a Store, shares the component link between several
	// gateway nodes on one store (lease.go): only the holder drains the
	// outbound queues. Without one this node always does.
	Lease LeaseConfig
}

// Component is the gateway's XEP-0114 component: it implements bridge.Remote.
type Component struct {
	cfg     Config
	core    *bridge.Core
	log     *slog.Logger
	link    *link
	addr    mapping.Addresser
	metrics *metrics
	now     func() time.Time

	wake    chan struct{}
	out     *outbox // OutboundQueue on link
	barrier *barrier

	// The MUC service (nil when xmpp.muc_domain is not set).
	muc      *muc.Service
	roomLink *link
	roomWake chan struct{}
	roomOut  *outbox // RoomQueue on roomLink
	workers  []chan func(context.Context)
	sent     sentIDs   // ids of messages sent, for bounces
	queries  queries   // IQs asked of Jabber users' servers
	lw       linkWatch // link up/down -> core.RemoteUp/RemoteDown
	srooms   serverRooms
	lease    *leaseState // nil without a lease
	wg       sync.WaitGroup
}

var _ bridge.Remote = (*Component)(nil)

// New checks cfg and returns a Component; Run starts it.
func New(cfg Config) (*Component, error) {
	if cfg.Core == nil {
		return nil, errors.New("xmppside: Core is required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = 256
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RoomCheck <= 0 {
		cfg.RoomCheck = selfPingEvery
	}
	c := &Component{
		cfg: cfg, core: cfg.Core, log: cfg.Log, now: cfg.Now,
		addr:    mapping.Addresser{Domain: cfg.Link.Domain, Resource: "lemp"},
		wake:    make(chan struct{}, 1),
		barrier: newBarrier(),
		lw:      linkWatch{wake: make(chan struct{}, 1)},
	}
	// Barrier ids start at a random point: with several nodes (lease.go),
	// an answer to a ping of an earlier holder that the server hands to
	// this node must not confirm a stanza of ours.
	c.barrier.next = rand.Uint64N(1 << 48)
	m, err := newMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	c.metrics = m
	if err := cfg.Lease.defaults(cfg.Link.Domain); err != nil {
		return nil, err
	}
	if cfg.Lease.Store != nil {
		if c.lease, err = newLeaseState(cfg.Lease, cfg.Registry); err != nil {
			return nil, err
		}
	}
	l, err := newLink(cfg.Link, handler{c}, cfg.Log)
	if err != nil {
		return nil, err
	}
	l.onChange = func(up bool) {
		m.linkUp(up)
		c.lw.changed(up)
	}
	c.link = l
	c.out = &outbox{queue: bridge.OutboundQueue, link: l, wake: c.wake, stanzas: c.stanzasFor}
	if cfg.MUC.Domain != "" {
		if err := c.newRooms(cfg); err != nil {
			return nil, err
		}
	}
	c.workers = make([]chan func(context.Context), cfg.Workers)
	for i := range c.workers {
		c.workers[i] = make(chan func(context.Context), cfg.QueueLen)
	}
	return c, nil
}

// Run keeps the component link up and serves it until ctx ends. With a
// lease (Config.Lease) it runs the links and senders only while this node
// holds the lease (lease.go).
func (c *Component) Run(ctx context.Context) {
	for _, w := range c.workers {
		c.wg.Add(1)
		go c.work(ctx, w)
	}
	c.wg.Add(2)
	go func() { defer c.wg.Done(); c.checkRooms(ctx, c.cfg.RoomCheck) }()
	go func() { defer c.wg.Done(); c.watchLink(ctx) }()
	if c.lease == nil {
		c.wg.Add(1)
		go func() { defer c.wg.Done(); c.active(ctx) }()
	} else {
		if c.lease.cfg.Mode == LinkEveryNode {
			c.wg.Add(1) // every node's own main link, for inbound stanzas
			go func() { defer c.wg.Done(); c.link.run(ctx) }()
		}
		c.wg.Add(3)
		go func() { defer c.wg.Done(); c.leaseLoop(ctx) }()
		go func() { defer c.wg.Done(); c.forwarder(ctx) }()
		go func() { defer c.wg.Done(); c.wakes(ctx) }()
	}
	<-ctx.Done()
	c.wg.Wait()
}

// Up reports whether this node's component streams are up (for /readyz):
// both when the MUC service is on. A node that does not hold the lease is
// a healthy standby: with xmpp.link "lease" it has no stream and is up;
// with "every-node" its main stream must be up.
func (c *Component) Up() bool {
	if c.lease != nil && !c.lease.holding() {
		return c.lease.cfg.Mode != LinkEveryNode || c.link.isUp()
	}
	return c.link.isUp() && (c.roomLink == nil || c.roomLink.isUp())
}

// newRooms sets up the MUC service and its link.
func (c *Component) newRooms(cfg Config) error {
	if cfg.MUC.Address == "" {
		cfg.MUC.Address = cfg.Link.Address
	}
	if cfg.MUC.Secret == "" {
		cfg.MUC.Secret = cfg.Link.Secret
	}
	if cfg.MUC.ServerDomain == "" {
		cfg.MUC.ServerDomain = cfg.Link.ServerDomain
	}
	if cfg.MUC.PingInterval == 0 {
		cfg.MUC.PingInterval = cfg.Link.PingInterval
	}
	if cfg.MUC.PingTimeout == 0 {
		cfg.MUC.PingTimeout = cfg.Link.PingTimeout
	}
	svc, err := muc.New(muc.Config{Domain: cfg.MUC.Domain, Users: c.addr, Backend: roomBackend{c.core},
		History: cfg.MUCHistory, Now: cfg.Now, Log: cfg.Log})
	if err != nil {
		return err
	}
	l, err := newLink(cfg.MUC, roomHandler{c}, cfg.Log)
	if err != nil {
		return err
	}
	l.onChange = func(up bool) {
		if up {
			c.metrics.mucUp.Set(1)
		} else {
			c.metrics.mucUp.Set(0)
			// The server forgot every occupant with the stream: so do we.
			// Jabber clients find out by XEP-0410 self-ping and rejoin.
			svc.Reset()
		}
	}
	c.muc, c.roomLink, c.roomWake = svc, l, make(chan struct{}, 1)
	c.roomOut = &outbox{queue: bridge.RoomQueue, link: l, wake: c.roomWake, stanzas: c.roomStanzasFor}
	return nil
}

// Notify wakes the outbound sender.
func (c *Component) Notify() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// CheckAddress says why addr is not a usable Jabber address.
func (c *Component) CheckAddress(addr string) error {
	j, err := mapping.ParseAddress(addr)
	if err != nil {
		return err
	}
	if j.Domainpart() == c.cfg.Link.Domain {
		return fmt.Errorf("%s is a LEMP user: address it without the domain", addr)
	}
	if c.muc != nil && j.Domainpart() == c.muc.Domain() {
		return fmt.Errorf("%s is a group of this gateway: address it by its id", addr)
	}
	return nil
}

// dispatch hands f to the worker of key: work for one sender runs in order.
// A full queue blocks the stream (backpressure) rather than dropping.
func (c *Component) dispatch(key string, f func(context.Context)) {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	c.workers[int(h.Sum32()%uint32(len(c.workers)))] <- f
}

func (c *Component) work(ctx context.Context, in chan func(context.Context)) {
	defer c.wg.Done()
	for {
		select {
		case f := <-in:
			c.safely(ctx, f)
		case <-ctx.Done():
			return
		}
	}
}

// safely runs f, recovering and logging a panic.
func (c *Component) safely(ctx context.Context, f func(context.Context)) {
	defer func() {
		if r := recover(); r != nil {
			c.metrics.panics.Inc()
			c.log.Error("panic handling stanza", "panic", r)
		}
	}()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	f(wctx)
}

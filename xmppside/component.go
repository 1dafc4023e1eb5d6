package xmppside

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lempgw/lempgw/bridge"
	"github.com/lempgw/lempgw/mapping"
)

// Config configures the XMPP side.
type Config struct {
	Link     LinkConfig
	Core     *bridge.Core
	Log      *slog.Logger
	Workers  int // inbound workers (stanzas are sharded by sender); default 8
	QueueLen int // stanzas queued per worker; default 256
	Registry prometheus.Registerer
	Now      func() time.Time
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
	barrier *barrier
	workers []chan func(context.Context)
	sent    sentIDs   // ids of messages sent, for bounces
	queries queries   // IQs asked of Jabber users' servers
	lw      linkWatch // link up/down -> core.RemoteUp/RemoteDown
	srooms  serverRooms
	wg      sync.WaitGroup
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
	c := &Component{
		cfg: cfg, core: cfg.Core, log: cfg.Log, now: cfg.Now,
		addr:    mapping.Addresser{Domain: cfg.Link.Domain, Resource: "lemp"},
		wake:    make(chan struct{}, 1),
		barrier: newBarrier(),
		lw:      linkWatch{wake: make(chan struct{}, 1)},
	}
	m, err := newMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	c.metrics = m
	l, err := newLink(cfg.Link, handler{c}, cfg.Log)
	if err != nil {
		return nil, err
	}
	l.onChange = func(up bool) {
		m.linkUp(up)
		c.lw.changed(up)
	}
	c.link = l
	c.workers = make([]chan func(context.Context), cfg.Workers)
	for i := range c.workers {
		c.workers[i] = make(chan func(context.Context), cfg.QueueLen)
	}
	return c, nil
}

// Run keeps the component link up and serves it until ctx ends.
func (c *Component) Run(ctx context.Context) {
	for _, w := range c.workers {
		c.wg.Add(1)
		go c.work(ctx, w)
	}
	c.wg.Add(3)
	go func() { defer c.wg.Done(); c.link.run(ctx) }()
	go func() { defer c.wg.Done(); c.sendLoop(ctx) }()
	go func() { defer c.wg.Done(); c.watchLink(ctx) }()
	<-ctx.Done()
	c.wg.Wait()
}

// Up reports whether the component stream is up (for /readyz).
func (c *Component) Up() bool { return c.link.isUp() }

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

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/lempgw/lempgw/bridge"
	"github.com/lempgw/lempgw/lempside"
	"github.com/lempgw/lempgw/state"
	"github.com/lempgw/lempgw/xmppside"
)

// shutdownTimeout bounds the graceful shutdown.
const shutdownTimeout = 10 * time.Second

// runServe runs the gateway until ctx is done, then shuts down gracefully:
// stop accepting, close connections (1001), close the store.
func runServe(ctx context.Context, cfg Config, log *slog.Logger) error {
	if cfg.Node.ID == "" {
		cfg.Node.ID = defaultNodeID() // chosen once: the registry and the link lease use it
	}
	redisSeconds := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "lempgw_redis_seconds",
		Help:    "Round trips to Redis (commands and pipelines), by command.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16), // 0.1 ms to 3.3 s
	}, []string{"cmd"})
	st, err := openObservedStore(ctx, cfg, func(cmd string, took time.Duration, _ error) {
		redisSeconds.WithLabelValues(cmd).Observe(took.Seconds())
	})
	if err != nil {
		return err
	}
	defer st.Close()
	// state.durability (durability.go): with "fsync", Deliver is refused
	// while Redis is not verified to fsync every write before answering.
	st, durable, stopDurability, err := guardDurability(ctx, cfg, st, log)
	if err != nil {
		return err
	}
	defer stopDurability()
	if err := ensureAdmin(ctx, st, cfg.Auth, log); err != nil {
		return err
	}
	if !cfg.XMPP.Enabled() {
		log.Info("xmpp bridging off", "reason", "xmpp.component_address is empty")
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), redisSeconds)
	// What waits for the XMPP side: the component links' durable queues.
	for _, q := range []string{bridge.OutboundQueue, bridge.RoomQueue} {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "lempgw_queue_items",
			Help:        "Items waiting in a durable queue of the XMPP side (@xmpp: to Jabber users, @muc: to hosted rooms).",
			ConstLabels: prometheus.Labels{"queue": q},
		}, func() float64 {
			qctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			n, err := st.QueueLen(qctx, q)
			if err != nil {
				return math.NaN()
			}
			return float64(n)
		}))
	}

	hub := lempside.NewHub()
	core, err := bridge.New(bridge.Config{
		Store:     st,
		Local:     hub,
		Log:       log,
		DedupeTTL: cfg.Delivery.DedupeTTL,
		IndexTTL:  cfg.Delivery.IndexTTL,
		Hash:      cfg.Auth.HashParams(),
		// [limits]: the core's share (the LEMP side's is below).
		MaxGroupMembers: cfg.Limits.MaxGroupMembers,
		MaxPictureBytes: cfg.Limits.MaxPictureBytes,
		MaxQueue:        cfg.Limits.MaxQueue,
	})
	if err != nil {
		return err
	}
	var comp *xmppside.Component
	if cfg.XMPP.Enabled() {
		comp, err = xmppside.New(xmppside.Config{
			Link: xmppside.LinkConfig{
				Address: cfg.XMPP.ComponentAddress,
				Domain:  cfg.XMPP.Domain,
				Secret:  cfg.XMPP.Secret,
			},
			// LEMP groups as MUC rooms, when xmpp.muc_domain is set.
			MUC: xmppside.LinkConfig{
				Address: cfg.XMPP.ComponentAddress,
				Domain:  cfg.XMPP.MUCDomain,
				Secret:  cfg.XMPP.EffectiveMUCSecret(),
			},
			Core:     core,
			Log:      log,
			Registry: reg,
			Lease:    linkLease(cfg, st),
		})
		if err != nil {
			return err
		}
		core.SetRemote(comp)
		if cfg.XMPP.MUCDomain != "" {
			core.SetRooms(comp)
		}
	}
	ready := func(ctx context.Context) error {
		if err := st.Ping(ctx); err != nil {
			return fmt.Errorf("state store: %w", err)
		}
		if err := durable(); err != nil {
			return err
		}
		if comp != nil && !comp.Up() {
			return fmt.Errorf("component links to %s are not all up", cfg.XMPP.ComponentAddress)
		}
		return nil
	}
	srv, err := lempside.NewServer(lempside.Config{
		Listen:         cfg.LEMP.Listen,
		Path:           cfg.LEMP.Path,
		MaxPacketBytes: cfg.LEMP.MaxPacketBytes,
		TLSCert:        cfg.LEMP.TLSCert,
		TLSKey:         cfg.LEMP.TLSKey,
		AllowedOrigins: cfg.LEMP.AllowedOrigins,
		WriteQueue:     cfg.LEMP.WriteQueue,
		PingInterval:   cfg.LEMP.PingInterval,
		WebClient:      cfg.LEMP.WebClient, // issue 7
		Limits:         cfg.Limits.LEMP(),
		Registry:       reg,
	}, core, hub, log)
	if err != nil {
		return err
	}
	if err := srv.Listen(); err != nil {
		return err
	}
	opsLn, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("http.listen %s: %w", cfg.HTTP.Listen, err)
	}
	stopRegistry, err := startRegistry(ctx, cfg, hub, st, srv.URL(), opsLn.Addr().String(), log) // sessions.go
	if err != nil {
		return err
	}
	defer stopRegistry()
	if cfg.State.Backend != "memory" {
		// Other nodes may share the store: cross-node wake-ups, a
		// cluster-wide Online, the newer login wins (docs/operations.md,
		// "Several nodes"). The memory store is one node by design.
		if err := hub.StartCluster(ctx, lempside.ClusterConfig{Log: log}); err != nil {
			return fmt.Errorf("cross-node wake-ups: %w", err)
		}
		defer hub.StopCluster()
	}
	ops := &http.Server{
		Handler:           newOpsHandler(reg, ready, cfg.HTTP.Pprof),
		ReadHeaderTimeout: 10 * time.Second,
	}

	compCtx, stopComp := context.WithCancel(context.Background())
	compDone := make(chan struct{})
	if comp != nil {
		go func() { defer close(compDone); comp.Run(compCtx) }()
	} else {
		close(compDone)
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve() }()
	go func() {
		if err := ops.Serve(opsLn); !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("ops http: %w", err)
			return
		}
		errc <- nil
	}()
	log.Info("lempgw started", "version", versionString(), "lemp", srv.URL(), "ops", "http://"+opsLn.Addr().String(), "state", cfg.State.Backend)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	log.Info("lempgw stopping")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("lemp shutdown", "err", err)
	}
	stopComp() // closes the component stream; queued stanzas stay in the store
	select {
	case <-compDone:
	case <-sctx.Done():
		log.Warn("component shutdown timed out")
	}
	if err := ops.Shutdown(sctx); err != nil {
		log.Warn("ops shutdown", "err", err)
	}
	log.Info("lempgw stopped")
	return runErr
}

// linkLease is the component link's lease: with Redis, other nodes may share
// the store and the outbound queues (docs/operations.md, "The component link
// across nodes"); the memory store is one node by design, which always holds
// the link.
func linkLease(cfg Config, st state.Store) xmppside.LeaseConfig {
	if cfg.State.Backend == "memory" {
		return xmppside.LeaseConfig{}
	}
	return xmppside.LeaseConfig{Store: st, Mode: cfg.XMPP.Link, Holder: cfg.Node.ID, TTL: cfg.XMPP.LeaseTTL}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lempgw/lempgw/state"
)

// Values of state.durability (docs/operations.md, "Durability").
const (
	// durabilityDefault acknowledges a message once Redis has applied it,
	// whatever persistence Redis is configured with.
	durabilityDefault = "default"
	// durabilityFsync acknowledges a message only while Redis is verified
	// to fsync its AOF before it answers a write: appendonly yes,
	// appendfsync always, no-appendfsync-on-rewrite no.
	durabilityFsync = "fsync"
)

// Periods of the "fsync" check: while the last check passed, and while it
// failed or Redis did not answer (so sending resumes soon after a restart).
const (
	durabilityCheckPeriod = 5 * time.Second
	durabilityRetryPeriod = 500 * time.Millisecond
)

// fsyncGuard is the store with state.durability = "fsync": Deliver, the
// write behind every acknowledgement, is refused (503, state.ErrUnavailable)
// while the last check of Redis's settings failed or could not be made.
type fsyncGuard struct {
	state.Store
	problem atomic.Pointer[error] // nil: the last check passed
}

func (g *fsyncGuard) Deliver(ctx context.Context, d state.Delivery) (bool, error) {
	if p := g.problem.Load(); p != nil {
		return false, fmt.Errorf("not acknowledging: %w (%w)", *p, state.ErrUnavailable)
	}
	return g.Store.Deliver(ctx, d)
}

// Ready is the guard's part of /readyz.
func (g *fsyncGuard) Ready() error {
	if p := g.problem.Load(); p != nil {
		return *p
	}
	return nil
}

// guardDurability applies cfg.State.Durability to st. With "fsync" it
// checks Redis once (an error refuses to start) and then every
// durabilityCheckPeriod until stop is called; st is wrapped in a guard.
// With "default" it returns st as is.
func guardDurability(ctx context.Context, cfg Config, st state.Store, log *slog.Logger) (state.Store, func() error, func(), error) {
	nothing := func() error { return nil }
	if cfg.State.Durability != durabilityFsync {
		return st, nothing, func() {}, nil
	}
	fc, err := state.NewFsyncChecker(cfg.State.RedisURL)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("state.redis_url: %s", scrubPassword(oneLine(err.Error()), cfg.State.RedisURL))
	}
	addr := fc.Addr()
	check := func() error {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		err := fc.Check(cctx)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, state.ErrUnavailable) || cctx.Err() != nil:
			return fmt.Errorf(`state.durability = "fsync": redis at %s did not answer; its persistence settings are not verified`, addr)
		}
		msg := scrubPassword(oneLine(err.Error()), cfg.State.RedisURL)
		var re redis.Error
		if errors.As(err, &re) {
			msg += `: the check needs CONFIG GET; allow it or set state.durability = "default"`
		}
		return errors.New(`state.durability = "fsync": ` + msg)
	}
	if err := check(); err != nil {
		_ = fc.Close()
		return nil, nil, nil, err
	}
	log.Info("durability: redis fsyncs every write before answering", "redis", addr, "check_period", durabilityCheckPeriod.String())
	g := &fsyncGuard{Store: st}
	stopc := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer fc.Close()
		period := durabilityCheckPeriod
		t := time.NewTimer(period)
		defer t.Stop()
		for {
			select {
			case <-stopc:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			err := check()
			was := g.problem.Load()
			switch {
			case err != nil && (was == nil || (*was).Error() != err.Error()):
				log.Error("durability: messages refused (503) until Redis fsyncs every write again", "err", err)
			case err == nil && was != nil:
				log.Info("durability: redis fsyncs every write again; messages accepted", "redis", addr)
			}
			if err != nil {
				g.problem.Store(&err)
				period = durabilityRetryPeriod
			} else {
				g.problem.Store(nil)
				period = durabilityCheckPeriod
			}
			t.Reset(period)
		}
	}()
	var once sync.Once
	stop := func() { once.Do(func() { close(stopc); wg.Wait() }) }
	return g, g.Ready, stop, nil
}

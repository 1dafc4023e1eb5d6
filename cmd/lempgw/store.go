package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lempgw/lempgw/state"
)

// redisLog receives go-redis's internal log lines (dial retries and the
// like), at debug level, instead of their raw lines on stderr. Nil drops
// them; "lempgw serve" sets its logger.
var redisLog atomic.Pointer[slog.Logger]

type redisLogger struct{}

func (redisLogger) Printf(ctx context.Context, format string, v ...any) {
	if l := redisLog.Load(); l != nil {
		l.Debug(oneLine(fmt.Sprintf(format, v...)), "component", "redis")
	}
}

func init() { redis.SetLogger(redisLogger{}) }

// openStore opens the state store that cfg.State selects. For Redis it
// checks the server answers; the error then names the address (never the
// password).
func openStore(ctx context.Context, cfg Config) (state.Store, error) {
	return openObservedStore(ctx, cfg, nil)
}

// openObservedStore is openStore with observe called after every Redis
// command (the latency histogram of serve).
func openObservedStore(ctx context.Context, cfg Config, observe func(string, time.Duration, error)) (state.Store, error) {
	switch cfg.State.Backend {
	case "", "memory":
		return state.NewMemory(), nil
	case "redis":
		st, err := state.NewRedis(ctx, state.RedisConfig{URL: cfg.State.RedisURL, KeyPrefix: cfg.State.KeyPrefix, Observe: observe})
		if err != nil {
			return nil, errors.New(scrubPassword(oneLine(err.Error()), cfg.State.RedisURL))
		}
		return st, nil
	}
	return nil, fmt.Errorf("state: unknown backend %q", cfg.State.Backend)
}

// scrubPassword removes the password of rawURL from msg, should an error
// ever quote the URL.
func scrubPassword(msg, rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil {
		return msg
	}
	if p, ok := u.User.Password(); ok && p != "" {
		msg = strings.ReplaceAll(msg, p, mask)
	}
	return msg
}

package state

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// FsyncSettings are the Redis settings under which an answered write is on
// disk: the AOF is on, fsynced before Redis answers, also while the AOF is
// being rewritten. Each with the value it must have and why.
var FsyncSettings = []struct{ Name, Want, Why string }{
	{"appendonly", "yes", "without the AOF a crash loses every write since the last RDB snapshot"},
	{"appendfsync", "always", "Redis must fsync the AOF before it answers a write"},
	{"no-appendfsync-on-rewrite", "no", "with yes, writes during an AOF rewrite are answered before their fsync"},
}

// FsyncChecker asks the Redis a Store URL names (every primary of a Redis
// Cluster) whether it has FsyncSettings, with CONFIG GET. It has its own
// small connection pool, apart from the Store's.
type FsyncChecker struct {
	c    redis.UniversalClient
	addr string
}

// NewFsyncChecker returns a checker for url, any URL NewRedis accepts. It
// does not connect yet.
func NewFsyncChecker(url string) (*FsyncChecker, error) {
	single, clu, err := parseRedisURL(url, false)
	if err != nil {
		return nil, err
	}
	if clu != nil {
		clu.MaxRetries, clu.PoolSize = -1, 1
		return &FsyncChecker{c: redis.NewClusterClient(clu), addr: strings.Join(clu.Addrs, ",")}, nil
	}
	single.MaxRetries, single.PoolSize = -1, 1
	return &FsyncChecker{c: redis.NewClient(single), addr: single.Addr}, nil
}

// Addr is the address (or the cluster's seed addresses) checked.
func (f *FsyncChecker) Addr() string { return f.addr }

// Check returns nil when every primary has FsyncSettings; otherwise an
// error naming the address and the first setting that differs, or one
// wrapping ErrUnavailable when a server did not answer.
func (f *FsyncChecker) Check(ctx context.Context) error {
	if cc, ok := f.c.(*redis.ClusterClient); ok {
		if err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			return checkFsync(ctx, c, c.Options().Addr)
		}); err != nil {
			var re redis.Error
			var weak weakFsync
			if errors.As(err, &re) || errors.As(err, &weak) {
				return err
			}
			return fmt.Errorf("redis cluster at %s: %w (%w)", f.addr, err, ErrUnavailable)
		}
		return nil
	}
	return checkFsync(ctx, f.c, f.addr)
}

// Close closes the checker's connections.
func (f *FsyncChecker) Close() error { return f.c.Close() }

// weakFsync is a Redis that answered with settings other than FsyncSettings.
type weakFsync string

func (w weakFsync) Error() string { return string(w) }

func checkFsync(ctx context.Context, c redis.Cmdable, addr string) error {
	pipe := c.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(FsyncSettings))
	for i, s := range FsyncSettings {
		cmds[i] = pipe.ConfigGet(ctx, s.Name)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		var re redis.Error
		if errors.As(err, &re) {
			return fmt.Errorf("redis at %s refused CONFIG GET: %w", addr, err)
		}
		return fmt.Errorf("redis at %s: %w (%w)", addr, err, ErrUnavailable)
	}
	for i, s := range FsyncSettings {
		got, ok := cmds[i].Val()[s.Name]
		if !ok {
			return weakFsync(fmt.Sprintf("redis at %s has no setting %s (Redis 7.0 or later required)", addr, s.Name))
		}
		if got != s.Want {
			return weakFsync(fmt.Sprintf("redis at %s has %s %s, want %s (%s)", addr, s.Name, got, s.Want, s.Why))
		}
	}
	return nil
}

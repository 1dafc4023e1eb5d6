package state_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lempgw/lempgw/internal/testenv"
	"github.com/lempgw/lempgw/state"
)

// TestFsyncChecker: the check passes only on a Redis with the AOF fsynced
// before every answer, names the address and the setting otherwise, and
// reports a server that does not answer as unavailable.
func TestFsyncChecker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rs := testenv.StartRedis(t, "--appendonly", "yes", "--appendfsync", "always")
	fc, err := state.NewFsyncChecker(rs.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close()
	if err := fc.Check(ctx); err != nil {
		t.Fatalf("appendfsync always: %v", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	defer rdb.Close()
	for _, c := range []struct{ name, value, want string }{
		{"appendfsync", "everysec", "has appendfsync everysec, want always"},
		{"appendfsync", "no", "has appendfsync no, want always"},
		{"no-appendfsync-on-rewrite", "yes", "has no-appendfsync-on-rewrite yes, want no"},
		{"appendonly", "no", "has appendonly no, want yes"},
	} {
		if err := rdb.ConfigSet(ctx, c.name, c.value).Err(); err != nil {
			t.Fatal(err)
		}
		err := fc.Check(ctx)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), rs.Addr) || errors.Is(err, state.ErrUnavailable) {
			t.Errorf("%s %s: %v, want an error with %q and %s", c.name, c.value, err, c.want, rs.Addr)
		}
		// Back to the strict settings for the next case.
		for _, s := range state.FsyncSettings {
			if err := rdb.ConfigSet(ctx, s.Name, s.Want).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Killed: SIGTERM may wait for the AOF rewrite CONFIG SET appendonly yes started.
	rs.Kill()
	sctx, scancel := context.WithTimeout(ctx, 3*time.Second) // as "lempgw serve" does
	defer scancel()
	if err := fc.Check(sctx); !errors.Is(err, state.ErrUnavailable) {
		t.Errorf("Redis stopped: %v, want state.ErrUnavailable", err)
	}

	// A user without +config|get: refused, not unavailable.
	acl := testenv.StartRedis(t, "--user", "lempgw", "on", ">pw", "~*", "&*", "+@all", "-config")
	fa, err := state.NewFsyncChecker("redis://lempgw:pw@" + acl.Addr + "/0")
	if err != nil {
		t.Fatal(err)
	}
	defer fa.Close()
	if err := fa.Check(ctx); err == nil || errors.Is(err, state.ErrUnavailable) || !strings.Contains(err.Error(), "refused CONFIG GET") {
		t.Errorf("without +config: %v", err)
	}
}

// TestFsyncCheckerCluster: with a Redis Cluster URL every primary is asked.
func TestFsyncCheckerCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := testenv.StartRedisCluster(t)
	fc, err := state.NewFsyncChecker(c.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close()
	if err := fc.Check(ctx); err == nil || !strings.Contains(err.Error(), "has appendonly no, want yes") {
		t.Fatalf("cluster without AOF: %v", err)
	}
	set := func(addr, name, value string) {
		t.Helper()
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		defer rdb.Close()
		if err := rdb.ConfigSet(ctx, name, value).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range c.Addrs {
		set(a, "appendonly", "yes")
		set(a, "appendfsync", "always")
	}
	if err := fc.Check(ctx); err != nil {
		t.Fatalf("every primary fsyncs: %v", err)
	}
	weak := c.Addrs[len(c.Addrs)-1]
	set(weak, "appendfsync", "everysec")
	if err := fc.Check(ctx); err == nil || !strings.Contains(err.Error(), "redis at "+weak+" has appendfsync everysec") {
		t.Fatalf("one primary with everysec: %v, want an error naming %s", err, weak)
	}
}

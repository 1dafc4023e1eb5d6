package testenv_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/lempgw/lempgw/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func client(t *testing.T, url string) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestRedisURLShared(t *testing.T) {
	u1, u2 := testenv.RedisURL(t), testenv.RedisURL(t)
	if u1 != u2 {
		t.Fatalf("RedisURL gave %s then %s, want one server per process", u1, u2)
	}
	if err := client(t, u1).Ping(t.Context()).Err(); err != nil {
		t.Fatalf("PING %s: %v", u1, err)
	}
}

func TestUniquePrefix(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		p := testenv.UniquePrefix(t)
		if seen[p] || !strings.HasPrefix(p, "test:") || !strings.HasSuffix(p, ":") {
			t.Fatalf("UniquePrefix = %q (seen before: %v)", p, seen[p])
		}
		seen[p] = true
	}
}

// TestStartRedisRestart checks a dedicated server keeps AOF data over a
// crash (Kill) and a graceful Stop, on the same address.
func TestStartRedisRestart(t *testing.T) {
	srv := testenv.StartRedis(t, "--appendonly", "yes", "--appendfsync", "always")
	ctx := context.Background()
	c := client(t, srv.URL)
	if err := c.Set(ctx, "k", "v1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING succeeded after Kill")
	}
	srv.Restart(t)
	if v, err := c.Get(ctx, "k").Result(); err != nil || v != "v1" {
		t.Fatalf("GET after Kill and Restart = %q, %v", v, err)
	}
	if err := c.Set(ctx, "k", "v2", 0).Err(); err != nil {
		t.Fatal(err)
	}
	srv.Restart(t) // from running: Stop, then start
	if v, err := c.Get(ctx, "k").Result(); err != nil || v != "v2" {
		t.Fatalf("GET after Restart = %q, %v", v, err)
	}
	srv.Stop()
	srv.Stop() // idempotent
	srv.Kill()
}

// TestStartRedisNoPersistence checks the defaults: nothing survives a restart.
func TestStartRedisNoPersistence(t *testing.T) {
	srv := testenv.StartRedis(t)
	ctx := context.Background()
	c := client(t, srv.URL)
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	srv.Restart(t)
	if n, err := c.Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Fatalf("EXISTS after restart = %d, %v; want 0 without persistence", n, err)
	}
	if srv.Addr == "" || !strings.Contains(srv.URL, srv.Addr) {
		t.Fatalf("URL %q, Addr %q", srv.URL, srv.Addr)
	}
}

package state_test

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lempgw/lempgw/internal/testenv"
	"github.com/lempgw/lempgw/state"
	"github.com/lempgw/lempgw/state/statetest"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// newRedis returns a Redis store on the test Redis under a key prefix of its
// own, and deletes its keys when the test ends.
func newRedis(t testing.TB) *state.Redis {
	t.Helper()
	url, prefix := testenv.RedisURL(t), testenv.UniquePrefix(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := state.NewRedis(ctx, state.RedisConfig{URL: url, KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Close()
		deleteKeys(t, url, prefix)
	})
	return s
}

func deleteKeys(t testing.TB, url, prefix string) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Error(err)
		return
	}
	c := redis.NewClient(opt)
	defer c.Close()
	ctx := context.Background()
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Errorf("scanning test keys: %v", err)
		return
	}
	if len(keys) > 0 {
		if err := c.Unlink(ctx, keys...).Err(); err != nil {
			t.Errorf("deleting test keys: %v", err)
		}
	}
}

func TestRedis(t *testing.T) {
	statetest.Run(t, func(t *testing.T) state.Store { return newRedis(t) })
}

func TestNewRedisUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := state.NewRedis(ctx, state.RedisConfig{URL: "redis://" + addr + "/0"})
	if err == nil {
		s.Close()
		t.Fatalf("NewRedis on %s succeeded", addr)
	}
	if !strings.Contains(err.Error(), addr) {
		t.Fatalf("error %q does not name the address %s", err, addr)
	}
}

func TestNewRedisBadURL(t *testing.T) {
	_, err := state.NewRedis(context.Background(), state.RedisConfig{URL: "http://127.0.0.1/"})
	if err == nil {
		t.Fatal("NewRedis accepted an http URL")
	}
}

// TestRedisDown checks a store whose server went away reports wrapped errors
// (not sentinel ones, not panics) and recovers when the server is back.
func TestRedisDown(t *testing.T) {
	srv := testenv.StartRedis(t)
	ctx := context.Background()
	// No command retries: each call below fails fast on "connection refused".
	s, err := state.NewRedis(ctx, state.RedisConfig{URL: srv.URL + "?max_retries=-1", KeyPrefix: "t:"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateUser(ctx, state.User{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := s.Ping(short); err == nil || !strings.Contains(err.Error(), srv.Addr) {
		t.Fatalf("Ping with Redis down = %v, want an error naming %s", err, srv.Addr)
	}
	_, err = s.GetUser(short, "alice")
	if err == nil || errors.Is(err, state.ErrNotFound) {
		t.Fatalf("GetUser with Redis down = %v, want a backend error", err)
	}
	_, err = s.Deliver(short, state.Delivery{Targets: []state.Target{{Receiver: "alice", Item: state.Item{Payload: []byte("x")}}}})
	if err == nil {
		t.Fatal("Deliver with Redis down succeeded")
	}

	// Restarted empty (no persistence) and without the scripts loaded:
	// Deliver and Ack fall back to EVAL.
	srv.Restart(t)
	if _, err := s.Deliver(ctx, state.Delivery{IndexTTL: time.Minute, Targets: []state.Target{
		{Receiver: "alice", Item: state.Item{From: "bob", MsgID: "m1", Payload: []byte("x")}},
	}}); err != nil {
		t.Fatalf("Deliver after restart: %v", err)
	}
	if from, err := s.Ack(ctx, "alice", "m1"); err != nil || from != "bob" {
		t.Fatalf("Ack after restart = %q, %v", from, err)
	}
}

// TestRedisKeyLayout pins the documented key layout (docs/state.md).
func TestRedisKeyLayout(t *testing.T) {
	srv := testenv.StartRedis(t)
	ctx := context.Background()
	s, err := state.NewRedis(ctx, state.RedisConfig{URL: srv.URL, KeyPrefix: "p:"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.CreateUser(ctx, state.User{Name: "alice"}))
	must(s.Follow(ctx, "alice", []state.Following{{User: "bob"}}))
	must(s.Block(ctx, "alice", "eve"))
	must(s.CreateGroup(ctx, state.Group{ID: "g1", Owner: "alice", Members: []string{"alice"}}))
	_, err = s.Deliver(ctx, state.Delivery{DedupeKey: "alice\x00m1", DedupeTTL: time.Minute, IndexTTL: time.Minute,
		Targets: []state.Target{{Receiver: "a:b", Item: state.Item{From: "alice", MsgID: "m1", Payload: []byte("x")}}}})
	must(err)

	opt, _ := redis.ParseURL(srv.URL)
	c := redis.NewClient(opt)
	defer c.Close()
	keys, err := c.Keys(ctx, "*").Result()
	must(err)
	want := map[string]string{
		"p:u:alice": "string", "p:users": "set", "p:fw:alice": "hash", "p:fr:bob": "set",
		"p:bl:alice": "set", "p:g:g1": "string", "p:ug:alice": "set",
		"p:q:a:b": "stream", "p:seq:a:b": "string", "p:mi:a%3Ab:m1": "string", "p:dd:alice\x00m1": "string",
	}
	if len(keys) != len(want) {
		t.Errorf("keys = %q, want %d keys", keys, len(want))
	}
	for k, typ := range want {
		got, err := c.Type(ctx, k).Result()
		must(err)
		if got != typ {
			t.Errorf("TYPE %q = %s, want %s", k, got, typ)
		}
	}
	if v, _ := c.Get(ctx, "p:mi:a%3Ab:m1").Result(); v != "1\nalice" {
		t.Errorf("index entry = %q, want %q", v, "1\nalice")
	}
	if ttl, _ := c.PTTL(ctx, "p:mi:a%3Ab:m1").Result(); ttl <= 0 || ttl > time.Minute {
		t.Errorf("index PTTL = %v", ttl)
	}
	msgs, err := c.XRange(ctx, "p:q:a:b", "-", "+").Result()
	must(err)
	if len(msgs) != 1 || msgs[0].ID != "0-1" || msgs[0].Values["payload"] != "x" || msgs[0].Values["ackonwrite"] != "0" {
		t.Errorf("queue = %+v", msgs)
	}
}

package state_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
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
	s, _, _ := newRedisPrefix(t)
	return s
}

// newRedisPrefix is newRedis that also returns the Redis URL and the key
// prefix, for tests that look at the keys.
func newRedisPrefix(t testing.TB) (s *state.Redis, url, prefix string) {
	t.Helper()
	url, prefix = testenv.RedisURL(t), testenv.UniquePrefix(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	s, err = state.NewRedis(ctx, state.RedisConfig{URL: url, KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Close()
		deleteKeys(t, url, prefix)
	})
	return s, url, prefix
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
	// Deliver, Ack and Remove fall back to EVAL.
	srv.Restart(t)
	if _, err := s.Deliver(ctx, state.Delivery{IndexTTL: time.Minute, Targets: []state.Target{
		{Receiver: "alice", Item: state.Item{From: "bob", MsgID: "m1", Payload: []byte("x")}},
	}}); err != nil {
		t.Fatalf("Deliver after restart: %v", err)
	}
	if from, err := s.Ack(ctx, "alice", "m1"); err != nil || from != "bob" {
		t.Fatalf("Ack after restart = %q, %v", from, err)
	}
	if err := s.Remove(ctx, "alice", 1); err != nil {
		t.Fatalf("Remove after restart: %v", err)
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
		Targets: []state.Target{{Receiver: "a:b", Item: state.Item{From: "alice", MsgID: "m1", Payload: []byte("x")}}},
		History: &state.HistoryEntry{Group: "g1", Payload: []byte("x")}})
	must(err)

	opt, _ := redis.ParseURL(srv.URL)
	c := redis.NewClient(opt)
	defer c.Close()
	keys, err := c.Keys(ctx, "*").Result()
	must(err)
	want := map[string]string{
		"p:u:alice": "string", "p:users": "set", "p:fw:alice": "hash", "p:fr:bob": "set",
		"p:bl:alice": "set", "p:g:g1": "string", "p:ug:alice": "set", "p:groups": "set", "p:h:g1": "list",
		"p:q:a:b": "stream", "p:seq:a:b": "string", "p:mi:a%3Ab:m1": "hash", "p:dd:alice\x00m1": "string",
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
	msgs, err := c.XRange(ctx, "p:q:a:b", "-", "+").Result()
	must(err)
	if len(msgs) != 1 || msgs[0].ID != "0-1" || msgs[0].Values["payload"] != "x" || msgs[0].Values["ackonwrite"] != "0" {
		t.Errorf("queue = %+v", msgs)
	}

	// The index entry: the queued seqs, the latest sender and its IndexTTL,
	// without expiry while a seq is queued. Sender names are stored as they
	// are, whatever their bytes.
	const odd = "romeo@montague.lit/orchard\n1\x00:\"}"
	_, err = s.Deliver(ctx, state.Delivery{IndexTTL: 2 * time.Minute,
		Targets: []state.Target{{Receiver: "a:b", Item: state.Item{From: odd, MsgID: "m1", Payload: []byte("y")}}}})
	must(err)
	const mi = "p:mi:a%3Ab:m1"
	wantIndex := func(what string, want map[string]string, wantTTL time.Duration) {
		t.Helper()
		h, err := c.HGetAll(ctx, mi).Result()
		must(err)
		if !maps.Equal(h, want) {
			t.Errorf("%s: index entry = %q, want %q", what, h, want)
		}
		ttl, err := c.PTTL(ctx, mi).Result()
		must(err)
		if wantTTL < 0 && ttl != -1 || wantTTL > 0 && (ttl <= wantTTL-10*time.Second || ttl > wantTTL) {
			t.Errorf("%s: index PTTL = %v, want %v", what, ttl, wantTTL)
		}
	}
	wantIndex("after two deliveries", map[string]string{"from": odd, "ttl": "120000", "1": "1", "2": "1"}, -1)
	must(s.Remove(ctx, "a:b", 1))
	wantIndex("after Remove of one seq", map[string]string{"from": odd, "ttl": "120000", "2": "1"}, -1)
	from, err := s.Ack(ctx, "a:b", "m1")
	must(err)
	if from != odd {
		t.Errorf("Ack = %q, want %q", from, odd)
	}
	wantIndex("after Ack", map[string]string{"from": odd, "ttl": "120000"}, 2*time.Minute)
	if n, _ := c.XLen(ctx, "p:q:a:b").Result(); n != 0 {
		t.Errorf("queue length after Ack = %d", n)
	}
	_, err = s.Deliver(ctx, state.Delivery{IndexTTL: time.Minute,
		Targets: []state.Target{{Receiver: "a:b", Item: state.Item{From: "alice", MsgID: "m1", Payload: []byte("z"), AckOnWrite: true}}}})
	must(err)
	wantIndex("delivered again", map[string]string{"from": "alice", "ttl": "60000", "3": "1"}, -1)
	must(s.Remove(ctx, "a:b", 3))
	wantIndex("after Remove of the last seq", map[string]string{"from": "alice", "ttl": "60000"}, time.Minute)
}

// TestRedisDeleteUserIndex checks DeleteUser leaves no index entry without
// expiry: the entries of the queued items go with the queue (one more than
// the delete script reads at once, to cover its paging), the others keep
// their TTL.
func TestRedisDeleteUserIndex(t *testing.T) {
	s, url, prefix := newRedisPrefix(t)
	ctx := t.Context()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	deliver := func(from, msgID string, ackOnWrite bool) {
		t.Helper()
		_, err := s.Deliver(ctx, state.Delivery{IndexTTL: time.Hour, Targets: []state.Target{
			{Receiver: "alice", Item: state.Item{From: from, MsgID: msgID, Payload: []byte("x"), AckOnWrite: ackOnWrite}},
		}})
		must(err)
	}
	must(s.CreateUser(ctx, state.User{Name: "alice"}))
	deliver("bob", "acked", false)
	deliver("bob", "removed", true)
	deliver("bob", "reused", false)
	deliver("carol", "reused", false)
	deliver("bob", "partly", true)
	deliver("carol", "partly", false)
	deliver("bob", "", true)
	items, err := s.Pending(ctx, "alice", 0, 0)
	must(err)
	must(s.Remove(ctx, "alice", items[1].Seq)) // "removed"
	must(s.Remove(ctx, "alice", items[4].Seq)) // one of "partly"
	_, err = s.Ack(ctx, "alice", "acked")
	must(err)
	const many = 1001
	ts := make([]state.Target, many)
	for i := range ts {
		ts[i] = state.Target{Receiver: "alice", Item: state.Item{From: "bob", MsgID: fmt.Sprintf("many-%d", i), Payload: []byte("x")}}
	}
	_, err = s.Deliver(ctx, state.Delivery{IndexTTL: time.Hour, Targets: ts})
	must(err)

	opt, err := redis.ParseURL(url)
	must(err)
	c := redis.NewClient(opt)
	defer c.Close()
	// indexTTLs maps every mi: key under the test's prefix to its PTTL.
	indexTTLs := func() map[string]time.Duration {
		t.Helper()
		out := map[string]time.Duration{}
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			k := iter.Val()
			if !strings.HasPrefix(k, prefix+"mi:") {
				continue
			}
			ttl, err := c.PTTL(ctx, k).Result()
			must(err)
			if ttl != -2 { // gone since SCAN
				out[k] = ttl
			}
		}
		must(iter.Err())
		return out
	}
	before := indexTTLs()
	if n, want := len(before), 4+many; n != want {
		t.Fatalf("%d index entries before DeleteUser, want %d", n, want)
	}
	for _, id := range []string{"reused", "partly", "many-0", "many-1000"} {
		if ttl := before[prefix+"mi:alice:"+id]; ttl != -1 {
			t.Errorf("index entry %q of a queued item has PTTL %v, want none", id, ttl)
		}
	}

	must(s.DeleteUser(ctx, "alice"))
	after := indexTTLs()
	for k, ttl := range after {
		if ttl < 0 {
			t.Errorf("index entry %q left without expiry (PTTL %v)", k, ttl)
		}
	}
	want := []string{prefix + "mi:alice:acked", prefix + "mi:alice:removed"}
	if got := slices.Sorted(maps.Keys(after)); !slices.Equal(got, want) {
		t.Errorf("index entries after DeleteUser = %q, want %q", got, want)
	}
	if n, err := s.QueueLen(ctx, "alice"); err != nil || n != 0 {
		t.Errorf("QueueLen after DeleteUser = %d, %v", n, err)
	}
}

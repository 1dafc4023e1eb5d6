package state_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lempgw/lempgw/state"
)

// TestRedisSessionKeys checks the session registry's key layout
// (docs/state.md): the hash-tagged names, the TTL on the node record only,
// and that a listing deletes what a dead run left behind.
func TestRedisSessionKeys(t *testing.T) {
	s, url, p := newRedisPrefix(t)
	ctx := context.Background()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	keys := func() []string {
		t.Helper()
		ks, err := c.Keys(ctx, p+"*").Result()
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(ks)
		return ks
	}

	const ttl = 300 * time.Millisecond
	a := state.Node{ID: "gw-a", Run: "ra", Started: 1, LastBeat: 1}
	b := state.Node{ID: "gw-b", Run: "rb", Started: 1, LastBeat: 1}
	if err := s.StartNode(ctx, a, ttl); err != nil {
		t.Fatal(err)
	}
	if err := s.StartNode(ctx, b, time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, ss := range []state.Session{
		{ID: "s1", User: "alice", Node: "gw-a", Run: "ra", Started: 1},
		{ID: "s2", User: "bob", Node: "gw-a", Run: "ra", Started: 2},
		{ID: "s3", User: "alice", Node: "gw-b", Run: "rb", Started: 3},
	} {
		if err := s.RegisterSession(ctx, ss); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{p + "node:{gw-a}", p + "node:{gw-b}", p + "ns:{gw-a}:ra", p + "ns:{gw-b}:rb", p + "runs", p + "us:{alice}", p + "us:{bob}"}
	if got := keys(); !slices.Equal(got, want) {
		t.Fatalf("keys:\n got %q\nwant %q", got, want)
	}
	if pttl := c.PTTL(ctx, p+"node:{gw-a}").Val(); pttl <= 0 || pttl > ttl {
		t.Errorf("PTTL node:{gw-a} = %v, want in (0, %v]", pttl, ttl)
	}
	for _, k := range []string{"ns:{gw-a}:ra", "us:{alice}", "runs"} {
		if pttl := c.PTTL(ctx, p+k).Val(); pttl != -1 {
			t.Errorf("PTTL %s = %v, want none (-1)", k, pttl)
		}
	}
	if f := c.HGetAll(ctx, p+"us:{alice}").Val(); len(f) != 2 || f["2:ra:s1"] == "" || f["2:rb:s3"] == "" {
		t.Errorf("us:{alice} fields = %v, want 2:ra:s1 and 2:rb:s3", f)
	}
	if f := c.HGetAll(ctx, p+"runs").Val(); len(f) != 2 || f["ra"] != "gw-a" || f["rb"] != "gw-b" {
		t.Errorf("runs = %v", f)
	}

	// gw-a dies (no heartbeat): its record expires by itself, the rest
	// stays until a listing notices.
	time.Sleep(ttl + 100*time.Millisecond)
	want = []string{p + "node:{gw-b}", p + "ns:{gw-a}:ra", p + "ns:{gw-b}:rb", p + "runs", p + "us:{alice}", p + "us:{bob}"}
	if got := keys(); !slices.Equal(got, want) {
		t.Fatalf("keys after gw-a expired:\n got %q\nwant %q", got, want)
	}
	// A user's lookup drops that user's dead entries.
	if ss, err := s.UserSessions(ctx, "bob"); err != nil || len(ss) != 0 {
		t.Fatalf("UserSessions(bob) = %v, %v", ss, err)
	}
	if n := c.Exists(ctx, p+"us:{bob}").Val(); n != 0 {
		t.Errorf("us:{bob} still exists after UserSessions(bob)")
	}
	// A listing drops the rest of the dead run.
	ss, err := s.Sessions(ctx)
	if err != nil || len(ss) != 1 || ss[0].ID != "s3" {
		t.Fatalf("Sessions = %v, %v", ss, err)
	}
	want = []string{p + "node:{gw-b}", p + "ns:{gw-b}:rb", p + "runs", p + "us:{alice}"}
	if got := keys(); !slices.Equal(got, want) {
		t.Fatalf("keys after Sessions:\n got %q\nwant %q", got, want)
	}
	if f := c.HGetAll(ctx, p+"us:{alice}").Val(); len(f) != 1 || f["2:rb:s3"] == "" {
		t.Errorf("us:{alice} fields after Sessions = %v, want 2:rb:s3 only", f)
	}
	if f := c.HGetAll(ctx, p+"runs").Val(); len(f) != 1 || f["rb"] != "gw-b" {
		t.Errorf("runs after Sessions = %v", f)
	}

	// A graceful stop leaves nothing of the run.
	if err := s.StopNode(ctx, "gw-b", "rb"); err != nil {
		t.Fatal(err)
	}
	if got := keys(); len(got) != 0 {
		t.Fatalf("keys after StopNode: %q", got)
	}
}

// TestRedisSessionCorrupt checks a damaged session entry is an error naming
// it, not a panic or a silently wrong answer.
func TestRedisSessionCorrupt(t *testing.T) {
	s, url, p := newRedisPrefix(t)
	ctx := context.Background()
	opt, _ := redis.ParseURL(url)
	c := redis.NewClient(opt)
	defer c.Close()
	n := state.Node{ID: "gw", Run: "r"}
	if err := s.StartNode(ctx, n, time.Hour); err != nil {
		t.Fatal(err)
	}
	c.HSet(ctx, p+"us:{alice}", "1:r:x", "{not json")
	c.HSet(ctx, p+"ns:{gw}:r", "x", `{"id":"x"}`)
	if _, err := s.UserSessions(ctx, "alice"); err == nil {
		t.Error("UserSessions with a corrupt entry: no error")
	}
	if _, err := s.Sessions(ctx); err == nil {
		t.Error("Sessions with an incomplete entry: no error")
	}
	c.HSet(ctx, p+"node:{gw}", "data", "[")
	if _, err := s.Nodes(ctx); err == nil {
		t.Error("Nodes with a corrupt record: no error")
	}
}

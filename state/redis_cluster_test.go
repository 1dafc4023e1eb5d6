package state_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lempgw/lempgw/internal/testenv"
	"github.com/lempgw/lempgw/state"
	"github.com/lempgw/lempgw/state/statetest"
)

// newClusterStore opens a store on the cluster under a key prefix of its own.
func newClusterStore(t testing.TB, url string) *state.Redis {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := state.NewRedis(ctx, state.RedisConfig{URL: url, KeyPrefix: testenv.UniquePrefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestRedisCluster runs the conformance suite against a real 3-master Redis
// Cluster: every script and transaction must stay in one slot, or the
// server answers CROSSSLOT and the suite fails.
func TestRedisCluster(t *testing.T) {
	c := testenv.StartRedisCluster(t)
	t.Run("Conformance", func(t *testing.T) {
		statetest.Run(t, func(t *testing.T) state.Store {
			s := newClusterStore(t, c.URL)
			if !s.Cluster() {
				t.Fatalf("store on %s is not in cluster mode", c.URL)
			}
			return s
		})
	})
	t.Run("KeysSpreadAndTagged", func(t *testing.T) { testClusterKeys(t, c) })
	t.Run("PartialFanOut", func(t *testing.T) { testClusterPartialFanOut(t, c) })
	t.Run("GroupIndexConcurrent", func(t *testing.T) { testClusterGroupIndex(t, c) })
	t.Run("ClusterFlag", func(t *testing.T) {
		// A redis:// URL with Cluster set: the host is the seed.
		ctx := t.Context()
		s, err := state.NewRedis(ctx, state.RedisConfig{URL: "redis://" + c.Addrs[2], Cluster: true, KeyPrefix: testenv.UniquePrefix(t)})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if !s.Cluster() {
			t.Fatal("Cluster: true did not select cluster mode")
		}
		if _, err := s.Deliver(ctx, state.Delivery{Targets: []state.Target{
			{Receiver: "a", Item: state.Item{MsgID: "m", Payload: []byte("x")}},
			{Receiver: "b", Item: state.Item{MsgID: "m", Payload: []byte("x")}},
			{Receiver: "c", Item: state.Item{MsgID: "m", Payload: []byte("x")}},
		}}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("SeedList", func(t *testing.T) {
		// One seed is enough: go-redis finds the other masters.
		s := newClusterStore(t, "redis+cluster://"+c.Addrs[1])
		ctx := t.Context()
		for i := range 20 {
			if err := s.CreateUser(ctx, state.User{Name: fmt.Sprintf("u%d", i)}); err != nil {
				t.Fatal(err)
			}
		}
		us, err := s.ListUsers(ctx)
		if err != nil || len(us) != 20 {
			t.Fatalf("ListUsers: %d users, %v; want 20", len(us), err)
		}
	})
}

// clusterClient is a plain go-redis cluster client on c, to look at keys.
func clusterClient(t testing.TB, c *testenv.RedisCluster) *redis.ClusterClient {
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs})
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// testClusterKeys checks that a user's keys share a slot, that a group
// message's receivers are spread over several masters (so the fan-out
// really crosses slots), and that names with braces and an empty name get
// tags of their own.
func testClusterKeys(t *testing.T, c *testenv.RedisCluster) {
	ctx := t.Context()
	s := newClusterStore(t, c.URL)
	cc := clusterClient(t, c)
	users := []string{"alice", "bob", "carol", "dave", "erin", "frank", "x{y}", "}", "{", ""}
	var targets []state.Target
	for _, u := range users {
		targets = append(targets, state.Target{Receiver: u, Item: state.Item{From: "owner", MsgID: "g1", Payload: []byte("p")}})
	}
	dup, err := s.Deliver(ctx, state.Delivery{DedupeKey: "k1", IndexTTL: time.Hour, Targets: targets,
		History: &state.HistoryEntry{Group: "grp", Payload: []byte("p")}})
	if err != nil || dup {
		t.Fatalf("Deliver: dup %v, %v", dup, err)
	}
	masters := map[string]bool{}
	var mu = make(chan struct{}, 1)
	mu <- struct{}{}
	err = cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		keys, err := m.Keys(ctx, "*").Result()
		if err != nil {
			return err
		}
		<-mu
		defer func() { mu <- struct{}{} }()
		for _, k := range keys {
			if strings.Contains(k, ":q:") {
				masters[m.Options().Addr] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(masters) < 2 {
		t.Fatalf("the %d queues are on %d master(s), want them spread", len(users), len(masters))
	}
	for _, u := range users {
		items, err := s.Pending(ctx, u, 0, 0)
		if err != nil || len(items) != 1 {
			t.Fatalf("Pending(%q): %d items, %v", u, len(items), err)
		}
		if from, err := s.Ack(ctx, u, "g1"); err != nil || from != "owner" {
			t.Fatalf("Ack(%q): %q, %v", u, from, err)
		}
	}
	// The same key again: a duplicate, nothing written anywhere.
	if dup, err := s.Deliver(ctx, state.Delivery{DedupeKey: "k1", Targets: targets}); err != nil || !dup {
		t.Fatalf("second Deliver: dup %v, %v; want a duplicate", dup, err)
	}
	for _, u := range users {
		if n, err := s.QueueLen(ctx, u); err != nil || n != 0 {
			t.Fatalf("QueueLen(%q) = %d, %v after a duplicate", u, n, err)
		}
	}
}

// testClusterPartialFanOut makes a fan-out fail after some receivers got
// their item, then retries it: every receiver ends with exactly one item.
// The failure is carol's master refusing writes (maxmemory 1 byte: a
// writing script is refused before it runs, like a step that never reached
// its master), while the other masters accept their steps.
func testClusterPartialFanOut(t *testing.T, c *testenv.RedisCluster) {
	ctx := t.Context()
	prefix := testenv.UniquePrefix(t)
	s, err := state.NewRedis(ctx, state.RedisConfig{URL: c.URL, KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cc := clusterClient(t, c)
	carolQ := prefix + "q:{carol}"
	carolMaster, err := cc.MasterForKey(ctx, carolQ)
	if err != nil {
		t.Fatal(err)
	}
	// Receivers on carol's master and on the others.
	var users []string
	others := 0
	for i := 0; len(users) < 8 || others < 3; i++ {
		u := fmt.Sprintf("user%d", i)
		m, err := cc.MasterForKey(ctx, prefix+"q:{"+u+"}")
		if err != nil {
			t.Fatal(err)
		}
		if m.Options().Addr != carolMaster.Options().Addr {
			others++
		}
		users = append(users, u)
	}
	users = append(users, "carol")
	d := state.Delivery{DedupeKey: "m\x00owner\x00g7", DedupeTTL: time.Hour, IndexTTL: time.Hour, History: &state.HistoryEntry{Group: "grp", Payload: []byte("g7")}}
	for _, u := range users {
		d.Targets = append(d.Targets, state.Target{Receiver: u, Item: state.Item{From: "owner", MsgID: "g7", Payload: []byte("p")}})
	}
	if err := carolMaster.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	_, err = s.Deliver(ctx, d)
	if err := carolMaster.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if err == nil || !strings.Contains(err.Error(), "OOM") {
		t.Fatalf("Deliver with carol's master out of memory: %v, want an OOM error", err)
	}
	if n, err := cc.Exists(ctx, prefix+"dd:"+d.DedupeKey).Result(); err != nil || n != 0 {
		t.Fatalf("delivery-wide marker written after a failed step: %d, %v", n, err)
	}
	written := 0
	for _, u := range users {
		if n, _ := s.QueueLen(ctx, u); n == 1 {
			written++
		}
	}
	if written != others {
		t.Fatalf("%d receivers got the item before the retry, want the %d on the other masters", written, others)
	}
	// The retry writes only the steps of carol's master.
	dup, err := s.Deliver(ctx, d)
	if err != nil || dup {
		t.Fatalf("retry: dup %v, %v", dup, err)
	}
	for _, u := range users {
		items, err := s.Pending(ctx, u, 0, 0)
		if err != nil || len(items) != 1 {
			t.Fatalf("%s has %d items after the retry (%v), want exactly 1", u, len(items), err)
		}
	}
	h, err := s.History(ctx, "grp", 0)
	if err != nil || len(h) != 1 {
		t.Fatalf("history has %d entries (%v), want 1", len(h), err)
	}
	// A third attempt is a duplicate as a whole.
	if dup, err := s.Deliver(ctx, d); err != nil || !dup {
		t.Fatalf("third Deliver: dup %v, %v; want a duplicate", dup, err)
	}
}

// BenchmarkClusterDeliver compares Deliver on a single Redis and on the
// 3-master cluster: a 1:1 message, and a group message to 50 members with a
// history entry.
func BenchmarkClusterDeliver(b *testing.B) {
	c := testenv.StartRedisCluster(b)
	stores := map[string]func(b *testing.B) state.Store{
		"redis":   func(b *testing.B) state.Store { return newRedis(b) },
		"cluster": func(b *testing.B) state.Store { return newClusterStore(b, c.URL) },
	}
	for _, fan := range []int{1, 50} {
		for _, name := range []string{"redis", "cluster"} {
			b.Run(fmt.Sprintf("%s/to=%d", name, fan), func(b *testing.B) {
				s := stores[name](b)
				ctx := context.Background()
				i := 0
				for b.Loop() {
					id := fmt.Sprint(i)
					i++
					d := state.Delivery{DedupeKey: "m\x00alice\x00" + id, DedupeTTL: 10 * time.Minute, IndexTTL: time.Hour}
					for k := range fan {
						d.Targets = append(d.Targets, state.Target{Receiver: fmt.Sprintf("member%d", k), Item: state.Item{From: "alice", MsgID: id, Payload: payload}})
					}
					if fan > 1 {
						d.History = &state.HistoryEntry{Group: "grp", Payload: payload}
					}
					if _, err := s.Deliver(ctx, d); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// testClusterGroupIndex: concurrent UpdateGroups that add and remove the
// same members (whose ug: sets are in other slots than the group) leave
// every member the final record names with the id in its ug: set (checked
// on the raw set: never one too few), and UserGroups lists the group for
// exactly those members.
func testClusterGroupIndex(t *testing.T, c *testenv.RedisCluster) {
	ctx := t.Context()
	prefix := testenv.UniquePrefix(t)
	s, err := state.NewRedis(ctx, state.RedisConfig{URL: c.URL, KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cc := clusterClient(t, c)
	members := []string{"m0", "m1", "m2", "m3", "m4", "m5"}
	if err := s.CreateGroup(ctx, state.Group{ID: "g", Kind: state.KindGroup, Owner: "own", Members: []string{"own"}}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(w), 7))
			for range 25 {
				m := members[rnd.IntN(len(members))]
				add := rnd.IntN(2) == 0
				_, err := s.UpdateGroup(ctx, "g", func(g *state.Group) error {
					g.Members = slices.DeleteFunc(g.Members, func(x string) bool { return x == m })
					if add {
						g.Members = append(g.Members, m)
					}
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	g, err := s.GetGroup(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range append(members, "own") {
		in := slices.Contains(g.Members, m)
		raw, err := cc.SIsMember(ctx, prefix+"ug:{"+m+"}", "g").Result()
		if err != nil {
			t.Fatal(err)
		}
		if in && !raw {
			t.Errorf("%s is a member but ug:{%s} lacks the group", m, m)
		}
		ids, err := s.UserGroups(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		if got := slices.Contains(ids, "g"); got != in {
			t.Errorf("UserGroups(%s) lists g: %v, member: %v", m, got, in)
		}
	}
	t.Logf("final members %v", g.Members)
}

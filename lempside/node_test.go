package lempside_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/lempgw/lempgw/internal/testenv"
	"github.com/lempgw/lempgw/lempside"
	"github.com/lempgw/lempgw/state"
)

// Several nodes on one real Redis, in one process: each node is a whole
// gateway (server, core, hub) with a store client of its own on the same
// key prefix, its own entry in the session registry and its own wake-up
// channel. cmd/lempgw/multinode_test.go does the same with processes.

// nodeOpts configure one node of startNodes.
type nodeOpts struct {
	cluster   lempside.ClusterConfig
	heartbeat time.Duration // default 100ms
}

// startNodes starts one node per opts on one Redis key prefix; node i has
// the id "n<i+1>".
func startNodes(t *testing.T, opts ...nodeOpts) []*gateway {
	t.Helper()
	url, prefix := testenv.RedisURL(t), testenv.UniquePrefix(t)
	var gs []*gateway
	for i, o := range opts {
		st, err := state.NewRedis(context.Background(), state.RedisConfig{URL: url, KeyPrefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		g := startGateway(t, st, lempside.Config{})
		if o.heartbeat == 0 {
			o.heartbeat = 100 * time.Millisecond
		}
		id := fmt.Sprintf("n%d", i+1)
		err = g.Hub.StartRegistry(context.Background(), lempside.RegistryConfig{
			Store: st, Node: state.Node{ID: id, Listen: g.URL}, Heartbeat: o.heartbeat, TTL: 20 * o.heartbeat,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Hub.StartCluster(context.Background(), o.cluster); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			g.Hub.StopCluster()
			_ = g.Hub.StopRegistry(context.Background())
		})
		gs = append(gs, g)
	}
	return gs
}

// until reads c's frames until one matches want (as expect does), skipping
// the others, and returns when it came.
func (c *client) until(want string) time.Time {
	c.t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case b, ok := <-c.frames:
			if !ok {
				c.t.Fatalf("closed while waiting for %s", want)
			}
			if frameMatches(b, want) {
				return time.Now()
			}
		case <-deadline:
			c.t.Fatalf("no %s within %v", want, wait)
		}
	}
}

// TestClusterLiveDelivery: users on two nodes message each other live,
// receipts included. The poll period is 30s, so each delivery within a
// second was woken by the other node's wake-up. A p "0" message reaches a
// receiver online on the other node (Online is cluster-wide) and is not
// kept for one offline everywhere.
func TestClusterLiveDelivery(t *testing.T) {
	const poll = 30 * time.Second
	ns := startNodes(t, nodeOpts{cluster: lempside.ClusterConfig{Poll: poll}}, nodeOpts{cluster: lempside.ClusterConfig{Poll: poll}})
	ns[0].users(t, "alice", "bob", "carol")
	a, b := ns[0].login(t, "alice"), ns[1].login(t, "bob")

	var lat []time.Duration
	for i := range 20 {
		id := fmt.Sprintf("m%d", i)
		sent := time.Now()
		a.send(`{"m":{"id":"` + id + `","r":"bob","t":"t","c":"hi"}}`)
		got := b.until(`{"m":{"id":"` + id + `","s":"alice","r":"bob","t":"t","c":"hi","st":"*","p":"1","sc":"1","pc":"1"}}`)
		lat = append(lat, got.Sub(sent))
		a.until(sr(id, "alice"))
		// bob's delivered receipt crosses back to alice's node.
		b.send(`{"m":{"id":"d` + id + `","dm":{"id":"` + id + `"}}}`)
		a.until(`{"m":{"id":"d` + id + `","s":"bob","r":"alice","st":"*","dm":{"id":"` + id + `"}}}`)
	}
	slices.Sort(lat)
	t.Logf("alice (n1) -> bob (n2), 20 messages: median %v, max %v (poll period %v)", lat[len(lat)/2], lat[len(lat)-1], poll)
	if lat[len(lat)-1] > 2*time.Second {
		t.Fatalf("a cross-node delivery took %v: not woken", lat[len(lat)-1])
	}

	// p "0": delivered to bob, online on n2; not queued for carol, offline.
	a.send(`{"m":{"id":"e1","r":"bob","t":"t","c":"now or never","p":"0"}}`)
	a.until(sr("e1", "alice"))
	b.until(`{"m":{"id":"e1","s":"alice","r":"bob","t":"t","c":"now or never","st":"*","p":"0","sc":"1","pc":"1"}}`)
	a.send(`{"m":{"id":"e2","r":"carol","t":"t","c":"now or never","p":"0"}}`)
	a.until(sr("e2", "alice"))
	if n, err := ns[0].Store.QueueLen(context.Background(), "carol"); err != nil || n != 0 {
		t.Fatalf("carol's queue after a p \"0\" message while she was offline: %d, %v", n, err)
	}

	// Offline across nodes: queued on n1, delivered at her login on n2.
	a.send(`{"m":{"id":"o1","r":"carol","t":"t","c":"later"}}`)
	a.until(sr("o1", "alice"))
	c := ns[1].login(t, "carol")
	c.until(`{"m":{"id":"o1","s":"alice","r":"carol","t":"t","c":"later","st":"*","p":"1","sc":"1","pc":"1"}}`)
}

// TestClusterLostWake: a node that is not subscribed to its wake-ups (every
// hint lost) still delivers, within its poll period; with no poll either,
// nothing arrives (the poll is what delivered).
func TestClusterLostWake(t *testing.T) {
	const poll = 400 * time.Millisecond
	ns := startNodes(t,
		nodeOpts{},
		nodeOpts{cluster: lempside.ClusterConfig{NoWakes: true, Poll: poll}},
		nodeOpts{cluster: lempside.ClusterConfig{NoWakes: true, Poll: -1}})
	ns[0].users(t, "alice", "bob", "carol")
	a, b, c := ns[0].login(t, "alice"), ns[1].login(t, "bob"), ns[2].login(t, "carol")

	var worst time.Duration
	for i := range 5 {
		id := fmt.Sprintf("m%d", i)
		sent := time.Now()
		a.send(`{"m":{"id":"` + id + `","r":"bob","t":"t","c":"hi"}}`)
		d := b.until(`{"m":{"id":"` + id + `","s":"alice","r":"bob","t":"t","c":"hi","st":"*","p":"1","sc":"1","pc":"1"}}`).Sub(sent)
		worst = max(worst, d)
		time.Sleep(poll / 3) // land at different points of the poll period
	}
	t.Logf("bob's node lost every wake-up: the worst of 5 deliveries took %v (poll period %v)", worst, poll)
	if worst > poll+time.Second {
		t.Fatalf("a delivery without wake-up took %v, poll period %v", worst, poll)
	}

	a.send(`{"m":{"id":"x1","r":"carol","t":"t","c":"hi"}}`)
	a.until(sr("x1", "alice"))
	c.quiet(3 * poll)
	// The item is queued all the same: her next login gets it.
	c.ws.Close()
	c = ns[2].login(t, "carol")
	c.until(`{"m":{"id":"x1","s":"alice","r":"carol","t":"t","c":"hi","st":"*","p":"1","sc":"1","pc":"1"}}`)
}

// TestClusterPresence: li and lo pushes reach followers on other nodes,
// and a login hears of followings online on other nodes.
func TestClusterPresence(t *testing.T) {
	ns := startNodes(t, nodeOpts{}, nodeOpts{})
	ns[0].users(t, "alice", "bob")
	a := ns[0].login(t, "alice")
	a.ok("f1", `"af":[{"u":"bob"}]`)
	b := ns[1].dial(t)
	b.send(`{"rq":{"id":"l","a":{"i":"bob","t":"bob-token"}}}`)
	b.until(`{"rp":{"id":"l","response":1}}`)
	a.until(`{"i":{"li":"bob"}}`)
	b.ok("f2", `"af":[{"u":"alice"}]`)
	b.ws.Close()
	a.until(`{"i":{"lo":"bob"}}`)
	// At bob's next login, alice (on n1) is among his online followings.
	b = ns[1].dial(t)
	b.send(`{"rq":{"id":"l2","a":{"i":"bob","t":"bob-token"}}}`)
	b.until(`{"rp":{"id":"l2","response":1}}`)
	b.until(`{"i":{"li":"alice"}}`)
	a.until(`{"i":{"li":"bob"}}`)
	// Her state request answers 0: online, on another node.
	a.rq("s1", `"s":{"u":"bob"}`)
	a.until(`{"rp":{"id":"s1","s":{"u":"bob","v":0}}}`)
}

// TestClusterNewerLoginWins: a login on one node closes the user's older
// session on another with 4409, at once (the login's wake-up), and without
// an lo push to the followers (the user is still online). When the older
// node lost the wake-up, its next heartbeat closes the session (the newer
// login removed it from the registry).
func TestClusterNewerLoginWins(t *testing.T) {
	ns := startNodes(t, nodeOpts{}, nodeOpts{}, nodeOpts{cluster: lempside.ClusterConfig{NoWakes: true}, heartbeat: 200 * time.Millisecond})
	ns[0].users(t, "alice", "bob")
	ctx := context.Background()
	a := ns[0].login(t, "alice")
	a.ok("f1", `"af":[{"u":"bob"}]`)
	sessions := func() []string {
		ss, err := ns[0].Store.UserSessions(ctx, "bob")
		if err != nil {
			t.Fatal(err)
		}
		var nodes []string
		for _, s := range ss {
			nodes = append(nodes, s.Node)
		}
		return nodes
	}

	b1 := ns[0].login(t, "bob")
	a.until(`{"i":{"li":"bob"}}`)
	start := time.Now()
	b2 := ns[1].login(t, "bob")
	b1.expectClose(4409)
	t.Logf("bob's session on n1 closed %v after his login on n2", time.Since(start).Round(time.Millisecond))
	a.until(`{"i":{"li":"bob"}}`) // the new login's
	a.quiet(3 * short)            // no lo: bob is online
	if got := sessions(); !slices.Equal(got, []string{"n2"}) {
		t.Fatalf("bob's sessions after his login on n2: %v", got)
	}

	// Back to n1: n2's session goes.
	b1 = ns[0].login(t, "bob")
	b2.expectClose(4409)
	a.until(`{"i":{"li":"bob"}}`)

	// n3 hears no wake-ups: its heartbeat finds its session gone.
	b3 := ns[2].login(t, "bob")
	b1.expectClose(4409) // n1 hears n3's login
	a.until(`{"i":{"li":"bob"}}`)
	start = time.Now()
	b2 = ns[1].login(t, "bob")
	b3.expectClose(4409)
	t.Logf("without wake-ups, bob's session on n3 closed %v after his login on n2 (n3's heartbeat: 200ms)", time.Since(start).Round(time.Millisecond))
	a.until(`{"i":{"li":"bob"}}`)
	a.quiet(3 * short)
	if got := sessions(); !slices.Equal(got, []string{"n2"}) {
		t.Fatalf("bob's sessions at the end: %v", got)
	}
	b2.knock("k") // the newest session works
}

// TestClusterConcurrentLogins: logins of one user on three nodes at once
// leave exactly one session, the newest by (start, id), whichever node
// heard of which first.
func TestClusterConcurrentLogins(t *testing.T) {
	ns := startNodes(t, nodeOpts{}, nodeOpts{}, nodeOpts{})
	ns[0].users(t, "bob")
	for round := range 4 {
		cs := make([]*client, len(ns))
		for i, g := range ns {
			cs[i] = g.dial(t)
		}
		for i := range cs {
			go cs[i].ws.WriteMessage(1, []byte(`{"rq":{"id":"l","a":{"i":"bob","t":"bob-token"}}}`))
		}
		// Each login is answered, or closed at once for a newer one.
		closed := make([]bool, len(cs))
		for i, c := range cs {
			select {
			case b, ok := <-c.frames:
				if !ok { // closed: the error is in c.closed
					<-c.closed
					closed[i] = true
					continue
				}
				if !frameMatches(b, `{"rp":{"id":"l","response":1}}`) {
					t.Fatalf("round %d: n%d answered %s", round, i+1, b)
				}
			case <-c.closed:
				closed[i] = true
			case <-time.After(wait):
				t.Fatalf("round %d: no answer to the login on n%d", round, i+1)
			}
		}
		deadline := time.Now().Add(wait)
		var left []string
		for {
			ss, err := ns[0].Store.UserSessions(context.Background(), "bob")
			if err != nil {
				t.Fatal(err)
			}
			left = left[:0]
			for _, s := range ss {
				left = append(left, s.Node)
			}
			if len(ss) == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: bob's sessions %v after concurrent logins", round, left)
			}
			time.Sleep(20 * time.Millisecond)
		}
		// Every other session is closed, and that one is not.
		var open int
		for i, c := range cs {
			if closed[i] {
				continue
			}
			select {
			case <-c.closed:
			case <-time.After(time.Second):
				if fmt.Sprintf("n%d", i+1) != left[0] {
					t.Fatalf("round %d: the session on n%d is still open; the registry keeps %v", round, i+1, left)
				}
				open++
			}
		}
		if open != 1 {
			t.Fatalf("round %d: %d sessions open", round, open)
		}
		for _, c := range cs {
			c.ws.Close()
		}
	}
}

// TestClusterDisconnect: deleting an account closes its session on another
// node with 4404.
func TestClusterDisconnect(t *testing.T) {
	ns := startNodes(t, nodeOpts{}, nodeOpts{})
	ns[0].user(t, "root", true)
	ns[0].users(t, "bob")
	root := ns[0].login(t, "root")
	b := ns[1].login(t, "bob")
	root.ok("a1", `"ad":{"c":"del","i":"bob"}`)
	b.expectClose(4404)
}

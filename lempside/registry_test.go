package lempside_test

import (
	"context"
	"testing"
	"time"

	"github.com/lempgw/lempgw/lempside"
	"github.com/lempgw/lempgw/state"
)

// eventually polls cond every 10ms for up to wait.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", wait, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSessionRegistry checks the hub keeps the store's session registry in
// step with its sessions: what was online before StartRegistry, logins, a
// takeover on the same node, disconnects, a lost node record (the hub
// records itself again under a new run) and StopRegistry.
func TestSessionRegistry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, g *gateway) {
		ctx := context.Background()
		st := g.Store
		g.users(t, "alice", "bob")
		bob := g.login(t, "bob") // before the registry starts

		before := time.Now().UnixMilli()
		err := g.Hub.StartRegistry(ctx, lempside.RegistryConfig{
			Store: st, Node: state.Node{ID: "gw-test", Version: "v9", Listen: g.URL},
			Heartbeat: 50 * time.Millisecond, TTL: 2 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = g.Hub.StopRegistry(context.Background()) })
		if err := g.Hub.StartRegistry(ctx, lempside.RegistryConfig{Store: st, Node: state.Node{ID: "x"}}); err == nil {
			t.Error("a second StartRegistry succeeded")
		}

		nodes, err := st.Nodes(ctx)
		if err != nil || len(nodes) != 1 {
			t.Fatalf("Nodes = %+v, %v", nodes, err)
		}
		n := nodes[0]
		if n.ID != "gw-test" || n.Version != "v9" || n.Listen != g.URL || n.Run == "" || n.Started < before || n.LastBeat < n.Started {
			t.Fatalf("node record %+v", n)
		}
		userSessions := func(user string) []state.Session {
			t.Helper()
			ss, err := st.UserSessions(ctx, user)
			if err != nil {
				t.Fatal(err)
			}
			return ss
		}
		if ss := userSessions("bob"); len(ss) != 1 || ss[0].Node != "gw-test" || ss[0].Run != n.Run || ss[0].Remote != bob.ws.LocalAddr().String() {
			t.Fatalf("bob's sessions after StartRegistry: %+v (client at %s)", ss, bob.ws.LocalAddr())
		}

		// A login is recorded before its response.
		alice := g.login(t, "alice")
		ss := userSessions("alice")
		if len(ss) != 1 || ss[0].Remote != alice.ws.LocalAddr().String() || ss[0].Started < before || ss[0].Run != n.Run {
			t.Fatalf("alice's sessions after login: %+v", ss)
		}
		first := ss[0]

		// A second login on this node replaces the first, in the registry too.
		alice2 := g.login(t, "alice")
		alice.expectClose(4409)
		ss = userSessions("alice")
		if len(ss) != 1 || ss[0].ID == first.ID || ss[0].Remote != alice2.ws.LocalAddr().String() {
			t.Fatalf("alice's sessions after a second login: %+v (first %+v)", ss, first)
		}

		// A disconnect removes the session.
		_ = alice2.ws.Close()
		eventually(t, "alice's session removed after her disconnect", func() bool { return len(userSessions("alice")) == 0 })

		// The node's record is lost (as when the store was unreachable
		// for longer than the TTL): the next heartbeat records the node
		// and bob again, under a new run.
		if err := st.StopNode(ctx, "gw-test", n.Run); err != nil {
			t.Fatal(err)
		}
		eventually(t, "bob recorded again under a new run", func() bool {
			ss := userSessions("bob")
			return len(ss) == 1 && ss[0].Run != n.Run
		})
		nodes, err = st.Nodes(ctx)
		if err != nil || len(nodes) != 1 || nodes[0].Run == n.Run {
			t.Fatalf("Nodes after the record was lost = %+v, %v", nodes, err)
		}
		// ...and logins go on under the new run.
		g.login(t, "alice")
		if ss := userSessions("alice"); len(ss) != 1 || ss[0].Run != nodes[0].Run {
			t.Fatalf("alice's sessions in the new run: %+v (node %+v)", ss, nodes[0])
		}

		// The heartbeat renews the record.
		beat := nodes[0].LastBeat
		eventually(t, "a heartbeat", func() bool {
			ns, err := st.Nodes(ctx)
			return err == nil && len(ns) == 1 && ns[0].LastBeat > beat
		})

		// StopRegistry removes the node and its sessions.
		if err := g.Hub.StopRegistry(ctx); err != nil {
			t.Fatal(err)
		}
		if err := g.Hub.StopRegistry(ctx); err != nil {
			t.Fatal(err)
		}
		if ns, err := st.Nodes(ctx); err != nil || len(ns) != 0 {
			t.Fatalf("Nodes after StopRegistry = %+v, %v", ns, err)
		}
		if ss, err := st.Sessions(ctx); err != nil || len(ss) != 0 {
			t.Fatalf("Sessions after StopRegistry = %+v, %v", ss, err)
		}
	})
}

// TestSessionRegistryConfig checks StartRegistry refuses what it can not run.
func TestSessionRegistryConfig(t *testing.T) {
	h := lempside.NewHub()
	st := state.NewMemory()
	for _, cfg := range []lempside.RegistryConfig{
		{Node: state.Node{ID: "gw"}},
		{Store: st},
		{Store: st, Node: state.Node{ID: "gw"}, Heartbeat: time.Second, TTL: time.Second},
	} {
		if err := h.StartRegistry(context.Background(), cfg); err == nil {
			t.Errorf("StartRegistry(%+v) succeeded", cfg)
			_ = h.StopRegistry(context.Background())
		}
	}
	if err := h.StopRegistry(context.Background()); err != nil {
		t.Errorf("StopRegistry without StartRegistry: %v", err)
	}
}

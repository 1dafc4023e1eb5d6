package statetest

import (
	"fmt"
	"testing"

	"github.com/lempgw/lempgw/state"
)

// testGroupHistory: a delivery with a History entry appends to the group's
// log in the same write, a duplicate appends nothing, and the log keeps Max.
func testGroupHistory(t *testing.T, s state.Store) {
	ctx := t.Context()
	h, err := s.History(ctx, "g", 10)
	must(t, err)
	if len(h) != 0 {
		t.Fatalf("History of an empty log = %q", h)
	}
	for i := range 5 {
		dup, err := s.Deliver(ctx, state.Delivery{
			DedupeKey: fmt.Sprintf("m\x00alice\x00%d", i),
			Targets:   []state.Target{{Receiver: "bob", Item: state.Item{From: "alice", MsgID: fmt.Sprint(i), Payload: []byte("x")}}},
			History:   &state.HistoryEntry{Group: "g", Payload: []byte(fmt.Sprintf("p%d", i)), Max: 3},
		})
		must(t, err)
		if dup {
			t.Fatalf("delivery %d reported a duplicate", i)
		}
	}
	// A duplicate writes no history.
	dup, err := s.Deliver(ctx, state.Delivery{
		DedupeKey: "m\x00alice\x004",
		History:   &state.HistoryEntry{Group: "g", Payload: []byte("again"), Max: 3},
	})
	must(t, err)
	if !dup {
		t.Fatal("second delivery of a key is not a duplicate")
	}
	// A history entry needs no target (a group whose members are all remote).
	_, err = s.Deliver(ctx, state.Delivery{History: &state.HistoryEntry{Group: "other", Payload: []byte("solo")}})
	must(t, err)

	for _, c := range []struct {
		n    int
		want []string
	}{{0, []string{"p2", "p3", "p4"}}, {2, []string{"p3", "p4"}}, {10, []string{"p2", "p3", "p4"}}} {
		h, err := s.History(ctx, "g", c.n)
		must(t, err)
		got := make([]string, len(h))
		for i, b := range h {
			got[i] = string(b)
		}
		wantStrings(t, got, c.want, fmt.Sprintf("History(g, %d)", c.n))
	}
	h, err = s.History(ctx, "other", 0)
	must(t, err)
	if len(h) != 1 || string(h[0]) != "solo" {
		t.Fatalf("History(other) = %q, want [solo]", h)
	}
	// Changing what History returned does not change the log.
	h[0][0] = 'X'
	h, err = s.History(ctx, "other", 0)
	must(t, err)
	if string(h[0]) != "solo" {
		t.Fatalf("History returned the store's own buffer: now %q", h[0])
	}
}

// testListGroups: live groups and lists, sorted; terminated ones are left out.
func testListGroups(t *testing.T, s state.Store) {
	ctx := t.Context()
	ids, err := s.ListGroups(ctx)
	must(t, err)
	wantStrings(t, ids, nil, "ListGroups of an empty store")
	must(t, s.CreateGroup(ctx, state.Group{ID: "g2", Kind: state.KindGroup, Owner: "alice", Members: []string{"alice"}}))
	must(t, s.CreateGroup(ctx, state.Group{ID: "room@conference.example.org", Kind: state.KindGroup, Owner: "alice", Members: []string{"alice"}}))
	must(t, s.CreateGroup(ctx, state.Group{ID: "b1", Kind: state.KindBroadcast, Owner: "alice"}))
	must(t, s.CreateGroup(ctx, state.Group{ID: "dead", Kind: state.KindGroup, Owner: "alice", Terminated: true}))
	ids, err = s.ListGroups(ctx)
	must(t, err)
	wantStrings(t, ids, []string{"b1", "g2", "room@conference.example.org"}, "ListGroups")
	_, err = s.UpdateGroup(ctx, "g2", func(g *state.Group) error { g.Terminated = true; return nil })
	must(t, err)
	ids, err = s.ListGroups(ctx)
	must(t, err)
	wantStrings(t, ids, []string{"b1", "room@conference.example.org"}, "ListGroups after terminating g2")
}

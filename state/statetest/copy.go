package statetest

import (
	"testing"

	"github.com/lempgw/lempgw/state"
)

// testCopyIsolation checks that the store shares no slice or map with its
// callers, in either direction.
func testCopyIsolation(t *testing.T, s state.Store) {
	ctx := t.Context()

	// Groups: the value passed to CreateGroup, the values GetGroup and
	// UpdateGroup return, and the *Group fn saw.
	in := sampleGroup()
	must(t, s.CreateGroup(ctx, in))
	in.Members[0], in.Admins[0], in.Mutes["bob"] = "x", "x", 1
	got, err := s.GetGroup(ctx, "g1")
	must(t, err)
	wantEqual(t, got, sampleGroup(), "group after mutating CreateGroup's argument")
	got.Members[0], got.Admins[0], got.Mutes["bob"] = "y", "y", 2
	var seen *state.Group
	upd, err := s.UpdateGroup(ctx, "g1", func(g *state.Group) error {
		if g.Members[0] != "alice" || g.Mutes["bob"] != 1700000009999 {
			t.Errorf("UpdateGroup's fn saw a mutated group: %+v", g)
		}
		seen = g
		return nil
	})
	must(t, err)
	seen.Members[1], seen.Mutes["bob"] = "z", 3
	upd.Members[2], upd.Admins[0], upd.Mutes["carol"] = "z", "z", 4
	got, err = s.GetGroup(ctx, "g1")
	must(t, err)
	wantEqual(t, got, sampleGroup(), "group after mutating returned groups")

	// Followings and sets.
	must(t, s.Follow(ctx, "alice", []state.Following{{User: "bob", Nick: "B"}, {User: "carol"}}))
	fs, err := s.Followings(ctx, "alice")
	must(t, err)
	fs[0].Nick = "changed"
	fs, err = s.Followings(ctx, "alice")
	must(t, err)
	wantEqual(t, fs, []state.Following{{User: "bob", Nick: "B"}, {User: "carol"}}, "Followings after mutating a returned slice")
	must(t, s.Block(ctx, "alice", "eve"))
	bl, err := s.BlockList(ctx, "alice")
	must(t, err)
	bl[0] = "changed"
	bl, err = s.BlockList(ctx, "alice")
	must(t, err)
	wantStrings(t, bl, []string{"eve"}, "BlockList after mutating a returned slice")

	// Payloads: the bytes passed to Deliver and those Pending returns.
	payload := []byte("original")
	_, err = s.Deliver(ctx, state.Delivery{IndexTTL: hour, Targets: []state.Target{
		{Receiver: "bob", Item: state.Item{From: "alice", MsgID: "m1", Payload: payload}},
		{Receiver: "carol", Item: state.Item{From: "alice", MsgID: "m1", Payload: payload}},
	}})
	must(t, err)
	copy(payload, "MUTATED!")
	items := pending(t, s, "bob")
	if string(items[0].Payload) != "original" {
		t.Fatalf("payload after mutating Deliver's argument = %q", items[0].Payload)
	}
	copy(items[0].Payload, "MUTATED!")
	for _, u := range []string{"bob", "carol"} {
		if p := pending(t, s, u)[0].Payload; string(p) != "original" {
			t.Fatalf("%s's payload after mutating a returned one = %q", u, p)
		}
	}
}

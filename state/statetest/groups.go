package statetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lempgw/lempgw/state"
)

func sampleGroup() state.Group {
	return state.Group{
		ID: "g1", Kind: state.KindGroup, Name: "Friends", Picture: "g.png", Owner: "alice",
		Created: 1700000000000, Members: []string{"alice", "bob", "carol@example.org"},
		Admins: []string{"alice"}, Mutes: map[string]int64{"bob": 1700000009999},
	}
}

func testGroupCreateGet(t *testing.T, s state.Store) {
	ctx := t.Context()
	g := sampleGroup()
	must(t, s.CreateGroup(ctx, g))
	got, err := s.GetGroup(ctx, "g1")
	must(t, err)
	wantEqual(t, got, g, "GetGroup")

	// One id namespace for groups and broadcast lists.
	err = s.CreateGroup(ctx, state.Group{ID: "g1", Kind: state.KindBroadcast, Owner: "bob"})
	wantErr(t, err, state.ErrExists, "CreateGroup of a taken id")
	got, err = s.GetGroup(ctx, "g1")
	must(t, err)
	wantEqual(t, got, g, "GetGroup after refused CreateGroup")

	b := state.Group{ID: "b1", Kind: state.KindBroadcast, Owner: "alice", Members: []string{"dave"}}
	must(t, s.CreateGroup(ctx, b))
	got, err = s.GetGroup(ctx, "b1")
	must(t, err)
	wantEqual(t, got, b, "GetGroup of a broadcast list")

	_, err = s.GetGroup(ctx, "nope")
	wantErr(t, err, state.ErrNotFound, "GetGroup of an unknown id")
	called := false
	_, err = s.UpdateGroup(ctx, "nope", func(*state.Group) error { called = true; return nil })
	wantErr(t, err, state.ErrNotFound, "UpdateGroup of an unknown id")
	if called {
		t.Fatal("UpdateGroup called fn for an unknown group")
	}
}

func testGroupUpdate(t *testing.T, s state.Store) {
	ctx := t.Context()
	must(t, s.CreateGroup(ctx, sampleGroup()))
	got, err := s.UpdateGroup(ctx, "g1", func(g *state.Group) error {
		g.Name = "Best friends"
		g.Admins = append(g.Admins, "bob")
		delete(g.Mutes, "bob")
		g.ID = "other" // the id is the key: ignored
		return nil
	})
	must(t, err)
	want := sampleGroup()
	want.Name, want.Admins, want.Mutes = "Best friends", []string{"alice", "bob"}, nil
	wantEqual(t, got, want, "UpdateGroup result")
	got, err = s.GetGroup(ctx, "g1")
	must(t, err)
	wantEqual(t, got, want, "GetGroup after UpdateGroup")
	_, err = s.GetGroup(ctx, "other")
	wantErr(t, err, state.ErrNotFound, "GetGroup of the id fn tried to set")

	boom := errors.New("boom")
	_, err = s.UpdateGroup(ctx, "g1", func(g *state.Group) error {
		g.Members = nil
		g.Terminated = true
		return fmt.Errorf("refused: %w", boom)
	})
	wantErr(t, err, boom, "UpdateGroup with failing fn")
	got, err = s.GetGroup(ctx, "g1")
	must(t, err)
	wantEqual(t, got, want, "GetGroup after aborted UpdateGroup")
	ids, err := s.UserGroups(ctx, "bob")
	must(t, err)
	wantStrings(t, ids, []string{"g1"}, "UserGroups after aborted UpdateGroup")
}

func testGroupTombstone(t *testing.T, s state.Store) {
	ctx := t.Context()
	must(t, s.CreateGroup(ctx, sampleGroup()))
	_, err := s.UpdateGroup(ctx, "g1", func(g *state.Group) error { g.Terminated = true; return nil })
	must(t, err)
	got, err := s.GetGroup(ctx, "g1")
	must(t, err)
	if !got.Terminated || got.Owner != "alice" {
		t.Fatalf("GetGroup of a terminated group = %+v", got)
	}
	err = s.CreateGroup(ctx, state.Group{ID: "g1", Kind: state.KindGroup, Owner: "bob", Members: []string{"bob"}})
	wantErr(t, err, state.ErrExists, "CreateGroup over a tombstone")
	for _, u := range []string{"alice", "bob"} {
		ids, err := s.UserGroups(ctx, u)
		must(t, err)
		wantStrings(t, ids, nil, "UserGroups("+u+") after termination")
	}
	// A group created terminated is indexed for nobody.
	must(t, s.CreateGroup(ctx, state.Group{ID: "g2", Kind: state.KindGroup, Owner: "bob", Members: []string{"bob"}, Terminated: true}))
	ids, err := s.UserGroups(ctx, "bob")
	must(t, err)
	wantStrings(t, ids, nil, "UserGroups of a member of a group created terminated")
}

func testGroupUpdateConcurrent(t *testing.T, s state.Store) {
	ctx := t.Context()
	must(t, s.CreateGroup(ctx, state.Group{ID: "g", Kind: state.KindGroup, Owner: "owner", Members: []string{"owner"}}))
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			_, err := s.UpdateGroup(ctx, "g", func(g *state.Group) error {
				time.Sleep(time.Millisecond) // widen the read-modify-write window
				g.Members = append(g.Members, fmt.Sprintf("m%02d", i))
				return nil
			})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	g, err := s.GetGroup(ctx, "g")
	must(t, err)
	if len(g.Members) != n+1 || g.Members[0] != "owner" {
		t.Fatalf("after %d concurrent joins Members = %v (lost updates)", n, g.Members)
	}
	got := slices.Sorted(slices.Values(g.Members[1:]))
	for i := range n {
		m := fmt.Sprintf("m%02d", i)
		if got[i] != m {
			t.Fatalf("Members = %v, missing %s", g.Members, m)
		}
		ids, err := s.UserGroups(ctx, m)
		must(t, err)
		wantStrings(t, ids, []string{"g"}, "UserGroups("+m+")")
	}
}

func testUserGroups(t *testing.T, s state.Store) {
	ctx := t.Context()
	ids, err := s.UserGroups(ctx, "alice")
	must(t, err)
	wantStrings(t, ids, nil, "UserGroups of nobody")
	must(t, s.CreateGroup(ctx, state.Group{ID: "g2", Kind: state.KindGroup, Owner: "alice", Members: []string{"alice", "bob"}}))
	must(t, s.CreateGroup(ctx, state.Group{ID: "g1", Kind: state.KindGroup, Owner: "carol", Members: []string{"carol", "alice"}}))
	must(t, s.CreateGroup(ctx, state.Group{ID: "b1", Kind: state.KindBroadcast, Owner: "alice", Members: []string{"bob", "dave"}}))
	for u, want := range map[string][]string{
		// alice owns b1 without being a member of it: owners are indexed too.
		"alice": {"b1", "g1", "g2"}, "bob": {"b1", "g2"}, "carol": {"g1"}, "dave": {"b1"}, "eve": nil,
	} {
		ids, err := s.UserGroups(ctx, u)
		must(t, err)
		wantStrings(t, ids, want, "UserGroups("+u+")")
	}

	// bob leaves g2, eve joins.
	_, err = s.UpdateGroup(ctx, "g2", func(g *state.Group) error {
		g.Members = []string{"alice", "eve"}
		return nil
	})
	must(t, err)
	for u, want := range map[string][]string{"alice": {"b1", "g1", "g2"}, "bob": {"b1"}, "eve": {"g2"}} {
		ids, err := s.UserGroups(ctx, u)
		must(t, err)
		wantStrings(t, ids, want, "UserGroups("+u+") after membership change")
	}

	// Termination removes g2 from all its members' lists.
	_, err = s.UpdateGroup(ctx, "g2", func(g *state.Group) error { g.Terminated = true; return nil })
	must(t, err)
	for u, want := range map[string][]string{"alice": {"b1", "g1"}, "bob": {"b1"}, "eve": nil} {
		ids, err := s.UserGroups(ctx, u)
		must(t, err)
		wantStrings(t, ids, want, "UserGroups("+u+") after termination")
	}

	// Terminating the broadcast list takes it from its owner's list too.
	_, err = s.UpdateGroup(ctx, "b1", func(g *state.Group) error { g.Terminated = true; g.Members = nil; return nil })
	must(t, err)
	for u, want := range map[string][]string{"alice": {"g1"}, "bob": nil, "dave": nil} {
		ids, err := s.UserGroups(ctx, u)
		must(t, err)
		wantStrings(t, ids, want, "UserGroups("+u+") after the list ended")
	}
}

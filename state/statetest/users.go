package statetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lempgw/lempgw/state"
)

func testUserCreateGet(t *testing.T, s state.Store) {
	ctx := t.Context()
	u := state.User{Name: "alice", TokenHash: "$argon2id$v=19$x", Admin: true, Picture: "p.png",
		Status: "hi", Created: 1700000000000, LastSeen: 1700000000500}
	must(t, s.CreateUser(ctx, u))
	got, err := s.GetUser(ctx, "alice")
	must(t, err)
	wantEqual(t, got, u, "GetUser")

	err = s.CreateUser(ctx, state.User{Name: "alice", TokenHash: "other"})
	wantErr(t, err, state.ErrExists, "CreateUser of a taken name")
	got, err = s.GetUser(ctx, "alice")
	must(t, err)
	wantEqual(t, got, u, "GetUser after refused CreateUser")

	_, err = s.GetUser(ctx, "nobody")
	wantErr(t, err, state.ErrNotFound, "GetUser of an unknown name")
}

func testUserUpdate(t *testing.T, s state.Store) {
	ctx := t.Context()
	must(t, s.CreateUser(ctx, state.User{Name: "alice", TokenHash: "h", Created: 1}))

	got, err := s.UpdateUser(ctx, "alice", func(u *state.User) error {
		u.Status = "busy"
		u.LastSeen = 42
		u.Name = "mallory" // the name is the key: ignored
		return nil
	})
	must(t, err)
	want := state.User{Name: "alice", TokenHash: "h", Created: 1, Status: "busy", LastSeen: 42}
	wantEqual(t, got, want, "UpdateUser result")
	got, err = s.GetUser(ctx, "alice")
	must(t, err)
	wantEqual(t, got, want, "GetUser after UpdateUser")
	if _, err := s.GetUser(ctx, "mallory"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("UpdateUser renamed the user: GetUser(mallory) = %v", err)
	}

	boom := errors.New("boom")
	_, err = s.UpdateUser(ctx, "alice", func(u *state.User) error {
		u.Status = "lost"
		return fmt.Errorf("refused: %w", boom)
	})
	wantErr(t, err, boom, "UpdateUser with failing fn")
	got, err = s.GetUser(ctx, "alice")
	must(t, err)
	wantEqual(t, got, want, "GetUser after aborted UpdateUser")

	called := false
	_, err = s.UpdateUser(ctx, "nobody", func(*state.User) error { called = true; return nil })
	wantErr(t, err, state.ErrNotFound, "UpdateUser of an unknown name")
	if called {
		t.Fatal("UpdateUser called fn for an unknown user")
	}
}

func testUserUpdateConcurrent(t *testing.T, s state.Store) {
	ctx := t.Context()
	must(t, s.CreateUser(ctx, state.User{Name: "alice"}))
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := s.UpdateUser(ctx, "alice", func(u *state.User) error {
				time.Sleep(time.Millisecond) // widen the read-modify-write window
				u.LastSeen++
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
	u, err := s.GetUser(ctx, "alice")
	must(t, err)
	if u.LastSeen != n {
		t.Fatalf("after %d concurrent increments LastSeen = %d (lost updates)", n, u.LastSeen)
	}
}

func testUserDelete(t *testing.T, s state.Store) {
	ctx := t.Context()
	for _, n := range []string{"alice", "bob", "carol"} {
		must(t, s.CreateUser(ctx, state.User{Name: n}))
	}
	must(t, s.Follow(ctx, "alice", []state.Following{{User: "bob"}, {User: "carol", Nick: "C"}}))
	must(t, s.Follow(ctx, "bob", []state.Following{{User: "alice"}}))
	must(t, s.Block(ctx, "alice", "mallory"))
	_, err := s.Deliver(ctx, state.Delivery{IndexTTL: hour, Targets: []state.Target{
		{Receiver: "alice", Item: state.Item{From: "bob", MsgID: "m1", Payload: []byte("x")}},
	}})
	must(t, err)
	before := pendingSeqs(t, s, "alice")

	must(t, s.DeleteUser(ctx, "alice"))
	_, err = s.GetUser(ctx, "alice")
	wantErr(t, err, state.ErrNotFound, "GetUser after DeleteUser")
	us, err := s.ListUsers(ctx)
	must(t, err)
	wantStrings(t, userNames(us), []string{"bob", "carol"}, "ListUsers after DeleteUser")
	fs, err := s.Followings(ctx, "alice")
	must(t, err)
	if len(fs) != 0 {
		t.Fatalf("Followings of a deleted user = %v", fs)
	}
	for _, f := range []string{"bob", "carol"} {
		fr, err := s.Followers(ctx, f)
		must(t, err)
		wantStrings(t, fr, nil, "Followers("+f+") after its follower was deleted")
	}
	// bob still follows alice: the mirror stays in step with bob's followings.
	fr, err := s.Followers(ctx, "alice")
	must(t, err)
	wantStrings(t, fr, []string{"bob"}, "Followers(alice) after DeleteUser(alice)")
	bl, err := s.BlockList(ctx, "alice")
	must(t, err)
	wantStrings(t, bl, nil, "BlockList after DeleteUser")
	if n, err := s.QueueLen(ctx, "alice"); err != nil || n != 0 {
		t.Fatalf("QueueLen after DeleteUser = %d, %v", n, err)
	}
	// The index of the items that were queued went with them.
	_, err = s.Ack(ctx, "alice", "m1")
	wantErr(t, err, state.ErrNotFound, "Ack of a deleted user's queued item")
	wantErr(t, s.DeleteUser(ctx, "alice"), state.ErrNotFound, "second DeleteUser")

	// Re-created, the user starts empty and never reuses a seq.
	must(t, s.CreateUser(ctx, state.User{Name: "alice"}))
	fs, err = s.Followings(ctx, "alice")
	must(t, err)
	if len(fs) != 0 {
		t.Fatalf("Followings of a re-created user = %v", fs)
	}
	deliverOne(t, s, "alice", "bob", "m2")
	after := pendingSeqs(t, s, "alice")
	if len(after) != 1 || after[0] <= before[len(before)-1] {
		t.Fatalf("seqs before delete %v, after re-create %v: a seq was reused", before, after)
	}
}

func testListUsers(t *testing.T, s state.Store) {
	ctx := t.Context()
	us, err := s.ListUsers(ctx)
	must(t, err)
	if len(us) != 0 {
		t.Fatalf("ListUsers of an empty store = %v", us)
	}
	for _, n := range []string{"carol", "alice", "dave", "bob"} {
		must(t, s.CreateUser(ctx, state.User{Name: n, Status: "s-" + n}))
	}
	us, err = s.ListUsers(ctx)
	must(t, err)
	wantStrings(t, userNames(us), []string{"alice", "bob", "carol", "dave"}, "ListUsers")
	for _, u := range us {
		if u.Status != "s-"+u.Name {
			t.Fatalf("ListUsers returned %+v", u)
		}
	}
}

func userNames(us []state.User) []string {
	var out []string
	for _, u := range us {
		out = append(out, u.Name)
	}
	return out
}

func testFollowings(t *testing.T, s state.Store) {
	ctx := t.Context()
	fs, err := s.Followings(ctx, "alice")
	must(t, err)
	if len(fs) != 0 {
		t.Fatalf("Followings of nobody = %v", fs)
	}
	must(t, s.Follow(ctx, "alice", nil))
	must(t, s.Follow(ctx, "alice", []state.Following{{User: "dave", Nick: "D"}, {User: "bob"}}))
	must(t, s.Follow(ctx, "alice", []state.Following{{User: "carol", Nick: "C"}, {User: "bob", Nick: "Bobby"}}))
	must(t, s.Follow(ctx, "eve", []state.Following{{User: "bob"}}))
	fs, err = s.Followings(ctx, "alice")
	must(t, err)
	wantEqual(t, fs, []state.Following{{User: "bob", Nick: "Bobby"}, {User: "carol", Nick: "C"}, {User: "dave", Nick: "D"}}, "Followings")
	fr, err := s.Followers(ctx, "bob")
	must(t, err)
	wantStrings(t, fr, []string{"alice", "eve"}, "Followers(bob)")

	must(t, s.Unfollow(ctx, "alice", []string{"bob", "nobody"}))
	must(t, s.Unfollow(ctx, "alice", nil))
	fs, err = s.Followings(ctx, "alice")
	must(t, err)
	wantEqual(t, fs, []state.Following{{User: "carol", Nick: "C"}, {User: "dave", Nick: "D"}}, "Followings after Unfollow")
	fr, err = s.Followers(ctx, "bob")
	must(t, err)
	wantStrings(t, fr, []string{"eve"}, "Followers(bob) after Unfollow")
	fr, err = s.Followers(ctx, "carol")
	must(t, err)
	wantStrings(t, fr, []string{"alice"}, "Followers(carol)")

	must(t, s.Unfollow(ctx, "alice", []string{"carol", "dave"}))
	fs, err = s.Followings(ctx, "alice")
	must(t, err)
	if len(fs) != 0 {
		t.Fatalf("Followings after unfollowing all = %v", fs)
	}
}

func testRenameFollowings(t *testing.T, s state.Store) {
	ctx := t.Context()
	must(t, s.RenameFollowings(ctx, "alice", []state.Following{{User: "bob", Nick: "B"}}))
	fs, err := s.Followings(ctx, "alice")
	must(t, err)
	if len(fs) != 0 {
		t.Fatalf("RenameFollowings created entries: %v", fs)
	}
	must(t, s.Follow(ctx, "alice", []state.Following{{User: "bob", Nick: "b"}, {User: "carol"}}))
	must(t, s.RenameFollowings(ctx, "alice", []state.Following{{User: "bob", Nick: "Bob"}, {User: "dave", Nick: "D"}, {User: "carol", Nick: "Caz"}}))
	must(t, s.RenameFollowings(ctx, "alice", nil))
	fs, err = s.Followings(ctx, "alice")
	must(t, err)
	wantEqual(t, fs, []state.Following{{User: "bob", Nick: "Bob"}, {User: "carol", Nick: "Caz"}}, "Followings after RenameFollowings")
	fr, err := s.Followers(ctx, "dave")
	must(t, err)
	wantStrings(t, fr, nil, "Followers of a renamed-but-not-followed user")
}

func testBlockList(t *testing.T, s state.Store) {
	ctx := t.Context()
	bl, err := s.BlockList(ctx, "alice")
	must(t, err)
	wantStrings(t, bl, nil, "BlockList of nobody")
	for _, b := range []string{"mallory", "eve", "mallory", "bob@example.org"} {
		must(t, s.Block(ctx, "alice", b))
	}
	bl, err = s.BlockList(ctx, "alice")
	must(t, err)
	wantStrings(t, bl, []string{"bob@example.org", "eve", "mallory"}, "BlockList")
	for _, c := range []struct {
		user, target string
		want         bool
	}{{"alice", "eve", true}, {"alice", "bob@example.org", true}, {"eve", "alice", false}, {"alice", "carol", false}} {
		got, err := s.IsBlocked(ctx, c.user, c.target)
		must(t, err)
		if got != c.want {
			t.Fatalf("IsBlocked(%s, %s) = %v, want %v", c.user, c.target, got, c.want)
		}
	}
	must(t, s.Unblock(ctx, "alice", "eve"))
	must(t, s.Unblock(ctx, "alice", "nobody"))
	must(t, s.Unblock(ctx, "nobody", "alice"))
	bl, err = s.BlockList(ctx, "alice")
	must(t, err)
	wantStrings(t, bl, []string{"bob@example.org", "mallory"}, "BlockList after Unblock")
	if got, err := s.IsBlocked(ctx, "alice", "eve"); err != nil || got {
		t.Fatalf("IsBlocked after Unblock = %v, %v", got, err)
	}
}

package statetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lempgw/lempgw/state"
)

// The session registry's tests. Expiry runs on a fake clock when the store
// takes one (SetClock: the memory store), so its boundaries are checked to
// the millisecond; on other stores (Redis, whose TTLs run on the server's
// clock) it runs on the real clock with sessTTL, and a check that must
// happen within a TTL is skipped when the machine was too slow to tell.

const sessTTL = 400 * time.Millisecond

// clockSetter is implemented by stores whose clock a test can set.
type clockSetter interface{ SetClock(now func() time.Time) }

type testClock struct {
	mu   sync.Mutex
	fake bool
	now  time.Time
}

// newClock installs a fake clock on s if it takes one.
func newClock(s state.Store) *testClock {
	c := &testClock{}
	if cs, ok := s.(clockSetter); ok {
		c.fake, c.now = true, time.UnixMilli(1_700_000_000_000)
		cs.SetClock(c.Now)
	}
	return c
}

func (c *testClock) Now() time.Time {
	if !c.fake {
		return time.Now()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) advance(d time.Duration) {
	if !c.fake {
		time.Sleep(d)
		return
	}
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// inTime reports whether less than limit passed since start on the real
// clock, that is, whether a record renewed at start for a longer TTL must
// still be there. It is always true on a fake clock.
func (c *testClock) inTime(t *testing.T, start time.Time, limit time.Duration) bool {
	t.Helper()
	if c.fake {
		return true
	}
	if d := time.Since(start); d >= limit {
		t.Logf("skipping a check within the TTL: %v passed, limit %v", d, limit)
		return false
	}
	return true
}

func node(id, run string, started int64) state.Node {
	return state.Node{ID: id, Run: run, Version: "v1.2.3", Listen: "ws://10.0.0.1:8025/lemp", Ops: "10.0.0.1:9025",
		Started: started, LastBeat: started}
}

func sess(id, user string, n state.Node, started int64) state.Session {
	return state.Session{ID: id, User: user, Node: n.ID, Run: n.Run, Remote: "192.0.2.7:50123", Started: started}
}

func sessionIDs(t *testing.T, ss []state.Session) []string {
	t.Helper()
	ids := make([]string, len(ss))
	for i, s := range ss {
		ids[i] = s.User + "@" + s.Node + "/" + s.ID
	}
	return ids
}

func wantSessions(t *testing.T, s state.Store, want []string, what string) {
	t.Helper()
	got, err := s.Sessions(t.Context())
	must(t, err)
	wantStrings(t, sessionIDs(t, got), want, what)
}

func wantUserSessions(t *testing.T, s state.Store, user string, want []string, what string) {
	t.Helper()
	got, err := s.UserSessions(t.Context(), user)
	must(t, err)
	wantStrings(t, sessionIDs(t, got), want, what)
}

func wantNodes(t *testing.T, s state.Store, want []string, what string) {
	t.Helper()
	ns, err := s.Nodes(t.Context())
	must(t, err)
	ids := make([]string, len(ns))
	for i, n := range ns {
		ids[i] = n.ID + "/" + n.Run
	}
	wantStrings(t, ids, want, what)
}

// testSessionRegistry: nodes and sessions are recorded and listed as they
// were written, in order, and removed one by one.
func testSessionRegistry(t *testing.T, s state.Store) {
	ctx := t.Context()
	wantNodes(t, s, nil, "Nodes of an empty store")
	wantSessions(t, s, nil, "Sessions of an empty store")
	wantUserSessions(t, s, "alice", nil, "UserSessions of an unknown user")

	a, b := node("gw-a", "r1", 1000), node("gw-b", "r2", 2000)
	must(t, s.StartNode(ctx, b, time.Hour))
	must(t, s.StartNode(ctx, a, time.Hour))
	ns, err := s.Nodes(ctx)
	must(t, err)
	wantEqual(t, ns, []state.Node{a, b}, "Nodes")

	alice1, bob := sess("s1", "alice", a, 5000), sess("s2", "bob", a, 4000)
	alice2, carol := sess("s3", "alice", b, 6000), sess("s4", "carol", b, 3000)
	must(t, s.RegisterSession(ctx, alice1, bob))
	must(t, s.RegisterSession(ctx, alice2))
	must(t, s.RegisterSession(ctx, carol))
	must(t, s.RegisterSession(ctx)) // nothing: no error

	all, err := s.Sessions(ctx)
	must(t, err)
	wantEqual(t, all, []state.Session{alice1, alice2, bob, carol}, "Sessions")
	mine, err := s.UserSessions(ctx, "alice")
	must(t, err)
	wantEqual(t, mine, []state.Session{alice1, alice2}, "UserSessions(alice)")

	// Registering again overwrites (a changed remote address).
	alice1.Remote = "[2001:db8::1]:443"
	must(t, s.RegisterSession(ctx, alice1))
	mine, err = s.UserSessions(ctx, "alice")
	must(t, err)
	wantEqual(t, mine, []state.Session{alice1, alice2}, "UserSessions(alice) after a second RegisterSession")

	must(t, s.RemoveSession(ctx, alice1))
	must(t, s.RemoveSession(ctx, alice1)) // missing: no error
	must(t, s.RemoveSession(ctx, sess("nope", "dave", a, 0)))
	wantSessions(t, s, []string{"alice@gw-b/s3", "bob@gw-a/s2", "carol@gw-b/s4"}, "Sessions after RemoveSession")
	wantUserSessions(t, s, "alice", []string{"alice@gw-b/s3"}, "UserSessions(alice) after RemoveSession")
	wantUserSessions(t, s, "bob", []string{"bob@gw-a/s2"}, "UserSessions(bob)")
}

// testSessionNewRun: a newer session of a user is a distinct entry (a
// takeover on another node), and a node started again (new run, same id)
// leaves the sessions of its earlier run dead.
func testSessionNewRun(t *testing.T, s state.Store) {
	ctx := t.Context()
	a1, b := node("gw-a", "run-1", 1000), node("gw-b", "run-b", 1000)
	must(t, s.StartNode(ctx, a1, time.Hour))
	must(t, s.StartNode(ctx, b, time.Hour))
	must(t, s.RegisterSession(ctx, sess("old", "alice", a1, 1), sess("x", "bob", a1, 2)))
	must(t, s.RegisterSession(ctx, sess("new", "alice", b, 3)))
	wantUserSessions(t, s, "alice", []string{"alice@gw-a/old", "alice@gw-b/new"}, "UserSessions(alice) on two nodes")

	a2 := node("gw-a", "run-2", 9000)
	must(t, s.StartNode(ctx, a2, time.Hour))
	// UserSessions first: before a listing of all has cleaned the dead run.
	wantUserSessions(t, s, "alice", []string{"alice@gw-b/new"}, "UserSessions(alice) after a restart of gw-a")
	wantNodes(t, s, []string{"gw-a/run-2", "gw-b/run-b"}, "Nodes after a restart of gw-a")
	wantSessions(t, s, []string{"alice@gw-b/new"}, "Sessions after a restart of gw-a")

	// The old run can neither beat nor register any more.
	alive, err := s.Heartbeat(ctx, a1, time.Hour)
	must(t, err)
	if alive {
		t.Fatal("Heartbeat of a replaced run reported it alive")
	}
	wantErr(t, s.RegisterSession(ctx, sess("late", "carol", a1, 4)), state.ErrNotFound, "RegisterSession on a replaced run")
	wantErr(t, s.RegisterSession(ctx, sess("z", "dave", node("gw-x", "r", 0), 4)), state.ErrNotFound, "RegisterSession on an unknown node")
	wantSessions(t, s, []string{"alice@gw-b/new"}, "Sessions after refused registrations")
	must(t, s.RegisterSession(ctx, sess("again", "bob", a2, 5)))
	wantUserSessions(t, s, "bob", []string{"bob@gw-a/again"}, "UserSessions(bob) on the new run")
}

// testStopNode: StopNode removes the run's record and sessions, and leaves a
// newer run of the same id alone.
func testStopNode(t *testing.T, s state.Store) {
	ctx := t.Context()
	a, b := node("gw-a", "ra", 1), node("gw-b", "rb", 1)
	must(t, s.StartNode(ctx, a, time.Hour))
	must(t, s.StartNode(ctx, b, time.Hour))
	must(t, s.RegisterSession(ctx, sess("1", "alice", a, 1)))
	must(t, s.RegisterSession(ctx, sess("2", "bob", b, 1)))
	must(t, s.StopNode(ctx, "gw-a", "ra"))
	wantNodes(t, s, []string{"gw-b/rb"}, "Nodes after StopNode")
	wantSessions(t, s, []string{"bob@gw-b/2"}, "Sessions after StopNode")
	wantUserSessions(t, s, "alice", nil, "UserSessions(alice) after StopNode")
	must(t, s.StopNode(ctx, "gw-a", "ra"))   // again
	must(t, s.StopNode(ctx, "nobody", "rx")) // unknown
	must(t, s.StopNode(ctx, "gw-b", "old"))  // not the live run: gw-b stays
	wantNodes(t, s, []string{"gw-b/rb"}, "Nodes after StopNode of another run")
	wantSessions(t, s, []string{"bob@gw-b/2"}, "Sessions after StopNode of another run")
}

// testHeartbeat: a heartbeat renews the record and stores its new fields; it
// never creates one.
func testHeartbeat(t *testing.T, s state.Store) {
	ctx := t.Context()
	n := node("gw-a", "r1", 1000)
	alive, err := s.Heartbeat(ctx, n, time.Hour)
	must(t, err)
	if alive {
		t.Fatal("Heartbeat of a node never started reported it alive")
	}
	wantNodes(t, s, nil, "Nodes after a Heartbeat of a node never started")
	must(t, s.StartNode(ctx, n, time.Hour))
	n.LastBeat, n.Listen = 7000, "wss://gw-a.example.org/lemp"
	alive, err = s.Heartbeat(ctx, n, time.Hour)
	must(t, err)
	if !alive {
		t.Fatal("Heartbeat of the live run reported it dead")
	}
	ns, err := s.Nodes(ctx)
	must(t, err)
	wantEqual(t, ns, []state.Node{n}, "Nodes after Heartbeat")
}

// testSessionExpiry: a node's record, and with it every session of its
// run, lives ttl after its last StartNode or Heartbeat, and not longer.
func testSessionExpiry(t *testing.T, s state.Store) {
	ctx := t.Context()
	clk := newClock(s)
	ttl := sessTTL
	a, b := node("gw-a", "ra", 1), node("gw-b", "rb", 1)
	start := time.Now()
	must(t, s.StartNode(ctx, a, ttl))
	must(t, s.StartNode(ctx, b, 10*ttl))
	must(t, s.RegisterSession(ctx, sess("1", "alice", a, 1), sess("2", "bob", a, 2)))
	must(t, s.RegisterSession(ctx, sess("3", "alice", b, 3)))

	clk.advance(ttl / 2)
	beat := time.Now()
	alive, err := s.Heartbeat(ctx, a, ttl)
	must(t, err)
	if clk.inTime(t, start, ttl) && !alive {
		t.Fatal("Heartbeat within the TTL reported the node dead")
	}
	if !alive {
		return // too slow to tell
	}
	clk.advance(ttl/2 + ttl/4) // past the first TTL, within the renewed one
	if clk.fake || time.Since(beat) < ttl*7/8 {
		sessions, err := s.Sessions(ctx)
		must(t, err)
		if clk.inTime(t, beat, ttl) {
			wantStrings(t, sessionIDs(t, sessions), []string{"alice@gw-a/1", "alice@gw-b/3", "bob@gw-a/2"}, "Sessions within the renewed TTL")
		}
	}
	if clk.fake {
		// To the millisecond: the record lives until exactly ttl after the beat.
		clk.advance(ttl/4 - time.Millisecond)
		wantNodes(t, s, []string{"gw-a/ra", "gw-b/rb"}, "Nodes 1ms before the TTL ends")
		clk.advance(time.Millisecond)
	} else {
		clk.advance(ttl)
	}
	// UserSessions first: before a listing of all has cleaned the dead run.
	wantUserSessions(t, s, "alice", []string{"alice@gw-b/3"}, "UserSessions(alice) after the TTL")
	wantUserSessions(t, s, "bob", nil, "UserSessions(bob) after the TTL")
	wantSessions(t, s, []string{"alice@gw-b/3"}, "Sessions after the TTL")
	wantNodes(t, s, []string{"gw-b/rb"}, "Nodes after the TTL")
	alive, err = s.Heartbeat(ctx, a, ttl)
	must(t, err)
	if alive {
		t.Fatal("Heartbeat after the TTL revived the node")
	}
	wantErr(t, s.RegisterSession(ctx, sess("4", "carol", a, 4)), state.ErrNotFound, "RegisterSession after the TTL")

	// The node starts a new run and registers again; the old sessions stay dead.
	a2 := node("gw-a", "ra2", 5)
	must(t, s.StartNode(ctx, a2, time.Hour))
	must(t, s.RegisterSession(ctx, sess("5", "bob", a2, 5)))
	wantSessions(t, s, []string{"alice@gw-b/3", "bob@gw-a/5"}, "Sessions after the new run")
}

// testSessionValidation: incomplete records and mixed runs are refused with
// an error that is not a sentinel, and nothing is written.
func testSessionValidation(t *testing.T, s state.Store) {
	ctx := t.Context()
	a, b := node("gw-a", "ra", 1), node("gw-b", "rb", 1)
	must(t, s.StartNode(ctx, a, time.Hour))
	must(t, s.StartNode(ctx, b, time.Hour))
	for _, bad := range []struct {
		what string
		err  error
	}{
		{"StartNode without id", s.StartNode(ctx, state.Node{Run: "r"}, time.Hour)},
		{"StartNode without run", s.StartNode(ctx, state.Node{ID: "gw-c"}, time.Hour)},
		{"StartNode with ttl 0", s.StartNode(ctx, node("gw-c", "rc", 1), 0)},
		{"RegisterSession without id", s.RegisterSession(ctx, sess("", "alice", a, 1))},
		{"RegisterSession without user", s.RegisterSession(ctx, sess("1", "", a, 1))},
		{"RegisterSession without run", s.RegisterSession(ctx, state.Session{ID: "1", User: "alice", Node: "gw-a"})},
		{"RegisterSession of two runs", s.RegisterSession(ctx, sess("1", "alice", a, 1), sess("2", "bob", b, 1))},
	} {
		if bad.err == nil {
			t.Errorf("%s: no error", bad.what)
		}
		for _, sentinel := range []error{state.ErrNotFound, state.ErrExists} {
			if bad.err != nil && errors.Is(bad.err, sentinel) {
				t.Errorf("%s: error %v is %v", bad.what, bad.err, sentinel)
			}
		}
	}
	_, err := s.Heartbeat(ctx, state.Node{ID: "gw-a"}, time.Hour)
	if err == nil {
		t.Error("Heartbeat without run: no error")
	}
	wantNodes(t, s, []string{"gw-a/ra", "gw-b/rb"}, "Nodes after refused calls")
	wantSessions(t, s, nil, "Sessions after refused calls")
}

// testSessionRoundTrip: names and addresses with separators, hash-tag braces
// and non-ASCII come back as they were, and do not collide.
func testSessionRoundTrip(t *testing.T, s state.Store) {
	ctx := t.Context()
	odd := []string{"a:b", "a}b", "{a}", "}", "a%3Ab", "ü\u00a0x", "a\nb", "a\x00b"}
	var want []state.Session
	for i, id := range odd {
		n := state.Node{ID: id, Run: fmt.Sprintf("run:%d{%s}", i, id), Version: id, Listen: id, Ops: id, Started: int64(i), LastBeat: int64(i)}
		must(t, s.StartNode(ctx, n, time.Hour))
		for j, user := range odd {
			ss := state.Session{ID: fmt.Sprintf("%s:%d", id, j), User: user, Node: n.ID, Run: n.Run, Remote: id + user, Started: int64(100*j + i)}
			must(t, s.RegisterSession(ctx, ss))
			want = append(want, ss)
		}
	}
	// Two (run, id) pairs that a naive "run:id" would make one.
	p, q := node("gw-p", "x:y", 1), node("gw-q", "x", 1)
	must(t, s.StartNode(ctx, p, time.Hour))
	must(t, s.StartNode(ctx, q, time.Hour))
	for _, ss := range []state.Session{sess("z", "alice", p, 1), sess("y:z", "alice", q, 2)} {
		must(t, s.RegisterSession(ctx, ss))
		want = append(want, ss)
	}
	wantUserSessions(t, s, "alice", []string{"alice@gw-p/z", "alice@gw-q/y:z"}, "UserSessions(alice) of look-alike runs")

	got, err := s.Sessions(ctx)
	must(t, err)
	if len(got) != len(want) {
		t.Fatalf("Sessions returned %d sessions, want %d", len(got), len(want))
	}
	byID := map[string]state.Session{}
	for _, ss := range got {
		byID[ss.Run+"\x01"+ss.ID] = ss
	}
	for _, w := range want {
		wantEqual(t, byID[w.Run+"\x01"+w.ID], w, "session "+w.ID)
	}
	for _, user := range odd {
		mine, err := s.UserSessions(ctx, user)
		must(t, err)
		if len(mine) != len(odd) {
			t.Fatalf("UserSessions(%q) returned %d sessions, want %d", user, len(mine), len(odd))
		}
		for _, ss := range mine {
			if ss.User != user {
				t.Fatalf("UserSessions(%q) returned a session of %q", user, ss.User)
			}
		}
	}
}

// testSessionsConcurrent: concurrent registrations and removals on several
// nodes leave exactly the sessions that were not removed.
func testSessionsConcurrent(t *testing.T, s state.Store) {
	ctx := t.Context()
	const nodes, users = 4, 25
	var wg sync.WaitGroup
	errs := make(chan error, nodes)
	for i := range nodes {
		n := node(fmt.Sprintf("gw-%d", i), fmt.Sprintf("r%d", i), 1)
		must(t, s.StartNode(ctx, n, time.Hour))
		wg.Go(func() {
			for u := range users {
				ss := sess(fmt.Sprintf("s%d", u), fmt.Sprintf("u%02d", u), n, int64(i))
				if err := s.RegisterSession(ctx, ss); err != nil {
					errs <- err
					return
				}
				if u%2 == 1 {
					if err := s.RemoveSession(ctx, ss); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	all, err := s.Sessions(ctx)
	must(t, err)
	if len(all) != nodes*(users+1)/2 {
		t.Fatalf("%d sessions after concurrent registrations, want %d", len(all), nodes*(users+1)/2)
	}
	for _, ss := range all {
		var u int
		if _, err := fmt.Sscanf(ss.User, "u%d", &u); err != nil || u%2 == 1 {
			t.Fatalf("unexpected session %+v", ss)
		}
	}
	wantUserSessions(t, s, "u00", []string{"u00@gw-0/s0", "u00@gw-1/s0", "u00@gw-2/s0", "u00@gw-3/s0"}, "UserSessions(u00)")
}

package statetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/lempgw/lempgw/state"
)

// The cross-node wake-ups' tests (Store.Wake, Wakes, RunSessions). They
// share one store; each part uses node ids of its own.
func testWakes(t *testing.T, s state.Store) {
	t.Run("Delivery", func(t *testing.T) { testWakeDelivery(t, s) })
	t.Run("Validation", func(t *testing.T) { testWakeValidation(t, s) })
	t.Run("Stop", func(t *testing.T) { testWakeStop(t, s) })
	t.Run("RunSessions", func(t *testing.T) { testRunSessions(t, s) })
}

// wakeWait bounds the wait for a wake-up that must arrive.
const wakeWait = 5 * time.Second

func subscribe(t *testing.T, s state.Store, node string) <-chan state.Wake {
	t.Helper()
	ch, stop, err := s.Wakes(t.Context(), node)
	if err != nil {
		t.Fatalf("Wakes(%q): %v", node, err)
	}
	t.Cleanup(stop)
	return ch
}

// nextWake returns the next wake-up on ch, failing after wakeWait.
func nextWake(t *testing.T, ch <-chan state.Wake, who string) state.Wake {
	t.Helper()
	select {
	case w, ok := <-ch:
		if !ok {
			t.Fatalf("%s: wake-ups closed", who)
		}
		return w
	case <-time.After(wakeWait):
		t.Fatalf("%s: no wake-up within %v", who, wakeWait)
	}
	return state.Wake{}
}

func testWakeDelivery(t *testing.T, s state.Store) {
	ctx := t.Context()
	a, b := subscribe(t, s, "wake-a"), subscribe(t, s, "wake-b")
	a2 := subscribe(t, s, "wake-a") // a second subscriber of one node gets everything too
	frame := []byte(`{"i":{"li":"alice"}}`)
	batch := []state.Wake{
		{Kind: state.WakeQueue, User: "bob"},
		{Kind: state.WakePush, User: "bob", Frame: frame},
		{Kind: state.WakeLogin, User: "bob", Node: "wake-b", Session: "s1", Started: 1_700_000_000_123},
		{Kind: state.WakeLogout, User: "carol", Node: "wake-b", Session: "s0"},
		{Kind: state.WakeDisconnect, User: "dave", Text: "account deleted"},
		{Kind: state.WakeQueue, User: "a:b{c}\u00e9\x00"},
	}
	if err := s.Wake(ctx, "wake-a", batch[:3]...); err != nil {
		t.Fatalf("Wake: %v", err)
	}
	if err := s.Wake(ctx, "wake-a", batch[3:]...); err != nil {
		t.Fatalf("Wake: %v", err)
	}
	frame[2] = 'X' // the store holds its own copy
	if err := s.Wake(ctx, "wake-nobody", batch[0]); err != nil {
		t.Fatalf("Wake to a node nobody subscribed to: %v", err)
	}
	if err := s.Wake(ctx, "wake-a"); err != nil {
		t.Fatalf("Wake of nothing: %v", err)
	}
	frame[2] = 'i'
	for _, sub := range []struct {
		name string
		ch   <-chan state.Wake
	}{{"first subscriber", a}, {"second subscriber", a2}} {
		for i, want := range batch {
			if got := nextWake(t, sub.ch, sub.name); !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: wake-up %d = %+v, want %+v (in order, intact)", sub.name, i, got, want)
			}
		}
	}
	// AllNodes reaches every node; b got nothing before it (the broadcast
	// comes after what was sent to a).
	all := state.Wake{Kind: state.WakeLogout, User: "erin", Node: "wake-c", Session: "s9"}
	if err := s.Wake(ctx, state.AllNodes, all); err != nil {
		t.Fatalf("Wake(AllNodes): %v", err)
	}
	for _, sub := range []struct {
		name string
		ch   <-chan state.Wake
	}{{"a", a}, {"a2", a2}, {"b", b}} {
		if got := nextWake(t, sub.ch, sub.name); !reflect.DeepEqual(got, all) {
			t.Fatalf("node %s: got %+v, want the broadcast %+v", sub.name, got, all)
		}
	}
}

func testWakeValidation(t *testing.T, s state.Store) {
	ctx := t.Context()
	for _, c := range []struct {
		node string
		w    state.Wake
	}{
		{"", state.Wake{Kind: state.WakeQueue, User: "bob"}},
		{"n", state.Wake{User: "bob"}},
		{"n", state.Wake{Kind: 99, User: "bob"}},
		{"n", state.Wake{Kind: state.WakeQueue}},
		{"n", state.Wake{Kind: state.WakePush, User: "bob"}},
		{"n", state.Wake{Kind: state.WakeLogin, User: "bob", Node: "n"}},
		{"n", state.Wake{Kind: state.WakeLogout, User: "bob", Session: "s"}},
	} {
		if err := s.Wake(ctx, c.node, c.w); err == nil {
			t.Errorf("Wake(%q, %+v) succeeded", c.node, c.w)
		}
	}
	for _, node := range []string{"", state.AllNodes} {
		if _, stop, err := s.Wakes(ctx, node); err == nil {
			stop()
			t.Errorf("Wakes(%q) succeeded", node)
		}
	}
}

func testWakeStop(t *testing.T, s state.Store) {
	ctx := t.Context()
	ch, stop, err := s.Wakes(ctx, "wake-stop")
	if err != nil {
		t.Fatal(err)
	}
	other := subscribe(t, s, "wake-stop")
	if err := s.Wake(ctx, "wake-stop", state.Wake{Kind: state.WakeQueue, User: "u1"}); err != nil {
		t.Fatal(err)
	}
	if w := nextWake(t, ch, "before stop"); w.User != "u1" {
		t.Fatalf("got %+v", w)
	}
	stop()
	stop() // idempotent
	for w := range ch {
		t.Fatalf("wake-up after stop: %+v", w)
	}
	// The other subscription of the node goes on.
	if err := s.Wake(ctx, "wake-stop", state.Wake{Kind: state.WakeQueue, User: "u2"}); err != nil {
		t.Fatalf("Wake after one subscriber stopped: %v", err)
	}
	if w := nextWake(t, other, "other subscriber"); w.User != "u1" {
		t.Fatalf("other subscriber: got %+v, want u1 first", w)
	}
	if w := nextWake(t, other, "other subscriber"); w.User != "u2" {
		t.Fatalf("other subscriber: got %+v, want u2", w)
	}
}

func testRunSessions(t *testing.T, s state.Store) {
	ctx := t.Context()
	now := time.Now().UnixMilli()
	n, m := node("rs-a", "run1", now), node("rs-b", "run1", now)
	for _, x := range []state.Node{n, m} {
		if err := s.StartNode(ctx, x, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	for _, x := range []state.Session{sess("3", "carol", n, now), sess("1", "alice", n, now), sess("2", "bob", n, now)} {
		if err := s.RegisterSession(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RegisterSession(ctx, sess("9", "dave", m, now)); err != nil {
		t.Fatal(err)
	}
	ids, err := s.RunSessions(ctx, "rs-a", "run1")
	if err != nil || !reflect.DeepEqual(ids, []string{"1", "2", "3"}) {
		t.Fatalf("RunSessions = %q, %v; want [1 2 3]", ids, err)
	}
	if err := s.RemoveSession(ctx, sess("2", "bob", n, now)); err != nil {
		t.Fatal(err)
	}
	if ids, err = s.RunSessions(ctx, "rs-a", "run1"); err != nil || !reflect.DeepEqual(ids, []string{"1", "3"}) {
		t.Fatalf("RunSessions after a removal = %q, %v; want [1 3]", ids, err)
	}
	if ids, err = s.RunSessions(ctx, "rs-a", "other-run"); err != nil || ids == nil || len(ids) != 0 {
		t.Fatalf("RunSessions of an unknown run = %#v, %v; want empty", ids, err)
	}
}

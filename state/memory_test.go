package state_test

import (
	"context"
	"testing"
	"time"

	"github.com/lempgw/lempgw/state"
	"github.com/lempgw/lempgw/state/statetest"
)

func TestMemory(t *testing.T) {
	statetest.Run(t, func(t *testing.T) state.Store {
		s := state.NewMemory()
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// TestMemoryPrunes checks expired dedupe keys and index entries are dropped,
// not only hidden, so the embedded store does not grow forever. An index
// entry expires once its items left the queue, by Remove or Ack.
func TestMemoryPrunes(t *testing.T) {
	ctx := context.Background()
	m := state.NewMemory()
	for i := range 1000 {
		id := string(rune('a'+i%26)) + string(rune('a'+i/26))
		_, err := m.Deliver(ctx, state.Delivery{DedupeKey: id, DedupeTTL: 10 * time.Millisecond, IndexTTL: 10 * time.Millisecond,
			Targets: []state.Target{{Receiver: "bob", Item: state.Item{From: "alice", MsgID: id, AckOnWrite: i%2 == 0}}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	items, err := m.Pending(ctx, "bob", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if it.AckOnWrite {
			err = m.Remove(ctx, "bob", it.Seq)
		} else {
			_, err = m.Ack(ctx, "bob", it.MsgID)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(30 * time.Millisecond)
	// Any later delivery prunes what expired.
	if _, err := m.Deliver(ctx, state.Delivery{}); err != nil {
		t.Fatal(err)
	}
	if d, i, h := state.MemoryExpirySizes(m); d != 0 || i != 0 || h != 0 {
		t.Fatalf("after expiry: %d dedupe keys, %d index entries, %d scheduled, want none", d, i, h)
	}
}

// TestMemoryDeleteUserIndex checks DeleteUser leaves no index entry that
// would stay forever: those of the queued items go with the queue, the others
// expire.
func TestMemoryDeleteUserIndex(t *testing.T) {
	ctx := context.Background()
	m := state.NewMemory()
	if err := m.CreateUser(ctx, state.User{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"acked", "removed", "queued", "queued", "partly", "partly"} {
		_, err := m.Deliver(ctx, state.Delivery{IndexTTL: 10 * time.Millisecond, Targets: []state.Target{
			{Receiver: "alice", Item: state.Item{From: "bob", MsgID: id, AckOnWrite: i == 1 || i == 4}},
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	items, err := m.Pending(ctx, "alice", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Ack(ctx, "alice", "acked"); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{1, 4} {
		if err := m.Remove(ctx, "alice", items[i].Seq); err != nil {
			t.Fatal(err)
		}
	}
	if _, i, _ := state.MemoryExpirySizes(m); i != 4 {
		t.Fatalf("%d index entries before DeleteUser, want 4", i)
	}
	if err := m.DeleteUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, i, _ := state.MemoryExpirySizes(m); i != 2 {
		t.Fatalf("%d index entries right after DeleteUser, want the 2 that expire", i)
	}
	time.Sleep(30 * time.Millisecond)
	if _, err := m.Deliver(ctx, state.Delivery{}); err != nil { // prunes
		t.Fatal(err)
	}
	if d, i, h := state.MemoryExpirySizes(m); d != 0 || i != 0 || h != 0 {
		t.Fatalf("after expiry: %d dedupe keys, %d index entries, %d scheduled, want none", d, i, h)
	}
}

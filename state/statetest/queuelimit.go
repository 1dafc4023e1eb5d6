package statetest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/lempgw/lempgw/state"
)

// testQueueLimit: Delivery.MaxQueue skips the targets whose queue is at the
// limit (messages only: items without a MsgID are not checked), refuses a
// delivery that has nothing left with ErrQueueFull without writing anything
// (not the dedupe key, not the history entry), and lets the same message
// through once the queue has room again.
func testQueueLimit(t *testing.T, s state.Store) {
	ctx := t.Context()
	const max = 3
	msg := func(id string) state.Item {
		return state.Item{From: "alice", MsgID: id, Payload: []byte(`{"m":{"id":"` + id + `"}}`)}
	}
	one := func(id string) state.Delivery {
		return state.Delivery{DedupeKey: "alice\x00" + id, IndexTTL: hour, MaxQueue: max,
			Targets: []state.Target{{Receiver: "bob", Item: msg(id)}}}
	}
	for i := range max {
		dup, err := s.Deliver(ctx, one(fmt.Sprintf("m%d", i)))
		must(t, err)
		if dup {
			t.Fatalf("m%d reported as a duplicate", i)
		}
	}
	wantQueueLen(t, s, "bob", max)

	// At the limit: refused, nothing written.
	dup, err := s.Deliver(ctx, one("over"))
	if !errors.Is(err, state.ErrQueueFull) {
		t.Fatalf("Deliver past MaxQueue: dup %v, err %v; want ErrQueueFull", dup, err)
	}
	wantQueueLen(t, s, "bob", max)
	if _, err := s.Ack(ctx, "bob", "over"); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("Ack of a refused message: %v, want ErrNotFound (no index entry)", err)
	}

	// Receipts and events (no MsgID) are not checked, nor is a delivery
	// without MaxQueue.
	_, err = s.Deliver(ctx, state.Delivery{MaxQueue: max, Targets: []state.Target{
		{Receiver: "bob", Item: state.Item{From: "carol", Payload: []byte(`{"m":{"dm":{}}}`), AckOnWrite: true}},
	}})
	must(t, err)
	_, err = s.Deliver(ctx, state.Delivery{Targets: []state.Target{{Receiver: "bob", Item: msg("nolimit")}}})
	must(t, err)
	wantQueueLen(t, s, "bob", max+2)

	// Fan-out: bob (full) is skipped, carol gets it, and so does the history.
	group := state.Delivery{DedupeKey: "alice\x00g1", IndexTTL: hour, MaxQueue: max,
		Targets: []state.Target{
			{Receiver: "bob", Item: msg("g1")},
			{Receiver: "carol", Item: msg("g1")},
		},
		History: &state.HistoryEntry{Group: "grp", Payload: []byte("g1")},
	}
	dup, err = s.Deliver(ctx, group)
	must(t, err)
	if dup {
		t.Fatal("group message reported as a duplicate")
	}
	wantQueueLen(t, s, "bob", max+2)
	wantQueueLen(t, s, "carol", 1)
	h, err := s.History(ctx, "grp", 0)
	must(t, err)
	if len(h) != 1 {
		t.Fatalf("history has %d entries, want 1", len(h))
	}

	// Every receiver full: refused whole, no history entry.
	for i := range max - 1 {
		deliverOne(t, s, "carol", "dave", fmt.Sprintf("c%d", i))
	}
	wantQueueLen(t, s, "carol", max)
	group.DedupeKey, group.History.Payload = "alice\x00g2", []byte("g2")
	group.Targets[0].Item, group.Targets[1].Item = msg("g2"), msg("g2")
	if _, err := s.Deliver(ctx, group); !errors.Is(err, state.ErrQueueFull) {
		t.Fatalf("fan-out to full queues: %v, want ErrQueueFull", err)
	}
	h, err = s.History(ctx, "grp", 0)
	must(t, err)
	if len(h) != 1 {
		t.Fatalf("a refused delivery wrote history: %d entries", len(h))
	}

	// A blocked target is not a full one: a message to a receiver who
	// blocked the sender is dropped silently, not refused.
	must(t, s.Block(ctx, "erin", "alice"))
	_, err = s.Deliver(ctx, state.Delivery{MaxQueue: max, Targets: []state.Target{
		{Receiver: "erin", Item: msg("b1"), UnlessBlocked: "alice"},
	}})
	must(t, err)
	wantQueueLen(t, s, "erin", 0)

	// Room again: the refused message goes through with its original
	// dedupe key (it was not taken), once.
	if _, err := s.Ack(ctx, "bob", "m0"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Ack(ctx, "bob", "nolimit"); err != nil {
		t.Fatal(err)
	}
	wantQueueLen(t, s, "bob", max) // m1, m2 and the receipt
	if _, err := s.Deliver(ctx, one("over")); !errors.Is(err, state.ErrQueueFull) {
		t.Fatalf("receipt counts toward the limit: %v, want ErrQueueFull", err)
	}
	items := pending(t, s, "bob")
	must(t, s.Remove(ctx, "bob", items[len(items)-1].Seq)) // the receipt, written
	dup, err = s.Deliver(ctx, one("over"))
	must(t, err)
	if dup {
		t.Fatal("the refused message's dedupe key was taken")
	}
	// The queue is full again, but a re-sent message is a duplicate first:
	// its sender is told it was accepted, not refused.
	dup, err = s.Deliver(ctx, one("over"))
	must(t, err)
	if !dup {
		t.Fatal("second delivery of the same key was not a duplicate")
	}
	wantEqual(t, pendingIDs(t, s, "bob"), []string{"m1", "m2", "over"}, "bob's queue")
}

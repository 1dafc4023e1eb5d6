package statetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lempgw/lempgw/state"
)

func testAck(t *testing.T, s state.Store) {
	ctx := t.Context()
	deliverOne(t, s, "bob", "alice", "m1")
	deliverOne(t, s, "bob", "alice", "m2")
	from, err := s.Ack(ctx, "bob", "m1")
	must(t, err)
	if from != "alice" {
		t.Fatalf("Ack = %q, want alice", from)
	}
	wantStrings(t, pendingIDs(t, s, "bob"), []string{"m2"}, "Pending after Ack")
	// The sender stays resolvable after the item is gone.
	from, err = s.Ack(ctx, "bob", "m1")
	must(t, err)
	if from != "alice" {
		t.Fatalf("second Ack = %q, want alice", from)
	}
	wantQueueLen(t, s, "bob", 1)
	// Also after the item was removed by seq.
	seq := pending(t, s, "bob")[0].Seq
	must(t, s.Remove(ctx, "bob", seq))
	from, err = s.Ack(ctx, "bob", "m2")
	must(t, err)
	if from != "alice" {
		t.Fatalf("Ack after Remove = %q, want alice", from)
	}

	_, err = s.Ack(ctx, "bob", "unknown")
	wantErr(t, err, state.ErrNotFound, "Ack of an unknown id")
	_, err = s.Ack(ctx, "carol", "m1")
	wantErr(t, err, state.ErrNotFound, "Ack of another user's id")
	_, err = s.Ack(ctx, "bob", "")
	wantErr(t, err, state.ErrNotFound, "Ack of the empty id")

	// Items without an id are not indexed.
	_, err = s.Deliver(ctx, state.Delivery{IndexTTL: hour, Targets: []state.Target{
		{Receiver: "dave", Item: state.Item{From: "alice", Payload: []byte("e"), AckOnWrite: true}},
	}})
	must(t, err)
	_, err = s.Ack(ctx, "dave", "")
	wantErr(t, err, state.ErrNotFound, "Ack of an item without id")
	wantQueueLen(t, s, "dave", 1)
}

func testAckLatestOwner(t *testing.T, s state.Store) {
	ctx := t.Context()
	deliverOne(t, s, "carol", "alice", "same")
	deliverOne(t, s, "carol", "bob", "same")
	from, err := s.Ack(ctx, "carol", "same")
	must(t, err)
	if from != "bob" {
		t.Fatalf("Ack of a reused id = %q, want the latest sender bob", from)
	}
	// The latest delivery's item is the one removed.
	left := pending(t, s, "carol")
	if len(left) != 1 || left[0].From != "alice" {
		t.Fatalf("Pending after Ack of a reused id = %+v, want alice's item", left)
	}
}

func testIndexExpiry(t *testing.T, s state.Store) {
	ctx := t.Context()
	_, err := s.Deliver(ctx, state.Delivery{IndexTTL: 50 * time.Millisecond, Targets: []state.Target{
		{Receiver: "bob", Item: state.Item{From: "alice", MsgID: "short", Payload: []byte("x")}},
	}})
	must(t, err)
	_, err = s.Deliver(ctx, state.Delivery{Targets: []state.Target{ // IndexTTL 0: no expiry
		{Receiver: "bob", Item: state.Item{From: "carol", MsgID: "forever", Payload: []byte("y")}},
	}})
	must(t, err)
	time.Sleep(150 * time.Millisecond)
	_, err = s.Ack(ctx, "bob", "short")
	wantErr(t, err, state.ErrNotFound, "Ack after the index TTL")
	from, err := s.Ack(ctx, "bob", "forever")
	must(t, err)
	if from != "carol" {
		t.Fatalf("Ack with IndexTTL 0 = %q, want carol", from)
	}
	// The expired index does not take the item with it: Remove by seq does.
	left := pending(t, s, "bob")
	if len(left) != 1 || left[0].MsgID != "short" {
		t.Fatalf("Pending = %+v, want the item whose index expired", left)
	}
}

func testRemove(t *testing.T, s state.Store) {
	ctx := t.Context()
	for i := range 3 {
		deliverOne(t, s, "bob", "alice", fmt.Sprintf("m%d", i))
	}
	seqs := pendingSeqs(t, s, "bob")
	must(t, s.Remove(ctx, "bob", seqs[1]))
	wantEqual(t, pendingSeqs(t, s, "bob"), []uint64{seqs[0], seqs[2]}, "Pending after Remove")
	wantQueueLen(t, s, "bob", 2)
	must(t, s.Remove(ctx, "bob", seqs[1]))    // already gone
	must(t, s.Remove(ctx, "bob", seqs[2]+10)) // never existed
	must(t, s.Remove(ctx, "nobody", 1))
	wantQueueLen(t, s, "bob", 2)
	must(t, s.Remove(ctx, "bob", seqs[0]))
	must(t, s.Remove(ctx, "bob", seqs[2]))
	wantQueueLen(t, s, "bob", 0)
	if items := pending(t, s, "bob"); len(items) != 0 {
		t.Fatalf("Pending of an emptied queue = %v", items)
	}
	// The message index outlives Remove.
	from, err := s.Ack(ctx, "bob", "m0")
	must(t, err)
	if from != "alice" {
		t.Fatalf("Ack after Remove = %q", from)
	}
}

func testSeqNeverReused(t *testing.T, s state.Store) {
	ctx := t.Context()
	var seen []uint64
	collect := func() {
		t.Helper()
		seqs := pendingSeqs(t, s, "bob")
		for _, q := range seqs {
			if !slices.Contains(seen, q) {
				seen = append(seen, q)
			}
		}
	}
	for round := range 3 {
		for i := range 3 {
			deliverOne(t, s, "bob", "alice", fmt.Sprintf("r%d-%d", round, i))
		}
		collect()
		// Empty the queue: by Ack, then by Remove.
		for _, it := range pending(t, s, "bob") {
			if round%2 == 0 {
				_, err := s.Ack(ctx, "bob", it.MsgID)
				must(t, err)
			} else {
				must(t, s.Remove(ctx, "bob", it.Seq))
			}
		}
		wantQueueLen(t, s, "bob", 0)
	}
	if len(seen) != 9 {
		t.Fatalf("9 deliveries got %d distinct seqs: %v", len(seen), seen)
	}
	wantIncreasing(t, seen)
}

func testDeliverConcurrent(t *testing.T, s state.Store) {
	ctx := t.Context()
	const writers, each = 20, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("w%02d-%02d", w, i)
				_, err := s.Deliver(ctx, state.Delivery{DedupeKey: id, DedupeTTL: hour, IndexTTL: hour, Targets: []state.Target{
					{Receiver: "bob", Item: state.Item{From: "alice", MsgID: id, Payload: []byte(id)}},
					{Receiver: fmt.Sprintf("u%02d", w), Item: state.Item{From: "alice", MsgID: id, Payload: []byte(id)}},
				}})
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	wantQueueLen(t, s, "bob", writers*each)
	items := pending(t, s, "bob")
	var seqs []uint64
	ids := map[string]bool{}
	for _, it := range items {
		seqs = append(seqs, it.Seq)
		if string(it.Payload) != it.MsgID {
			t.Fatalf("item %+v has another item's payload", it)
		}
		ids[it.MsgID] = true
	}
	wantIncreasing(t, seqs)
	if len(ids) != writers*each {
		t.Fatalf("%d distinct ids in bob's queue, want %d", len(ids), writers*each)
	}
	for w := range writers {
		u := fmt.Sprintf("u%02d", w)
		wantQueueLen(t, s, u, each)
		got := pendingIDs(t, s, u)
		for i := range each { // one writer per queue: its own order
			if want := fmt.Sprintf("w%02d-%02d", w, i); got[i] != want {
				t.Fatalf("Pending(%s)[%d] = %s, want %s", u, i, got[i], want)
			}
		}
	}
}

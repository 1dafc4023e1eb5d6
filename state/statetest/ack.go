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

// testAckReusedID: senders that reuse an id for one receiver share one index
// entry. One Ack removes all their items and returns the latest sender.
func testAckReusedID(t *testing.T, s state.Store) {
	ctx := t.Context()
	deliverOne(t, s, "carol", "alice", "same")
	deliverOne(t, s, "carol", "dave", "other")
	deliverOne(t, s, "carol", "bob", "same")
	from, err := s.Ack(ctx, "carol", "same")
	must(t, err)
	if from != "bob" {
		t.Fatalf("Ack of a reused id = %q, want the latest sender bob", from)
	}
	left := pending(t, s, "carol")
	if len(left) != 1 || left[0].MsgID != "other" {
		t.Fatalf("Pending after Ack of a reused id = %+v, want only the other id's item", left)
	}
	// A second Ack finds the same sender and removes nothing.
	from, err = s.Ack(ctx, "carol", "same")
	must(t, err)
	if from != "bob" {
		t.Fatalf("second Ack of a reused id = %q, want bob", from)
	}
	wantQueueLen(t, s, "carol", 1)

	// The id used again after the Ack: a new item, its sender now the latest.
	deliverOne(t, s, "carol", "alice", "same")
	wantQueueLen(t, s, "carol", 2)
	from, err = s.Ack(ctx, "carol", "same")
	must(t, err)
	if from != "alice" {
		t.Fatalf("Ack of an id used again after its Ack = %q, want alice", from)
	}
	wantStrings(t, pendingIDs(t, s, "carol"), []string{"other"}, "Pending after the third Ack")

	// Two items with one id in one delivery (and an ack-on-write one among
	// them): Ack takes all of them.
	_, err = s.Deliver(ctx, state.Delivery{IndexTTL: hour, Targets: []state.Target{
		{Receiver: "erin", Item: state.Item{From: "alice", MsgID: "x", Payload: []byte("1")}},
		{Receiver: "erin", Item: state.Item{From: "bob", MsgID: "x", Payload: []byte("2"), AckOnWrite: true}},
		{Receiver: "erin", Item: state.Item{From: "bob", MsgID: "y", Payload: []byte("3")}},
	}})
	must(t, err)
	from, err = s.Ack(ctx, "erin", "x")
	must(t, err)
	if from != "bob" {
		t.Fatalf("Ack of an id twice in one delivery = %q, want bob", from)
	}
	wantStrings(t, pendingIDs(t, s, "erin"), []string{"y"}, "Pending(erin) after Ack")
}

// indexTTL is the short IndexTTL of the tests that only wait past it;
// sleepPast waits until well past it. The tests that also check an entry
// still resolves before its TTL use the longer resolveTTL, and skip that
// check when the machine was too slow to tell (see fastEnough).
const (
	indexTTL   = 50 * time.Millisecond
	resolveTTL = 300 * time.Millisecond
)

func sleepPast() { time.Sleep(3 * indexTTL) }

// fastEnough reports whether less than ttl/2 passed since start, that is,
// whether an index that began its ttl after start must still resolve.
func fastEnough(t *testing.T, start time.Time, ttl time.Duration) bool {
	t.Helper()
	if d := time.Since(start); d >= ttl/2 {
		t.Logf("skipping a check within IndexTTL: %v passed, IndexTTL is %v", d, ttl)
		return false
	}
	return true
}

// deliverTTL delivers one item from -> to with msgID and IndexTTL ttl.
func deliverTTL(t *testing.T, s state.Store, to, from, msgID string, ttl time.Duration, ackOnWrite bool) {
	t.Helper()
	_, err := s.Deliver(t.Context(), state.Delivery{IndexTTL: ttl, Targets: []state.Target{
		{Receiver: to, Item: state.Item{From: from, MsgID: msgID, Payload: []byte(msgID), AckOnWrite: ackOnWrite}},
	}})
	must(t, err)
}

// testIndexKeptWhileQueued: the index of a queued item does not expire, so
// an item can be acknowledged however late its receiver comes back.
func testIndexKeptWhileQueued(t *testing.T, s state.Store) {
	ctx := t.Context()
	deliverTTL(t, s, "bob", "alice", "late", indexTTL, false)
	deliverTTL(t, s, "bob", "carol", "twice", indexTTL, false)
	deliverTTL(t, s, "bob", "dave", "twice", indexTTL, false)
	sleepPast()
	from, err := s.Ack(ctx, "bob", "late")
	must(t, err)
	if from != "alice" {
		t.Fatalf("Ack of a queued item after IndexTTL = %q, want alice", from)
	}
	wantStrings(t, pendingIDs(t, s, "bob"), []string{"twice", "twice"}, "Pending after the late Ack")
	// Removing one of two items with the id leaves the other indexed.
	must(t, s.Remove(ctx, "bob", pending(t, s, "bob")[0].Seq))
	sleepPast()
	from, err = s.Ack(ctx, "bob", "twice")
	must(t, err)
	if from != "dave" {
		t.Fatalf("Ack after one of two items was removed = %q, want the latest sender dave", from)
	}
	wantQueueLen(t, s, "bob", 0)
}

// testIndexExpiry: once its items left the queue, an index entry resolves
// for IndexTTL counted from then (zero: forever), then Ack reports ErrNotFound.
func testIndexExpiry(t *testing.T, s state.Store) {
	ctx := t.Context()
	const ttl = resolveTTL
	deliverTTL(t, s, "bob", "alice", "short", ttl, false)
	deliverTTL(t, s, "bob", "carol", "forever", 0, false)
	deliverTTL(t, s, "bob", "dave", "kept", ttl, false)
	time.Sleep(2 * ttl) // past the TTL counted from the delivery
	start := time.Now()
	from, err := s.Ack(ctx, "bob", "short")
	must(t, err)
	if from != "alice" {
		t.Fatalf("Ack = %q, want alice", from)
	}
	from, err = s.Ack(ctx, "bob", "short")
	if fastEnough(t, start, ttl) {
		must(t, err)
		if from != "alice" {
			t.Fatalf("second Ack within IndexTTL = %q, want alice", from)
		}
	}
	from, err = s.Ack(ctx, "bob", "forever")
	must(t, err)
	if from != "carol" {
		t.Fatalf("Ack with IndexTTL 0 = %q, want carol", from)
	}
	wantStrings(t, pendingIDs(t, s, "bob"), []string{"kept"}, "Pending after the Acks")
	time.Sleep(2 * ttl)
	_, err = s.Ack(ctx, "bob", "short")
	wantErr(t, err, state.ErrNotFound, "Ack after IndexTTL counted from the first Ack")
	from, err = s.Ack(ctx, "bob", "forever")
	must(t, err)
	if from != "carol" {
		t.Fatalf("Ack with IndexTTL 0, later = %q, want carol", from)
	}
	wantQueueLen(t, s, "bob", 1)

	// A second Ack does not extend the TTL counted from the first one.
	from, err = s.Ack(ctx, "bob", "kept")
	must(t, err)
	if from != "dave" {
		t.Fatalf("Ack = %q, want dave", from)
	}
	wantQueueLen(t, s, "bob", 0)
	time.Sleep(ttl / 2)
	_, _ = s.Ack(ctx, "bob", "kept")
	time.Sleep(ttl/2 + ttl/3)
	_, err = s.Ack(ctx, "bob", "kept")
	wantErr(t, err, state.ErrNotFound, "Ack after IndexTTL from the first Ack, with a second Ack between")

	// An id whose index expired, delivered again, is indexed afresh.
	deliverTTL(t, s, "bob", "erin", "short", ttl, false)
	from, err = s.Ack(ctx, "bob", "short")
	must(t, err)
	if from != "erin" {
		t.Fatalf("Ack of an id delivered again after its index expired = %q, want erin", from)
	}
	wantQueueLen(t, s, "bob", 0)
}

// testRemoveIndex: Remove of an ack-on-write item (once written) leaves its
// sender resolvable, for IndexTTL from the Remove; Ack then removes nothing.
func testRemoveIndex(t *testing.T, s state.Store) {
	ctx := t.Context()
	const ttl = resolveTTL
	deliverTTL(t, s, "bob", "alice", "pc0", ttl, true)
	deliverTTL(t, s, "bob", "carol", "other", hour, false)
	time.Sleep(2 * ttl) // the index of a queued item does not expire
	seq := pending(t, s, "bob")[0].Seq
	start := time.Now()
	must(t, s.Remove(ctx, "bob", seq))
	from, err := s.Ack(ctx, "bob", "pc0")
	if fastEnough(t, start, ttl) {
		must(t, err)
		if from != "alice" {
			t.Fatalf("Ack after Remove = %q, want alice", from)
		}
	}
	wantStrings(t, pendingIDs(t, s, "bob"), []string{"other"}, "Pending after Ack of a removed item's id")
	must(t, s.Remove(ctx, "bob", seq)) // again: nothing to do
	time.Sleep(2 * ttl)
	_, err = s.Ack(ctx, "bob", "pc0")
	wantErr(t, err, state.ErrNotFound, "Ack after IndexTTL counted from Remove")
	wantQueueLen(t, s, "bob", 1)

	// Items without an id: Remove has no index to touch.
	_, err = s.Deliver(ctx, state.Delivery{IndexTTL: ttl, Targets: []state.Target{
		{Receiver: "bob", Item: state.Item{From: "alice", Payload: []byte("e"), AckOnWrite: true}},
	}})
	must(t, err)
	items := pending(t, s, "bob")
	must(t, s.Remove(ctx, "bob", items[len(items)-1].Seq))
	wantStrings(t, pendingIDs(t, s, "bob"), []string{"other"}, "Pending after Remove of an item without id")
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

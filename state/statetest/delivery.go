package statetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/lempgw/lempgw/state"
)

const hour = time.Hour

// deliverOne delivers a text item from -> to with msgID, and checks it was
// not a duplicate.
func deliverOne(t *testing.T, s state.Store, to, from, msgID string) {
	t.Helper()
	dup, err := s.Deliver(t.Context(), state.Delivery{IndexTTL: hour, Targets: []state.Target{
		{Receiver: to, Item: state.Item{From: from, MsgID: msgID, Payload: []byte(from + ":" + msgID)}},
	}})
	must(t, err)
	if dup {
		t.Fatalf("Deliver %s -> %s (%s) reported a duplicate", from, to, msgID)
	}
}

func pending(t *testing.T, s state.Store, user string) []state.Item {
	t.Helper()
	items, err := s.Pending(t.Context(), user, 0, 0)
	must(t, err)
	return items
}

func pendingSeqs(t *testing.T, s state.Store, user string) []uint64 {
	t.Helper()
	var seqs []uint64
	for _, it := range pending(t, s, user) {
		seqs = append(seqs, it.Seq)
	}
	return seqs
}

func pendingIDs(t *testing.T, s state.Store, user string) []string {
	t.Helper()
	var ids []string
	for _, it := range pending(t, s, user) {
		ids = append(ids, it.MsgID)
	}
	return ids
}

func wantQueueLen(t *testing.T, s state.Store, user string, want int) {
	t.Helper()
	n, err := s.QueueLen(t.Context(), user)
	must(t, err)
	if n != want {
		t.Fatalf("QueueLen(%s) = %d, want %d", user, n, want)
	}
}

// wantIncreasing checks seqs are strictly increasing and not zero.
func wantIncreasing(t *testing.T, seqs []uint64) {
	t.Helper()
	for i, s := range seqs {
		if s == 0 || (i > 0 && s <= seqs[i-1]) {
			t.Fatalf("seqs not strictly increasing: %v", seqs)
		}
	}
}

func testDeliverPending(t *testing.T, s state.Store) {
	ctx := t.Context()
	if items := pending(t, s, "bob"); len(items) != 0 {
		t.Fatalf("Pending of an empty queue = %v", items)
	}
	wantQueueLen(t, s, "bob", 0)

	dup, err := s.Deliver(ctx, state.Delivery{DedupeKey: "alice\x00m1", DedupeTTL: hour, IndexTTL: hour, Targets: []state.Target{
		{Receiver: "bob", Item: state.Item{From: "alice", MsgID: "m1", Payload: []byte(`{"m":{"r":"bob"}}`)}},
		{Receiver: "carol", Item: state.Item{From: "alice", MsgID: "m1", Payload: []byte(`{"m":{"r":"carol"}}`), AckOnWrite: true}},
		{Receiver: "bob", Item: state.Item{From: "alice", Payload: []byte(`{"e":1}`), AckOnWrite: true}},
	}})
	must(t, err)
	if dup {
		t.Fatal("first Deliver reported a duplicate")
	}
	bob := pending(t, s, "bob")
	if len(bob) != 2 {
		t.Fatalf("Pending(bob) = %+v, want 2 items", bob)
	}
	wantIncreasing(t, []uint64{bob[0].Seq, bob[1].Seq})
	wantEqual(t, bob[0], state.Item{Seq: bob[0].Seq, From: "alice", MsgID: "m1", Payload: []byte(`{"m":{"r":"bob"}}`)}, "bob's first item")
	wantEqual(t, bob[1], state.Item{Seq: bob[1].Seq, From: "alice", Payload: []byte(`{"e":1}`), AckOnWrite: true}, "bob's second item")
	carol := pending(t, s, "carol")
	if len(carol) != 1 {
		t.Fatalf("Pending(carol) = %+v, want 1 item", carol)
	}
	wantEqual(t, carol[0], state.Item{Seq: carol[0].Seq, From: "alice", MsgID: "m1", Payload: []byte(`{"m":{"r":"carol"}}`), AckOnWrite: true}, "carol's item")
	wantQueueLen(t, s, "bob", 2)
	wantQueueLen(t, s, "carol", 1)

	// No targets: nothing to write, not an error.
	dup, err = s.Deliver(ctx, state.Delivery{})
	must(t, err)
	if dup {
		t.Fatal("empty Deliver reported a duplicate")
	}
}

func testPendingCursor(t *testing.T, s state.Store) {
	ctx := t.Context()
	for i := range 5 {
		deliverOne(t, s, "bob", "alice", fmt.Sprintf("m%d", i))
	}
	all := pending(t, s, "bob")
	if len(all) != 5 {
		t.Fatalf("Pending = %d items, want 5", len(all))
	}
	seqs := pendingSeqs(t, s, "bob")
	wantIncreasing(t, seqs)
	wantStrings(t, pendingIDs(t, s, "bob"), []string{"m0", "m1", "m2", "m3", "m4"}, "Pending order")

	page := func(after uint64, limit int) []uint64 {
		t.Helper()
		items, err := s.Pending(ctx, "bob", after, limit)
		must(t, err)
		var out []uint64
		for _, it := range items {
			out = append(out, it.Seq)
		}
		return out
	}
	wantEqual(t, page(0, 2), seqs[:2], "Pending(0, 2)")
	wantEqual(t, page(seqs[1], 2), seqs[2:4], "Pending(after 2nd, 2)")
	wantEqual(t, page(seqs[3], 10), seqs[4:], "Pending(after 4th, 10)")
	wantEqual(t, page(seqs[0], 0), seqs[1:], "Pending(after 1st, no limit)")
	if got := page(seqs[4], 10); len(got) != 0 {
		t.Fatalf("Pending after the last item = %v", got)
	}
	// after need not name an existing item.
	must(t, s.Remove(ctx, "bob", seqs[2]))
	wantEqual(t, page(seqs[2], 1), seqs[3:4], "Pending(after a removed seq, 1)")
	if got := page(seqs[1], 0); !slices.Equal(got, []uint64{seqs[3], seqs[4]}) {
		t.Fatalf("Pending skips removed items: got %v", got)
	}
}

func testItemRoundTrip(t *testing.T, s state.Store) {
	ctx := t.Context()
	payload := make([]byte, 0, 512)
	for i := range 256 {
		payload = append(payload, byte(i))
	}
	payload = append(payload, "\n0-1\r\n\xff\xfe{\"m\":\"é\"}"...)
	items := []state.Item{
		{From: "alice", MsgID: "id\nwith:odd chars", Payload: payload},
		{From: "romeo@montague.lit/orchard", MsgID: "", Payload: []byte("x"), AckOnWrite: true},
		{From: "", MsgID: "empty-payload"},
	}
	for _, it := range items {
		_, err := s.Deliver(ctx, state.Delivery{IndexTTL: hour, Targets: []state.Target{{Receiver: "user:with%colon", Item: it}}})
		must(t, err)
	}
	got := pending(t, s, "user:with%colon")
	if len(got) != len(items) {
		t.Fatalf("Pending = %d items, want %d", len(got), len(items))
	}
	for i, it := range got {
		want := items[i]
		if it.From != want.From || it.MsgID != want.MsgID || it.AckOnWrite != want.AckOnWrite || !bytes.Equal(it.Payload, want.Payload) {
			t.Fatalf("item %d round trip:\n got %+v\nwant %+v", i, it, want)
		}
	}
	from, err := s.Ack(ctx, "user:with%colon", "id\nwith:odd chars")
	must(t, err)
	if from != "alice" {
		t.Fatalf("Ack = %q, want alice", from)
	}
	// (user, id) pairs that join to the same string stay apart.
	deliverOne(t, s, "a:b", "x", "c")
	deliverOne(t, s, "a", "y", "b:c")
	for _, c := range [][3]string{{"a:b", "c", "x"}, {"a", "b:c", "y"}} {
		from, err := s.Ack(ctx, c[0], c[1])
		must(t, err)
		if from != c[2] {
			t.Fatalf("Ack(%q, %q) = %q, want %q", c[0], c[1], from, c[2])
		}
	}
}

func testDedupe(t *testing.T, s state.Store) {
	ctx := t.Context()
	d := state.Delivery{DedupeKey: "alice\x00m1", DedupeTTL: hour, IndexTTL: hour, Targets: []state.Target{
		{Receiver: "bob", Item: state.Item{From: "alice", MsgID: "m1", Payload: []byte("1")}},
		{Receiver: "carol", Item: state.Item{From: "alice", MsgID: "m1", Payload: []byte("1")}},
	}}
	dup, err := s.Deliver(ctx, d)
	must(t, err)
	if dup {
		t.Fatal("first Deliver reported a duplicate")
	}
	d2 := d
	d2.Targets = []state.Target{
		{Receiver: "bob", Item: state.Item{From: "alice", MsgID: "m1", Payload: []byte("2")}},
		{Receiver: "dave", Item: state.Item{From: "alice", MsgID: "m1", Payload: []byte("2")}},
	}
	dup, err = s.Deliver(ctx, d2)
	must(t, err)
	if !dup {
		t.Fatal("second Deliver with the same key was not reported as a duplicate")
	}
	wantQueueLen(t, s, "bob", 1)
	wantQueueLen(t, s, "carol", 1)
	wantQueueLen(t, s, "dave", 0)
	if it := pending(t, s, "bob"); string(it[0].Payload) != "1" {
		t.Fatalf("duplicate overwrote the item: %q", it[0].Payload)
	}

	// Another key is another delivery; no key never dedupes.
	d2.DedupeKey = "alice\x00m2"
	dup, err = s.Deliver(ctx, d2)
	must(t, err)
	if dup {
		t.Fatal("Deliver with a new key reported a duplicate")
	}
	d2.DedupeKey = ""
	for range 2 {
		dup, err = s.Deliver(ctx, d2)
		must(t, err)
		if dup {
			t.Fatal("Deliver without a key reported a duplicate")
		}
	}
	wantQueueLen(t, s, "bob", 4)
	wantQueueLen(t, s, "dave", 3)

	// A key with no targets still counts.
	e := state.Delivery{DedupeKey: "empty", DedupeTTL: hour}
	for i, want := range []bool{false, true} {
		dup, err := s.Deliver(ctx, e)
		must(t, err)
		if dup != want {
			t.Fatalf("Deliver #%d of an empty delivery: duplicate = %v, want %v", i+1, dup, want)
		}
	}
}

func testDedupeExpiry(t *testing.T, s state.Store) {
	ctx := t.Context()
	d := state.Delivery{DedupeKey: "k", DedupeTTL: 50 * time.Millisecond, Targets: []state.Target{
		{Receiver: "bob", Item: state.Item{From: "alice", Payload: []byte("x")}},
	}}
	for i, want := range []bool{false, true} {
		dup, err := s.Deliver(ctx, d)
		must(t, err)
		if dup != want {
			t.Fatalf("Deliver #%d: duplicate = %v, want %v", i+1, dup, want)
		}
	}
	time.Sleep(150 * time.Millisecond)
	dup, err := s.Deliver(ctx, d)
	must(t, err)
	if dup {
		t.Fatal("Deliver after the dedupe TTL reported a duplicate")
	}
	wantQueueLen(t, s, "bob", 2)
}

// testDeliverUnlessBlocked: a target with UnlessBlocked is skipped when its
// receiver blocked that sender, in the same atomic delivery as the others.
func testDeliverUnlessBlocked(t *testing.T, s state.Store) {
	ctx := t.Context()
	must(t, s.Block(ctx, "bob", "alice"))
	item := state.Item{From: "alice", MsgID: "m1", Payload: []byte(`{"m":{}}`)}
	dup, err := s.Deliver(ctx, state.Delivery{DedupeKey: "alice\x00m1", Targets: []state.Target{
		{Receiver: "bob", Item: item, UnlessBlocked: "alice"},
		{Receiver: "carol", Item: item, UnlessBlocked: "alice"},
		{Receiver: "dave", Item: item, UnlessBlocked: "someone-else"},
	}})
	must(t, err)
	if dup {
		t.Fatal("first delivery reported as a duplicate")
	}
	wantQueueLen(t, s, "bob", 0)
	wantQueueLen(t, s, "carol", 1)
	wantQueueLen(t, s, "dave", 1)
	if _, err := s.Ack(ctx, "bob", "m1"); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("Ack of a skipped item: %v, want ErrNotFound", err)
	}
	// Without UnlessBlocked the block list is not consulted; after Unblock the check passes.
	_, err = s.Deliver(ctx, state.Delivery{Targets: []state.Target{{Receiver: "bob", Item: item}}})
	must(t, err)
	wantQueueLen(t, s, "bob", 1)
	must(t, s.Unblock(ctx, "bob", "alice"))
	_, err = s.Deliver(ctx, state.Delivery{Targets: []state.Target{{Receiver: "bob", Item: item, UnlessBlocked: "alice"}}})
	must(t, err)
	wantQueueLen(t, s, "bob", 2)
}

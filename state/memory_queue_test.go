package state

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestMemQueueCompaction removes items in random order from a long queue
// and checks Pending against a plain model while tombstones are compacted.
func TestMemQueueCompaction(t *testing.T) {
	ctx := context.Background()
	m := NewMemory()
	const n = 500
	ts := make([]Target, n)
	for i := range ts {
		ts[i] = Target{Receiver: "bob", Item: Item{Payload: []byte{byte(i)}}}
	}
	if _, err := m.Deliver(ctx, Delivery{Targets: ts}); err != nil {
		t.Fatal(err)
	}
	live := make([]uint64, n)
	for i := range live {
		live[i] = uint64(i + 1)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for len(live) > 0 {
		i := rng.IntN(len(live))
		if rng.IntN(3) == 0 {
			i = 0 // acknowledgements mostly come from the head
		}
		if err := m.Remove(ctx, "bob", live[i]); err != nil {
			t.Fatal(err)
		}
		live = slices.Delete(live, i, i+1)
		items, err := m.Pending(ctx, "bob", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var got []uint64
		for _, it := range items {
			got = append(got, it.Seq)
			if it.Payload[0] != byte(it.Seq-1) {
				t.Fatalf("item %d has payload %v", it.Seq, it.Payload)
			}
		}
		if !slices.Equal(got, live) && !(len(got) == 0 && len(live) == 0) {
			t.Fatalf("Pending = %v, want %v", got, live)
		}
		if q := m.queues["bob"]; q != nil && len(q.ents) > 2*q.live+33 {
			t.Fatalf("queue holds %d entries for %d live items: not compacted", len(q.ents), q.live)
		}
	}
	if _, ok := m.queues["bob"]; ok {
		t.Fatal("an emptied queue was kept")
	}
}

// TestExpiryHeap pushes and pops random times, interleaved, and checks the
// heap always pops the earliest.
func TestExpiryHeap(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	base := time.Unix(1700000000, 0)
	var h expiryHeap
	var model []time.Time
	for i := range 2000 {
		if len(model) == 0 || rng.IntN(3) != 0 || i < 100 {
			at := base.Add(time.Duration(rng.IntN(1000)) * time.Millisecond)
			h.push(expiryItem{at: at})
			model = append(model, at)
			continue
		}
		slices.SortFunc(model, func(a, b time.Time) int { return a.Compare(b) })
		want := model[0]
		model = model[1:]
		if got := h.pop().at; !got.Equal(want) {
			t.Fatalf("pop %d = %v, want %v", i, got, want)
		}
		if len(h) != len(model) {
			t.Fatalf("heap holds %d items, want %d", len(h), len(model))
		}
	}
	slices.SortFunc(model, func(a, b time.Time) int { return a.Compare(b) })
	for _, want := range model {
		if got := h.pop().at; !got.Equal(want) {
			t.Fatalf("draining: pop = %v, want %v", got, want)
		}
	}
	if len(h) != 0 {
		t.Fatalf("%d items left", len(h))
	}
}

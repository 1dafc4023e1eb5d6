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
// not only hidden, so the embedded store does not grow forever.
func TestMemoryPrunes(t *testing.T) {
	ctx := context.Background()
	m := state.NewMemory()
	for i := range 1000 {
		id := string(rune('a'+i%26)) + string(rune('a'+i/26))
		_, err := m.Deliver(ctx, state.Delivery{DedupeKey: id, DedupeTTL: 10 * time.Millisecond, IndexTTL: 10 * time.Millisecond,
			Targets: []state.Target{{Receiver: "bob", Item: state.Item{From: "alice", MsgID: id, AckOnWrite: true}}}})
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

package state_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/lempgw/lempgw/state"
)

// stores are the backends the benchmarks compare.
var stores = []struct {
	name string
	new  func(b *testing.B) state.Store
}{
	{"memory", func(*testing.B) state.Store { return state.NewMemory() }},
	{"redis", func(b *testing.B) state.Store { return newRedis(b) }},
}

var payload = []byte(`{"m":{"i":"0123456789abcdef","s":"alice","r":"bob","t":"t","c":"hello, how are you?","st":1700000000000}}`)

// BenchmarkDeliver: one 1:1 message, de-duplicated and indexed, as the
// router writes it.
func BenchmarkDeliver(b *testing.B) {
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			s := st.new(b)
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				id := strconv.Itoa(i)
				i++
				_, err := s.Deliver(ctx, state.Delivery{
					DedupeKey: "m\x00alice\x00" + id, DedupeTTL: 10 * time.Minute, IndexTTL: time.Hour,
					Targets: []state.Target{{Receiver: "bob", Item: state.Item{From: "alice", MsgID: id, Payload: payload}}},
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// fillQueue queues n indexed items for bob, untimed.
func fillQueue(b *testing.B, s state.Store, n int, ackOnWrite bool) {
	b.Helper()
	const batch = 1000
	for k := 0; k < n; k += batch {
		ts := make([]state.Target, 0, batch)
		for i := k; i < min(k+batch, n); i++ {
			ts = append(ts, state.Target{Receiver: "bob", Item: state.Item{From: "alice", MsgID: strconv.Itoa(i), Payload: payload, AckOnWrite: ackOnWrite}})
		}
		if _, err := s.Deliver(context.Background(), state.Delivery{IndexTTL: time.Hour, Targets: ts}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPendingAck: a receiver reads its next item and acknowledges it by
// id, which also starts the index's TTL (the queue is filled beforehand,
// untimed).
func BenchmarkPendingAck(b *testing.B) {
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			s := st.new(b)
			ctx := context.Background()
			fillQueue(b, s, b.N, false)
			b.ReportAllocs()
			b.ResetTimer()
			var after uint64
			for range b.N {
				items, err := s.Pending(ctx, "bob", after, 1)
				if err != nil || len(items) != 1 {
					b.Fatalf("Pending = %d items, %v", len(items), err)
				}
				if _, err := s.Ack(ctx, "bob", items[0].MsgID); err != nil {
					b.Fatal(err)
				}
				after = items[0].Seq
			}
		})
	}
}

// BenchmarkPendingRemove: a receiver reads its next ack-on-write item and
// removes it once written, which also drops it from its index entry (the
// queue is filled beforehand, untimed).
func BenchmarkPendingRemove(b *testing.B) {
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			s := st.new(b)
			ctx := context.Background()
			fillQueue(b, s, b.N, true)
			b.ReportAllocs()
			b.ResetTimer()
			var after uint64
			for range b.N {
				items, err := s.Pending(ctx, "bob", after, 1)
				if err != nil || len(items) != 1 {
					b.Fatalf("Pending = %d items, %v", len(items), err)
				}
				if err := s.Remove(ctx, "bob", items[0].Seq); err != nil {
					b.Fatal(err)
				}
				after = items[0].Seq
			}
		})
	}
}

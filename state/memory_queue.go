package state

import (
	"container/heap"
	"context"
	"fmt"
	"math"
	"slices"
	"time"
)

// indexKey names one message-index entry: (receiver, message id).
type indexKey struct{ user, msgID string }

type indexEntry struct {
	seq  uint64
	from string
	exp  time.Time // zero: never expires
}

// memQueue is one receiver's queue: entries in Seq order. Removed entries are
// tombstoned and compacted away in bulk, so Ack and Remove stay cheap.
type memQueue struct {
	ents []memEnt
	live int
}

type memEnt struct {
	it   Item
	dead bool
}

func (q *memQueue) search(seq uint64) (int, bool) {
	return slices.BinarySearchFunc(q.ents, seq, func(e memEnt, s uint64) int {
		switch {
		case e.it.Seq < s:
			return -1
		case e.it.Seq > s:
			return 1
		}
		return 0
	})
}

func (q *memQueue) remove(seq uint64) {
	i, ok := q.search(seq)
	if !ok || q.ents[i].dead {
		return
	}
	q.ents[i] = memEnt{it: Item{Seq: seq}, dead: true}
	q.live--
	for len(q.ents) > 0 && q.ents[0].dead {
		q.ents[0] = memEnt{}
		q.ents = q.ents[1:]
	}
	if dead := len(q.ents) - q.live; dead > 32 && dead > q.live {
		kept := make([]memEnt, 0, q.live)
		for _, e := range q.ents {
			if !e.dead {
				kept = append(kept, e)
			}
		}
		q.ents = kept
	}
}

// ttlMillis rounds a TTL up to whole milliseconds (Redis' PX unit); 0 means
// no expiry.
func ttlMillis(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

func expiryAt(now time.Time, d time.Duration) time.Time {
	ms := ttlMillis(d)
	if ms == 0 {
		return time.Time{}
	}
	return now.Add(time.Duration(ms) * time.Millisecond)
}

func alive(exp, now time.Time) bool { return exp.IsZero() || now.Before(exp) }

func (m *Memory) Deliver(_ context.Context, d Delivery) (bool, error) {
	items := make([]Item, len(d.Targets))
	for i, t := range d.Targets {
		items[i] = t.Item
		items[i].Payload = cloneBytes(t.Item.Payload)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.pruneLocked(now)
	if d.DedupeKey != "" {
		if exp, ok := m.dedupe[d.DedupeKey]; ok && alive(exp, now) {
			return true, nil
		}
		exp := expiryAt(now, d.DedupeTTL)
		m.dedupe[d.DedupeKey] = exp
		if !exp.IsZero() {
			heap.Push(&m.expiry, expiryItem{at: exp, dedupe: d.DedupeKey})
		}
	}
	idxExp := expiryAt(now, d.IndexTTL)
	for i, t := range d.Targets {
		seq := m.seqs[t.Receiver] + 1
		m.seqs[t.Receiver] = seq
		it := items[i]
		it.Seq = seq
		q := m.queues[t.Receiver]
		if q == nil {
			q = &memQueue{}
			m.queues[t.Receiver] = q
		}
		q.ents = append(q.ents, memEnt{it: it})
		q.live++
		if it.MsgID != "" {
			k := indexKey{t.Receiver, it.MsgID}
			m.index[k] = indexEntry{seq: seq, from: it.From, exp: idxExp}
			if !idxExp.IsZero() {
				heap.Push(&m.expiry, expiryItem{at: idxExp, index: k, isIndex: true})
			}
		}
	}
	return false, nil
}

func (m *Memory) Pending(_ context.Context, user string, after uint64, limit int) ([]Item, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	q := m.queues[user]
	if q == nil || after == math.MaxUint64 {
		return []Item{}, nil
	}
	i, _ := q.search(after + 1)
	n := q.live
	if limit > 0 && limit < n {
		n = limit
	}
	out := make([]Item, 0, n)
	for ; i < len(q.ents) && (limit <= 0 || len(out) < limit); i++ {
		if e := q.ents[i]; !e.dead {
			it := e.it
			it.Payload = cloneBytes(it.Payload)
			out = append(out, it)
		}
	}
	return out, nil
}

func (m *Memory) Ack(_ context.Context, user, msgID string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.pruneLocked(now)
	k := indexKey{user, msgID}
	e, ok := m.index[k]
	if !ok || !alive(e.exp, now) {
		return "", fmt.Errorf("message %q of %q: %w", msgID, user, ErrNotFound)
	}
	m.removeLocked(user, e.seq)
	return e.from, nil
}

func (m *Memory) Remove(_ context.Context, user string, seq uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.removeLocked(user, seq)
	return nil
}

func (m *Memory) removeLocked(user string, seq uint64) {
	q := m.queues[user]
	if q == nil {
		return
	}
	q.remove(seq)
	if q.live == 0 {
		delete(m.queues, user)
	}
}

func (m *Memory) QueueLen(_ context.Context, user string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if q := m.queues[user]; q != nil {
		return q.live, nil
	}
	return 0, nil
}

// pruneLocked drops the dedupe keys and index entries that expired by now.
// Entries overwritten since they were scheduled carry another expiry and are
// left alone. The caller holds m.mu.
func (m *Memory) pruneLocked(now time.Time) {
	for len(m.expiry) > 0 && !now.Before(m.expiry[0].at) {
		x := heap.Pop(&m.expiry).(expiryItem)
		if x.isIndex {
			if e, ok := m.index[x.index]; ok && e.exp.Equal(x.at) {
				delete(m.index, x.index)
			}
		} else if exp, ok := m.dedupe[x.dedupe]; ok && exp.Equal(x.at) {
			delete(m.dedupe, x.dedupe)
		}
	}
}

// expiryItem schedules the pruning of one dedupe key or index entry.
type expiryItem struct {
	at      time.Time
	isIndex bool
	index   indexKey
	dedupe  string
}

// expiryHeap is a min-heap of expiryItem by time (container/heap).
type expiryHeap []expiryItem

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiryItem)) }
func (h *expiryHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = expiryItem{}
	*h = old[:len(old)-1]
	return x
}

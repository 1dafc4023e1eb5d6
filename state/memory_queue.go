package state

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"
)

// indexKey names one message-index entry: (receiver, message id).
type indexKey struct{ user, msgID string }

// indexEntry is the message index of one (receiver, MsgID): the seqs of the
// receiver's queued items that carry the id (from any sender) and the sender
// of the latest delivery. It never expires while seqs is not empty; once the
// last of them left the queue it expires ttl later (exp), unless ttl is zero.
type indexEntry struct {
	seqs []uint64      // queued items with this id, in delivery order
	from string        // sender of the latest delivery
	ttl  time.Duration // Delivery.IndexTTL of the latest delivery
	exp  time.Time     // zero: no expiry (always so while seqs is not empty)
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

// remove tombstones the item seq and returns its MsgID; ok is false when
// there is no such live item.
func (q *memQueue) remove(seq uint64) (msgID string, ok bool) {
	i, found := q.search(seq)
	if !found || q.ents[i].dead {
		return "", false
	}
	msgID = q.ents[i].it.MsgID
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
	return msgID, true
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
	}
	// Every check before the first write, as in the Redis script: the
	// block lists, then the queue limit against the lengths before this
	// delivery.
	skip := make([]bool, len(d.Targets))
	full, left := false, 0
	for i, t := range d.Targets {
		if t.UnlessBlocked != "" {
			if _, blocked := m.blocks[t.Receiver][t.UnlessBlocked]; blocked {
				skip[i] = true
				continue
			}
		}
		if d.MaxQueue > 0 && t.Item.MsgID != "" {
			if q := m.queues[t.Receiver]; q != nil && q.live >= d.MaxQueue {
				skip[i], full = true, true
				continue
			}
		}
		left++
	}
	if full && left == 0 {
		return false, ErrQueueFull
	}
	if d.DedupeKey != "" {
		exp := expiryAt(now, d.DedupeTTL)
		m.dedupe[d.DedupeKey] = exp
		if !exp.IsZero() {
			m.expiry.push(expiryItem{at: exp, dedupe: d.DedupeKey})
		}
	}
	for i, t := range d.Targets {
		if skip[i] {
			continue
		}
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
			// The entry gets the seq and loses its expiry: it has a queued
			// item again. An entry that expired but was not pruned yet starts
			// afresh.
			k := indexKey{t.Receiver, it.MsgID}
			e := m.index[k]
			if !alive(e.exp, now) {
				e = indexEntry{}
			}
			e.seqs = append(e.seqs, seq)
			e.from, e.ttl, e.exp = it.From, d.IndexTTL, time.Time{}
			m.index[k] = e
		}
	}
	if h := d.History; h != nil {
		if m.history == nil {
			m.history = map[string][][]byte{}
		}
		log := append(m.history[h.Group], cloneBytes(h.Payload))
		if max := historyMax(h.Max); len(log) > max {
			log = append([][]byte(nil), log[len(log)-max:]...)
		}
		m.history[h.Group] = log
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
	if len(e.seqs) > 0 {
		for _, seq := range e.seqs {
			m.removeItemLocked(user, seq)
		}
		e.seqs = nil
		m.setIndexExpiryLocked(k, e, now)
	}
	return e.from, nil
}

func (m *Memory) Remove(_ context.Context, user string, seq uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.pruneLocked(now)
	msgID, ok := m.removeItemLocked(user, seq)
	if !ok || msgID == "" {
		return nil
	}
	k := indexKey{user, msgID}
	e, ok := m.index[k]
	if !ok {
		return nil
	}
	i := slices.Index(e.seqs, seq)
	if i < 0 {
		return nil
	}
	e.seqs = slices.Delete(e.seqs, i, i+1)
	if len(e.seqs) > 0 {
		m.index[k] = e
		return nil
	}
	e.seqs = nil
	m.setIndexExpiryLocked(k, e, now)
	return nil
}

// setIndexExpiryLocked stores e, whose last queued item just left the queue,
// to expire e.ttl from now (never when e.ttl is zero). The caller holds m.mu.
func (m *Memory) setIndexExpiryLocked(k indexKey, e indexEntry, now time.Time) {
	e.exp = expiryAt(now, e.ttl)
	m.index[k] = e
	if !e.exp.IsZero() {
		m.expiry.push(expiryItem{at: e.exp, index: k, isIndex: true})
	}
}

// removeItemLocked removes the item seq from user's queue and returns its
// MsgID; ok is false when there was no such item. The caller holds m.mu.
func (m *Memory) removeItemLocked(user string, seq uint64) (msgID string, ok bool) {
	q := m.queues[user]
	if q == nil {
		return "", false
	}
	msgID, ok = q.remove(seq)
	if q.live == 0 {
		delete(m.queues, user)
	}
	return msgID, ok
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
// Entries changed since they were scheduled carry another expiry (or none,
// when an item with their id was queued again) and are left alone. The
// caller holds m.mu.
func (m *Memory) pruneLocked(now time.Time) {
	for len(m.expiry) > 0 && !now.Before(m.expiry[0].at) {
		x := m.expiry.pop()
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

// expiryHeap is a min-heap of expiryItem by time. It is typed rather than
// built on container/heap, whose Push boxes every item in an interface (one
// allocation per Ack or Remove).
type expiryHeap []expiryItem

func (h *expiryHeap) push(x expiryItem) {
	*h = append(*h, x)
	a := *h
	for i := len(a) - 1; i > 0; {
		p := (i - 1) / 2
		if !a[i].at.Before(a[p].at) {
			break
		}
		a[i], a[p] = a[p], a[i]
		i = p
	}
}

// pop removes and returns the earliest item; h must not be empty.
func (h *expiryHeap) pop() expiryItem {
	a := *h
	x := a[0]
	n := len(a) - 1
	a[0] = a[n]
	a[n] = expiryItem{}
	a = a[:n]
	for i := 0; ; {
		l, m := 2*i+1, i
		if l < n && a[l].at.Before(a[m].at) {
			m = l
		}
		if r := l + 1; r < n && a[r].at.Before(a[m].at) {
			m = r
		}
		if m == i {
			break
		}
		a[i], a[m] = a[m], a[i]
		i = m
	}
	*h = a
	return x
}

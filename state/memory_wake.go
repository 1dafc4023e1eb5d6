package state

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"weak"
)

// The memory store's wake-ups reach the subscribers of the same store in
// this process: it is single-node by design. Each store's subscribers live
// in memWakeHubs, keyed by a weak pointer to the store and dropped when the
// store is garbage collected.
var memWakeHubs struct {
	mu sync.Mutex
	m  map[weak.Pointer[Memory]]*memWakes
}

// memWakes is one memory store's subscribers, by channel (a node id or
// AllNodes).
type memWakes struct {
	mu   sync.Mutex
	subs map[string]map[*memWakeSub]struct{}
}

type memWakeSub struct {
	ch     chan Wake
	closed bool // under memWakes.mu
}

func (m *Memory) wakeHub() *memWakes {
	key := weak.Make(m)
	memWakeHubs.mu.Lock()
	defer memWakeHubs.mu.Unlock()
	if memWakeHubs.m == nil {
		memWakeHubs.m = map[weak.Pointer[Memory]]*memWakes{}
	}
	h := memWakeHubs.m[key]
	if h == nil {
		h = &memWakes{subs: map[string]map[*memWakeSub]struct{}{}}
		memWakeHubs.m[key] = h
		runtime.AddCleanup(m, func(k weak.Pointer[Memory]) {
			memWakeHubs.mu.Lock()
			delete(memWakeHubs.m, k)
			memWakeHubs.mu.Unlock()
		}, key)
	}
	return h
}

func (m *Memory) Wake(_ context.Context, node string, ws ...Wake) error {
	if err := checkWakeArgs(node, ws); err != nil {
		return err
	}
	h := m.wakeHub()
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs[node] {
		for _, w := range ws {
			w.Frame = slices.Clone(w.Frame)
			select {
			case s.ch <- w:
			default: // a hint: a reader this far behind re-reads on its own
			}
		}
	}
	return nil
}

func (m *Memory) Wakes(_ context.Context, node string) (<-chan Wake, func(), error) {
	if err := checkWakesNode(node); err != nil {
		return nil, nil, err
	}
	h := m.wakeHub()
	s := &memWakeSub{ch: make(chan Wake, wakeBuffer)}
	h.mu.Lock()
	for _, c := range []string{node, AllNodes} {
		if h.subs[c] == nil {
			h.subs[c] = map[*memWakeSub]struct{}{}
		}
		h.subs[c][s] = struct{}{}
	}
	h.mu.Unlock()
	stop := func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if s.closed {
			return
		}
		s.closed = true
		for _, c := range []string{node, AllNodes} {
			delete(h.subs[c], s)
			if len(h.subs[c]) == 0 {
				delete(h.subs, c)
			}
		}
		close(s.ch)
	}
	return s.ch, stop, nil
}

func (m *Memory) RunSessions(_ context.Context, node, run string) ([]string, error) {
	r := &m.reg
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := []string{}
	for id, s := range r.sessions[run] {
		if s.Node == node {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

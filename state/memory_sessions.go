package state

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// memRegistry is the memory store's session registry, behind a lock of its
// own. Dead runs are dropped as soon as a call notices them.
type memRegistry struct {
	mu       sync.Mutex
	nodes    map[string]memNode            // node id -> live run (until exp)
	sessions map[string]map[string]Session // run -> session id -> session
}

type memNode struct {
	n   Node
	exp time.Time
}

// SetClock makes m read the time from now instead of time.Now, for tests
// on a fake clock: it drives the expiry of node records, dedupe keys and
// message-index entries. Call it before using m.
func (m *Memory) SetClock(now func() time.Time) { m.now = now }

// pruneLocked drops expired node records and the sessions of runs that are
// no node's live run. The caller holds r.mu.
func (r *memRegistry) pruneLocked(now time.Time) {
	if r.nodes == nil {
		r.nodes = map[string]memNode{}
		r.sessions = map[string]map[string]Session{}
	}
	for id, mn := range r.nodes {
		if !now.Before(mn.exp) {
			delete(r.nodes, id)
		}
	}
	for run, ss := range r.sessions {
		if len(ss) == 0 {
			delete(r.sessions, run)
			continue
		}
		for _, s := range ss {
			if mn, ok := r.nodes[s.Node]; !ok || mn.n.Run != run {
				delete(r.sessions, run)
			}
			break // every session of a run has the same node
		}
	}
}

func (m *Memory) StartNode(_ context.Context, n Node, ttl time.Duration) error {
	if err := checkNode(n, ttl); err != nil {
		return err
	}
	r := &m.reg
	r.mu.Lock()
	defer r.mu.Unlock()
	now := m.now()
	r.pruneLocked(now)
	r.nodes[n.ID] = memNode{n: n, exp: expiryAt(now, ttl)}
	r.pruneLocked(now) // the sessions of the run this one replaced
	return nil
}

func (m *Memory) Heartbeat(_ context.Context, n Node, ttl time.Duration) (bool, error) {
	if err := checkNode(n, ttl); err != nil {
		return false, err
	}
	r := &m.reg
	r.mu.Lock()
	defer r.mu.Unlock()
	now := m.now()
	r.pruneLocked(now)
	if mn, ok := r.nodes[n.ID]; !ok || mn.n.Run != n.Run {
		return false, nil
	}
	r.nodes[n.ID] = memNode{n: n, exp: expiryAt(now, ttl)}
	return true, nil
}

func (m *Memory) StopNode(_ context.Context, id, run string) error {
	r := &m.reg
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pruneLocked(m.now())
	if mn, ok := r.nodes[id]; ok && mn.n.Run == run {
		delete(r.nodes, id)
	}
	delete(r.sessions, run)
	return nil
}

func (m *Memory) Nodes(context.Context) ([]Node, error) {
	r := &m.reg
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pruneLocked(m.now())
	ns := make([]Node, 0, len(r.nodes))
	for _, mn := range r.nodes {
		ns = append(ns, mn.n)
	}
	slices.SortFunc(ns, func(a, b Node) int { return strings.Compare(a.ID, b.ID) })
	return ns, nil
}

func (m *Memory) RegisterSession(_ context.Context, ss ...Session) error {
	if len(ss) == 0 {
		return nil
	}
	if err := checkSessions(ss); err != nil {
		return err
	}
	r := &m.reg
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pruneLocked(m.now())
	node, run := ss[0].Node, ss[0].Run
	if mn, ok := r.nodes[node]; !ok || mn.n.Run != run {
		return errRunNotLive(node, run)
	}
	byID := r.sessions[run]
	if byID == nil {
		byID = map[string]Session{}
		r.sessions[run] = byID
	}
	for _, s := range ss {
		byID[s.ID] = s
	}
	return nil
}

func (m *Memory) RemoveSession(_ context.Context, s Session) error {
	r := &m.reg
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur, ok := r.sessions[s.Run][s.ID]; ok && cur.User == s.User && cur.Node == s.Node {
		delete(r.sessions[s.Run], s.ID)
	}
	return nil
}

func (m *Memory) Sessions(context.Context) ([]Session, error) {
	return m.listSessions(func(Session) bool { return true }), nil
}

func (m *Memory) UserSessions(_ context.Context, user string) ([]Session, error) {
	return m.listSessions(func(s Session) bool { return s.User == user }), nil
}

func (m *Memory) listSessions(keep func(Session) bool) []Session {
	r := &m.reg
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pruneLocked(m.now())
	out := []Session{}
	for _, byID := range r.sessions {
		for s := range maps.Values(byID) {
			if keep(s) {
				out = append(out, s)
			}
		}
	}
	sortSessions(out)
	return out
}

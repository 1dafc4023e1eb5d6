package state

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Memory is the embedded Store: everything lives in maps behind one mutex,
// nothing survives a restart. Values are deep-copied on the way in and out,
// so callers never share slices or maps with the store. Dedupe keys and
// message-index entries expire lazily on read and are pruned as later
// deliveries, acks and removals come in, so memory does not grow with old
// deliveries.
//
// UpdateUser and UpdateGroup call fn without holding the lock (like the
// Redis store, fn may run more than once and may itself use the store).
type Memory struct {
	mu  sync.Mutex
	now func() time.Time
	rev uint64 // bumped on every user and group write; detects concurrent change

	users      map[string]userRec
	followings map[string]map[string]string // user -> followee -> nick
	followers  map[string]map[string]struct{}
	blocks     map[string]map[string]struct{}
	groups     map[string]groupRec
	userGroups map[string]map[string]struct{} // user -> ids of live groups
	history    map[string][][]byte            // group -> recent-message log, oldest first

	queues map[string]*memQueue
	seqs   map[string]uint64 // last seq per receiver; never deleted, so never reused
	index  map[indexKey]indexEntry
	dedupe map[string]time.Time // key -> expiry (zero: never)
	expiry expiryHeap

	reg memRegistry // session registry: memory_sessions.go
}

type userRec struct {
	u   User
	rev uint64
}

type groupRec struct {
	g   Group
	rev uint64
}

var _ Store = (*Memory)(nil)

// maxUpdateAttempts bounds the optimistic read-modify-write loops of
// UpdateUser and UpdateGroup (in both stores).
const maxUpdateAttempts = 100

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{
		now:        time.Now,
		users:      map[string]userRec{},
		followings: map[string]map[string]string{},
		followers:  map[string]map[string]struct{}{},
		blocks:     map[string]map[string]struct{}{},
		groups:     map[string]groupRec{},
		userGroups: map[string]map[string]struct{}{},
		queues:     map[string]*memQueue{},
		seqs:       map[string]uint64{},
		index:      map[indexKey]indexEntry{},
		dedupe:     map[string]time.Time{},
	}
}

// Ping always succeeds.
func (m *Memory) Ping(context.Context) error { return nil }

// Close does nothing: the memory store holds no outside resources.
func (m *Memory) Close() error { return nil }

// ---- users ----

func (m *Memory) CreateUser(_ context.Context, u User) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.users[u.Name]; ok {
		return fmt.Errorf("user %q: %w", u.Name, ErrExists)
	}
	m.rev++
	m.users[u.Name] = userRec{u: u, rev: m.rev}
	return nil
}

func (m *Memory) GetUser(_ context.Context, name string) (User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.users[name]
	if !ok {
		return User{}, fmt.Errorf("user %q: %w", name, ErrNotFound)
	}
	return r.u, nil
}

func (m *Memory) UpdateUser(_ context.Context, name string, fn func(*User) error) (User, error) {
	for range maxUpdateAttempts {
		m.mu.Lock()
		r, ok := m.users[name]
		m.mu.Unlock()
		if !ok {
			return User{}, fmt.Errorf("user %q: %w", name, ErrNotFound)
		}
		u := r.u
		if err := fn(&u); err != nil {
			return User{}, err
		}
		u.Name = name // the key can not be renamed
		m.mu.Lock()
		if cur, ok := m.users[name]; !ok || cur.rev != r.rev {
			m.mu.Unlock()
			continue // changed (or deleted) meanwhile: run fn again
		}
		m.rev++
		m.users[name] = userRec{u: u, rev: m.rev}
		m.mu.Unlock()
		return u, nil
	}
	return User{}, fmt.Errorf("state: update user %q: gave up after %d concurrent changes", name, maxUpdateAttempts)
}

func (m *Memory) DeleteUser(_ context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.users[name]; !ok {
		return fmt.Errorf("user %q: %w", name, ErrNotFound)
	}
	delete(m.users, name)
	for f := range m.followings[name] {
		removeFromSet(m.followers, f, name)
	}
	delete(m.followings, name)
	delete(m.blocks, name)
	// The index entries of the items still queued would never expire: they go
	// with the queue. Entries whose items all left already expire on their own.
	if q := m.queues[name]; q != nil {
		for _, e := range q.ents {
			if !e.dead && e.it.MsgID != "" {
				delete(m.index, indexKey{name, e.it.MsgID})
			}
		}
	}
	delete(m.queues, name)
	// m.seqs[name] stays so that a re-created user never reuses a seq; the
	// followers set of name stays too, in step with the others' followings.
	return nil
}

func (m *Memory) ListUsers(context.Context) ([]User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	us := make([]User, 0, len(m.users))
	for _, r := range m.users {
		us = append(us, r.u)
	}
	slices.SortFunc(us, func(a, b User) int { return strings.Compare(a.Name, b.Name) })
	return us, nil
}

// ---- followings ----

func (m *Memory) Follow(_ context.Context, user string, fs []Following) error {
	if len(fs) == 0 {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.followings[user]
	if h == nil {
		h = map[string]string{}
		m.followings[user] = h
	}
	for _, f := range fs {
		h[f.User] = f.Nick
		addToSet(m.followers, f.User, user)
	}
	return nil
}

func (m *Memory) Unfollow(_ context.Context, user string, names []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.followings[user]
	for _, n := range names {
		delete(h, n)
		removeFromSet(m.followers, n, user)
	}
	if len(h) == 0 {
		delete(m.followings, user)
	}
	return nil
}

func (m *Memory) RenameFollowings(_ context.Context, user string, fs []Following) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.followings[user]
	for _, f := range fs {
		if _, ok := h[f.User]; ok {
			h[f.User] = f.Nick
		}
	}
	return nil
}

func (m *Memory) Followings(_ context.Context, user string) ([]Following, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.followings[user]
	fs := make([]Following, 0, len(h))
	for u, n := range h {
		fs = append(fs, Following{User: u, Nick: n})
	}
	slices.SortFunc(fs, func(a, b Following) int { return strings.Compare(a.User, b.User) })
	return fs, nil
}

func (m *Memory) Followers(_ context.Context, user string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return sortedKeys(m.followers[user]), nil
}

// ---- block list ----

func (m *Memory) Block(_ context.Context, user, target string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	addToSet(m.blocks, user, target)
	return nil
}

func (m *Memory) Unblock(_ context.Context, user, target string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	removeFromSet(m.blocks, user, target)
	return nil
}

func (m *Memory) BlockList(_ context.Context, user string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return sortedKeys(m.blocks[user]), nil
}

func (m *Memory) IsBlocked(_ context.Context, user, target string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.blocks[user][target]
	return ok, nil
}

// ---- groups ----

func (m *Memory) CreateGroup(_ context.Context, g Group) error {
	g = cloneGroup(g)
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.groups[g.ID]; ok {
		return fmt.Errorf("group %q: %w", g.ID, ErrExists)
	}
	m.rev++
	m.groups[g.ID] = groupRec{g: g, rev: m.rev}
	m.indexMembers(Group{}, g)
	return nil
}

func (m *Memory) GetGroup(_ context.Context, id string) (Group, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.groups[id]
	if !ok {
		return Group{}, fmt.Errorf("group %q: %w", id, ErrNotFound)
	}
	return cloneGroup(r.g), nil
}

func (m *Memory) UpdateGroup(_ context.Context, id string, fn func(*Group) error) (Group, error) {
	for range maxUpdateAttempts {
		m.mu.Lock()
		r, ok := m.groups[id]
		m.mu.Unlock()
		if !ok {
			return Group{}, fmt.Errorf("group %q: %w", id, ErrNotFound)
		}
		g := cloneGroup(r.g)
		if err := fn(&g); err != nil {
			return Group{}, err
		}
		g.ID = id           // the key can not be renamed
		ng := cloneGroup(g) // fn may keep g: store a copy of its own
		m.mu.Lock()
		if cur := m.groups[id]; cur.rev != r.rev {
			m.mu.Unlock()
			continue
		}
		m.rev++
		m.groups[id] = groupRec{g: ng, rev: m.rev}
		m.indexMembers(r.g, ng)
		m.mu.Unlock()
		return cloneGroup(ng), nil
	}
	return Group{}, fmt.Errorf("state: update group %q: gave up after %d concurrent changes", id, maxUpdateAttempts)
}

// indexMembers moves the userGroups index from old to new (either may be
// terminated or the zero Group). The caller holds m.mu.
func (m *Memory) indexMembers(old, new Group) {
	keep := map[string]bool{}
	if !new.Terminated {
		for _, u := range indexed(new) {
			keep[u] = true
			addToSet(m.userGroups, u, new.ID)
		}
	}
	if !old.Terminated {
		for _, u := range indexed(old) {
			if !keep[u] {
				removeFromSet(m.userGroups, u, old.ID)
			}
		}
	}
}

func (m *Memory) UserGroups(_ context.Context, user string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return sortedKeys(m.userGroups[user]), nil
}

// ---- helpers shared by both stores ----

// indexed is who has g in its UserGroups: the members and the owner.
func indexed(g Group) []string {
	if g.Owner == "" || slices.Contains(g.Members, g.Owner) {
		return g.Members
	}
	return append(slices.Clip(g.Members), g.Owner)
}

// cloneGroup deep-copies g. Empty slices and maps become nil, as they do in
// the Redis store's JSON (omitempty), so both stores return the same values.
func cloneGroup(g Group) Group {
	g.Members = cloneStrings(g.Members)
	g.Admins = cloneStrings(g.Admins)
	if len(g.Mutes) == 0 {
		g.Mutes = nil
	} else {
		g.Mutes = maps.Clone(g.Mutes)
	}
	return g
}

func cloneStrings(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

func cloneBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return slices.Clone(b)
}

func addToSet(sets map[string]map[string]struct{}, key, member string) {
	s := sets[key]
	if s == nil {
		s = map[string]struct{}{}
		sets[key] = s
	}
	s[member] = struct{}{}
}

func removeFromSet(sets map[string]map[string]struct{}, key, member string) {
	s, ok := sets[key]
	if !ok {
		return
	}
	delete(s, member)
	if len(s) == 0 {
		delete(sets, key)
	}
}

// sortedKeys returns the members of s sorted; never nil.
func sortedKeys(s map[string]struct{}) []string {
	out := make([]string, 0, len(s))
	for k := range s {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

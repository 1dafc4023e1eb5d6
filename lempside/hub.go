package lempside

import (
	"sync"

	"github.com/lempgw/lempgw/bridge"
)

// Hub is the registry of live sessions on this node: one per user. It
// implements bridge.Local.
type Hub struct {
	mu    sync.RWMutex
	users map[string]*conn
}

var _ bridge.Local = (*Hub)(nil)

// NewHub returns an empty Hub.
func NewHub() *Hub { return &Hub{users: make(map[string]*conn)} }

// register makes c the session of user and returns the one it replaces.
func (h *Hub) register(user string, c *conn) *conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	old := h.users[user]
	h.users[user] = c
	return old
}

// unregister removes c if it is still user's session; it reports whether it was.
func (h *Hub) unregister(user string, c *conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.users[user] != c {
		return false
	}
	delete(h.users, user)
	return true
}

func (h *Hub) get(user string) *conn {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.users[user]
}

// Online reports whether user has a live session here.
func (h *Hub) Online(user string) bool { return h.get(user) != nil }

// Count returns the number of live sessions.
func (h *Hub) Count() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.users)
}

// Notify wakes user's delivery loop.
func (h *Hub) Notify(user string) {
	if c := h.get(user); c != nil {
		c.wake()
	}
}

// Push sends an ephemeral frame to user's session, if any.
func (h *Hub) Push(user string, frame []byte) {
	if c := h.get(user); c != nil {
		c.push(frame)
	}
}

// Disconnect closes user's session, if any.
func (h *Hub) Disconnect(user, reason string) {
	if c := h.get(user); c != nil {
		c.closeWith(closeAccountGone, reason)
	}
}

package lempside

import (
	lru "github.com/hashicorp/golang-lru/v2"
)

// writtenSeqs remembers, per user, the last queue item this node wrote to
// one of the user's sessions, for lempgw_redeliveries_total: what a new
// session is written again up to that seq was had before and not
// acknowledged. Bounded: the least recently seen users are forgotten (their
// next redeliveries are then not counted).
const writtenSeqs = 100_000

func (h *Hub) seqCache() *lru.Cache[string, uint64] {
	h.seqsInit.Do(func() {
		h.seqs, _ = lru.New[string, uint64](writtenSeqs)
	})
	return h.seqs
}

// written records that seq of user's queue was written to a session.
func (h *Hub) written(user string, seq uint64) {
	c := h.seqCache()
	if old, ok := c.Peek(user); !ok || seq > old {
		c.Add(user, seq)
	}
}

// lastWritten returns the last seq of user's queue written to a session of
// this node, 0 if none is remembered.
func (h *Hub) lastWritten(user string) uint64 {
	seq, _ := h.seqCache().Get(user)
	return seq
}

package xmppside

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"mellium.im/xmpp"

	"github.com/lempgw/lempgw/bridge"
	"github.com/lempgw/lempgw/mapping"
	"github.com/lempgw/lempgw/state"
)

const (
	outboundBatch  = 64               // items read from the queue at once
	outboundWindow = 256              // stanzas written and not yet confirmed
	queuedAfter    = 10 * time.Second // older messages carry an XEP-0203 delay
	retryAfter     = time.Second      // after a failed queue read
)

// sendLoop drains bridge.OutboundQueue onto the component stream, in order.
// An item leaves the queue only once the server has provably read it: every
// stanza is followed, in the same write, by an XEP-0199 ping to the server,
// and the server answers in stream order, so a pong proves the stanza before
// it arrived; reading both in one go, the server handles both or neither.
// Pings are pipelined (up to window in flight), so they cost no round trip
// per stanza. When the link drops, the unconfirmed stanzas are sent again on
// the next stream, in order: nothing is lost. Only a stanza unconfirmed when
// its stream ended can arrive twice: when the server handled it but its
// answer never reached us (barrier.go, docs/architecture.md, "Exactly once
// across a server restart"); it keeps its id and origin-id.
//
// The MUC service's bridge.RoomQueue is drained onto its own link the same
// way: an outbox is one queue and the link it goes out on.
func (c *Component) sendLoop(ctx context.Context, ob *outbox) {
	for {
		sess, down, err := ob.link.up(ctx)
		if err != nil {
			return
		}
		if err := c.drain(ctx, ob, sess, down); err != nil && ctx.Err() == nil {
			c.log.Warn("outbound stream interrupted; resending unconfirmed stanzas on the next stream", "queue", ob.queue, "err", err)
			ob.link.drop(sess)
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// outbox is a durable queue drained in order onto a component link.
type outbox struct {
	queue   string // bridge.OutboundQueue or bridge.RoomQueue
	link    *link
	wake    chan struct{}
	stanzas func(state.Item) ([]any, error) // an item's stanzas; an error drops it
}

// flight is a stanza written and not yet confirmed.
type flight struct {
	seq  uint64
	id   string     // the barrier ping's id
	resp chan error // the barrier ping's outcome; nil for an item that was dropped
}

// drain sends until the session drops (nil) or fails (error).
func (c *Component) drain(ctx context.Context, ob *outbox, sess *xmpp.Session, down <-chan struct{}) error {
	inflight := make(chan flight, outboundWindow)
	failed := make(chan error, 1)
	confirmed := make(chan struct{})
	go func() { // confirm in order, remove what the server has read
		defer close(confirmed)
		for f := range inflight {
			if f.resp != nil {
				if err := wait(f.resp, barrierTimeout, down); err != nil {
					c.barrier.forget(f.id)
					select {
					case failed <- err:
					default:
					}
					for f := range inflight { // the rest is unconfirmed: it stays queued
						c.barrier.forget(f.id)
					}
					return
				}
			}
			if err := c.core.Written(ctx, ob.queue, f.seq); err != nil && ctx.Err() == nil {
				c.log.Error("removing a sent outbound item", "queue", ob.queue, "seq", f.seq, "err", err)
			}
		}
	}()
	defer func() { close(inflight); <-confirmed }()

	var cursor uint64
	for {
		select {
		case err := <-failed:
			return fmt.Errorf("barrier ping: %w", err)
		default:
		}
		items, err := c.core.Pending(ctx, ob.queue, cursor, outboundBatch)
		if err != nil {
			c.log.Error("reading the outbound queue", "queue", ob.queue, "err", err)
			items = nil
		}
		if len(items) == 0 {
			var retry <-chan time.Time
			if err != nil {
				retry = time.After(retryAfter)
			}
			select {
			case <-ob.wake:
			case <-retry:
			case err := <-failed:
				return fmt.Errorf("barrier ping: %w", err)
			case <-down:
				return nil
			case <-ctx.Done():
				return nil
			}
			continue
		}
		for _, it := range items {
			cursor = it.Seq
			f := flight{seq: it.Seq}
			if sts, err := ob.stanzas(it); err != nil {
				// Poison: it can never be sent; drop it (in order).
				c.log.Error("unsendable outbound item", "queue", ob.queue, "seq", it.Seq, "from", it.From, "err", err)
				c.metrics.dropped.WithLabelValues("outbound").Inc()
			} else {
				f.id, f.resp = c.barrier.add()
				if err := c.writeWithPing(ctx, ob.link, sess, sts, f.id); err != nil {
					c.barrier.forget(f.id)
					return fmt.Errorf("writing stanza: %w", err)
				}
				c.metrics.stanzasOut.Add(float64(len(sts)))
			}
			select {
			case inflight <- f:
			case err := <-failed:
				return fmt.Errorf("barrier ping: %w", err)
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// stanzasFor maps one queued item to its stanzas: a message, or a presence
// (one per receiver of a broadcast; receivers whose JID is unusable are
// skipped).
func (c *Component) stanzasFor(it state.Item) ([]any, error) {
	o, err := bridge.DecodeOutbound(it.Payload)
	if err != nil {
		return nil, fmt.Errorf("bad outbound payload: %v", err)
	}
	switch {
	case o.P != nil:
		return c.presenceFor(o)
	case o.G != nil: // a server room's membership change (serverrooms.go)
		return c.serverRoomEvent(context.Background(), o.G)
	case o.Room:
		return c.serverRoomMessage(o.M)
	}
	m := o.M
	from, err := c.addr.LocalJID(m.S)
	if err != nil {
		return nil, fmt.Errorf("sender %q: %w", m.S, err)
	}
	to, err := mapping.ParseAddress(m.R)
	if err != nil {
		return nil, fmt.Errorf("receiver %q: %w", m.R, err)
	}
	queued := m.SR == nil && m.DM == nil && m.NM == nil && c.now().Sub(time.UnixMilli(int64(m.ST))) > queuedAfter
	st := mapping.ToStanza(m, from, to, queued)
	c.sent.add(m.S, strings.ToLower(to.String()), st.ID)
	return []any{st}, nil
}

// presenceFor maps a queued presence to one stanza per receiver.
func (c *Component) presenceFor(o bridge.OutboundItem) ([]any, error) {
	p := o.P
	from, err := c.addr.LocalJID(p.S)
	if err != nil {
		return nil, fmt.Errorf("sender %q: %w", p.S, err)
	}
	tos := o.To
	if len(tos) == 0 {
		tos = []string{p.R}
	}
	out := make([]any, 0, len(tos))
	for i, r := range tos {
		to, err := mapping.ParseAddress(r)
		if err != nil {
			c.log.Warn("presence for an unusable JID skipped", "from", p.S, "to", r, "err", err)
			c.metrics.dropped.WithLabelValues("outbound").Inc()
			continue
		}
		one := *p
		if len(tos) > 1 {
			one.ID = p.ID + "-" + strconv.Itoa(i)
		}
		out = append(out, mapping.ToPresence(&one, from, to))
		c.metrics.presence.WithLabelValues("lemp-xmpp", string(p.T)).Inc()
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("presence %s of %s has no usable receiver", p.T, p.S)
	}
	return out, nil
}

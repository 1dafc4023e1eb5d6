package xmppside

import (
	"context"
	"encoding/json"
	"fmt"
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
// stanza is followed by an XEP-0199 ping to the server, and the server
// answers in stream order, so a pong proves the stanza before it arrived.
// Pings are pipelined (up to window in flight), so they cost no round trip
// per stanza. When the link drops, the unconfirmed stanzas are sent again on
// the next stream, in order: nothing is lost; a stanza the server read but
// whose pong was lost with the link is the only possible duplicate (it keeps
// its id and origin-id).
func (c *Component) sendLoop(ctx context.Context) {
	for {
		sess, down, err := c.link.up(ctx)
		if err != nil {
			return
		}
		if err := c.drain(ctx, sess, down); err != nil && ctx.Err() == nil {
			c.log.Warn("outbound stream interrupted; resending unconfirmed stanzas on the next stream", "err", err)
			c.link.drop(sess)
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// flight is a stanza written and not yet confirmed.
type flight struct {
	seq  uint64
	resp chan error // the barrier ping's outcome; nil for an item that was dropped
}

// drain sends until the session drops (nil) or fails (error).
func (c *Component) drain(ctx context.Context, sess *xmpp.Session, down <-chan struct{}) error {
	inflight := make(chan flight, outboundWindow)
	failed := make(chan error, 1)
	confirmed := make(chan struct{})
	go func() { // confirm in order, remove what the server has read
		defer close(confirmed)
		for f := range inflight {
			if f.resp != nil {
				if err := <-f.resp; err != nil {
					select {
					case failed <- err:
					default:
					}
					for range inflight { // the rest is unconfirmed: it stays queued
					}
					return
				}
			}
			if err := c.core.Written(ctx, bridge.OutboundQueue, f.seq); err != nil && ctx.Err() == nil {
				c.log.Error("removing a sent outbound item", "seq", f.seq, "err", err)
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
		items, err := c.core.Pending(ctx, bridge.OutboundQueue, cursor, outboundBatch)
		if err != nil {
			c.log.Error("reading the outbound queue", "err", err)
			items = nil
		}
		if len(items) == 0 {
			var retry <-chan time.Time
			if err != nil {
				retry = time.After(retryAfter)
			}
			select {
			case <-c.wake:
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
			if st, err := c.stanzaFor(it); err != nil {
				// Poison: it can never be sent; drop it (in order).
				c.log.Error("unsendable outbound item", "seq", it.Seq, "from", it.From, "err", err)
				c.metrics.dropped.WithLabelValues("outbound").Inc()
			} else {
				if err := sess.Encode(ctx, st); err != nil {
					return fmt.Errorf("writing stanza: %w", err)
				}
				c.metrics.stanzasOut.Inc()
				f.resp = make(chan error, 1)
				go func() { f.resp <- c.link.ping(ctx, sess) }()
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

// stanzaFor maps one queued LEMP frame to its stanza.
func (c *Component) stanzaFor(it state.Item) (mapping.Message, error) {
	var f bridge.Frame
	if err := json.Unmarshal(it.Payload, &f); err != nil || f.M == nil {
		return mapping.Message{}, fmt.Errorf("bad outbound payload: %v", err)
	}
	m := f.M
	from, err := c.addr.LocalJID(m.S)
	if err != nil {
		return mapping.Message{}, fmt.Errorf("sender %q: %w", m.S, err)
	}
	to, err := mapping.ParseAddress(m.R)
	if err != nil {
		return mapping.Message{}, fmt.Errorf("receiver %q: %w", m.R, err)
	}
	queued := m.SR == nil && m.DM == nil && m.NM == nil && c.now().Sub(time.UnixMilli(int64(m.ST))) > queuedAfter
	return mapping.ToStanza(m, from, to, queued), nil
}

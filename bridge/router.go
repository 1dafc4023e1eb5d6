package bridge

import (
	"context"
	"errors"
	"strings"

	"github.com/lempgw/lempgw/state"
)

// MaxContentBytes bounds a message's content; the frame limit usually bites first.
const MaxContentBytes = 1 << 20

// Send accepts a message from a logged-in LEMP user: it validates it, writes
// it durably to every receiver's queue (de-duplicated by sender and id) and
// wakes the receivers' sessions. A nil result means the message is durable
// and the sender may get its server receipt; otherwise the error says why it
// was refused (contract decision 13). m is normalised in place: s is the
// sender, st is set when absent, flags are "0"/"1".
func (c *Core) Send(ctx context.Context, from string, m *Message) *Error {
	if m.ID == "" {
		return Errorf(CodeBadRequest, "message id is required")
	}
	if m.R == "" {
		return Errorf(CodeBadRequest, "message receiver r is required")
	}
	if m.T == "" {
		m.T = TypeText
	}
	if !ValidType(m.T) {
		return Errorf(CodeBadRequest, "message type %q is not one of t, p, v, a, l", m.T)
	}
	if len(m.C) > MaxContentBytes {
		return Errorf(CodeTooLarge, "message content over %d bytes", MaxContentBytes)
	}
	m.S = from
	if m.ST == 0 {
		m.ST = Millis(c.nowMs())
	}
	m.P, m.SC, m.PC = m.P.Norm(), m.SC.Norm(), m.PC.Norm()
	m.SR, m.DM, m.NM, m.E = nil, nil, nil, nil

	if IsJID(m.R) {
		// A Jabber user, unless it is a room of the XMPP server that is a
		// LEMP group.
		_, err := c.store.GetGroup(ctx, foldID(m.R))
		if errors.Is(err, state.ErrNotFound) {
			return c.sendRemote(ctx, "m\x00"+from+"\x00"+m.ID, m)
		}
		if err != nil {
			return c.storeErr(ctx, "get group", err)
		}
	}
	var targets []state.Target
	var receivers []string
	var history *state.HistoryEntry
	var wakeRemote, wakeRooms bool
	// queue adds an item for the XMPP side (OutboundQueue or RoomQueue).
	queue := func(q string, it OutboundItem) {
		targets = append(targets, state.Target{Receiver: q, Item: state.Item{
			From: from, Payload: it.Encode(), AckOnWrite: true,
		}})
		if q == RoomQueue {
			wakeRooms = true
		} else {
			wakeRemote = true
		}
	}
	ackOnWrite := !m.PC.On()
	// item adds receiver r; unlessBlocked makes the store skip it when r
	// blocked the sender (a blocked sender is not told: its message is dropped).
	item := func(r string, payload []byte, unlessBlocked bool) {
		if !m.P.On() && !c.local.Online(r) {
			return // p "0": not kept for an offline receiver
		}
		t := state.Target{Receiver: r, Item: state.Item{
			From: from, MsgID: m.ID, Payload: payload, AckOnWrite: ackOnWrite,
		}}
		if unlessBlocked {
			t.UnlessBlocked = from
		}
		targets = append(targets, t)
		receivers = append(receivers, r)
	}

	r := FoldUsername(m.R)
	var err error
	if IsJID(r) {
		err = state.ErrNotFound // a server room: no user has an '@'
	} else {
		_, err = c.store.GetUser(ctx, r)
	}
	switch {
	case err == nil:
		m.R = r
		item(r, Frame{M: m}.Encode(), true)
	case errors.Is(err, state.ErrNotFound):
		g, err := c.store.GetGroup(ctx, r)
		if errors.Is(err, state.ErrNotFound) {
			return Errorf(CodeNotFound, "unknown receiver %s", m.R)
		}
		if err != nil {
			return c.storeErr(ctx, "get group", err)
		}
		if g.Terminated {
			return Errorf(CodeForbidden, "group terminated")
		}
		m.R = g.ID
		switch g.Kind {
		case state.KindBroadcast:
			if g.Owner != from {
				return Errorf(CodeForbidden, "not the owner of broadcast list %s", g.ID)
			}
			for _, mem := range g.Members {
				one := *m
				one.R = mem
				if IsJID(mem) {
					// A 1:1 chat from the owner; its receipts come back to the owner.
					if c.remote != nil {
						queue(OutboundQueue, OutboundItem{M: &one})
					}
					continue
				}
				item(mem, Frame{M: &one}.Encode(), true)
			}
		default:
			if !contains(g.Members, from) {
				return Errorf(CodeForbidden, "not a member")
			}
			payload := Frame{M: m}.Encode()
			for _, mem := range g.Members {
				if mem != from && !IsJID(mem) {
					item(mem, payload, false)
				}
			}
			switch {
			case IsServerRoom(g.ID):
				// The other LEMP members got their copies above; the room
				// gets it from the sender's occupant, for its other occupants.
				if c.remote == nil {
					return errBridgingOff
				}
				queue(OutboundQueue, OutboundItem{M: m, Room: true})
			case c.RoomsOn() && hasJabberMember(g.Members):
				queue(RoomQueue, OutboundItem{M: m})
			}
			history = c.historyFor(&g, m)
		}
	default:
		return c.storeErr(ctx, "get user", err)
	}

	dup, err := c.store.Deliver(ctx, state.Delivery{
		DedupeKey: "m\x00" + from + "\x00" + m.ID,
		DedupeTTL: c.cfg.DedupeTTL,
		IndexTTL:  c.cfg.IndexTTL,
		Targets:   targets,
		History:   history,
		MaxQueue:  c.cfg.MaxQueue, // 429 when no receiver has room (core.go, storeErr)
	})
	if err != nil {
		return c.storeErr(ctx, "deliver", err)
	}
	if !dup {
		for _, r := range receivers {
			c.local.Notify(r)
		}
		c.wake(wakeRemote, wakeRooms)
	}
	return nil
}

// wake wakes the senders of OutboundQueue and RoomQueue.
func (c *Core) wake(remote, rooms bool) {
	if remote && c.remote != nil {
		c.remote.Notify()
	}
	if rooms && c.rooms != nil {
		c.rooms.NotifyRooms()
	}
}

// Receipt handles a delivered (dm) or noticed (nm) message from user: the
// acknowledged message leaves user's queue, and the receipt is routed back to
// the message's original sender as
// {"m":{"id":<receipt id>,"s":user,"r":<sender>,"st":..,"dm":{"id":<message id>}}}.
func (c *Core) Receipt(ctx context.Context, user string, m *Message) *Error {
	ref := m.DM
	if ref == nil {
		ref = m.NM
	}
	if ref == nil || ref.ID == "" {
		return Errorf(CodeBadRequest, "receipt without a message id")
	}
	sender, err := c.store.Ack(ctx, user, ref.ID)
	if errors.Is(err, state.ErrNotFound) {
		return Errorf(CodeNotFound, "unknown message %s", ref.ID)
	}
	if err != nil {
		return c.storeErr(ctx, "ack", err)
	}
	if sender == user {
		return nil // a self-message: nobody else to tell
	}
	if IsJID(sender) && (strings.Contains(sender, "/") || c.isGroup(ctx, sender)) {
		return nil // a message from a room: receipts are not sent into rooms
	}
	st := m.ST
	if st == 0 {
		st = Millis(c.nowMs())
	}
	out := &Message{ID: m.ID, S: user, R: sender, ST: st}
	if m.DM != nil {
		out.DM = &Ref{ID: ref.ID}
	} else {
		out.NM = &Ref{ID: ref.ID}
	}
	if out.ID == "" {
		out.ID = ref.ID
	}
	kind := "dm"
	if out.NM != nil {
		kind = "nm"
	}
	if IsJID(sender) {
		return c.sendRemote(ctx, kind+"\x00"+user+"\x00"+sender+"\x00"+ref.ID, out)
	}
	dup, err := c.store.Deliver(ctx, state.Delivery{
		DedupeKey: kind + "\x00" + user + "\x00" + sender + "\x00" + ref.ID,
		DedupeTTL: c.cfg.DedupeTTL,
		Targets: []state.Target{{Receiver: sender, Item: state.Item{
			From: user, Payload: Frame{M: out}.Encode(), AckOnWrite: true,
		}}},
	})
	if err != nil {
		return c.storeErr(ctx, "deliver receipt", err)
	}
	if !dup {
		c.local.Notify(sender)
	}
	return nil
}

// Pending returns queued items of user after seq (the LEMP side's delivery loop).
func (c *Core) Pending(ctx context.Context, user string, after uint64, limit int) ([]state.Item, error) {
	return c.store.Pending(ctx, user, after, limit)
}

// Written is called once an AckOnWrite item was written to user's socket.
func (c *Core) Written(ctx context.Context, user string, seq uint64) error {
	return c.store.Remove(ctx, user, seq)
}

// pushEvent queues a group information push to each receiver (durable, removed
// once written) and wakes them.
func (c *Core) pushEvent(ctx context.Context, receivers []string, g *GroupInfo) error {
	payload := Frame{I: &Info{G: g}}.Encode()
	targets := make([]state.Target, 0, len(receivers)+1)
	var locals []string
	for _, r := range receivers {
		if IsJID(r) {
			continue
		}
		targets = append(targets, state.Target{Receiver: r, Item: state.Item{From: g.S, Payload: payload, AckOnWrite: true}})
		locals = append(locals, r)
	}
	// The XMPP side's copy, in the same atomic write: a server room's
	// membership changes become joins and leaves of the members' occupants;
	// a hosted group's events reach its Jabber occupants through its room.
	var wakeRemote, wakeRooms bool
	event := OutboundItem{G: g}.Encode()
	switch {
	case IsServerRoom(g.I) && c.remote != nil && len(g.T) == 1 && strings.Contains("cablt", g.T):
		targets = append(targets, state.Target{Receiver: OutboundQueue, Item: state.Item{From: g.S, Payload: event, AckOnWrite: true}})
		wakeRemote = true
	case !IsServerRoom(g.I) && c.RoomsOn() && hasJabberMember(receivers):
		targets = append(targets, state.Target{Receiver: RoomQueue, Item: state.Item{From: g.S, Payload: event, AckOnWrite: true}})
		wakeRooms = true
	}
	if len(targets) == 0 {
		return nil
	}
	if _, err := c.store.Deliver(ctx, state.Delivery{Targets: targets}); err != nil {
		return err
	}
	for _, r := range locals {
		c.local.Notify(r)
	}
	c.wake(wakeRemote, wakeRooms)
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

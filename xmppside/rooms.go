package xmppside

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"

	"github.com/lempgw/lempgw/bridge"
	"github.com/lempgw/lempgw/mapping"
	"github.com/lempgw/lempgw/state"
	"github.com/lempgw/lempgw/xmppside/muc"
)

// Hosted rooms: every LEMP group g is the members-only room g@<muc domain>
// of the MUC service (package muc), served on a second component link.
// Jabber members join it; LEMP members are its always-present occupants.
// A LEMP member's group message and the group's events come through the
// durable bridge.RoomQueue (drained onto this link like OutboundQueue onto
// the main one); what Jabber occupants send is handled by the engine and
// answered on this link directly.

// roomBackend is muc.Backend over the core.
type roomBackend struct{ core *bridge.Core }

var _ muc.Backend = roomBackend{}

// errOf turns a core result into an error (a nil *bridge.Error is no error).
func errOf(e *bridge.Error) error {
	if e == nil {
		return nil
	}
	return e
}

func roomOf(g state.Group) muc.Room {
	return muc.Room{ID: g.ID, Name: g.Name, Picture: g.Picture, Owner: g.Owner,
		Admins: g.Admins, Members: g.Members, Terminated: g.Terminated}
}

func (b roomBackend) Room(ctx context.Context, id string) (muc.Room, error) {
	g, e := b.core.Room(ctx, id)
	switch {
	case e == nil:
		return roomOf(g), nil
	case e.Code == bridge.CodeNotFound:
		return muc.Room{}, muc.ErrNoRoom
	case e.Code == bridge.CodeForbidden && g.Terminated:
		return muc.Room{ID: g.ID, Terminated: true}, nil
	}
	return muc.Room{}, e
}

func (b roomBackend) Post(ctx context.Context, room, from string, m *bridge.Message) error {
	m.S, m.R = from, room
	return errOf(b.core.GroupPost(ctx, m))
}

func (b roomBackend) History(ctx context.Context, room string, max int) ([]*bridge.Message, error) {
	ms, e := b.core.RoomHistory(ctx, room, max)
	return ms, errOf(e)
}

func (b roomBackend) SetSubject(ctx context.Context, room, actor, subject string) error {
	return errOf(b.core.SetGroupName(ctx, actor, room, subject))
}

func (b roomBackend) Admin(ctx context.Context, room, actor, op string, targets []string) error {
	switch op {
	case muc.OpAdd:
		return errOf(b.core.AddMembers(ctx, actor, room, targets))
	case muc.OpAdmin:
		if e := b.core.AddMembers(ctx, actor, room, targets); e != nil {
			return e
		}
		return errOf(b.core.AddAdmins(ctx, actor, room, targets))
	case muc.OpBanish:
		return errOf(b.core.Banish(ctx, actor, room, targets))
	case muc.OpTerminate:
		return errOf(b.core.Terminate(ctx, actor, room))
	}
	return bridge.Errorf(bridge.CodeBadRequest, "unknown room operation %q", op)
}

// roomHandler reads the MUC link's stanzas. Like handler, it never returns
// an error (that would end the stream) and recovers panics.
type roomHandler struct{ c *Component }

func (h roomHandler) HandleXMPP(t xmlstream.TokenReadEncoder, start *xml.StartElement) (err error) {
	c := h.c
	defer func() {
		if r := recover(); r != nil {
			c.metrics.panics.Inc()
			c.log.Error("panic reading a MUC stanza", "panic", r, "stanza", start.Name.Local)
			err = nil
		}
	}()
	c.metrics.stanzasIn.WithLabelValues("muc-" + start.Name.Local).Inc()
	if start.Name.Local == "iq" {
		// The answers to the outbound sender's barrier pings.
		if id, typ := attr(start, "id"), attr(start, "type"); (typ == "result" || typ == "error") && c.barrier.resolve(id, typ) {
			_ = xmlstream.Skip(t)
			return nil
		}
	}
	st, derr := muc.Decode(*start, t)
	if derr != nil {
		c.drop("malformed muc stanza", derr)
		if ans := muc.BadRequest(*start); ans != nil {
			_ = t.Encode(ans)
		}
		return nil
	}
	c.dispatch(bareOf(st.From), func(ctx context.Context) {
		for _, v := range c.muc.Handle(ctx, st) {
			c.sendRoomNow(ctx, v)
		}
	})
	return nil
}

// sendRoomNow writes v (an answer that need not be durable) on the MUC link.
func (c *Component) sendRoomNow(ctx context.Context, v any) {
	sess, _, err := c.roomLink.up(ctx)
	if err != nil {
		return
	}
	if err := sess.Encode(context.WithoutCancel(ctx), v); err != nil {
		c.log.Warn("sending a MUC stanza", "err", err)
	}
}

// NotifyRooms wakes the RoomQueue sender (bridge.Rooms).
func (c *Component) NotifyRooms() {
	select {
	case c.roomWake <- struct{}{}:
	default:
	}
}

// roomStanzasFor maps one RoomQueue item: a LEMP member's message, fanned
// out to the room's Jabber occupants, or a group event (invitations, joins
// and leaves of occupants, subject, destruction). The Jabber members of a
// group that was created or that gained members also get an XEP-0249
// direct invitation from the inviter's JID, on the main link.
func (c *Component) roomStanzasFor(it state.Item) ([]any, error) {
	o, err := bridge.DecodeOutbound(it.Payload)
	if err != nil {
		return nil, fmt.Errorf("bad room queue payload: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), iqTimeout)
	defer cancel()
	switch {
	case o.M != nil:
		return c.muc.Fanout(ctx, o.M.R, o.M), nil
	case o.G != nil:
		r, err := roomBackend{c.core}.Room(ctx, o.G.I)
		if errors.Is(err, muc.ErrNoRoom) {
			r = muc.Room{ID: o.G.I, Terminated: true}
		} else if err != nil {
			return nil, err
		}
		out := c.muc.Event(ctx, r, o.G)
		if o.G.T == "c" || o.G.T == "a" {
			c.directInvites(ctx, r, o.G)
		}
		return out, nil
	}
	return nil, errors.New("room queue item without a message or an event")
}

// directInvites sends the XEP-0249 invitations of a creation or addition,
// from the inviter's own JID (best effort: the mediated invitation from the
// room is the durable one).
func (c *Component) directInvites(ctx context.Context, r muc.Room, g *bridge.GroupInfo) {
	inviter, err := c.addr.LocalBareJID(g.S)
	if err != nil {
		return // a Jabber admin added them: the room's invitation is enough
	}
	room, err := jid.New(mapping.EscapeLocal(r.ID), c.muc.Domain(), "")
	if err != nil {
		return
	}
	invitees := names(g.M)
	if g.T == "c" {
		invitees = r.Members
	}
	for _, m := range invitees {
		if !strings.Contains(m, "@") {
			continue
		}
		to, err := mapping.ParseAddress(m)
		if err != nil {
			continue
		}
		c.sendNow(ctx, muc.DirectInvite(inviter, to, room, r.Name))
	}
}

// RoomOccupants lists the nicks of the Jabber occupants of a hosted room
// (for tests and the admin tools); nil when the MUC service is off.
func (c *Component) RoomOccupants(room string) []string {
	if c.muc == nil {
		return nil
	}
	var out []string
	for _, o := range c.muc.Occupants(room) {
		out = append(out, o.Nick)
	}
	return out
}

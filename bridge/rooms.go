package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"slices"

	"github.com/lempgw/lempgw/state"
)

// RoomQueue is the durable queue of the MUC service (the second component
// link, on xmpp.muc_domain): LEMP members' messages to groups that have Jabber
// members, and those groups' events. Like OutboundQueue its name has a
// character no username can have.
const RoomQueue = "@muc"

// Rooms is what the core needs from the MUC service. Implemented by xmppside.
type Rooms interface {
	// NotifyRooms wakes the sender of RoomQueue: there are new items.
	NotifyRooms()
}

// SetRooms turns the MUC service on: groups may have Jabber members, who
// take part through the group's room. Needs SetRemote too. Call before serving.
func (c *Core) SetRooms(r Rooms) { c.rooms = r }

// RoomsOn reports whether LEMP groups are hosted as MUC rooms.
func (c *Core) RoomsOn() bool { return c.rooms != nil && c.remote != nil }

// IsServerRoom reports whether a group id names a room of the XMPP server
// (a bare JID) rather than a group hosted by the gateway.
func IsServerRoom(id string) bool { return IsJID(id) }

// historyFor is the group log entry of a message: the frame a Jabber user
// joining the room is shown. Nil for broadcast lists and server rooms (the
// server's room keeps its own history).
func (c *Core) historyFor(g *state.Group, m *Message) *state.HistoryEntry {
	if !c.RoomsOn() || g.Kind != state.KindGroup || IsServerRoom(g.ID) {
		return nil
	}
	return &state.HistoryEntry{Group: g.ID, Payload: Frame{M: m}.Encode()}
}

// hasJabberMember reports whether any of names is a Jabber user.
func hasJabberMember(names []string) bool { return slices.ContainsFunc(names, IsJID) }

// Room returns a live hosted group for the MUC service.
func (c *Core) Room(ctx context.Context, id string) (state.Group, *Error) {
	id = foldID(id)
	if IsServerRoom(id) {
		return state.Group{}, Errorf(CodeNotFound, "group %s not found", id)
	}
	g, e := c.read(ctx, id, state.KindGroup)
	return g, e
}

// RoomHistory returns up to n of the latest messages of a hosted group,
// oldest first.
func (c *Core) RoomHistory(ctx context.Context, id string, n int) ([]*Message, *Error) {
	raw, err := c.store.History(ctx, foldID(id), n)
	if err != nil {
		return nil, c.storeErr(ctx, "history", err)
	}
	out := make([]*Message, 0, len(raw))
	for _, b := range raw {
		var f Frame
		err := json.Unmarshal(b, &f)
		if err != nil || f.M == nil {
			c.log.WarnContext(ctx, "skipping a corrupt group log entry", "group", id, "err", err)
			continue
		}
		out = append(out, f.M)
	}
	return out, nil
}

// GroupPost accepts a groupchat message from a Jabber member (m.S its bare
// JID) to the hosted group m.R: it is made durable for every LEMP member,
// de-duplicated by (sender, id), and logged for the room's history. The MUC
// service reflects it to the Jabber occupants once this returns nil.
func (c *Core) GroupPost(ctx context.Context, m *Message) *Error {
	if !IsJID(m.S) || m.R == "" {
		return Errorf(CodeBadRequest, "group post needs a Jabber sender and a group")
	}
	if !ValidType(m.T) {
		m.T = TypeText
	}
	if len(m.C) > MaxContentBytes {
		return Errorf(CodeTooLarge, "message content over %d bytes", MaxContentBytes)
	}
	g, e := c.Room(ctx, m.R)
	if e != nil {
		return e
	}
	if !slices.Contains(g.Members, m.S) {
		return Errorf(CodeForbidden, "not a member of %s", g.ID)
	}
	m.R = g.ID
	if m.ST == 0 {
		m.ST = Millis(c.nowMs())
	}
	m.P, m.SC, m.PC = m.P.Norm(), FlagOff, m.PC.Norm()
	m.SR, m.DM, m.NM, m.E = nil, nil, nil, nil
	dedupe := ""
	if m.ID == "" {
		m.ID = randomID()
	} else {
		dedupe = "m\x00" + m.S + "\x00" + m.ID
	}
	payload := Frame{M: m}.Encode()
	var targets []state.Target
	var receivers []string
	for _, mem := range g.Members {
		if IsJID(mem) || (!m.P.On() && !c.local.Online(mem)) {
			continue
		}
		targets = append(targets, state.Target{Receiver: mem, UnlessBlocked: m.S, Item: state.Item{
			From: m.S, MsgID: m.ID, Payload: payload, AckOnWrite: !m.PC.On(),
		}})
		receivers = append(receivers, mem)
	}
	dup, err := c.store.Deliver(ctx, state.Delivery{
		DedupeKey: dedupe, DedupeTTL: c.cfg.DedupeTTL, IndexTTL: c.cfg.IndexTTL,
		Targets: targets, History: c.historyFor(&g, m),
	})
	if err != nil {
		return c.storeErr(ctx, "deliver", err)
	}
	if !dup {
		for _, r := range receivers {
			c.local.Notify(r)
		}
	}
	return nil
}

// RoomMessage accepts a message that a room of the XMPP server sent to the
// occupant of local member user: m.R is the room's bare JID (the group id),
// m.S the author (its real JID when the room reveals it, else room/nick).
// It goes to user alone, de-duplicated by (room, user, id): each LEMP member
// has an occupant of its own and gets its own copy from the room.
func (c *Core) RoomMessage(ctx context.Context, user string, m *Message) *Error {
	g, err := c.store.GetGroup(ctx, foldID(m.R))
	if errors.Is(err, state.ErrNotFound) || (err == nil && (g.Terminated || !slices.Contains(g.Members, user))) {
		return Errorf(CodeNotFound, "%s is not a member of %s", user, m.R)
	}
	if err != nil {
		return c.storeErr(ctx, "get group", err)
	}
	m.R = g.ID
	if !ValidType(m.T) {
		m.T = TypeText
	}
	if m.ST == 0 {
		m.ST = Millis(c.nowMs())
	}
	m.P, m.SC, m.PC = FlagOn, FlagOff, m.PC.Norm()
	m.SR, m.DM, m.NM, m.E = nil, nil, nil, nil
	if m.ID == "" {
		m.ID = randomID()
	}
	dup, err := c.store.Deliver(ctx, state.Delivery{
		DedupeKey: "r\x00" + g.ID + "\x00" + user + "\x00" + m.ID,
		DedupeTTL: c.cfg.DedupeTTL, IndexTTL: c.cfg.IndexTTL,
		Targets: []state.Target{{Receiver: user, UnlessBlocked: bareOf(m.S), Item: state.Item{
			// From is the room: a receipt for a room message is not routed
			// to anyone (Receipt drops receipts to groups).
			From: g.ID, MsgID: m.ID, Payload: Frame{M: m}.Encode(), AckOnWrite: !m.PC.On(),
		}}},
	})
	if err != nil {
		return c.storeErr(ctx, "deliver", err)
	}
	if !dup {
		c.local.Notify(user)
	}
	return nil
}

// ServerRooms returns the server rooms (groups whose id is a room JID) and
// their LEMP members, for the XMPP side to join on their behalf.
func (c *Core) ServerRooms(ctx context.Context) (map[string][]string, error) {
	ids, err := c.store.ListGroups(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, id := range ids {
		if !IsServerRoom(id) {
			continue
		}
		g, err := c.store.GetGroup(ctx, id)
		if errors.Is(err, state.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !g.Terminated && g.Kind == state.KindGroup {
			out[id] = slices.Clone(g.Members)
		}
	}
	return out, nil
}

// IsGroup reports whether id is a group or broadcast id (live or not): a
// receipt addressed to one is not routed.
func (c *Core) isGroup(ctx context.Context, id string) bool {
	_, err := c.store.GetGroup(ctx, foldID(id))
	return err == nil
}

func bareOf(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return s[:i]
		}
	}
	return s
}

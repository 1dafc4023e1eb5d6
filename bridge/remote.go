package bridge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/lempgw/lempgw/state"
)

// OutboundQueue is the durable queue of frames for Jabber users. Its name
// has an '@', which no username can have, so it can not collide with a user's
// queue. The XMPP side drains it in order and removes an item only once the
// server has provably received it.
const OutboundQueue = "@xmpp"

// Remote is what the core needs from the XMPP side. Implemented by xmppside.
type Remote interface {
	// Notify wakes the sender of OutboundQueue: there are new items.
	Notify()
	// CheckAddress says why addr (a LEMP address with '@') is not a usable
	// Jabber address, or nil.
	CheckAddress(addr string) error
	// FetchLast asks the server of jid (a Jabber bare JID) for its XEP-0012
	// last activity, on behalf of asker (a local username whose JID is the
	// IQ's sender, or "" for the gateway itself): how long ago the Jabber
	// user was last online, 0 while online. An error wrapping ErrNoAnswer
	// means nobody could be asked (link down, timeout); any other error is
	// the Jabber side's refusal.
	FetchLast(ctx context.Context, asker, jid string) (time.Duration, error)
	// FetchPicture fetches the vcard-temp (XEP-0054) of jid and returns its
	// PHOTO as a URL (EXTVAL, or a data: URL of BINVAL); "" when it has
	// none. Errors as FetchLast.
	FetchPicture(ctx context.Context, asker, jid string) (string, error)
}

// ErrNoAnswer is wrapped by the errors of Remote fetches that could not ask
// the Jabber side at all (the component link is down, or the answer did not
// come in time). The LEMP request is then answered 503.
var ErrNoAnswer = errors.New("no answer from the XMPP side")

// OutboundItem is the payload of an item of OutboundQueue: a message (the
// same JSON as a LEMP frame {"m":{...}}, so items queued before presence
// existed still read) or a presence for the XMPP side. It never reaches a
// LEMP client.
type OutboundItem struct {
	M *Message  `json:"m,omitempty"`
	P *Presence `json:"p,omitempty"`
	// To, when set, sends P to each of these Jabber bare JIDs (a broadcast
	// to followers); else P goes to P.R.
	To []string `json:"to,omitempty"`
	// G is a group event for the XMPP side: on RoomQueue, for a hosted
	// group's Jabber occupants; on OutboundQueue, for a server room's LEMP
	// members (joins and leaves of their occupants).
	G *GroupInfo `json:"g,omitempty"`
	// Room marks M as a LEMP member's message to the server room M.R (a
	// groupchat from the member's occupant), not a 1:1 chat.
	Room bool `json:"room,omitempty"`
}

// Encode returns the JSON of it.
func (it OutboundItem) Encode() []byte {
	b, err := json.Marshal(it)
	if err != nil {
		panic("bridge: encoding outbound item: " + err.Error())
	}
	return b
}

// DecodeOutbound reads an OutboundQueue payload; it has a message or a presence.
func DecodeOutbound(b []byte) (OutboundItem, error) {
	var it OutboundItem
	if err := json.Unmarshal(b, &it); err != nil {
		return it, err
	}
	n := 0
	for _, set := range []bool{it.M != nil, it.P != nil, it.G != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return it, errors.New("outbound item needs exactly one of a message, a presence and a group event")
	}
	return it, nil
}

// SetRemote turns XMPP bridging on: messages to Jabber users are queued on
// OutboundQueue and r is woken. Call before serving.
func (c *Core) SetRemote(r Remote) { c.remote = r }

// sendRemote queues m (already checked and normalised) for a Jabber user.
func (c *Core) sendRemote(ctx context.Context, dedupeKey string, m *Message) *Error {
	if c.remote == nil {
		return errBridgingOff
	}
	if err := c.remote.CheckAddress(m.R); err != nil {
		return Errorf(CodeBadRequest, "bad Jabber address %q: %v", m.R, err)
	}
	dup, err := c.store.Deliver(ctx, state.Delivery{
		DedupeKey: dedupeKey,
		DedupeTTL: c.cfg.DedupeTTL,
		Targets: []state.Target{{Receiver: OutboundQueue, Item: state.Item{
			From: m.S, Payload: OutboundItem{M: m}.Encode(), AckOnWrite: true,
		}}},
	})
	if err != nil {
		return c.storeErr(ctx, "deliver outbound", err)
	}
	if !dup {
		c.remote.Notify()
	}
	return nil
}

// Inbound accepts a message from a Jabber user (m.S is its bare JID, m.R a
// local username): it is made durable in the receiver's queue, de-duplicated
// by (sender, id), like a LEMP message. A message from a JID the receiver
// blocked is dropped silently. The error maps to a stanza error.
func (c *Core) Inbound(ctx context.Context, m *Message) *Error {
	if m.R == "" || m.S == "" || !IsJID(m.S) {
		return Errorf(CodeBadRequest, "inbound message needs a JID sender and a local receiver")
	}
	r := FoldUsername(m.R)
	if _, err := c.store.GetUser(ctx, r); errors.Is(err, state.ErrNotFound) {
		return Errorf(CodeNotFound, "no user %s", m.R)
	} else if err != nil {
		return c.storeErr(ctx, "get user", err)
	}
	m.R = r
	if m.DM != nil || m.NM != nil {
		return c.inboundReceipt(ctx, m)
	}
	if m.T == "" {
		m.T = TypeText
	}
	if m.ST == 0 {
		m.ST = Millis(c.nowMs())
	}
	m.P, m.SC, m.PC = m.P.Norm(), FlagOff, m.PC.Norm()
	dedupe := ""
	if m.ID == "" {
		m.ID = randomID()
	} else {
		dedupe = "m\x00" + m.S + "\x00" + m.ID
	}
	var targets []state.Target
	if m.P.On() || c.local.Online(r) {
		targets = []state.Target{{Receiver: r, UnlessBlocked: m.S, Item: state.Item{
			From: m.S, MsgID: m.ID, Payload: Frame{M: m}.Encode(), AckOnWrite: !m.PC.On(),
		}}}
	}
	dup, err := c.store.Deliver(ctx, state.Delivery{
		DedupeKey: dedupe, DedupeTTL: c.cfg.DedupeTTL, IndexTTL: c.cfg.IndexTTL, Targets: targets,
	})
	if err != nil {
		return c.storeErr(ctx, "deliver", err)
	}
	if !dup && len(targets) > 0 {
		c.local.Notify(r)
	}
	return nil
}

// inboundReceipt routes a Jabber user's delivered/displayed receipt to the
// local user who sent the message.
func (c *Core) inboundReceipt(ctx context.Context, m *Message) *Error {
	if blocked, err := c.store.IsBlocked(ctx, m.R, m.S); err != nil {
		return c.storeErr(ctx, "is blocked", err)
	} else if blocked {
		return nil
	}
	if m.ST == 0 {
		m.ST = Millis(c.nowMs())
	}
	kind, ref := "dm", m.DM
	if ref == nil {
		kind, ref = "nm", m.NM
	}
	if m.ID == "" {
		m.ID = ref.ID
	}
	out := &Message{ID: m.ID, S: m.S, R: m.R, ST: m.ST, DM: m.DM, NM: m.NM}
	dup, err := c.store.Deliver(ctx, state.Delivery{
		DedupeKey: kind + "\x00" + m.S + "\x00" + ref.ID,
		DedupeTTL: c.cfg.DedupeTTL,
		Targets: []state.Target{{Receiver: m.R, Item: state.Item{
			From: m.S, Payload: Frame{M: out}.Encode(), AckOnWrite: true,
		}}},
	})
	if err != nil {
		return c.storeErr(ctx, "deliver receipt", err)
	}
	if !dup {
		c.local.Notify(m.R)
	}
	return nil
}

func randomID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Bounce tells local user that its message msgID to the Jabber user remote
// failed after it was accepted: {"m":{"id":msgID,"s":remote,"r":user,"e":{..}}},
// queued durably.
func (c *Core) Bounce(ctx context.Context, user, msgID, remote string, e *Error) *Error {
	m := &Message{ID: msgID, S: remote, R: user, ST: Millis(c.nowMs()), E: e}
	_, err := c.store.Deliver(ctx, state.Delivery{Targets: []state.Target{{Receiver: user, Item: state.Item{
		From: remote, Payload: Frame{M: m}.Encode(), AckOnWrite: true,
	}}}})
	if err != nil {
		return c.storeErr(ctx, "deliver bounce", err)
	}
	c.local.Notify(user)
	return nil
}

package muc

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"mellium.im/xmpp/stanza"

	"github.com/lempgw/lempgw/bridge"
	"github.com/lempgw/lempgw/mapping"
)

func (s *Service) handleMessage(ctx context.Context, st *Stanza) []any {
	if st.Type == "error" {
		// An occupant's client bounced something: its session is gone.
		if t, err := s.parseTo(st.To); err == nil && t.room != "" {
			return s.ghost(t.room, st.From)
		}
		return nil
	}
	if st.Type == "headline" {
		return nil
	}
	full, bare, err := parseFrom(st.From)
	if err != nil || !isUser(bare) {
		return st.messageError(errorOf(stanza.Modify, stanza.JIDMalformed, "unusable sender address"))
	}
	t, err := s.parseTo(st.To)
	if err != nil {
		return st.messageError(addressError(err))
	}
	lm, kind, lerr := st.asLEMP(s.now())
	content := lerr == nil && kind == mapping.KindChat
	switch {
	case t.room == "":
		if content {
			return st.messageError(errorOf(stanza.Cancel, stanza.ServiceUnavailable, "the service takes no messages; write to a room"))
		}
		return nil
	case t.nick != "":
		if st.Type == "groupchat" {
			return st.messageError(errorOf(stanza.Modify, stanza.BadRequest, "a groupchat message goes to the room, not to an occupant"))
		}
		if content || len(st.invites) > 0 {
			return st.messageError(errorOf(stanza.Cancel, stanza.NotAllowed,
				"private messages are not supported in this room: write to the member's own address"))
		}
		return nil // chat states and receipts to an occupant: dropped
	case st.Type == "groupchat":
		return s.groupchat(ctx, st, t.room, full, bare, lm, kind, lerr)
	case len(st.invites) > 0:
		return s.invite(ctx, st, t.room, bare)
	case content:
		return st.messageError(errorOf(stanza.Modify, stanza.BadRequest, "messages to the room must be of type groupchat"))
	}
	return nil // declines, chat states, receipts: nothing to do
}

// asLEMP maps the message as a chat message would be (FromStanza ignores
// groupchat).
func (st *Stanza) asLEMP(now time.Time) (*bridge.Message, mapping.Kind, error) {
	m := *st.msg
	m.Type = mapping.MessageTypeChat
	return mapping.FromStanza(&m, now)
}

// groupchat handles a groupchat message from an occupant: a subject change,
// or a message that is posted to the LEMP members and reflected to every
// Jabber occupant.
func (s *Service) groupchat(ctx context.Context, st *Stanza, room, full, bare string, lm *bridge.Message, kind mapping.Kind, lerr error) []any {
	s.mu.Lock()
	var nick, aff string
	if rs := s.rooms[room]; rs != nil {
		if o := rs.byFull[full]; o != nil {
			nick, aff = o.nick, o.aff
		}
	}
	s.mu.Unlock()
	if nick == "" {
		return st.messageError(errorOf(stanza.Modify, stanza.NotAcceptable, "only occupants may send messages to the room: join it first"))
	}
	if st.subject != nil && len(st.msg.Body) == 0 {
		return s.setSubject(ctx, st, room, full, bare, aff)
	}
	if lerr != nil {
		return st.messageError(errorOf(stanza.Modify, stanza.BadRequest, lerr.Error()))
	}
	if kind != mapping.KindChat {
		if st.chat && kind == mapping.KindIgnorable {
			return s.reflect(st, room, full, "", false) // a chat state: to the others only
		}
		return nil // receipts and markers are not carried in rooms
	}
	if oid := st.msg.OriginID; oid != nil && oid.ID != "" && len(oid.ID) <= mapping.MaxIDBytes && utf8.ValidString(oid.ID) {
		lm.ID = oid.ID
	}
	if lm.ID == "" {
		lm.ID = newID()
	}
	lm.S, lm.R, lm.ST = bare, room, bridge.Millis(s.now().UnixMilli())
	if err := s.backend.Post(ctx, room, bare, lm); err != nil {
		return st.messageError(backendStanzaError(err))
	}
	return s.reflect(st, room, full, stanzaID(bare, lm.ID), true)
}

// reflect sends an occupant's message on to the occupants (XEP-0045 7.4):
// from its room JID, with its own id and payloads; self includes the sender.
func (s *Service) reflect(st *Stanza, room, full, sid string, self bool) []any {
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := s.rooms[room]
	if rs == nil || rs.byFull[full] == nil {
		return nil // it left meanwhile
	}
	sender := rs.byFull[full]
	children := st.reflectable()
	var out []any
	for _, o := range rs.sorted() {
		if o == sender && !self {
			continue
		}
		r := reflected{id: st.ID, from: s.occJID(room, sender.nick), to: o.full, ns: st.ns, children: children}
		if sid != "" {
			r.stanzaID = &mapping.StanzaID{ID: sid, By: s.roomJID(room)}
		}
		out = append(out, r)
	}
	return out
}

// reflectable returns the children of a message that are sent on: not the
// ones only the room may set (stanza-id, muc#user, occupant-id, addresses,
// delay) nor a subject or error.
func (st *Stanza) reflectable() []child {
	out := make([]child, 0, len(st.children))
	for _, c := range st.children {
		n := c.name
		switch {
		case n.Space == mapping.NSSID && n.Local == "stanza-id",
			n.Space == nsUser, n.Space == nsOccupantID, n.Space == nsAddress,
			n.Space == mapping.NSDelay, n.Space == nsOldDelay,
			st.plain(n, "subject"), st.plain(n, "error"):
			continue
		}
		out = append(out, c)
	}
	return out
}

// setSubject handles a subject change (XEP-0045 8.1): admins only; the group
// is renamed, then every occupant gets the subject and status 104.
func (s *Service) setSubject(ctx context.Context, st *Stanza, room, full, bare, aff string) []any {
	if !isAdmin(aff) {
		return st.messageError(errorOf(stanza.Auth, stanza.Forbidden, "only the group's admins can change the subject"))
	}
	subject := strings.TrimSpace(*st.subject)
	if err := s.backend.SetSubject(ctx, room, bare, subject); err != nil {
		return st.messageError(backendStanzaError(err))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := s.rooms[room]
	if rs == nil {
		return nil
	}
	rs.subject = &pendingSubject{actor: bare, subject: subject, at: s.now()}
	from := s.roomJID(room)
	if o := rs.byFull[full]; o != nil {
		from = s.occJID(room, o.nick)
	}
	return append(s.subject(rs, from, subject), s.configChanged(rs)...)
}

// invite handles a mediated invitation (XEP-0045 7.8.2) sent to the room:
// in a members-only room only admins invite, and inviting adds the invitee
// to the group (Backend.Admin "add"); the invitation itself goes out with
// the "a" event that follows. A member is invited again at once.
func (s *Service) invite(ctx context.Context, st *Stanza, room, bare string) []any {
	v, serr := s.loadRoom(ctx, room, false)
	if serr != nil {
		return st.messageError(serr)
	}
	if !isAdmin(v.jabberAff(bare)) {
		return st.messageError(errorOf(stanza.Auth, stanza.Forbidden, "only the group's admins can invite (members-only room)"))
	}
	var add, again []string
	for _, inv := range st.invites {
		addr, err := s.memberAddr(inv.to)
		if err != nil {
			return st.messageError(errorOf(stanza.Modify, stanza.JIDMalformed, "invitee: "+err.Error()))
		}
		if v.affOf(addr) != affNone {
			again = append(again, addr)
		} else {
			add = append(add, addr)
		}
	}
	if len(add) > 0 {
		if err := s.backend.Admin(ctx, room, bare, OpAdd, add); err != nil {
			return st.messageError(backendStanzaError(err))
		}
	}
	return s.invites(v, bare, again)
}

// memberAddr turns a JID naming a user into a LEMP member address: a
// username for a JID of the users' domain, else the bare JID. A resource is
// ignored.
func (s *Service) memberAddr(j string) (string, error) {
	b, _, _ := strings.Cut(j, "/")
	bj, err := mapping.ParseAddress(b)
	if err != nil {
		return "", err
	}
	addr, _, err := s.users.FromJID(bj)
	if err != nil {
		return "", err
	}
	return addr, nil
}

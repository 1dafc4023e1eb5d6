package muc

import (
	"context"
	"sort"
	"strings"

	"mellium.im/xmpp/jid"

	"github.com/lempgw/lempgw/bridge"
	"github.com/lempgw/lempgw/mapping"
)

// Fanout renders a LEMP member's groupchat message (m.S = username, m.R =
// room id) for every Jabber occupant of the room: from room@domain/<username>,
// type groupchat, with its LEMP id as id and XEP-0359 origin-id, and the
// room's stanza-id. The caller writes them durably. Nil when the room has no
// Jabber occupant, for a message without content (receipts, errors), and for
// a message by a Jabber user (m.S a JID): Handle reflected that one already.
func (s *Service) Fanout(ctx context.Context, room string, m *bridge.Message) []any {
	if m == nil || m.S == "" || isUser(m.S) {
		return nil
	}
	id := strings.ToLower(room)
	nick := bridge.FoldUsername(m.S)
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := s.rooms[id]
	if rs == nil {
		return nil
	}
	var out []any
	for _, o := range rs.sorted() {
		mo, ok := s.roomMessage(id, m, nick, o.full)
		if !ok {
			return nil // no content
		}
		out = append(out, mo)
	}
	return out
}

// roomMessage renders message m of the room from room/nick to one occupant;
// ok is false when m has no content.
func (s *Service) roomMessage(room string, m *bridge.Message, nick, to string) (messageOut, bool) {
	if m.C == "" || m.DM != nil || m.NM != nil || m.SR != nil || m.E != nil {
		return messageOut{}, false
	}
	sm := mapping.ToStanza(m, jid.JID{}, jid.JID{}, false)
	mo := messageOut{
		ID: m.ID, From: s.occJID(room, nick), To: to, Type: "groupchat",
		Body: sm.Body, OOB: sm.OOB, Geoloc: sm.Geoloc, NoStore: sm.NoStore, OriginID: sm.OriginID,
	}
	if m.ID != "" {
		mo.StanzaID = &mapping.StanzaID{ID: stanzaID(normAddr(m.S), m.ID), By: s.roomJID(room)}
	}
	return mo, true
}

// exit says how a member leaves the room: status codes, reason, actor.
type exit struct {
	codes   []string
	reason  string
	actor   string // nick
	keepAff bool   // still a member (kicked out of a nick)
}

var removed = exit{codes: []string{codeAffiliation}}

// Event renders a group event for the room's Jabber side; r is the room
// after the change. ev.T: "c" created and "a" added send mediated
// invitations (XEP-0045 7.8.2) to the added Jabber members; every event
// brings the occupants up to date with r (LEMP members who joined or left,
// Jabber occupants no longer members removed with 321, or 301/307 when a
// Jabber admin banned or kicked them, new affiliations); "n" sends the new
// subject and status 104, "p" status 104 (XEP-0486: clients then read the
// room's disco#info and vCard again); "t", or r.Terminated, destroys the
// room for its occupants.
func (s *Service) Event(ctx context.Context, r Room, ev *bridge.GroupInfo) []any {
	if ev == nil {
		return nil
	}
	if r.ID == "" {
		r.ID = ev.I
	}
	r.ID = strings.ToLower(r.ID)
	if r.ID == "" {
		return nil
	}
	v := newView(r)
	var out []any
	switch ev.T {
	case "c":
		out = s.invites(v, ev.S, r.Members)
	case "a":
		out = s.invites(v, ev.S, names(ev.M))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := s.rooms[r.ID]
	if r.Terminated || ev.T == "t" {
		if rs != nil {
			out = append(out, s.destroy(rs, "the group was terminated")...)
			delete(s.rooms, r.ID)
		}
		return out
	}
	if rs == nil {
		return out
	}
	now := s.now()
	actor := s.nickOf(rs, v, ev.S)
	gone := map[string]bool{}
	for _, n := range names(ev.M) {
		gone[normAddr(n)] = true
	}
	used := map[string]bool{}
	how := func(addr string) exit {
		used[addr] = true
		def := removed
		switch {
		case ev.T == "l" && gone[addr] && !isUser(addr):
			def = exit{} // a LEMP member left: a plain unavailable
		case ev.T == "b" && gone[addr]:
			def = exit{codes: []string{codeAffiliation}, actor: actor}
		}
		return rs.exitFor(addr, now, def)
	}
	out = append(out, s.sync(rs, v, how)...)
	for a := range used {
		delete(rs.pending, a) // after the sync: all of a user's sessions leave alike
	}
	switch ev.T {
	case "n", "p":
		if ev.T == "n" {
			if ps := rs.subject; ps != nil && ps.actor == normAddr(ev.S) && ps.subject == r.Name && now.Sub(ps.at) < pendingTTL {
				rs.subject = nil // announced when the Jabber admin set it
				break
			}
			from := s.roomJID(r.ID)
			if actor != "" {
				from = s.occJID(r.ID, actor)
			}
			out = append(out, s.subject(rs, from, r.Name)...)
		}
		out = append(out, s.configChanged(rs)...)
	}
	s.drop(rs)
	return out
}

// nickOf is the nick of a LEMP address in the room: a LEMP member's
// username, a Jabber occupant's nick, else "". Under s.mu.
func (s *Service) nickOf(rs *roomState, v *view, addr string) string {
	if addr == "" {
		return ""
	}
	if !isUser(addr) {
		return bridge.FoldUsername(addr)
	}
	return rs.nicksOf()[normAddr(addr)]
}

// subject is the subject message to every occupant (no body: XEP-0045 8.1).
func (s *Service) subject(rs *roomState, from, subject string) []any {
	var out []any
	for _, o := range rs.sorted() {
		out = append(out, messageOut{ID: newID(), From: from, To: o.full, Type: "groupchat", Subject: &textElem{Text: subject}})
	}
	return out
}

// configChanged is status 104 to every occupant: the room's name or picture
// changed.
func (s *Service) configChanged(rs *roomState) []any {
	var out []any
	for _, o := range rs.sorted() {
		out = append(out, messageOut{ID: newID(), From: s.roomJID(rs.id), To: o.full, Type: "groupchat", User: &userX{Status: statuses(codeConfig)}})
	}
	return out
}

// invites renders mediated invitations (XEP-0045 7.8.2) from the room to
// the Jabber users among addrs who are members and not the actor.
func (s *Service) invites(v *view, actor string, addrs []string) []any {
	var out []any
	seen := map[string]bool{}
	from := s.actorJID(actor)
	reason := "You were added to the group"
	if v.Name != "" {
		reason += " " + v.Name
	}
	for _, a := range addrs {
		k := normAddr(a)
		if !isUser(k) || seen[k] || k == normAddr(actor) || v.affOf(k) == affNone {
			continue
		}
		seen[k] = true
		out = append(out, messageOut{ID: newID(), From: s.roomJID(v.ID), To: k, User: &userX{Invite: &inviteOut{From: from, Reason: reason}}})
	}
	return out
}

// names reads GroupInfo.M: a string, a []string, or a []any of strings
// (what JSON decoding gives).
func names(m any) []string {
	switch m := m.(type) {
	case string:
		if m == "" {
			return nil
		}
		return []string{m}
	case []string:
		return m
	case []any:
		out := make([]string, 0, len(m))
		for _, x := range m {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// sync brings the occupants of rs up to date with v, the room as it is now,
// and returns what they must be told; how says how a removed member leaves
// (nil: 321). The first sync of a room only records its LEMP members: the
// joiner is sent all of them. Under s.mu.
func (s *Service) sync(rs *roomState, v *view, how func(addr string) exit) []any {
	if how == nil {
		now := s.now()
		how = func(addr string) exit { return rs.exitFor(addr, now, removed) }
	}
	now := make(map[string]string, len(v.lemp))
	for _, u := range v.lemp {
		if s.realJID(u) != "" {
			now[u] = v.aff[u]
		}
	}
	if rs.lemp == nil {
		rs.lemp = now
		return nil
	}
	var out []any
	old := make([]string, 0, len(rs.lemp))
	for u := range rs.lemp {
		old = append(old, u)
	}
	sort.Strings(old)
	for _, u := range old {
		if _, ok := now[u]; ok {
			continue
		}
		e := how(u)
		it := itemOut{Affiliation: affNone, Role: "none", JID: s.realJID(u), Reason: e.reason}
		if e.actor != "" {
			it.Actor = &actorOut{Nick: e.actor}
		}
		for _, o := range rs.sorted() {
			out = append(out, presenceOut{From: s.occJID(rs.id, u), To: o.full, Type: "unavailable",
				User: &userX{Items: []itemOut{it}, Status: statuses(e.codes...)}})
		}
	}
	for _, o := range rs.sorted() {
		a := v.affOf(o.bare)
		switch {
		case a == affNone:
			out = append(out, s.removeOccupant(rs, o, how(o.bare))...)
		case nickTaken(v, o.nick, o.bare):
			out = append(out, s.removeOccupant(rs, o, exit{codes: []string{codeKicked}, reason: "the nick is now the name of a member", keepAff: true})...)
		case a != o.aff:
			o.aff = a
			out = append(out, s.broadcast(rs, o, "", o.item())...)
		}
	}
	for _, u := range v.lemp {
		a, ok := now[u]
		if !ok {
			continue
		}
		if was, had := rs.lemp[u]; had && was == a {
			continue
		}
		for _, o := range rs.sorted() {
			out = append(out, s.lempPresence(rs.id, u, a, o.full, ""))
		}
	}
	rs.lemp = now
	return out
}

// removeOccupant takes a Jabber occupant out of the room, telling it (with
// 110) and the others. Under s.mu.
func (s *Service) removeOccupant(rs *roomState, o *occupant, e exit) []any {
	it := itemOut{Affiliation: affNone, Role: "none", JID: o.full, Reason: e.reason}
	if e.keepAff {
		it.Affiliation = o.aff
	}
	if e.actor != "" {
		it.Actor = &actorOut{Nick: e.actor}
	}
	out := s.broadcast(rs, o, "unavailable", it, e.codes...)
	rs.remove(o)
	return out
}

// destroy tells every occupant that the room is gone (XEP-0045 10.9): one
// unavailable presence each, with <destroy/>. Under s.mu.
func (s *Service) destroy(rs *roomState, reason string) []any {
	var out []any
	for _, o := range rs.sorted() {
		out = append(out, presenceOut{From: s.occJID(rs.id, o.nick), To: o.full, Type: "unavailable",
			User: &userX{Items: []itemOut{{Affiliation: affNone, Role: "none"}}, Status: statuses(codeSelf), Destroy: &destroyOut{Reason: reason}}})
	}
	return out
}

// DirectInvite is the XEP-0249 invitation the caller sends from the
// inviter's own JID on the main link.
func DirectInvite(from, to jid.JID, room jid.JID, reason string) any {
	return messageOut{ID: newID(), From: from.String(), To: to.Bare().String(), Conf: &confX{JID: room.Bare().String(), Reason: reason}}
}

// addPending records how a Jabber admin's removal of addr is to be told
// when its event comes. Under s.mu.
func (rs *roomState) addPending(addr string, r removal) {
	for k, p := range rs.pending {
		if r.at.Sub(p.at) >= pendingTTL {
			delete(rs.pending, k)
		}
	}
	rs.pending[addr] = r
}

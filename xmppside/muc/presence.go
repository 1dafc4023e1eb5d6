package muc

import (
	"context"
	"strings"
	"time"

	"mellium.im/xmpp/stanza"

	"github.com/lempgw/lempgw/mapping"
)

// Status codes (XEP-0045 registry) the engine sends.
const (
	codeNonAnonymous = "100" // self-presence on join: everyone sees real JIDs
	codeConfig       = "104" // room name or picture changed
	codeSelf         = "110" // the presence is the recipient's own
	codeBanned       = "301"
	codeNickChange   = "303"
	codeKicked       = "307"
	codeNickModified = "210" // the service normalised the nick
	codeAffiliation  = "321" // removed: no longer a member
	codeErrorReply   = "333" // removed: its client answered with an error
)

func (s *Service) handlePresence(ctx context.Context, st *Stanza) []any {
	full, bare, err := parseFrom(st.From)
	if err != nil || !isUser(bare) {
		if st.Type == "" {
			return st.presenceError(errorOf(stanza.Modify, stanza.JIDMalformed, "unusable sender address"))
		}
		return nil
	}
	t, err := s.parseTo(st.To)
	if err != nil {
		if st.Type == "" {
			return st.presenceError(addressError(err))
		}
		return nil
	}
	if t.room == "" {
		return nil // presence to the service itself: nothing to do
	}
	switch st.Type {
	case "":
		if t.nick == "" {
			return st.presenceError(errorOf(stanza.Modify, stanza.JIDMalformed, "no nick: join room@service/nick"))
		}
		return s.available(ctx, st, t, full, bare)
	case "unavailable":
		return s.leave(st, t.room, full)
	case "error":
		return s.ghost(t.room, full)
	}
	return nil // subscriptions and probes: rooms have no roster
}

// item is how a Jabber occupant is shown (non-anonymous room: real JID).
func (o *occupant) item() itemOut {
	return itemOut{Affiliation: o.aff, Role: roleOf(o.aff), JID: o.full}
}

// presenceOf is the presence of Jabber occupant o for rcpt, with the given
// codes; rcpt == o adds 110.
func (s *Service) presenceOf(room string, o, rcpt *occupant, typ string, it itemOut, codes ...string) presenceOut {
	p := presenceOut{From: s.occJID(room, o.nick), To: rcpt.full, Type: typ}
	if typ == "" {
		p.Show, p.Status = o.show, o.status
	}
	if rcpt == o {
		codes = append(codes[:len(codes):len(codes)], codeSelf)
	}
	p.User = &userX{Items: []itemOut{it}, Status: statuses(codes...)}
	return p
}

// broadcast sends o's presence to every occupant of rs (o included, when it
// is in rs).
func (s *Service) broadcast(rs *roomState, o *occupant, typ string, it itemOut, codes ...string) []any {
	var out []any
	for _, r := range rs.sorted() {
		out = append(out, s.presenceOf(rs.id, o, r, typ, it, codes...))
	}
	return out
}

// lempPresence is the presence of LEMP member user (affiliation aff, "none"
// when it leaves) for a Jabber occupant.
func (s *Service) lempPresence(room, user, aff, to, typ string, codes ...string) presenceOut {
	return presenceOut{
		From: s.occJID(room, user), To: to, Type: typ,
		User: &userX{Items: []itemOut{{Affiliation: aff, Role: roleOf(aff), JID: s.realJID(user)}}, Status: statuses(codes...)},
	}
}

// available handles an available presence to room/nick: a join, a rejoin
// (full resync), a nick change or a presence update.
func (s *Service) available(ctx context.Context, st *Stanza, t target, full, bare string) []any {
	p := st.pres
	if !p.muc {
		// A presence update of a joined occupant needs no room lookup.
		s.mu.Lock()
		if rs := s.rooms[t.room]; rs != nil {
			if o := rs.byFull[full]; o != nil && o.nick == t.nick {
				o.show, o.status = p.show, p.status
				out := s.broadcast(rs, o, "", o.item())
				s.mu.Unlock()
				return out
			}
		}
		s.mu.Unlock()
	}
	v, serr := s.loadRoom(ctx, t.room, true)
	if serr != nil {
		return st.presenceError(serr)
	}
	aff := v.jabberAff(bare)
	if aff == affNone {
		return st.presenceError(errorOf(stanza.Auth, stanza.RegistrationRequired, "only members of the group can join its room"))
	}
	if nickTaken(v, t.nick, bare) {
		return st.presenceError(errorOf(stanza.Cancel, stanza.Conflict, "that nick is a member's name"))
	}
	modified := ""
	if _, res, _ := strings.Cut(st.To, "/"); res != t.nick {
		modified = codeNickModified
	}

	s.mu.Lock()
	rs := s.room(t.room)
	out := s.sync(rs, v, nil)
	o := rs.byFull[full]
	if other := rs.byNick[t.nick]; other != nil && other.full != full {
		s.drop(rs)
		s.mu.Unlock()
		return append(out, st.presenceError(errorOf(stanza.Cancel, stanza.Conflict, "that nick is taken"))...)
	}
	switch {
	case o != nil && o.nick != t.nick:
		o.show, o.status = p.show, p.status
		out = append(out, s.changeNick(rs, o, t.nick, modified)...)
		s.mu.Unlock()
		return out
	case o == nil && rs.sessionsOf(bare) >= maxSessionsPerUser:
		s.drop(rs)
		s.mu.Unlock()
		return append(out, st.presenceError(errorOf(stanza.Wait, stanza.ServiceUnavailable, "too many sessions in this room"))...)
	}
	rejoin := o != nil
	if !rejoin {
		o = &occupant{nick: t.nick, full: full, bare: bare}
		rs.add(o)
	}
	changed := !rejoin || o.show != p.show || o.status != p.status || o.aff != aff
	o.aff, o.show, o.status = aff, p.show, p.status
	// 1. Every occupant to the joiner: LEMP members, then Jabber occupants.
	for _, u := range v.lemp {
		if s.realJID(u) == "" {
			continue // a username with no JID form: it cannot be shown
		}
		out = append(out, s.lempPresence(t.room, u, v.aff[u], full, ""))
	}
	for _, r := range rs.sorted() {
		if r != o {
			out = append(out, s.presenceOf(t.room, r, o, "", r.item()))
		}
	}
	// 2. The joiner to the others, 3. its self-presence last.
	if changed {
		for _, r := range rs.sorted() {
			if r != o {
				out = append(out, s.presenceOf(t.room, o, r, "", o.item()))
			}
		}
	}
	self := s.presenceOf(t.room, o, o, "", o.item(), codeNonAnonymous, modified)
	self.ID = st.ID
	out = append(out, self)
	nicks := rs.nicksOf()
	s.mu.Unlock()

	// 4. History, 5. the subject.
	out = append(out, s.historyFor(ctx, v, full, p.history, nicks)...)
	return append(out, messageOut{ID: newID(), From: s.roomJID(t.room), To: full, Type: "groupchat", Subject: &textElem{Text: v.Name}})
}

// nickTaken reports whether nick names a member of the room other than bare
// (case-insensitively for usernames): a Jabber user cannot pass for one.
func nickTaken(v *view, nick, bare string) bool {
	k := normAddr(nick)
	if k == "" || k == bare {
		return false
	}
	_, ok := v.aff[k]
	return ok
}

// nicksOf maps the bare JIDs of the occupants to a nick of theirs (for the
// authors of history messages).
func (rs *roomState) nicksOf() map[string]string {
	m := make(map[string]string, len(rs.byNick))
	for _, o := range rs.sorted() {
		if _, ok := m[o.bare]; !ok {
			m[o.bare] = o.nick
		}
	}
	return m
}

// changeNick renames occupant o (XEP-0045 7.6): unavailable from the old
// nick with 303 and the new one, then available from the new nick. Under s.mu.
func (s *Service) changeNick(rs *roomState, o *occupant, nick, modified string) []any {
	it := o.item()
	it.Nick = nick
	out := s.broadcast(rs, o, "unavailable", it, codeNickChange)
	rs.remove(o)
	o.nick = nick
	rs.add(o)
	for _, r := range rs.sorted() {
		if r == o {
			out = append(out, s.presenceOf(rs.id, o, r, "", o.item(), modified))
		} else {
			out = append(out, s.presenceOf(rs.id, o, r, "", o.item()))
		}
	}
	return out
}

// leave handles an unavailable presence of an occupant (XEP-0045 7.14).
func (s *Service) leave(st *Stanza, room, full string) []any {
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := s.rooms[room]
	if rs == nil {
		return nil
	}
	o := rs.byFull[full]
	if o == nil {
		return nil
	}
	o.show, o.status = "", st.pres.status
	it := o.item()
	it.Role = "none"
	out := s.broadcast(rs, o, "unavailable", it)
	for i := range out {
		p := out[i].(presenceOut)
		p.Status = o.status
		out[i] = p
	}
	rs.remove(o)
	s.drop(rs)
	return out
}

// ghost removes the occupant whose client answered with an error (its
// session is gone): the others see it kicked with 307 and 333.
func (s *Service) ghost(room, from string) []any {
	full, _, err := parseFrom(from)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := s.rooms[room]
	if rs == nil || rs.byFull[full] == nil {
		return nil
	}
	o := rs.byFull[full]
	rs.remove(o)
	it := itemOut{Affiliation: o.aff, Role: "none", JID: o.full, Reason: "the occupant's client answered with an error"}
	out := s.broadcast(rs, o, "unavailable", it, codeKicked, codeErrorReply)
	s.drop(rs)
	return out
}

// historyFor renders the discussion history sent on join (XEP-0045 7.2.15):
// at most Config.History messages, fewer as <history/> asks.
func (s *Service) historyFor(ctx context.Context, v *view, to string, h historyReq, nicks map[string]string) []any {
	n := s.history
	if h.maxStanzas >= 0 && h.maxStanzas < n {
		n = h.maxStanzas
	}
	if n <= 0 || h.maxChars == 0 {
		return nil
	}
	msgs, err := s.backend.History(ctx, v.ID, n)
	if err != nil {
		s.log.WarnContext(ctx, "muc: reading history", "room", v.ID, "err", err)
		return nil
	}
	var cutoff time.Time
	if h.seconds >= 0 {
		cutoff = s.now().Add(-time.Duration(h.seconds) * time.Second)
	}
	if h.since.After(cutoff) {
		cutoff = h.since
	}
	var out []messageOut
	for _, m := range msgs {
		if m == nil || (!cutoff.IsZero() && time.UnixMilli(int64(m.ST)).Before(cutoff)) {
			continue
		}
		nick := m.S
		if isUser(m.S) {
			if n, ok := nicks[normAddr(m.S)]; ok {
				nick = n
			}
		}
		mo, ok := s.roomMessage(v.ID, m, nick, to)
		if !ok {
			continue
		}
		mo.Delay = &mapping.Delay{From: s.roomJID(v.ID), Stamp: time.UnixMilli(int64(m.ST)).UTC().Format(mapping.StampLayout)}
		if j := s.actorJID(m.S); j != "" {
			mo.Addresses = &addressesOut{Address: []addressOut{{Type: "ofrom", JID: j}}}
		}
		out = append(out, mo)
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	if h.maxChars > 0 {
		// maxchars counts the characters of whole stanzas: keep the newest
		// that fit.
		total, first := 0, len(out)
		for i := len(out) - 1; i >= 0; i-- {
			total += xmlLen(out[i])
			if total > h.maxChars {
				break
			}
			first = i
		}
		out = out[first:]
	}
	res := make([]any, len(out))
	for i := range out {
		res[i] = out[i]
	}
	return res
}

package muc

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/lempgw/lempgw/bridge"
	"github.com/lempgw/lempgw/mapping"
)

func TestNewChecksConfig(t *testing.T) {
	b := &memBackend{}
	users := mapping.Addresser{Domain: usersDom}
	for _, c := range []Config{
		{Domain: domain, Users: users},
		{Domain: "", Users: users, Backend: b},
		{Domain: "a@b", Users: users, Backend: b},
		{Domain: "b/c", Users: users, Backend: b},
		{Domain: domain, Backend: b},
		{Domain: usersDom, Users: users, Backend: b},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
	if _, err := New(Config{Domain: domain, Users: users, Backend: b}); err != nil {
		t.Fatal(err)
	}
}

func TestJoin(t *testing.T) {
	s, _ := newWorld(t)
	out := join(t, s, julietPC, "Juliet")
	// alice and bob (always present), self-presence, 2 history messages, subject.
	if len(out) != 6 {
		t.Fatalf("got %d stanzas: %v", len(out), out)
	}
	for i, n := range out {
		if n.attr("to") != julietPC {
			t.Errorf("stanza %d to %q", i, n.attr("to"))
		}
	}
	for i, want := range []struct{ nick, aff, role, jid string }{
		{"alice", "owner", "moderator", "alice@lemp.example.org"},
		{"bob", "member", "participant", "bob@lemp.example.org"},
	} {
		p := out[i]
		it := p.item()
		if p.XMLName.Local != "presence" || p.has("type") || p.attr("from") != room+"/"+want.nick || it == nil ||
			it.attr("affiliation") != want.aff || it.attr("role") != want.role || it.attr("jid") != want.jid {
			t.Errorf("occupant presence %d: %s", i, p.String())
		}
		if len(p.codes()) != 0 {
			t.Errorf("codes in another occupant's presence: %v", p.codes())
		}
	}
	self := out[2]
	if self.attr("from") != room+"/Juliet" || self.attr("id") != "j1" || !slices.Equal(self.codes(), []string{"100", "110"}) {
		t.Errorf("self-presence: %s", self.String())
	}
	if it := self.item(); it.attr("affiliation") != "member" || it.attr("role") != "participant" || it.attr("jid") != julietPC {
		t.Errorf("self item: %s", self.String())
	}
	h1, h2 := out[3], out[4]
	if h1.attr("type") != "groupchat" || h1.attr("from") != room+"/alice" || h1.attr("id") != "h1" ||
		h1.kid("body").Text != "first" || h1.find(mapping.NSDelay, "delay").attr("from") != room ||
		h1.find(mapping.NSDelay, "delay").attr("stamp") != "2025-11-23T10:00:00.000Z" ||
		h1.find(nsAddress, "address").attr("jid") != "alice@lemp.example.org" {
		t.Errorf("history 1: %s", h1.String())
	}
	if sid := h1.find(mapping.NSSID, "stanza-id"); sid == nil || sid.attr("by") != room || sid.attr("id") != stanzaID("alice", "h1") {
		t.Errorf("history 1 stanza-id: %s", h1.String())
	}
	// romeo is not joined: his nick in history is his bare JID.
	if h2.attr("from") != room+"/"+romeo || h2.find("jabber:x:oob", "url").Text != "https://example.org/a.jpg" ||
		h2.find(nsAddress, "address").attr("jid") != romeo {
		t.Errorf("history 2: %s", h2.String())
	}
	subj := out[5]
	if subj.attr("from") != room || subj.attr("type") != "groupchat" || subj.kid("subject") == nil ||
		subj.kid("subject").Text != "Verona" || subj.kid("body") != nil {
		t.Errorf("subject: %s", subj.String())
	}
	occ := s.Occupants("g1")
	if len(occ) != 1 || occ[0] != (Occupant{Nick: "Juliet", JID: julietPC, Bare: juliet, Role: "participant", Affiliation: "member"}) {
		t.Errorf("occupants: %+v", occ)
	}
}

func TestJoinSecondOccupant(t *testing.T) {
	s, _ := newWorld(t)
	join(t, s, julietPC, "Juliet")
	out := join(t, s, romeoFull, "Romeo")
	mine := to(out, romeoFull)
	theirs := to(out, julietPC)
	if len(theirs) != 1 {
		t.Fatalf("juliet got %v", theirs)
	}
	if p := theirs[0]; p.attr("from") != room+"/Romeo" || p.item().attr("role") != "moderator" ||
		p.item().attr("affiliation") != "admin" || p.item().attr("jid") != romeoFull || len(p.codes()) != 0 {
		t.Errorf("romeo's presence to juliet: %s", p.String())
	}
	// alice, bob, Juliet, self, then history (which now names Romeo by his nick) and subject.
	var froms []string
	for _, n := range mine {
		if n.XMLName.Local == "presence" {
			froms = append(froms, strings.TrimPrefix(n.attr("from"), room+"/"))
		}
	}
	if !slices.Equal(froms, []string{"alice", "bob", "Juliet", "Romeo"}) {
		t.Errorf("presences to romeo from %v", froms)
	}
	for _, n := range mine {
		if n.attr("id") == "h2" && n.attr("from") != room+"/Romeo" {
			t.Errorf("romeo's own history message from %s", n.attr("from"))
		}
	}
}

func TestJoinErrors(t *testing.T) {
	cases := []struct {
		name, from, to, cond, typ string
		setup                     func(*Service, *memBackend)
	}{
		{"unknown room", julietPC, "nope@rooms.example.org/J", "item-not-found", "cancel", nil},
		{"terminated", julietPC, "old@rooms.example.org/J", "gone", "cancel", nil},
		{"not a member", nurse, "g1@rooms.example.org/Nurse", "registration-required", "auth", nil},
		{"a LEMP member's name", julietPC, "g1@rooms.example.org/Alice", "conflict", "cancel", nil},
		{"a member's JID", julietPC, "g1@rooms.example.org/" + romeo, "conflict", "cancel", nil},
		{"taken by an occupant", julietPh, "g1@rooms.example.org/Romeo", "conflict", "cancel", func(s *Service, _ *memBackend) {
			join(t, s, romeoFull, "Romeo")
		}},
		{"no nick", julietPC, "g1@rooms.example.org", "jid-malformed", "modify", nil},
		{"spaces only", julietPC, "g1@rooms.example.org/   ", "jid-malformed", "modify", nil},
		{"huge nick", julietPC, "g1@rooms.example.org/" + strings.Repeat("n", 1024), "jid-malformed", "modify", nil},
		{"bad room", julietPC, "g\\zz\\2f@rooms.example.org/J", "jid-malformed", "modify", nil},
		{"another domain", julietPC, "g1@elsewhere.example/J", "item-not-found", "cancel", nil},
		{"bad sender", "not a jid@/x", "g1@rooms.example.org/J", "jid-malformed", "modify", nil},
		{"server sender", "capulet.lit", "g1@rooms.example.org/J", "jid-malformed", "modify", nil},
		{"store down", julietPC, "g1@rooms.example.org/J", "internal-server-error", "cancel", func(_ *Service, b *memBackend) {
			b.roomErr = errors.New("redis: connection refused")
		}},
		{"coded backend error", julietPC, "g1@rooms.example.org/J", "service-unavailable", "cancel", func(_ *Service, b *memBackend) {
			b.roomErr = bridge.Errorf(bridge.CodeUnavailable, "down")
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, b := newWorld(t)
			if c.setup != nil {
				c.setup(s, b)
			}
			raw := `<presence from='` + xmlEscape(c.from) + `' to='` + xmlEscape(c.to) + `' id='e1'><x xmlns='http://jabber.org/protocol/muc'/></presence>`
			out := handle(t, s, raw)
			wantError(t, out, "presence", c.cond, c.typ, c.to, c.from)
			if out[0].attr("id") != "e1" || out[0].find(nsMUC, "x") == nil {
				t.Errorf("error presence: %s", out[0].String())
			}
			for _, o := range s.Occupants("g1") {
				if o.JID == c.from {
					t.Errorf("%s joined anyway", c.from)
				}
			}
		})
	}
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "'", "&apos;", "<", "&lt;").Replace(s)
}

func TestTooManySessions(t *testing.T) {
	s, _ := newWorld(t)
	for i := range maxSessionsPerUser {
		join(t, s, juliet+"/r"+string(rune('a'+i)), "J"+string(rune('a'+i)))
	}
	out := join(t, s, juliet+"/last", "Jlast")
	wantError(t, out, "presence", "service-unavailable", "wait", room+"/Jlast", juliet+"/last")
}

func TestGroupchat10Join(t *testing.T) {
	s, _ := newWorld(t)
	out := handle(t, s, `<presence from='`+julietPC+`' to='g1@rooms.example.org/Juliet'/>`)
	if len(out) != 6 || !slices.Equal(out[2].codes(), []string{"100", "110"}) {
		t.Fatalf("a join without <x/>: %v", out)
	}
}

func TestNickNormalised(t *testing.T) {
	s, _ := newWorld(t)
	// e + U+0301 COMBINING ACUTE: PRECIS OpaqueString composes it (NFC).
	out := join(t, s, julietPC, "Rene\u0301")
	self := to(out, julietPC)[2]
	if self.attr("from") != room+"/Ren\u00e9" || !slices.Equal(self.codes(), []string{"100", "110", "210"}) {
		t.Errorf("self-presence: %s", self.String())
	}
}

func TestHistoryRequests(t *testing.T) {
	cases := []struct {
		name    string
		x       string
		history int
		want    []string
	}{
		{"default", `<x xmlns='http://jabber.org/protocol/muc'/>`, 0, []string{"h1", "h2"}},
		{"maxstanzas", `<x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='1'/></x>`, 0, []string{"h2"}},
		{"none", `<x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x>`, 0, nil},
		{"maxchars 0", `<x xmlns='http://jabber.org/protocol/muc'><history maxchars='0'/></x>`, 0, nil},
		{"maxchars small", `<x xmlns='http://jabber.org/protocol/muc'><history maxchars='400'/></x>`, 0, nil},
		{"maxchars one", `<x xmlns='http://jabber.org/protocol/muc'><history maxchars='750'/></x>`, 0, []string{"h2"}},
		{"seconds", `<x xmlns='http://jabber.org/protocol/muc'><history seconds='3600'/></x>`, 0, []string{"h2"}},
		{"since", `<x xmlns='http://jabber.org/protocol/muc'><history since='2025-11-23T09:00:00Z'/></x>`, 0, []string{"h1", "h2"}},
		{"since late", `<x xmlns='http://jabber.org/protocol/muc'><history since='2025-11-23T11:00:00Z'/></x>`, 0, []string{"h2"}},
		{"garbage attributes", `<x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='-3' seconds='x' since='y'/></x>`, 0, []string{"h1", "h2"}},
		{"config 1", `<x xmlns='http://jabber.org/protocol/muc'/>`, 1, []string{"h2"}},
		{"config off", `<x xmlns='http://jabber.org/protocol/muc'/>`, -1, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, b := newWorld(t)
			s.history = c.history
			if c.history == 0 {
				s.history = DefaultHistory
			}
			_ = b
			out := handle(t, s, `<presence from='`+julietPC+`' to='g1@rooms.example.org/J'>`+c.x+`</presence>`)
			var got []string
			for _, n := range out {
				if n.XMLName.Local == "message" && n.find(mapping.NSDelay, "delay") != nil {
					got = append(got, n.attr("id"))
				}
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("history %v, want %v", got, c.want)
			}
			if last := out[len(out)-1]; last.kid("subject") == nil {
				t.Errorf("the subject is not last: %s", last.String())
			}
		})
	}
}

func TestHistoryError(t *testing.T) {
	s, b := newWorld(t)
	b.historyErr = errors.New("store down")
	out := join(t, s, julietPC, "J")
	if len(out) != 4 || out[3].kid("subject") == nil {
		t.Fatalf("join without history: %v", out)
	}
}

func TestLeave(t *testing.T) {
	s, _ := newWorld(t)
	join(t, s, julietPC, "Juliet")
	join(t, s, romeoFull, "Romeo")
	out := handle(t, s, `<presence from='`+julietPC+`' to='g1@rooms.example.org/Juliet' type='unavailable'><status>bye</status></presence>`)
	if len(out) != 2 {
		t.Fatalf("got %v", out)
	}
	for _, n := range out {
		self := n.attr("to") == julietPC
		want := []string(nil)
		if self {
			want = []string{"110"}
		}
		if n.attr("type") != "unavailable" || n.attr("from") != room+"/Juliet" || n.item().attr("role") != "none" ||
			n.item().attr("affiliation") != "member" || n.kid("status").Text != "bye" || !slices.Equal(n.codes(), want) {
			t.Errorf("leave presence: %s", n.String())
		}
	}
	if occ := s.Occupants("g1"); len(occ) != 1 || occ[0].Nick != "Romeo" {
		t.Errorf("occupants: %+v", occ)
	}
	// Not an occupant (any more): nothing.
	if out := handle(t, s, `<presence from='`+julietPC+`' to='g1@rooms.example.org/Juliet' type='unavailable'/>`); len(out) != 0 {
		t.Errorf("second leave: %v", out)
	}
	handle(t, s, `<presence from='`+romeoFull+`' to='g1@rooms.example.org/Romeo' type='unavailable'/>`)
	if n, rooms := s.OccupantCount(); n != 0 || rooms != 0 {
		t.Errorf("after everyone left: %d occupants in %d rooms", n, rooms)
	}
}

func TestPresenceUpdate(t *testing.T) {
	s, b := newWorld(t)
	join(t, s, julietPC, "Juliet")
	join(t, s, romeoFull, "Romeo")
	calls := b.roomCalls
	out := handle(t, s, `<presence from='`+julietPC+`' to='g1@rooms.example.org/Juliet'><show>away</show><status>dinner</status></presence>`)
	if len(out) != 2 || b.roomCalls != calls {
		t.Fatalf("update: %v (room lookups %d)", out, b.roomCalls-calls)
	}
	for _, n := range out {
		if n.has("type") || n.kid("show").Text != "away" || n.kid("status").Text != "dinner" {
			t.Errorf("update: %s", n.String())
		}
	}
	if !slices.Equal(to(out, julietPC)[0].codes(), []string{"110"}) {
		t.Errorf("self update without 110")
	}
	// A later joiner sees the show.
	out = join(t, s, julietPh, "J2")
	for _, n := range to(out, julietPh) {
		if n.attr("from") == room+"/Juliet" && n.kid("show").Text != "away" {
			t.Errorf("joiner sees %s", n.String())
		}
	}
}

func TestRejoinResyncs(t *testing.T) {
	s, _ := newWorld(t)
	join(t, s, julietPC, "Juliet")
	join(t, s, romeoFull, "Romeo")
	out := join(t, s, julietPC, "Juliet")
	if len(to(out, romeoFull)) != 0 {
		t.Errorf("romeo told of an unchanged presence: %v", to(out, romeoFull))
	}
	mine := to(out, julietPC)
	// alice, bob, Romeo, self, 2 history, subject.
	if len(mine) != 7 || !slices.Equal(mine[3].codes(), []string{"100", "110"}) || mine[6].kid("subject") == nil {
		t.Errorf("resync: %v", mine)
	}
	if len(s.Occupants("g1")) != 2 {
		t.Errorf("occupants: %+v", s.Occupants("g1"))
	}
}

func TestNickChange(t *testing.T) {
	s, _ := newWorld(t)
	join(t, s, julietPC, "Juliet")
	join(t, s, romeoFull, "Romeo")
	out := handle(t, s, `<presence from='`+julietPC+`' to='g1@rooms.example.org/Jules'/>`)
	if len(out) != 4 {
		t.Fatalf("nick change: %v", out)
	}
	for _, n := range out[:2] {
		want := []string{"303"}
		if n.attr("to") == julietPC {
			want = []string{"110", "303"}
		}
		if n.attr("type") != "unavailable" || n.attr("from") != room+"/Juliet" || n.item().attr("nick") != "Jules" || !slices.Equal(n.codes(), want) {
			t.Errorf("old nick: %s", n.String())
		}
	}
	for _, n := range out[2:] {
		if n.has("type") || n.attr("from") != room+"/Jules" {
			t.Errorf("new nick: %s", n.String())
		}
	}
	if occ := s.Occupants("g1"); occ[0].Nick != "Jules" || occ[0].JID != julietPC {
		t.Errorf("occupants: %+v", occ)
	}
	// To a name that is taken: conflict, nothing changes.
	out = handle(t, s, `<presence from='`+julietPC+`' to='g1@rooms.example.org/Romeo'/>`)
	wantError(t, out, "presence", "conflict", "cancel", room+"/Romeo", julietPC)
	out = handle(t, s, `<presence from='`+julietPC+`' to='g1@rooms.example.org/BOB'/>`)
	wantError(t, out, "presence", "conflict", "cancel", room+"/BOB", julietPC)
	if occ := s.Occupants("g1"); occ[0].Nick != "Jules" {
		t.Errorf("occupants: %+v", occ)
	}
}

func TestGhostRemoved(t *testing.T) {
	s, _ := newWorld(t)
	join(t, s, julietPC, "Juliet")
	join(t, s, romeoFull, "Romeo")
	for _, raw := range []string{
		`<message from='` + julietPC + `' to='g1@rooms.example.org' type='error'><error type='cancel'><remote-server-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`,
		`<presence from='` + romeoFull + `' to='g1@rooms.example.org/Romeo' type='error'><error type='cancel'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>`,
	} {
		out := handle(t, s, raw)
		if len(s.Occupants("g1")) == 2 {
			t.Fatalf("%s: occupant kept", raw)
		}
		for _, n := range out {
			if !slices.Equal(n.codes(), []string{"307", "333"}) || n.attr("type") != "unavailable" {
				t.Errorf("ghost removal: %s", n.String())
			}
		}
	}
	if len(s.Occupants("g1")) != 0 {
		t.Errorf("occupants: %+v", s.Occupants("g1"))
	}
	// An error from someone who is no occupant is dropped, unanswered.
	if out := handle(t, s, `<message from='`+nurse+`' to='g1@rooms.example.org' type='error'/>`); len(out) != 0 {
		t.Errorf("error answered: %v", out)
	}
}

func TestPresenceIgnored(t *testing.T) {
	s, _ := newWorld(t)
	for _, raw := range []string{
		`<presence from='` + julietPC + `' to='g1@rooms.example.org' type='subscribe'/>`,
		`<presence from='` + julietPC + `' to='g1@rooms.example.org/J' type='probe'/>`,
		`<presence from='` + julietPC + `' to='rooms.example.org'/>`,
		`<presence from='` + julietPC + `' to='g1@rooms.example.org/J' type='unavailable'/>`,
		`<presence from='bad@@jid' to='g1@rooms.example.org/J' type='unavailable'/>`,
	} {
		if out := handle(t, s, raw); len(out) != 0 {
			t.Errorf("%s: answered %v", raw, out)
		}
	}
}

func TestReset(t *testing.T) {
	s, _ := newWorld(t)
	join(t, s, julietPC, "Juliet")
	s.Reset()
	if n, _ := s.OccupantCount(); n != 0 {
		t.Fatalf("%d occupants after Reset", n)
	}
	out := handle(t, s, `<iq from='`+julietPC+`' to='g1@rooms.example.org/Juliet' type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>`)
	wantError(t, out, "iq", "not-acceptable", "cancel", room+"/Juliet", julietPC)
	// The rejoin works and resyncs.
	if out := join(t, s, julietPC, "Juliet"); len(out) != 6 {
		t.Errorf("rejoin: %v", out)
	}
	_ = context.Background
}

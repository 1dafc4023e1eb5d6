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

// twoJoined is the world with Juliet and Romeo joined.
func twoJoined(t *testing.T) (*Service, *memBackend) {
	s, b := newWorld(t)
	join(t, s, julietPC, "Juliet")
	join(t, s, romeoFull, "Romeo")
	return s, b
}

func TestGroupchatPostedAndReflected(t *testing.T) {
	s, b := twoJoined(t)
	raw := `<message xmlns='jabber:component:accept' from='` + julietPC + `' to='g1@rooms.example.org' type='groupchat' id='m1'>
		<body>Wherefore art thou</body>
		<origin-id xmlns='urn:xmpp:sid:0' id='o1'/>
		<stanza-id xmlns='urn:xmpp:sid:0' id='spoofed' by='g1@rooms.example.org'/>
		<x xmlns='http://jabber.org/protocol/muc#user'><status code='110'/></x>
		<reply xmlns='urn:xmpp:reply:0' to='x' id='y'><note>kept</note></reply>
		<active xmlns='http://jabber.org/protocol/chatstates'/>
	</message>`
	out := handle(t, s, raw)
	if len(b.posts) != 1 {
		t.Fatalf("posts: %v", b.posts)
	}
	p := b.posts[0]
	if p.ID != "o1" || p.S != juliet || p.R != "g1" || p.T != "t" || p.C != "Wherefore art thou" || int64(p.ST) != t0.UnixMilli() {
		t.Errorf("posted %+v", p)
	}
	if len(out) != 2 || len(to(out, julietPC)) != 1 || len(to(out, romeoFull)) != 1 {
		t.Fatalf("reflections: %v", out)
	}
	for _, n := range out {
		if n.attr("type") != "groupchat" || n.attr("from") != room+"/Juliet" || n.attr("id") != "m1" ||
			n.kid("body").Text != "Wherefore art thou" || n.kid("body").XMLName.Space != "jabber:component:accept" {
			t.Errorf("reflection: %s", n.String())
		}
		if o := n.find(mapping.NSSID, "origin-id"); o == nil || o.attr("id") != "o1" {
			t.Errorf("origin-id not kept: %s", n.String())
		}
		var sids []string
		for _, k := range n.Kids {
			if k.XMLName.Local == "stanza-id" {
				sids = append(sids, k.attr("id")+" "+k.attr("by"))
			}
		}
		if !slices.Equal(sids, []string{stanzaID(juliet, "o1") + " " + room}) {
			t.Errorf("stanza-ids %v", sids)
		}
		if n.find(nsUser, "x") != nil {
			t.Errorf("muc#user payload reflected: %s", n.String())
		}
		if r := n.find("urn:xmpp:reply:0", "reply"); r == nil || r.attr("id") != "y" || r.kid("note") == nil ||
			r.kid("note").XMLName.Space != "urn:xmpp:reply:0" || r.kid("note").Text != "kept" {
			t.Errorf("extension not kept: %s", n.String())
		}
	}
	// The history a later joiner gets carries the same stanza-id.
	hist := join(t, s, julietPh, "J2")
	found := false
	for _, n := range hist {
		if sid := n.find(mapping.NSSID, "stanza-id"); sid != nil && sid.attr("id") == stanzaID(juliet, "o1") {
			// Juliet has two nicks now: either names her.
			found = n.attr("from") == room+"/Juliet" || n.attr("from") == room+"/J2"
		}
	}
	if !found {
		t.Errorf("history lacks the message or its stanza-id: %v", hist)
	}
}

func TestGroupchatWithoutIDs(t *testing.T) {
	s, b := twoJoined(t)
	out := handle(t, s, `<message from='`+romeoFull+`' to='g1@rooms.example.org' type='groupchat'><body>hi</body></message>`)
	if len(b.posts) != 1 || b.posts[0].ID == "" || len(out) != 2 {
		t.Fatalf("posts %v, out %v", b.posts, out)
	}
	if sid := out[0].find(mapping.NSSID, "stanza-id"); sid.attr("id") != stanzaID(romeo, b.posts[0].ID) {
		t.Errorf("stanza-id %s", out[0].String())
	}
	// With only an id, the id is the LEMP id.
	handle(t, s, `<message from='`+romeoFull+`' to='g1@rooms.example.org' type='groupchat' id='plain'><body>hi</body></message>`)
	if b.posts[1].ID != "plain" {
		t.Errorf("posted id %q", b.posts[1].ID)
	}
}

// A stanza without a namespace at all keeps its plain children in none.
func TestReflectNoNamespace(t *testing.T) {
	s, _ := twoJoined(t)
	st := decode(t, `<message from='`+julietPC+`' to='g1@rooms.example.org' type='groupchat' id='m'><body>x</body><e xmlns='urn:e'><f/><body>inner</body></e></message>`)
	st.ns = "jabber:client" // as if the stream's were jabber:client and these children not in it
	out := parse(t, s.Handle(context.Background(), st))
	if len(out) != 2 {
		t.Fatal(out)
	}
	e := out[0].find("urn:e", "e")
	if e == nil || e.kid("f").XMLName.Space != "urn:e" || e.kid("body").XMLName.Space != "urn:e" {
		t.Errorf("namespaces: %s", out[0].String())
	}
}

func TestGroupchatErrors(t *testing.T) {
	cases := []struct {
		name, from, cond, typ string
		postErr               error
	}{
		{"not an occupant", nurse, "not-acceptable", "modify", nil},
		{"joined from another resource", julietPh, "not-acceptable", "modify", nil},
		{"refused by the core", julietPC, "forbidden", "auth", bridge.Errorf(bridge.CodeForbidden, "not a member")},
		{"store down", julietPC, "internal-server-error", "cancel", errors.New("redis down")},
		{"rate limited", julietPC, "policy-violation", "wait", bridge.Errorf(bridge.CodeRateLimited, "slow down")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, b := twoJoined(t)
			b.postErr = c.postErr
			out := handle(t, s, `<message from='`+c.from+`' to='g1@rooms.example.org' type='groupchat' id='m9'><body>hi</body></message>`)
			wantError(t, out, "message", c.cond, c.typ, room, c.from)
			if out[0].attr("id") != "m9" {
				t.Errorf("error id: %s", out[0].String())
			}
			if len(b.posts) != 0 && c.postErr == nil {
				t.Errorf("posted %v", b.posts)
			}
			if e := out[0].find("", "text"); c.postErr != nil && c.typ != "cancel" && (e == nil || e.Text == "") {
				t.Errorf("no error text: %s", out[0].String())
			}
			if strings.Contains(out[0].String(), "redis") {
				t.Errorf("internal error text leaked: %s", out[0].String())
			}
		})
	}
}

func TestGroupchatBadContent(t *testing.T) {
	s, b := twoJoined(t)
	big := strings.Repeat("a", mapping.MaxBodyBytes+1)
	out := handle(t, s, `<message from='`+julietPC+`' to='g1@rooms.example.org' type='groupchat'><body>`+big+`</body></message>`)
	wantError(t, out, "message", "bad-request", "modify", room, julietPC)
	if len(b.posts) != 0 {
		t.Errorf("posted")
	}
}

func TestChatStatesAndReceipts(t *testing.T) {
	s, b := twoJoined(t)
	out := handle(t, s, `<message from='`+julietPC+`' to='g1@rooms.example.org' type='groupchat' id='c'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`)
	if len(b.posts) != 0 {
		t.Fatalf("a chat state was posted: %v", b.posts)
	}
	if len(out) != 1 || out[0].attr("to") != romeoFull || out[0].find(mapping.NSChatStates, "composing") == nil || out[0].find(mapping.NSSID, "stanza-id") != nil {
		t.Errorf("chat state reflection: %v", out)
	}
	for _, raw := range []string{
		`<message from='` + julietPC + `' to='g1@rooms.example.org' type='groupchat'><received xmlns='urn:xmpp:receipts' id='x'/></message>`,
		`<message from='` + julietPC + `' to='g1@rooms.example.org' type='groupchat'><displayed xmlns='urn:xmpp:chat-markers:0' id='x'/></message>`,
		`<message from='` + julietPC + `' to='g1@rooms.example.org' type='groupchat'/>`,
	} {
		if out := handle(t, s, raw); len(out) != 0 || len(b.posts) != 0 {
			t.Errorf("%s: out %v posts %v", raw, out, b.posts)
		}
	}
}

func TestSubjectChange(t *testing.T) {
	s, b := twoJoined(t)
	out := handle(t, s, `<message from='`+julietPC+`' to='g1@rooms.example.org' type='groupchat' id='s1'><subject>Mine</subject></message>`)
	wantError(t, out, "message", "forbidden", "auth", room, julietPC)
	if len(b.subjects) != 0 {
		t.Fatal("a member renamed the group")
	}
	out = handle(t, s, `<message from='`+romeoFull+`' to='g1@rooms.example.org' type='groupchat' id='s2'><subject>Mantua</subject></message>`)
	if !slices.Equal(b.subjects, []string{"g1 " + romeo + " Mantua"}) {
		t.Fatalf("subjects %v", b.subjects)
	}
	// The subject, then 104, to each occupant.
	if len(out) != 4 {
		t.Fatalf("subject change: %v", out)
	}
	for _, n := range out[:2] {
		if n.attr("from") != room+"/Romeo" || n.kid("subject").Text != "Mantua" || n.kid("body") != nil {
			t.Errorf("subject: %s", n.String())
		}
	}
	for _, n := range out[2:] {
		if n.attr("from") != room || !slices.Equal(n.codes(), []string{"104"}) {
			t.Errorf("104: %s", n.String())
		}
	}
	// The "n" event the rename causes is not announced a second time...
	ev := s.Event(context.Background(), b.room("g1"), &bridge.GroupInfo{T: "n", I: "g1", N: "Mantua", S: romeo})
	if len(ev) != 0 {
		t.Errorf("second announcement: %v", parse(t, ev))
	}
	// ...but a LEMP admin's rename is.
	r := b.room("g1")
	r.Name = "Padua"
	ev = s.Event(context.Background(), r, &bridge.GroupInfo{T: "n", I: "g1", N: "Padua", S: "alice"})
	got := parse(t, ev)
	if len(got) != 4 || got[0].attr("from") != room+"/alice" || got[0].kid("subject").Text != "Padua" {
		t.Errorf("LEMP rename: %v", got)
	}
	// A message with a subject and a body is a message.
	handle(t, s, `<message from='`+julietPC+`' to='g1@rooms.example.org' type='groupchat'><subject>x</subject><body>hello</body></message>`)
	if len(b.posts) != 1 || len(b.subjects) != 1 {
		t.Errorf("posts %v subjects %v", b.posts, b.subjects)
	}
	// A refused rename.
	b.subjectErr = bridge.Errorf(bridge.CodeTooLarge, "too long")
	out = handle(t, s, `<message from='`+romeoFull+`' to='g1@rooms.example.org' type='groupchat'><subject>y</subject></message>`)
	wantError(t, out, "message", "not-acceptable", "modify", room, romeoFull)
}

func TestPrivateMessagesRefused(t *testing.T) {
	s, b := twoJoined(t)
	out := handle(t, s, `<message from='`+julietPC+`' to='g1@rooms.example.org/alice' type='chat' id='pm'><body>psst</body></message>`)
	wantError(t, out, "message", "not-allowed", "cancel", room+"/alice", julietPC)
	out = handle(t, s, `<message from='`+julietPC+`' to='g1@rooms.example.org/Romeo' type='groupchat'><body>psst</body></message>`)
	wantError(t, out, "message", "bad-request", "modify", room+"/Romeo", julietPC)
	if out := handle(t, s, `<message from='`+julietPC+`' to='g1@rooms.example.org/Romeo' type='chat'><active xmlns='http://jabber.org/protocol/chatstates'/></message>`); len(out) != 0 {
		t.Errorf("chat state to an occupant answered: %v", out)
	}
	if len(b.posts) != 0 {
		t.Errorf("posted %v", b.posts)
	}
}

func TestOtherMessages(t *testing.T) {
	s, _ := twoJoined(t)
	cases := []struct{ raw, cond, from string }{
		{`<message from='` + julietPC + `' to='g1@rooms.example.org' type='chat'><body>x</body></message>`, "bad-request", room},
		{`<message from='` + julietPC + `' to='rooms.example.org'><body>x</body></message>`, "service-unavailable", domain},
		{`<message from='` + julietPC + `' to='g1@other.example'><body>x</body></message>`, "item-not-found", "g1@other.example"},
		{`<message from='` + julietPC + `' to='nope@rooms.example.org' type='groupchat'><body>x</body></message>`, "not-acceptable", "nope@rooms.example.org"},
		{`<message from='@@' to='g1@rooms.example.org' type='groupchat'><body>x</body></message>`, "jid-malformed", room},
	}
	for _, c := range cases {
		out := handle(t, s, c.raw)
		if len(out) != 1 {
			t.Errorf("%s: %v", c.raw, out)
			continue
		}
		if cond, _ := out[0].condition(); cond != c.cond || out[0].attr("from") != c.from {
			t.Errorf("%s: got %s", c.raw, out[0].String())
		}
	}
	for _, raw := range []string{
		`<message from='` + julietPC + `' to='g1@rooms.example.org' type='headline'><body>x</body></message>`,
		`<message from='` + julietPC + `' to='g1@rooms.example.org'><x xmlns='http://jabber.org/protocol/muc#user'><decline to='romeo@montague.lit'/></x></message>`,
		`<message from='` + julietPC + `' to='rooms.example.org'/>`,
	} {
		if out := handle(t, s, raw); len(out) != 0 {
			t.Errorf("%s answered %v", raw, out)
		}
	}
}

func TestMediatedInviteFromOccupant(t *testing.T) {
	s, b := twoJoined(t)
	inv := func(from, who string) []node {
		return handle(t, s, `<message from='`+from+`' to='g1@rooms.example.org'><x xmlns='http://jabber.org/protocol/muc#user'><invite to='`+who+`'><reason>come</reason></invite></x></message>`)
	}
	out := inv(julietPC, "nurse@capulet.lit")
	wantError(t, out, "message", "forbidden", "auth", room, julietPC)
	if out := inv(romeoFull, "nurse@capulet.lit/kitchen"); len(out) != 0 {
		t.Errorf("invite of a new member answered: %v", out)
	}
	if !slices.Equal(b.admin, []string{"g1 " + romeo + " add nurse@capulet.lit"}) {
		t.Errorf("admin calls %v", b.admin)
	}
	// A LEMP user by its JID becomes a username.
	inv(romeoFull, "carol@lemp.example.org")
	if b.admin[1] != "g1 "+romeo+" add carol" {
		t.Errorf("admin calls %v", b.admin)
	}
	// Juliet is a member already: invited again, at once.
	out = inv(romeoFull, juliet)
	if len(out) != 1 || out[0].attr("to") != juliet || out[0].find(nsUser, "invite").attr("from") != romeo {
		t.Errorf("re-invitation: %v", out)
	}
	out = inv(romeoFull, "not a jid")
	wantError(t, out, "message", "jid-malformed", "modify", room, romeoFull)
}

package muc

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/lempgw/lempgw/bridge"
	"github.com/lempgw/lempgw/mapping"
)

func TestFanout(t *testing.T) {
	s, _ := newWorld(t)
	ctx := context.Background()
	m := &bridge.Message{ID: "m1", S: "alice", R: "g1", T: "t", C: "hello Verona", ST: bridge.Millis(t0.UnixMilli())}
	if out := s.Fanout(ctx, "g1", m); out != nil {
		t.Fatalf("no occupants, yet %v", out)
	}
	join(t, s, julietPC, "Juliet")
	join(t, s, romeoFull, "Romeo")
	out := parse(t, s.Fanout(ctx, "G1", m))
	if len(out) != 2 || len(to(out, julietPC)) != 1 || len(to(out, romeoFull)) != 1 {
		t.Fatalf("fanout: %v", out)
	}
	for _, n := range out {
		if n.attr("from") != room+"/alice" || n.attr("type") != "groupchat" || n.attr("id") != "m1" ||
			n.kid("body").Text != "hello Verona" || n.find(mapping.NSSID, "origin-id").attr("id") != "m1" ||
			n.find(mapping.NSSID, "stanza-id").attr("id") != stanzaID("alice", "m1") ||
			n.find(mapping.NSSID, "stanza-id").attr("by") != room {
			t.Errorf("fanout: %s", n.String())
		}
		if n.find(mapping.NSReceipts, "request") != nil || n.find(mapping.NSMarkers, "markable") != nil || n.find(mapping.NSDelay, "delay") != nil {
			t.Errorf("receipt request, marker or delay in a room message: %s", n.String())
		}
	}
	photo := &bridge.Message{ID: "m2", S: "bob", R: "g1", T: "p", C: "https://example.org/b.png", P: "0"}
	out = parse(t, s.Fanout(ctx, "g1", photo))
	if n := out[0]; n.find("jabber:x:oob", "url").Text != "https://example.org/b.png" || n.find("urn:xmpp:hints", "no-store") == nil {
		t.Errorf("photo: %s", n.String())
	}
	loc := &bridge.Message{ID: "m3", S: "bob", R: "g1", T: "l", C: "45.4,10.99"}
	if n := parse(t, s.Fanout(ctx, "g1", loc))[0]; n.find("http://jabber.org/protocol/geoloc", "lat").Text != "45.4" {
		t.Errorf("location: %s", n.String())
	}
	for _, m := range []*bridge.Message{
		{ID: "r", S: "alice", R: "g1", DM: &bridge.Ref{ID: "m1"}},
		{ID: "j", S: romeo, R: "g1", T: "t", C: "by a Jabber member"},
		{ID: "e", S: "alice", R: "g1", T: "t"},
		nil,
	} {
		if out := s.Fanout(ctx, "g1", m); out != nil {
			t.Errorf("fanout of %+v: %v", m, out)
		}
	}
	if out := s.Fanout(ctx, "nope", m); out != nil {
		t.Errorf("fanout to an unknown room: %v", out)
	}
}

func TestEventInvites(t *testing.T) {
	s, b := newWorld(t)
	ctx := context.Background()
	r := b.room("g1")
	r.Members = append(r.Members, "nurse@capulet.lit", "carol")
	out := parse(t, s.Event(ctx, r, &bridge.GroupInfo{T: "a", I: "g1", M: []any{"nurse@capulet.lit", "carol"}, S: "alice"}))
	if len(out) != 1 {
		t.Fatalf("invitations: %v", out)
	}
	inv := out[0]
	if inv.XMLName.Local != "message" || inv.attr("from") != room || inv.attr("to") != "nurse@capulet.lit" || inv.has("type") ||
		inv.find(nsUser, "invite").attr("from") != "alice@lemp.example.org" || inv.find(nsUser, "reason").Text == "" {
		t.Errorf("invitation: %s", inv.String())
	}
	// On creation, every Jabber member but the creator.
	out = parse(t, s.Event(ctx, r, &bridge.GroupInfo{T: "c", I: "g1", S: romeo}))
	var got []string
	for _, n := range out {
		got = append(got, n.attr("to"))
	}
	if !slices.Equal(got, []string{juliet, "nurse@capulet.lit"}) {
		t.Errorf("invitations on creation to %v", got)
	}
	// A name that is not a member (the event and the room disagree) is not invited.
	if out := s.Event(ctx, b.room("g1"), &bridge.GroupInfo{T: "a", I: "g1", M: []string{"x@y.z"}, S: "alice"}); len(out) != 0 {
		t.Errorf("invited a non-member: %v", parse(t, out))
	}
}

func TestEventMembershipChanges(t *testing.T) {
	ctx := context.Background()
	s, b := twoJoined(t)
	// A LEMP user is added: present at once.
	r := b.room("g1")
	r.Members = append(r.Members, "carol")
	out := parse(t, s.Event(ctx, r, &bridge.GroupInfo{T: "a", I: "g1", M: []string{"carol"}, S: "alice"}))
	if len(out) != 2 {
		t.Fatalf("carol added: %v", out)
	}
	for _, n := range out {
		if n.attr("from") != room+"/carol" || n.has("type") || n.item().attr("affiliation") != "member" || n.item().attr("jid") != "carol@lemp.example.org" {
			t.Errorf("carol's presence: %s", n.String())
		}
	}
	// Bob is banished by a LEMP admin: 321, actor alice.
	r.Members = slices.DeleteFunc(r.Members, func(m string) bool { return m == "bob" })
	out = parse(t, s.Event(ctx, r, &bridge.GroupInfo{T: "b", I: "g1", M: "bob", S: "alice"}))
	if len(out) != 2 {
		t.Fatalf("bob banished: %v", out)
	}
	for _, n := range out {
		if n.attr("from") != room+"/bob" || n.attr("type") != "unavailable" || !slices.Equal(n.codes(), []string{"321"}) ||
			n.item().attr("affiliation") != "none" || n.item().kid("actor").attr("nick") != "alice" {
			t.Errorf("bob's removal: %s", n.String())
		}
	}
	// Carol leaves: a plain unavailable.
	r.Members = slices.DeleteFunc(r.Members, func(m string) bool { return m == "carol" })
	out = parse(t, s.Event(ctx, r, &bridge.GroupInfo{T: "l", I: "g1", M: "carol", S: "carol"}))
	if len(out) != 2 || out[0].attr("type") != "unavailable" || len(out[0].codes()) != 0 {
		t.Errorf("carol left: %v", out)
	}
	// Juliet (a Jabber occupant) is banished: 321 to her (with 110) and Romeo.
	r.Members = slices.DeleteFunc(r.Members, func(m string) bool { return m == juliet })
	out = parse(t, s.Event(ctx, r, &bridge.GroupInfo{T: "b", I: "g1", M: juliet, S: "alice"}))
	if len(out) != 2 || !slices.Equal(to(out, julietPC)[0].codes(), []string{"110", "321"}) || !slices.Equal(to(out, romeoFull)[0].codes(), []string{"321"}) {
		t.Errorf("juliet banished: %v", out)
	}
	if occ := s.Occupants("g1"); len(occ) != 1 {
		t.Errorf("occupants %+v", occ)
	}
	// Romeo loses his admin rights: his role follows.
	r.Admins = []string{"alice"}
	out = parse(t, s.Event(ctx, r, &bridge.GroupInfo{T: "n", I: "g1", N: r.Name, S: "alice"}))
	var roles []string
	for _, n := range out {
		if n.XMLName.Local == "presence" {
			roles = append(roles, n.item().attr("affiliation")+"/"+n.item().attr("role"))
		}
	}
	if !slices.Equal(roles, []string{"member/participant"}) {
		t.Errorf("romeo demoted: %v", out)
	}
}

func TestEventNickTakenByNewMember(t *testing.T) {
	ctx := context.Background()
	s, b := twoJoined(t)
	join(t, s, julietPh, "Carol")
	r := b.room("g1")
	r.Members = append(r.Members, "carol")
	out := parse(t, s.Event(ctx, r, &bridge.GroupInfo{T: "a", I: "g1", M: []string{"carol"}, S: "alice"}))
	// Carol's nick was Juliet's: Juliet's second session is kicked, then carol appears.
	var kicks, presences int
	for _, n := range out {
		switch {
		case n.attr("from") == room+"/Carol" && n.attr("type") == "unavailable" && slices.Contains(n.codes(), "307"):
			kicks++
		case n.attr("from") == room+"/carol" && !n.has("type"):
			presences++
		}
	}
	if kicks != 3 || presences != 2 {
		t.Errorf("kicks %d presences %d: %v", kicks, presences, out)
	}
	if len(s.Occupants("g1")) != 2 {
		t.Errorf("occupants: %+v", s.Occupants("g1"))
	}
}

func TestEventPictureAndName(t *testing.T) {
	ctx := context.Background()
	s, b := twoJoined(t)
	r := b.room("g1")
	r.Picture = "https://example.org/new.png"
	out := parse(t, s.Event(ctx, r, &bridge.GroupInfo{T: "p", I: "g1", S: "alice"}))
	if len(out) != 2 {
		t.Fatalf("picture: %v", out)
	}
	for _, n := range out {
		if n.attr("from") != room || n.attr("type") != "groupchat" || !slices.Equal(n.codes(), []string{"104"}) || n.kid("body") != nil {
			t.Errorf("104: %s", n.String())
		}
	}
	// No occupants: nothing.
	if out := s.Event(ctx, Room{ID: "lonely", Members: []string{"alice"}}, &bridge.GroupInfo{T: "n", I: "lonely", S: "alice"}); len(out) != 0 {
		t.Errorf("event of an empty room: %v", out)
	}
	if out := s.Event(ctx, r, nil); out != nil {
		t.Errorf("nil event: %v", out)
	}
}

func TestEventTerminated(t *testing.T) {
	ctx := context.Background()
	s, b := twoJoined(t)
	r := b.room("g1")
	r.Terminated = true
	// However it comes (here as the last member leaving): the room is destroyed.
	out := parse(t, s.Event(ctx, r, &bridge.GroupInfo{T: "l", I: "g1", M: "alice", S: "alice"}))
	if len(out) != 2 {
		t.Fatalf("destroy: %v", out)
	}
	for _, n := range out {
		if n.find(nsUser, "destroy") == nil || n.attr("from") != room+"/"+map[string]string{julietPC: "Juliet", romeoFull: "Romeo"}[n.attr("to")] {
			t.Errorf("destroy: %s", n.String())
		}
	}
	if n, rooms := s.OccupantCount(); n != 0 || rooms != 0 {
		t.Errorf("%d occupants in %d rooms", n, rooms)
	}
}

func TestDirectInvite(t *testing.T) {
	from := jid.MustParse("alice@lemp.example.org/lemp")
	out := parse(t, []any{DirectInvite(from, jid.MustParse(julietPC), jid.MustParse(room+"/x"), "join us")})
	n := out[0]
	x := n.find("jabber:x:conference", "x")
	if n.attr("from") != "alice@lemp.example.org/lemp" || n.attr("to") != juliet || x == nil || x.attr("jid") != room || x.attr("reason") != "join us" {
		t.Errorf("direct invite: %s", n.String())
	}
}

// Handle, Fanout and Event from many goroutines (run with -race).
func TestConcurrentUse(t *testing.T) {
	s, b := newWorld(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			full := fmt.Sprintf("%s/r%d", juliet, i)
			nick := fmt.Sprintf("J%d", i)
			for j := range 20 {
				join(t, s, full, nick)
				handle(t, s, fmt.Sprintf(`<message from='%s' to='g1@rooms.example.org' type='groupchat' id='%d-%d'><body>x</body></message>`, full, i, j))
				s.Fanout(ctx, "g1", &bridge.Message{ID: fmt.Sprint(i, j), S: "alice", R: "g1", T: "t", C: "y"})
				s.Event(ctx, b.room("g1"), &bridge.GroupInfo{T: "p", I: "g1", S: "alice"})
				s.Occupants("g1")
				if j%5 == 4 {
					handle(t, s, `<presence from='`+full+`' to='g1@rooms.example.org/`+nick+`' type='unavailable'/>`)
				}
			}
		}()
	}
	wg.Wait()
	if n, _ := s.OccupantCount(); n > 8 {
		t.Errorf("%d occupants", n)
	}
}

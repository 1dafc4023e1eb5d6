package muc

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/xml"
	"slices"
	"strings"
	"testing"

	"github.com/lempgw/lempgw/bridge"
	"github.com/lempgw/lempgw/mapping"
)

func iq(from, to, typ, payload string) string {
	return `<iq from='` + from + `' to='` + to + `' type='` + typ + `' id='q1'>` + payload + `</iq>`
}

// result checks out is one IQ result answering q1 from 'from' to 'to'.
func result(t *testing.T, out []node, from, to string) *node {
	t.Helper()
	if len(out) != 1 || out[0].XMLName.Local != "iq" || out[0].attr("type") != "result" || out[0].attr("id") != "q1" ||
		out[0].attr("from") != from || out[0].attr("to") != to {
		t.Fatalf("want a result from %s to %s, got %v", from, to, out)
	}
	return &out[0]
}

func featureVars(n *node) []string {
	var out []string
	if q := n.find(nsDiscoInfo, "query"); q != nil {
		for _, k := range q.Kids {
			if k.XMLName.Local == "feature" {
				out = append(out, k.attr("var"))
			}
		}
	}
	return out
}

func field(n *node, v string) []string {
	x := n.find(nsData, "x")
	if x == nil {
		return nil
	}
	for _, f := range x.Kids {
		if f.attr("var") == v {
			var out []string
			for _, val := range f.Kids {
				out = append(out, val.Text)
			}
			return out
		}
	}
	return nil
}

func TestServiceDisco(t *testing.T) {
	s, _ := newWorld(t)
	r := result(t, handle(t, s, iq(julietPC, domain, "get", `<query xmlns='http://jabber.org/protocol/disco#info'/>`)), domain, julietPC)
	id := r.find(nsDiscoInfo, "identity")
	if id.attr("category") != "conference" || id.attr("type") != "text" || !slices.Contains(featureVars(r), nsMUC) {
		t.Errorf("service info: %s", r.String())
	}
	// Without RoomLister: no rooms listed.
	r = result(t, handle(t, s, iq(julietPC, domain, "get", `<query xmlns='http://jabber.org/protocol/disco#items'/>`)), domain, julietPC)
	if len(r.find(nsDiscoItems, "query").Kids) != 0 {
		t.Errorf("items: %s", r.String())
	}
	// With it: the asker's rooms.
	_, b := newWorld(t)
	b.rooms["g2"] = Room{ID: "g2", Name: "Elsewhere", Owner: "alice", Members: []string{"alice"}}
	s = newService(t, listerBackend{b})
	r = result(t, handle(t, s, iq(julietPC, domain, "get", `<query xmlns='http://jabber.org/protocol/disco#items'/>`)), domain, julietPC)
	items := r.find(nsDiscoItems, "query").Kids
	if len(items) != 1 || items[0].attr("jid") != room || items[0].attr("name") != "Verona" {
		t.Errorf("juliet's rooms: %s", r.String())
	}
	// Ping; anything else: service-unavailable.
	result(t, handle(t, s, iq("capulet.lit", domain, "get", `<ping xmlns='urn:xmpp:ping'/>`)), domain, "capulet.lit")
	out := handle(t, s, iq(julietPC, domain, "get", `<query xmlns='jabber:iq:register'/>`))
	wantError(t, out, "iq", "service-unavailable", "cancel", domain, julietPC)
	out = handle(t, s, iq(julietPC, domain, "set", `<query xmlns='http://jabber.org/protocol/disco#info'/>`))
	wantError(t, out, "iq", "service-unavailable", "cancel", domain, julietPC)
	out = handle(t, s, iq(julietPC, domain, "get", `<query xmlns='http://jabber.org/protocol/disco#info' node='x'/>`))
	wantError(t, out, "iq", "item-not-found", "cancel", domain, julietPC)
}

func TestRoomDisco(t *testing.T) {
	s, b := newWorld(t)
	join(t, s, julietPC, "Juliet")
	r := result(t, handle(t, s, iq(nurse, room, "get", `<query xmlns='http://jabber.org/protocol/disco#info'/>`)), room, nurse)
	if id := r.find(nsDiscoInfo, "identity"); id.attr("category") != "conference" || id.attr("name") != "Verona" {
		t.Errorf("identity: %s", r.String())
	}
	f := featureVars(r)
	for _, want := range []string{nsMUC, "muc_membersonly", "muc_nonanonymous", "muc_persistent", "muc_hidden", "muc_unsecured", "vcard-temp", nsStableID, nsSelfPing} {
		if !slices.Contains(f, want) {
			t.Errorf("feature %s missing: %v", want, f)
		}
	}
	if got := field(r, "muc#roominfo_occupants"); !slices.Equal(got, []string{"3"}) { // alice, bob, Juliet
		t.Errorf("occupants field %v", got)
	}
	if got := field(r, "FORM_TYPE"); !slices.Equal(got, []string{nsRoomInfo}) {
		t.Errorf("FORM_TYPE %v", got)
	}
	if field(r, "muc#roominfo_avatarhash") != nil {
		t.Errorf("avatar hash without a picture")
	}
	r = result(t, handle(t, s, iq(julietPC, room, "get", `<query xmlns='http://jabber.org/protocol/disco#info' node='x-roomuser-item'/>`)), room, julietPC)
	if q := r.find(nsDiscoInfo, "query"); q.attr("node") != "x-roomuser-item" || len(q.Kids) != 0 {
		t.Errorf("x-roomuser-item: %s", r.String())
	}
	// Items: the occupants, to members only.
	r = result(t, handle(t, s, iq(julietPC, room, "get", `<query xmlns='http://jabber.org/protocol/disco#items'/>`)), room, julietPC)
	var jids []string
	for _, k := range r.find(nsDiscoItems, "query").Kids {
		jids = append(jids, k.attr("jid"))
	}
	if !slices.Equal(jids, []string{room + "/alice", room + "/bob", room + "/Juliet"}) {
		t.Errorf("items %v", jids)
	}
	r = result(t, handle(t, s, iq(nurse, room, "get", `<query xmlns='http://jabber.org/protocol/disco#items'/>`)), room, nurse)
	if len(r.find(nsDiscoItems, "query").Kids) != 0 {
		t.Errorf("items to a non-member: %s", r.String())
	}
	// Unknown and terminated rooms.
	out := handle(t, s, iq(julietPC, "nope@"+domain, "get", `<query xmlns='http://jabber.org/protocol/disco#info'/>`))
	wantError(t, out, "iq", "item-not-found", "cancel", "nope@"+domain, julietPC)
	out = handle(t, s, iq(julietPC, "old@"+domain, "get", `<query xmlns='http://jabber.org/protocol/disco#info'/>`))
	wantError(t, out, "iq", "item-not-found", "cancel", "old@"+domain, julietPC)
	_ = b
}

func TestRoomVCard(t *testing.T) {
	pic := "data:image/png;base64,iVBORw0KGgo="
	for _, c := range []struct{ picture, typ, binval, extval string }{
		{pic, "image/png", "iVBORw0KGgo=", ""},
		{"https://example.org/verona.png", "", "", "https://example.org/verona.png"},
		{"", "", "", ""},
	} {
		s, b := newWorld(t)
		r := b.rooms["g1"]
		r.Picture = c.picture
		b.rooms["g1"] = r
		res := result(t, handle(t, s, iq(julietPC, room, "get", `<vCard xmlns='vcard-temp'/>`)), room, julietPC)
		v := res.find(mapping.NSVCard, "vCard")
		if v == nil || v.kid("FN").Text != "Verona" {
			t.Fatalf("vCard: %s", res.String())
		}
		photo := v.kid("PHOTO")
		if c.picture == "" {
			if photo != nil {
				t.Errorf("photo without a picture: %s", res.String())
			}
			continue
		}
		get := func(n string) string {
			if k := photo.kid(n); k != nil {
				return k.Text
			}
			return ""
		}
		if get("TYPE") != c.typ || get("BINVAL") != c.binval || get("EXTVAL") != c.extval {
			t.Errorf("photo of %q: %s", c.picture, res.String())
		}
		info := result(t, handle(t, s, iq(julietPC, room, "get", `<query xmlns='http://jabber.org/protocol/disco#info'/>`)), room, julietPC)
		hash := field(info, "muc#roominfo_avatarhash")
		if c.binval != "" {
			sum := sha1.Sum([]byte{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'})
			if !slices.Equal(hash, []string{hex.EncodeToString(sum[:])}) {
				t.Errorf("avatar hash %v", hash)
			}
		} else if hash != nil {
			t.Errorf("avatar hash %v for a URL", hash)
		}
	}
	s, _ := newWorld(t)
	out := handle(t, s, iq(julietPC, room, "set", `<vCard xmlns='vcard-temp'/>`))
	wantError(t, out, "iq", "forbidden", "auth", room, julietPC)
	out = handle(t, s, iq(romeoFull, room, "set", `<vCard xmlns='vcard-temp'/>`))
	wantError(t, out, "iq", "not-allowed", "cancel", room, romeoFull)
}

func TestPings(t *testing.T) {
	s, _ := newWorld(t)
	join(t, s, julietPC, "Juliet")
	ping := `<ping xmlns='urn:xmpp:ping'/>`
	result(t, handle(t, s, iq(julietPC, room, "get", ping)), room, julietPC)
	// XEP-0410 self-ping.
	result(t, handle(t, s, iq(julietPC, room+"/Juliet", "get", ping)), room+"/Juliet", julietPC)
	out := handle(t, s, iq(julietPh, room+"/Juliet", "get", ping))
	wantError(t, out, "iq", "not-acceptable", "cancel", room+"/Juliet", julietPh)
	out = handle(t, s, iq(romeoFull, room+"/Romeo", "get", ping))
	wantError(t, out, "iq", "not-acceptable", "cancel", room+"/Romeo", romeoFull)
	// Joined, pinging someone else, or asking another occupant anything.
	out = handle(t, s, iq(julietPC, room+"/alice", "get", ping))
	wantError(t, out, "iq", "service-unavailable", "cancel", room+"/alice", julietPC)
	out = handle(t, s, iq(julietPC, room+"/alice", "get", `<vCard xmlns='vcard-temp'/>`))
	wantError(t, out, "iq", "service-unavailable", "cancel", room+"/alice", julietPC)
}

func TestIQOddities(t *testing.T) {
	s, _ := newWorld(t)
	cases := []struct{ raw, cond string }{
		{`<iq from='` + julietPC + `' to='` + room + `' type='get' id='q1'/>`, "bad-request"},
		{`<iq from='` + julietPC + `' to='` + room + `' type='get' id='q1'><ping xmlns='urn:xmpp:ping'/><ping xmlns='urn:xmpp:ping'/></iq>`, "bad-request"},
		{`<iq from='` + julietPC + `' to='` + room + `' type='get' id='q1'><query xmlns='jabber:iq:version'/></iq>`, "service-unavailable"},
		{`<iq from='` + julietPC + `' to='` + room + `' type='set' id='q1'><ping xmlns='urn:xmpp:ping'/></iq>`, "service-unavailable"},
		{`<iq from='` + julietPC + `' to='g1@elsewhere.example' type='get' id='q1'><ping xmlns='urn:xmpp:ping'/></iq>`, "item-not-found"},
		{`<iq from='` + julietPC + `' to='g\2f@rooms.example.org' type='get' id='q1'><ping xmlns='urn:xmpp:ping'/></iq>`, "jid-malformed"},
		{`<iq from='@' to='` + room + `' type='get' id='q1'><ping xmlns='urn:xmpp:ping'/></iq>`, "jid-malformed"},
		{`<iq from='` + julietPC + `' type='get' id='q1'><query xmlns='jabber:iq:version'/></iq>`, "service-unavailable"},
	}
	for _, c := range cases {
		out := handle(t, s, c.raw)
		if len(out) != 1 || out[0].attr("type") != "error" || out[0].attr("id") != "q1" || out[0].attr("from") == "" {
			t.Errorf("%s: %v", c.raw, out)
			continue
		}
		if cond, _ := out[0].condition(); cond != c.cond {
			t.Errorf("%s: %s, want %s", c.raw, out[0].String(), c.cond)
		}
	}
	for _, raw := range []string{
		`<iq from='` + julietPC + `' to='` + room + `' type='result' id='q1'/>`,
		`<iq from='` + julietPC + `' to='` + room + `' type='error' id='q1'/>`,
		`<iq from='` + julietPC + `' to='` + room + `' type='bogus' id='q1'><ping xmlns='urn:xmpp:ping'/></iq>`,
	} {
		if out := handle(t, s, raw); len(out) != 0 {
			t.Errorf("%s answered: %v", raw, out)
		}
	}
}

func TestAdminLists(t *testing.T) {
	s, _ := newWorld(t)
	join(t, s, julietPC, "Juliet")
	list := func(from, item string) []string {
		r := result(t, handle(t, s, iq(from, room, "get", `<query xmlns='http://jabber.org/protocol/muc#admin'>`+item+`</query>`)), room, from)
		var out []string
		for _, k := range r.find(nsAdmin, "query").Kids {
			out = append(out, k.attr("jid")+" "+k.attr("affiliation")+" "+k.attr("role")+" "+k.attr("nick"))
		}
		return out
	}
	for _, c := range []struct {
		item string
		want []string
	}{
		{`<item affiliation='owner'/>`, []string{"alice@lemp.example.org owner  alice"}},
		{`<item affiliation='admin'/>`, []string{"romeo@montague.lit admin  "}},
		{`<item affiliation='member'/>`, []string{"bob@lemp.example.org member  bob", "juliet@capulet.lit member  "}},
		{`<item affiliation='outcast'/>`, nil},
		{`<item role='moderator'/>`, []string{"alice@lemp.example.org owner moderator alice"}},
		{`<item role='participant'/>`, []string{"bob@lemp.example.org member participant bob", julietPC + " member participant Juliet"}},
		{`<item role='visitor'/>`, nil},
	} {
		if got := list(julietPC, c.item); !slices.Equal(got, c.want) {
			t.Errorf("%s: %q, want %q", c.item, got, c.want)
		}
	}
	out := handle(t, s, iq(nurse, room, "get", `<query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member'/></query>`))
	wantError(t, out, "iq", "forbidden", "auth", room, nurse)
	out = handle(t, s, iq(julietPC, room, "get", `<query xmlns='http://jabber.org/protocol/muc#admin'/>`))
	wantError(t, out, "iq", "bad-request", "modify", room, julietPC)
}

func TestAdminSet(t *testing.T) {
	set := func(s *Service, from, items string) []node {
		return handle(t, s, iq(from, room, "set", `<query xmlns='http://jabber.org/protocol/muc#admin'>`+items+`</query>`))
	}
	cases := []struct {
		name, from, items string
		cond              string // "" = result
		calls             []string
	}{
		{"kick by nick", romeoFull, `<item nick='Juliet' role='none'><reason>out</reason></item>`, "", []string{"g1 " + romeo + " banish " + juliet}},
		{"kick a LEMP member by nick", romeoFull, `<item nick='Bob' role='none'/>`, "", []string{"g1 " + romeo + " banish bob"}},
		{"ban by jid", romeoFull, `<item jid='juliet@capulet.lit/x' affiliation='outcast'/>`, "", []string{"g1 " + romeo + " banish " + juliet}},
		{"remove a LEMP member by jid", romeoFull, `<item jid='bob@lemp.example.org' affiliation='none'/>`, "", []string{"g1 " + romeo + " banish bob"}},
		{"add and promote", romeoFull, `<item jid='nurse@capulet.lit' affiliation='member'/><item jid='bob@lemp.example.org' affiliation='admin'/><item jid='friar@verona.lit' affiliation='member'/>`, "",
			[]string{"g1 " + romeo + " add nurse@capulet.lit,friar@verona.lit", "g1 " + romeo + " admin bob"}},
		{"nothing to change", romeoFull, `<item jid='bob@lemp.example.org' affiliation='member'/><item jid='x@y.z' affiliation='none'/>`, "", nil},
		{"not an admin", julietPC, `<item nick='Romeo' role='none'/>`, "forbidden", nil},
		{"not a member", nurse, `<item nick='Romeo' role='none'/>`, "forbidden", nil},
		{"the owner", romeoFull, `<item jid='alice@lemp.example.org' affiliation='outcast'/>`, "not-allowed", nil},
		{"make an owner", romeoFull, `<item jid='bob@lemp.example.org' affiliation='owner'/>`, "not-allowed", nil},
		{"demote an admin", romeoFull, `<item jid='alice@lemp.example.org' affiliation='member'/>`, "not-allowed", nil},
		{"voice", romeoFull, `<item nick='Juliet' role='visitor'/>`, "not-allowed", nil},
		{"both", romeoFull, `<item nick='Juliet' role='none' affiliation='none'/>`, "bad-request", nil},
		{"no target", romeoFull, `<item role='none'/>`, "bad-request", nil},
		{"unknown nick", romeoFull, `<item nick='Tybalt' role='none'/>`, "item-not-found", nil},
		{"bad jid", romeoFull, `<item jid='@@' affiliation='none'/>`, "jid-malformed", nil},
		{"no items", romeoFull, ``, "bad-request", nil},
		{"too many", romeoFull, strings.Repeat(`<item jid='a@b.c' affiliation='member'/>`, 101), "bad-request", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, b := twoJoined(t)
			out := set(s, c.from, c.items)
			if c.cond == "" {
				result(t, out, room, c.from)
			} else if cond, _ := out[0].condition(); len(out) != 1 || cond != c.cond {
				t.Fatalf("got %v, want %s", out, c.cond)
			}
			if !slices.Equal(b.admin, c.calls) {
				t.Errorf("backend calls %q, want %q", b.admin, c.calls)
			}
		})
	}
	// A refusal by the backend.
	s, b := twoJoined(t)
	b.adminErr = bridge.Errorf(bridge.CodeForbidden, "no")
	out := set(s, romeoFull, `<item nick='Juliet' role='none'/>`)
	wantError(t, out, "iq", "forbidden", "auth", room, romeoFull)
}

// A kick, a ban and a removal as the occupants see them once the event comes.
func TestAdminRemovalStatusCodes(t *testing.T) {
	for _, c := range []struct {
		item, code string
	}{
		{`<item nick='Juliet' role='none'><reason>Out!</reason></item>`, "307"},
		{`<item jid='juliet@capulet.lit' affiliation='outcast'><reason>Out!</reason></item>`, "301"},
		{`<item jid='juliet@capulet.lit' affiliation='none'><reason>Out!</reason></item>`, "321"},
	} {
		s, b := twoJoined(t)
		result(t, handle(t, s, iq(romeoFull, room, "set", `<query xmlns='http://jabber.org/protocol/muc#admin'>`+c.item+`</query>`)), room, romeoFull)
		out := parse(t, s.Event(context.Background(), b.room("g1"), &bridge.GroupInfo{T: "b", I: "g1", M: juliet, S: romeo}))
		if len(out) != 2 {
			t.Fatalf("%s: %v", c.item, out)
		}
		for _, n := range out {
			want := []string{c.code}
			if n.attr("to") == julietPC {
				want = []string{"110", c.code}
			}
			it := n.item()
			if n.attr("type") != "unavailable" || n.attr("from") != room+"/Juliet" || !slices.Equal(n.codes(), want) ||
				it.attr("affiliation") != "none" || it.attr("role") != "none" || it.kid("reason").Text != "Out!" ||
				it.kid("actor").attr("nick") != "Romeo" {
				t.Errorf("%s: %s", c.item, n.String())
			}
		}
		if occ := s.Occupants("g1"); len(occ) != 1 || occ[0].Nick != "Romeo" {
			t.Errorf("occupants %+v", occ)
		}
	}
}

func TestOwnerRequests(t *testing.T) {
	s, b := twoJoined(t)
	out := handle(t, s, iq(romeoFull, room, "get", `<query xmlns='http://jabber.org/protocol/muc#owner'/>`))
	wantError(t, out, "iq", "not-allowed", "cancel", room, romeoFull)
	out = handle(t, s, iq(julietPC, room, "get", `<query xmlns='http://jabber.org/protocol/muc#owner'/>`))
	wantError(t, out, "iq", "forbidden", "auth", room, julietPC)
	out = handle(t, s, iq(romeoFull, room, "set", `<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query>`))
	wantError(t, out, "iq", "not-allowed", "cancel", room, romeoFull)
	destroy := `<query xmlns='http://jabber.org/protocol/muc#owner'><destroy><reason>bye</reason></destroy></query>`
	out = handle(t, s, iq(julietPC, room, "set", destroy))
	wantError(t, out, "iq", "forbidden", "auth", room, julietPC)
	if len(b.admin) != 0 {
		t.Fatalf("calls %v", b.admin)
	}
	result(t, handle(t, s, iq(romeoFull, room, "set", destroy)), room, romeoFull)
	if !slices.Equal(b.admin, []string{"g1 " + romeo + " terminate "}) {
		t.Fatalf("calls %v", b.admin)
	}
	out = parse(t, s.Event(context.Background(), b.room("g1"), &bridge.GroupInfo{T: "t", I: "g1", S: romeo}))
	if len(out) != 2 {
		t.Fatalf("destroy: %v", out)
	}
	for _, n := range out {
		if n.attr("type") != "unavailable" || n.find(nsUser, "destroy") == nil || !slices.Equal(n.codes(), []string{"110"}) ||
			n.item().attr("role") != "none" {
			t.Errorf("destroy presence: %s", n.String())
		}
	}
	if n, _ := s.OccupantCount(); n != 0 {
		t.Errorf("%d occupants after destroy", n)
	}
	// The room is gone: a join now says so.
	wantError(t, join(t, s, julietPC, "J"), "presence", "gone", "cancel", room+"/J", julietPC)
}

func TestBadRequestForUndecodableIQ(t *testing.T) {
	start := xml.StartElement{Name: xml.Name{Local: "iq"}, Attr: []xml.Attr{
		{Name: xml.Name{Local: "from"}, Value: julietPC}, {Name: xml.Name{Local: "to"}, Value: room},
		{Name: xml.Name{Local: "type"}, Value: "get"}, {Name: xml.Name{Local: "id"}, Value: "q1"},
	}}
	out := parse(t, []any{BadRequest(start)})
	wantError(t, out, "iq", "bad-request", "modify", room, julietPC)
	start.Attr[2].Value = "result"
	if BadRequest(start) != nil {
		t.Error("answer to a result")
	}
	if BadRequest(xml.StartElement{Name: xml.Name{Local: "iq"}}) != nil {
		t.Error("answer without a from")
	}
	if BadRequest(xml.StartElement{Name: xml.Name{Local: "message"}}) != nil {
		t.Error("answer to a message")
	}
}

// A server (a JID without localpart) is nobody's affiliation, even when its
// name is a username.
func TestServerIsNoMember(t *testing.T) {
	s, b := newWorld(t)
	r := b.rooms["g1"]
	r.Admins = append(r.Admins, "montague.lit")
	r.Members = append(r.Members, "montague.lit")
	b.rooms["g1"] = r
	out := handle(t, s, iq("montague.lit", room, "set", `<query xmlns='http://jabber.org/protocol/muc#admin'><item jid='bob@lemp.example.org' affiliation='none'/></query>`))
	wantError(t, out, "iq", "forbidden", "auth", room, "montague.lit")
	if len(b.admin) != 0 {
		t.Errorf("calls %v", b.admin)
	}
}

// Every session of a kicked user leaves with the kick's status code.
func TestKickAllSessions(t *testing.T) {
	s, b := twoJoined(t)
	join(t, s, julietPh, "J2")
	result(t, handle(t, s, iq(romeoFull, room, "set", `<query xmlns='http://jabber.org/protocol/muc#admin'><item nick='J2' role='none'/></query>`)), room, romeoFull)
	out := parse(t, s.Event(context.Background(), b.room("g1"), &bridge.GroupInfo{T: "b", I: "g1", M: juliet, S: romeo}))
	// J2 leaves (told to J2, Juliet, Romeo), then Juliet (told to Juliet, Romeo).
	if len(out) != 5 {
		t.Fatalf("%d stanzas: %v", len(out), out)
	}
	for _, n := range out {
		if !slices.Contains(n.codes(), "307") {
			t.Errorf("not a kick: %s", n.String())
		}
	}
	if occ := s.Occupants("g1"); len(occ) != 1 || occ[0].Nick != "Romeo" {
		t.Errorf("occupants %+v", occ)
	}
}

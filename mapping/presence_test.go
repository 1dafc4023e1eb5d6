package mapping

import (
	"encoding/xml"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/lempgw/lempgw/bridge"
)

var toPresenceCases = []struct {
	name string
	p    bridge.Presence
	xml  string
}{
	{"login: available from the full JID", bridge.Presence{ID: "p1", T: bridge.PresenceAvailable, S: "alice"},
		`<presence id="p1" from="alice@lemp.example.org/lemp" to="bob@example.org"></presence>`},
	{"status", bridge.Presence{ID: "p1", T: bridge.PresenceAvailable, S: "alice", Status: "busy <really>"},
		`<presence id="p1" from="alice@lemp.example.org/lemp" to="bob@example.org"><status>busy &lt;really&gt;</status></presence>`},
	{"logout: unavailable from the full JID", bridge.Presence{ID: "p1", T: bridge.PresenceUnavailable, S: "alice"},
		`<presence id="p1" from="alice@lemp.example.org/lemp" to="bob@example.org" type="unavailable"></presence>`},
	{"probe answer while offline: last offline as a delay", bridge.Presence{ID: "p1", T: bridge.PresenceUnavailable, S: "alice", At: 1763850000123},
		`<presence id="p1" from="alice@lemp.example.org/lemp" to="bob@example.org" type="unavailable">` +
			`<delay xmlns="urn:xmpp:delay" from="lemp.example.org" stamp="2025-11-22T22:20:00.123Z"></delay></presence>`},
	{"af: subscribe from the bare JID, with a nick", bridge.Presence{ID: "p1", T: bridge.PresenceSubscribe, S: "alice", Nick: "alice"},
		`<presence id="p1" from="alice@lemp.example.org" to="bob@example.org" type="subscribe">` +
			`<nick xmlns="http://jabber.org/protocol/nick">alice</nick></presence>`},
	{"approval", bridge.Presence{ID: "p1", T: bridge.PresenceSubscribed, S: "alice"},
		`<presence id="p1" from="alice@lemp.example.org" to="bob@example.org" type="subscribed"></presence>`},
	{"rf: unsubscribe", bridge.Presence{ID: "p1", T: bridge.PresenceUnsubscribe, S: "alice"},
		`<presence id="p1" from="alice@lemp.example.org" to="bob@example.org" type="unsubscribe"></presence>`},
	{"rf or refusal: unsubscribed", bridge.Presence{ID: "p1", T: bridge.PresenceUnsubscribed, S: "alice", Status: "ignored"},
		`<presence id="p1" from="alice@lemp.example.org" to="bob@example.org" type="unsubscribed"></presence>`},
	{"probe from the bare JID", bridge.Presence{ID: "p1", T: bridge.PresenceProbe, S: "alice"},
		`<presence id="p1" from="alice@lemp.example.org" to="bob@example.org" type="probe"></presence>`},
	{"unknown type: available", bridge.Presence{T: "bogus", S: "alice"},
		`<presence from="alice@lemp.example.org/lemp" to="bob@example.org"></presence>`},
}

func TestToPresence(t *testing.T) {
	aliceFull := jid.MustParse("alice@lemp.example.org/lemp")
	for _, c := range toPresenceCases {
		t.Run(c.name, func(t *testing.T) {
			b, err := xml.Marshal(ToPresence(&c.p, aliceFull, bob))
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != c.xml {
				t.Errorf("got  %s\nwant %s", b, c.xml)
			}
		})
	}
}

const presHead = `<presence xmlns="jabber:component:accept" from="bob@example.org/phone" to="alice@lemp.example.org" id="b1"`

var fromPresenceCases = []struct {
	name string
	xml  string
	want bridge.Presence
}{
	{"available", presHead + `/>`, bridge.Presence{ID: "b1", T: bridge.PresenceAvailable}},
	{"available with show, priority and status", presHead + `><show>away</show><priority>5</priority><status>at lunch</status></presence>`,
		bridge.Presence{ID: "b1", T: bridge.PresenceAvailable, Status: "at lunch"}},
	{"status in the default language first", presHead + `><status xml:lang="de">beim Essen</status><status>at lunch</status></presence>`,
		bridge.Presence{ID: "b1", T: bridge.PresenceAvailable, Status: "at lunch"}},
	{"else the first status", presHead + `><status xml:lang="de">beim Essen</status><status xml:lang="fr">à table</status></presence>`,
		bridge.Presence{ID: "b1", T: bridge.PresenceAvailable, Status: "beim Essen"}},
	{"XEP-0153 photo hash", presHead + `><x xmlns="vcard-temp:x:update"><photo> 01B87FCD030B72895FF8E88DB57EC525450F000D </photo></x></presence>`,
		bridge.Presence{ID: "b1", T: bridge.PresenceAvailable, Photo: "01b87fcd030b72895ff8e88db57ec525450f000d"}},
	{"a photo hash that is no hex is ignored", presHead + `><x xmlns="vcard-temp:x:update"><photo>not a hash</photo></x></presence>`,
		bridge.Presence{ID: "b1", T: bridge.PresenceAvailable}},
	{"unavailable with a delay: the last offline time", presHead + ` type="unavailable"><status>gone</status><delay xmlns="urn:xmpp:delay" stamp="2025-11-22T22:20:00.123Z"/></presence>`,
		bridge.Presence{ID: "b1", T: bridge.PresenceUnavailable, Status: "gone", At: 1763850000123}},
	{"a garbage delay stamp reads as now (0)", presHead + ` type="unavailable"><delay xmlns="urn:xmpp:delay" stamp="yesterday"/></presence>`,
		bridge.Presence{ID: "b1", T: bridge.PresenceUnavailable}},
	{"subscribe (a status is not kept)", presHead + ` type="subscribe"><status>add me</status><nick xmlns="http://jabber.org/protocol/nick">Bob</nick></presence>`,
		bridge.Presence{ID: "b1", T: bridge.PresenceSubscribe}},
	{"subscribed", presHead + ` type="subscribed"/>`, bridge.Presence{ID: "b1", T: bridge.PresenceSubscribed}},
	{"unsubscribe", presHead + ` type="unsubscribe"/>`, bridge.Presence{ID: "b1", T: bridge.PresenceUnsubscribe}},
	{"unsubscribed", presHead + ` type="unsubscribed"/>`, bridge.Presence{ID: "b1", T: bridge.PresenceUnsubscribed}},
	{"probe", presHead + ` type="probe"/>`, bridge.Presence{ID: "b1", T: bridge.PresenceProbe}},
	{"unknown payloads are skipped", presHead + `><c xmlns="http://jabber.org/protocol/caps" hash="sha-1" node="n" ver="v"/><foo xmlns="urn:x"><bar/></foo></presence>`,
		bridge.Presence{ID: "b1", T: bridge.PresenceAvailable}},
}

func TestFromPresence(t *testing.T) {
	for _, c := range fromPresenceCases {
		t.Run(c.name, func(t *testing.T) {
			var s Presence
			if err := xml.Unmarshal([]byte(c.xml), &s); err != nil {
				t.Fatal(err)
			}
			got, err := FromPresence(&s, now)
			if err != nil {
				t.Fatal(err)
			}
			if *got != c.want {
				t.Errorf("got  %+v\nwant %+v", *got, c.want)
			}
		})
	}
}

func TestFromPresenceErrors(t *testing.T) {
	for _, c := range []struct{ name, xml string }{
		{"error presence", presHead + ` type="error"><error type="cancel"><remote-server-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></presence>`},
		{"unknown type", presHead + ` type="invisible"/>`},
		{"id too long", `<presence id="` + strings.Repeat("x", MaxIDBytes+1) + `"/>`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var s Presence
			if err := xml.Unmarshal([]byte(c.xml), &s); err != nil {
				t.Fatal(err)
			}
			if got, err := FromPresence(&s, now); !errors.Is(err, ErrStanza) || got != nil {
				t.Errorf("got %+v, %v", got, err)
			}
		})
	}
	if got, err := FromPresence(nil, now); !errors.Is(err, ErrStanza) || got != nil {
		t.Errorf("nil: %+v, %v", got, err)
	}
}

func TestFromPresenceLongStatus(t *testing.T) {
	long := strings.Repeat("é", MaxStatusBytes) // 2 bytes each
	s := Presence{Status: []Body{{Text: long}}}
	got, err := FromPresence(&s, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Status) > MaxStatusBytes || !utf8.ValidString(got.Status) || !strings.HasPrefix(long, got.Status) {
		t.Errorf("status of %d bytes, valid %v", len(got.Status), utf8.ValidString(got.Status))
	}
}

func TestPresenceErrorDecodedLeniently(t *testing.T) {
	raw := presHead + ` type="error"><error type="cancel" by="☃@example.org"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></presence>`
	var s Presence
	if err := xml.Unmarshal([]byte(raw), &s); err != nil {
		t.Fatal(err)
	}
	if s.Error == nil || s.Error.Condition != stanza.ItemNotFound {
		t.Errorf("error %+v", s.Error)
	}
	reply := PresenceErrorReply(&Presence{ID: "x", From: "a@b/c", To: "d@e"}, stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest})
	b, _ := xml.Marshal(reply)
	if !strings.Contains(string(b), `from="d@e" to="a@b/c" type="error"`) || !strings.Contains(string(b), "bad-request") {
		t.Errorf("reply %s", b)
	}
}

// A presence through ToPresence, xml.Marshal, xml.Unmarshal and
// FromPresence keeps its type, id and status (where it has one).
func TestPresenceRoundTrip(t *testing.T) {
	aliceFull := jid.MustParse("alice@lemp.example.org/lemp")
	for _, c := range toPresenceCases {
		if c.p.T == "bogus" {
			continue
		}
		b, err := xml.Marshal(ToPresence(&c.p, aliceFull, bob))
		if err != nil {
			t.Fatal(err)
		}
		var s Presence
		if err := xml.Unmarshal(b, &s); err != nil {
			t.Fatal(err)
		}
		got, err := FromPresence(&s, now)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		want := bridge.Presence{ID: c.p.ID, T: c.p.T}
		if c.p.T == bridge.PresenceAvailable || c.p.T == bridge.PresenceUnavailable {
			want.Status, want.At = c.p.Status, c.p.At
		}
		if *got != want {
			t.Errorf("%s: round trip gave %+v, want %+v", c.name, *got, want)
		}
	}
}

func TestLastActivity(t *testing.T) {
	for _, c := range []struct {
		last int64
		want string
		ok   bool
	}{
		{0, "0", true},
		{-1, "", false},
		{now.UnixMilli() - 90_500, "90", true},
		{now.UnixMilli() + 5000, "0", true}, // a clock step: never negative
	} {
		q, ok := LastActivityFor(c.last, now)
		if ok != c.ok || q.Seconds != c.want {
			t.Errorf("LastActivityFor(%d) = %+v, %v", c.last, q, ok)
		}
	}
	b, _ := xml.Marshal(LastActivity{Seconds: "90"})
	if string(b) != `<query xmlns="jabber:iq:last" seconds="90"></query>` {
		t.Errorf("marshal %s", b)
	}
	for _, c := range []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{"0", 0, false}, {" 903 ", 903 * time.Second, false},
		{"", 0, true}, {"-1", 0, true}, {"1.5", 0, true}, {"99999999999999999999", 0, true}, {"4000000000", 0, true},
	} {
		got, err := IdleOf(&LastActivity{Seconds: c.in})
		if (err != nil) != c.bad || got != c.want {
			t.Errorf("IdleOf(%q) = %v, %v", c.in, got, err)
		}
	}
	if _, err := IdleOf(nil); !errors.Is(err, ErrStanza) {
		t.Errorf("IdleOf(nil) = %v", err)
	}
}

func TestVCard(t *testing.T) {
	for _, c := range []struct {
		user, pic, xml string
	}{
		{"alice", "https://pics.example.org/a.png",
			`<vCard xmlns="vcard-temp"><NICKNAME>alice</NICKNAME><PHOTO><EXTVAL>https://pics.example.org/a.png</EXTVAL></PHOTO></vCard>`},
		{"alice", "", `<vCard xmlns="vcard-temp"><NICKNAME>alice</NICKNAME></vCard>`},
		{"alice", "data:image/png;base64,iVBORw0K",
			`<vCard xmlns="vcard-temp"><NICKNAME>alice</NICKNAME><PHOTO><TYPE>image/png</TYPE><BINVAL>iVBORw0K</BINVAL></PHOTO></vCard>`},
		{"alice", "data:image/png;base64,not base64!", // not base64: kept as a URL
			`<vCard xmlns="vcard-temp"><NICKNAME>alice</NICKNAME><PHOTO><EXTVAL>data:image/png;base64,not base64!</EXTVAL></PHOTO></vCard>`},
	} {
		b, err := xml.Marshal(VCardFor(c.user, c.pic))
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != c.xml {
			t.Errorf("VCardFor(%q, %q)\n got %s\nwant %s", c.user, c.pic, b, c.xml)
		}
	}

	for _, c := range []struct {
		name, xml, want string
		bad             bool
	}{
		{"extval", `<vCard xmlns="vcard-temp"><PHOTO><EXTVAL> https://x/y.png </EXTVAL></PHOTO></vCard>`, "https://x/y.png", false},
		{"binval, wrapped", `<vCard xmlns="vcard-temp"><PHOTO><TYPE>image/jpeg</TYPE><BINVAL>iVBO
Rw0K</BINVAL></PHOTO></vCard>`, "data:image/jpeg;base64,iVBORw0K", false},
		{"binval without type", `<vCard xmlns="vcard-temp"><PHOTO><BINVAL>iVBORw0K</BINVAL></PHOTO></vCard>`, "data:image/png;base64,iVBORw0K", false},
		{"garbage type", `<vCard xmlns="vcard-temp"><PHOTO><TYPE>;;</TYPE><BINVAL>iVBORw0K</BINVAL></PHOTO></vCard>`, "data:image/png;base64,iVBORw0K", false},
		{"no photo", `<vCard xmlns="vcard-temp"><FN>Bob</FN></vCard>`, "", false},
		{"empty photo", `<vCard xmlns="vcard-temp"><PHOTO/></vCard>`, "", false},
		{"bad base64", `<vCard xmlns="vcard-temp"><PHOTO><BINVAL>%%%</BINVAL></PHOTO></vCard>`, "", true},
		{"too big", `<vCard xmlns="vcard-temp"><PHOTO><BINVAL>` + strings.Repeat("AAAA", MaxPictureBytes/4+1) + `</BINVAL></PHOTO></vCard>`, "", true},
	} {
		var v VCard
		if err := xml.Unmarshal([]byte(c.xml), &v); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got, err := PictureOf(&v)
		if (err != nil) != c.bad || got != c.want {
			t.Errorf("%s: PictureOf = %q, %v", c.name, got, err)
		}
		if err != nil && !errors.Is(err, ErrStanza) {
			t.Errorf("%s: error %v does not wrap ErrStanza", c.name, err)
		}
	}
	if got, err := PictureOf(nil); got != "" || err != nil {
		t.Errorf("PictureOf(nil) = %q, %v", got, err)
	}
}

// FuzzPresence: any bytes decoded as a presence never make FromPresence
// panic, and what it returns is well formed; the same bytes decoded as a
// vCard never make PictureOf panic.
func FuzzPresence(f *testing.F) {
	for _, c := range fromPresenceCases {
		f.Add([]byte(c.xml))
	}
	for _, c := range toPresenceCases {
		f.Add([]byte(c.xml))
	}
	f.Add([]byte(`<vCard xmlns="vcard-temp"><PHOTO><TYPE>image/png</TYPE><BINVAL>iVBORw0K</BINVAL></PHOTO></vCard>`))
	f.Add([]byte(presHead + ` type="error"><error type="cancel" by="☃@x"><gone xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></presence>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var v VCard
		if xml.Unmarshal(b, &v) == nil {
			pic, err := PictureOf(&v)
			if err != nil && pic != "" || len(pic) > MaxPictureBytes || !utf8.ValidString(pic) {
				t.Fatalf("PictureOf: %q, %v", pic, err)
			}
		}
		var s Presence
		if err := xml.Unmarshal(b, &s); err != nil {
			return
		}
		p, err := FromPresence(&s, now)
		if err != nil {
			if p != nil {
				t.Fatalf("a presence with an error: %+v, %v", p, err)
			}
			return
		}
		if _, ok := presenceTypes[s.Type]; !ok || p.T != presenceTypes[s.Type] {
			t.Fatalf("type %q mapped to %q", s.Type, p.T)
		}
		if len(p.Status) > MaxStatusBytes || !utf8.ValidString(p.Status) || len(p.ID) > MaxIDBytes || p.At < 0 {
			t.Fatalf("bad presence %+v", p)
		}
		if p.Photo != "" && photoHash(p.Photo) != p.Photo {
			t.Fatalf("bad photo hash %q", p.Photo)
		}
		if p.T != bridge.PresenceAvailable && p.T != bridge.PresenceUnavailable && (p.Status != "" || p.At != 0 || p.Photo != "") {
			t.Fatalf("a %s with availability fields: %+v", p.T, p)
		}
		// What comes in can go out again.
		if _, err := xml.Marshal(ToPresence(p, alice, bob)); err != nil {
			t.Fatal(err)
		}
	})
}

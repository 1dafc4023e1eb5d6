package mapping

import (
	"encoding/xml"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/lempgw/lempgw/bridge"
)

var (
	alice = jid.MustParse("alice@lemp.example.org/lemp")
	bob   = jid.MustParse("bob@example.org")
	now   = time.UnixMilli(1763850000000) // 2025-11-22T22:20:00Z
)

const (
	head    = `<message id="m1" from="alice@lemp.example.org/lemp" to="bob@example.org" type="chat">`
	origin  = `<origin-id xmlns="urn:xmpp:sid:0" id="m1"></origin-id>`
	request = `<request xmlns="urn:xmpp:receipts"></request><markable xmlns="urn:xmpp:chat-markers:0"></markable>`
)

var toStanzaCases = []struct {
	name   string
	m      bridge.Message
	queued bool
	xml    string
}{
	{"text", bridge.Message{ID: "m1", T: "t", C: "Hello <Bob> & co", PC: "1"}, false,
		head + `<body>Hello &lt;Bob&gt; &amp; co</body>` + origin + request + `</message>`},
	{"text, flags absent mean on", bridge.Message{ID: "m1", T: "t", C: "hi"}, false,
		head + `<body>hi</body>` + origin + request + `</message>`},
	{"text, no receipt wanted, not to be stored", bridge.Message{ID: "m1", T: "t", C: "hi", P: "0", PC: "0"}, false,
		head + `<body>hi</body>` + origin + `<no-store xmlns="urn:xmpp:hints"></no-store></message>`},
	{"photo", bridge.Message{ID: "m1", T: "p", C: "https://up.example.org/a/cat.jpg", PC: "0"}, false,
		head + `<body>https://up.example.org/a/cat.jpg</body>` + origin +
			`<x xmlns="jabber:x:oob"><url>https://up.example.org/a/cat.jpg</url></x></message>`},
	{"video", bridge.Message{ID: "m1", T: "v", C: "https://up.example.org/clip.mp4", PC: "0"}, false,
		head + `<body>https://up.example.org/clip.mp4</body>` + origin +
			`<x xmlns="jabber:x:oob"><url>https://up.example.org/clip.mp4</url></x></message>`},
	{"audio", bridge.Message{ID: "m1", T: "a", C: "https://up.example.org/voice.opus?x=1&y=2", PC: "0"}, false,
		head + `<body>https://up.example.org/voice.opus?x=1&amp;y=2</body>` + origin +
			`<x xmlns="jabber:x:oob"><url>https://up.example.org/voice.opus?x=1&amp;y=2</url></x></message>`},
	{"location", bridge.Message{ID: "m1", T: "l", C: "52.5200, -13.405", PC: "0"}, false,
		head + `<body>geo:52.5200,-13.405</body>` + origin +
			`<geoloc xmlns="http://jabber.org/protocol/geoloc"><lat>52.5200</lat><lon>-13.405</lon></geoloc></message>`},
	{"bad location is sent as text", bridge.Message{ID: "m1", T: "l", C: "somewhere", PC: "0"}, false,
		head + `<body>somewhere</body>` + origin + `</message>`},
	{"queued: delay with the original time", bridge.Message{ID: "m1", T: "t", C: "late", ST: 1763850000123, PC: "0"}, true,
		head + `<body>late</body>` + origin +
			`<delay xmlns="urn:xmpp:delay" from="lemp.example.org" stamp="2025-11-22T22:20:00.123Z"></delay></message>`},
	{"not queued: no delay", bridge.Message{ID: "m1", T: "t", C: "now", ST: 1763850000123, PC: "0"}, false,
		head + `<body>now</body>` + origin + `</message>`},
	{"dm", bridge.Message{ID: "r7", DM: &bridge.Ref{ID: "x1"}}, false,
		`<message id="r7" from="alice@lemp.example.org/lemp" to="bob@example.org" type="chat">` +
			`<origin-id xmlns="urn:xmpp:sid:0" id="r7"></origin-id><store xmlns="urn:xmpp:hints"></store>` +
			`<received xmlns="urn:xmpp:receipts" id="x1"></received></message>`},
	{"dm with the message's own id gets an id of its own", bridge.Message{ID: "x1", DM: &bridge.Ref{ID: "x1"}}, false,
		`<message id="dm-x1" from="alice@lemp.example.org/lemp" to="bob@example.org" type="chat">` +
			`<origin-id xmlns="urn:xmpp:sid:0" id="dm-x1"></origin-id><store xmlns="urn:xmpp:hints"></store>` +
			`<received xmlns="urn:xmpp:receipts" id="x1"></received></message>`},
	{"nm", bridge.Message{NM: &bridge.Ref{ID: "x1"}}, false,
		`<message id="nm-x1" from="alice@lemp.example.org/lemp" to="bob@example.org" type="chat">` +
			`<origin-id xmlns="urn:xmpp:sid:0" id="nm-x1"></origin-id><store xmlns="urn:xmpp:hints"></store>` +
			`<displayed xmlns="urn:xmpp:chat-markers:0" id="x1"></displayed></message>`},
}

func TestToStanza(t *testing.T) {
	for _, c := range toStanzaCases {
		t.Run(c.name, func(t *testing.T) {
			s := ToStanza(&c.m, alice, bob, c.queued)
			b, err := xml.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != c.xml {
				t.Errorf("ToStanza:\n got %s\nwant %s", b, c.xml)
			}
		})
	}
}

// inbound stanzas as Prosody and ejabberd deliver them to the component.
const (
	in     = `<message xmlns="jabber:component:accept" from="bob@example.org/phone" to="alice@lemp.example.org" type="chat" id="b1" xml:lang="en">`
	chatSt = `<active xmlns="http://jabber.org/protocol/chatstates"/>`
)

var fromStanzaCases = []struct {
	name string
	xml  string
	kind Kind
	want *bridge.Message
}{
	{"Conversations text with chat state, stanza-id, origin-id",
		in + `<body>Hello 👋</body>` + chatSt +
			`<request xmlns="urn:xmpp:receipts"/><markable xmlns="urn:xmpp:chat-markers:0"/>` +
			`<origin-id xmlns="urn:xmpp:sid:0" id="b1"/><stanza-id xmlns="urn:xmpp:sid:0" by="bob@example.org" id="Zx8"/></message>`,
		KindChat, &bridge.Message{ID: "b1", T: "t", C: "Hello 👋", ST: 1763850000000, P: "1", PC: "1"}},
	{"plain text, no receipt requested",
		in + `<body>hi</body></message>`,
		KindChat, &bridge.Message{ID: "b1", T: "t", C: "hi", ST: 1763850000000, P: "1", PC: "0"}},
	{"markable alone asks for receipts too",
		in + `<body>hi</body><markable xmlns="urn:xmpp:chat-markers:0"/></message>`,
		KindChat, &bridge.Message{ID: "b1", T: "t", C: "hi", ST: 1763850000000, P: "1", PC: "1"}},
	{"no-store",
		in + `<body>secret</body><no-store xmlns="urn:xmpp:hints"/><no-permanent-store xmlns="urn:xmpp:hints"/></message>`,
		KindChat, &bridge.Message{ID: "b1", T: "t", C: "secret", ST: 1763850000000, P: "0", PC: "0"}},
	{"HTTP upload image",
		in + `<body>https://up.example.org/u/AbC/IMG_0001.JPG</body><x xmlns="jabber:x:oob"><url>https://up.example.org/u/AbC/IMG_0001.JPG</url></x>` +
			`<request xmlns="urn:xmpp:receipts"/></message>`,
		KindChat, &bridge.Message{ID: "b1", T: "p", C: "https://up.example.org/u/AbC/IMG_0001.JPG", ST: 1763850000000, P: "1", PC: "1"}},
	{"video, caption dropped",
		in + `<body>look</body><x xmlns="jabber:x:oob"><url> https://up.example.org/v.webm?token=1#t </url><desc>my video</desc></x></message>`,
		KindChat, &bridge.Message{ID: "b1", T: "v", C: "https://up.example.org/v.webm?token=1#t", ST: 1763850000000, P: "1", PC: "0"}},
	{"voice message",
		in + `<body>https://up.example.org/voice.m4a</body><x xmlns="jabber:x:oob"><url>https://up.example.org/voice.m4a</url></x></message>`,
		KindChat, &bridge.Message{ID: "b1", T: "a", C: "https://up.example.org/voice.m4a", ST: 1763850000000, P: "1", PC: "0"}},
	{"OMEMO file (aesgcm URL)",
		in + `<body>aesgcm://up.example.org/x/song.ogg#00aa</body><x xmlns="jabber:x:oob"><url>aesgcm://up.example.org/x/song.ogg#00aa</url></x></message>`,
		KindChat, &bridge.Message{ID: "b1", T: "a", C: "aesgcm://up.example.org/x/song.ogg#00aa", ST: 1763850000000, P: "1", PC: "0"}},
	{"data: URL media type",
		in + `<x xmlns="jabber:x:oob"><url>data:video/mp4;base64,AAAA</url></x></message>`,
		KindChat, &bridge.Message{ID: "b1", T: "v", C: "data:video/mp4;base64,AAAA", ST: 1763850000000, P: "1", PC: "0"}},
	{"unknown file type is a photo",
		in + `<body>https://up.example.org/report.pdf</body><x xmlns="jabber:x:oob"><url>https://up.example.org/report.pdf</url></x></message>`,
		KindChat, &bridge.Message{ID: "b1", T: "p", C: "https://up.example.org/report.pdf", ST: 1763850000000, P: "1", PC: "0"}},
	{"geoloc with geo: body",
		in + `<body>geo:48.2082,16.3738</body><geoloc xmlns="http://jabber.org/protocol/geoloc"><lat>48.2082</lat><lon>16.3738</lon><accuracy>20</accuracy></geoloc></message>`,
		KindChat, &bridge.Message{ID: "b1", T: "l", C: "48.2082,16.3738", ST: 1763850000000, P: "1", PC: "0"}},
	{"geo: URI body alone, with altitude and uncertainty",
		in + `<body>GEO:-33.8688,151.2093,12;u=35</body></message>`,
		KindChat, &bridge.Message{ID: "b1", T: "l", C: "-33.8688,151.2093", ST: 1763850000000, P: "1", PC: "0"}},
	{"a body that only looks like geo: is text",
		in + `<body>geo: somewhere nice</body></message>`,
		KindChat, &bridge.Message{ID: "b1", T: "t", C: "geo: somewhere nice", ST: 1763850000000, P: "1", PC: "0"}},
	{"offline delivery from Prosody",
		in + `<body>sent while you were away</body><delay xmlns="urn:xmpp:delay" from="example.org" stamp="2025-11-22T21:00:00Z"/></message>`,
		KindChat, &bridge.Message{ID: "b1", T: "t", C: "sent while you were away", ST: 1763845200000, P: "1", PC: "0"}},
	{"delay stamp with fraction and offset (ejabberd)",
		in + `<body>x</body><delay xmlns="urn:xmpp:delay" from="example.org" stamp="2025-11-22T22:00:00.123456+01:00">Offline storage</delay></message>`,
		KindChat, &bridge.Message{ID: "b1", T: "t", C: "x", ST: 1763845200123, P: "1", PC: "0"}},
	{"OMEMO message: only the fallback body can be bridged",
		in + `<body>I sent you an OMEMO encrypted message but your client doesn’t seem to support that.</body>` +
			`<encrypted xmlns="eu.siacs.conversations.axolotl"><header sid="1"><key rid="2">AAA=</key><iv>BBB=</iv></header><payload>CCC=</payload></encrypted>` +
			`<encryption xmlns="urn:xmpp:eme:0" namespace="eu.siacs.conversations.axolotl" name="OMEMO"/>` +
			`<store xmlns="urn:xmpp:hints"/></message>`,
		KindChat, &bridge.Message{ID: "b1", T: "t", C: "I sent you an OMEMO encrypted message but your client doesn’t seem to support that.", ST: 1763850000000, P: "1", PC: "0"}},
	{"XHTML-IM and several languages: the plain default body",
		in + `<body xml:lang="de">Hallo</body><body>Hello</body><html xmlns="http://jabber.org/protocol/xhtml-im"><body xmlns="http://www.w3.org/1999/xhtml"><p><b>Hello</b></p></body></html></message>`,
		KindChat, &bridge.Message{ID: "b1", T: "t", C: "Hello", ST: 1763850000000, P: "1", PC: "0"}},
	{"no id: origin-id",
		`<message from="bob@example.org/phone" to="alice@lemp.example.org" type="chat"><body>x</body><origin-id xmlns="urn:xmpp:sid:0" id="o9"/></message>`,
		KindChat, &bridge.Message{ID: "o9", T: "t", C: "x", ST: 1763850000000, P: "1", PC: "0"}},
	{"no id at all: left empty",
		`<message from="bob@example.org/phone" to="alice@lemp.example.org"><body>x</body></message>`,
		KindChat, &bridge.Message{T: "t", C: "x", ST: 1763850000000, P: "1", PC: "0"}},
	{"XEP-0184 receipt",
		in + `<received xmlns="urn:xmpp:receipts" id="m1"/></message>`,
		KindDelivered, &bridge.Message{ID: "b1", ST: 1763850000000, DM: &bridge.Ref{ID: "m1"}}},
	{"XEP-0184 receipt of the old kind (no id: the stanza's id)",
		`<message from="bob@example.org/phone" to="alice@lemp.example.org" id="m1"><received xmlns="urn:xmpp:receipts"/></message>`,
		KindDelivered, &bridge.Message{ID: "m1", ST: 1763850000000, DM: &bridge.Ref{ID: "m1"}}},
	{"chat marker received",
		in + `<received xmlns="urn:xmpp:chat-markers:0" id="m1"/><store xmlns="urn:xmpp:hints"/></message>`,
		KindDelivered, &bridge.Message{ID: "b1", ST: 1763850000000, DM: &bridge.Ref{ID: "m1"}}},
	{"chat marker displayed, delayed",
		in + `<displayed xmlns="urn:xmpp:chat-markers:0" id="m1"/><delay xmlns="urn:xmpp:delay" stamp="2025-11-22T21:00:00Z"/></message>`,
		KindDisplayed, &bridge.Message{ID: "b1", ST: 1763845200000, NM: &bridge.Ref{ID: "m1"}}},
	{"chat marker acknowledged",
		in + `<acknowledged xmlns="urn:xmpp:chat-markers:0" id="m1"/></message>`,
		KindDisplayed, &bridge.Message{ID: "b1", ST: 1763850000000, NM: &bridge.Ref{ID: "m1"}}},
	{"chat state alone", in + chatSt + `</message>`, KindIgnorable, nil},
	{"composing with receipt request but no body",
		in + `<composing xmlns="http://jabber.org/protocol/chatstates"/><request xmlns="urn:xmpp:receipts"/></message>`, KindIgnorable, nil},
	{"empty body", in + `<body></body>` + chatSt + `</message>`, KindIgnorable, nil},
	{"groupchat (not mapped yet)",
		`<message from="room@conference.example.org/bob" to="alice@lemp.example.org/lemp" type="groupchat" id="g1"><body>hi all</body></message>`,
		KindIgnorable, nil},
	{"MUC invitation", in + `<x xmlns="jabber:x:conference" jid="room@conference.example.org"/></message>`, KindIgnorable, nil},
	{"error bounce from the server",
		`<message from="nobody@example.org" to="alice@lemp.example.org/lemp" type="error" id="m1"><body>hi</body>` +
			`<error type="cancel" by="example.org"><service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/>` +
			`<text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas" xml:lang="en">User session not found</text></error></message>`,
		KindError, &bridge.Message{ID: "m1", ST: 1763850000000, E: &bridge.Error{Code: 503, Desc: "User session not found"}}},
	{"error bounce to an unknown domain",
		`<message from="bob@nowhere.example" to="alice@lemp.example.org/lemp" type="error" id="m1">` +
			`<error type="cancel"><remote-server-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></message>`,
		KindError, &bridge.Message{ID: "m1", ST: 1763850000000, E: &bridge.Error{Code: 404, Desc: "remote-server-not-found"}}},
	{"error with a by the JID parser refuses and an application condition first",
		`<message from="bob@example.org" to="alice@lemp.example.org" type="error" id="m1">` +
			`<error type="wait" by="bob@example.org/"><too-many xmlns="urn:example:app"/>` +
			`<resource-constraint xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/>` +
			`<text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas" xml:lang="fr">trop</text>` +
			`<text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">too many</text></error></message>`,
		KindError, &bridge.Message{ID: "m1", ST: 1763850000000, E: &bridge.Error{Code: 429, Desc: "too many"}}},
	{"error with an unknown condition",
		`<message type="error" id="m1"><error type="cancel"><made-up xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></message>`,
		KindError, &bridge.Message{ID: "m1", ST: 1763850000000, E: &bridge.Error{Code: 500, Desc: "made-up"}}},
	{"error without error element",
		`<message from="bob@example.org" to="alice@lemp.example.org" type="error" id="m1"/>`,
		KindError, &bridge.Message{ID: "m1", ST: 1763850000000, E: &bridge.Error{Code: 503, Desc: "the message was not delivered"}}},
}

func TestFromStanza(t *testing.T) {
	for _, c := range fromStanzaCases {
		t.Run(c.name, func(t *testing.T) {
			var s Message
			if err := xml.Unmarshal([]byte(c.xml), &s); err != nil {
				t.Fatal(err)
			}
			m, kind, err := FromStanza(&s, now)
			if err != nil {
				t.Fatal(err)
			}
			if kind != c.kind {
				t.Errorf("kind %v, want %v", kind, c.kind)
			}
			if !reflect.DeepEqual(m, c.want) {
				t.Errorf("FromStanza:\n got %s\nwant %s", jsonOf(m), jsonOf(c.want))
			}
		})
	}
}

func jsonOf(m *bridge.Message) string {
	if m == nil {
		return "nil"
	}
	return string(bridge.Frame{M: m}.Encode())
}

var fromStanzaErrors = []struct{ name, xml string }{
	{"latitude out of range", in + `<geoloc xmlns="http://jabber.org/protocol/geoloc"><lat>91</lat><lon>0</lon></geoloc></message>`},
	{"latitude not a number", in + `<body>x</body><geoloc xmlns="http://jabber.org/protocol/geoloc"><lat>north</lat><lon>0</lon></geoloc></message>`},
	{"latitude NaN", in + `<geoloc xmlns="http://jabber.org/protocol/geoloc"><lat>NaN</lat><lon>0</lon></geoloc></message>`},
	{"latitude hex float", in + `<geoloc xmlns="http://jabber.org/protocol/geoloc"><lat>0x1p-2</lat><lon>0</lon></geoloc></message>`},
	{"latitude exponent", in + `<geoloc xmlns="http://jabber.org/protocol/geoloc"><lat>1e1</lat><lon>0</lon></geoloc></message>`},
	{"longitude missing", in + `<geoloc xmlns="http://jabber.org/protocol/geoloc"><lat>10</lat></geoloc></message>`},
	{"longitude out of range", in + `<geoloc xmlns="http://jabber.org/protocol/geoloc"><lat>10</lat><lon>-180.5</lon></geoloc></message>`},
	{"garbage stamp", in + `<body>x</body><delay xmlns="urn:xmpp:delay" stamp="yesterday"/></message>`},
	{"stamp without zone", in + `<body>x</body><delay xmlns="urn:xmpp:delay" stamp="2025-11-22T21:00:00"/></message>`},
	{"empty stamp", in + `<body>x</body><delay xmlns="urn:xmpp:delay"/></message>`},
	{"stamp before 1970", in + `<body>x</body><delay xmlns="urn:xmpp:delay" stamp="1969-12-31T23:59:59Z"/></message>`},
	{"body too large", in + `<body>` + strings.Repeat("x", MaxBodyBytes+1) + `</body></message>`},
	{"bodies too large together", in + `<body>` + strings.Repeat("x", MaxBodyBytes/2+1) + `</body><body xml:lang="de">` + strings.Repeat("x", MaxBodyBytes/2) + `</body></message>`},
	{"id too long", `<message id="` + strings.Repeat("i", MaxIDBytes+1) + `"><body>x</body></message>`},
	{"displayed without id", in + `<displayed xmlns="urn:xmpp:chat-markers:0"/></message>`},
	{"receipt without any id", `<message><received xmlns="urn:xmpp:receipts"/></message>`},
	{"receipt id too long", in + `<received xmlns="urn:xmpp:receipts" id="` + strings.Repeat("i", MaxIDBytes+1) + `"/></message>`},
}

func TestFromStanzaErrors(t *testing.T) {
	for _, c := range fromStanzaErrors {
		t.Run(c.name, func(t *testing.T) {
			var s Message
			if err := xml.Unmarshal([]byte(c.xml), &s); err != nil {
				t.Fatal(err)
			}
			m, _, err := FromStanza(&s, now)
			if err == nil {
				t.Fatalf("FromStanza = %s, want an error", jsonOf(m))
			}
			if !errors.Is(err, ErrStanza) {
				t.Errorf("%v does not wrap ErrStanza", err)
			}
		})
	}
	// Built by hand rather than decoded: text that is not UTF-8.
	for _, s := range []*Message{
		nil,
		{Body: []Body{{Text: "\xff"}}},
		{ID: "\xff", Body: []Body{{Text: "x"}}},
		{OOB: &OOB{URL: "https://x/\xff.jpg"}},
		{OOB: &OOB{URL: "https://x/" + strings.Repeat("a", MaxBodyBytes)}},
	} {
		if m, _, err := FromStanza(s, now); err == nil {
			t.Errorf("FromStanza(%+v) = %s, want an error", s, jsonOf(m))
		}
	}
}

func TestErrorReply(t *testing.T) {
	var s Message
	if err := xml.Unmarshal([]byte(in+`<body>x</body></message>`), &s); err != nil {
		t.Fatal(err)
	}
	r := ErrorReply(&s, StanzaError(bridge.Errorf(404, "no user alice")))
	b, err := xml.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `<message id="b1" from="alice@lemp.example.org" to="bob@example.org/phone" type="error">` +
		`<error type="cancel"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"></item-not-found>` +
		`<text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">no user alice</text></error></message>`
	if string(b) != want {
		t.Errorf("ErrorReply:\n got %s\nwant %s", b, want)
	}
}

func TestMediaType(t *testing.T) {
	for u, want := range map[string]string{
		"https://x.example/a.png":        "p",
		"https://x.example/a.HEIC":       "p",
		"https://x.example/a.gif?w=1":    "p",
		"https://x.example/a.mov":        "v",
		"https://x.example/a.mkv#frag":   "v",
		"https://x.example/a.mp3":        "a",
		"https://x.example/a.wav":        "a",
		"https://x.example/a.aac":        "a",
		"https://x.example/a.opus":       "a",
		"https://x.example/a.txt":        "p",
		"https://x.example/":             "p",
		"https://x.example/dir.mp4/file": "p",
		"data:audio/ogg;base64,AA":       "a",
		"DATA:image/png,AA":              "p",
		"data:text/plain,hello":          "p",
		"not a url at all .webm":         "v",
		"http://[bad/a.mp4?x":            "v",
		"https://x.example/a%20b.ogg":    "a",
		"https://x.example/a.ogg/":       "p",
	} {
		if got := MediaType(u); got != want {
			t.Errorf("MediaType(%q) = %q, want %q", u, got, want)
		}
	}
}

func TestErrorElement(t *testing.T) {
	raw := `<message type="error" id="m1"><error type="cancel" by="☃@example.org"><gone xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">xmpp:bob@example.net</gone>` +
		`<text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas" xml:lang="en">moved</text></error></message>`
	var m Message
	if err := xml.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatal(err)
	}
	if m.Error == nil || m.Error.Type != "cancel" || m.Error.Condition != "gone" || m.Error.Text["en"] != "moved" || m.Error.By.String() != "" {
		t.Fatalf("decoded %+v", m.Error)
	}
	if m.XMLName.Local != "message" || m.ID != "m1" {
		t.Errorf("decoded message %+v", m)
	}
	b, err := xml.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	// The by is dropped: it is no JID mellium can hold.
	want := `<message id="m1" type="error"><error type="cancel"><gone xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"></gone>` +
		`<text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas" xml:lang="en">moved</text></error></message>`
	if string(b) != want {
		t.Errorf("encoded\n got %s\nwant %s", b, want)
	}
	// A by that parses is kept.
	raw = `<message type="error"><error type="wait" by="example.org"><remote-server-timeout xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></message>`
	if err := xml.Unmarshal([]byte(raw), &m); err != nil || m.Error.By.String() != "example.org" || m.Error.Condition != stanza.RemoteServerTimeout {
		t.Errorf("decoded %+v, %v", m.Error, err)
	}
}

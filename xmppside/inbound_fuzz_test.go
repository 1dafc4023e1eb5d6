package xmppside

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"testing"
	"time"

	"mellium.im/xmlstream"

	"github.com/lempgw/lempgw/bridge"
	"github.com/lempgw/lempgw/state"
)

// FuzzInbound feeds arbitrary bytes to the component's stanza handlers, the
// main link's and the MUC service's, as mellium would: the start element
// and a reader positioned after it. The handlers must never panic nor
// return an error (that would end the stream), and the work they hand to
// the workers (the core, on the embedded store) must not panic either. The
// links are down: whatever the work would send is dropped when its short
// context ends.
func FuzzInbound(f *testing.F) {
	for _, s := range []string{
		`<message from="bob@example.org/res" to="alice@lemp.example.org" type="chat" id="x1"><body>hi</body><request xmlns="urn:xmpp:receipts"/></message>`,
		`<message from="bob@example.org/res" to="alice@lemp.example.org" id="r1"><received xmlns="urn:xmpp:receipts" id="m1"/></message>`,
		`<message from="bob@example.org/res" to="alice@lemp.example.org" type="error" id="m1"><error type="cancel"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></message>`,
		`<message from="team@conference.example.org/carol" to="alice@lemp.example.org/lemp" type="groupchat" id="g1"><body>room</body></message>`,
		`<presence from="bob@example.org/res" to="alice@lemp.example.org" type="subscribe"/>`,
		`<presence from="bob@example.org/res" to="alice@lemp.example.org"><show>away</show><status>out</status></presence>`,
		`<presence from="team@conference.example.org/carol" to="alice@lemp.example.org/lemp"><x xmlns="http://jabber.org/protocol/muc#user"><item jid="carol@example.org/x" role="participant"/></x></presence>`,
		`<iq from="bob@example.org/res" to="alice@lemp.example.org" type="get" id="q1"><vCard xmlns="vcard-temp"/></iq>`,
		`<iq from="bob@example.org/res" to="lemp.example.org" type="get" id="q2"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`,
		`<iq from="example.org" to="lemp.example.org" type="result" id="lgw-b-1"/>`,
		`<iq from="bob@example.org/res" to="lemp.example.org" type="result" id="lgw-q-7"><query xmlns="jabber:iq:last" seconds="5"/></iq>`,
		`<presence from="bob@example.org/res" to="team@rooms.example.org/bob"><x xmlns="http://jabber.org/protocol/muc"><history maxstanzas="5"/></x></presence>`,
		`<message from="bob@example.org/res" to="team@rooms.example.org" type="groupchat" id="x2"><body>to the room</body></message>`,
		`<iq from="bob@example.org/res" to="team@rooms.example.org" type="set" id="a1"><query xmlns="http://jabber.org/protocol/muc#admin"><item nick="alice" role="none"/></query></iq>`,
		`<message from="\u2603@@" to="alice@lemp.example.org"><body>snowman</body></message>`,
		`<iq type="get" id="z"><unknown xmlns="x:y"><deep><deeper/></deep></unknown></iq>`,
		`<stream:features/>`,
	} {
		f.Add([]byte(s))
	}
	st := state.NewMemory()
	core, err := bridge.New(bridge.Config{Store: st, Local: bridge.NoSessions{}})
	if err != nil {
		f.Fatal(err)
	}
	c, err := New(Config{
		Link: LinkConfig{Address: "127.0.0.1:1", Domain: "lemp.example.org", Secret: "s", ServerDomain: "example.org"},
		MUC:  LinkConfig{Domain: "rooms.example.org"},
		Core: core,
	})
	if err != nil {
		f.Fatal(err)
	}
	core.SetRemote(c)
	core.SetRooms(c)
	ctx := context.Background()
	for _, u := range []string{"alice", "carol"} {
		if err := st.CreateUser(ctx, state.User{Name: u}); err != nil {
			f.Fatal(err)
		}
	}
	if e := core.CreateGroup(ctx, "alice", bridge.GroupSpec{ID: "team", Members: []string{"carol", "bob@example.org"}}); e != nil {
		f.Fatal(e)
	}
	if e := core.CreateGroup(ctx, "alice", bridge.GroupSpec{ID: "team@conference.example.org", Members: []string{"carol"}}); e != nil {
		f.Fatal(e)
	}
	c.srooms.mu.Lock()
	c.srooms.room("team@conference.example.org").members["alice"] = true
	c.srooms.mu.Unlock()

	f.Fuzz(func(t *testing.T, data []byte) {
		for _, handle := range []func(xmlstream.TokenReadEncoder, *xml.StartElement) error{
			handler{c}.HandleXMPP, roomHandler{c}.HandleXMPP,
		} {
			d := xml.NewDecoder(bytes.NewReader(data))
			var start *xml.StartElement
			for start == nil {
				tok, err := d.Token()
				if err != nil {
					return
				}
				if se, ok := tok.(xml.StartElement); ok {
					start = &se
				}
			}
			if err := handle(xmlStream{d, xml.NewEncoder(io.Discard)}, start); err != nil {
				t.Fatalf("handler returned %v: it would end the stream", err)
			}
			// Run the work handed to the workers, here, unrecovered.
			for _, w := range c.workers {
				for done := false; !done; {
					select {
					case work := <-w:
						wctx, cancel := context.WithTimeout(ctx, time.Millisecond)
						work(wctx)
						cancel()
					default:
						done = true
					}
				}
			}
		}
	})
}

// xmlStream is what mellium hands a handler: the stanza's tokens and an
// encoder for answers.
type xmlStream struct {
	xml.TokenReader
	*xml.Encoder
}

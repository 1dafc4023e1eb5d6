package muc

import (
	"bytes"
	"context"
	"encoding/xml"
	"testing"
)

var fuzzSeeds = []string{
	`<presence from='juliet@capulet.lit/balcony' to='g1@rooms.example.org/Juliet' id='j'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='1' maxchars='900' seconds='60' since='2025-11-23T09:00:00Z'/></x></presence>`,
	`<presence from='juliet@capulet.lit/balcony' to='g1@rooms.example.org/Jules'><show>away</show><status>x</status></presence>`,
	`<presence from='juliet@capulet.lit/balcony' to='g1@rooms.example.org/Juliet' type='unavailable'/>`,
	`<presence from='romeo@montague.lit/orchard' to='g1@rooms.example.org/Romeo' type='error'><error type='cancel'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>`,
	`<message xmlns='jabber:component:accept' from='juliet@capulet.lit/balcony' to='g1@rooms.example.org' type='groupchat' id='m'><body>hi</body><origin-id xmlns='urn:xmpp:sid:0' id='o'/><r xmlns='urn:r'><body/></r></message>`,
	`<message from='romeo@montague.lit/orchard' to='g1@rooms.example.org' type='groupchat'><subject>New</subject></message>`,
	`<message from='romeo@montague.lit/orchard' to='g1@rooms.example.org'><x xmlns='http://jabber.org/protocol/muc#user'><invite to='nurse@capulet.lit'/></x></message>`,
	`<message from='juliet@capulet.lit/balcony' to='g1@rooms.example.org/alice' type='chat'><body>psst</body></message>`,
	`<message from='juliet@capulet.lit/balcony' to='g1@rooms.example.org' type='groupchat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`,
	`<iq from='juliet@capulet.lit/balcony' to='g1@rooms.example.org' type='get' id='q'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`,
	`<iq from='juliet@capulet.lit/balcony' to='rooms.example.org' type='get' id='q'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>`,
	`<iq from='juliet@capulet.lit/balcony' to='g1@rooms.example.org/Juliet' type='get' id='q'><ping xmlns='urn:xmpp:ping'/></iq>`,
	`<iq from='juliet@capulet.lit/balcony' to='g1@rooms.example.org' type='get' id='q'><vCard xmlns='vcard-temp'/></iq>`,
	`<iq from='romeo@montague.lit/orchard' to='g1@rooms.example.org' type='set' id='q'><query xmlns='http://jabber.org/protocol/muc#admin'><item nick='Juliet' role='none'><reason>r</reason></item></query></iq>`,
	`<iq from='romeo@montague.lit/orchard' to='g1@rooms.example.org' type='get' id='q'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member'/></query></iq>`,
	`<iq from='romeo@montague.lit/orchard' to='g1@rooms.example.org' type='set' id='q'><query xmlns='http://jabber.org/protocol/muc#owner'><destroy/></query></iq>`,
	`<iq from='romeo@montague.lit/orchard' to='g1@rooms.example.org' type='set' id='q'><a/><b/></iq>`,
	`<iq from='x' type='get' id='q'><query xmlns='jabber:iq:version'/></iq>`,
}

// FuzzHandle: Decode and Handle never panic on any bytes; every IQ get or
// set gets exactly one answer (from Handle, or BadRequest when Decode
// refuses it); every output marshals, reads back, and has from and to.
func FuzzHandle(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d := xml.NewDecoder(bytes.NewReader(b))
		var start xml.StartElement
		for {
			tok, err := d.Token()
			if err != nil {
				return
			}
			if se, ok := tok.(xml.StartElement); ok {
				start = se.Copy()
				break
			}
		}
		attr := func(n string) string {
			for _, a := range start.Attr {
				if a.Name.Space == "" && a.Name.Local == n {
					return a.Value
				}
			}
			return ""
		}
		request := start.Name.Local == "iq" && (attr("type") == "get" || attr("type") == "set")
		st, err := Decode(start, d)
		if err != nil {
			if request && attr("from") != "" && BadRequest(start) == nil {
				t.Fatalf("no answer to an undecodable IQ %s", attr("type"))
			}
			return
		}
		s, _ := newWorld(t)
		join(t, s, julietPC, "Juliet")
		join(t, s, romeoFull, "Romeo")
		out := s.Handle(context.Background(), st)
		iqs := 0
		for _, v := range out {
			if _, ok := v.(iqOut); ok {
				iqs++
			}
		}
		if request && iqs != 1 {
			t.Fatalf("%d answers to an IQ %s", iqs, st.Type)
		}
		if !request && iqs != 0 {
			t.Fatalf("%d IQs answering a %s", iqs, st.Name)
		}
		for _, n := range parse(t, out) {
			if n.attr("to") == "" || n.attr("from") == "" {
				t.Fatalf("output without an address: %s", n.String())
			}
			if n.attr("type") == "error" {
				if cond, typ := n.condition(); cond == "" || typ == "" {
					t.Fatalf("error without condition or type: %s", n.String())
				}
			}
		}
	})
}

func TestDecodeRefuses(t *testing.T) {
	deep := ""
	for range 40 {
		deep += "<a>"
	}
	for range 40 {
		deep += "</a>"
	}
	big := make([]byte, MaxStanzaBytes+10)
	for i := range big {
		big[i] = 'x'
	}
	for _, raw := range []string{
		`<stream from='a@b/c'/>`,
		`<message to='g1@rooms.example.org'><body>no from</body></message>`,
		`<message xmlns='urn:other' from='a@b/c'/>`,
		`<message from='a@b/c'>` + deep + `</message>`,
		`<message from='a@b/c'><body>` + string(big) + `</body></message>`,
		`<message from='a@b/c'><body>ends early`,
		`<message from='a@b/c' id='` + string(big[:300]) + `'/>`,
	} {
		if st, err := decodeString(raw); err == nil {
			t.Errorf("%.80s: decoded %+v", raw, st)
		}
	}
}

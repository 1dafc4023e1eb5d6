package main

import (
	"encoding/xml"
	"errors"
	"strings"
	"testing"
)

func xmlDecoder(s string) *xml.Decoder { return xml.NewDecoder(strings.NewReader(s)) }

// firstStart returns the first start element of d.
func firstStart(d *xml.Decoder) (xml.StartElement, bool) {
	for {
		tok, err := d.Token()
		if err != nil {
			return xml.StartElement{}, false
		}
		if s, ok := tok.(xml.StartElement); ok {
			return s, true
		}
	}
}

var stanzaSeeds = []string{
	`<message from="a@x/r" id="m1" type="chat"><body>hi</body><request xmlns="urn:xmpp:receipts"/></message>`,
	`<message from="b@x" id="d1"><received xmlns="urn:xmpp:receipts" id="m1"/></message>`,
	`<message type="error" id="m2"><error type="cancel"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></message>`,
	`<iq type="error" id="lempbench-reg"><error type="cancel"><conflict xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`,
	`<iq type="result" id="lempbench-reg"/>`,
	`<message id="c1"><sent><forwarded><message><body>x</body></message></forwarded></sent></message>`,
	`<message id="m3"><body>cut`,
	`<presence/>`,
}

// FuzzParseStanza: any input gives fields or an error, never a panic, and
// never reads past the stanza's end.
func FuzzParseStanza(f *testing.F) {
	for _, s := range stanzaSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		d := xmlDecoder(in)
		start, ok := firstStart(d)
		if !ok {
			return
		}
		st, err := parseStanza(start, d)
		if st.Name != start.Name.Local {
			t.Fatalf("name %q, start %q", st.Name, start.Name.Local)
		}
		if err == nil {
			// The stanza ended: the decoder stands right after its end element.
			if d.InputOffset() > int64(len(in)) {
				t.Fatalf("read past the input")
			}
			if st.Received != "" && !strings.Contains(in, "received") {
				t.Fatalf("received id %q without a received element", st.Received)
			}
		}
	})
}

// FuzzParseRegisterResult: any answer is accepted, a known refusal or an
// error, never a panic.
func FuzzParseRegisterResult(f *testing.F) {
	for _, s := range stanzaSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		d := xmlDecoder(in)
		start, ok := firstStart(d)
		if !ok {
			return
		}
		err := parseRegisterResult(start, d)
		if err == nil && start.Name.Local != "iq" {
			t.Fatalf("accepted a <%s>", start.Name.Local)
		}
		if errors.Is(err, errUserExists) && !strings.Contains(in, "conflict") {
			t.Fatalf("conflict without a conflict element: %q", in)
		}
	})
}

package mapping

import (
	"encoding/xml"
	"testing"

	"github.com/lempgw/lempgw/bridge"
)

// BenchmarkToStanza maps a LEMP text message and encodes the stanza.
func BenchmarkToStanza(b *testing.B) {
	m := &bridge.Message{ID: "6c3b8f8e-1d0e-4c55-9b1c-2f5a9e0d7a11", S: "alice", R: "bob@example.org",
		T: "t", C: "Hello Bob, this is a message of a typical length for a chat.", ST: 1763850000123, P: "1", PC: "1"}
	b.ReportAllocs()
	for b.Loop() {
		s := ToStanza(m, alice, bob, true)
		if _, err := xml.Marshal(s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFromStanza decodes a Conversations-like stanza and maps it.
func BenchmarkFromStanza(b *testing.B) {
	raw := []byte(fromStanzaCases[0].xml)
	b.ReportAllocs()
	for b.Loop() {
		var s Message
		if err := xml.Unmarshal(raw, &s); err != nil {
			b.Fatal(err)
		}
		if _, _, err := FromStanza(&s, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLocalJID builds a local user's full JID (escaping and PRECIS).
func BenchmarkLocalJID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := testAddr.LocalJID("d'artagnan"); err != nil {
			b.Fatal(err)
		}
	}
}

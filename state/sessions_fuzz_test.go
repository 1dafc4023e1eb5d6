package state

import (
	"encoding/json"
	"testing"
)

// FuzzDecodeSession: a session record read back from Redis decodes to a
// complete session or an error, never a panic, and what decodes encodes
// back to the same session.
func FuzzDecodeSession(f *testing.F) {
	for _, seed := range []string{
		`{"id":"1","user":"alice","node":"gw-a","run":"r","remote":"192.0.2.1:5000","started":1700000000000}`,
		`{"id":"1","user":"alice","node":"gw-a","run":"r"}`,
		`{"id":"","user":"alice","node":"gw-a","run":"r"}`,
		`{"id":"1","user":"a\u0000b","node":"{x}","run":"a:b","started":-1}`,
		`{"id":1}`, `{`, `null`, `[]`, ``,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v string) {
		s, err := decodeSession(v)
		if err != nil {
			return
		}
		if err := checkSession(s); err != nil {
			t.Fatalf("decoded an incomplete session %+v", s)
		}
		b, err := sessionRecord(s)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeSession(string(b))
		if err != nil || back != s {
			t.Fatalf("round trip of %+v: %+v, %v (%s)", s, back, err, b)
		}
		var raw map[string]any
		if json.Unmarshal(b, &raw) != nil {
			t.Fatalf("encoded record is not a JSON object: %s", b)
		}
	})
}

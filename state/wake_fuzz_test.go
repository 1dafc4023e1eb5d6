package state

import (
	"reflect"
	"testing"
)

// FuzzDecodeWakes: a pub/sub message decodes to complete wake-ups or an
// error, never a panic, and what decodes encodes back to the same batch.
func FuzzDecodeWakes(f *testing.F) {
	for _, seed := range []string{
		`[{"k":1,"u":"bob"}]`,
		`[{"k":2,"u":"bob","f":"eyJpIjp7ImxpIjoiYWxpY2UifX0="},{"k":1,"u":"bob"}]`,
		`[{"k":3,"u":"bob","n":"gw-b","s":"5f0c","t":1700000000000}]`,
		`[{"k":5,"u":"bob","x":"account deleted"},{"k":42,"u":"from a newer node"}]`,
		`[{"k":2,"u":"bob"}]`, `[{"k":300}]`, `{"k":1}`, `null`, `[]`, `[`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ws, err := DecodeWakes(b)
		if err != nil {
			if ws != nil {
				t.Fatalf("error %v with wake-ups %+v", err, ws)
			}
			return
		}
		for _, w := range ws {
			if err := checkWake(w); err != nil {
				t.Fatalf("decoded an incomplete wake-up %+v: %v", w, err)
			}
		}
		if len(ws) == 0 {
			return
		}
		enc, err := EncodeWakes(ws)
		if err != nil {
			t.Fatalf("re-encoding %+v: %v", ws, err)
		}
		back, err := DecodeWakes(enc)
		if err != nil || !reflect.DeepEqual(back, ws) {
			t.Fatalf("round trip of %+v: %+v, %v (%s)", ws, back, err, enc)
		}
	})
}

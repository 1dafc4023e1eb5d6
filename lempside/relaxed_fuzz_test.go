package lempside

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"
)

const relaxedFuzzDepth = 8

// FuzzRelaxed checks that Relaxed never panics, that what it returns is
// strict JSON with one top-level object that Relaxed leaves as is, and that
// strict JSON objects within the depth limit pass through untouched.
func FuzzRelaxed(f *testing.F) {
	for _, tc := range relaxedCases {
		if len(tc.in) <= 1024 {
			f.Add([]byte(tc.in))
		}
	}
	f.Add([]byte(relaxedStrictFrame))
	f.Add([]byte(relaxedREADMEFrame))
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		out, err := Relaxed(in, relaxedFuzzDepth)
		if !bytes.Equal(in, orig) {
			t.Fatalf("Relaxed modified its input")
		}
		strict := json.Valid(in) && utf8.Valid(in) && topLevelObject(in) && jsonDepth(in) <= relaxedFuzzDepth
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T) is not a *SyntaxError", err, err)
			}
			if se.Offset < 0 || se.Offset > len(in) || se.Msg == "" {
				t.Fatalf("bad error %#v for %d bytes of input", se, len(in))
			}
			if out != nil {
				t.Fatalf("output %q alongside error", out)
			}
			if strict {
				t.Fatalf("strict JSON %q rejected: %v", in, err)
			}
			return
		}
		if !json.Valid(out) || !utf8.Valid(out) {
			t.Fatalf("Relaxed(%q) = %q, not valid JSON", in, out)
		}
		if !topLevelObject(out) {
			t.Fatalf("Relaxed(%q) = %q, not an object", in, out)
		}
		if d := jsonDepth(out); d > relaxedFuzzDepth {
			t.Fatalf("Relaxed(%q) = %q, depth %d over %d", in, out, d, relaxedFuzzDepth)
		}
		again, err := Relaxed(out, relaxedFuzzDepth)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("Relaxed(%q) = %q, but Relaxed of that = %q, %v", in, out, again, err)
		}
		if &again[0] != &out[0] {
			t.Fatalf("Relaxed(%q) copied its strict output", out)
		}
		if strict && (!bytes.Equal(out, in) || &out[0] != &in[0]) {
			t.Fatalf("strict JSON %q changed to %q", in, out)
		}
	})
}

// topLevelObject reports whether b's first non-whitespace byte opens an
// object.
func topLevelObject(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}

// jsonDepth is the deepest nesting of objects and arrays in valid JSON b.
func jsonDepth(b []byte) int {
	depth, deepest := 0, 0
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

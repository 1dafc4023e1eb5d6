package state

import (
	"strings"
	"testing"
)

// FuzzLeaseValue checks parseLeaseValue never panics, accepts only what
// leaseValue writes, and reads it back exactly.
func FuzzLeaseValue(f *testing.F) {
	for _, s := range []string{"1:gw-1", "42:n:1 {x}", "0:a", "01:a", "+1:a", ":a", "1:", "", "18446744073709551616:a", "x:y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		token, holder, err := parseLeaseValue(s)
		if err != nil {
			if token != 0 || holder != "" {
				t.Fatalf("%q: error %v with values %d %q", s, err, token, holder)
			}
			return
		}
		if token == 0 || holder == "" || strings.Contains(s, holder) == false {
			t.Fatalf("%q: parsed %d %q", s, token, holder)
		}
		if leaseValue(token, holder) != s {
			t.Fatalf("%q: round trip gives %q", s, leaseValue(token, holder))
		}
	})
}

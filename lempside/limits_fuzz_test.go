package lempside

import (
	"net/netip"
	"strings"
	"testing"
)

// FuzzForwardedFor feeds the proxy-header parser arbitrary header values:
// it never panics, and what it believes is the right-most entry that is not
// a trusted proxy (the left-most when all are), every entry right of it
// parsing as an address.
func FuzzForwardedFor(f *testing.F) {
	for _, s := range []string{
		"203.0.113.9",
		"10.0.0.1, 203.0.113.9, 127.0.0.1",
		"[2001:db8::1]:443, 127.0.0.1",
		"::ffff:198.51.100.7",
		"fe80::1%eth0",
		"garbage, 203.0.113.9",
		" , ,",
		"127.0.0.1, ::1",
	} {
		f.Add(s)
	}
	trusted, err := ParseTrustedProxies(nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, list string) {
		a, ok := forwardedFor(list, trusted)
		if !ok {
			return
		}
		if !a.IsValid() || a.Zone() != "" || a.Is4In6() {
			t.Fatalf("forwardedFor(%q) = %v: not a plain valid address", list, a)
		}
		// Walking from the right as the parser does: every entry up to the
		// result parses, and the result is the first one not trusted (or
		// the left-most, when all are).
		parts := strings.Split(list, ",")
		var last netip.Addr
		for i := len(parts) - 1; i >= 0; i-- {
			s := strings.TrimSpace(parts[i])
			if s == "" {
				continue
			}
			e, err := netip.ParseAddr(s)
			if err != nil {
				ap, err := netip.ParseAddrPort(s)
				if err != nil {
					t.Fatalf("forwardedFor(%q) = %v, past the bad entry %q", list, a, s)
				}
				e = ap.Addr()
			}
			e = e.WithZone("").Unmap()
			if !inPrefixes(e, trusted) {
				if e != a {
					t.Fatalf("forwardedFor(%q) = %v, want the right-most untrusted %v", list, a, e)
				}
				last = netip.Addr{}
				break
			}
			last = e
		}
		if last.IsValid() && last != a {
			t.Fatalf("forwardedFor(%q) = %v, want the left-most %v (all trusted)", list, a, last)
		}
		_ = addrKey(a) // never panics
	})
}

// TestForwardedFor pins the parser's choices.
func TestForwardedFor(t *testing.T) {
	trusted, err := ParseTrustedProxies([]string{"10.0.0.0/8", "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		list, want string // want "" = not believed
	}{
		{"203.0.113.9", "203.0.113.9"},
		{"198.51.100.1, 203.0.113.9", "203.0.113.9"},        // right-most: what our proxy saw
		{"203.0.113.9, 10.1.2.3, 192.0.2.1", "203.0.113.9"}, // skipping trusted proxies
		{"10.1.1.1, 10.2.2.2", "10.1.1.1"},                  // all trusted: the left-most
		{"[2001:db8::5]:8080", "2001:db8::5"},               // ports dropped
		{"203.0.113.9:1234", "203.0.113.9"},                 //
		{"::ffff:203.0.113.9", "203.0.113.9"},               // 4-in-6 unmapped
		{"fe80::1%eth0", "fe80::1"},                         // zone dropped
		{"203.0.113.9, unknown", ""},                        // a bad entry: not believed
		{"", ""},                                            //
		{" , ", ""},                                         //
	} {
		a, ok := forwardedFor(tc.list, trusted)
		got := ""
		if ok {
			got = a.String()
		}
		if got != tc.want {
			t.Errorf("forwardedFor(%q) = %q, want %q", tc.list, got, tc.want)
		}
	}
	for _, tc := range []struct{ addr, key string }{
		{"203.0.113.9", "203.0.113.9"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
	} {
		if got := addrKey(netip.MustParseAddr(tc.addr)); got != tc.key {
			t.Errorf("addrKey(%s) = %s, want %s", tc.addr, got, tc.key)
		}
	}
	if _, err := ParseTrustedProxies([]string{"10.0.0.0/33"}); err == nil {
		t.Error("a bad prefix was accepted")
	}
}

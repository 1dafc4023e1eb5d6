package mapping

import (
	"errors"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"
)

var testAddr = Addresser{Domain: "lemp.example.org", Resource: "lemp"}

func TestLocalJID(t *testing.T) {
	for _, c := range []struct{ user, full, bare string }{
		{"alice", "alice@lemp.example.org/lemp", "alice@lemp.example.org"},
		{"Alice", "alice@lemp.example.org/lemp", "alice@lemp.example.org"},
		{"d'artagnan", `d\27artagnan@lemp.example.org/lemp`, `d\27artagnan@lemp.example.org`},
		{"at&t", `at\26t@lemp.example.org/lemp`, `at\26t@lemp.example.org`},
		{`c:\net`, `c\3a\net@lemp.example.org/lemp`, `c\3a\net@lemp.example.org`},
		{"<b>", `\3cb\3e@lemp.example.org/lemp`, `\3cb\3e@lemp.example.org`},
		{"jürgen", "jürgen@lemp.example.org/lemp", "jürgen@lemp.example.org"},
		{"☃", "☃@lemp.example.org/lemp", "☃@lemp.example.org"}, // PRECIS says no, Nodeprep yes
	} {
		full, err := testAddr.LocalJID(c.user)
		if err != nil || full.String() != c.full {
			t.Errorf("LocalJID(%q) = %q, %v, want %q", c.user, full, err, c.full)
			continue
		}
		bare, err := testAddr.LocalBareJID(c.user)
		if err != nil || bare.String() != c.bare {
			t.Errorf("LocalBareJID(%q) = %q, %v, want %q", c.user, bare, err, c.bare)
		}
		back, local, err := testAddr.FromJID(full)
		if want := strings.ToLower(c.user); err != nil || !local || back != want {
			t.Errorf("FromJID(%q) = %q, %v, %v, want %q, true", full, back, local, err, want)
		}
	}
}

func TestLocalJIDRejects(t *testing.T) {
	for _, user := range []string{
		"", "a b", "a@b", "a/b", "tab\t", strings.Repeat("x", 65), "\xff",
		"ﬁ",      // PRECIS maps the ligature to "fi": replies would reach user "fi"
		"ａｂｃ",    // fullwidth: mapped to "abc"
		"\u200b", // zero width space: neither PRECIS nor Nodeprep
	} {
		if j, err := testAddr.LocalJID(user); err == nil {
			t.Errorf("LocalJID(%q) = %q, want an error", user, j)
		} else if !errors.Is(err, ErrAddress) {
			t.Errorf("LocalJID(%q): %v does not wrap ErrAddress", user, err)
		}
	}
	if j, err := (Addresser{}).LocalJID("alice"); err == nil {
		t.Errorf("LocalJID without a domain = %q, want an error", j)
	}
}

func TestFromJID(t *testing.T) {
	for _, c := range []struct {
		jid, addr string
		local     bool
		bad       bool
	}{
		{jid: "alice@lemp.example.org", addr: "alice", local: true},
		{jid: "alice@lemp.example.org/lemp", addr: "alice", local: true},
		{jid: "Alice@LEMP.example.org/Phone", addr: "alice", local: true},
		{jid: `d\27artagnan@lemp.example.org`, addr: "d'artagnan", local: true},
		{jid: `c\3a\net@lemp.example.org`, addr: `c:\net`, local: true},
		{jid: "bob@example.org", addr: "bob@example.org"},
		{jid: "Bob@Example.org/Phone", addr: "bob@example.org"},
		{jid: "room@conference.example.org/nick", addr: "room@conference.example.org"},
		{jid: `user\40host@lemp.example.org`, local: true, bad: true}, // "user@host" is no username
		{jid: `a\20b@lemp.example.org`, local: true, bad: true},       // nor "a b"
		{jid: `a\5cx@lemp.example.org`, local: true, bad: true},       // not canonical
		{jid: "lemp.example.org", local: true, bad: true},             // the gateway itself
		{jid: "example.org", bad: true},                               // a server
	} {
		j, err := jid.Parse(c.jid)
		if err != nil {
			t.Fatalf("jid.Parse(%q): %v", c.jid, err)
		}
		addr, local, err := testAddr.FromJID(j)
		if c.bad {
			if err == nil || local != c.local {
				t.Errorf("FromJID(%q) = %q, %v, %v, want an error, local %v", c.jid, addr, local, err, c.local)
			}
			continue
		}
		if err != nil || addr != c.addr || local != c.local {
			t.Errorf("FromJID(%q) = %q, %v, %v, want %q, %v", c.jid, addr, local, err, c.addr, c.local)
		}
	}
}

func TestIsLocalDomain(t *testing.T) {
	a := Addresser{Domain: "xn--bcher-kva.example."}
	for d, want := range map[string]bool{
		"bücher.example": true, "BÜCHER.example": false /* JIDs are already normalised */, "example": false, "": false,
	} {
		if got := a.IsLocalDomain(d); got != want {
			t.Errorf("IsLocalDomain(%q) = %v, want %v", d, got, want)
		}
	}
	if (Addresser{}).IsLocalDomain("") {
		t.Error("an empty Addresser claims the empty domain")
	}
}

var parseAddressCases = []struct{ in, want string }{
	{"bob@example.org", "bob@example.org"},
	{"Bob@Example.ORG", "bob@example.org"},
	{"bob@example.org.", "bob@example.org"},
	{"☃@example.org", "☃@example.org"},             // PRECIS rejects, servers accept
	{"Jürgen☃@Example.org", "jürgen☃@example.org"}, // lenient path folds case too
	{"bob@bücher.example", "bob@bücher.example"},
	{"bob@xn--bcher-kva.example", "bob@bücher.example"},
	{"bob@[::1]", "bob@[::1]"},
	{"bob@192.0.2.1", "bob@192.0.2.1"},
	{`c\3a\net@example.org`, `c\3a\net@example.org`},
	{"", ""},
	{"bob", ""},
	{"@example.org", ""},
	{"bob@", ""},
	{"bob@example.org/phone", ""},
	{"a b@example.org", ""},
	{"a:b@example.org", ""},
	{"bob@exa mple.org", ""},
	{"bob@a@b", ""},
	{"0@..", ""}, // fuzz: mellium strips one final dot and keeps "." as a domain
	{"bob@example..org", ""},
	{"bob@.example.org", ""},
	{"\u200b@example.org", ""},
	{"bob@example.org\x00", ""},
	{"bob\xff@example.org", ""},
	{strings.Repeat("a", 1100) + "@example.org", ""},
}

func TestParseAddress(t *testing.T) {
	for _, c := range parseAddressCases {
		j, err := ParseAddress(c.in)
		if c.want == "" {
			if err == nil {
				t.Errorf("ParseAddress(%q) = %q, want an error", c.in, j)
			} else if !errors.Is(err, ErrAddress) {
				t.Errorf("ParseAddress(%q): %v does not wrap ErrAddress", c.in, err)
			}
			continue
		}
		if err != nil || j.String() != c.want {
			t.Errorf("ParseAddress(%q) = %q, %v, want %q", c.in, j, err, c.want)
		}
	}
}

func FuzzParseAddress(f *testing.F) {
	for _, c := range parseAddressCases {
		f.Add(c.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		j, err := ParseAddress(s)
		if err != nil {
			return
		}
		out := j.String()
		if j.Localpart() == "" || j.Resourcepart() != "" || strings.Count(out, "@") != 1 || strings.Contains(out, "/") {
			t.Fatalf("ParseAddress(%q) = %q: not a bare JID with a localpart", s, out)
		}
		// The result is canonical: parsing it again gives it back.
		j2, err := ParseAddress(out)
		if err != nil || !j2.Equal(j) {
			t.Fatalf("ParseAddress(%q) = %q, but ParseAddress(%q) = %q, %v", s, out, out, j2, err)
		}
		// A Jabber user maps to its bare JID, and back.
		addr, local, err := testAddr.FromJID(j)
		if err == nil && !local && addr != out {
			t.Fatalf("FromJID(%q) = %q", out, addr)
		}
	})
}

func FuzzLocalJID(f *testing.F) {
	for _, u := range []string{"alice", "Alice", "d'artagnan", `c:\net`, "☃", "ﬁ", `\5c`, "İ"} {
		f.Add(u)
	}
	f.Fuzz(func(t *testing.T, user string) {
		j, err := testAddr.LocalJID(user)
		if err != nil {
			return
		}
		// Whatever LocalJID accepts comes back as the same (folded) user.
		back, local, err := testAddr.FromJID(j)
		if err != nil || !local || back != strings.ToLower(user) {
			t.Fatalf("FromJID(LocalJID(%q) = %q) = %q, %v, %v", user, j, back, local, err)
		}
		// And the JID survives being written and parsed by a server-side parser.
		if p, err := jid.Parse(j.String()); err == nil && !p.Equal(j) {
			t.Fatalf("LocalJID(%q) = %q is not canonical: jid.Parse gives %q", user, j, p)
		}
	})
}

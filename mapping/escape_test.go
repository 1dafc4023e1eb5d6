package mapping

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// escapeCases are pairs of a name and its XEP-0106 escaped form (the XEP's
// own examples first).
var escapeCases = []struct{ name, escaped string }{
	{"", ""},
	{"alice", "alice"},
	{"space cadet", `space\20cadet`},
	{`call me "ishmael"`, `call\20me\20\22ishmael\22`},
	{"at&t guy", `at\26t\20guy`},
	{"d'artagnan", `d\27artagnan`},
	{"/.fanboy", `\2f.fanboy`},
	{"::foo::", `\3a\3afoo\3a\3a`},
	{"<foo>", `\3cfoo\3e`},
	{"user@host", `user\40host`},
	{`c:\net`, `c\3a\net`},
	{`c:\\net`, `c\3a\\net`},
	{`c:\cool stuff`, `c\3a\cool\20stuff`},
	{`c:\5commas`, `c\3a\5c5commas`},
	{`\`, `\`},
	{`a\`, `a\`},
	{`\2`, `\2`},
	{`\20`, `\5c20`},
	{`\5c`, `\5c5c`},
	{`\2F`, `\5c2F`},       // upper case still reads as an escape: escaped
	{`\ `, `\\20`},         // backslash before a character that gets escaped
	{`\@`, `\\40`},         //
	{" lead", `\20lead`},   // not XEP-conformant, kept for the round trip (see escape.go)
	{"trail ", `trail\20`}, //
	{"☃\\☃", "☃\\☃"},       // UTF-8 is passed through
	{"ü@ö", `ü\40ö`},       //
	{"\\\\40", `\\5c40`},   // only the backslash before "40" is escaped
	{"all \"&'/:<>@\\20", `all\20\22\26\27\2f\3a\3c\3e\40\5c20`},
}

func TestEscapeLocal(t *testing.T) {
	for _, c := range escapeCases {
		if got := EscapeLocal(c.name); got != c.escaped {
			t.Errorf("EscapeLocal(%q) = %q, want %q", c.name, got, c.escaped)
		}
		got, err := UnescapeLocal(c.escaped)
		if err != nil || got != c.name {
			t.Errorf("UnescapeLocal(%q) = %q, %v, want %q", c.escaped, got, err, c.name)
		}
	}
}

func TestUnescapeLocalRejects(t *testing.T) {
	for _, s := range []string{
		"a b",       // raw space
		"user@host", // raw @
		`a"b`, "a&b", "a'b", "a/b", "a:b", "a<b", "a>b",
		`\2F`, // upper-case escape: is it "/" or a backslash and "2F"?
		`\3A`, `\3C`, `\3E`, `\5C20`,
		`\5cx`,   // \5c where a plain backslash would do
		`\5c`,    // at the end
		`\5c\20`, // followed by an escape of another character, not by "20"
		"\xff",   // not UTF-8
		"ok\xc3", // truncated UTF-8
	} {
		if got, err := UnescapeLocal(s); err == nil {
			t.Errorf("UnescapeLocal(%q) = %q, want an error", s, got)
		} else if !errors.Is(err, ErrEscape) {
			t.Errorf("UnescapeLocal(%q): error %v does not wrap ErrEscape", s, err)
		}
	}
}

func FuzzEscape(f *testing.F) {
	for _, c := range escapeCases {
		f.Add(c.name)
		f.Add(c.escaped)
	}
	f.Add(`\5C\2f\5`)
	f.Fuzz(func(t *testing.T, s string) {
		// Unescape never panics, and what it accepts escapes back to itself.
		if u, err := UnescapeLocal(s); err == nil {
			if e := EscapeLocal(u); e != s {
				t.Fatalf("EscapeLocal(UnescapeLocal(%q)) = %q", s, e)
			}
		}
		if !utf8.ValidString(s) {
			return
		}
		e := EscapeLocal(s)
		if strings.ContainsAny(e, ` "&'/:<>@`) {
			t.Fatalf("EscapeLocal(%q) = %q keeps a character that must be escaped", s, e)
		}
		u, err := UnescapeLocal(e)
		if err != nil || u != s {
			t.Fatalf("UnescapeLocal(EscapeLocal(%q)) = UnescapeLocal(%q) = %q, %v", s, e, u, err)
		}
	})
}

package mapping

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// XEP-0106 JID escaping, written here because mellium's jid.Unescape can
// panic on remote input.
//
// EscapeLocal and UnescapeLocal are exact inverses:
//
//   - UnescapeLocal(EscapeLocal(s)) == s for every valid UTF-8 s;
//   - EscapeLocal(UnescapeLocal(x)) == x for every x that UnescapeLocal accepts.
//
// So every name has exactly one escaped form, and UnescapeLocal refuses the
// forms EscapeLocal never writes instead of guessing what they mean.
//
// Leading and trailing spaces: XEP-0106 says an escaped localpart must not
// begin or end with \20. EscapeLocal is total and escapes such spaces as \20
// anyway (so that the round trip holds), and UnescapeLocal accepts them (they
// are unambiguous). The gateway never produces them: Addresser.LocalJID only
// escapes valid usernames, which have no spaces at all.

// escapeTable holds the ten characters of XEP-0106 and their escapes, which
// are written in lower case.
var escapeTable = [...]struct {
	c    byte
	code string
}{
	{' ', "20"}, {'"', "22"}, {'&', "26"}, {'\'', "27"}, {'/', "2f"},
	{':', "3a"}, {'<', "3c"}, {'>', "3e"}, {'@', "40"}, {'\\', "5c"},
}

// ErrEscape is wrapped by every error of UnescapeLocal.
var ErrEscape = errors.New("invalid XEP-0106 escaped localpart")

// mustEscape reports whether c is one of the nine characters that are always
// escaped (the tenth, '\', is escaped only before an escape sequence).
func mustEscape(c byte) (code string, ok bool) {
	switch c {
	case ' ', '"', '&', '\'', '/', ':', '<', '>', '@':
		for _, e := range escapeTable {
			if e.c == c {
				return e.code, true
			}
		}
	}
	return "", false
}

// codeAt looks for an escape sequence's two hex digits at s[i:]. exact is the
// decoded character when they are one of the ten codes as written by
// EscapeLocal (lower case); folded reports a match ignoring case.
func codeAt(s string, i int) (exact byte, folded bool) {
	if i+2 > len(s) {
		return 0, false
	}
	h := s[i : i+2]
	for _, e := range escapeTable {
		if h == e.code {
			return e.c, true
		}
		if strings.EqualFold(h, e.code) {
			folded = true
		}
	}
	return 0, folded
}

// EscapeLocal escapes s for use as a JID localpart (XEP-0106): space " & ' / :
// < > @ become \20 \22 \26 \27 \2f \3a \3c \3e \40, and a backslash becomes
// \5c only when what follows it reads as an escape sequence (in any case).
// Other characters, including other backslashes, are left alone.
func EscapeLocal(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if _, ok := mustEscape(s[i]); ok {
			n++
		} else if s[i] == '\\' {
			if _, f := codeAt(s, i+1); f {
				n++
			}
		}
	}
	if n == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if code, ok := mustEscape(c); ok {
			b.WriteByte('\\')
			b.WriteString(code)
			continue
		}
		if c == '\\' {
			if _, f := codeAt(s, i+1); f {
				b.WriteString(`\5c`)
				continue
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}

// UnescapeLocal reverses EscapeLocal. A backslash not followed by an escape
// sequence stands for itself, as XEP-0106 says. It returns an error wrapping
// ErrEscape, and never panics, when s is not the escaped form of any string:
// invalid UTF-8, a raw character that must be escaped, an escape sequence in
// upper case (\2F), or \5c where a plain backslash would do (\5cx).
func UnescapeLocal(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("%w: not UTF-8", ErrEscape)
	}
	if strings.IndexByte(s, '\\') < 0 {
		for i := 0; i < len(s); i++ {
			if _, ok := mustEscape(s[i]); ok {
				return "", fmt.Errorf("%w: %q at byte %d must be escaped", ErrEscape, s[i], i)
			}
		}
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if _, ok := mustEscape(c); ok {
			return "", fmt.Errorf("%w: %q at byte %d must be escaped", ErrEscape, c, i)
		}
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		d, folded := codeAt(s, i+1)
		switch {
		case d == '\\':
			// \5c is only written before something that reads as an escape.
			if _, f := codeAt(s, i+3); !f {
				return "", fmt.Errorf("%w: \\5c at byte %d is not followed by an escape sequence (a plain backslash would do)", ErrEscape, i)
			}
			b.WriteByte('\\')
			i += 2
		case d != 0:
			b.WriteByte(d)
			i += 2
		case folded:
			return "", fmt.Errorf("%w: escape sequence %q at byte %d is not in lower case", ErrEscape, s[i:i+3], i)
		default:
			b.WriteByte('\\') // a backslash standing for itself
		}
	}
	return b.String(), nil
}

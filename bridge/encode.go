package bridge

import (
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends the strict, compact JSON of m to b: the same object
// encoding/json writes for Message (fields in declaration order, empty ones
// left out), without reflection. Messages are the hot path of the gateway.
func (m *Message) AppendJSON(b []byte) []byte {
	b = append(b, '{')
	open := len(b) // nothing written since '{': the next field needs no comma
	b = appendStrField(b, open, "id", m.ID)
	b = appendStrField(b, open, "s", m.S)
	b = appendStrField(b, open, "r", m.R)
	b = appendStrField(b, open, "t", m.T)
	b = appendStrField(b, open, "c", m.C)
	if m.ST != 0 {
		b = appendKey(b, open, "st")
		b = strconv.AppendInt(b, int64(m.ST), 10)
	}
	b = appendStrField(b, open, "p", string(m.P))
	b = appendStrField(b, open, "sc", string(m.SC))
	b = appendStrField(b, open, "pc", string(m.PC))
	b = appendRefField(b, open, "sr", m.SR)
	b = appendRefField(b, open, "dm", m.DM)
	b = appendRefField(b, open, "nm", m.NM)
	if m.E != nil {
		b = appendKey(b, open, "e")
		b = append(b, `{"c":`...)
		b = strconv.AppendInt(b, int64(m.E.Code), 10)
		if m.E.Desc != "" {
			b = append(b, `,"d":`...)
			b = appendString(b, m.E.Desc)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// JSONLen is the length of m's JSON when none of its strings needs an
// escape (otherwise a little more): the capacity to give AppendJSON so that
// encoding a message allocates once.
func (m *Message) JSONLen() int {
	n := 2 // {}
	str := func(key, v string) {
		if v != "" {
			n += len(key) + len(v) + 6 // ,"key":"v"
		}
	}
	str("id", m.ID)
	str("s", m.S)
	str("r", m.R)
	str("t", m.T)
	str("c", m.C)
	if m.ST != 0 {
		n += 6 + 20 // ,"st": and at most 20 digits with the sign
	}
	str("p", string(m.P))
	str("sc", string(m.SC))
	str("pc", string(m.PC))
	for _, r := range [...]*Ref{m.SR, m.DM, m.NM} {
		if r != nil {
			n += 2 + 6 + 8 + len(r.ID) + 1 // ,"sr":{"id":"v"}
		}
	}
	if m.E != nil {
		n += 5 + 6 + 20 + 1 + 6 + len(m.E.Desc) // ,"e":{"c":404,"d":"desc"}
	}
	return n
}

// appendKey appends `"key":`, after a comma unless it is the object's
// first field (nothing written since offset open).
func appendKey(b []byte, open int, key string) []byte {
	if len(b) != open {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, key...)
	return append(b, '"', ':')
}

func appendStrField(b []byte, open int, key, v string) []byte {
	if v == "" {
		return b
	}
	return appendString(appendKey(b, open, key), v)
}

func appendRefField(b []byte, open int, key string, r *Ref) []byte {
	if r == nil {
		return b
	}
	b = appendKey(b, open, key)
	b = append(b, `{"id":`...)
	b = appendString(b, r.ID)
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// safeASCII marks the bytes encoding/json writes as they are.
var safeASCII = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendString appends s as a JSON string, escaping as encoding/json does:
// quotes, backslashes, control characters, <, >, &, U+2028 and U+2029;
// invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if safeASCII[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

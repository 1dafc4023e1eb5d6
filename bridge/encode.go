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
	first := true
	str := func(key, v string) {
		if v == "" {
			return
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, key...)
		b = append(b, `":`...)
		b = appendString(b, v)
	}
	ref := func(key string, r *Ref) {
		if r == nil {
			return
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, key...)
		b = append(b, `":{"id":`...)
		b = appendString(b, r.ID)
		b = append(b, '}')
	}
	str("id", m.ID)
	str("s", m.S)
	str("r", m.R)
	str("t", m.T)
	str("c", m.C)
	if m.ST != 0 {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, `"st":`...)
		b = strconv.AppendInt(b, int64(m.ST), 10)
	}
	str("p", string(m.P))
	str("sc", string(m.SC))
	str("pc", string(m.PC))
	ref("sr", m.SR)
	ref("dm", m.DM)
	ref("nm", m.NM)
	if m.E != nil {
		if !first {
			b = append(b, ',')
		}
		b = append(b, `"e":{"c":`...)
		b = strconv.AppendInt(b, int64(m.E.Code), 10)
		if m.E.Desc != "" {
			b = append(b, `,"d":`...)
			b = appendString(b, m.E.Desc)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaping as encoding/json does:
// quotes, backslashes, control characters, <, >, &, U+2028 and U+2029;
// invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
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

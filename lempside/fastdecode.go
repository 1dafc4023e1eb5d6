package lempside

import (
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/lempgw/lempgw/bridge"
)

// The fast path of Decode: a hand-written scanner for the hot packet, a
// client message {"m":{...}} in strict JSON (a chat message or a dm/nm
// receipt). It accepts only what it fully understands and declines
// everything else, which then takes the general path (Relaxed and
// encoding/json). What it accepts it decodes exactly as the general path
// does (FuzzDecodeFastPath proves it): so it must never accept an input the
// general path rejects or reads differently.
//
// Accepted: the top-level object with the single key "m" whose value is an
// object of the keys id, s, r, t, c (strings), st (an integer of at most 18
// digits), p, sc, pc ("0", "1", 0, 1, true, false), sr, dm, nm ({} or
// {"id":string}); each key at most once, spelled exactly (no escapes, no
// other letter case), JSON whitespace anywhere between tokens. Strings hold
// valid UTF-8, no raw control characters, and any JSON escape (\u escapes are
// read as encoding/json reads them, lone surrogates becoming U+FFFD).
// Declined: anything else (other keys, null, other value forms, relaxed
// syntax, errors of any kind).

// Message fields the fast path reads, as bits of fastMsg.seen.
const (
	fkID = iota // string fields first: their index is also into fastMsg.str
	fkS
	fkR
	fkT
	fkC
	fkSR // the ids of the refs: str[fkSR..fkNM]
	fkDM
	fkNM
	fkST
	fkP
	fkSC
	fkPC
)

// span is a string value in the frame: the bytes between its quotes.
type span struct {
	start, end int
	esc        bool // holds a backslash escape
}

// fastMsg is what the scan found; build turns it into a Packet.
type fastMsg struct {
	seen  uint16 // 1<<fkXX for each key read
	str   [fkNM + 1]span
	st    int64
	flags [3]bridge.Flag // p, sc, pc
}

// fastPacket holds a decoded packet and what it points to in one allocation.
type fastPacket struct {
	p          Packet
	m          bridge.Message
	sr, dm, nm bridge.Ref
}

// decodeFast returns the packet of frame, or nil when the fast path
// declines it.
func decodeFast(frame []byte) *Packet {
	var f fastMsg
	if !f.scan(frame) {
		return nil
	}
	return f.build(frame)
}

func (f *fastMsg) scan(b []byte) bool {
	i := skipWS(b, 0)
	// {"m":
	if i+4 > len(b) || b[i] != '{' {
		return false
	}
	i = skipWS(b, i+1)
	if i+3 > len(b) || b[i] != '"' || b[i+1] != 'm' || b[i+2] != '"' {
		return false
	}
	i = skipWS(b, i+3)
	if i >= len(b) || b[i] != ':' {
		return false
	}
	i = skipWS(b, i+1)
	i, ok := f.message(b, i)
	if !ok {
		return false
	}
	i = skipWS(b, i)
	if i >= len(b) || b[i] != '}' {
		return false
	}
	return skipWS(b, i+1) == len(b)
}

// message reads the m object at b[i] and returns the offset past it.
func (f *fastMsg) message(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '{' {
		return 0, false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for {
		k, j, ok := fastKey(b, i)
		if !ok || f.seen&(1<<k) != 0 {
			return 0, false
		}
		f.seen |= 1 << k
		i = skipWS(b, j)
		switch {
		case k <= fkC:
			f.str[k], i, ok = fastString(b, i)
		case k <= fkNM:
			f.str[k], i, ok = fastRef(b, i)
		case k == fkST:
			f.st, i, ok = fastInt(b, i)
		default:
			f.flags[k-fkP], i, ok = fastFlag(b, i)
		}
		if !ok {
			return 0, false
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return 0, false
		}
		switch b[i] {
		case '}':
			return i + 1, true
		case ',':
			i = skipWS(b, i+1)
		default:
			return 0, false
		}
	}
}

// fastKey reads a known key of the m object and the ':' after it, at b[i];
// it returns the key's fk constant and the offset past the ':'.
func fastKey(b []byte, i int) (k int, next int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, 0, false
	}
	j := i + 1
	for j < len(b) && b[j] != '"' {
		if j-i > 3 { // no key is longer than two letters
			return 0, 0, false
		}
		j++
	}
	if j >= len(b) {
		return 0, 0, false
	}
	switch string(b[i+1 : j]) {
	case "id":
		k = fkID
	case "s":
		k = fkS
	case "r":
		k = fkR
	case "t":
		k = fkT
	case "c":
		k = fkC
	case "st":
		k = fkST
	case "p":
		k = fkP
	case "sc":
		k = fkSC
	case "pc":
		k = fkPC
	case "sr":
		k = fkSR
	case "dm":
		k = fkDM
	case "nm":
		k = fkNM
	default:
		return 0, 0, false
	}
	j = skipWS(b, j+1)
	if j >= len(b) || b[j] != ':' {
		return 0, 0, false
	}
	return k, skipWS(b, j+1), true
}

// fastString reads the string at b[i]: valid UTF-8, no raw control
// characters, only JSON's escapes.
func fastString(b []byte, i int) (span, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return span{}, 0, false
	}
	s := span{start: i + 1}
	j := i + 1
	for j < len(b) {
		if strPlain[b[j]] {
			j++
			continue
		}
		c := b[j]
		switch {
		case c == '"':
			s.end = j
			return s, j + 1, true
		case c == '\\':
			if j+1 >= len(b) {
				return span{}, 0, false
			}
			switch b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if getu4(b[j:]) < 0 {
					return span{}, 0, false
				}
				j += 6
			default:
				return span{}, 0, false
			}
			s.esc = true
		case c < 0x20:
			return span{}, 0, false
		default:
			r, size := utf8.DecodeRune(b[j:])
			if r == utf8.RuneError && size == 1 {
				return span{}, 0, false
			}
			j += size
		}
	}
	return span{}, 0, false
}

// strPlain marks the bytes a string holds as they are: ASCII but the quote,
// the backslash and control characters.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// fastRef reads {} or {"id":string} at b[i]. An absent id is the span
// {0,0}, read as "".
func fastRef(b []byte, i int) (span, int, bool) {
	if i >= len(b) || b[i] != '{' {
		return span{}, 0, false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return span{}, i + 1, true
	}
	if i+4 > len(b) || string(b[i:i+4]) != `"id"` {
		return span{}, 0, false
	}
	i = skipWS(b, i+4)
	if i >= len(b) || b[i] != ':' {
		return span{}, 0, false
	}
	s, i, ok := fastString(b, skipWS(b, i+1))
	if !ok {
		return span{}, 0, false
	}
	i = skipWS(b, i)
	if i >= len(b) || b[i] != '}' {
		return span{}, 0, false
	}
	return s, i + 1, true
}

// fastInt reads a JSON integer of at most 18 digits at b[i] (no fraction,
// no exponent: the general path takes those).
func fastInt(b []byte, i int) (int64, int, bool) {
	neg := i < len(b) && b[i] == '-'
	if neg {
		i++
	}
	j := i
	var n int64
	for j < len(b) && '0' <= b[j] && b[j] <= '9' {
		n = n*10 + int64(b[j]-'0')
		j++
	}
	switch {
	case j == i, j-i > 18, b[i] == '0' && j-i > 1:
		return 0, 0, false
	case j < len(b) && (b[j] == '.' || b[j] == 'e' || b[j] == 'E'):
		return 0, 0, false
	}
	if neg {
		n = -n
	}
	return n, j, true
}

// fastFlag reads "0", "1", 0, 1, true or false at b[i].
func fastFlag(b []byte, i int) (bridge.Flag, int, bool) {
	rest := b[i:]
	switch {
	case len(rest) >= 3 && rest[0] == '"' && rest[2] == '"' && (rest[1] == '0' || rest[1] == '1'):
		return bridge.Flag(flagText(rest[1])), i + 3, true
	case len(rest) >= 1 && (rest[0] == '0' || rest[0] == '1'):
		// A digit must end the number: 10, 1.5 and 1e3 go the general way.
		if len(rest) > 1 && (rest[1] >= '0' && rest[1] <= '9' || rest[1] == '.' || rest[1] == 'e' || rest[1] == 'E') {
			return "", 0, false
		}
		return bridge.Flag(flagText(rest[0])), i + 1, true
	case len(rest) >= 4 && string(rest[:4]) == "true":
		return bridge.FlagOn, i + 4, true
	case len(rest) >= 5 && string(rest[:5]) == "false":
		return bridge.FlagOff, i + 5, true
	}
	return "", 0, false
}

func flagText(c byte) bridge.Flag {
	if c == '1' {
		return bridge.FlagOn
	}
	return bridge.FlagOff
}

// build makes the packet: one allocation for the structs, and one for each
// string of two bytes or more. Each string is a copy of its own, as
// encoding/json makes them: one field kept for long (the id, in the memory
// store's message index for IndexTTL) keeps nothing else of the frame alive.
func (f *fastMsg) build(b []byte) *Packet {
	fp := new(fastPacket)
	fp.p.M = &fp.m
	m := &fp.m
	m.ST = bridge.Millis(f.st)
	m.P, m.SC, m.PC = f.flags[0], f.flags[1], f.flags[2]
	field := func(k int) string {
		s := f.str[k]
		if s.esc {
			return unescape(b[s.start:s.end])
		}
		return string(b[s.start:s.end])
	}
	m.ID, m.S, m.R, m.T, m.C = field(fkID), field(fkS), field(fkR), field(fkT), field(fkC)
	if f.seen&(1<<fkSR) != 0 {
		fp.sr.ID = field(fkSR)
		m.SR = &fp.sr
	}
	if f.seen&(1<<fkDM) != 0 {
		fp.dm.ID = field(fkDM)
		m.DM = &fp.dm
	}
	if f.seen&(1<<fkNM) != 0 {
		fp.nm.ID = field(fkNM)
		m.NM = &fp.nm
	}
	return &fp.p
}

// unescape returns the value of s, the validated inside of a JSON string,
// reading escapes as encoding/json does.
func unescape(s []byte) string {
	var sb strings.Builder
	sb.Grow(len(s)) // never shorter than the value: no escape is longer than what it stands for
	for r := 0; r < len(s); {
		c := s[r]
		if c != '\\' {
			sb.WriteByte(c)
			r++
			continue
		}
		switch e := s[r+1]; e {
		case 'b':
			sb.WriteByte('\b')
		case 'f':
			sb.WriteByte('\f')
		case 'n':
			sb.WriteByte('\n')
		case 'r':
			sb.WriteByte('\r')
		case 't':
			sb.WriteByte('\t')
		case 'u':
			rr := getu4(s[r:])
			r += 6
			if utf16.IsSurrogate(rr) {
				if dec := utf16.DecodeRune(rr, getu4(s[r:])); dec != unicode.ReplacementChar {
					sb.WriteRune(dec)
					r += 6
					continue
				}
				rr = unicode.ReplacementChar
			}
			sb.WriteRune(rr)
			continue
		default: // " \ /
			sb.WriteByte(e)
		}
		r += 2
	}
	return sb.String()
}

// getu4 reads the \uXXXX escape at the start of s, or returns -1.
func getu4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

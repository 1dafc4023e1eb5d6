package lempside

import (
	"fmt"
	"strconv"
	"unicode/utf8"
)

// SyntaxError is why Relaxed rejected a frame: a short message and the byte
// offset in the input where the problem was found.
type SyntaxError struct {
	Offset int    // byte offset into the input
	Msg    string // e.g. "unexpected '}'"
}

func (e *SyntaxError) Error() string {
	return e.Msg + " at offset " + strconv.Itoa(e.Offset)
}

// Relaxed turns one LEMP frame into strict JSON.
//
// LEMP clients, like the README and the Java reference server (Gson in
// lenient mode), write frames such as
//
//	{ rq:{id:"id",a:{i:"identity",t:"token"}} }
//
// Relaxed accepts this grammar (ws is any of space, tab, CR, LF and may
// appear between any two tokens):
//
//	frame   = ws object ws                  exactly one value, an object
//	object  = '{' ws '}' | '{' member (',' member)* '}'
//	member  = ws key ws ':' ws value ws
//	array   = '[' ws ']' | '[' ws value ws (',' ws value ws)* ']'
//	key     = dstring | sstring | word      word: [A-Za-z0-9_$.-]+
//	value   = object | array | dstring | sstring | number | bareword
//	bareword= [A-Za-z_$] [A-Za-z0-9_$.@/-]*
//	number  = a JSON number (RFC 8259)
//
// Decisions:
//   - A bareword value that is true, false or null in any letter case (as
//     Gson accepts) is that literal, written in lower case; any other
//     bareword is a string: {t:abc} becomes {"t":"abc"}. Unquoted keys are
//     always strings, so {1:x} and {true:x} have the keys "1" and "true".
//   - A value that starts with '-' or a digit must be a complete JSON number
//     followed by a delimiter: 0x10, 1e, 01, 1., 1abc and - are rejected,
//     as are +1, .5, NaN-like forms starting with those characters.
//     (NaN and Infinity are plain barewords, so they become strings.)
//   - dstring is a JSON string; sstring is the same with single quotes. Both
//     accept the JSON escapes plus \' and raw control characters (escaped in
//     the output); a raw " in a single-quoted string is escaped. Unknown
//     escapes, short \u escapes and invalid UTF-8 are errors. \u escapes are
//     copied as written (a lone surrogate escape stays as it is, like
//     encoding/json accepts it).
//   - Comments (//, /* */, #), Gson's ';' and '=' / '=>' separators, a
//     leading byte order mark, empty elements and trailing commas
//     ({a:1,} and [1,]) are rejected.
//   - Nesting (objects and arrays) deeper than maxDepth is rejected; the
//     top-level object is depth 1, so maxDepth < 1 rejects every frame. The
//     scanner is iterative, so deep input costs no stack.
//
// If src already is strict JSON (any surrounding whitespace included) it is
// returned as is, with no allocation. Otherwise the result is a new slice
// in which only the relaxed tokens are rewritten, whitespace kept. The
// result always satisfies json.Valid, and Relaxed of a result returns it
// unchanged. Errors are *SyntaxError.
func Relaxed(src []byte, maxDepth int) ([]byte, error) {
	r := relaxer{src: src}
	if err := r.run(maxDepth); err != nil {
		return nil, err
	}
	if r.out == nil {
		return src, nil
	}
	return append(r.out, src[r.mark:]...), nil
}

// Scanner states.
const (
	rxWantValue  = iota // a value (after ':' or '[' or ',' in an array)
	rxWantKey           // an object key (after ',' in an object)
	rxWantColon         // the ':' after a key
	rxAfterValue        // ',' or the closing bracket, or the end of the frame
)

// relaxer scans src once. Tokens that are already strict JSON are not
// copied; out stays nil until the first token needing a rewrite, and mark
// is how much of src out already accounts for.
type relaxer struct {
	src  []byte
	out  []byte
	mark int
}

func (r *relaxer) run(maxDepth int) error {
	src := r.src
	n := len(src)
	i := rxSkipWS(src, 0)
	if i == n {
		return &SyntaxError{Offset: i, Msg: "empty input"}
	}
	if src[i] != '{' {
		if c := src[i]; c == '}' || c == ']' || c == ',' || c == ':' {
			return r.unexpected(i)
		}
		return &SyntaxError{Offset: i, Msg: "top-level value must be an object"}
	}

	// The container stack, one bit per level (1 = object); 256 levels fit
	// without allocating.
	var stackBuf [4]uint64
	stack := stackBuf[:]
	depth := 0
	inObject := func() bool { return stack[(depth-1)>>6]&(1<<((depth-1)&63)) != 0 }

	state := rxWantValue
	afterComma := false
	for {
		i = rxSkipWS(src, i)
		switch state {
		case rxWantValue:
			if i == n {
				return r.eof()
			}
			c := src[i]
			switch {
			case c == '{' || c == '[':
				depth++
				if depth > maxDepth {
					return &SyntaxError{Offset: i, Msg: fmt.Sprintf("nesting deeper than %d", maxDepth)}
				}
				w := (depth - 1) >> 6
				if w == len(stack) {
					stack = append(stack, 0)
				}
				bit := uint64(1) << ((depth - 1) & 63)
				if c == '{' {
					stack[w] |= bit
				} else {
					stack[w] &^= bit
				}
				i = rxSkipWS(src, i+1)
				switch {
				case c == '{' && i < n && src[i] == '}', c == '[' && i < n && src[i] == ']':
					depth--
					i++
					state = rxAfterValue
				case c == '{':
					state = rxWantKey
				default:
					state = rxWantValue
				}
				afterComma = false
				continue
			case c == '"' || c == '\'':
				j, err := r.str(i)
				if err != nil {
					return err
				}
				i = j
			case c == '-' || rxIsDigit(c):
				j, err := r.number(i)
				if err != nil {
					return err
				}
				i = j
			case rxIsWordStart(c):
				j, err := r.bareword(i)
				if err != nil {
					return err
				}
				i = j
			case afterComma && c == ']':
				return &SyntaxError{Offset: i, Msg: "trailing comma before ']'"}
			case c == '+':
				return &SyntaxError{Offset: i, Msg: "invalid number: leading '+'"}
			default:
				return r.unexpected(i)
			}
			state = rxAfterValue

		case rxWantKey:
			if i == n {
				return r.eof()
			}
			c := src[i]
			switch {
			case c == '"' || c == '\'':
				j, err := r.str(i)
				if err != nil {
					return err
				}
				i = j
			case rxIsWordByte(c):
				j := rxWordEnd(src, i)
				r.quote(i, j)
				i = j
			case c == '}' && afterComma:
				return &SyntaxError{Offset: i, Msg: "trailing comma before '}'"}
			default:
				return &SyntaxError{Offset: i, Msg: "expected object key, found " + r.describe(i)}
			}
			state = rxWantColon

		case rxWantColon:
			if i == n {
				return r.eof()
			}
			if src[i] != ':' {
				return &SyntaxError{Offset: i, Msg: fmt.Sprintf("expected ':' after object key, found %s", r.describe(i))}
			}
			i++
			state = rxWantValue
			afterComma = false

		case rxAfterValue:
			if depth == 0 {
				if i != n {
					return &SyntaxError{Offset: i, Msg: "trailing data"}
				}
				return nil
			}
			if i == n {
				return r.eof()
			}
			obj := inObject()
			switch c := src[i]; {
			case c == ',':
				i++
				afterComma = true
				if obj {
					state = rxWantKey
				} else {
					state = rxWantValue
				}
			case c == '}' && obj, c == ']' && !obj:
				i++
				depth--
			default:
				want := "',' or ']'"
				if obj {
					want = "',' or '}'"
				}
				return &SyntaxError{Offset: i, Msg: fmt.Sprintf("expected %s, found %s", want, r.describe(i))}
			}
		}
	}
}

// flush brings out up to src[start], which begins a token to rewrite; the
// caller appends the token's replacement to out and sets mark past it.
func (r *relaxer) flush(start int) {
	if r.out == nil {
		r.out = make([]byte, 0, len(r.src)+len(r.src)/4+16)
	}
	r.out = append(r.out, r.src[r.mark:start]...)
}

// quote replaces src[start:end], a word, with it in double quotes.
func (r *relaxer) quote(start, end int) {
	r.flush(start)
	r.out = append(r.out, '"')
	r.out = append(r.out, r.src[start:end]...)
	r.out = append(r.out, '"')
	r.mark = end
}

// str scans the string whose opening quote is at i and returns the offset
// just past its closing quote, rewriting it if it is not strict JSON.
func (r *relaxer) str(i int) (int, error) {
	src := r.src
	q := src[i]
	dirty := q == '\''
	j := i + 1
	for {
		if j >= len(src) {
			return 0, &SyntaxError{Offset: i, Msg: "unterminated string"}
		}
		c := src[j]
		switch {
		case c == q:
			j++
			if dirty {
				r.flush(i)
				r.out = rxAppendString(r.out, src[i+1:j-1])
				r.mark = j
			}
			return j, nil
		case c == '\\':
			if j+1 >= len(src) {
				return 0, &SyntaxError{Offset: i, Msg: "unterminated string"}
			}
			switch src[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case '\'':
				dirty = true
				j += 2
			case 'u':
				if j+6 > len(src) || !rxIsHex(src[j+2]) || !rxIsHex(src[j+3]) || !rxIsHex(src[j+4]) || !rxIsHex(src[j+5]) {
					return 0, &SyntaxError{Offset: j, Msg: "invalid \\u escape in string"}
				}
				j += 6
			default:
				return 0, &SyntaxError{Offset: j, Msg: "invalid escape " + r.describe(j+1) + " in string"}
			}
		case c < 0x20:
			dirty = true
			j++
		case c < utf8.RuneSelf:
			j++
		default:
			rn, size := utf8.DecodeRune(src[j:])
			if rn == utf8.RuneError && size == 1 {
				return 0, &SyntaxError{Offset: j, Msg: fmt.Sprintf("invalid UTF-8 byte 0x%02x in string", c)}
			}
			j += size
		}
	}
}

// rxAppendString appends body (the already validated inside of a single- or
// double-quoted string) as a strict JSON string.
func rxAppendString(out, body []byte) []byte {
	out = append(out, '"')
	for k := 0; k < len(body); k++ {
		c := body[k]
		switch {
		case c == '\\':
			e := body[k+1]
			switch e {
			case '\'':
				out = append(out, '\'')
				k++
			case 'u':
				out = append(out, body[k:k+6]...)
				k += 5
			default:
				out = append(out, '\\', e)
				k++
			}
		case c == '"':
			out = append(out, '\\', '"')
		case c < 0x20:
			switch c {
			case '\n':
				out = append(out, '\\', 'n')
			case '\r':
				out = append(out, '\\', 'r')
			case '\t':
				out = append(out, '\\', 't')
			case '\b':
				out = append(out, '\\', 'b')
			case '\f':
				out = append(out, '\\', 'f')
			default:
				const hex = "0123456789abcdef"
				out = append(out, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			}
		default:
			out = append(out, c)
		}
	}
	return append(out, '"')
}

// number scans the JSON number at i and returns the offset past it.
func (r *relaxer) number(i int) (int, error) {
	src := r.src
	n := len(src)
	bad := func() (int, error) {
		return 0, &SyntaxError{Offset: i, Msg: "invalid number"}
	}
	j := i
	if src[j] == '-' {
		j++
	}
	switch {
	case j < n && src[j] == '0':
		j++
	case j < n && rxIsDigit(src[j]):
		for j < n && rxIsDigit(src[j]) {
			j++
		}
	default:
		return bad()
	}
	if j < n && src[j] == '.' {
		j++
		if j == n || !rxIsDigit(src[j]) {
			return bad()
		}
		for j < n && rxIsDigit(src[j]) {
			j++
		}
	}
	if j < n && (src[j] == 'e' || src[j] == 'E') {
		j++
		if j < n && (src[j] == '+' || src[j] == '-') {
			j++
		}
		if j == n || !rxIsDigit(src[j]) {
			return bad()
		}
		for j < n && rxIsDigit(src[j]) {
			j++
		}
	}
	if j < n && !rxIsDelim(src[j]) {
		if rxIsWordByte(src[j]) || src[j] == '+' {
			return bad()
		}
		return 0, r.unexpected(j)
	}
	return j, nil
}

// bareword scans the unquoted value at i and returns the offset past it.
func (r *relaxer) bareword(i int) (int, error) {
	src := r.src
	j := rxValueEnd(src, i)
	if j < len(src) && !rxIsDelim(src[j]) {
		return 0, &SyntaxError{Offset: j, Msg: fmt.Sprintf("unexpected %s in unquoted string", r.describe(j))}
	}
	w := src[i:j]
	for _, kw := range [...]string{"true", "false", "null"} {
		if len(w) != len(kw) || !rxEqualFold(w, kw) {
			continue
		}
		if string(w) != kw {
			r.flush(i)
			r.out = append(r.out, kw...)
			r.mark = j
		}
		return j, nil
	}
	r.quote(i, j)
	return j, nil
}

func (r *relaxer) eof() error {
	return &SyntaxError{Offset: len(r.src), Msg: "unexpected end of input"}
}

func (r *relaxer) unexpected(i int) error {
	return &SyntaxError{Offset: i, Msg: "unexpected " + r.describe(i)}
}

// describe names the character at i for an error message.
func (r *relaxer) describe(i int) string {
	if i >= len(r.src) {
		return "end of input"
	}
	c := r.src[i]
	if c < utf8.RuneSelf {
		if c >= 0x20 && c < 0x7f {
			if c == '\'' {
				return `"'"`
			}
			return "'" + string(c) + "'"
		}
		return fmt.Sprintf("byte 0x%02x", c)
	}
	rn, size := utf8.DecodeRune(r.src[i:])
	if rn == utf8.RuneError && size == 1 {
		return fmt.Sprintf("invalid UTF-8 byte 0x%02x", c)
	}
	return fmt.Sprintf("%q (U+%04X)", rn, rn)
}

func rxSkipWS(src []byte, i int) int {
	for i < len(src) {
		switch src[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

func rxWordEnd(src []byte, i int) int {
	for i < len(src) && rxIsWordByte(src[i]) {
		i++
	}
	return i
}

func rxIsDigit(c byte) bool { return '0' <= c && c <= '9' }

func rxIsHex(c byte) bool {
	return rxIsDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func rxIsWordStart(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c == '$'
}

func rxIsWordByte(c byte) bool {
	return rxIsWordStart(c) || rxIsDigit(c) || c == '-' || c == '.'
}

// rxValueEnd is rxWordEnd for values, which may also hold '@' and '/' so an
// unquoted JID (r:bob@example.org/res) reads as a string.
func rxValueEnd(src []byte, i int) int {
	for i < len(src) && (rxIsWordByte(src[i]) || src[i] == '@' || src[i] == '/') {
		i++
	}
	return i
}

// rxIsDelim reports whether c may follow a key or scalar value.
func rxIsDelim(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', ',', ':', '}', ']':
		return true
	}
	return false
}

func rxEqualFold(b []byte, lower string) bool {
	for k := range b {
		if b[k]|0x20 != lower[k] {
			return false
		}
	}
	return true
}

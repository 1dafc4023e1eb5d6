package bridge

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// The gateway's native model is LEMP: a Message here is the LEMP `m` object,
// and its JSON form (strict, compact, no null fields) is the wire form. The
// XMPP side maps stanzas to and from these types (package mapping).

// Flag is a LEMP "0"/"1" flag (p, sc, pc). On input it accepts the strings
// "0"/"1", numbers and booleans; "" means absent, which every flag reads as "1".
type Flag string

const (
	FlagOff Flag = "0"
	FlagOn  Flag = "1"
)

// On reports the flag's value, absent meaning on.
func (f Flag) On() bool { return f != FlagOff }

// Norm returns "0" or "1".
func (f Flag) Norm() Flag {
	if f.On() {
		return FlagOn
	}
	return FlagOff
}

// UnmarshalJSON accepts "0", "1", "true", "false", 0, 1, true, false (and null = absent).
func (f *Flag) UnmarshalJSON(b []byte) error {
	switch string(b) { // the common forms, without allocating
	case `"1"`, "1", "true":
		*f = FlagOn
		return nil
	case `"0"`, "0", "false":
		*f = FlagOff
		return nil
	}
	b = bytes.TrimSpace(b)
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		s = str
	}
	switch s {
	case "null", "":
		*f = ""
	case "1", "true":
		*f = FlagOn
	case "0", "false":
		*f = FlagOff
	default:
		if n, err := strconv.ParseFloat(s, 64); err == nil {
			if n == 0 {
				*f = FlagOff
			} else {
				*f = FlagOn
			}
			return nil
		}
		return fmt.Errorf("flag: want \"0\" or \"1\", got %s", b)
	}
	return nil
}

// Millis is a time in milliseconds since the epoch. On input it accepts a
// number (fractions and exponents are truncated) or a quoted number.
type Millis int64

// UnmarshalJSON accepts 1763850000000, 1.76385e12, "1763850000000" and null.
func (m *Millis) UnmarshalJSON(b []byte) error {
	if n, ok := plainInt(b); ok { // the common form, without allocating
		*m = Millis(n)
		return nil
	}
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		b = []byte(s)
	}
	s := string(b)
	if s == "null" || s == "" {
		*m = 0
		return nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		*m = Millis(n)
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f > 9.2e18 || f < -9.2e18 {
		return fmt.Errorf("time: want milliseconds since the epoch, got %s", b)
	}
	*m = Millis(int64(f))
	return nil
}

// Ref names another message by id (sr, dm, nm).
type Ref struct {
	ID string `json:"id"`
}

// Message is the LEMP `m` object: a chat message, or a receipt (sr, dm, nm),
// or an error about a message (e).
type Message struct {
	ID string `json:"id,omitempty"`
	S  string `json:"s,omitempty"` // sender: always the authenticated user, never trusted from input
	R  string `json:"r,omitempty"` // receiver: username, Jabber bare JID, group id or broadcast id
	T  string `json:"t,omitempty"` // t text, p photo, v video, a audio, l location
	C  string `json:"c,omitempty"`
	ST Millis `json:"st,omitempty"`
	P  Flag   `json:"p,omitempty"`
	SC Flag   `json:"sc,omitempty"`
	PC Flag   `json:"pc,omitempty"`
	SR *Ref   `json:"sr,omitempty"`
	DM *Ref   `json:"dm,omitempty"`
	NM *Ref   `json:"nm,omitempty"`
	E  *Error `json:"e,omitempty"`
}

// Message types.
const (
	TypeText     = "t"
	TypePhoto    = "p"
	TypeVideo    = "v"
	TypeAudio    = "a"
	TypeLocation = "l"
)

// ValidType reports whether t is one of the five LEMP message types.
func ValidType(t string) bool {
	switch t {
	case TypeText, TypePhoto, TypeVideo, TypeAudio, TypeLocation:
		return true
	}
	return false
}

// GroupInfo is the `g` object of a group information push (README 2.2).
// M is a list for "a" and a single username for "b" and "l", as in the README.
type GroupInfo struct {
	T string `json:"t"`
	I string `json:"i,omitempty"`
	N string `json:"n,omitempty"`
	M any    `json:"m,omitempty"` // []string or string
	P string `json:"p,omitempty"`
	S string `json:"s,omitempty"` // who did it (extension)
}

// Info is the LEMP `i` object: a push from the server.
type Info struct {
	ID string     `json:"id,omitempty"`
	LI string     `json:"li,omitempty"`
	LO string     `json:"lo,omitempty"`
	G  *GroupInfo `json:"g,omitempty"`
}

// Frame is a whole server->client packet carrying a message or an info push.
type Frame struct {
	M *Message `json:"m,omitempty"`
	I *Info    `json:"i,omitempty"`
}

// AppendMessageFrame appends {"m":<m>} to b.
func AppendMessageFrame(b []byte, m *Message) []byte {
	b = append(b, `{"m":`...)
	b = m.AppendJSON(b)
	return append(b, '}')
}

// Encode returns the strict, compact JSON of f.
func (f Frame) Encode() []byte {
	if f.I == nil && f.M != nil {
		return AppendMessageFrame(make([]byte, 0, len(`{"m":}`)+f.M.JSONLen()), f.M)
	}
	b, err := json.Marshal(f)
	if err != nil {
		// Only strings, numbers and these structs: cannot fail.
		panic("bridge: encoding frame: " + err.Error())
	}
	return b
}

// plainInt parses b when it is only ASCII digits (at most 18 of them).
func plainInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

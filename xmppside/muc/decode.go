package muc

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	xmuc "mellium.im/xmpp/muc"
	"mellium.im/xmpp/stanza"

	"github.com/lempgw/lempgw/mapping"
)

// Limits on one decoded stanza: larger or deeper ones are refused by Decode.
const (
	MaxStanzaBytes = 256 << 10 // names, attribute values and text together
	maxTokens      = 20000
	maxDepth       = 32
)

// Namespaces the engine reads or writes besides mellium's muc constants.
const (
	nsDiscoInfo  = "http://jabber.org/protocol/disco#info"
	nsDiscoItems = "http://jabber.org/protocol/disco#items"
	nsPing       = "urn:xmpp:ping"
	nsData       = "jabber:x:data"
	nsAddress    = "http://jabber.org/protocol/address" // XEP-0033
	nsOccupantID = "urn:xmpp:occupant-id:0"             // XEP-0421
	nsOldDelay   = "jabber:x:delay"                     // XEP-0091
	nsStableID   = "http://jabber.org/protocol/muc#stable_id"
	nsSelfPing   = "http://jabber.org/protocol/muc#self-ping-optimization"
	nsRoomInfo   = "http://jabber.org/protocol/muc#roominfo"
)

// ErrStanza is wrapped by every error of Decode.
var ErrStanza = errors.New("muc: bad stanza")

// Stanza is one inbound stanza, decoded once by Decode for Service.Handle.
type Stanza struct {
	Name string // "message", "presence" or "iq"
	ID   string
	From string // as received: never empty
	To   string // as received
	Type string
	Lang string // xml:lang

	ns       string  // namespace of the stanza and its plain children
	children []child // the top-level children, in order
	msg      *mapping.Message
	subject  *string     // message <subject/>
	invites  []invite    // message <x xmlns=muc#user><invite to=.../>
	decline  bool        // message <x xmlns=muc#user><decline/>
	chat     bool        // message has a XEP-0085 chat state
	pres     *presenceIn // presence
	payload  *child      // iq: its one child
	bad      error       // iq get/set that can not be answered but with bad-request
}

// child is a top-level child element: its name and tokens (start to end).
type child struct {
	name xml.Name
	toks []xml.Token
}

type invite struct {
	to     string
	reason string
}

// presenceIn is what the engine reads of a presence.
type presenceIn struct {
	show    string
	status  string
	muc     bool // <x xmlns='http://jabber.org/protocol/muc'/>: a MUC join
	history historyReq
}

// historyReq is the <history/> of a join; -1 = not given.
type historyReq struct {
	maxChars, maxStanzas, seconds int
	since                         time.Time
}

// Decode reads one stanza: start is its start element, r the rest of it (as
// mellium's Handler gets them; r may go on past the stanza's end, which is
// not read). It returns an error wrapping ErrStanza for what is no message,
// presence or iq, has no from, is over MaxStanzaBytes or deeper than 32
// levels, or cannot be read; the caller counts and drops it, except that an
// IQ get or set must still be answered: BadRequest(start) gives the answer
// to write (nil when there is nobody to answer). An IQ get/set whose
// payload is malformed (none, two, or unreadable) decodes fine and Handle
// answers it with bad-request.
func Decode(start xml.StartElement, r xml.TokenReader) (st *Stanza, err error) {
	defer func() {
		if p := recover(); p != nil {
			st, err = nil, fmt.Errorf("%w: %v", ErrStanza, p)
		}
	}()
	st = &Stanza{Name: start.Name.Local, ns: start.Name.Space}
	switch st.Name {
	case "message", "presence", "iq":
	default:
		return nil, fmt.Errorf("%w: <%s/> is no stanza", ErrStanza, start.Name.Local)
	}
	switch st.ns {
	case "", "jabber:component:accept", "jabber:client", "jabber:server":
	default:
		return nil, fmt.Errorf("%w: stanza in namespace %q", ErrStanza, st.ns)
	}
	for _, a := range start.Attr {
		switch {
		case a.Name.Space == "" && a.Name.Local == "id":
			st.ID = a.Value
		case a.Name.Space == "" && a.Name.Local == "from":
			st.From = a.Value
		case a.Name.Space == "" && a.Name.Local == "to":
			st.To = a.Value
		case a.Name.Space == "" && a.Name.Local == "type":
			st.Type = a.Value
		case a.Name.Local == "lang" && (a.Name.Space == "xml" || a.Name.Space == xmlNS):
			st.Lang = a.Value
		}
	}
	if st.From == "" {
		return nil, fmt.Errorf("%w: <%s/> without from", ErrStanza, st.Name)
	}
	if len(st.ID) > mapping.MaxIDBytes || !utf8.ValidString(st.ID) {
		return nil, fmt.Errorf("%w: id over %d bytes or not UTF-8", ErrStanza, mapping.MaxIDBytes)
	}
	start = xml.CopyToken(start).(xml.StartElement)
	if st.children, err = readChildren(start, r); err != nil {
		return nil, err
	}
	switch st.Name {
	case "message":
		err = st.decodeMessage(start)
	case "presence":
		err = st.decodePresence(start)
	case "iq":
		st.decodeIQ()
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStanza, err)
	}
	return st, nil
}

const xmlNS = "http://www.w3.org/XML/1998/namespace"

// BadRequest returns the answer to an IQ get or set that Decode refused:
// bad-request from its to, to its from. Nil for anything else, or when it
// has no from (nobody to answer).
func BadRequest(start xml.StartElement) any {
	if start.Name.Local != "iq" {
		return nil
	}
	var id, from, to, typ string
	for _, a := range start.Attr {
		if a.Name.Space != "" {
			continue
		}
		switch a.Name.Local {
		case "id":
			id = a.Value
		case "from":
			from = a.Value
		case "to":
			to = a.Value
		case "type":
			typ = a.Value
		}
	}
	if from == "" || (typ != "get" && typ != "set") {
		return nil
	}
	return iqOut{ID: id, From: to, To: from, Type: "error", Payload: errorOf(stanza.Modify, stanza.BadRequest, "malformed request")}
}

// readChildren reads the stanza up to its end element, returning its
// top-level children. Comments, processing instructions and directives are
// dropped.
func readChildren(start xml.StartElement, r xml.TokenReader) ([]child, error) {
	var (
		out   []child
		cur   *child
		depth = 1
		size  = len(start.Name.Local) + attrSize(start.Attr)
		n     int
	)
	for depth > 0 {
		t, err := r.Token()
		if n++; n > maxTokens {
			return nil, fmt.Errorf("%w: more than %d tokens", ErrStanza, maxTokens)
		}
		if t == nil && err != nil {
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%w: stanza ends early", ErrStanza)
			}
			return nil, fmt.Errorf("%w: %v", ErrStanza, err)
		}
		if t == nil {
			continue
		}
		switch tok := t.(type) {
		case xml.StartElement:
			if depth++; depth > maxDepth {
				return nil, fmt.Errorf("%w: nested deeper than %d", ErrStanza, maxDepth)
			}
			size += len(tok.Name.Space) + len(tok.Name.Local) + attrSize(tok.Attr)
			tok = xml.CopyToken(tok).(xml.StartElement)
			if depth == 2 {
				out = append(out, child{name: tok.Name})
				cur = &out[len(out)-1]
			}
			cur.toks = append(cur.toks, tok)
		case xml.EndElement:
			depth--
			if depth == 0 {
				if tok.Name.Local != start.Name.Local {
					return nil, fmt.Errorf("%w: end element </%s> does not match", ErrStanza, tok.Name.Local)
				}
				break
			}
			cur.toks = append(cur.toks, tok)
			if depth == 1 {
				cur = nil
			}
		case xml.CharData:
			size += len(tok)
			if cur != nil {
				cur.toks = append(cur.toks, tok.Copy())
			}
		}
		if size > MaxStanzaBytes {
			return nil, fmt.Errorf("%w: over %d bytes", ErrStanza, MaxStanzaBytes)
		}
	}
	return out, nil
}

func attrSize(as []xml.Attr) int {
	n := 0
	for _, a := range as {
		n += len(a.Name.Space) + len(a.Name.Local) + len(a.Value)
	}
	return n
}

// sliceReader reads tokens from a slice, copies of them (a decoder may
// change a start element's attributes in place).
type sliceReader struct {
	toks []xml.Token
	i    int
}

func (r *sliceReader) Token() (xml.Token, error) {
	if r.i >= len(r.toks) {
		return nil, io.EOF
	}
	t := r.toks[r.i]
	r.i++
	return xml.CopyToken(t), nil
}

// decoder returns a decoder of the whole stanza (start, children, end).
func (st *Stanza) decoder(start xml.StartElement) *xml.Decoder {
	toks := []xml.Token{start}
	for _, c := range st.children {
		toks = append(toks, c.toks...)
	}
	toks = append(toks, start.End())
	return xml.NewTokenDecoder(&sliceReader{toks: toks})
}

// childDecoder returns a decoder of one child.
func (c *child) decoder() *xml.Decoder { return xml.NewTokenDecoder(&sliceReader{toks: c.toks}) }

// plain reports whether a child name is in the stanza's own namespace.
func (st *Stanza) plain(n xml.Name, local string) bool {
	return n.Local == local && (n.Space == st.ns || n.Space == "")
}

func (st *Stanza) decodeMessage(start xml.StartElement) error {
	var m mapping.Message
	if err := st.decoder(start).Decode(&m); err != nil {
		return err
	}
	st.msg = &m
	for i := range st.children {
		c := &st.children[i]
		switch {
		case st.plain(c.name, "subject"):
			if st.subject == nil {
				var s struct {
					Text string `xml:",chardata"`
				}
				if err := c.decoder().Decode(&s); err != nil {
					return err
				}
				st.subject = &s.Text
			}
		case c.name.Space == mapping.NSChatStates:
			st.chat = true
		case c.name.Space == xmuc.NSUser && c.name.Local == "x":
			var x struct {
				Invites []struct {
					To     string `xml:"to,attr"`
					Reason string `xml:"reason"`
				} `xml:"invite"`
				Decline *struct{} `xml:"decline"`
			}
			if err := c.decoder().Decode(&x); err != nil {
				return err
			}
			for _, i := range x.Invites {
				st.invites = append(st.invites, invite{to: i.To, reason: i.Reason})
			}
			st.decline = st.decline || x.Decline != nil
		}
	}
	return nil
}

func (st *Stanza) decodePresence(start xml.StartElement) error {
	p := &presenceIn{history: historyReq{maxChars: -1, maxStanzas: -1, seconds: -1}}
	for i := range st.children {
		c := &st.children[i]
		switch {
		case st.plain(c.name, "show"):
			var s struct {
				Text string `xml:",chardata"`
			}
			if err := c.decoder().Decode(&s); err != nil {
				return err
			}
			switch v := strings.TrimSpace(s.Text); v {
			case "away", "chat", "dnd", "xa":
				p.show = v
			}
		case st.plain(c.name, "status"):
			var s struct {
				Lang string `xml:"http://www.w3.org/XML/1998/namespace lang,attr"`
				Text string `xml:",chardata"`
			}
			if err := c.decoder().Decode(&s); err != nil {
				return err
			}
			if p.status == "" || s.Lang == "" {
				p.status = truncate(s.Text, maxStatusBytes)
			}
		case c.name.Space == xmuc.NS && c.name.Local == "x":
			p.muc = true
			var x struct {
				History *struct {
					MaxChars   string `xml:"maxchars,attr"`
					MaxStanzas string `xml:"maxstanzas,attr"`
					Seconds    string `xml:"seconds,attr"`
					Since      string `xml:"since,attr"`
				} `xml:"history"`
			}
			if err := c.decoder().Decode(&x); err != nil {
				return err
			}
			if h := x.History; h != nil {
				p.history.maxChars = count(h.MaxChars)
				p.history.maxStanzas = count(h.MaxStanzas)
				p.history.seconds = count(h.Seconds)
				if t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(h.Since)); err == nil {
					p.history.since = t
				}
			}
		}
	}
	st.pres = p
	return nil
}

// count reads a non-negative count attribute; -1 when absent or invalid.
func count(s string) int {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 {
		return -1
	}
	return n
}

func (st *Stanza) decodeIQ() {
	if st.Type != "get" && st.Type != "set" {
		return
	}
	var payloads []*child
	for i := range st.children {
		if c := &st.children[i]; !st.plain(c.name, "error") {
			payloads = append(payloads, c)
		}
	}
	if len(payloads) != 1 {
		st.bad = fmt.Errorf("an IQ %s has %d payloads, not one", st.Type, len(payloads))
		return
	}
	st.payload = payloads[0]
}

// truncate cuts s to at most n bytes without splitting a character.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

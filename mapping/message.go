package mapping

import (
	"encoding/xml"
	"unicode/utf8"

	"mellium.im/xmpp/stanza"
)

// Namespaces of the message payloads the gateway reads and writes.
const (
	NSOOB           = "jabber:x:oob"                          // XEP-0066
	NSGeoloc        = "http://jabber.org/protocol/geoloc"     // XEP-0080
	NSReceipts      = "urn:xmpp:receipts"                     // XEP-0184
	NSDelay         = "urn:xmpp:delay"                        // XEP-0203
	NSMarkers       = "urn:xmpp:chat-markers:0"               // XEP-0333
	NSHints         = "urn:xmpp:hints"                        // XEP-0334
	NSSID           = "urn:xmpp:sid:0"                        // XEP-0359
	NSChatStates    = "http://jabber.org/protocol/chatstates" // XEP-0085 (not mapped)
	MessageTypeChat = "chat"
)

// Message is a <message/> stanza with the payloads the gateway maps. It
// marshals and unmarshals with encoding/xml; unknown children (chat states,
// encryption, ...) are skipped when unmarshalling. The element name matches
// a message in any namespace (jabber:client, jabber:component:accept).
type Message struct {
	XMLName xml.Name `xml:"message"`
	ID      string   `xml:"id,attr,omitempty"`
	From    string   `xml:"from,attr,omitempty"`
	To      string   `xml:"to,attr,omitempty"`
	Type    string   `xml:"type,attr,omitempty"`

	Body      []Body        `xml:"body,omitempty"`
	OriginID  *OriginID     `xml:"urn:xmpp:sid:0 origin-id"`
	StanzaIDs []StanzaID    `xml:"urn:xmpp:sid:0 stanza-id,omitempty"`
	OOB       *OOB          `xml:"jabber:x:oob x"`
	Geoloc    *Geoloc       `xml:"http://jabber.org/protocol/geoloc geoloc"`
	Delay     *Delay        `xml:"urn:xmpp:delay delay"`
	NoStore   *Empty        `xml:"urn:xmpp:hints no-store"`
	Store     *Empty        `xml:"urn:xmpp:hints store"`
	Request   *Empty        `xml:"urn:xmpp:receipts request"`
	Received  *Ref          `xml:"urn:xmpp:receipts received"`
	Markable  *Empty        `xml:"urn:xmpp:chat-markers:0 markable"`
	MarkRecv  *Ref          `xml:"urn:xmpp:chat-markers:0 received"`
	Displayed *Ref          `xml:"urn:xmpp:chat-markers:0 displayed"`
	Acked     *Ref          `xml:"urn:xmpp:chat-markers:0 acknowledged"`
	Error     *stanza.Error `xml:"error"` // decoded leniently: see UnmarshalXML
}

// Body is a <body/>, with its language when it has one.
type Body struct {
	Lang string `xml:"http://www.w3.org/XML/1998/namespace lang,attr,omitempty"`
	Text string `xml:",chardata"`
}

// OriginID is the XEP-0359 origin-id: the id the sender chose.
type OriginID struct {
	ID string `xml:"id,attr"`
}

// StanzaID is the XEP-0359 stanza-id a server or room assigned (read only).
type StanzaID struct {
	ID string `xml:"id,attr"`
	By string `xml:"by,attr,omitempty"`
}

// OOB is the XEP-0066 out-of-band data: a file's URL.
type OOB struct {
	URL  string `xml:"url"`
	Desc string `xml:"desc,omitempty"`
}

// Geoloc is the XEP-0080 location: latitude and longitude in decimal degrees
// (kept as text, checked by FromStanza).
type Geoloc struct {
	Lat string `xml:"lat,omitempty"`
	Lon string `xml:"lon,omitempty"`
}

// Delay is the XEP-0203 delayed delivery stamp (XEP-0082 DateTime).
type Delay struct {
	From  string `xml:"from,attr,omitempty"`
	Stamp string `xml:"stamp,attr"`
}

// Ref names another message by id: a XEP-0184 receipt or a XEP-0333 marker.
type Ref struct {
	ID string `xml:"id,attr"`
}

// Empty is an element without content (hints, request, markable).
type Empty struct{}

// BodyText returns the text of the body without a language, else of the
// first body; ok is false when there is no body.
func (m *Message) BodyText() (text string, ok bool) {
	for _, b := range m.Body {
		if b.Lang == "" {
			return b.Text, true
		}
	}
	if len(m.Body) > 0 {
		return m.Body[0].Text, true
	}
	return "", false
}

// ErrorReply returns the error answer to m (RFC 6120 8.3): addresses
// swapped, same id, type "error", carrying e.
func ErrorReply(m *Message, e stanza.Error) Message {
	return Message{ID: m.ID, From: m.To, To: m.From, Type: "error", Error: &e}
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

package mapping

import (
	"encoding/xml"
	"fmt"
	"strings"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/lempgw/lempgw/bridge"
)

// Presence (RFC 6121) <-> the core's bridge.Presence.
//
//	bridge.Presence                    <presence/>
//	T available, Status                (no type) <status>Status</status>, from the full JID
//	T unavailable, Status, At          type="unavailable" <status/>, XEP-0203 <delay stamp=At/> (last offline)
//	T subscribe, Nick                  type="subscribe" + XEP-0172 <nick/>, from the bare JID
//	T subscribed / unsubscribe /       type="subscribed" / "unsubscribe" / "unsubscribed",
//	  unsubscribed                       from the bare JID
//	T probe                            type="probe", from the bare JID
//	(inbound) Photo                    XEP-0153 <x xmlns="vcard-temp:x:update"><photo>hash</photo></x>
//
// <show/> and <priority/> are read and not mapped: LEMP only knows online
// (li) and offline (lo).

// Namespaces of the presence payloads.
const (
	NSNick        = "http://jabber.org/protocol/nick" // XEP-0172
	NSVCardUpdate = "vcard-temp:x:update"             // XEP-0153
)

// MaxStatusBytes bounds a status text taken from a presence (longer ones are
// cut, on a character boundary): the LEMP profile limit.
const MaxStatusBytes = bridge.MaxProfileBytes

// maxPhotoHash bounds a XEP-0153 photo hash (a SHA-1 is 40 hex digits).
const maxPhotoHash = 128

// Presence is a <presence/> stanza with the payloads the gateway maps. Like
// Message it matches a presence in any namespace and skips unknown children;
// its <error/> is read leniently.
type Presence struct {
	XMLName  xml.Name      `xml:"presence"`
	ID       string        `xml:"id,attr,omitempty"`
	From     string        `xml:"from,attr,omitempty"`
	To       string        `xml:"to,attr,omitempty"`
	Type     string        `xml:"type,attr,omitempty"`
	Show     string        `xml:"show,omitempty"`
	Status   []Body        `xml:"status,omitempty"`
	Priority string        `xml:"priority,omitempty"`
	Nick     *Nick         `xml:"http://jabber.org/protocol/nick nick"`
	Delay    *Delay        `xml:"urn:xmpp:delay delay"`
	Update   *VCardUpdate  `xml:"vcard-temp:x:update x"`
	Error    *stanza.Error `xml:"error"`
}

// Nick is the XEP-0172 user nickname.
type Nick struct {
	Text string `xml:",chardata"`
}

// VCardUpdate is the XEP-0153 avatar announcement: Photo nil means the
// client is not ready to say, "" means no avatar, else the SHA-1 (hex) of
// the avatar.
type VCardUpdate struct {
	Photo *string `xml:"photo"`
}

// StatusText returns the status without a language, else the first one.
func (p *Presence) StatusText() string {
	for _, s := range p.Status {
		if s.Lang == "" {
			return s.Text
		}
	}
	if len(p.Status) > 0 {
		return p.Status[0].Text
	}
	return ""
}

// UnmarshalXML decodes a presence like encoding/xml would from the struct
// tags, except that its <error/> is read leniently (see Message).
func (p *Presence) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	type Fields Presence
	var w struct {
		Fields
		Err *errorElement `xml:"error"`
	}
	if err := d.DecodeElement(&w, &start); err != nil {
		return err
	}
	*p = Presence(w.Fields)
	p.XMLName = start.Name
	if w.Err != nil {
		se := w.Err.stanzaError()
		p.Error = &se
	}
	return nil
}

// presenceTypes are the RFC 6121 presence types the gateway maps, by their
// stanza type attribute ("" is available).
var presenceTypes = map[string]bridge.PresenceType{
	"":             bridge.PresenceAvailable,
	"unavailable":  bridge.PresenceUnavailable,
	"subscribe":    bridge.PresenceSubscribe,
	"subscribed":   bridge.PresenceSubscribed,
	"unsubscribe":  bridge.PresenceUnsubscribe,
	"unsubscribed": bridge.PresenceUnsubscribed,
	"probe":        bridge.PresenceProbe,
}

// FromPresence maps a presence from a Jabber user to the core's terms; the
// caller sets S, Res and R from the stanza's addresses.
//
//   - T from the type attribute; type "error" and unknown types are errors
//     (the caller drops an error presence; it answers an unknown type with
//     bad-request);
//   - Status (available and unavailable only) is the status without a
//     language, else the first, cut to MaxStatusBytes;
//   - At (available and unavailable only) is the XEP-0203 delay stamp, else
//     0 (now); a garbage stamp reads as 0 (a presence is not refused for it);
//   - Photo is the XEP-0153 hash, lower case, when it is hex of a sane length.
//
// Errors wrap ErrStanza. It never panics.
func FromPresence(s *Presence, now time.Time) (*bridge.Presence, error) {
	if s == nil {
		return nil, fmt.Errorf("%w: no stanza", ErrStanza)
	}
	if s.Type == "error" {
		return nil, fmt.Errorf("%w: an error presence has nothing to map", ErrStanza)
	}
	t, ok := presenceTypes[s.Type]
	if !ok {
		return nil, fmt.Errorf("%w: unknown presence type %q", ErrStanza, truncate(s.Type, 64))
	}
	if err := checkID("id", s.ID); err != nil {
		return nil, err
	}
	p := &bridge.Presence{ID: s.ID, T: t}
	if t != bridge.PresenceAvailable && t != bridge.PresenceUnavailable {
		return p, nil
	}
	p.Status = truncate(strings.ToValidUTF8(s.StatusText(), "\uFFFD"), MaxStatusBytes)
	if s.Delay != nil {
		if at, err := stampOf(s.Delay, now); err == nil && at > 0 {
			p.At = at
		}
	}
	if s.Update != nil && s.Update.Photo != nil {
		p.Photo = photoHash(*s.Update.Photo)
	}
	return p, nil
}

// photoHash returns h trimmed and lower case when it is hex of a sane
// length, else "".
func photoHash(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	if len(h) > maxPhotoHash {
		return ""
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return ""
		}
	}
	return h
}

// ToPresence maps a presence of a local user (from: its full JID) for a
// Jabber user (to). Subscription stanzas and probes come from the bare JID
// (they are about the account, RFC 6121 3 and 4.3), availability from the
// full JID. It is total: every bridge.Presence has a stanza (an unknown T is
// sent as available).
func ToPresence(p *bridge.Presence, from, to jid.JID) Presence {
	s := Presence{ID: p.ID, From: from.Bare().String(), To: to.String()}
	switch p.T {
	case bridge.PresenceUnavailable:
		s.Type, s.From = "unavailable", from.String()
		if p.At > 0 {
			s.Delay = &Delay{From: from.Domainpart(), Stamp: time.UnixMilli(int64(p.At)).UTC().Format(StampLayout)}
		}
	case bridge.PresenceSubscribe:
		s.Type = "subscribe"
		if p.Nick != "" {
			s.Nick = &Nick{Text: p.Nick}
		}
	case bridge.PresenceSubscribed, bridge.PresenceUnsubscribe, bridge.PresenceUnsubscribed, bridge.PresenceProbe:
		s.Type = string(p.T)
	default:
		s.From = from.String()
	}
	if p.Status != "" && (s.Type == "" || s.Type == "unavailable") {
		s.Status = []Body{{Text: p.Status}}
	}
	return s
}

// PresenceErrorReply returns the error answer to p (RFC 6120 8.3):
// addresses swapped, same id, type "error", carrying e.
func PresenceErrorReply(p *Presence, e stanza.Error) Presence {
	return Presence{ID: p.ID, From: p.To, To: p.From, Type: "error", Error: &e}
}

package muc

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"

	xmuc "mellium.im/xmpp/muc"
	"mellium.im/xmpp/stanza"

	"github.com/lempgw/lempgw/mapping"
)

// The stanzas the engine writes. Addresses are strings: an error answer
// goes back to the raw from it answers, which need not parse.

type presenceOut struct {
	XMLName xml.Name      `xml:"presence"`
	ID      string        `xml:"id,attr,omitempty"`
	From    string        `xml:"from,attr"`
	To      string        `xml:"to,attr"`
	Type    string        `xml:"type,attr,omitempty"`
	Show    string        `xml:"show,omitempty"`
	Status  string        `xml:"status,omitempty"`
	MUC     *mucX         `xml:"http://jabber.org/protocol/muc x"`
	User    *userX        `xml:"http://jabber.org/protocol/muc#user x"`
	Error   *stanza.Error `xml:"error"`
}

type mucX struct{}

type userX struct {
	Invite  *inviteOut  `xml:"invite"`
	Items   []itemOut   `xml:"item"`
	Status  []statusOut `xml:"status"`
	Destroy *destroyOut `xml:"destroy"`
}

type itemOut struct {
	Affiliation string    `xml:"affiliation,attr,omitempty"`
	Role        string    `xml:"role,attr,omitempty"`
	JID         string    `xml:"jid,attr,omitempty"`
	Nick        string    `xml:"nick,attr,omitempty"`
	Actor       *actorOut `xml:"actor"`
	Reason      string    `xml:"reason,omitempty"`
}

type actorOut struct {
	Nick string `xml:"nick,attr,omitempty"`
	JID  string `xml:"jid,attr,omitempty"`
}

type statusOut struct {
	Code string `xml:"code,attr"`
}

type destroyOut struct {
	Reason string `xml:"reason,omitempty"`
}

type inviteOut struct {
	From   string `xml:"from,attr,omitempty"`
	Reason string `xml:"reason,omitempty"`
}

func statuses(codes ...string) []statusOut {
	var out []statusOut
	for _, c := range codes {
		if c != "" {
			out = append(out, statusOut{Code: c})
		}
	}
	return out
}

type textElem struct {
	Text string `xml:",chardata"`
}

type messageOut struct {
	XMLName   xml.Name          `xml:"message"`
	ID        string            `xml:"id,attr,omitempty"`
	From      string            `xml:"from,attr"`
	To        string            `xml:"to,attr"`
	Type      string            `xml:"type,attr,omitempty"`
	Subject   *textElem         `xml:"subject"`
	Body      []mapping.Body    `xml:"body,omitempty"`
	OOB       *mapping.OOB      `xml:"jabber:x:oob x"`
	Geoloc    *mapping.Geoloc   `xml:"http://jabber.org/protocol/geoloc geoloc"`
	NoStore   *mapping.Empty    `xml:"urn:xmpp:hints no-store"`
	Delay     *mapping.Delay    `xml:"urn:xmpp:delay delay"`
	Addresses *addressesOut     `xml:"http://jabber.org/protocol/address addresses"`
	User      *userX            `xml:"http://jabber.org/protocol/muc#user x"`
	Conf      *confX            `xml:"jabber:x:conference x"`
	OriginID  *mapping.OriginID `xml:"urn:xmpp:sid:0 origin-id"`
	StanzaID  *mapping.StanzaID `xml:"urn:xmpp:sid:0 stanza-id"`
	Error     *stanza.Error     `xml:"error"`
}

// addressesOut is the XEP-0033 ofrom of a history message: its author's
// real JID (the room is non-anonymous).
type addressesOut struct {
	Address []addressOut `xml:"address"`
}

type addressOut struct {
	Type string `xml:"type,attr"`
	JID  string `xml:"jid,attr"`
}

// confX is a XEP-0249 direct invitation.
type confX struct {
	JID    string `xml:"jid,attr"`
	Reason string `xml:"reason,attr,omitempty"`
}

type iqOut struct {
	XMLName xml.Name `xml:"iq"`
	ID      string   `xml:"id,attr"`
	From    string   `xml:"from,attr,omitempty"`
	To      string   `xml:"to,attr"`
	Type    string   `xml:"type,attr"`
	Payload any
}

type discoIdentity struct {
	XMLName  xml.Name `xml:"identity"`
	Category string   `xml:"category,attr"`
	Type     string   `xml:"type,attr"`
	Name     string   `xml:"name,attr,omitempty"`
}

type discoFeature struct {
	XMLName xml.Name `xml:"feature"`
	Var     string   `xml:"var,attr"`
}

type discoInfo struct {
	XMLName    xml.Name `xml:"http://jabber.org/protocol/disco#info query"`
	Node       string   `xml:"node,attr,omitempty"`
	Identities []discoIdentity
	Features   []discoFeature
	Form       *dataForm
}

type discoItems struct {
	XMLName xml.Name    `xml:"http://jabber.org/protocol/disco#items query"`
	Node    string      `xml:"node,attr,omitempty"`
	Items   []discoItem `xml:"item"`
}

type discoItem struct {
	JID  string `xml:"jid,attr"`
	Name string `xml:"name,attr,omitempty"`
}

type dataForm struct {
	XMLName xml.Name    `xml:"jabber:x:data x"`
	Type    string      `xml:"type,attr"`
	Fields  []formField `xml:"field"`
}

type formField struct {
	Var    string   `xml:"var,attr"`
	Type   string   `xml:"type,attr,omitempty"`
	Label  string   `xml:"label,attr,omitempty"`
	Values []string `xml:"value"`
}

type adminQueryOut struct {
	XMLName xml.Name  `xml:"http://jabber.org/protocol/muc#admin query"`
	Items   []itemOut `xml:"item"`
}

func features(vars ...string) []discoFeature {
	out := make([]discoFeature, len(vars))
	for i, v := range vars {
		out[i] = discoFeature{Var: v}
	}
	return out
}

// errorOf returns a stanza error with an optional text.
func errorOf(typ stanza.ErrorType, cond stanza.Condition, text string) *stanza.Error {
	e := &stanza.Error{Type: typ, Condition: cond}
	if text != "" {
		e.Text = map[string]string{"": text}
	}
	return e
}

// newID returns a random stanza id.
func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// stanzaID is the XEP-0359 stanza-id of a room message: derived from its
// author and LEMP id, so that the live copy, a copy sent again and the
// history copy of one message carry the same one.
func stanzaID(author, id string) string {
	h := sha256.Sum256([]byte(author + "\x00" + id))
	return base64.RawURLEncoding.EncodeToString(h[:15])
}

// reflected is an occupant's groupchat message as the room sends it on: the
// sender's own payloads, copied token by token, from the occupant's room
// JID, with the room's stanza-id.
type reflected struct {
	id, from, to string
	ns           string // the stanza's namespace: its plain children are written without one
	children     []child
	stanzaID     *mapping.StanzaID
}

// MarshalXML writes the message. The children's namespaces are written from
// their names (xmlns attributes of the input are dropped), a child in the
// stanza's own namespace inheriting the stream's.
func (m reflected) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	start := xml.StartElement{Name: xml.Name{Local: "message"}}
	for _, a := range [][2]string{{"id", m.id}, {"from", m.from}, {"to", m.to}, {"type", "groupchat"}} {
		if a[1] != "" {
			start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: a[0]}, Value: a[1]})
		}
	}
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	for _, c := range m.children {
		if err := m.copyChild(e, c.toks); err != nil {
			return err
		}
	}
	if m.stanzaID != nil {
		if err := e.EncodeElement(m.stanzaID, xml.StartElement{Name: xml.Name{Space: mapping.NSSID, Local: "stanza-id"}}); err != nil {
			return err
		}
	}
	return e.EncodeToken(start.End())
}

func (m reflected) copyChild(e *xml.Encoder, toks []xml.Token) error {
	type level struct {
		name    xml.Name // as written
		plainNS bool     // the default namespace in scope is the stanza's
	}
	stack := []level{{plainNS: true}}
	for _, t := range toks {
		switch t := t.(type) {
		case xml.StartElement:
			parent := stack[len(stack)-1]
			out := xml.StartElement{Name: t.Name}
			for _, a := range t.Attr {
				if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") || a.Name.Local == "" {
					continue
				}
				out.Attr = append(out.Attr, a)
			}
			lv := level{}
			if t.Name.Space == m.ns || t.Name.Space == "" {
				lv.plainNS = true
				switch {
				case parent.plainNS:
					out.Name.Space = ""
				case m.ns != "":
					out.Name.Space = m.ns
				default:
					out.Name.Space = ""
					out.Attr = append(out.Attr, xml.Attr{Name: xml.Name{Local: "xmlns"}})
				}
			}
			lv.name = out.Name
			stack = append(stack, lv)
			if err := e.EncodeToken(out); err != nil {
				return err
			}
		case xml.EndElement:
			if len(stack) < 2 {
				continue
			}
			lv := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if err := e.EncodeToken(xml.EndElement{Name: lv.name}); err != nil {
				return err
			}
		case xml.CharData:
			if err := e.EncodeToken(t); err != nil {
				return err
			}
		}
	}
	return nil
}

var _ xml.Marshaler = reflected{}

// namespaces used in outputs, from mellium's muc package.
var (
	nsMUC   = xmuc.NS
	nsUser  = xmuc.NSUser
	nsAdmin = xmuc.NSAdmin
	nsOwner = xmuc.NSOwner
)

// xmlLen is the length of v's XML (for <history maxchars/>).
func xmlLen(v any) int {
	b, err := xml.Marshal(v)
	if err != nil {
		return 0
	}
	return len(b)
}

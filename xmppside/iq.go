package xmppside

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// Namespaces the component answers or uses.
const (
	nsPing      = "urn:xmpp:ping"
	nsTime      = "urn:xmpp:time"
	nsDiscoInfo = "http://jabber.org/protocol/disco#info"
	nsDiscoItem = "http://jabber.org/protocol/disco#items"
	nsReceipts  = "urn:xmpp:receipts"
	nsMarkers   = "urn:xmpp:chat-markers:0"
	nsLast      = "jabber:iq:last"
	nsVCard     = "vcard-temp"
)

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func iqHeader(from, to jid.JID, typ, id string) stanza.IQ {
	return stanza.IQ{ID: id, From: from, To: to, Type: stanza.IQType(typ)}
}

func pingPayload() xml.TokenReader {
	return xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: nsPing, Local: "ping"}})
}

// iqOut is an IQ we write. Addresses are the raw strings of the request, so
// a JID mellium would refuse to parse never breaks an answer.
type iqOut struct {
	XMLName xml.Name `xml:"iq"`
	ID      string   `xml:"id,attr"`
	From    string   `xml:"from,attr"`
	To      string   `xml:"to,attr,omitempty"`
	Type    string   `xml:"type,attr"`
	Payload any
}

// iqIn is an IQ read from the stream: its attributes and the name of its
// first child (the payload namespace decides who answers).
type iqIn struct {
	XMLName xml.Name
	ID      string `xml:"id,attr"`
	From    string `xml:"from,attr"`
	To      string `xml:"to,attr"`
	Type    string `xml:"type,attr"`
	Payload struct {
		XMLName xml.Name
	} `xml:",any"`
}

func (iq *iqIn) result(payload any) iqOut {
	return iqOut{ID: iq.ID, From: iq.To, To: iq.From, Type: "result", Payload: payload}
}

func (iq *iqIn) fail(typ stanza.ErrorType, cond stanza.Condition) iqOut {
	return iqOut{ID: iq.ID, From: iq.To, To: iq.From, Type: "error",
		Payload: stanza.Error{Type: typ, Condition: cond}}
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
}

type discoItems struct {
	XMLName xml.Name `xml:"http://jabber.org/protocol/disco#items query"`
	Node    string   `xml:"node,attr,omitempty"`
}

func features(vars ...string) []discoFeature {
	out := make([]discoFeature, len(vars))
	for i, v := range vars {
		out[i] = discoFeature{Var: v}
	}
	return out
}

// componentInfo is the gateway's own disco#info (XEP-0030, XEP-0100 identity).
func componentInfo() discoInfo {
	return discoInfo{
		Identities: []discoIdentity{{Category: "gateway", Type: "lemp", Name: "lempgw"}},
		Features:   features(nsDiscoInfo, nsDiscoItem, nsPing, nsTime, "jabber:iq:version"),
	}
}

// userInfo is a LEMP user's disco#info.
func userInfo() discoInfo {
	return discoInfo{
		Identities: []discoIdentity{{Category: "account", Type: "registered"}},
		Features:   features(nsDiscoInfo, nsPing, nsTime, nsReceipts, nsMarkers, nsLast, nsVCard),
	}
}

type timeResult struct {
	XMLName xml.Name `xml:"urn:xmpp:time time"`
	TZO     string   `xml:"tzo"`
	UTC     string   `xml:"utc"`
}

func entityTime(now time.Time) timeResult {
	return timeResult{TZO: now.Format("-07:00"), UTC: now.UTC().Format("2006-01-02T15:04:05.000Z")}
}

type versionResult struct {
	XMLName xml.Name `xml:"jabber:iq:version query"`
	Name    string   `xml:"name"`
	Version string   `xml:"version"`
}

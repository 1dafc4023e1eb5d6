package mapping

import (
	"time"

	"mellium.im/xmpp/jid"

	"github.com/lempgw/lempgw/bridge"
)

// StampLayout is the XEP-0082 DateTime layout of the delay stamps written:
// UTC, RFC 3339 with milliseconds.
const StampLayout = "2006-01-02T15:04:05.000Z"

// ToStanza maps a LEMP message from a local user (from: its full JID) to a
// Jabber user (to) onto a chat <message/>. It is total: every LEMP message
// has a stanza.
//
//   - id and XEP-0359 origin-id are the LEMP id;
//   - t "t": body = content; "p", "v", "a": body = URL and XEP-0066 OOB url
//     = URL; "l": content "lat,lon" gives XEP-0080 geoloc and body
//     "geo:lat,lon" (content that is no valid "lat,lon" is sent as text);
//     any other t is sent as text;
//   - p "0" adds <no-store/>; pc "1" (or absent) adds XEP-0184 <request/>
//     and XEP-0333 <markable/>;
//   - dm / nm (a receipt, no content) becomes <received/> / <displayed/>
//     naming the acknowledged message, with <store/>; its own id is m.ID, or
//     "dm-"/"nm-" + the acknowledged id when m.ID is empty or the same id;
//   - queued (offline or late delivery) adds a XEP-0203 delay with stamp
//     m.ST (skipped when m.ST is not positive) and from = the domain of from.
func ToStanza(m *bridge.Message, from, to jid.JID, queued bool) Message {
	s := Message{ID: m.ID, From: from.String(), To: to.String(), Type: MessageTypeChat}
	switch {
	case m.DM != nil:
		s.ID = receiptID("dm-", m.ID, m.DM.ID)
		s.Received = &Ref{ID: m.DM.ID}
		s.Store = &Empty{}
	case m.NM != nil:
		s.ID = receiptID("nm-", m.ID, m.NM.ID)
		s.Displayed = &Ref{ID: m.NM.ID}
		s.Store = &Empty{}
	default:
		content(&s, m)
		if !m.P.On() {
			s.NoStore = &Empty{}
		}
		if m.PC.On() {
			s.Request, s.Markable = &Empty{}, &Empty{}
		}
	}
	if s.ID != "" {
		s.OriginID = &OriginID{ID: s.ID}
	}
	if queued && m.ST > 0 {
		s.Delay = &Delay{
			From:  from.Domainpart(),
			Stamp: time.UnixMilli(int64(m.ST)).UTC().Format(StampLayout),
		}
	}
	return s
}

// content sets the body and payloads of a content message.
func content(s *Message, m *bridge.Message) {
	switch m.T {
	case bridge.TypePhoto, bridge.TypeVideo, bridge.TypeAudio:
		if m.C != "" {
			s.OOB = &OOB{URL: m.C}
		}
	case bridge.TypeLocation:
		if lat, lon, err := splitLatLon(m.C); err == nil {
			s.Geoloc = &Geoloc{Lat: lat, Lon: lon}
			s.Body = []Body{{Text: "geo:" + lat + "," + lon}}
			return
		}
	}
	s.Body = []Body{{Text: m.C}}
}

// receiptID is the id of a receipt stanza: its LEMP id, unless that is empty
// or the acknowledged message's id (stanza ids should be unique per sender).
func receiptID(prefix, id, ref string) string {
	if id == "" || id == ref {
		return prefix + ref
	}
	return id
}

package mapping

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lempgw/lempgw/bridge"
)

// Limits on what FromStanza accepts from a remote stanza.
const (
	MaxBodyBytes = 64 << 10 // all bodies together, or the OOB URL
	MaxIDBytes   = 256      // a stanza id, origin-id or receipt id
)

// ErrStanza is wrapped by every error of FromStanza.
var ErrStanza = errors.New("bad message stanza")

// Kind says what a message stanza is to the gateway.
type Kind int

const (
	KindIgnorable Kind = iota // nothing to bridge: chat states alone, groupchat (not mapped yet), ...
	KindChat                  // a chat message: T, C, ST, P, PC set
	KindDelivered             // XEP-0184 <received/> or XEP-0333 <received/>: DM set
	KindDisplayed             // XEP-0333 <displayed/> or <acknowledged/>: NM set
	KindError                 // type="error": the server or the peer refused one of our messages; E set
)

var kindNames = [...]string{"ignorable", "chat", "delivered", "displayed", "error"}

func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// FromStanza maps a message stanza from a Jabber user to a LEMP message. The
// caller sets S and R from the stanza's addresses (Addresser.FromJID).
//
//   - ID is the stanza id, else the XEP-0359 origin-id, else "" (the caller
//     decides: the bridge gives such a message a random id and cannot
//     de-duplicate it);
//   - ST is the XEP-0203 delay stamp, else now;
//   - an OOB url gives T from MediaType and C = the URL (a caption in the
//     body is dropped); a geoloc gives T "l" and C "lat,lon"; else a body
//     that is a geo: URI gives T "l", any other non-empty body T "t";
//   - P is "0" with <no-store/>, else "1"; PC is "1" with <request/> or
//     <markable/>, else "0";
//   - a stanza with content is KindChat even if it also carries a receipt;
//     a receipt alone is KindDelivered or KindDisplayed, with DM or NM (a
//     XEP-0184 receipt without id names the stanza's own id, as the old
//     versions of the XEP did);
//   - type "error" is KindError with E from the stanza error (503 when it has
//     none); type "groupchat" and stanzas with nothing to map are
//     KindIgnorable, with a nil message.
//
// Bad input (a body over MaxBodyBytes, an id over MaxIDBytes, invalid
// coordinates, a garbage delay stamp, a marker without id, text that is not
// UTF-8) gives an error wrapping ErrStanza. It never panics.
func FromStanza(s *Message, now time.Time) (*bridge.Message, Kind, error) {
	if s == nil {
		return nil, KindIgnorable, fmt.Errorf("%w: no stanza", ErrStanza)
	}
	id := s.ID
	if id == "" && s.OriginID != nil {
		id = s.OriginID.ID
	}
	if err := checkID("id", id); err != nil {
		return nil, KindIgnorable, err
	}
	switch s.Type {
	case "error":
		m := &bridge.Message{ID: id, ST: bridge.Millis(now.UnixMilli())}
		if s.Error != nil {
			m.E = LEMPError(*s.Error)
		} else {
			m.E = &bridge.Error{Code: bridge.CodeUnavailable, Desc: "the message was not delivered"}
		}
		return m, KindError, nil
	case "groupchat":
		return nil, KindIgnorable, nil
	}
	st, err := stampOf(s.Delay, now)
	if err != nil {
		return nil, KindIgnorable, err
	}
	m := &bridge.Message{ID: id, ST: st}
	t, c, err := contentOf(s)
	if err != nil {
		return nil, KindIgnorable, err
	}
	if t != "" {
		m.T, m.C = t, c
		m.P = flag(s.NoStore == nil)
		m.PC = flag(s.Request != nil || s.Markable != nil)
		return m, KindChat, nil
	}
	switch {
	case s.Received != nil:
		ref := s.Received.ID
		if ref == "" {
			ref = s.ID
		}
		if ref == "" {
			return nil, KindIgnorable, fmt.Errorf("%w: receipt without id", ErrStanza)
		}
		if err := checkID("receipt id", ref); err != nil {
			return nil, KindIgnorable, err
		}
		m.DM = &bridge.Ref{ID: ref}
		return m, KindDelivered, nil
	case s.MarkRecv != nil:
		if err := checkRef("received marker", s.MarkRecv); err != nil {
			return nil, KindIgnorable, err
		}
		m.DM = &bridge.Ref{ID: s.MarkRecv.ID}
		return m, KindDelivered, nil
	case s.Displayed != nil || s.Acked != nil:
		r, what := s.Displayed, "displayed marker"
		if r == nil {
			r, what = s.Acked, "acknowledged marker"
		}
		if err := checkRef(what, r); err != nil {
			return nil, KindIgnorable, err
		}
		m.NM = &bridge.Ref{ID: r.ID}
		return m, KindDisplayed, nil
	}
	return nil, KindIgnorable, nil
}

func flag(on bool) bridge.Flag {
	if on {
		return bridge.FlagOn
	}
	return bridge.FlagOff
}

func checkID(what, id string) error {
	if len(id) > MaxIDBytes {
		return fmt.Errorf("%w: %s longer than %d bytes", ErrStanza, what, MaxIDBytes)
	}
	if !utf8.ValidString(id) {
		return fmt.Errorf("%w: %s is not UTF-8", ErrStanza, what)
	}
	return nil
}

func checkRef(what string, r *Ref) error {
	if r.ID == "" {
		return fmt.Errorf("%w: %s without id", ErrStanza, what)
	}
	return checkID(what+" id", r.ID)
}

// stampOf returns the delay stamp in milliseconds, or now without a delay.
func stampOf(d *Delay, now time.Time) (bridge.Millis, error) {
	if d == nil {
		return bridge.Millis(now.UnixMilli()), nil
	}
	s := strings.TrimSpace(d.Stamp)
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Errorf("%w: delay stamp %q is not a XEP-0082 DateTime", ErrStanza, truncate(s, 64))
	}
	if t.Year() < 1970 {
		return 0, fmt.Errorf("%w: delay stamp %q is before 1970", ErrStanza, s)
	}
	return bridge.Millis(t.UnixMilli()), nil
}

// contentOf returns the LEMP type and content of a stanza, t = "" when it
// has none.
func contentOf(s *Message) (t, c string, err error) {
	n := 0
	for _, b := range s.Body {
		n += len(b.Text)
	}
	if n > MaxBodyBytes {
		return "", "", fmt.Errorf("%w: body over %d bytes", ErrStanza, MaxBodyBytes)
	}
	body, _ := s.BodyText()
	if !utf8.ValidString(body) {
		return "", "", fmt.Errorf("%w: body is not UTF-8", ErrStanza)
	}
	if s.OOB != nil {
		if u := strings.TrimSpace(s.OOB.URL); u != "" {
			if len(u) > MaxBodyBytes {
				return "", "", fmt.Errorf("%w: OOB url over %d bytes", ErrStanza, MaxBodyBytes)
			}
			if !utf8.ValidString(u) {
				return "", "", fmt.Errorf("%w: OOB url is not UTF-8", ErrStanza)
			}
			return MediaType(u), u, nil
		}
	}
	if g := s.Geoloc; g != nil && (strings.TrimSpace(g.Lat) != "" || strings.TrimSpace(g.Lon) != "") {
		lat, lon, err := checkLatLon(g.Lat, g.Lon)
		if err != nil {
			return "", "", fmt.Errorf("%w: geoloc: %v", ErrStanza, err)
		}
		return bridge.TypeLocation, lat + "," + lon, nil
	}
	if body == "" {
		return "", "", nil
	}
	if lat, lon, ok := parseGeoURI(body); ok {
		return bridge.TypeLocation, lat + "," + lon, nil
	}
	return bridge.TypeText, body, nil
}

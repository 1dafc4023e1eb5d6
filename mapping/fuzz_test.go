package mapping

import (
	"encoding/xml"
	"net/url"
	"strconv"
	"testing"
	"unicode/utf8"

	"github.com/lempgw/lempgw/bridge"
)

// FuzzFromStanza: any bytes decoded as a message stanza never make
// FromStanza panic, and what it returns is a well-formed LEMP message.
func FuzzFromStanza(f *testing.F) {
	for _, c := range fromStanzaCases {
		f.Add([]byte(c.xml))
	}
	for _, c := range fromStanzaErrors {
		if len(c.xml) < 4096 {
			f.Add([]byte(c.xml))
		}
	}
	for _, c := range toStanzaCases {
		f.Add([]byte(c.xml))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Message
		if err := xml.Unmarshal(b, &s); err != nil {
			return
		}
		m, kind, err := FromStanza(&s, now)
		if err != nil {
			if m != nil {
				t.Fatalf("FromStanza returned a message with an error: %+v, %v", m, err)
			}
			return
		}
		switch kind {
		case KindIgnorable:
			if m != nil {
				t.Fatalf("ignorable with a message: %+v", m)
			}
			return
		case KindChat:
			if !bridge.ValidType(m.T) || len(m.C) > MaxBodyBytes || !utf8.ValidString(m.C) {
				t.Fatalf("bad chat message %+v", m)
			}
			if m.P.Norm() != m.P || m.PC.Norm() != m.PC {
				t.Fatalf("flags not normalised: %+v", m)
			}
		case KindDelivered:
			if m.DM == nil || m.DM.ID == "" || m.NM != nil {
				t.Fatalf("bad delivered receipt %+v", m)
			}
		case KindDisplayed:
			if m.NM == nil || m.NM.ID == "" || m.DM != nil {
				t.Fatalf("bad displayed receipt %+v", m)
			}
		case KindError:
			if m.E == nil || m.E.Code < 400 || m.E.Code > 599 {
				t.Fatalf("bad error %+v", m)
			}
		default:
			t.Fatalf("unknown kind %v", kind)
		}
		if len(m.ID) > MaxIDBytes || m.ST < 0 {
			t.Fatalf("bad id or time: %+v", m)
		}
		_ = bridge.Frame{M: m}.Encode()
	})
}

// xmlSafe reports whether s survives XML text or attribute encoding as is:
// UTF-8 of XML 1.0 characters only (encoding/xml writes U+FFFD for others).
func xmlSafe(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r == utf8.RuneError || r == '\uFFFE' || r == '\uFFFF' || (r < 0x20 && r != '\t' && r != '\n' && r != '\r') {
			return false
		}
	}
	return true
}

// FuzzRoundTrip: for each of the five types, a LEMP message through
// ToStanza, xml.Marshal, xml.Unmarshal and FromStanza comes back with the
// same id, type, content, flags and (when queued) time; so do dm and nm
// receipts, with the id they acknowledge.
func FuzzRoundTrip(f *testing.F) {
	f.Add("m1", uint8(0), "Hello", true, true, int64(1763850000123), false, 0.0, 0.0)
	f.Add("m2", uint8(1), "cat", false, true, int64(1763850000123), true, 0.0, 0.0)
	f.Add("", uint8(2), "clip", true, false, int64(0), true, 0.0, 0.0)
	f.Add("x y", uint8(3), "voice note", true, true, int64(1), false, 0.0, 0.0)
	f.Add("m5", uint8(4), "", true, true, int64(253402300799999), true, 52.52, -13.405)
	f.Add("<&>", uint8(0), " spaced \r\n body ", false, false, int64(86400000), true, -90.0, 180.0)
	f.Fuzz(func(t *testing.T, id string, typ uint8, c string, p, pc bool, st int64, queued bool, lat, lon float64) {
		if !xmlSafe(id) || !xmlSafe(c) || len(id) > MaxIDBytes || st < 0 || st > 253402300799999 {
			return
		}
		m := &bridge.Message{ID: id, ST: bridge.Millis(st), P: flag(p), PC: flag(pc)}
		if typ%7 >= 5 {
			roundTripReceipt(t, m, typ%7 == 5, c, queued)
			return
		}
		switch typ % 5 {
		case 0:
			m.T, m.C = bridge.TypeText, c
			if c == "" || len(c) > MaxBodyBytes {
				return // an empty body reads as no body; a long one is refused
			}
			if _, _, ok := parseGeoURI(c); ok {
				return // a text that is a geo: URI reads as a location
			}
		case 1, 2, 3:
			m.T = [...]string{"", bridge.TypePhoto, bridge.TypeVideo, bridge.TypeAudio}[typ%5]
			ext := map[string]string{bridge.TypePhoto: ".jpg", bridge.TypeVideo: ".webm", bridge.TypeAudio: ".opus"}[m.T]
			m.C = "https://up.example.org/" + url.PathEscape(c) + ext
		case 4:
			if lat != lat || lon != lon || lat < -90 || lat > 90 || lon < -180 || lon > 180 {
				return
			}
			m.T = bridge.TypeLocation
			m.C = strconv.FormatFloat(lat, 'f', -1, 64) + "," + strconv.FormatFloat(lon, 'f', -1, 64)
		}
		s := ToStanza(m, alice, bob, queued)
		b, err := xml.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var back Message
		if err := xml.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		got, kind, err := FromStanza(&back, now)
		if err != nil || kind != KindChat {
			t.Fatalf("FromStanza(%s) = %+v, %v, %v", b, got, kind, err)
		}
		wantST := bridge.Millis(now.UnixMilli())
		if queued && st != 0 {
			wantST = m.ST
		}
		if got.ID != m.ID || got.T != m.T || got.C != m.C || got.P != m.P || got.PC != m.PC || got.ST != wantST {
			t.Fatalf("round trip of %+v\nvia %s\ngave %+v (want st %d)", m, b, got, wantST)
		}
	})
}

func roundTripReceipt(t *testing.T, m *bridge.Message, dm bool, ref string, queued bool) {
	if ref == "" || len(ref) > MaxIDBytes-3 {
		return
	}
	m.P, m.PC = "", ""
	kind := KindDisplayed
	if dm {
		m.DM, kind = &bridge.Ref{ID: ref}, KindDelivered
	} else {
		m.NM = &bridge.Ref{ID: ref}
	}
	b, err := xml.Marshal(ToStanza(m, alice, bob, queued))
	if err != nil {
		t.Fatal(err)
	}
	var back Message
	if err := xml.Unmarshal(b, &back); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	got, k, err := FromStanza(&back, now)
	if err != nil || k != kind {
		t.Fatalf("FromStanza(%s) = %+v, %v, %v", b, got, k, err)
	}
	if got.ID == "" || got.ID == ref || !reflectEqualRef(got.DM, m.DM) || !reflectEqualRef(got.NM, m.NM) {
		t.Fatalf("round trip of %+v\nvia %s\ngave %+v", m, b, got)
	}
}

func reflectEqualRef(a, b *bridge.Ref) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

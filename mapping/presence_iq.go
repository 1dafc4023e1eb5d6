package mapping

import (
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"mime"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The IQ payloads behind the LEMP state (s) and picture (p) requests:
//
//	LEMP                          XMPP
//	s of a LEMP user              XEP-0012 <query xmlns="jabber:iq:last" seconds=N/> answered:
//	                              seconds since its last logout, 0 while online
//	s of a Jabber user            the same query asked of the Jabber user's bare JID
//	p of a LEMP user (URL)        vcard-temp <vCard><NICKNAME/><PHOTO><EXTVAL>URL</EXTVAL></PHOTO></vCard>
//	p of a Jabber user            its vCard's PHOTO: EXTVAL, else data:TYPE;base64,BINVAL

// Namespaces of the IQ payloads.
const (
	NSLast  = "jabber:iq:last" // XEP-0012
	NSVCard = "vcard-temp"     // XEP-0054
)

// MaxPictureBytes bounds a picture read from a vCard (a data: URL of an
// inline photo included): larger photos are refused.
const MaxPictureBytes = 256 << 10

// LastActivity is the XEP-0012 query, as asked (Seconds "") and answered.
type LastActivity struct {
	XMLName xml.Name `xml:"jabber:iq:last query"`
	Seconds string   `xml:"seconds,attr,omitempty"`
	Text    string   `xml:",chardata"`
}

// LastActivityFor answers XEP-0012 for a LEMP user from its LEMP state
// value (0 online, ms of the last disconnect, -1 never seen): seconds since
// the last disconnect, 0 while online. ok is false for a user never seen
// (the caller answers item-not-found).
func LastActivityFor(lastOffline int64, now time.Time) (q LastActivity, ok bool) {
	switch {
	case lastOffline < 0:
		return LastActivity{}, false
	case lastOffline == 0:
		return LastActivity{Seconds: "0"}, true
	}
	secs := max(0, now.UnixMilli()-lastOffline) / 1000
	return LastActivity{Seconds: strconv.FormatInt(secs, 10)}, true
}

// maxIdle bounds a XEP-0012 answer (a hundred years).
const maxIdle = 100 * 365 * 24 * time.Hour

// IdleOf reads a XEP-0012 answer: how long ago the entity was last online
// (0: it is online). Errors wrap ErrStanza.
func IdleOf(q *LastActivity) (time.Duration, error) {
	if q == nil {
		return 0, fmt.Errorf("%w: no last activity", ErrStanza)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(q.Seconds), 10, 63)
	if err != nil {
		return 0, fmt.Errorf("%w: last activity seconds %q", ErrStanza, truncate(q.Seconds, 32))
	}
	if n > uint64(maxIdle/time.Second) {
		return 0, fmt.Errorf("%w: last activity %d seconds ago", ErrStanza, n)
	}
	return time.Duration(n) * time.Second, nil
}

// VCard is the part of a vcard-temp (XEP-0054) the gateway reads and writes.
type VCard struct {
	XMLName  xml.Name    `xml:"vcard-temp vCard"`
	FN       string      `xml:"FN,omitempty"`
	Nickname string      `xml:"NICKNAME,omitempty"`
	Photo    *VCardPhoto `xml:"PHOTO"`
}

// VCardPhoto is a vCard PHOTO: an external URL or inline base64 data.
type VCardPhoto struct {
	Type   string `xml:"TYPE,omitempty"`
	BinVal string `xml:"BINVAL,omitempty"`
	ExtVal string `xml:"EXTVAL,omitempty"`
}

// VCardFor is the vCard answered for a LEMP user: NICKNAME is its username,
// PHOTO its picture: a data: URL of base64 data becomes TYPE and BINVAL,
// any other non-empty picture EXTVAL.
func VCardFor(username, picture string) VCard {
	v := VCard{Nickname: username}
	if picture == "" {
		return v
	}
	if typ, data, ok := parseDataURL(picture); ok {
		v.Photo = &VCardPhoto{Type: typ, BinVal: data}
	} else {
		v.Photo = &VCardPhoto{ExtVal: picture}
	}
	return v
}

// PictureOf returns the picture of a Jabber user's vCard as a LEMP picture
// value: the trimmed EXTVAL, else a data: URL of BINVAL (whitespace removed,
// checked as base64, TYPE or image/png as its media type), else "". A photo
// over MaxPictureBytes, bad base64 or text that is not UTF-8 is an error
// wrapping ErrStanza.
func PictureOf(v *VCard) (string, error) {
	if v == nil || v.Photo == nil {
		return "", nil
	}
	if u := strings.TrimSpace(v.Photo.ExtVal); u != "" {
		if len(u) > MaxPictureBytes {
			return "", fmt.Errorf("%w: PHOTO EXTVAL over %d bytes", ErrStanza, MaxPictureBytes)
		}
		if !utf8.ValidString(u) {
			return "", fmt.Errorf("%w: PHOTO EXTVAL is not UTF-8", ErrStanza)
		}
		return u, nil
	}
	if len(v.Photo.BinVal) > 2*MaxPictureBytes {
		return "", fmt.Errorf("%w: PHOTO BINVAL over %d bytes", ErrStanza, MaxPictureBytes)
	}
	data := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, v.Photo.BinVal)
	if data == "" {
		return "", nil
	}
	if _, err := base64.StdEncoding.DecodeString(data); err != nil {
		return "", fmt.Errorf("%w: PHOTO BINVAL is not base64", ErrStanza)
	}
	typ := "image/png"
	if t, _, err := mime.ParseMediaType(strings.TrimSpace(v.Photo.Type)); err == nil && strings.Count(t, "/") == 1 {
		typ = t
	}
	u := "data:" + typ + ";base64," + data
	if len(u) > MaxPictureBytes {
		return "", fmt.Errorf("%w: PHOTO BINVAL over %d bytes", ErrStanza, MaxPictureBytes)
	}
	return u, nil
}

// parseDataURL splits "data:TYPE;base64,DATA" into TYPE and DATA.
func parseDataURL(s string) (typ, data string, ok bool) {
	rest, found := strings.CutPrefix(s, "data:")
	if !found {
		return "", "", false
	}
	head, data, found := strings.Cut(rest, ",")
	typ, found2 := strings.CutSuffix(head, ";base64")
	if !found || !found2 || typ == "" || data == "" {
		return "", "", false
	}
	if _, err := base64.StdEncoding.DecodeString(data); err != nil {
		return "", "", false
	}
	return typ, data, true
}

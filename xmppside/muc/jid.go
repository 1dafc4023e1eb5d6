package muc

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"mellium.im/xmpp/jid"

	"github.com/lempgw/lempgw/mapping"
)

// Addressing: the service is <domain>, room g is EscapeLocal(g)@<domain>
// (XEP-0106, so that any group id has a room JID), occupant n of room g is
// EscapeLocal(g)@<domain>/n.

var (
	errNotHere   = errors.New("muc: not an address of this service")
	errMalformed = errors.New("muc: malformed address")
)

// target is the 'to' of an inbound stanza.
type target struct {
	room string // room id; "" = the service itself
	nick string // occupant nick; "" = the room itself
}

// parseTo reads the 'to' of an inbound stanza. It never panics; errors are
// errNotHere (another domain) or wrap errMalformed.
func (s *Service) parseTo(to string) (target, error) {
	if to == "" {
		return target{}, nil
	}
	if len(to) > 3071 || !utf8.ValidString(to) {
		return target{}, fmt.Errorf("%w: too long or not UTF-8", errMalformed)
	}
	bare, res, hasRes := strings.Cut(to, "/")
	local, domain, hasLocal := strings.Cut(bare, "@")
	if !hasLocal {
		local, domain = "", bare
	}
	if !strings.EqualFold(strings.TrimSuffix(domain, "."), s.domain) {
		return target{}, errNotHere
	}
	if !hasLocal {
		if hasRes {
			return target{}, fmt.Errorf("%w: the service has no occupants", errMalformed)
		}
		return target{}, nil
	}
	id, err := roomID(local)
	if err != nil {
		return target{}, err
	}
	t := target{room: id}
	if hasRes {
		if t.nick, err = s.checkNick(res); err != nil {
			return target{}, err
		}
	}
	return t, nil
}

// roomID returns the group id a room localpart names.
func roomID(local string) (string, error) {
	u, err := mapping.UnescapeLocal(local)
	if err != nil {
		return "", fmt.Errorf("%w: room %v", errMalformed, err)
	}
	u = strings.ToLower(u)
	if u == "" || len(u) > 128 {
		return "", fmt.Errorf("%w: room name empty or over 128 bytes", errMalformed)
	}
	for _, r := range u {
		if r == '@' || r == '/' || unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError {
			return "", fmt.Errorf("%w: room name has a forbidden character %q", errMalformed, r)
		}
	}
	return u, nil
}

// checkNick validates a nick (an RFC 7622 resourcepart, at most 1023 bytes,
// not only spaces) and returns its normalised form.
func (s *Service) checkNick(nick string) (n string, err error) {
	if nick == "" || strings.TrimSpace(nick) == "" {
		return "", fmt.Errorf("%w: empty nick", errMalformed)
	}
	if len(nick) > maxNickBytes || !utf8.ValidString(nick) {
		return "", fmt.Errorf("%w: nick over %d bytes or not UTF-8", errMalformed, maxNickBytes)
	}
	defer func() {
		if r := recover(); r != nil {
			n, err = "", fmt.Errorf("%w: nick: JID library panicked: %v", errMalformed, r)
		}
	}()
	j, err := jid.New("", s.domain, nick)
	if err != nil {
		return "", fmt.Errorf("%w: nick: %v", errMalformed, err)
	}
	n = j.Resourcepart()
	if n == "" || len(n) > maxNickBytes {
		return "", fmt.Errorf("%w: nick", errMalformed)
	}
	return n, nil
}

// parseFrom reads the 'from' of an inbound stanza: its full JID (bare when it
// has no resource) and bare JID, both normalised. A localpart mellium's
// PRECIS refuses but the servers accept is kept (mapping.ParseAddress). It
// never panics.
func parseFrom(from string) (full, bare string, err error) {
	if from == "" {
		return "", "", errors.New("muc: no from")
	}
	if len(from) > 3071 || !utf8.ValidString(from) {
		return "", "", errors.New("muc: from too long or not UTF-8")
	}
	defer func() {
		if r := recover(); r != nil {
			full, bare, err = "", "", fmt.Errorf("muc: from: JID library panicked: %v", r)
		}
	}()
	if j, err := jid.Parse(from); err == nil {
		return j.String(), j.Bare().String(), nil
	}
	b, res, hasRes := strings.Cut(from, "/")
	bj, err := mapping.ParseAddress(b)
	if err != nil {
		return "", "", err
	}
	bare = bj.String()
	if !hasRes {
		return bare, bare, nil
	}
	r, err := jid.New("", bj.Domainpart(), res)
	if err != nil || r.Resourcepart() == "" {
		return "", "", fmt.Errorf("muc: from %q: bad resource", from)
	}
	return bare + "/" + r.Resourcepart(), bare, nil
}

// isUser reports whether a bare JID names a user (has a localpart).
func isUser(bare string) bool { return strings.Contains(bare, "@") }

func (s *Service) roomJID(id string) string { return mapping.EscapeLocal(id) + "@" + s.domain }

func (s *Service) occJID(id, nick string) string { return s.roomJID(id) + "/" + nick }

// realJID is the bare JID of a LEMP member ("" when the username has none).
// PRECIS is not cheap and a big group has thousands of members: the answers
// are kept (forgotten all at once past maxJIDCache names).
func (s *Service) realJID(username string) string {
	s.jidMu.Lock()
	j, ok := s.jids[username]
	s.jidMu.Unlock()
	if ok {
		return j
	}
	if bj, err := s.users.LocalBareJID(username); err == nil {
		j = bj.String()
	}
	s.jidMu.Lock()
	if len(s.jids) >= maxJIDCache {
		s.jids = map[string]string{}
	}
	s.jids[username] = j
	s.jidMu.Unlock()
	return j
}

const maxJIDCache = 100_000

// actorJID is the JID that stands for a LEMP address: a username's real JID,
// a Jabber user's bare JID.
func (s *Service) actorJID(addr string) string {
	if isUser(addr) {
		return addr
	}
	return s.realJID(addr)
}

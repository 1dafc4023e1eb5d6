package mapping

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
	"mellium.im/xmpp/jid"

	"github.com/lempgw/lempgw/bridge"
)

// Addresser maps LEMP addresses to JIDs and back (contract.md, Addressing):
// local user alice is alice@Domain (XEP-0106 escaped), with resource Resource
// while online; a Jabber user is its bare JID on both sides.
//
// JID parsing: mellium's jid.Parse applies PRECIS (RFC 7622), which rejects
// localparts the servers accept with their older stringprep rules (a snowman,
// for one). Where PRECIS fails, the localpart is checked and normalised with
// rules close to stringprep's Nodeprep instead (see lenientLocal), so that a
// Jabber user the server lets exist can be addressed; the domainpart and
// resourcepart are always checked by mellium. Nothing here panics.
type Addresser struct {
	Domain   string // component domain, e.g. lemp.example.org
	Resource string // resource of local users' full JIDs, e.g. "lemp"; may be empty
}

// ErrAddress is wrapped by every address error of this package.
var ErrAddress = errors.New("bad address")

func addrErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrAddress, fmt.Sprintf(format, args...))
}

// LocalJID returns the full JID of a local user (escaped-username@Domain/Resource),
// the address its stanzas come from. The username is folded to lower case.
func (a Addresser) LocalJID(username string) (jid.JID, error) {
	return a.localJID(username, a.Resource)
}

// LocalBareJID returns the bare JID of a local user (escaped-username@Domain),
// the address Jabber users know it by (rosters, subscriptions).
func (a Addresser) LocalBareJID(username string) (jid.JID, error) {
	return a.localJID(username, "")
}

func (a Addresser) localJID(username, resource string) (jid.JID, error) {
	if a.Domain == "" {
		return jid.JID{}, addrErr("no component domain configured")
	}
	u := strings.ToLower(username)
	if err := bridge.ValidUsername(u); err != nil {
		return jid.JID{}, fmt.Errorf("%w: %v", ErrAddress, err)
	}
	local := EscapeLocal(u)
	j, err := newJID(local, a.Domain, resource)
	if err != nil {
		return jid.JID{}, fmt.Errorf("%w: username %q: %v", ErrAddress, username, err)
	}
	// JID normalisation must not turn the name into another one, or replies
	// to this JID would reach somebody else (or nobody).
	if back, err := UnescapeLocal(j.Localpart()); err != nil || back != u {
		return jid.JID{}, addrErr("username %q has no stable JID form (it becomes %q)", username, j.Localpart())
	}
	return j, nil
}

// FromJID maps a JID to a LEMP address. A JID of the component domain names a
// local user: addr is its username (unescaped, lower case) and local is true.
// Any other JID with a localpart is a Jabber user: addr is its bare JID. A JID
// without a localpart (a server or a service) is no user address: error.
func (a Addresser) FromJID(j jid.JID) (addr string, local bool, err error) {
	lp := j.Localpart()
	if a.IsLocalDomain(j.Domainpart()) {
		if lp == "" {
			return "", true, addrErr("%s is the gateway itself, not a user", j.Domainpart())
		}
		u, err := UnescapeLocal(lp)
		if err != nil {
			return "", true, fmt.Errorf("%w: %v", ErrAddress, err)
		}
		u = strings.ToLower(u)
		if err := bridge.ValidUsername(u); err != nil {
			return "", true, fmt.Errorf("%w: %v", ErrAddress, err)
		}
		return u, true, nil
	}
	if lp == "" {
		return "", false, addrErr("%s has no localpart: not a user address", j.String())
	}
	return j.Bare().String(), false, nil
}

// IsLocalDomain reports whether domain (a JID's domainpart) is the component
// domain.
func (a Addresser) IsLocalDomain(domain string) bool {
	d := strings.TrimSuffix(a.Domain, ".")
	if d == "" {
		return false
	}
	if strings.EqualFold(d, domain) {
		return true
	}
	// IDN: the configured domain may be in A-label form, JIDs hold U-labels.
	if !strings.Contains(strings.ToLower(d), "xn--") {
		return false
	}
	if n, err := newJID("", d, ""); err == nil {
		return n.Domainpart() == domain
	}
	return false
}

// ParseAddress validates a LEMP address naming a Jabber user (a bare JID:
// local@domain, no resource) and returns its JID. PRECIS is tried first; a
// localpart PRECIS rejects but Nodeprep-like rules accept is kept (see
// Addresser). It never panics; errors wrap ErrAddress.
func ParseAddress(s string) (jid.JID, error) {
	switch {
	case s == "":
		return jid.JID{}, addrErr("empty address")
	case len(s) > 2047:
		return jid.JID{}, addrErr("address longer than 2047 bytes")
	case !utf8.ValidString(s):
		return jid.JID{}, addrErr("address is not UTF-8")
	case strings.IndexByte(s, '/') >= 0:
		return jid.JID{}, addrErr("%q has a resource: a Jabber user is addressed by its bare JID", s)
	}
	at := strings.IndexByte(s, '@')
	switch {
	case at < 0:
		return jid.JID{}, addrErr("%q is not a JID (no @)", s)
	case at == 0:
		return jid.JID{}, addrErr("%q has an empty localpart", s)
	case at == len(s)-1:
		return jid.JID{}, addrErr("%q has an empty domainpart", s)
	}
	j, err := newJID(s[:at], s[at+1:], "")
	if err != nil {
		return jid.JID{}, fmt.Errorf("%w: %q: %v", ErrAddress, s, err)
	}
	return j, nil
}

// newJID builds a JID with PRECIS, falling back to lenientLocal for the
// localpart. A panic inside the JID library (remote input reaches it) is
// turned into an error.
func newJID(local, domain, resource string) (j jid.JID, err error) {
	defer func() {
		if r := recover(); r != nil {
			j, err = jid.JID{}, fmt.Errorf("JID library panicked: %v", r)
		}
	}()
	if err := checkDomain(domain); err != nil {
		return jid.JID{}, err
	}
	j, err = jid.New(local, domain, resource)
	if err == nil {
		err = checkLabels(j.Domainpart())
	}
	if err == nil || local == "" {
		return j, err
	}
	// PRECIS said no. Keep the localpart if stringprep-era rules accept it;
	// the domainpart and resourcepart are still checked by jid.New.
	l, lerr := lenientLocal(local)
	if lerr != nil {
		return jid.JID{}, fmt.Errorf("localpart: %v (PRECIS: %v)", lerr, err)
	}
	base, err := jid.New("", domain, resource)
	if err == nil {
		err = checkLabels(base.Domainpart())
	}
	if err != nil {
		return jid.JID{}, err
	}
	return jid.NewUnsafe(l, base.Domainpart(), base.Resourcepart()).JID, nil
}

// checkDomain refuses what no domainpart may hold, before IDNA sees it.
func checkDomain(d string) error {
	for _, r := range d {
		if r == '@' || r == '/' || r == '\\' || unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError {
			return fmt.Errorf("domainpart %q has a forbidden character %q", d, r)
		}
	}
	return nil
}

// checkLabels refuses a normalised domainpart with an empty label ("." or
// "a..b"), which mellium lets through; an IP literal passes.
func checkLabels(d string) error {
	if strings.HasPrefix(d, "[") {
		return nil
	}
	for _, l := range strings.Split(d, ".") {
		if l == "" {
			return fmt.Errorf("domainpart %q has an empty label", d)
		}
	}
	return nil
}

// lenientLocal normalises and checks a localpart much like stringprep's
// Nodeprep profile (RFC 3920 appendix A), which ejabberd and Prosody apply:
// lower case and NFKC, then only letters, marks, numbers, punctuation and
// symbols, none of "&'/:<>@, at most 1023 bytes.
func lenientLocal(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", errors.New("not UTF-8")
	}
	l := strings.ToLower(norm.NFKC.String(s))
	if l == "" {
		return "", errors.New("empty")
	}
	if len(l) > 1023 {
		return "", errors.New("longer than 1023 bytes")
	}
	for _, r := range l {
		switch {
		case strings.ContainsRune("\"&'/:<>@", r), r == utf8.RuneError:
			return "", fmt.Errorf("forbidden character %q", r)
		case !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S):
			return "", fmt.Errorf("forbidden character %U", r)
		}
	}
	return l, nil
}

package lempside

import (
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/time/rate"

	"github.com/lempgw/lempgw/bridge"
)

// Limits are the LEMP side's abuse limits (docs/configuration.md, [limits]).
// The zero value limits nothing; each limit is on when its main field is
// positive.
type Limits struct {
	// MessageRate is the sustained rate of chat messages a connection may
	// send, per second, and MessageBurst the most it may send at once
	// (default: the rate, at least 1). Receipts (dm, nm) are free while
	// they succeed; a failed one costs a message. Over the limit: 429.
	MessageRate  float64
	MessageBurst int
	// RequestRate and RequestBurst are the same for rq (logins included,
	// logout excluded) and srq; frames that do not parse count as requests.
	RequestRate  float64
	RequestBurst int
	// FloodFactor: a connection that keeps going far past a rate is closed
	// with 4429. Every refusal draws from a second bucket of FloodFactor
	// times the burst, refilled at the same rate; when it is empty, the
	// connection is closed. Default 10; negative: never closed.
	FloodFactor int

	// LoginFailures is how many failed logins an identity gets before it
	// backs off; LoginAddressFailures the same per client address (an IPv4
	// address or an IPv6 /64). Zero: no back-off of that kind. While
	// backing off, a login is refused with 429 without its token being
	// checked; each further failure doubles the wait, from LoginBackoff
	// (default 1s) up to LoginBackoffMax (default 15m). A successful login
	// clears its identity's failures; an address' are forgotten when none
	// came for twice LoginBackoffMax. Counted in memory, per node.
	LoginFailures        int
	LoginAddressFailures int
	LoginBackoff         time.Duration
	LoginBackoffMax      time.Duration

	// ConnectionsPerAddress bounds the open websocket connections of one
	// client address (IPv4 address or IPv6 /64); over it the upgrade is
	// answered with HTTP 429. Zero: no limit.
	ConnectionsPerAddress int

	// ProxyHeader, when set (e.g. "X-Forwarded-For" or "X-Real-IP"), names
	// the header a reverse proxy puts the client's address in. It is
	// believed only from a peer in TrustedProxies (addresses or CIDR
	// prefixes; empty: loopback only). Without it the client address is the
	// socket peer, which behind a proxy is the proxy.
	ProxyHeader    string
	TrustedProxies []string
}

// Labels of lempgw_limited_total counted on the LEMP side (the core counts
// the others: bridge.LimitGroupSize, LimitPicture, LimitQueue).
const (
	limitMessages    = "messages"
	limitRequests    = "requests"
	limitLogins      = "logins"
	limitConnections = "connections"
)

// allLimits are every label of lempgw_limited_total, created at zero.
var allLimits = []string{limitMessages, limitRequests, limitLogins, limitConnections,
	bridge.LimitQueue, bridge.LimitGroupSize, bridge.LimitPicture}

// Login tracking bounds: the most identities and addresses remembered.
const loginTracked = 1 << 16

func (l *Limits) defaults() {
	if l.MessageRate > 0 && l.MessageBurst <= 0 {
		l.MessageBurst = max(1, int(math.Ceil(l.MessageRate)))
	}
	if l.RequestRate > 0 && l.RequestBurst <= 0 {
		l.RequestBurst = max(1, int(math.Ceil(l.RequestRate)))
	}
	if l.FloodFactor == 0 {
		l.FloodFactor = 10
	}
	if l.LoginBackoff <= 0 {
		l.LoginBackoff = time.Second
	}
	if l.LoginBackoffMax <= 0 {
		l.LoginBackoffMax = 15 * time.Minute
	}
	if l.LoginBackoffMax < l.LoginBackoff {
		l.LoginBackoffMax = l.LoginBackoff
	}
}

// ParseTrustedProxies parses addresses ("10.0.0.1") and CIDR prefixes
// ("10.0.0.0/8"); an empty list means loopback.
func ParseTrustedProxies(list []string) ([]netip.Prefix, error) {
	if len(list) == 0 {
		return []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}, nil
	}
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: want an address or a CIDR prefix", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// ---- per-connection rates ----

// bucket is one rate limit of a connection; a nil *bucket limits nothing.
type bucket struct {
	lim      *rate.Limiter
	refusals *rate.Limiter // nil: refusals never close the connection
	what     string        // "messages" or "requests"
	desc     string        // for the 429's d
}

func newBucket(what string, r float64, burst, flood int) *bucket {
	if r <= 0 {
		return nil
	}
	b := &bucket{
		lim:  rate.NewLimiter(rate.Limit(r), burst),
		what: what,
		desc: fmt.Sprintf("rate limited: more than %g %s per second", r, what),
	}
	if flood > 0 {
		b.refusals = rate.NewLimiter(rate.Limit(r), flood*burst)
	}
	return b
}

// allow takes a token; false means over the limit.
func (b *bucket) allow() bool { return b == nil || b.lim.Allow() }

// empty reports whether the bucket has no token left (without taking one).
func (b *bucket) empty() bool { return b != nil && b.lim.Tokens() < 1 }

// charge takes a token if there is one (a failed receipt).
func (b *bucket) charge() {
	if b != nil {
		b.lim.Allow()
	}
}

// flooding records a refusal and reports whether the connection is past
// its flood allowance.
func (b *bucket) flooding() bool { return b.refusals != nil && !b.refusals.Allow() }

// admit applies the connection's rate limits to a decoded packet before it
// is handled. When it returns ok false the packet was answered with 429 (or
// the connection is being closed for flooding) and must not be handled;
// keep then says whether to go on reading.
func (c *conn) admit(p *Packet) (ok, keep bool) {
	switch {
	case p.RQ != nil:
		if p.RQ.LO != nil {
			return true, true // logout ends the connection anyway
		}
		return c.take(c.reqs, p.RQ.ID, false)
	case p.SRQ != nil:
		return c.take(c.reqs, p.SRQ.ID, false)
	case p.M != nil && (p.M.DM != nil || p.M.NM != nil):
		// Receipts are free while they succeed (a client acknowledging
		// its backlog is not flooding); handlers.go charges failed ones.
		if c.msgs.empty() {
			return c.refuse(c.msgs, p.M.ID, true)
		}
		return true, true
	case p.M != nil:
		return c.take(c.msgs, p.M.ID, true)
	}
	return true, true
}

// admitBad applies the rate limits to a frame that did not decode.
func (c *conn) admitBad(derr *DecodeError) (ok, keep bool) {
	if derr.Message {
		return c.take(c.msgs, derr.ID, true)
	}
	return c.take(c.reqs, derr.ID, false)
}

func (c *conn) take(b *bucket, id string, isMessage bool) (ok, keep bool) {
	if b.allow() {
		return true, true
	}
	return c.refuse(b, id, isMessage)
}

// refuse answers 429, and closes the connection with 4429 once it is
// flooding.
func (c *conn) refuse(b *bucket, id string, isMessage bool) (ok, keep bool) {
	c.srv.metrics.limit(b.what)
	c.srv.metrics.packetError(bridge.CodeRateLimited)
	c.send(errorFrame(id, isMessage, &bridge.Error{Code: bridge.CodeRateLimited, Desc: b.desc}))
	if b.flooding() {
		c.log.Warn("closing a flooding connection", "user", c.user, "limit", b.what)
		c.flooded = true
		c.out.put(c.ctx, outFrame{closeCode: closeFlood, reason: "rate limit exceeded", linger: true})
		return false, false
	}
	return false, true
}

// drainUntilClose reads and drops what a flooding client still sends until
// its close frame answers ours, for closeGrace at most: closing the socket
// with its frames unread would reset the connection, and the client could
// lose the 429s and the close frame before them.
func (c *conn) drainUntilClose() {
	_ = c.ws.SetReadDeadline(time.Now().Add(closeGrace))
	for {
		_, r, err := c.ws.NextReader()
		if err != nil {
			return
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			return
		}
	}
}

// ---- logins ----

// failures are the failed logins of one identity or address.
type failures struct {
	n     int       // failures since the last success (identity) or forgetting
	until time.Time // refused without a check until then
	last  time.Time // latest failure
}

// loginGuard counts failed logins per identity and per address and says
// who must back off. Bounded: the least recently seen entries are dropped
// past loginTracked of each kind.
type loginGuard struct {
	mu                  sync.Mutex
	ids, addrs          *simplelru.LRU[string, failures]
	idFree, addrFree    int
	backoff, backoffMax time.Duration
	now                 func() time.Time
}

func newLoginGuard(l Limits, now func() time.Time) *loginGuard {
	if l.LoginFailures <= 0 && l.LoginAddressFailures <= 0 {
		return nil
	}
	ids, _ := simplelru.NewLRU[string, failures](loginTracked, nil)
	addrs, _ := simplelru.NewLRU[string, failures](loginTracked, nil)
	return &loginGuard{ids: ids, addrs: addrs, idFree: l.LoginFailures, addrFree: l.LoginAddressFailures,
		backoff: l.LoginBackoff, backoffMax: l.LoginBackoffMax, now: now}
}

// identityKey is the tracked form of a login identity: the folded
// username, or "" for one that can not be a username (those fail without
// a token check and count for the address only).
func identityKey(identity string) string {
	name := bridge.FoldUsername(identity)
	if bridge.ValidUsername(name) != nil {
		return ""
	}
	return name
}

// wait returns how long identity or addr still backs off (0: go ahead).
func (g *loginGuard) wait(identity, addr string) time.Duration {
	if g == nil {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	var until time.Time
	if id := identityKey(identity); id != "" && g.idFree > 0 {
		if f, ok := g.ids.Peek(id); ok && f.until.After(until) {
			until = f.until
		}
	}
	if g.addrFree > 0 {
		if f, ok := g.addrs.Peek(addr); ok && f.until.After(until) {
			until = f.until
		}
	}
	if until.After(now) {
		return until.Sub(now)
	}
	return 0
}

// failed records a failed login (a wrong identity or token).
func (g *loginGuard) failed(identity, addr string) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	if id := identityKey(identity); id != "" && g.idFree > 0 {
		g.ids.Add(id, g.next(g.ids, id, g.idFree, now))
	}
	if g.addrFree > 0 {
		g.addrs.Add(addr, g.next(g.addrs, addr, g.addrFree, now))
	}
}

// next is key's record after one more failure: past free failures, a
// back-off of backoff, doubled for each further one, up to backoffMax.
func (g *loginGuard) next(c *simplelru.LRU[string, failures], key string, free int, now time.Time) failures {
	f, _ := c.Peek(key)
	if !f.last.IsZero() && now.Sub(f.last) > 2*g.backoffMax {
		f = failures{} // forgotten
	}
	f.n++
	f.last = now
	if f.n >= free {
		d := g.backoffMax
		if shift := f.n - free; shift < 32 {
			d = min(g.backoff<<shift, g.backoffMax)
		}
		f.until = now.Add(d)
	}
	return f
}

// succeeded clears identity's failures (not its address': an attacker with
// one good account must not wipe its address' record by logging in).
func (g *loginGuard) succeeded(identity string) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if id := identityKey(identity); id != "" {
		g.ids.Remove(id)
	}
}

// retryIn formats a wait for a client, rounded up to the second.
func retryIn(d time.Duration) time.Duration {
	return time.Duration(math.Ceil(d.Seconds())) * time.Second
}

// ---- connections per address ----

// addrConns counts the open connections per client address.
type addrConns struct {
	mu  sync.Mutex
	n   map[string]int
	max int // 0: no limit
}

// acquire counts a new connection of addr, unless addr is at the limit.
func (a *addrConns) acquire(addr string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.max > 0 && a.n[addr] >= a.max {
		return false
	}
	a.n[addr]++
	return true
}

func (a *addrConns) release(addr string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n[addr] <= 1 {
		delete(a.n, addr)
	} else {
		a.n[addr]--
	}
}

// ---- client address ----

// clientAddr is the address a request comes from: the socket peer, or,
// from a trusted proxy, the address in the configured header.
func (s *Server) clientAddr(r *http.Request) netip.Addr {
	peer := peerAddr(r.RemoteAddr)
	if s.cfg.Limits.ProxyHeader == "" || !peer.IsValid() || !inPrefixes(peer, s.trusted) {
		return peer
	}
	vals := r.Header.Values(s.cfg.Limits.ProxyHeader)
	if len(vals) == 0 {
		return peer
	}
	if a, ok := forwardedFor(strings.Join(vals, ","), s.trusted); ok {
		return a
	}
	return peer
}

// peerAddr parses an http.Request's RemoteAddr ("ip:port").
func peerAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// forwardedFor reads a comma-separated list of addresses (X-Forwarded-For,
// X-Real-IP) from right to left, the order proxies append in, and returns
// the first one that is not itself a trusted proxy (the left-most when all
// are). Entries may carry a port ("1.2.3.4:5", "[::1]:5"). Entries left of
// the one returned are the client's own claims and are not looked at; one
// that does not parse before the client's address is found makes the list
// unbelievable: ok is false.
func forwardedFor(list string, trusted []netip.Prefix) (netip.Addr, bool) {
	parts := strings.Split(list, ",")
	var last netip.Addr
	for i := len(parts) - 1; i >= 0; i-- {
		s := strings.TrimSpace(parts[i])
		if s == "" {
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			ap, err := netip.ParseAddrPort(s)
			if err != nil {
				return netip.Addr{}, false
			}
			a = ap.Addr()
		}
		if a.Zone() != "" {
			a = a.WithZone("")
		}
		a = a.Unmap()
		if !inPrefixes(a, trusted) {
			return a, true
		}
		last = a
	}
	return last, last.IsValid()
}

func inPrefixes(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// addrKey is what the per-address limits count by: an IPv4 address, or the
// /64 of an IPv6 address (one host usually has a whole /64).
func addrKey(a netip.Addr) string {
	if !a.IsValid() {
		return "unknown"
	}
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

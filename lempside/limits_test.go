package lempside_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lempgw/lempgw/bridge"
	"github.com/lempgw/lempgw/lempside"
)

// Abuse limits (issue 6): per-connection rates, login back-off, connections
// per address. limits_store_test.go has the core's limits (queue, group
// size, picture).

// TestFloodThrottled: 10,000 messages from one connection as fast as it can
// write. Every one gets exactly one answer, a server receipt or a 429 with
// its id; no more are accepted than the bucket allows; the connection stays
// open and is served again once it slows down; and meanwhile another user's
// message round trip stays fast.
func TestFloodThrottled(t *testing.T) {
	const (
		flood    = 10000
		msgRate  = 200.0
		burst    = 100
		probeGap = 5 * time.Millisecond // the prober stays under the rate
		// The bounds are generous: the flooding client runs in this
		// process, on a test machine that may be loaded (one scheduling
		// stall of 250 ms has been seen there). A starved dave would wait
		// out the flood (0.25 s or more): he would complete few probes, his
		// median would be slow and his slowest near the flood's duration.
		// So: a few probes at least, p50 under 50 ms, and p99 under 200 ms
		// or half the flood's duration when a loaded machine stretches it.
		p50Bound  = 50 * time.Millisecond
		p99Bound  = 200 * time.Millisecond
		minProbes = 5
	)
	sc := lempside.Config{WriteQueue: 1024, Limits: lempside.Limits{MessageRate: msgRate, MessageBurst: burst, FloodFactor: -1}}
	forEachLimited(t, bridge.Config{}, sc, func(t *testing.T, g *gateway, reg *prometheus.Registry) {
		g.users(t, "flooder", "sink", "dave", "erin")
		f := g.login(t, "flooder")
		d := g.login(t, "dave")
		e := g.login(t, "erin")
		go func() { // erin only receives
			for range e.frames {
			}
		}()

		// The flooder's answers, counted as they come (cheaply: the
		// client shares the CPU with the server).
		var accepted, refused int
		answered := make(map[string]int, flood)
		consumerErr := make(chan error, 1)
		go func() {
			for accepted+refused < flood {
				select {
				case b, ok := <-f.frames:
					if !ok {
						consumerErr <- fmt.Errorf("flooder closed after %d answers", accepted+refused)
						return
					}
					id, _, _ := strings.Cut(strings.TrimPrefix(string(b), `{"m":{"id":"`), `"`)
					switch {
					case strings.HasSuffix(string(b), `"sr":{"id":"`+id+`"}}}`):
						accepted++
					case strings.Contains(string(b), `"e":{"c":429,`):
						refused++
					default:
						consumerErr <- fmt.Errorf("unexpected frame %s", b)
						return
					}
					answered[id]++
				case <-time.After(loadWait):
					consumerErr <- fmt.Errorf("no answer within %v after %d", loadWait, accepted+refused)
					return
				}
			}
			consumerErr <- nil
		}()

		// Dave's round trips (a message to erin until its server receipt)
		// while the flood runs.
		var lat []time.Duration
		floodDone := make(chan struct{})
		proberErr := make(chan error, 1)
		go func() {
			for i := 0; ; i++ {
				select {
				case <-floodDone:
					proberErr <- nil
					return
				default:
				}
				id := fmt.Sprintf("p%d", i)
				start := time.Now()
				if err := d.ws.WriteMessage(websocket.TextMessage, []byte(`{"m":{"id":"`+id+`","r":"erin","c":"ping"}}`)); err != nil {
					proberErr <- err
					return
				}
				b, err := recvFrame(d, loadWait)
				if err != nil {
					proberErr <- err
					return
				}
				if !frameMatches(b, sr(id, "dave")) {
					proberErr <- fmt.Errorf("dave got %s, want the receipt of %s", b, id)
					return
				}
				lat = append(lat, time.Since(start))
				time.Sleep(probeGap)
			}
		}()

		start := time.Now()
		for i := range flood {
			if err := f.ws.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"m":{"id":"f%d","r":"sink","c":"flood %d"}}`, i, i)); err != nil {
				t.Fatalf("flood write %d: %v", i, err)
			}
		}
		if err := <-consumerErr; err != nil {
			t.Fatal(err)
		}
		elapsed := time.Since(start)
		close(floodDone)
		if err := <-proberErr; err != nil {
			t.Fatal(err)
		}

		most := burst + int(msgRate*elapsed.Seconds()) + 1
		t.Logf("%d packets in %v: %d accepted (at most %d allowed), %d refused with 429",
			flood, elapsed.Round(time.Millisecond), accepted, most, refused)
		if accepted < burst || accepted > most {
			t.Errorf("accepted %d, want between the burst %d and %d", accepted, burst, most)
		}
		if refused == 0 || accepted+refused != flood || len(answered) != flood {
			t.Errorf("accepted %d + refused %d over %d distinct ids, want %d answered once each", accepted, refused, len(answered), flood)
		}
		if got := limitedCount(t, reg, "messages"); got != refused {
			t.Errorf("lempgw_limited_total{limit=messages} = %d, want %d", got, refused)
		}
		if q, err := g.Store.QueueLen(t.Context(), "sink"); err != nil || q != accepted {
			t.Errorf("sink's queue holds %d (%v), want the %d accepted", q, err, accepted)
		}

		p50, p99 := percentiles(lat)
		bound := max(p99Bound, elapsed/2)
		t.Logf("dave's round trip during the flood: %d probes, p50 %v, p99 %v, max %v (bounds %v, %v)",
			len(lat), p50, p99, slices.Max(lat).Round(time.Microsecond), p50Bound, bound.Round(time.Millisecond))
		if len(lat) < minProbes {
			t.Errorf("only %d probes during the flood", len(lat))
		}
		if p50 > p50Bound || p99 > bound {
			t.Errorf("dave's round trip during the flood: p50 %v, p99 %v; want under %v and %v", p50, p99, p50Bound, bound)
		}

		// Not blocked for good: once it slows down, it is served again.
		time.Sleep(100 * time.Millisecond)
		f.send(`{"m":{"id":"after","r":"sink","c":"calm"}}`)
		f.expect(sr("after", "flooder"))
	})
}

// percentiles returns the p50 and the nearest-rank p99 of ls, rounded.
func percentiles(ls []time.Duration) (p50, p99 time.Duration) {
	if len(ls) == 0 {
		return 0, 0
	}
	s := slices.Sorted(slices.Values(ls))
	return s[len(s)/2].Round(time.Microsecond), s[(len(s)*99+99)/100-1].Round(time.Microsecond)
}

// TestFloodClosed: a connection that keeps going far past its rate is
// closed with 4429 once it used up its refusals; the user can connect again
// at once. Requests have a bucket of their own, frames that do not parse
// draw from it, and logout is never refused.
func TestFloodClosed(t *testing.T) {
	const msgBurst, reqBurst, factor = 10, 5, 5
	// Requests refill slowly (one per 10s), so the bucket is seen empty.
	sc := lempside.Config{Limits: lempside.Limits{
		MessageRate: 20, MessageBurst: msgBurst, RequestRate: 0.1, RequestBurst: reqBurst, FloodFactor: factor}}
	forEachLimited(t, bridge.Config{}, sc, func(t *testing.T, g *gateway, reg *prometheus.Registry) {
		g.users(t, "flooder", "sink")
		f := g.login(t, "flooder")
		fws := f.ws
		go func() {
			for i := range 2000 {
				if fws.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"m":{"id":"f%d","r":"sink"}}`, i)) != nil {
					return // closed
				}
			}
		}()
		var n, r int
	read:
		for {
			select {
			case b, ok := <-f.frames:
				if !ok {
					break read
				}
				rep, err := parseReply(b)
				switch {
				case err != nil:
					t.Fatal(err)
				case rep.M != nil && rep.M.SR != nil:
					n++
				case rep.code() == 429:
					r++
				default:
					t.Fatalf("unexpected frame %s", b)
				}
			case <-time.After(wait):
				t.Fatalf("not closed within %v: %d accepted, %d refused", wait, n, r)
			}
		}
		err := <-f.closed
		if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != 4429 {
			t.Fatalf("closed with %v, want 4429", err)
		}
		t.Logf("closed with 4429 after %d accepted and %d refused", n, r)
		if n < msgBurst || r < factor*msgBurst {
			t.Errorf("closed after %d accepted and %d refused, want at least %d and %d", n, r, msgBurst, factor*msgBurst)
		}
		if got := limitedCount(t, reg, "messages"); got != r {
			t.Errorf("lempgw_limited_total{limit=messages} = %d, want %d", got, r)
		}

		// A new connection is not held to the old one's account.
		f = g.login(t, "flooder")
		f.send(`{"m":{"id":"again","r":"sink"}}`)
		f.expect(sr("again", "flooder"))

		// Requests: a burst of knocks, then 429 with the id; the message
		// bucket is untouched.
		for i := range 3 * reqBurst {
			f.send(fmt.Sprintf(`{"srq":{"id":"k%d","t":"k"}}`, i))
		}
		ok, refused := 0, 0
		for i := range 3 * reqBurst {
			b := f.next()
			switch id := fmt.Sprintf("k%d", i); {
			case frameMatches([]byte(b), `{"srp":{"id":"`+id+`","t":"k"}}`):
				ok++
			case frameMatches([]byte(b), errRP(id, 429)):
				refused++
			default:
				t.Fatalf("knock %s: got %s", id, b)
			}
		}
		if ok < reqBurst-1 || refused == 0 { // the login used one
			t.Errorf("knocks: %d answered, %d refused; want about %d answered, the rest refused", ok, refused, reqBurst-1)
		}
		f.send(`{rq:`) // does not parse: a request too, refused without an id
		f.expect(errRP("", 429))
		f.send(`{"m":{"id":"m2","r":"sink"}}`)
		f.expect(sr("m2", "flooder"))
		if got := limitedCount(t, reg, "requests"); got != refused+1 {
			t.Errorf("lempgw_limited_total{limit=requests} = %d, want %d", got, refused+1)
		}
		// Logout is never refused.
		f.send(`{"rq":{"id":"bye","lo":{"r":"done"}}}`)
		f.expectClose(1000)
	})
}

// TestReceiptsFreeWhileTheySucceed: a client acknowledging a backlog larger
// than its message burst is not throttled; bogus receipts are.
func TestReceiptsFreeWhileTheySucceed(t *testing.T) {
	const backlog, burst = 30, 5
	sc := lempside.Config{Limits: lempside.Limits{MessageRate: 0.1, MessageBurst: burst, FloodFactor: -1}}
	forEachLimited(t, bridge.Config{}, sc, func(t *testing.T, g *gateway, reg *prometheus.Registry) {
		g.users(t, "alice", "bob")
		for i := range backlog { // queued by the core: no connection's rate applies
			m := &bridge.Message{ID: fmt.Sprintf("b%d", i), R: "bob", C: "x"}
			if e := g.Core.Send(t.Context(), "alice", m); e != nil {
				t.Fatal(e)
			}
		}
		b := g.login(t, "bob")
		for i := range backlog {
			b.next()
			b.send(fmt.Sprintf(`{"m":{"id":"d%d","dm":{"id":"b%d"}}}`, i, i))
		}
		// Every receipt is taken (a refused one would leave its message queued).
		waitFor(t, "bob's queue empties", func() bool {
			q, err := g.Store.QueueLen(t.Context(), "bob")
			return err == nil && q == 0
		})
		b.quiet(short) // and no 429
		// Unknown ids: 404 while the bucket lasts, then 429.
		for i := range burst {
			b.send(fmt.Sprintf(`{"m":{"id":"x%d","dm":{"id":"nope%d"}}}`, i, i))
			b.expect(errM(fmt.Sprintf("x%d", i), 404))
		}
		b.send(`{"m":{"id":"x9","dm":{"id":"nope9"}}}`)
		b.expect(errM("x9", 429))
		if got := limitedCount(t, reg, "messages"); got != 1 {
			t.Errorf("lempgw_limited_total{limit=messages} = %d, want 1", got)
		}
	})
}

// loginFrame is a login request.
func loginFrame(id, identity, token string) string {
	return fmt.Sprintf(`{"rq":{"id":%q,"a":{"i":%q,"t":%q}}}`, id, identity, token)
}

// badLogins sends n logins as fast as the socket takes them and returns
// how many were answered 401 and 429, checking each answer carries its id
// and response 0, in order.
func badLogins(t *testing.T, c *client, n int, identity func(i int) string) (unauthorized, limited int) {
	t.Helper()
	go func() {
		for i := range n {
			if c.ws.WriteMessage(websocket.TextMessage, []byte(loginFrame(fmt.Sprintf("l%d", i), identity(i), "wrong"))) != nil {
				return
			}
		}
	}()
	for i := range n {
		b := c.next()
		r, err := parseReply([]byte(b))
		if err != nil || r.RP == nil || r.RP.ID != fmt.Sprintf("l%d", i) || r.RP.Response == nil || *r.RP.Response != 0 {
			t.Fatalf("login l%d: got %s", i, b)
		}
		switch r.code() {
		case 401:
			if limited > 0 {
				t.Fatalf("login l%d: 401 after a 429 (the back-off is long)", i)
			}
			unauthorized++
		case 429:
			limited++
		default:
			t.Fatalf("login l%d: got %s", i, b)
		}
	}
	return unauthorized, limited
}

// TestLoginBackoff: 1,000 bad logins for one identity cost as many token
// checks as failures are free; the back-off refuses even the right token,
// doubles with each further failure, does not touch another identity of
// the same address, and a successful login clears it.
func TestLoginBackoff(t *testing.T) {
	const attempts, free = 1000, 5
	var offset atomic.Int64 // the gateway's clock runs ahead by this much
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	sc := lempside.Config{Now: now, Limits: lempside.Limits{
		LoginFailures: free, LoginAddressFailures: 100, LoginBackoff: time.Minute, LoginBackoffMax: time.Hour}}
	forEachLimited(t, bridge.Config{}, sc, func(t *testing.T, g *gateway, reg *prometheus.Registry) {
		offset.Store(0)
		g.users(t, "alice", "bob")
		checks := func() int { return int(metricValue(t, reg, "lempgw_login_checks_total")) }
		c := g.dial(t)
		start := time.Now()
		u, l := badLogins(t, c, attempts, func(int) string { return "alice" })
		t.Logf("%d bad logins in %v: %d answered 401, %d refused 429, %d token checks",
			attempts, time.Since(start).Round(time.Millisecond), u, l, checks())
		if u != free || l != attempts-free || checks() != free {
			t.Fatalf("%d unauthorized, %d limited, %d token checks; want %d, %d, %d", u, l, checks(), free, attempts-free, free)
		}
		// Backing off: even the right token is refused, unchecked.
		c.send(loginFrame("right", "ALICE", "alice-token"))
		c.expect(`{"rp":{"id":"right","response":0,"e":{"c":429,"d":"*"}}}`)
		if checks() != free {
			t.Fatalf("a login during the back-off was checked")
		}
		// Another identity on the same address logs in.
		g.login(t, "bob")

		// After the back-off, one more failure doubles it.
		offset.Add(int64(time.Minute + time.Second))
		c.send(loginFrame("six", "alice", "wrong"))
		c.expect(`{"rp":{"id":"six","response":0,"e":{"c":401,"d":"*"}}}`)
		c.send(loginFrame("seven", "alice", "wrong"))
		c.expect(`{"rp":{"id":"seven","response":0,"e":{"c":429,"d":"*"}}}`)
		offset.Add(int64(time.Minute + time.Second))
		c.send(loginFrame("eight", "alice", "wrong"))
		c.expect(`{"rp":{"id":"eight","response":0,"e":{"c":429,"d":"*"}}}`)
		offset.Add(int64(time.Minute))

		// A success clears the identity's failures: the next ones are free again.
		c.send(loginFrame("ok", "alice", "alice-token"))
		c.expect(`{"rp":{"id":"ok","response":1}}`)
		c2 := g.dial(t)
		u, l = badLogins(t, c2, free+1, func(int) string { return "alice" })
		if u != free || l != 1 {
			t.Fatalf("after a success: %d unauthorized, %d limited; want %d and 1", u, l, free)
		}
		if want := free + 1 + 1 + 1 + free; checks() != want { // + six, bob, ok, the new free ones
			t.Errorf("%d token checks, want %d", checks(), want)
		}
		if want := attempts - free + 1 + 2 + 1; limitedCount(t, reg, "logins") != want {
			t.Errorf("lempgw_limited_total{limit=logins} = %d, want %d", limitedCount(t, reg, "logins"), want)
		}
	})
}

// TestLoginBackoffPerAddress: 1,000 bad logins, each for another identity,
// from one address: the address backs off after its free failures, for
// every identity, while another address is served.
func TestLoginBackoffPerAddress(t *testing.T) {
	// Unknown identities are checked against a dummy hash with the real
	// argon2id cost: the free failures are what an attacker makes us pay.
	const attempts, free = 1000, 10
	sc := lempside.Config{Limits: lempside.Limits{LoginAddressFailures: free, LoginBackoff: time.Hour}}
	forEachLimited(t, bridge.Config{}, sc, func(t *testing.T, g *gateway, reg *prometheus.Registry) {
		g.users(t, "bob")
		c := g.dial(t)
		start := time.Now()
		u, l := badLogins(t, c, attempts, func(i int) string { return fmt.Sprintf("nobody%d", i) })
		checks := int(metricValue(t, reg, "lempgw_login_checks_total"))
		t.Logf("%d bad logins for %d identities in %v: %d answered 401, %d refused 429, %d token checks",
			attempts, attempts, time.Since(start).Round(time.Millisecond), u, l, checks)
		if u != free || l != attempts-free || checks != free {
			t.Fatalf("%d unauthorized, %d limited, %d token checks; want %d, %d, %d", u, l, checks, free, attempts-free, free)
		}
		c.send(loginFrame("bob", "bob", "bob-token"))
		c.expect(`{"rp":{"id":"bob","response":0,"e":{"c":429,"d":"*"}}}`)
		other := mustDialFrom(t, g, "127.0.0.2", nil)
		other.login("bob")
	})
}

// TestConnectionsPerAddress: over the limit, the upgrade is refused with
// HTTP 429; other addresses are not affected; a closed connection frees its
// place. Behind a trusted proxy the header's address counts, from anyone
// else the header is ignored.
func TestConnectionsPerAddress(t *testing.T) {
	const max = 3
	t.Run("socket peer", func(t *testing.T) {
		sc := lempside.Config{Limits: lempside.Limits{ConnectionsPerAddress: max}}
		forEachLimited(t, bridge.Config{}, sc, func(t *testing.T, g *gateway, reg *prometheus.Registry) {
			g.users(t, "alice")
			var cs []*rawClient
			for range max {
				cs = append(cs, mustDialFrom(t, g, "127.0.0.1", nil))
			}
			wantRefusedDial(t, g, "127.0.0.1", nil)
			wantRefusedDial(t, g, "127.0.0.1", nil)
			mustDialFrom(t, g, "127.0.0.2", nil).login("alice")
			cs[0].login("alice") // the others still work
			if got := limitedCount(t, reg, "connections"); got != 2 {
				t.Errorf("lempgw_limited_total{limit=connections} = %d, want 2", got)
			}
			cs[1].ws.Close()
			waitFor(t, "a closed connection frees its place", func() bool {
				c, _, err := dialFrom(t, g, "127.0.0.1", nil)
				if err == nil {
					c.ws.Close()
				}
				return err == nil
			})
		})
	})
	t.Run("trusted proxy", func(t *testing.T) {
		sc := lempside.Config{Limits: lempside.Limits{ConnectionsPerAddress: max,
			ProxyHeader: "X-Forwarded-For", TrustedProxies: []string{"127.0.0.1"}}}
		forEachLimited(t, bridge.Config{}, sc, func(t *testing.T, g *gateway, reg *prometheus.Registry) {
			g.users(t, "alice")
			xff := func(v string) http.Header { return http.Header{"X-Forwarded-For": {v}} }
			for i := range max { // the client appended to what it claimed itself
				mustDialFrom(t, g, "127.0.0.1", xff(fmt.Sprintf("10.9.9.%d, 203.0.113.9", i)))
			}
			wantRefusedDial(t, g, "127.0.0.1", xff("203.0.113.9"))
			mustDialFrom(t, g, "127.0.0.1", xff("203.0.113.10")).login("alice")
			// IPv6 counts by /64.
			for i := range max {
				mustDialFrom(t, g, "127.0.0.1", xff(fmt.Sprintf("2001:db8:1:2::%d", i+1)))
			}
			wantRefusedDial(t, g, "127.0.0.1", xff("[2001:db8:1:2:ffff::1]:4321"))
			mustDialFrom(t, g, "127.0.0.1", xff("2001:db8:1:3::1"))
			// 127.0.0.2 is not a trusted proxy: its header is ignored, its
			// own address counts.
			for range max {
				mustDialFrom(t, g, "127.0.0.2", xff("198.51.100.1"))
			}
			wantRefusedDial(t, g, "127.0.0.2", xff("198.51.100.2"))
			// A header that does not parse is not believed: the proxy's
			// address counts (it has none open of its own).
			mustDialFrom(t, g, "127.0.0.1", xff("203.0.113.9, garbage"))
		})
	})
}

package xmppside_test

import (
	"context"
	"encoding/xml"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"

	"github.com/lempgw/lempgw/bridge"
	"github.com/lempgw/lempgw/internal/lemptest"
	"github.com/lempgw/lempgw/internal/testenv"
	"github.com/lempgw/lempgw/mapping"
	"github.com/lempgw/lempgw/state"
	"github.com/lempgw/lempgw/xmppside"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// rig is a gateway bridged to a real XMPP server.
type rig struct {
	srv  *testenv.XMPPServer
	gw   *lemptest.Gateway
	comp *xmppside.Component
	reg  *prometheus.Registry
}

func startRig(t *testing.T, srv *testenv.XMPPServer, st state.Store) *rig {
	t.Helper()
	r := &rig{srv: srv, reg: prometheus.NewRegistry()}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	r.gw = lemptest.Start(t, st, lemptest.Options{Remote: func(core *bridge.Core) {
		comp, err := xmppside.New(xmppside.Config{
			Link: xmppside.LinkConfig{
				Address: srv.ComponentAddr, Domain: srv.ComponentDomain, Secret: srv.ComponentSecret,
				ServerDomain: srv.Domain, PingInterval: 2 * time.Second, PingTimeout: 3 * time.Second,
			},
			Core:     core,
			Registry: r.reg,
			Log:      slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: testLogLevel()})),
		})
		if err != nil {
			t.Fatal(err)
		}
		core.SetRemote(comp)
		r.comp = comp
		wg.Add(1)
		go func() { defer wg.Done(); comp.Run(ctx) }()
	}})
	t.Cleanup(func() { cancel(); wg.Wait() })
	r.waitUp(t)
	return r
}

func (r *rig) waitUp(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !r.comp.Up() {
		if time.Now().After(deadline) {
			t.Fatalf("component link not up\n%s", r.srv.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// jabber is a real XMPP client with an available presence, collecting the
// messages, presence and IQ answers it receives.
type jabber struct {
	t    *testing.T
	sess *xmpp.Session
	in   chan mapping.Message
	pres chan mapping.Presence
	iqs  chan iqStanza
}

func newJabber(t *testing.T, srv *testenv.XMPPServer, user string) *jabber {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sess := testenv.ClientSession(ctx, t, srv, user, user+"-pw")
	j := &jabber{t: t, sess: sess, in: make(chan mapping.Message, 1024),
		pres: make(chan mapping.Presence, 1024), iqs: make(chan iqStanza, 64)}
	go func() {
		_ = sess.Serve(xmpp.HandlerFunc(func(tr xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			d := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), tr))
			switch start.Name.Local {
			case "message":
				var m mapping.Message
				if err := d.Decode(&m); err == nil {
					j.in <- m
				}
			case "presence":
				var p mapping.Presence
				if err := d.Decode(&p); err == nil {
					if os.Getenv("DEBUG_PRES") != "" {
						t.Logf("%s got presence %+v", user, p)
					}
					j.pres <- p
				}
			case "iq":
				var iq iqStanza
				if err := d.Decode(&iq); err == nil && (iq.Type == "result" || iq.Type == "error") {
					j.iqs <- iq
				}
			}
			return nil
		}))
	}()
	// As any client: the roster first (servers push subscription changes
	// only to the resources that asked for it), then the initial presence.
	if iq := j.query("get", "", `<query xmlns="jabber:iq:roster"/>`); iq.Type != "result" {
		t.Fatalf("roster: %+v", iq)
	}
	if err := sess.Send(context.Background(), xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Local: "presence"}})); err != nil {
		t.Fatalf("initial presence: %v", err)
	}
	return j
}

// send writes a raw stanza.
func (j *jabber) send(raw string) {
	j.t.Helper()
	// No deadline: mellium turns the end of a send's context into a write
	// deadline in the past for a moment, which can fail the next write.
	if err := j.sess.Send(context.Background(), xml.NewDecoder(strings.NewReader(raw))); err != nil {
		j.t.Fatalf("send %s: %v", raw, err)
	}
}

// next returns the next message that is not a chat-state notification.
func (j *jabber) next() mapping.Message {
	j.t.Helper()
	for {
		select {
		case m := <-j.in:
			if len(m.Body) == 0 && m.Received == nil && m.Displayed == nil && m.MarkRecv == nil && m.Error == nil {
				continue
			}
			return m
		case <-time.After(lemptest.Wait):
			j.t.Fatalf("no message within %v", lemptest.Wait)
		}
	}
}

func body(m mapping.Message) string {
	if len(m.Body) == 0 {
		return ""
	}
	return m.Body[0].Text
}

func TestChatBothWays(t *testing.T) {
	testenv.ForEachXMPPServer(t, func(t *testing.T, srv *testenv.XMPPServer) {
		srv.Register(t, "bob", "bob-pw")
		r := startRig(t, srv, state.NewMemory())
		r.gw.User(t, "alice", false)
		alice := r.gw.Login(t, "alice")
		bob := newJabber(t, srv, "bob")
		bobJID := "bob@" + srv.Domain
		aliceJID := "alice@" + srv.ComponentDomain

		// LEMP -> XMPP: text, with a receipt request.
		alice.Send(`{"m":{"id":"m1","r":"` + bobJID + `","t":"t","c":"hello bob"}}`)
		alice.Expect(`{"m":{"id":"m1","r":"alice","sr":{"id":"m1"}}}`)
		m := bob.next()
		if body(m) != "hello bob" || m.ID != "m1" || !strings.HasPrefix(m.From, aliceJID) || m.Request == nil || m.OriginID == nil || m.OriginID.ID != "m1" {
			t.Fatalf("bob got %+v", m)
		}
		// Bob's XEP-0184 receipt becomes alice's dm.
		bob.send(`<message to="` + aliceJID + `" id="r1"><received xmlns="urn:xmpp:receipts" id="m1"/></message>`)
		alice.Expect(`{"m":{"id":"*","s":"` + bobJID + `","r":"alice","st":"*","dm":{"id":"m1"}}}`)

		// XMPP -> LEMP, with a receipt request: alice's dm becomes bob's receipt.
		bob.send(`<message to="` + aliceJID + `" type="chat" id="x1"><body>hi alice</body><request xmlns="urn:xmpp:receipts"/></message>`)
		alice.Expect(`{"m":{"id":"x1","s":"` + bobJID + `","r":"alice","t":"t","c":"hi alice","st":"*","p":"1","sc":"0","pc":"1"}}`)
		alice.Send(`{"m":{"id":"d1","dm":{"id":"x1"}}}`)
		m = bob.next()
		if m.Received == nil || m.Received.ID != "x1" {
			t.Fatalf("bob wanted a receipt for x1, got %+v", m)
		}

		// Media and location both ways.
		alice.Send(`{"m":{"id":"m2","r":"` + bobJID + `","t":"p","c":"https://example.org/cat.jpg"}}`)
		alice.Expect(`{"m":{"id":"m2","r":"alice","sr":{"id":"m2"}}}`)
		if m = bob.next(); m.OOB == nil || m.OOB.URL != "https://example.org/cat.jpg" {
			t.Fatalf("bob wanted an OOB photo, got %+v", m)
		}
		bob.send(`<message to="` + aliceJID + `" type="chat" id="x2"><body>geo:52.5,13.4</body><geoloc xmlns="http://jabber.org/protocol/geoloc"><lat>52.5</lat><lon>13.4</lon></geoloc></message>`)
		alice.Expect(`{"m":{"id":"x2","s":"` + bobJID + `","r":"alice","t":"l","c":"52.5,13.4","st":"*","p":"1","sc":"0","pc":"0"}}`)

		// Unknown LEMP user: the Jabber sender gets a stanza error, the link stays up.
		bob.send(`<message to="nobody@` + srv.ComponentDomain + `" type="chat" id="x3"><body>anyone?</body></message>`)
		if m = bob.next(); m.Type != "error" || m.ID != "x3" {
			t.Fatalf("bob wanted an error for x3, got %+v", m)
		}
		bob.send(`<message to="` + aliceJID + `" type="chat" id="x4"><body>still there?</body></message>`)
		alice.Expect(`{"m":{"id":"x4","s":"` + bobJID + `","r":"alice","t":"t","c":"still there?","st":"*","p":"1","sc":"0","pc":"0"}}`)

		// Chat markers (XEP-0333) both ways: nm <-> displayed.
		bob.send(`<message to="` + aliceJID + `" id="mk1"><displayed xmlns="urn:xmpp:chat-markers:0" id="m1"/></message>`)
		alice.Expect(`{"m":{"id":"*","s":"` + bobJID + `","r":"alice","st":"*","nm":{"id":"m1"}}}`)
		bob.send(`<message to="` + aliceJID + `" type="chat" id="x5"><body>mark me</body><markable xmlns="urn:xmpp:chat-markers:0"/></message>`)
		alice.Expect(`{"m":{"id":"x5","s":"` + bobJID + `","r":"alice","t":"t","c":"mark me","st":"*","p":"1","sc":"0","pc":"1"}}`)
		alice.Send(`{"m":{"id":"n5","nm":{"id":"x5"}}}`)
		if m = bob.next(); m.Displayed == nil || m.Displayed.ID != "x5" {
			t.Fatalf("bob wanted a displayed marker for x5, got %+v", m)
		}

		// p "0" <-> XEP-0334 no-store, and a message that waited (old st) carries
		// an XEP-0203 delay with its st.
		alice.Send(`{"m":{"id":"m3","r":"` + bobJID + `","t":"t","c":"ephemeral","p":"0","st":1767323045000}}`)
		alice.Expect(`{"m":{"id":"m3","r":"alice","sr":{"id":"m3"}}}`)
		if m = bob.next(); m.NoStore == nil || m.Delay == nil || m.Delay.Stamp != "2026-01-02T03:04:05.000Z" {
			t.Fatalf("bob wanted no-store and a delay stamp, got %+v (delay %+v)", m, m.Delay)
		}
		bob.send(`<message to="` + aliceJID + `" type="chat" id="x8"><body>do not keep</body><no-store xmlns="urn:xmpp:hints"/></message>`)
		alice.Expect(`{"m":{"id":"x8","s":"` + bobJID + `","r":"alice","t":"t","c":"do not keep","st":"*","p":"0","sc":"0","pc":"0"}}`)

		// Offline LEMP user: kept durably, delivered at login with the sender's delay stamp.
		alice.WS.Close()
		bob.send(`<message to="` + aliceJID + `" type="chat" id="x6"><body>while you were out</body><request xmlns="urn:xmpp:receipts"/><delay xmlns="urn:xmpp:delay" stamp="2026-01-02T03:04:05.000Z"/></message>`)
		bob.send(`<message to="` + aliceJID + `" type="chat" id="x7"><body>and this</body></message>`)
		for deadline := time.Now().Add(lemptest.Wait); ; time.Sleep(20 * time.Millisecond) { // both queued for alice
			if n, err := r.gw.Store.QueueLen(context.Background(), "alice"); err == nil && n == 2 {
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("alice's queue: %d, %v; want 2", n, err)
			}
		}
		alice = r.gw.Login(t, "alice")
		alice.Expect(`{"m":{"id":"x6","s":"` + bobJID + `","r":"alice","t":"t","c":"while you were out","st":1767323045000,"p":"1","sc":"0","pc":"1"}}`)
		alice.Expect(`{"m":{"id":"x7","s":"` + bobJID + `","r":"alice","t":"t","c":"and this","st":"*","p":"1","sc":"0","pc":"0"}}`)
	})
}

// TestServerRestartLosesNothing restarts the XMPP server while a LEMP user
// sends to an offline Jabber user: after the link returns, every message
// reaches the Jabber user, once.
func TestServerRestartLosesNothing(t *testing.T) {
	testenv.ForEachXMPPServer(t, func(t *testing.T, srv *testenv.XMPPServer) {
		srv.Register(t, "bob", "bob-pw")
		trace, stopTrace := xmppside.TraceStreams()
		defer stopTrace()
		r := startRig(t, srv, state.NewMemory())
		r.gw.User(t, "alice", false)
		alice := r.gw.Login(t, "alice")
		bobJID := "bob@" + srv.Domain
		const total = 60
		// Half is in flight on the link when the server goes down, the rest
		// is sent while it restarts and the link is being redialled.
		for i := range total {
			if i == total/2 {
				srv.Restart(t)
			}
			alice.Send(fmt.Sprintf(`{"m":{"id":"k%d","r":"%s","t":"t","c":"message %d"}}`, i, bobJID, i))
		}
		for i := range total {
			alice.Expect(fmt.Sprintf(`{"m":{"id":"k%d","r":"alice","sr":{"id":"k%d"}}}`, i, i))
		}
		r.waitUp(t)
		// Wait until the outbound queue is empty: everything confirmed by the server.
		deadline := time.Now().Add(30 * time.Second)
		for {
			n, err := r.gw.Store.QueueLen(context.Background(), bridge.OutboundQueue)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d stanzas still queued\n%s", n, srv.Logs())
			}
			time.Sleep(50 * time.Millisecond)
		}
		offl, _ := os.ReadFile(srv.Dir + "/data/xmpp%2etest/offline/bob.list")
		bob := newJabber(t, srv, "bob") // offline storage delivers now
		seen := map[string]int{}
		for len(seen) < total {
			m := bob.next()
			seen[m.ID]++
		}
		// Anything extra would be a duplicate.
		select {
		case m := <-bob.in:
			if len(m.Body) > 0 {
				seen[m.ID]++
			}
		case <-time.After(time.Second):
		}
		dups := 0
		for i := range total {
			switch n := seen[fmt.Sprintf("k%d", i)]; {
			case n == 0:
				t.Errorf("k%d lost", i)
			case n > 1:
				dups++
				t.Logf("k%d delivered %d times", i, n)
			}
		}
		t.Logf("%s: %d messages across a restart, %d unique delivered, %d duplicated", srv.Kind, total, len(seen), dups)
		if dups > 0 || os.Getenv("INVESTIGATE_ALL") != "" {
			f, _ := os.CreateTemp("/tmp", "lgw-dup-"+srv.Kind+"-*")
			fmt.Fprintf(f, "dups=%d seen=%v\n", dups, seen)
			for _, l := range trace.Lines() {
				fmt.Fprintln(f, l)
			}
			lg, _ := os.ReadFile(srv.Dir + "/prosody.log")
			f.Write([]byte("\n===== offline store\n"))
			f.Write(offl)
			f.Write([]byte("\n===== prosody.log\n"))
			f.Write(lg)
			f.Close()
			t.Logf("trace in %s", f.Name())
		}
		// Known limit (docs/architecture.md, "Exactly once across a server
		// restart"): a stanza written while the server is already shutting
		// down may be handled by it without its barrier ping being answered,
		// and is sent again on the next stream. Observed with Prosody only,
		// for at most the one stanza in flight at the moment of the shutdown.
		if limit := 1; srv.Kind == testenv.KindEjabberd && dups > 0 || dups > limit {
			t.Errorf("%d messages delivered twice", dups)
		}
	})
}

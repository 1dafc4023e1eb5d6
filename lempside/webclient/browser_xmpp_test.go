package webclient_test

import (
	"context"
	"encoding/xml"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"

	"github.com/lempgw/lempgw/bridge"
	"github.com/lempgw/lempgw/internal/lemptest"
	"github.com/lempgw/lempgw/internal/testenv"
	"github.com/lempgw/lempgw/mapping"
	"github.com/lempgw/lempgw/xmppside"
)

// jabber is a real XMPP client (mellium) on the test Prosody: it collects
// the messages and presences it receives.
type jabber struct {
	t    *testing.T
	sess *xmpp.Session
	in   chan mapping.Message
	pres chan mapping.Presence
	iqs  chan string // ids of result IQs
}

func newJabber(t *testing.T, srv *testenv.XMPPServer, user string) *jabber {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sess := testenv.ClientSession(ctx, t, srv, user, user+"-pw")
	j := &jabber{t: t, sess: sess, in: make(chan mapping.Message, 256), pres: make(chan mapping.Presence, 256), iqs: make(chan string, 16)}
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
					j.pres <- p
				}
			case "iq":
				var iq struct {
					ID   string `xml:"id,attr"`
					Type string `xml:"type,attr"`
				}
				if err := d.Decode(&iq); err == nil && iq.Type == "result" {
					j.iqs <- iq.ID
				}
			}
			return nil
		}))
	}()
	// As any client: the roster first (servers push subscription changes
	// only to resources that asked for it), then the initial presence.
	j.send(`<iq type="get" id="roster1"><query xmlns="jabber:iq:roster"/></iq>`)
	select {
	case <-j.iqs:
	case <-time.After(lemptest.Wait):
		t.Fatal("no roster")
	}
	j.send(`<presence/>`)
	return j
}

func (j *jabber) send(raw string) {
	j.t.Helper()
	if err := j.sess.Send(context.Background(), xml.NewDecoder(strings.NewReader(raw))); err != nil {
		j.t.Fatalf("jabber send %s: %v", raw, err)
	}
}

// nextMessage returns the next message that is not a bare chat state.
func (j *jabber) nextMessage() mapping.Message {
	j.t.Helper()
	for {
		select {
		case m := <-j.in:
			if len(m.Body) == 0 && m.Received == nil && m.Displayed == nil && m.MarkRecv == nil && m.Error == nil {
				continue
			}
			return m
		case <-time.After(lemptest.Wait):
			j.t.Fatalf("jabber: no message within %v", lemptest.Wait)
		}
	}
}

// expectPresence waits for a presence of type typ ("" = available) from the
// bare JID from.
func (j *jabber) expectPresence(from, typ string) {
	j.t.Helper()
	deadline := time.After(lemptest.Wait)
	for {
		select {
		case p := <-j.pres:
			if bare, _, _ := strings.Cut(p.From, "/"); bare == from && p.Type == typ {
				return
			}
		case <-deadline:
			j.t.Fatalf("jabber: no presence %q from %s within %v", typ, from, lemptest.Wait)
		}
	}
}

// startBridgedWebGateway runs a web-client gateway linked to srv as its
// XEP-0114 component, as xmppside's integration tests do.
func startBridgedWebGateway(t *testing.T, srv *testenv.XMPPServer) (*lemptest.Gateway, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var comp *xmppside.Component
	g, pageURL := startWebGateway(t, lemptest.Options{Remote: func(core *bridge.Core) {
		var err error
		comp, err = xmppside.New(xmppside.Config{
			Link: xmppside.LinkConfig{
				Address: srv.ComponentAddr, Domain: srv.ComponentDomain, Secret: srv.ComponentSecret,
				ServerDomain: srv.Domain, PingInterval: 2 * time.Second, PingTimeout: 3 * time.Second,
			},
			Core: core,
			Log:  slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		})
		if err != nil {
			t.Fatal(err)
		}
		core.SetRemote(comp)
		wg.Add(1)
		go func() { defer wg.Done(); comp.Run(ctx) }()
	}})
	t.Cleanup(func() { cancel(); wg.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for !comp.Up() {
		if time.Now().After(deadline) {
			t.Fatalf("component link not up\n%s", srv.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return g, pageURL
}

// TestBrowserJabberChat: a LEMP user in the browser follows a Jabber user
// on a real Prosody, sees them online, and they chat both ways with
// delivery receipts (XEP-0184) and read markers (XEP-0333) shown as the
// page's delivered and read marks.
func TestBrowserJabberChat(t *testing.T) {
	findChromium(t) // skip before starting Prosody when there is no browser
	srv := testenv.StartProsody(t)
	srv.Register(t, "romeo", "romeo-pw")
	g, pageURL := startBridgedWebGateway(t, srv)
	g.User(t, "juliet", false)
	romeo := newJabber(t, srv, "romeo")
	romeoJID, julietJID := "romeo@"+srv.Domain, "juliet@"+srv.ComponentDomain

	browser := startBrowser(t)
	juliet := newTab(t, browser, "juliet")
	juliet.login(pageURL, "juliet", "juliet-token")

	// Following a JID is a presence subscription; once romeo approves, his
	// presence shows him online, with his status.
	juliet.follow(romeoJID, "Romeo")
	romeo.expectPresence(julietJID, "subscribe")
	romeo.send(`<presence to="` + julietJID + `" type="subscribed"/>`)
	juliet.contactOnline(romeoJID, true)
	romeo.send(`<presence><status>on the balcony</status></presence>`)
	// LEMP has no status push: the page reads it when the conversation
	// opens, so open it until the gateway has seen romeo's new presence.
	for i := 0; ; i++ {
		juliet.open(romeoJID)
		time.Sleep(500 * time.Millisecond) // the page's st request
		if eval[bool](juliet, `document.getElementById("chat-sub").textContent === "online · on the balcony"`) {
			break
		}
		if i == 20 {
			t.Fatalf("juliet: romeo's status not shown: %s", juliet.pageText())
		}
	}

	// juliet writes: romeo's receipt and displayed marker become her marks.
	juliet.send("hello romeo")
	m := romeo.nextMessage()
	if len(m.Body) == 0 || m.Body[0].Text != "hello romeo" || m.Request == nil || m.Markable == nil {
		t.Fatalf("romeo got %+v, want hello romeo asking for a receipt and markable", m)
	}
	juliet.waitMark("hello romeo", "sent")
	romeo.send(`<message to="` + julietJID + `" id="r1"><received xmlns="urn:xmpp:receipts" id="` + m.ID + `"/></message>`)
	juliet.waitMark("hello romeo", "delivered")
	romeo.send(`<message to="` + julietJID + `" id="r2"><displayed xmlns="urn:xmpp:chat-markers:0" id="` + m.ID + `"/></message>`)
	juliet.waitMark("hello romeo", "read")

	// romeo writes to the open conversation: the page confirms delivery
	// and reading, which romeo gets as a receipt and a displayed marker.
	romeo.send(`<message to="` + julietJID + `" type="chat" id="x1"><body>hi juliet</body><request xmlns="urn:xmpp:receipts"/><markable xmlns="urn:xmpp:chat-markers:0"/></message>`)
	juliet.waitMessage(romeoJID, "hi juliet")
	var received, displayed bool
	for !received || !displayed {
		r := romeo.nextMessage()
		switch {
		case r.Received != nil && r.Received.ID == "x1":
			received = true
		case r.Displayed != nil && r.Displayed.ID == "x1":
			displayed = true
		default:
			t.Fatalf("romeo wanted a receipt and a displayed marker for x1, got %+v", r)
		}
	}
	t.Logf("screenshot: %s", juliet.screenshot("webclient-jabber.png"))

	// romeo goes away: lo.
	romeo.send(`<presence type="unavailable"/>`)
	juliet.contactOnline(romeoJID, false)
}

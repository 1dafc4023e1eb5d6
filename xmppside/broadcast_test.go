package xmppside_test

import (
	"strings"
	"testing"

	"github.com/lempgw/lempgw/internal/testenv"
	"github.com/lempgw/lempgw/state"
)

// TestBroadcastToJabber: a broadcast list with a Jabber member sends that
// member a 1:1 chat from the owner's JID; its receipt comes back to the
// owner as for any 1:1 message. LEMP members get their copies as before.
func TestBroadcastToJabber(t *testing.T) {
	testenv.ForEachXMPPServer(t, func(t *testing.T, srv *testenv.XMPPServer) {
		srv.Register(t, "bob", "bob-pw")
		r := startRig(t, srv, state.NewMemory())
		r.gw.User(t, "alice", false)
		r.gw.User(t, "carol", false)
		alice := r.gw.Login(t, "alice")
		carol := r.gw.Login(t, "carol")
		bob := newJabber(t, srv, "bob")
		bobJID := "bob@" + srv.Domain
		aliceJID := "alice@" + srv.ComponentDomain

		alice.Send(`{"rq":{"id":"c1","br":{"t":"c","i":"news","n":"News","m":["carol","` + bobJID + `"]}}}`)
		alice.Expect(`{"rp":{"id":"c1"}}`)
		alice.Send(`{"rq":{"id":"i1","br":{"t":"i","i":"news"}}}`)
		alice.Expect(`{"rp":{"id":"i1","br":{"i":"news","n":"News","c":"*","m":["carol","` + bobJID + `"],"o":"alice"}}}`)
		// A Jabber member must be a usable address.
		alice.Send(`{"rq":{"id":"a1","br":{"t":"a","i":"news","m":["bad@@example.org"]}}}`)
		alice.Expect(`{"rp":{"id":"a1","e":{"c":400,"d":"*"}}}`)

		alice.Send(`{"m":{"id":"b1","r":"news","t":"t","c":"big news"}}`)
		alice.Expect(`{"m":{"id":"b1","r":"alice","sr":{"id":"b1"}}}`)
		carol.Expect(`{"m":{"id":"b1","s":"alice","r":"carol","t":"t","c":"big news","st":"*","p":"1","sc":"1","pc":"1"}}`)
		m := bob.next()
		if body(m) != "big news" || m.ID != "b1" || m.Type != "chat" || !strings.HasPrefix(m.From, aliceJID) || m.Request == nil {
			t.Fatalf("bob got %+v", m)
		}
		// Bob's receipt reaches the owner.
		bob.send(`<message to="` + aliceJID + `" id="r1"><received xmlns="urn:xmpp:receipts" id="b1"/></message>`)
		alice.Expect(`{"m":{"id":"*","s":"` + bobJID + `","r":"alice","st":"*","dm":{"id":"b1"}}}`)

		// Banished from the list: bob gets nothing more.
		alice.Send(`{"rq":{"id":"x1","br":{"t":"b","i":"news","m":["` + bobJID + `"]}}}`)
		alice.Expect(`{"rp":{"id":"x1"}}`)
		alice.Send(`{"m":{"id":"b2","r":"news","t":"t","c":"only carol"}}`)
		alice.Expect(`{"m":{"id":"b2","r":"alice","sr":{"id":"b2"}}}`)
		carol.Expect(`{"m":{"id":"b2","s":"alice","r":"carol","t":"t","c":"only carol","st":"*","p":"1","sc":"1","pc":"1"}}`)
		alice.Send(`{"m":{"id":"m9","r":"` + bobJID + `","t":"t","c":"direct"}}`)
		alice.Expect(`{"m":{"id":"m9","r":"alice","sr":{"id":"m9"}}}`)
		if m := bob.next(); body(m) != "direct" {
			t.Fatalf("bob wanted the direct message (not b2), got %+v", m)
		}
	})
}

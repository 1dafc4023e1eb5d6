package xmppside_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"

	"github.com/lempgw/lempgw/internal/lemptest"
	"github.com/lempgw/lempgw/internal/testenv"
	"github.com/lempgw/lempgw/state"
)

// mucStanza is a stanza a raw client received, with the MUC parts a test
// looks at, and its XML.
type mucStanza struct {
	XMLName xml.Name
	From    string  `xml:"from,attr"`
	To      string  `xml:"to,attr"`
	Type    string  `xml:"type,attr"`
	ID      string  `xml:"id,attr"`
	Body    string  `xml:"body"`
	Subject *string `xml:"subject"`
	Delay   *struct {
		Stamp string `xml:"stamp,attr"`
	} `xml:"urn:xmpp:delay delay"`
	User *struct {
		Items []struct {
			JID         string `xml:"jid,attr"`
			Affiliation string `xml:"affiliation,attr"`
			Role        string `xml:"role,attr"`
		} `xml:"item"`
		Status []struct {
			Code string `xml:"code,attr"`
		} `xml:"status"`
		Invite *struct {
			From string `xml:"from,attr"`
		} `xml:"invite"`
		Destroy *struct{} `xml:"destroy"`
	} `xml:"http://jabber.org/protocol/muc#user x"`
	Conference *struct {
		JID string `xml:"jid,attr"`
	} `xml:"jabber:x:conference x"`
	Error *struct {
		Type string `xml:"type,attr"`
		Cond []struct {
			XMLName xml.Name
		} `xml:",any"`
	} `xml:"error"`
	raw string
}

func (s mucStanza) status(code string) bool {
	if s.User == nil {
		return false
	}
	for _, c := range s.User.Status {
		if c.Code == code {
			return true
		}
	}
	return false
}

func (s mucStanza) condition() string {
	if s.Error == nil || len(s.Error.Cond) == 0 {
		return ""
	}
	return s.Error.Cond[0].XMLName.Local
}

// mucClient is a real XMPP client that keeps every stanza it receives.
type mucClient struct {
	t    *testing.T
	sess *xmpp.Session
	in   chan mucStanza
}

func newMUCClient(t *testing.T, srv *testenv.XMPPServer, user string) *mucClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sess := testenv.ClientSession(ctx, t, srv, user, user+"-pw")
	c := &mucClient{t: t, sess: sess, in: make(chan mucStanza, 1024)}
	go func() {
		_ = sess.Serve(xmpp.HandlerFunc(func(tr xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			var buf bytes.Buffer
			e := xml.NewEncoder(&buf)
			if _, err := xmlstream.Copy(e, xmlstream.MultiReader(xmlstream.Token(*start), tr)); err != nil {
				return nil
			}
			_ = e.Flush()
			var s mucStanza
			if err := xml.Unmarshal(buf.Bytes(), &s); err == nil {
				s.raw = buf.String()
				c.in <- s
			}
			return nil
		}))
	}()
	c.send(`<presence/>`)
	return c
}

func (c *mucClient) send(raw string) {
	c.t.Helper()
	if err := c.sess.Send(context.Background(), xml.NewDecoder(strings.NewReader(raw))); err != nil {
		c.t.Fatalf("send %s: %v", raw, err)
	}
}

// await returns the first stanza that ok accepts, skipping others.
func (c *mucClient) await(what string, ok func(mucStanza) bool) mucStanza {
	c.t.Helper()
	deadline := time.After(lemptest.Wait)
	for {
		select {
		case s := <-c.in:
			if ok(s) {
				return s
			}
		case <-deadline:
			c.t.Fatalf("no %s within %v", what, lemptest.Wait)
		}
	}
}

// none checks that no stanza ok accepts arrives within d.
func (c *mucClient) none(what string, d time.Duration, ok func(mucStanza) bool) {
	c.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case s := <-c.in:
			if ok(s) {
				c.t.Fatalf("unexpected %s: %s", what, s.raw)
			}
		case <-deadline:
			return
		}
	}
}

// join sends a join to room/nick and collects what the room sends until the
// subject (the last thing of a join, XEP-0045 7.2.15); an error presence
// ends it too.
func (c *mucClient) join(room, nick string) (got []mucStanza) {
	c.t.Helper()
	c.send(`<presence to="` + room + `/` + nick + `"><x xmlns="http://jabber.org/protocol/muc"/></presence>`)
	deadline := time.After(lemptest.Wait)
	for {
		select {
		case s := <-c.in:
			if !strings.HasPrefix(s.From, room) {
				continue
			}
			got = append(got, s)
			if s.Subject != nil || (s.XMLName.Local == "presence" && s.Type == "error") {
				return got
			}
		case <-deadline:
			c.t.Fatalf("join of %s/%s did not end within %v; got %d stanzas", room, nick, lemptest.Wait, len(got))
		}
	}
}

// TestHostedRoom: a LEMP group with a Jabber member, hosted as a MUC room of
// the gateway: invitation, join with occupants, history and subject,
// messages both ways, rename, errors for strangers and bad stanzas,
// banish, and destroy on terminate.
func TestHostedRoom(t *testing.T) {
	testenv.ForEachXMPPServer(t, func(t *testing.T, srv *testenv.XMPPServer) {
		srv.Register(t, "bob", "bob-pw")
		srv.Register(t, "dave", "dave-pw")
		r := startRig(t, srv, state.NewMemory())
		r.gw.User(t, "alice", false)
		r.gw.User(t, "carol", false)
		alice := r.gw.Login(t, "alice")
		carol := r.gw.Login(t, "carol")
		bob := newMUCClient(t, srv, "bob")
		dave := newMUCClient(t, srv, "dave")
		bobJID := "bob@" + srv.Domain
		room := "team@" + srv.MUCComponentDomain
		aliceJID := "alice@" + srv.ComponentDomain

		// Created with a Jabber member: bob is invited twice (mediated by the
		// room, and directly from alice's JID).
		alice.Send(`{"rq":{"id":"c1","g":{"t":"c","i":"team","n":"Team","m":["carol","` + bobJID + `"]}}}`)
		expectAll(t, alice, `{"rp":{"id":"c1"}}`, `{"i":{"g":{"t":"c","i":"team","n":"Team","s":"alice"}}}`)
		carol.Expect(`{"i":{"g":{"t":"c","i":"team","n":"Team","s":"alice"}}}`)
		var mediated, direct *mucStanza
		for mediated == nil || direct == nil {
			s := bob.await("invitations", func(s mucStanza) bool { return (s.User != nil && s.User.Invite != nil) || s.Conference != nil })
			if s.Conference != nil {
				direct = &s
			} else {
				mediated = &s
			}
		}
		if strings.ToLower(mediated.From) != room || !strings.HasPrefix(mediated.User.Invite.From, aliceJID) {
			t.Fatalf("mediated invitation: %s", mediated.raw)
		}
		if !strings.HasPrefix(direct.From, aliceJID) || direct.Conference.JID != room {
			t.Fatalf("direct invitation: %s", direct.raw)
		}

		// A message before bob joins: he sees it as history.
		alice.Send(`{"m":{"id":"h1","r":"team","t":"t","c":"before you came"}}`)
		alice.Expect(`{"m":{"id":"h1","r":"alice","sr":{"id":"h1"}}}`)
		carol.Expect(`{"m":{"id":"h1","s":"alice","r":"team","t":"t","c":"before you came","st":"*","p":"1","sc":"1","pc":"1"}}`)

		// Join: the LEMP members are occupants, then bob's own presence
		// (110), the history with its delay, the subject = the group name.
		got := bob.join(room, "bob")
		var occupants []string
		var self, history, subject bool
		for _, s := range got {
			switch {
			case s.XMLName.Local == "presence" && s.Type == "error":
				t.Fatalf("join refused: %s", s.raw)
			case s.XMLName.Local == "presence" && s.status("110"):
				self = true
			case s.XMLName.Local == "presence":
				occupants = append(occupants, s.From)
			case s.Subject != nil:
				subject = *s.Subject == "Team"
			case s.Body == "before you came":
				history = s.Delay != nil && s.From == room+"/alice"
			}
		}
		if !self || !history || !subject || len(occupants) != 2 {
			t.Fatalf("join: self %v history %v subject %v occupants %q\n%v", self, history, subject, occupants, got)
		}

		// Jabber -> LEMP, reflected to bob with his id.
		bob.send(`<message to="` + room + `" type="groupchat" id="x1"><body>hello from jabber</body></message>`)
		for _, c := range []*lemptest.Client{alice, carol} {
			c.Expect(`{"m":{"id":"x1","s":"` + bobJID + `","r":"team","t":"t","c":"hello from jabber","st":"*","p":"1","sc":"0","pc":"0"}}`)
		}
		refl := bob.await("reflection", func(s mucStanza) bool { return s.Type == "groupchat" && s.Body == "hello from jabber" })
		if refl.ID != "x1" || refl.From != room+"/bob" {
			t.Fatalf("reflection: %s", refl.raw)
		}

		// LEMP -> Jabber.
		alice.Send(`{"m":{"id":"m1","r":"team","t":"t","c":"hello from lemp"}}`)
		alice.Expect(`{"m":{"id":"m1","r":"alice","sr":{"id":"m1"}}}`)
		carol.Expect(`{"m":{"id":"m1","s":"alice","r":"team","t":"t","c":"hello from lemp","st":"*","p":"1","sc":"1","pc":"1"}}`)
		if m := bob.await("groupchat from alice", func(s mucStanza) bool { return s.Type == "groupchat" && s.From == room+"/alice" }); m.Body != "hello from lemp" {
			t.Fatalf("bob got %s", m.raw)
		}

		// Rename: a subject change.
		alice.Send(`{"rq":{"id":"n1","n":{"t":"s","i":"team","n":"Team 2"}}}`)
		expectAll(t, alice, `{"rp":{"id":"n1"}}`, `{"i":{"g":{"t":"n","i":"team","n":"Team 2","s":"alice"}}}`)
		carol.Expect(`{"i":{"g":{"t":"n","i":"team","n":"Team 2","s":"alice"}}}`)
		bob.await("subject Team 2", func(s mucStanza) bool { return s.Subject != nil && *s.Subject == "Team 2" })

		// Strangers and bad input get XEP-0045 errors; the link stays up.
		for _, c := range []struct{ to, cond string }{
			{room + "/dave", "registration-required"},
			{"nosuch@" + srv.MUCComponentDomain + "/dave", "item-not-found"},
		} {
			dave.send(`<presence to="` + c.to + `"><x xmlns="http://jabber.org/protocol/muc"/></presence>`)
			e := dave.await("join error", func(s mucStanza) bool { return s.XMLName.Local == "presence" && s.Type == "error" })
			if e.condition() != c.cond {
				t.Fatalf("join %s: want %s, got %s", c.to, c.cond, e.raw)
			}
		}
		dave.send(`<message to="` + room + `" type="groupchat" id="d1"><body>let me in</body></message>`)
		if e := dave.await("message error", func(s mucStanza) bool { return s.Type == "error" }); e.condition() != "not-acceptable" && e.condition() != "forbidden" {
			t.Fatalf("stranger's groupchat: %s", e.raw)
		}
		dave.send(`<iq type="get" to="` + room + `" id="q1"><query xmlns="http://jabber.org/protocol/disco#info"><garbage xmlns="x:y"><deep/></garbage></query></iq>`)
		dave.await("disco answer", func(s mucStanza) bool { return s.ID == "q1" })
		bob.send(`<message to="` + room + `" type="groupchat" id="x2"><body>still here</body></message>`)
		alice.Expect(`{"m":{"id":"x2","s":"` + bobJID + `","r":"team","t":"t","c":"still here","st":"*","p":"1","sc":"0","pc":"0"}}`)
		carol.Expect(`{"m":{"id":"x2","s":"` + bobJID + `","r":"team","t":"t","c":"still here","st":"*","p":"1","sc":"0","pc":"0"}}`)

		// Banished: bob is taken out of the room and hears nothing more.
		alice.Send(`{"rq":{"id":"b1","g":{"t":"b","i":"team","m":["` + bobJID + `"]}}}`)
		expectAll(t, alice, `{"rp":{"id":"b1"}}`, `{"i":{"g":{"t":"b","i":"team","m":"`+bobJID+`","s":"alice"}}}`)
		carol.Expect(`{"i":{"g":{"t":"b","i":"team","m":"` + bobJID + `","s":"alice"}}}`)
		out := bob.await("removal", func(s mucStanza) bool {
			return s.XMLName.Local == "presence" && s.Type == "unavailable" && s.From == room+"/bob"
		})
		if !out.status("110") || !(out.status("321") || out.status("301") || out.status("307")) {
			t.Fatalf("removal presence: %s", out.raw)
		}
		alice.Send(`{"m":{"id":"m2","r":"team","t":"t","c":"bob is gone"}}`)
		alice.Expect(`{"m":{"id":"m2","r":"alice","sr":{"id":"m2"}}}`)
		carol.Expect(`{"m":{"id":"m2","s":"alice","r":"team","t":"t","c":"bob is gone","st":"*","p":"1","sc":"1","pc":"1"}}`)
		bob.none("message after banish", 500*time.Millisecond, func(s mucStanza) bool { return s.Body == "bob is gone" })

		// Added back, joined, then the group ends: the room is destroyed.
		alice.Send(`{"rq":{"id":"a1","g":{"t":"a","i":"team","m":["` + bobJID + `"]}}}`)
		expectAll(t, alice, `{"rp":{"id":"a1"}}`, `{"i":{"g":{"t":"a","i":"team","m":["`+bobJID+`"],"s":"alice"}}}`)
		carol.Expect(`{"i":{"g":{"t":"a","i":"team","m":["` + bobJID + `"],"s":"alice"}}}`)
		bob.join(room, "bob")
		alice.Send(`{"rq":{"id":"t1","g":{"t":"t","i":"team"}}}`)
		expectAll(t, alice, `{"rp":{"id":"t1"}}`, `{"i":{"g":{"t":"t","i":"team","s":"alice"}}}`)
		d := bob.await("destroy", func(s mucStanza) bool {
			return s.XMLName.Local == "presence" && s.Type == "unavailable" && s.User != nil && s.User.Destroy != nil
		})
		if d.From != room+"/bob" {
			t.Fatalf("destroy: %s", d.raw)
		}
		bob.send(`<presence to="` + room + `/bob"><x xmlns="http://jabber.org/protocol/muc"/></presence>`)
		if e := bob.await("join error", func(s mucStanza) bool { return s.XMLName.Local == "presence" && s.Type == "error" }); e.condition() != "gone" && e.condition() != "item-not-found" {
			t.Fatalf("joining a destroyed room: %s", e.raw)
		}
	})
}

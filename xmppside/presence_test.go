package xmppside_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lempgw/lempgw/internal/lemptest"
	"github.com/lempgw/lempgw/internal/testenv"
	"github.com/lempgw/lempgw/mapping"
	"github.com/lempgw/lempgw/state"
)

// iqStanza is an IQ answer the Jabber test client received.
type iqStanza struct {
	XMLName xml.Name
	ID      string                `xml:"id,attr"`
	From    string                `xml:"from,attr"`
	To      string                `xml:"to,attr"`
	Type    string                `xml:"type,attr"`
	Last    *mapping.LastActivity `xml:"jabber:iq:last query"`
	VCard   *mapping.VCard        `xml:"vcard-temp vCard"`
	Disco   *struct {
		Identities []struct {
			Category string `xml:"category,attr"`
			Type     string `xml:"type,attr"`
		} `xml:"identity"`
		Features []struct {
			Var string `xml:"var,attr"`
		} `xml:"feature"`
	} `xml:"http://jabber.org/protocol/disco#info query"`
	Time *struct {
		UTC string `xml:"utc"`
	} `xml:"urn:xmpp:time time"`
	Error *struct {
		Type  string `xml:"type,attr"`
		Conds []struct {
			XMLName xml.Name
		} `xml:",any"`
	} `xml:"error"`
}

// condition is the stanza error condition of an error answer.
func (iq iqStanza) condition() string {
	if iq.Error == nil {
		return ""
	}
	for _, c := range iq.Error.Conds {
		if c.XMLName.Space == "urn:ietf:params:xml:ns:xmpp-stanzas" && c.XMLName.Local != "text" {
			return c.XMLName.Local
		}
	}
	return ""
}

func randID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// query sends an IQ (to "" is the client's own account) and returns the answer.
func (j *jabber) query(typ, to, payload string) iqStanza {
	j.t.Helper()
	id := "q" + randID()
	toAttr := ""
	if to != "" {
		toAttr = ` to="` + to + `"`
	}
	j.send(`<iq type="` + typ + `" id="` + id + `"` + toAttr + `>` + payload + `</iq>`)
	deadline := time.After(lemptest.Wait)
	for {
		select {
		case iq := <-j.iqs:
			if iq.ID == id {
				return iq
			}
		case <-deadline:
			j.t.Fatalf("no answer to the iq %s to %q within %v", payload, to, lemptest.Wait)
		}
	}
}

// expectPresence waits for a presence of type typ ("" = available) from the
// bare JID from, skipping any other presence.
func (j *jabber) expectPresence(from, typ string) mapping.Presence {
	j.t.Helper()
	deadline := time.After(lemptest.Wait)
	for {
		select {
		case p := <-j.pres:
			if bare(p.From) == from && p.Type == typ {
				return p
			}
		case <-deadline:
			j.t.Fatalf("no presence %q from %s within %v", typ, from, lemptest.Wait)
		}
	}
}

// quietPresence checks that no presence from the bare JID from arrives within d.
func (j *jabber) quietPresence(from string, d time.Duration) {
	j.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case p := <-j.pres:
			if bare(p.From) == from {
				j.t.Fatalf("unexpected presence %q from %s", p.Type, p.From)
			}
		case <-deadline:
			return
		}
	}
}

func bare(s string) string {
	b, _, _ := strings.Cut(s, "/")
	return b
}

// rq sends a LEMP request and returns its response, decoded.
func rq(c *lemptest.Client, id, body string) map[string]any {
	c.Send(`{"rq":{"id":"` + id + `",` + body + `}}`)
	return c.Expect(`{"rp":"*"}`)
}

// field digs a value out of a decoded frame.
func field(t *testing.T, v any, path ...string) any {
	t.Helper()
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("no %s in %v", k, v)
		}
		v = m[k]
	}
	return v
}

// eventually retries f until it is true or the wait is over.
func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(lemptest.Wait)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, lemptest.Wait)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// statusOf asks alice's gateway for the status of who (st get).
func statusOf(t *testing.T, c *lemptest.Client, who string) string {
	t.Helper()
	rp := rq(c, "st-"+randID(), `"st":{"t":"g","u":"`+who+`"}`)
	s, _ := field(t, rp, "rp", "st", "s").(string)
	return s
}

// stateOf asks for the state (last offline) of who.
func stateOf(t *testing.T, c *lemptest.Client, who string) int64 {
	t.Helper()
	rp := rq(c, "s-"+randID(), `"s":{"u":"`+who+`"}`)
	v, ok := field(t, rp, "rp", "s", "v").(float64)
	if !ok {
		t.Fatalf("no state in %v", rp)
	}
	return int64(v)
}

func followers(t *testing.T, r *rig, user string) []string {
	t.Helper()
	fs, err := r.gw.Store.Followers(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

// TestFollowJabberUser: af of a Jabber user is a subscription request from
// the LEMP user's bare JID; once approved, the Jabber user's presence is
// li/lo with status and last-offline time; rf ends the subscription.
func TestFollowJabberUser(t *testing.T) {
	testenv.ForEachXMPPServer(t, func(t *testing.T, srv *testenv.XMPPServer) {
		srv.Register(t, "bob", "bob-pw")
		r := startRig(t, srv, state.NewMemory())
		r.gw.User(t, "alice", false)
		alice := r.gw.Login(t, "alice")
		bob := newJabber(t, srv, "bob")
		bobJID, aliceJID := "bob@"+srv.Domain, "alice@"+srv.ComponentDomain

		alice.Send(`{"rq":{"id":"f1","af":[{"u":"` + bobJID + `","n":"Bob"}]}}`)
		alice.Expect(`{"rp":{"id":"f1"}}`)
		sub := bob.expectPresence(aliceJID, "subscribe")
		if sub.From != aliceJID {
			t.Errorf("subscribe from %q, want the bare JID %s", sub.From, aliceJID)
		}
		if sub.Nick == nil || sub.Nick.Text != "alice" {
			t.Errorf("subscribe without nick alice: %+v", sub.Nick)
		}
		alice.Send(`{"rq":{"id":"f2","get":{"o":"f"}}}`)
		alice.Expect(`{"rp":{"id":"f2","f":[{"u":"` + bobJID + `","n":"Bob"}]}}`)
		// Pending: no li until bob approves.
		alice.Quiet(300 * time.Millisecond)

		bob.send(`<presence to="` + aliceJID + `" type="subscribed"/>`)
		alice.Expect(`{"i":{"li":"` + bobJID + `"}}`)
		if v := stateOf(t, alice, bobJID); v != 0 {
			t.Errorf("state of available bob = %d, want 0", v)
		}

		// A status change is recorded (no second li).
		bob.send(`<presence><status>at lunch</status></presence>`)
		eventually(t, "bob's status", func() bool { return statusOf(t, alice, bobJID) == "at lunch" })

		// Unavailable: lo, and the last-offline time.
		before := time.Now().UnixMilli()
		bob.send(`<presence type="unavailable"><status>gone home</status></presence>`)
		alice.Expect(`{"i":{"lo":"` + bobJID + `"}}`)
		after := time.Now().UnixMilli()
		if v := stateOf(t, alice, bobJID); v < before || v > after {
			t.Errorf("state of offline bob = %d, want within [%d, %d]", v, before, after)
		}
		if s := statusOf(t, alice, bobJID); s != "gone home" {
			t.Errorf("status of offline bob = %q", s)
		}
		bob.send(`<presence/>`)
		alice.Expect(`{"i":{"li":"` + bobJID + `"}}`)

		// A second LEMP session gets li for bob at login, from what is known.
		alice.WS.Close()
		alice = r.gw.Login(t, "alice")
		alice.Expect(`{"i":{"li":"` + bobJID + `"}}`)

		// bob follows alice too; rf ends both: unsubscribe and unsubscribed;
		// no more li/lo.
		bob.send(`<presence to="` + aliceJID + `" type="subscribe"/>`)
		bob.expectPresence(aliceJID, "subscribed")
		bob.expectPresence(aliceJID, "")
		alice.Send(`{"rq":{"id":"f3","rf":["` + bobJID + `"]}}`)
		alice.Expect(`{"rp":{"id":"f3"}}`)
		bob.expectPresence(aliceJID, "unsubscribe")
		bob.expectPresence(aliceJID, "unsubscribed")
		bob.send(`<presence type="unavailable"/>`)
		bob.send(`<presence/>`)
		alice.Quiet(500 * time.Millisecond)
	})
}

// TestJabberUserFollows: a Jabber user subscribing to a LEMP user is
// approved and recorded as a follower; it gets the LEMP user's current
// presence, then login, status and logout as presence; probes (a new
// resource logging in) are answered; unsubscribe removes the follower.
func TestJabberUserFollows(t *testing.T) {
	testenv.ForEachXMPPServer(t, func(t *testing.T, srv *testenv.XMPPServer) {
		srv.Register(t, "bob", "bob-pw")
		r := startRig(t, srv, state.NewMemory())
		r.gw.User(t, "alice", false)
		bob := newJabber(t, srv, "bob")
		bobJID, aliceJID := "bob@"+srv.Domain, "alice@"+srv.ComponentDomain

		bob.send(`<presence to="` + aliceJID + `" type="subscribe"/>`)
		p := bob.expectPresence(aliceJID, "subscribed")
		if p.From != aliceJID {
			t.Errorf("subscribed from %q", p.From)
		}
		bob.expectPresence(aliceJID, "unavailable") // alice is offline
		if fs := followers(t, r, "alice"); !slices.Contains(fs, bobJID) {
			t.Fatalf("alice's followers %v lack %s", fs, bobJID)
		}

		alice := r.gw.Login(t, "alice")
		p = bob.expectPresence(aliceJID, "")
		if p.From != aliceJID+"/lemp" {
			t.Errorf("available from %q, want %s/lemp", p.From, aliceJID)
		}
		alice.Send(`{"rq":{"id":"st1","st":{"t":"s","s":"busy"}}}`)
		alice.Expect(`{"rp":{"id":"st1"}}`)
		if p = bob.expectPresence(aliceJID, ""); p.StatusText() != "busy" {
			t.Errorf("status %q, want busy", p.StatusText())
		}

		// A new resource of bob: its server probes alice, the gateway answers.
		bob2 := newJabber(t, srv, "bob")
		if p = bob2.expectPresence(aliceJID, ""); p.StatusText() != "busy" || p.From != aliceJID+"/lemp" {
			t.Errorf("probe answer %+v", p)
		}

		alice.WS.Close()
		p = bob.expectPresence(aliceJID, "unavailable")
		if p.From != aliceJID+"/lemp" {
			t.Errorf("unavailable from %q", p.From)
		}

		// Offline: a probe answer carries the last-offline time.
		bob3 := newJabber(t, srv, "bob")
		p = bob3.expectPresence(aliceJID, "unavailable")
		if p.Delay == nil || p.Delay.Stamp == "" {
			t.Errorf("unavailable probe answer without delay: %+v", p)
		}
		bob.expectPresence(aliceJID, "unavailable") // the same answer, to bob's bare JID

		bob.send(`<presence to="` + aliceJID + `" type="unsubscribe"/>`)
		bob.expectPresence(aliceJID, "unavailable") // RFC 6121 3.3.3
		eventually(t, "bob unfollows alice", func() bool { return !slices.Contains(followers(t, r, "alice"), bobJID) })
		// No presence for bob any more.
		r.gw.Login(t, "alice")
		bob.quietPresence(aliceJID, 500*time.Millisecond)
	})
}

// TestLEMPUserVCardAndLastActivity: Jabber users ask a LEMP user's
// vcard-temp (picture set by LEMP p, nickname) and XEP-0012 last activity.
func TestLEMPUserVCardAndLastActivity(t *testing.T) {
	testenv.ForEachXMPPServer(t, func(t *testing.T, srv *testenv.XMPPServer) {
		srv.Register(t, "bob", "bob-pw")
		r := startRig(t, srv, state.NewMemory())
		r.gw.User(t, "alice", false)
		r.gw.User(t, "carol", false)
		bob := newJabber(t, srv, "bob")
		aliceJID := "alice@" + srv.ComponentDomain

		// Never seen: item-not-found.
		if iq := bob.query("get", aliceJID, `<query xmlns="jabber:iq:last"/>`); iq.Type != "error" || iq.condition() != "item-not-found" {
			t.Errorf("last activity of a never seen user: %+v", iq)
		}
		alice := r.gw.Login(t, "alice")
		alice.Send(`{"rq":{"id":"p1","p":{"t":"s","v":"https://pics.example.org/alice.png"}}}`)
		alice.Expect(`{"rp":{"id":"p1"}}`)
		iq := bob.query("get", aliceJID, `<vCard xmlns="vcard-temp"/>`)
		if iq.Type != "result" || iq.VCard == nil || iq.VCard.Nickname != "alice" || iq.VCard.Photo == nil ||
			iq.VCard.Photo.ExtVal != "https://pics.example.org/alice.png" {
			t.Fatalf("vCard of alice: %+v %+v", iq, iq.VCard)
		}
		if iq.From != aliceJID {
			t.Errorf("vCard answer from %q", iq.From)
		}
		// A user without a picture: a vCard with the nickname only.
		if iq = bob.query("get", "carol@"+srv.ComponentDomain, `<vCard xmlns="vcard-temp"/>`); iq.Type != "result" || iq.VCard == nil || iq.VCard.Photo != nil || iq.VCard.Nickname != "carol" {
			t.Errorf("vCard of carol: %+v", iq)
		}
		if iq = bob.query("set", aliceJID, `<vCard xmlns="vcard-temp"><NICKNAME>mallory</NICKNAME></vCard>`); iq.Type != "error" || iq.condition() != "not-allowed" {
			t.Errorf("vCard set: %+v", iq)
		}
		if iq = bob.query("get", "nobody@"+srv.ComponentDomain, `<vCard xmlns="vcard-temp"/>`); iq.Type != "error" || iq.condition() != "item-not-found" {
			t.Errorf("vCard of nobody: %+v", iq)
		}

		// Online: 0 seconds.
		if iq = bob.query("get", aliceJID, `<query xmlns="jabber:iq:last"/>`); iq.Type != "result" || iq.Last == nil || iq.Last.Seconds != "0" {
			t.Fatalf("last activity of online alice: %+v %+v", iq, iq.Last)
		}
		alice.WS.Close()
		eventually(t, "alice's logout recorded", func() bool {
			u, err := r.gw.Store.GetUser(context.Background(), "alice")
			return err == nil && u.LastSeen != 0 && !r.gw.Hub.Online("alice")
		})
		time.Sleep(1100 * time.Millisecond)
		iq = bob.query("get", aliceJID, `<query xmlns="jabber:iq:last"/>`)
		if iq.Type != "result" || iq.Last == nil {
			t.Fatalf("last activity of offline alice: %+v", iq)
		}
		idle, err := mapping.IdleOf(iq.Last)
		if err != nil || idle < time.Second || idle > 30*time.Second {
			t.Errorf("last activity of offline alice: %q seconds (%v)", iq.Last.Seconds, err)
		}
	})
}

// TestJabberUserPictureAndState: a LEMP user's p get of a Jabber user
// fetches its vcard-temp (EXTVAL, or BINVAL as a data: URL); s get asks
// XEP-0012 when no presence was seen; with the link down, p get is 503.
func TestJabberUserPictureAndState(t *testing.T) {
	testenv.ForEachXMPPServer(t, func(t *testing.T, srv *testenv.XMPPServer) {
		for _, u := range []string{"bob", "carol", "dave"} {
			srv.Register(t, u, u+"-pw")
		}
		st := state.NewMemory()
		bobJID, carolJID, daveJID := "bob@"+srv.Domain, "carol@"+srv.Domain, "dave@"+srv.Domain
		aliceJID := "alice@" + srv.ComponentDomain

		var logoutBefore, logoutAfter int64
		t.Run("subscribe", func(t *testing.T) {
			// A first gateway: alice follows bob, bob approves, then logs out.
			r := startRig(t, srv, st)
			r.gw.User(t, "alice", false)
			r.gw.User(t, "erin", false)
			alice := r.gw.Login(t, "alice")
			bob := newJabber(t, srv, "bob")
			alice.Send(`{"rq":{"id":"f1","af":[{"u":"` + bobJID + `"}]}}`)
			alice.Expect(`{"rp":{"id":"f1"}}`)
			bob.expectPresence(aliceJID, "subscribe")
			bob.send(`<presence to="` + aliceJID + `" type="subscribed"/>`)
			alice.Expect(`{"i":{"li":"` + bobJID + `"}}`)
			iq := bob.query("set", "", `<vCard xmlns="vcard-temp"><PHOTO><EXTVAL>https://x/y.png</EXTVAL></PHOTO></vCard>`)
			if iq.Type != "result" {
				t.Fatalf("bob's vCard set: %+v", iq)
			}
			logoutBefore = time.Now().UnixMilli()
			bob.send(`<presence type="unavailable"/>`)
			alice.Expect(`{"i":{"lo":"` + bobJID + `"}}`)
			logoutAfter = time.Now().UnixMilli()
			bob.sess.Close()
		})

		// A second gateway on the same state knows no presence: erin (who
		// follows nobody, so probes nothing) asks bob's state, answered by
		// XEP-0012 asked as alice, bob's subscriber.
		// XEP-0012 counts whole seconds, and 0 reads as online.
		time.Sleep(1500 * time.Millisecond)
		r := startRig(t, srv, st)
		erin := r.gw.Login(t, "erin")
		if v := stateOf(t, erin, bobJID); v < logoutBefore-1000 || v > logoutAfter+1000 {
			t.Errorf("state of bob from XEP-0012 = %d, want within [%d, %d] (to the second)", v, logoutBefore, logoutAfter)
		}
		// dave has no subscriber among LEMP users: his server refuses; -1.
		if v := stateOf(t, erin, daveJID); v != -1 {
			t.Errorf("state of dave = %d, want -1", v)
		}

		// Pictures.
		carol := newJabber(t, srv, "carol")
		png := "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
		iq := carol.query("set", "", `<vCard xmlns="vcard-temp"><PHOTO><TYPE>image/png</TYPE><BINVAL>`+png[:40]+"\n"+png[40:]+`</BINVAL></PHOTO></vCard>`)
		if iq.Type != "result" {
			t.Fatalf("carol's vCard set: %+v", iq)
		}
		erin.Send(`{"rq":{"id":"p1","p":{"t":"g","u":"` + bobJID + `"}}}`)
		erin.Expect(`{"rp":{"id":"p1","p":{"u":"` + bobJID + `","v":"https://x/y.png"}}}`)
		erin.Send(`{"rq":{"id":"p2","p":{"t":"g","u":"` + carolJID + `"}}}`)
		erin.Expect(`{"rp":{"id":"p2","p":{"u":"` + carolJID + `","v":"data:image/png;base64,` + png + `"}}}`)
		erin.Send(`{"rq":{"id":"p3","p":{"t":"g","u":"` + daveJID + `"}}}`)
		erin.Expect(`{"rp":{"id":"p3","p":{"u":"` + daveJID + `"}}}`)

		// The link down: 503, at once.
		srv.Stop()
		eventually(t, "link down", func() bool { return !r.comp.Up() })
		start := time.Now()
		erin.Send(`{"rq":{"id":"p4","p":{"t":"g","u":"frank@` + srv.Domain + `"}}}`)
		erin.Expect(`{"rp":{"id":"p4","e":{"c":503,"d":"*"}}}`)
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("503 took %v", d)
		}
		// Status and personal info never wait for the server: they still answer.
		erin.Send(`{"rq":{"id":"s9","st":{"t":"g","u":"frank@` + srv.Domain + `"}}}`)
		erin.Expect(`{"rp":{"id":"s9","st":{"u":"frank@` + srv.Domain + `"}}}`)
		erin.Send(`{"rq":{"id":"i9","i":{"u":"frank@` + srv.Domain + `"}}}`)
		erin.Expect(`{"rp":{"id":"i9","i":{"u":"frank@` + srv.Domain + `","c":0,"r":0}}}`)
	})
}

// TestBlockJabberUser: nothing from a blocked JID reaches the LEMP user:
// not its subscription request (answered unsubscribed), not its presence,
// not its messages. Unblocking lets them through again.
func TestBlockJabberUser(t *testing.T) {
	testenv.ForEachXMPPServer(t, func(t *testing.T, srv *testenv.XMPPServer) {
		srv.Register(t, "bob", "bob-pw")
		r := startRig(t, srv, state.NewMemory())
		r.gw.User(t, "alice", false)
		alice := r.gw.Login(t, "alice")
		bob := newJabber(t, srv, "bob")
		bobJID, aliceJID := "bob@"+srv.Domain, "alice@"+srv.ComponentDomain

		alice.Send(`{"rq":{"id":"b1","b":{"u":"` + bobJID + `"}}}`)
		alice.Expect(`{"rp":{"id":"b1"}}`)
		alice.Send(`{"rq":{"id":"b2","get":{"o":"pr"}}}`)
		alice.Expect(`{"rp":{"id":"b2","pr":["` + bobJID + `"]}}`)

		bob.send(`<presence to="` + aliceJID + `" type="subscribe"/>`)
		bob.expectPresence(aliceJID, "unsubscribed")
		if fs := followers(t, r, "alice"); slices.Contains(fs, bobJID) {
			t.Errorf("blocked bob recorded as a follower: %v", fs)
		}
		// alice follows bob anyway; bob approves; his presence does not reach her.
		alice.Send(`{"rq":{"id":"f1","af":[{"u":"` + bobJID + `"}]}}`)
		alice.Expect(`{"rp":{"id":"f1"}}`)
		bob.expectPresence(aliceJID, "subscribe")
		bob.send(`<presence to="` + aliceJID + `" type="subscribed"/>`)
		bob.send(`<message to="` + aliceJID + `" type="chat" id="x1"><body>let me in</body></message>`)
		bob.send(`<presence><status>knock knock</status></presence>`)
		alice.Quiet(time.Second)

		// Unblocked: li (bob is available), then his messages.
		alice.Send(`{"rq":{"id":"u1","ub":{"u":"` + bobJID + `"}}}`)
		alice.Expect(`{"i":{"li":"` + bobJID + `"}}`)
		alice.Expect(`{"rp":{"id":"u1"}}`)
		bob.send(`<message to="` + aliceJID + `" type="chat" id="x2"><body>hello</body></message>`)
		alice.Expect(`{"m":{"id":"x2","s":"` + bobJID + `","r":"alice","t":"t","c":"hello","st":"*","p":"1","sc":"0","pc":"0"}}`)
		bob.send(`<presence type="unavailable"/>`)
		alice.Expect(`{"i":{"lo":"` + bobJID + `"}}`)
	})
}

// TestDiscoPingTime: disco#info, XEP-0199 ping and XEP-0202 time, asked of
// the component and of a user JID.
func TestDiscoPingTime(t *testing.T) {
	testenv.ForEachXMPPServer(t, func(t *testing.T, srv *testenv.XMPPServer) {
		srv.Register(t, "bob", "bob-pw")
		r := startRig(t, srv, state.NewMemory())
		r.gw.User(t, "alice", false)
		bob := newJabber(t, srv, "bob")
		aliceJID := "alice@" + srv.ComponentDomain

		iq := bob.query("get", srv.ComponentDomain, `<query xmlns="http://jabber.org/protocol/disco#info"/>`)
		if iq.Type != "result" || iq.Disco == nil || len(iq.Disco.Identities) == 0 ||
			iq.Disco.Identities[0].Category != "gateway" || iq.Disco.Identities[0].Type != "lemp" {
			t.Errorf("component disco#info: %+v", iq)
		}
		iq = bob.query("get", aliceJID, `<query xmlns="http://jabber.org/protocol/disco#info"/>`)
		if iq.Type != "result" || iq.Disco == nil || len(iq.Disco.Identities) == 0 || iq.Disco.Identities[0].Category != "account" {
			t.Fatalf("user disco#info: %+v", iq)
		}
		var vars []string
		for _, f := range iq.Disco.Features {
			vars = append(vars, f.Var)
		}
		for _, want := range []string{"urn:xmpp:ping", "urn:xmpp:time", "urn:xmpp:receipts", "jabber:iq:last", "vcard-temp"} {
			if !slices.Contains(vars, want) {
				t.Errorf("user disco#info lacks %s: %v", want, vars)
			}
		}
		for _, to := range []string{srv.ComponentDomain, aliceJID} {
			if iq = bob.query("get", to, `<ping xmlns="urn:xmpp:ping"/>`); iq.Type != "result" || iq.From != to {
				t.Errorf("ping %s: %+v", to, iq)
			}
			iq = bob.query("get", to, `<time xmlns="urn:xmpp:time"/>`)
			if iq.Type != "result" || iq.Time == nil {
				t.Fatalf("time %s: %+v", to, iq)
			}
			if ts, err := time.Parse(time.RFC3339, iq.Time.UTC); err != nil || time.Since(ts).Abs() > time.Minute {
				t.Errorf("time %s: %q (%v)", to, iq.Time.UTC, err)
			}
		}
		// A user that does not exist.
		if iq = bob.query("get", "nobody@"+srv.ComponentDomain, `<ping xmlns="urn:xmpp:ping"/>`); iq.Type != "error" || iq.condition() != "item-not-found" {
			t.Errorf("ping nobody: %+v", iq)
		}
	})
}

// TestHostileInput: stanzas the gateway can not use get a stanza error or
// are dropped and counted, the stream stays up and the next normal message
// flows.
func TestHostileInput(t *testing.T) {
	testenv.ForEachXMPPServer(t, func(t *testing.T, srv *testenv.XMPPServer) {
		srv.Register(t, "bob", "bob-pw")
		r := startRig(t, srv, state.NewMemory())
		r.gw.User(t, "alice", false)
		alice := r.gw.Login(t, "alice")
		bob := newJabber(t, srv, "bob")
		aliceJID, bobJID := "alice@"+srv.ComponentDomain, "bob@"+srv.Domain
		dom := srv.ComponentDomain

		expectError := func(id, cond string) {
			t.Helper()
			m := bob.next()
			if m.Type != "error" || m.ID != id {
				t.Fatalf("wanted an error for %s, got %+v", id, m)
			}
			if cond != "" && (m.Error == nil || string(m.Error.Condition) != cond) {
				t.Errorf("error for %s: %+v, want %s", id, m.Error, cond)
			}
		}

		// A localpart PRECIS refuses (the servers' stringprep accepts it).
		bob.send(`<message to="☃@` + dom + `" type="chat" id="h1"><body>snow</body></message>`)
		expectError("h1", "item-not-found") // read leniently: a name, of nobody
		if iq := bob.query("get", "☃@"+dom, `<ping xmlns="urn:xmpp:ping"/>`); iq.Type != "error" || iq.condition() != "item-not-found" {
			t.Errorf("ping to a snowman: %+v", iq)
		}
		bob.send(`<presence to="☃@` + dom + `" type="subscribe"/>`)
		if p := bob.expectPresence("☃@"+dom, "unsubscribed"); p.Type != "unsubscribed" {
			t.Errorf("subscribe to a snowman: %+v", p)
		}

		// Unknown payloads: ignored beside a body, dropped alone; an IQ
		// with one is service-unavailable.
		bob.send(`<message to="` + aliceJID + `" type="chat" id="h2"><body>with extras</body><foo xmlns="urn:example:unknown"><bar/></foo></message>`)
		alice.Expect(`{"m":{"id":"h2","s":"` + bobJID + `","r":"alice","t":"t","c":"with extras","st":"*","p":"1","sc":"0","pc":"0"}}`)
		bob.send(`<message to="` + aliceJID + `" type="chat" id="h3"><foo xmlns="urn:example:unknown"/></message>`)
		if iq := bob.query("get", aliceJID, `<foo xmlns="urn:example:unknown"/>`); iq.Type != "error" || iq.condition() != "service-unavailable" {
			t.Errorf("unknown iq: %+v", iq)
		}

		// Error stanzas that answer nothing we sent: dropped.
		bob.send(`<message to="` + aliceJID + `" type="error" id="h4"><error type="cancel"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></message>`)
		bob.send(`<presence to="` + aliceJID + `" type="error" id="h5"><error type="cancel"><remote-server-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></presence>`)

		// A body over the limit: bad-request.
		big := strings.Repeat("x", mapping.MaxBodyBytes+1)
		bob.send(`<message to="` + aliceJID + `" type="chat" id="h6"><body>` + big + `</body></message>`)
		expectError("h6", "bad-request")

		// A message to an unknown user: item-not-found.
		bob.send(`<message to="nobody@` + dom + `" type="chat" id="h7"><body>anyone?</body></message>`)
		expectError("h7", "item-not-found")

		// And the next normal message flows; nothing else reached alice.
		bob.send(`<message to="` + aliceJID + `" type="chat" id="h8"><body>still there?</body></message>`)
		alice.Expect(`{"m":{"id":"h8","s":"` + bobJID + `","r":"alice","t":"t","c":"still there?","st":"*","p":"1","sc":"0","pc":"0"}}`)
		alice.Quiet(300 * time.Millisecond)
		if !r.comp.Up() {
			t.Fatal("link down")
		}
		// A real refusal of a message alice sent still reaches her.
		alice.Send(`{"m":{"id":"h9","r":"nobody@` + srv.Domain + `","t":"t","c":"hello?"}}`)
		alice.Expect(`{"m":{"id":"h9","r":"alice","sr":{"id":"h9"}}}`)
		alice.Expect(`{"m":{"id":"h9","s":"nobody@` + srv.Domain + `","r":"alice","st":"*","e":{"c":"*","d":"*"}}}`)

		dropped := counter(t, r, "lempgw_stanzas_dropped_total")
		if dropped < 2 {
			t.Errorf("%v stanzas dropped and counted, want at least the two error stanzas", dropped)
		}
	})
}

// counter sums a counter family of the rig's registry.
func counter(t *testing.T, r *rig, name string) float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

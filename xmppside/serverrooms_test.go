package xmppside_test

import (
	"encoding/json"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lempgw/lempgw/internal/lemptest"
	"github.com/lempgw/lempgw/internal/testenv"
	"github.com/lempgw/lempgw/mapping"
	"github.com/lempgw/lempgw/state"
)

// expectAll reads frames until each of wants matched one (in any order);
// frames matching none of them fail the test.
func expectAll(t *testing.T, c *lemptest.Client, wants ...string) {
	t.Helper()
	left := make([]any, len(wants))
	for i, w := range wants {
		if err := json.Unmarshal([]byte(w), &left[i]); err != nil {
			t.Fatalf("bad want %s: %v", w, err)
		}
	}
	for len(left) > 0 {
		got := c.Next()
		var g any
		if err := json.Unmarshal([]byte(got), &g); err != nil {
			t.Fatalf("frame is not JSON: %s", got)
		}
		found := false
		for i, w := range left {
			if lemptest.Match(w, g) {
				left = append(left[:i], left[i+1:]...)
				found = true
				break
			}
		}
		if !found {
			t.Fatalf("unexpected frame %s; still waiting for %d of %q", got, len(left), wants)
		}
	}
}

// joinRoom makes j an occupant of room with nick, creating the room as a
// persistent, non-anonymous room when it does not exist yet. It returns the
// nicks of the occupants the room said were there (their presence comes
// before the self-presence).
func (j *jabber) joinRoom(room, nick string, create bool) (present []string) {
	j.t.Helper()
	me := room + "/" + nick
	j.send(`<presence to="` + me + `"><x xmlns="http://jabber.org/protocol/muc"><history maxstanzas="0"/></x></presence>`)
	deadline := time.After(lemptest.Wait)
	for {
		select {
		case p := <-j.pres:
			if p.From != me {
				if r, n, ok := strings.Cut(p.From, "/"); ok && r == room && p.Type == "" {
					present = append(present, n)
				}
				continue
			}
			if p.Type == "error" {
				j.t.Fatalf("joining %s: %+v", me, p.Error)
			}
			if create {
				iq := j.query("set", room, `<query xmlns="http://jabber.org/protocol/muc#owner"><x xmlns="jabber:x:data" type="submit">`+
					`<field var="FORM_TYPE"><value>http://jabber.org/protocol/muc#roomconfig</value></field>`+
					`<field var="muc#roomconfig_persistentroom"><value>1</value></field>`+
					`<field var="muc#roomconfig_whois"><value>anyone</value></field>`+
					`</x></query>`)
				if iq.Type != "result" {
					j.t.Fatalf("configuring %s: %+v", room, iq)
				}
			}
			return present
		case <-deadline:
			j.t.Fatalf("no self-presence from %s within %v", me, lemptest.Wait)
		}
	}
}

// expectOccupant waits for the presence of room/nick of type typ.
func (j *jabber) expectOccupant(room, nick, typ string) {
	j.t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case p := <-j.pres:
			if p.From == room+"/"+nick && p.Type == typ {
				return
			}
		case <-deadline:
			j.t.Fatalf("no presence %q of %s/%s", typ, room, nick)
		}
	}
}

// groupchat waits for the next groupchat message from room/nick.
func (j *jabber) groupchat(room, nick string) mapping.Message {
	j.t.Helper()
	for {
		m := j.next()
		if m.Type == "groupchat" && m.From == room+"/"+nick {
			return m
		}
	}
}

// TestServerRoom: a LEMP group whose id is a room of the XMPP server. The
// gateway joins the room for each LEMP member; room messages reach the
// members with r = the room and s = the author's real JID; a member's group
// message reaches the other LEMP members and the room; banish and terminate
// take occupants out; after a server restart the occupants are back.
func TestServerRoom(t *testing.T) {
	testenv.ForEachXMPPServer(t, func(t *testing.T, srv *testenv.XMPPServer) {
		srv.Register(t, "bob", "bob-pw")
		r := startRig(t, srv, state.NewMemory())
		r.gw.User(t, "alice", false)
		r.gw.User(t, "carol", false)
		alice := r.gw.Login(t, "alice")
		carol := r.gw.Login(t, "carol")
		room := "team@" + srv.MUCService
		bobJID := "bob@" + srv.Domain

		bob := newJabber(t, srv, "bob")
		bob.joinRoom(room, "bob", true)

		// alice makes the room a LEMP group with carol: both occupants join.
		alice.Send(`{"rq":{"id":"c1","g":{"t":"c","i":"` + room + `","n":"Team","m":["carol"]}}}`)
		expectAll(t, alice, `{"rp":{"id":"c1"}}`, `{"i":{"g":{"t":"c","i":"`+room+`","n":"Team","s":"alice"}}}`)
		carol.Expect(`{"i":{"g":{"t":"c","i":"` + room + `","n":"Team","s":"alice"}}}`)
		bob.expectOccupant(room, "alice", "")
		bob.expectOccupant(room, "carol", "")

		// Jabber -> LEMP: each member gets the message from bob's real JID.
		bob.send(`<message to="` + room + `" type="groupchat" id="x1"><body>hello team</body></message>`)
		for _, c := range []*lemptest.Client{alice, carol} {
			c.Expect(`{"m":{"id":"x1","s":"` + bobJID + `","r":"` + room + `","t":"t","c":"hello team","st":"*","p":"1","sc":"0","pc":"0"}}`)
		}

		// LEMP -> room: carol gets it from the gateway, bob from the room,
		// alice's own copy from the room is not delivered to anyone again.
		alice.Send(`{"m":{"id":"m1","r":"` + room + `","t":"t","c":"hi bob"}}`)
		alice.Expect(`{"m":{"id":"m1","r":"alice","sr":{"id":"m1"}}}`)
		carol.Expect(`{"m":{"id":"m1","s":"alice","r":"` + room + `","t":"t","c":"hi bob","st":"*","p":"1","sc":"1","pc":"1"}}`)
		if m := bob.groupchat(room, "alice"); body(m) != "hi bob" {
			t.Fatalf("bob got %+v", m)
		}
		alice.Quiet(300 * time.Millisecond)
		carol.Quiet(300 * time.Millisecond)

		// The server restarts: the gateway's occupants come back by themselves.
		srv.Restart(t)
		r.waitUp(t)
		bob = newJabber(t, srv, "bob")
		// The gateway's occupants may be in before bob or come after him.
		present := bob.joinRoom(room, "bob", false)
		for _, nick := range []string{"alice", "carol"} {
			if !slices.Contains(present, nick) {
				bob.expectOccupant(room, nick, "")
			}
		}
		bob.send(`<message to="` + room + `" type="groupchat" id="x2"><body>back again</body></message>`)
		for _, c := range []*lemptest.Client{alice, carol} {
			c.Expect(`{"m":{"id":"x2","s":"` + bobJID + `","r":"` + room + `","t":"t","c":"back again","st":"*","p":"1","sc":"0","pc":"0"}}`)
		}

		// Kicked by a moderator on the Jabber side: carol is still a member
		// of the LEMP group, so her occupant comes back (the room check).
		if iq := bob.query("set", room, `<query xmlns="http://jabber.org/protocol/muc#admin"><item nick="carol" role="none"><reason>test</reason></item></query>`); iq.Type != "result" {
			t.Fatalf("kick: %+v", iq)
		}
		bob.expectOccupant(room, "carol", "unavailable")
		bob.expectOccupant(room, "carol", "")

		// Banished: carol's occupant leaves, and carol gets nothing more.
		alice.Send(`{"rq":{"id":"b1","g":{"t":"b","i":"` + room + `","m":["carol"]}}}`)
		expectAll(t, alice, `{"rp":{"id":"b1"}}`, `{"i":{"g":{"t":"b","i":"`+room+`","m":"carol","s":"alice"}}}`)
		carol.Expect(`{"i":{"g":{"t":"b","i":"` + room + `","m":"carol","s":"alice"}}}`)
		bob.expectOccupant(room, "carol", "unavailable")
		bob.send(`<message to="` + room + `" type="groupchat" id="x3"><body>carol gone</body></message>`)
		alice.Expect(`{"m":{"id":"x3","s":"` + bobJID + `","r":"` + room + `","t":"t","c":"carol gone","st":"*","p":"1","sc":"0","pc":"0"}}`)
		carol.Quiet(500 * time.Millisecond)

		// Terminated: alice's occupant leaves too.
		alice.Send(`{"rq":{"id":"t1","g":{"t":"t","i":"` + room + `"}}}`)
		expectAll(t, alice, `{"rp":{"id":"t1"}}`, `{"i":{"g":{"t":"t","i":"`+room+`","s":"alice"}}}`)
		bob.expectOccupant(room, "alice", "unavailable")
	})
}

// testLogLevel is the rig's log level: warnings, or everything with
// LEMPGW_TEST_DEBUG set.
func testLogLevel() slog.Level {
	if os.Getenv("LEMPGW_TEST_DEBUG") != "" {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}

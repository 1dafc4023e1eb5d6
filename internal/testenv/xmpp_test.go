package testenv_test

import (
	"context"
	"encoding/xml"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/component"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/lempgw/lempgw/internal/testenv"
)

// chat is a message with a body.
type chat struct {
	stanza.Message
	Body string `xml:"body"`
}

// inbox serves sess in the background and collects the messages with a
// body it receives; the session's connection is closed when the test ends.
type inbox struct {
	msgs chan chat
	done chan struct{} // closed when Serve returns
	err  error         // Serve's error, set before done is closed
}

func serve(t *testing.T, sess *xmpp.Session) *inbox {
	t.Helper()
	in := &inbox{msgs: make(chan chat, 64), done: make(chan struct{})}
	go func() {
		defer close(in.done)
		in.err = sess.Serve(xmpp.HandlerFunc(func(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			if start.Name.Local != "message" {
				return nil
			}
			var m chat
			// The handler's reader starts after start, which the decoder must
			// see too.
			d := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), r))
			if err := d.Decode(&m); err != nil {
				return err
			}
			if m.Body != "" {
				select {
				case in.msgs <- m:
				default:
					t.Errorf("inbox of %s full, dropped %q", sess.LocalAddr(), m.Body)
				}
			}
			return nil
		}))
	}()
	t.Cleanup(func() {
		_ = sess.Conn().Close()
		<-in.done
	})
	return in
}

// next waits for the next message.
func (in *inbox) next(t *testing.T, s *testenv.XMPPServer, what string) chat {
	t.Helper()
	select {
	case m := <-in.msgs:
		return m
	case <-in.done:
		t.Fatalf("%s: session ended (%v) before a message arrived\n%s", what, in.err, s.Logs())
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no message within 10s\n%s", what, s.Logs())
	}
	panic("unreachable")
}

func send(ctx context.Context, t *testing.T, sess *xmpp.Session, from, to jid.JID, typ stanza.MessageType, body string) {
	t.Helper()
	m := chat{Message: stanza.Message{From: from, To: to, Type: typ}, Body: body}
	if err := sess.Encode(ctx, m); err != nil {
		t.Fatalf("sending %q to %s: %v", body, to, err)
	}
}

func available(ctx context.Context, t *testing.T, sess *xmpp.Session) {
	t.Helper()
	if err := sess.Send(ctx, stanza.Presence{}.Wrap(nil)); err != nil {
		t.Fatalf("initial presence: %v", err)
	}
}

func expect(t *testing.T, s *testenv.XMPPServer, m chat, from, to jid.JID, body string) {
	t.Helper()
	if m.Body != body || !m.From.Equal(from) || (!to.Equal(jid.JID{}) && !m.To.Equal(to)) {
		t.Fatalf("got message from %s to %s: %q; want from %s to %s: %q\n%s", m.From, m.To, m.Body, from, to, body, s.Logs())
	}
}

func context30s(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestXMPPServer runs the harness against each real server: client to
// client chat, both component domains in both directions, and a restart.
func TestXMPPServer(t *testing.T) {
	t.Parallel()
	testenv.ForEachXMPPServer(t, func(t *testing.T, s *testenv.XMPPServer) {
		t.Logf("%s: c2s %s, components %s (%s, %s), MUC %s, dir %s",
			s.Kind, s.C2SAddr, s.ComponentAddr, s.ComponentDomain, s.MUCComponentDomain, s.MUCService, s.Dir)
		if s.Domain != testenv.XMPPDomain || s.ComponentDomain != "lemp."+s.Domain ||
			s.MUCComponentDomain != "rooms."+s.Domain || s.MUCService != "conference."+s.Domain || s.ComponentSecret == "" {
			t.Fatalf("unexpected server description: %+v", s)
		}

		t.Run("ClientToClient", func(t *testing.T) { testClientToClient(t, s) })
		t.Run("Components", func(t *testing.T) { testComponents(t, s) })
		t.Run("BadCredentials", func(t *testing.T) { testBadCredentials(t, s) })
		t.Run("Restart", func(t *testing.T) { testRestart(t, s) })
	})
}

func testClientToClient(t *testing.T, s *testenv.XMPPServer) {
	ctx := context30s(t)
	s.Register(t, "alice", "alice-pw")
	s.Register(t, "bob", "bob-pw")
	alice := testenv.ClientSession(ctx, t, s, "alice", "alice-pw")
	bob := testenv.ClientSession(ctx, t, s, "bob", "bob-pw")
	if got := alice.LocalAddr(); !got.Bare().Equal(s.JID("alice")) || got.Resourcepart() == "" {
		t.Fatalf("alice bound %s, want a full JID of %s", got, s.JID("alice"))
	}
	bobIn := serve(t, bob)
	serve(t, alice)
	available(ctx, t, bob)
	available(ctx, t, alice)

	send(ctx, t, alice, jid.JID{}, s.JID("bob"), stanza.ChatMessage, "hello bob")
	m := bobIn.next(t, s, "bob")
	expect(t, s, m, alice.LocalAddr(), jid.JID{}, "hello bob")
}

func testComponents(t *testing.T, s *testenv.XMPPServer) {
	ctx := context30s(t)
	lemp := testenv.ComponentSession(ctx, t, s, s.ComponentDomain)
	rooms := testenv.ComponentSession(ctx, t, s, s.MUCComponentDomain)
	lempIn, roomsIn := serve(t, lemp), serve(t, rooms)

	s.Register(t, "carol", "carol-pw")
	carol := testenv.ClientSession(ctx, t, s, "carol", "carol-pw")
	carolIn := serve(t, carol)
	available(ctx, t, carol)

	someone := jid.MustParse("someone@" + s.ComponentDomain)
	room := jid.MustParse("room@" + s.MUCComponentDomain)

	// Client to each component: each domain reaches its own connection
	// only (carol's stanzas are routed in order, so had the room message
	// gone to lemp, lemp would see it before the second message).
	send(ctx, t, carol, jid.JID{}, someone, stanza.ChatMessage, "to lemp 1")
	send(ctx, t, carol, jid.JID{}, room, stanza.GroupChatMessage, "to rooms")
	send(ctx, t, carol, jid.JID{}, someone, stanza.ChatMessage, "to lemp 2")
	expect(t, s, lempIn.next(t, s, "lemp component"), carol.LocalAddr(), someone, "to lemp 1")
	expect(t, s, lempIn.next(t, s, "lemp component"), carol.LocalAddr(), someone, "to lemp 2")
	expect(t, s, roomsIn.next(t, s, "rooms component"), carol.LocalAddr(), room, "to rooms")

	// Components to the client, with an explicit from in their domain.
	send(ctx, t, lemp, someone, s.JID("carol"), stanza.ChatMessage, "from lemp")
	expect(t, s, carolIn.next(t, s, "carol"), someone, jid.JID{}, "from lemp")
	occupant := jid.MustParse(room.String() + "/nick")
	send(ctx, t, rooms, occupant, carol.LocalAddr(), stanza.GroupChatMessage, "from rooms")
	expect(t, s, carolIn.next(t, s, "carol"), occupant, carol.LocalAddr(), "from rooms")

	// A second connection for a connected component domain: Prosody
	// refuses it (conflict); ejabberd accepts it and balances routes.
	second, err := testenv.DialComponent(ctx, s, s.ComponentDomain)
	switch {
	case s.Kind == testenv.KindProsody && err == nil:
		_ = second.Close()
		_ = second.Conn().Close()
		t.Errorf("prosody accepted a second connection for %s", s.ComponentDomain)
	case s.Kind == testenv.KindEjabberd && err != nil:
		t.Errorf("ejabberd refused a second connection for %s: %v", s.ComponentDomain, err)
	case err == nil:
		_ = second.Close()
		_ = second.Conn().Close()
	default:
		t.Logf("%s refused a second connection for %s: %v", s.Kind, s.ComponentDomain, err)
	}

	// A component stanza without from: Prosody stamps the component
	// domain on it; ejabberd closes the stream (improper-addressing).
	send(ctx, t, lemp, jid.JID{}, s.JID("carol"), stanza.ChatMessage, "no from")
	if s.Kind == testenv.KindEjabberd {
		select {
		case <-lempIn.done:
			if lempIn.err == nil || !strings.Contains(lempIn.err.Error(), "improper-addressing") {
				t.Errorf("ejabberd ended the component stream with %v, want improper-addressing", lempIn.err)
			}
		case m := <-carolIn.msgs:
			t.Errorf("ejabberd delivered a component message without from, from %s", m.From)
		case <-time.After(10 * time.Second):
			t.Errorf("ejabberd kept the component stream after a stanza without from\n%s", s.Logs())
		}
		return
	}
	expect(t, s, carolIn.next(t, s, "carol"), jid.MustParse(s.ComponentDomain), jid.JID{}, "no from")
}

func testBadCredentials(t *testing.T, s *testenv.XMPPServer) {
	ctx := context30s(t)
	s.Register(t, "erin", "erin-pw")
	if sess, err := testenv.DialClient(ctx, s, "erin", "wrong"); err == nil {
		_ = sess.Conn().Close()
		t.Fatal("logged in with a wrong password")
	}
	conn, err := net.Dial("tcp", s.ComponentAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := component.NewSession(ctx, jid.MustParse(s.ComponentDomain), []byte("wrong"), conn); err == nil {
		t.Fatal("component handshake succeeded with a wrong secret")
	}
}

func testRestart(t *testing.T, s *testenv.XMPPServer) {
	ctx := context30s(t)
	s.Register(t, "dave", "dave-pw")
	lemp := testenv.ComponentSession(ctx, t, s, s.ComponentDomain)
	lempIn := serve(t, lemp)

	start := time.Now()
	s.Restart(t)
	t.Logf("%s restarted in %v", s.Kind, time.Since(start).Round(time.Millisecond))
	select {
	case <-lempIn.done:
	case <-time.After(10 * time.Second):
		t.Fatal("component session survived the restart")
	}

	// The component connects again, and the account survived.
	lemp = testenv.ComponentSession(ctx, t, s, s.ComponentDomain)
	lempIn = serve(t, lemp)
	dave := testenv.ClientSession(ctx, t, s, "dave", "dave-pw")
	daveIn := serve(t, dave)
	available(ctx, t, dave)
	someone := jid.MustParse("someone@" + s.ComponentDomain)
	send(ctx, t, dave, jid.JID{}, someone, stanza.ChatMessage, "after restart")
	expect(t, s, lempIn.next(t, s, "lemp component"), dave.LocalAddr(), someone, "after restart")
	send(ctx, t, lemp, someone, s.JID("dave"), stanza.ChatMessage, "welcome back")
	expect(t, s, daveIn.next(t, s, "dave"), someone, jid.JID{}, "welcome back")
}

// TestXMPPServersStop starts both kinds at once (separate instances side
// by side) and checks Stop leaves no process of theirs behind.
func TestXMPPServersStop(t *testing.T) {
	t.Parallel()
	servers := testenv.XMPPServers(t)
	for _, s := range servers {
		if n := processesUsing(t, s.Dir); n == 0 {
			t.Errorf("%s: no running process mentions %s", s.Kind, s.Dir)
		}
	}
	for _, s := range servers {
		s.Stop()
		if c, err := net.DialTimeout("tcp", s.C2SAddr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s: c2s %s still accepts connections after Stop", s.Kind, s.C2SAddr)
		}
		if n := processesUsing(t, s.Dir); n != 0 {
			t.Errorf("%s: %d processes mentioning %s left after Stop", s.Kind, n, s.Dir)
		}
		s.Stop() // idempotent
	}
}

// processesUsing counts live (not zombie) processes whose command line or
// working directory mentions dir (Linux /proc; skips elsewhere).
func processesUsing(t *testing.T, dir string) int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	n := 0
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if _, after, ok := strings.Cut(string(stat), ") "); !ok || strings.HasPrefix(after, "Z") {
			continue // gone, or a zombie
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		cwd, _ := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if strings.Contains(string(cmdline), dir) || strings.HasPrefix(cwd, dir) {
			n++
		}
	}
	return n
}

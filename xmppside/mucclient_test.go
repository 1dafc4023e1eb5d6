package xmppside_test

import (
	"context"
	"encoding/xml"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/muc"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/lempgw/lempgw/internal/lemptest"
	"github.com/lempgw/lempgw/internal/testenv"
	"github.com/lempgw/lempgw/state"
)

// TestMelliumMUCClient: mellium's own MUC client joins a room of the
// gateway's MUC service, chats and leaves cleanly.
func TestMelliumMUCClient(t *testing.T) {
	testenv.ForEachXMPPServer(t, func(t *testing.T, srv *testenv.XMPPServer) {
		srv.Register(t, "bob", "bob-pw")
		r := startRig(t, srv, state.NewMemory())
		r.gw.User(t, "alice", false)
		alice := r.gw.Login(t, "alice")
		bobJID := "bob@" + srv.Domain
		alice.Send(`{"rq":{"id":"c1","g":{"t":"c","i":"club","n":"Club","m":["` + bobJID + `"]}}}`)
		expectAll(t, alice, `{"rp":{"id":"c1"}}`, `{"i":{"g":{"t":"c","i":"club","n":"Club","s":"alice"}}}`)

		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		sess := testenv.ClientSession(ctx, t, srv, "bob", "bob-pw")
		type groupchat struct {
			stanza.Message
			Body string `xml:"body"`
		}
		bodies := make(chan groupchat, 16)
		mc := &muc.Client{}
		m := mux.New("jabber:client",
			muc.HandleClient(mc),
			mux.MessageFunc(stanza.GroupChatMessage, xml.Name{Space: "jabber:client", Local: "body"},
				func(_ stanza.Message, t xmlstream.TokenReadEncoder) error {
					var g groupchat
					if err := xml.NewTokenDecoder(t).Decode(&g); err == nil {
						bodies <- g
					}
					return nil
				}),
		)
		go func() { _ = sess.Serve(m) }()

		occ := jid.MustParse("club@" + srv.MUCComponentDomain + "/bob")
		ch, err := mc.Join(ctx, occ, sess, muc.MaxHistory(0))
		if err != nil {
			t.Fatalf("mellium's muc client could not join: %v", err)
		}
		// (Channel.Joined is not used: in mellium v0.23.0 it looks the
		// channel up by the room's bare JID, which Join does not register.)
		err = sess.Encode(ctx, groupchat{Message: stanza.Message{ID: "mc1", To: occ.Bare(), Type: stanza.GroupChatMessage}, Body: "from mellium"})
		if err != nil {
			t.Fatal(err)
		}
		alice.Expect(`{"m":{"id":"mc1","s":"` + bobJID + `","r":"club","t":"t","c":"from mellium","st":"*","p":"1","sc":"0","pc":"0"}}`)
		alice.Send(`{"m":{"id":"a1","r":"club","t":"t","c":"to mellium"}}`)
		alice.Expect(`{"m":{"id":"a1","r":"alice","sr":{"id":"a1"}}}`)
		deadline := time.After(lemptest.Wait)
		for got := false; !got; {
			select {
			case g := <-bodies:
				got = g.Body == "to mellium" && g.From.Resourcepart() == "alice"
			case <-deadline:
				t.Fatal("mellium's client got no groupchat from alice")
			}
		}
		if err := ch.Leave(ctx, "bye"); err != nil {
			t.Fatalf("leave: %v", err)
		}
		if occs := r.comp.RoomOccupants("club"); len(occs) != 0 {
			t.Fatalf("occupants after leave: %v", occs)
		}
	})
}

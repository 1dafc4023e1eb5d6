package lempside_test

import (
	"testing"
	"time"
)

func TestMessageLiveWithReceipts(t *testing.T) {
	forEachBackend(t, func(t *testing.T, g *gateway) {
		g.user(t, "alice", false)
		g.user(t, "bob", false)
		a := g.login(t, "alice")
		b := g.login(t, "bob")

		a.send(`{"m":{"id":"m1","r":"bob","t":"t","c":"hello","st":1700000000000}}`)
		a.expect(`{"m":{"id":"m1","r":"alice","sr":{"id":"m1"}}}`)
		b.expect(`{"m":{"id":"m1","s":"alice","r":"bob","t":"t","c":"hello","st":1700000000000,"p":"1","sc":"1","pc":"1"}}`)

		b.send(`{"m":{"id":"d1","st":1700000000500,"dm":{"id":"m1"}}}`)
		a.expect(`{"m":{"id":"d1","s":"bob","r":"alice","st":1700000000500,"dm":{"id":"m1"}}}`)
		b.send(`{"m":{"id":"n1","st":1700000000600,"nm":{"id":"m1"}}}`)
		a.expect(`{"m":{"id":"n1","s":"bob","r":"alice","st":1700000000600,"nm":{"id":"m1"}}}`)
		a.quiet(100 * time.Millisecond)
		b.quiet(100 * time.Millisecond)
	})
}

func TestMessageOfflineRedeliveredUntilAcked(t *testing.T) {
	forEachBackend(t, func(t *testing.T, g *gateway) {
		g.user(t, "alice", false)
		g.user(t, "bob", false)
		a := g.login(t, "alice")
		for _, id := range []string{"m1", "m2", "m3"} {
			a.send(`{"m":{"id":"` + id + `","r":"bob","c":"text ` + id + `"}}`)
			a.expect(`{"m":{"id":"` + id + `","r":"alice","sr":{"id":"` + id + `"}}}`)
		}
		// Re-sent with the same id: receipt again, delivered once.
		a.send(`{"m":{"id":"m2","r":"bob","c":"text m2"}}`)
		a.expect(`{"m":{"id":"m2","r":"alice","sr":{"id":"m2"}}}`)

		b := g.login(t, "bob")
		for _, id := range []string{"m1", "m2", "m3"} {
			b.expect(`{"m":{"id":"` + id + `","s":"alice","r":"bob","t":"t","c":"text ` + id + `","st":"*","p":"1","sc":"1","pc":"1"}}`)
		}
		b.quiet(100 * time.Millisecond)
		b.send(`{"m":{"id":"d2","dm":{"id":"m2"}}}`)
		a.expect(`{"m":{"id":"d2","s":"bob","r":"alice","st":"*","dm":{"id":"m2"}}}`)
		b.ws.Close()

		// m1 and m3 were not acknowledged: sent again, in order, at the next login.
		b = g.login(t, "bob")
		b.expect(`{"m":{"id":"m1","s":"alice","r":"bob","t":"t","c":"text m1","st":"*","p":"1","sc":"1","pc":"1"}}`)
		b.expect(`{"m":{"id":"m3","s":"alice","r":"bob","t":"t","c":"text m3","st":"*","p":"1","sc":"1","pc":"1"}}`)
		b.quiet(100 * time.Millisecond)
	})
}

package lempside_test

import (
	"context"
	"fmt"
	"testing"
)

// One-to-one messages (README 3): flags, types, receipts, blocking, errors
// (contract decisions 7, 8, 9, 13).

// msg is the frame a receiver gets for a default text message.
func msg(id, from, to, content string) string {
	return fmt.Sprintf(`{"m":{"id":%q,"s":%q,"r":%q,"t":"t","c":%q,"st":"*","p":"1","sc":"1","pc":"1"}}`, id, from, to, content)
}

func TestMessageFlagsNormalised(t *testing.T) {
	cases := []struct {
		name, flags string
		p, sc, pc   string
	}{
		{"absent", ``, "1", "1", "1"},
		{"strings", `,"p":"1","sc":"1","pc":"1"`, "1", "1", "1"},
		{"numbers", `,"p":1,"sc":0,"pc":1`, "1", "0", "1"},
		{"booleans", `,"p":true,"sc":false,"pc":true`, "1", "0", "1"},
		{"bool strings", `,"p":"true","sc":"false","pc":"true"`, "1", "0", "1"},
		{"sc off", `,"sc":"0"`, "1", "0", "1"},
		{"nulls", `,"p":null,"sc":null,"pc":null`, "1", "1", "1"},
	}
	forEachBackend(t, func(t *testing.T, g *gateway) {
		g.users(t, "alice", "bob")
		a := g.login(t, "alice")
		b := g.login(t, "bob")
		for i, tc := range cases {
			id := fmt.Sprintf("m%d", i)
			a.send(`{"m":{"id":"` + id + `","r":"bob","t":"t","c":"x","st":1700000000000` + tc.flags + `}}`)
			if tc.sc == "1" {
				a.expect(sr(id, "alice"))
			}
			b.expect(fmt.Sprintf(`{"m":{"id":%q,"s":"alice","r":"bob","t":"t","c":"x","st":1700000000000,"p":%q,"sc":%q,"pc":%q}}`,
				id, tc.p, tc.sc, tc.pc))
			a.quiet(short / 2) // in particular: no receipt with sc off
		}
		// A bad flag value is a bad message.
		a.send(`{"m":{"id":"bad","r":"bob","c":"x","p":"maybe"}}`)
		a.expect(errM("bad", 400))
		a.send(`{"m":{"id":"bad2","r":"bob","c":"x","sc":{"x":1}}}`)
		a.expect(errM("bad2", 400))
		b.quiet(short)
	})
}

func TestMessageTypesAndFields(t *testing.T) {
	forEachBackend(t, func(t *testing.T, g *gateway) {
		g.users(t, "alice", "bob")
		a := g.login(t, "alice")
		b := g.login(t, "bob")
		for _, typ := range []string{"t", "p", "v", "a", "l"} {
			id := "m-" + typ
			a.send(`{"m":{"id":"` + id + `","r":"bob","t":"` + typ + `","c":"content"}}`)
			a.expect(sr(id, "alice"))
			b.expect(`{"m":{"id":"` + id + `","s":"alice","r":"bob","t":"` + typ + `","c":"content","st":"*","p":"1","sc":"1","pc":"1"}}`)
		}
		// t defaults to text; the sender can not be forged; st is kept when given
		// (as a number or a quoted number) and set by the server when absent.
		before := nowMs()
		a.send(`{"m":{"id":"m1","s":"mallory","r":"BOB","c":"hi"}}`)
		a.expect(sr("m1", "alice"))
		got := b.expect(msg("m1", "alice", "bob", "hi"))
		if st := num(t, got, "m", "st"); st < before || st > nowMs() {
			t.Errorf("server st %d not within [%d, now]", st, before)
		}
		a.send(`{"m":{"id":"m2","r":"bob","c":"hi","st":"1700000000001"}}`)
		a.expect(sr("m2", "alice"))
		b.expect(`{"m":{"id":"m2","s":"alice","r":"bob","t":"t","c":"hi","st":1700000000001,"p":"1","sc":"1","pc":"1"}}`)
		// Unicode content and empty content travel as they are.
		a.send(`{"m":{"id":"m3","r":"bob","c":"héllo \"wörld\" ✓ \ud83d\ude00"}}`)
		a.expect(sr("m3", "alice"))
		b.expect(`{"m":{"id":"m3","s":"alice","r":"bob","t":"t","c":"héllo \"wörld\" ✓ 😀","st":"*","p":"1","sc":"1","pc":"1"}}`)
		a.send(`{"m":{"id":"m4","r":"bob","t":"l"}}`)
		a.expect(sr("m4", "alice"))
		b.expect(`{"m":{"id":"m4","s":"alice","r":"bob","t":"l","st":"*","p":"1","sc":"1","pc":"1"}}`)
		// A message to oneself.
		a.send(`{"m":{"id":"m5","r":"alice","c":"note"}}`)
		a.expectSet(sr("m5", "alice"), msg("m5", "alice", "alice", "note"))
		a.send(`{"m":{"id":"d5","dm":{"id":"m5"}}}`)
		a.quiet(short)
		b.quiet(short)
	})
}

func TestMessageErrors(t *testing.T) {
	cases := []struct {
		name, frame, want string
	}{
		{"unknown receiver", `{"m":{"id":"e1","r":"nobody","c":"x"}}`, errM("e1", 404)},
		{"jabber receiver", `{"m":{"id":"e2","r":"bob@example.org","c":"x"}}`,
			`{"m":{"id":"e2","e":{"c":503,"d":"XMPP bridging is off"}}}`},
		{"no id", `{"m":{"r":"bob","c":"x"}}`, errM("", 400)},
		{"empty id", `{"m":{"id":"","r":"bob","c":"x"}}`, errM("", 400)},
		{"no receiver", `{"m":{"id":"e3","c":"x"}}`, errM("e3", 400)},
		{"bad type", `{"m":{"id":"e4","r":"bob","t":"x","c":"x"}}`, errM("e4", 400)},
		{"bad type word", `{"m":{"id":"e5","r":"bob","t":"text","c":"x"}}`, errM("e5", 400)},
		{"content not a string", `{"m":{"id":"e6","r":"bob","c":{"x":1}}}`, errM("e6", 400)},
		{"receiver not a string", `{"m":{"id":"e7","r":["bob"],"c":"x"}}`, errM("e7", 400)},
		{"bad st", `{"m":{"id":"e8","r":"bob","c":"x","st":"yesterday"}}`, errM("e8", 400)},
		{"receipt without id", `{"m":{"id":"e9","dm":{}}}`, errM("e9", 400)},
		{"receipt for unknown message", `{"m":{"id":"e10","dm":{"id":"never"}}}`, errM("e10", 404)},
		{"notice for unknown message", `{"m":{"id":"e11","nm":{"id":"never"}}}`, errM("e11", 404)},
	}
	forEachBackend(t, func(t *testing.T, g *gateway) {
		g.users(t, "alice", "bob")
		a := g.login(t, "alice")
		b := g.login(t, "bob")
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				a.t = t
				a.send(tc.frame)
				a.expect(tc.want)
				a.knock("k")
			})
		}
		a.t = t
		b.quiet(short)
	})
}

func TestMessageFromBlockedSender(t *testing.T) {
	forEachBackend(t, func(t *testing.T, g *gateway) {
		g.users(t, "alice", "bob")
		a := g.login(t, "alice")
		b := g.login(t, "bob")
		b.ok("b1", `"b":{"u":"alice"}`)
		// Live: alice is not told, bob gets nothing.
		a.send(`{"m":{"id":"m1","r":"bob","c":"let me in"}}`)
		a.expect(sr("m1", "alice"))
		b.quiet(short)
		// Offline: nothing is kept for later either.
		b.ws.Close()
		a.send(`{"m":{"id":"m2","r":"bob","c":"still blocked"}}`)
		a.expect(sr("m2", "alice"))
		b = g.login(t, "bob")
		b.quiet(short)
		// bob can still write to alice, and after unblocking hears her again.
		b.send(`{"m":{"id":"m3","r":"alice","c":"hmm"}}`)
		b.expect(sr("m3", "bob"))
		a.expect(msg("m3", "bob", "alice", "hmm"))
		b.ok("u1", `"ub":{"username":"alice"}`)
		a.send(`{"m":{"id":"m4","r":"bob","c":"hello again"}}`)
		a.expect(sr("m4", "alice"))
		b.expect(msg("m4", "alice", "bob", "hello again"))
	})
}

func TestMessageNotPersisted(t *testing.T) {
	forEachBackend(t, func(t *testing.T, g *gateway) {
		g.users(t, "alice", "bob")
		a := g.login(t, "alice")
		// p "0" to an offline receiver: accepted (receipt) but dropped.
		a.send(`{"m":{"id":"m1","r":"bob","c":"ephemeral","p":"0"}}`)
		a.expect(sr("m1", "alice"))
		// p "1" (default) is kept.
		a.send(`{"m":{"id":"m2","r":"bob","c":"kept"}}`)
		a.expect(sr("m2", "alice"))
		b := g.login(t, "bob")
		b.expect(msg("m2", "alice", "bob", "kept"))
		b.quiet(short)
		// p "0" to an online receiver is delivered.
		a.send(`{"m":{"id":"m3","r":"bob","c":"live","p":"0"}}`)
		a.expect(sr("m3", "alice"))
		b.expect(`{"m":{"id":"m3","s":"alice","r":"bob","t":"t","c":"live","st":"*","p":"0","sc":"1","pc":"1"}}`)
		// and acknowledged like any other.
		b.send(`{"m":{"id":"d3","dm":{"id":"m3"}}}`)
		a.expect(`{"m":{"id":"d3","s":"bob","r":"alice","st":"*","dm":{"id":"m3"}}}`)
	})
}

func TestMessagePeerReceiptOff(t *testing.T) {
	forEachBackend(t, func(t *testing.T, g *gateway) {
		g.users(t, "alice", "bob")
		a := g.login(t, "alice")
		// Offline: pc "0" is stored, delivered once at login, then gone.
		a.send(`{"m":{"id":"m1","r":"bob","c":"fire and forget","pc":"0"}}`)
		a.expect(sr("m1", "alice"))
		a.send(`{"m":{"id":"m2","r":"bob","c":"needs ack","pc":"1"}}`)
		a.expect(sr("m2", "alice"))
		b := g.login(t, "bob")
		b.expect(`{"m":{"id":"m1","s":"alice","r":"bob","t":"t","c":"fire and forget","st":"*","p":"1","sc":"1","pc":"0"}}`)
		b.expect(msg("m2", "alice", "bob", "needs ack"))
		// Live pc "0" too.
		a.send(`{"m":{"id":"m3","r":"bob","c":"live","pc":0}}`)
		a.expect(sr("m3", "alice"))
		b.expect(`{"m":{"id":"m3","s":"alice","r":"bob","t":"t","c":"live","st":"*","p":"1","sc":"1","pc":"0"}}`)
		b.knock("k1") // everything before the knock answer was written
		b.rq("x", `"lo":{"r":"bye"}`)
		b.expectClose(1000)

		// Next login: only the unacknowledged pc "1" message comes again.
		b = g.login(t, "bob")
		b.expect(msg("m2", "alice", "bob", "needs ack"))
		b.quiet(short)
		b.send(`{"m":{"id":"d2","dm":{"id":"m2"}}}`)
		a.expect(`{"m":{"id":"d2","s":"bob","r":"alice","st":"*","dm":{"id":"m2"}}}`)
		b.knock("k2")
		b.ws.Close()
		b = g.login(t, "bob")
		b.quiet(short)
	})
}

func TestReceiptsRouteBackToSender(t *testing.T) {
	forEachBackend(t, func(t *testing.T, g *gateway) {
		g.users(t, "alice", "bob", "carol")
		a := g.login(t, "alice")
		b := g.login(t, "bob")
		c := g.login(t, "carol")
		a.send(`{"m":{"id":"m1","r":"bob","c":"one"}}`)
		a.expect(sr("m1", "alice"))
		b.expect(msg("m1", "alice", "bob", "one"))

		// nm first (noticed), then dm; both carry the receiver as s.
		b.send(`{"m":{"id":"n1","st":1700000000100,"nm":{"id":"m1"}}}`)
		a.expect(`{"m":{"id":"n1","s":"bob","r":"alice","st":1700000000100,"nm":{"id":"m1"}}}`)
		b.send(`{"m":{"id":"d1","dm":{"id":"m1"}}}`)
		a.expect(`{"m":{"id":"d1","s":"bob","r":"alice","st":"*","dm":{"id":"m1"}}}`)
		// A receipt without its own id takes the message's id.
		a.send(`{"m":{"id":"m2","r":"bob","c":"two"}}`)
		a.expect(sr("m2", "alice"))
		b.expect(msg("m2", "alice", "bob", "two"))
		b.send(`{"m":{"dm":{"id":"m2"}}}`)
		a.expect(`{"m":{"id":"m2","s":"bob","r":"alice","st":"*","dm":{"id":"m2"}}}`)
		// A repeated dm is not routed twice.
		b.send(`{"m":{"id":"d2b","dm":{"id":"m2"}}}`)
		a.quiet(short)
		// carol can not acknowledge a message she never got.
		c.send(`{"m":{"id":"dc","dm":{"id":"m1"}}}`)
		c.expect(errM("dc", 404))
		a.quiet(short)

		// Receipts for an offline sender are queued and delivered at its login.
		a.send(`{"m":{"id":"m3","r":"bob","c":"three"}}`)
		a.expect(sr("m3", "alice"))
		b.expect(msg("m3", "alice", "bob", "three"))
		a.rq("x", `"lo":{"r":"bye"}`)
		a.expectClose(1000)
		b.send(`{"m":{"id":"d3","st":1700000000300,"dm":{"id":"m3"}}}`)
		b.send(`{"m":{"id":"n3","st":1700000000400,"nm":{"id":"m3"}}}`)
		b.knock("k1")
		a = g.login(t, "alice")
		a.expect(`{"m":{"id":"d3","s":"bob","r":"alice","st":1700000000300,"dm":{"id":"m3"}}}`)
		a.expect(`{"m":{"id":"n3","s":"bob","r":"alice","st":1700000000400,"nm":{"id":"m3"}}}`)
		a.quiet(short)
		a.knock("k2")
		a.ws.Close()
		// Delivered receipts are not sent again.
		a = g.login(t, "alice")
		a.quiet(short)
	})
}

func TestMessageDuplicatesDropped(t *testing.T) {
	forEachBackend(t, func(t *testing.T, g *gateway) {
		g.users(t, "alice", "bob", "carol")
		a := g.login(t, "alice")
		b := g.login(t, "bob")
		c := g.login(t, "carol")
		a.send(`{"m":{"id":"m1","r":"bob","c":"once"}}`)
		a.expect(sr("m1", "alice"))
		b.expect(msg("m1", "alice", "bob", "once"))
		a.send(`{"m":{"id":"m1","r":"bob","c":"once"}}`)
		a.expect(sr("m1", "alice")) // the sender still gets its receipt
		b.quiet(short)
		// The same id from another sender is another message.
		c.send(`{"m":{"id":"m1","r":"bob","c":"mine"}}`)
		c.expect(sr("m1", "carol"))
		b.expect(msg("m1", "carol", "bob", "mine"))
		// The latest delivery owns the id for receipts.
		b.send(`{"m":{"id":"d1","dm":{"id":"m1"}}}`)
		c.expect(`{"m":{"id":"d1","s":"bob","r":"carol","st":"*","dm":{"id":"m1"}}}`)
		a.quiet(short)
	})
}

func TestServerReceiptAfterDurableWrite(t *testing.T) {
	forEachBackend(t, func(t *testing.T, g *gateway) {
		g.users(t, "alice", "bob", "carol")
		a := g.login(t, "alice")
		ctx := context.Background()
		queued := func(user string) int {
			t.Helper()
			n, err := g.Store.QueueLen(ctx, user)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		// When the receipt arrives, the message is already in the store.
		for i := 1; i <= 3; i++ {
			id := fmt.Sprintf("m%d", i)
			a.send(`{"m":{"id":"` + id + `","r":"bob","c":"x"}}`)
			a.expect(sr(id, "alice"))
			if n := queued("bob"); n != i {
				t.Fatalf("after the receipt for %s bob's queue holds %d items, want %d", id, n, i)
			}
		}
		// Also for a group's members.
		a.act("c1", `"g":{"t":"c","i":"g1","m":["bob","carol"]}`, ev("c", "g1", "alice", ""))
		a.send(`{"m":{"id":"g1m","r":"g1","c":"x"}}`)
		a.expect(sr("g1m", "alice"))
		if b, c := queued("bob"), queued("carol"); b != 5 || c != 2 {
			t.Errorf("queues: bob %d, carol %d; want 5 and 2 (event and message)", b, c)
		}
		// A refused message leaves nothing behind.
		a.send(`{"m":{"id":"bad","r":"bob","t":"x"}}`)
		a.expect(errM("bad", 400))
		if n := queued("bob"); n != 5 {
			t.Errorf("bob's queue holds %d items after a refused message, want 5", n)
		}
	})
}

// Two senders may use the same message id for one receiver: each sender gets
// the receipt for its own message, and a dm clears every queued copy of the
// id, so nothing is sent again at every login forever.
func TestReusedMessageIDs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, g *gateway) {
		g.users(t, "alice", "bob", "carol")
		a := g.login(t, "alice")
		b := g.login(t, "bob")
		c := g.login(t, "carol")

		a.send(`{"m":{"id":"m1","r":"bob","c":"from alice"}}`)
		a.expect(sr("m1", "alice"))
		b.expect(`{"m":{"id":"m1","s":"alice","r":"bob","t":"t","c":"from alice","st":"*","p":"1","sc":"1","pc":"1"}}`)
		b.send(`{"m":{"id":"d1","dm":{"id":"m1"}}}`)
		a.expect(`{"m":{"id":"d1","s":"bob","r":"alice","st":"*","dm":{"id":"m1"}}}`)
		c.send(`{"m":{"id":"m1","r":"bob","c":"from carol"}}`)
		c.expect(sr("m1", "carol"))
		b.expect(`{"m":{"id":"m1","s":"carol","r":"bob","t":"t","c":"from carol","st":"*","p":"1","sc":"1","pc":"1"}}`)
		b.send(`{"m":{"id":"d2","dm":{"id":"m1"}}}`)
		c.expect(`{"m":{"id":"d2","s":"bob","r":"carol","st":"*","dm":{"id":"m1"}}}`)

		// Both unacknowledged under one id while bob is away: one dm clears both.
		b.ws.Close()
		a.send(`{"m":{"id":"x","r":"bob","c":"alice x"}}`)
		a.expect(sr("x", "alice"))
		c.send(`{"m":{"id":"x","r":"bob","c":"carol x"}}`)
		c.expect(sr("x", "carol"))
		b = g.login(t, "bob")
		b.expect(`{"m":{"id":"x","s":"alice","r":"bob","t":"t","c":"alice x","st":"*","p":"1","sc":"1","pc":"1"}}`)
		b.expect(`{"m":{"id":"x","s":"carol","r":"bob","t":"t","c":"carol x","st":"*","p":"1","sc":"1","pc":"1"}}`)
		b.send(`{"m":{"id":"d3","dm":{"id":"x"}}}`)
		c.expect(`{"m":{"id":"d3","s":"bob","r":"carol","st":"*","dm":{"id":"x"}}}`)
		b.ws.Close()
		b = g.login(t, "bob")
		b.quiet(short)
	})
}

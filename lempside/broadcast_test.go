package lempside_test

import (
	"fmt"
	"testing"
)

// Broadcast lists: README 1.7 and contract decision 12.

func TestBroadcastManagement(t *testing.T) {
	forEachBackend(t, func(t *testing.T, g *gateway) {
		g.users(t, "alice", "bob", "carol", "dave")
		a := g.login(t, "alice")
		b := g.login(t, "bob")

		a.ok("c1", `"br":{"t":"c","i":"br1","n":"Friends","p":"pic","m":["bob","Carol","bob"]}`)
		b.quiet(short) // no pushes for broadcast lists
		a.rq("i1", `"br":{"t":"i","i":"br1"}`)
		info := a.expect(`{"rp":{"id":"i1","br":{"i":"br1","n":"Friends","p":"pic","c":"*","m":["bob","carol"],"o":"alice"}}}`)
		if cr := num(t, info, "rp", "br", "c"); cr <= 0 || cr > nowMs() {
			t.Errorf("creation date %d", cr)
		}

		// Owner only: members and strangers get 403, unknown lists 404.
		for i, body := range []string{
			`"br":{"t":"i","i":"br1"}`,
			`"br":{"t":"a","i":"br1","m":["dave"]}`,
			`"br":{"t":"b","i":"br1","m":["carol"]}`,
			`"br":{"t":"t","i":"br1"}`,
			`"n":{"t":"s","b":"br1","n":"Mine"}`,
			`"n":{"t":"g","b":"br1"}`,
			`"p":{"t":"s","b":"br1","v":"mine.png"}`,
			`"p":{"t":"g","b":"br1"}`,
		} {
			b.fail(fmt.Sprintf("f%d", i), body, 403)
			a.fail(fmt.Sprintf("u%d", i), `"br":{"t":"i","i":"nope"}`, 404)
		}
		for i, body := range []string{
			`"br":{"t":"a","i":"nope","m":["dave"]}`,
			`"br":{"t":"b","i":"nope","m":["dave"]}`,
			`"br":{"t":"t","i":"nope"}`,
			`"n":{"t":"s","b":"nope","n":"x"}`,
			`"n":{"t":"g","b":"nope"}`,
			`"p":{"t":"s","b":"nope","v":"x"}`,
			`"p":{"t":"g","b":"nope"}`,
		} {
			a.fail(fmt.Sprintf("n%d", i), body, 404)
		}
		a.fail("e1", `"br":{"t":"c","i":"br1"}`, 409)
		a.fail("e2", `"br":{"t":"c","i":"bob"}`, 409)
		a.fail("e3", `"g":{"t":"c","i":"br1"}`, 409)
		a.fail("e4", `"br":{"t":"c","i":"br2","m":["nobody"]}`, 404)
		a.fail("e5", `"br":{"t":"zz","i":"br1"}`, 400)
		a.fail("e6", `"br":{"t":"i"}`, 400)
		a.fail("e7", `"g":{"t":"i","i":"br1"}`, 404) // a broadcast list is not a group
		a.fail("e8", `"br":{"t":"a","i":"br1","m":["nobody"]}`, 404)

		// Add, banish, rename, picture.
		a.ok("a1", `"br":{"t":"a","i":"br1","m":["dave","bob"]}`)
		a.ok("b1", `"br":{"t":"b","i":"br1","m":["CAROL"]}`)
		a.ok("n1", `"n":{"t":"s","b":"br1","n":"Pals"}`)
		a.rq("n2", `"n":{"t":"g","b":"br1"}`)
		a.expect(`{"rp":{"id":"n2","n":{"b":"br1","n":"Pals"}}}`)
		a.ok("p1", `"p":{"t":"s","b":"br1","v":"pals.png"}`)
		a.rq("p2", `"p":{"t":"g","b":"br1"}`)
		a.expect(`{"rp":{"id":"p2","p":{"b":"br1","v":"pals.png"}}}`)
		a.rq("p3", `"p":{"t":"g"}`) // alice's own picture is untouched
		a.expect(`{"rp":{"id":"p3","p":{"u":"alice"}}}`)
		a.rq("i2", `"br":{"t":"i","i":"br1"}`)
		a.expect(`{"rp":{"id":"i2","br":{"i":"br1","n":"Pals","p":"pals.png","c":"*","m":["bob","dave"],"o":"alice"}}}`)
		b.quiet(short)

		// Terminate: the list is gone for good, its id stays taken.
		a.ok("t1", `"br":{"t":"t","i":"br1"}`)
		a.fail("t2", `"br":{"t":"i","i":"br1"}`, 403)
		a.fail("t3", `"n":{"t":"s","b":"br1","n":"Again"}`, 403)
		a.fail("t4", `"br":{"t":"c","i":"br1"}`, 409)
		a.send(`{"m":{"id":"m1","r":"br1","c":"still there?"}}`)
		a.expect(errM("m1", 403))
		b.quiet(short)
	})
}

func TestBroadcastMessages(t *testing.T) {
	forEachBackend(t, func(t *testing.T, g *gateway) {
		g.users(t, "alice", "bob", "carol", "dave")
		a := g.login(t, "alice")
		b := g.login(t, "bob")
		d := g.login(t, "dave")
		a.ok("c1", `"br":{"t":"c","i":"news","n":"News","m":["bob","carol","dave"]}`)
		d.ok("bl", `"b":{"u":"alice"}`) // dave blocked the owner

		// Each member gets a 1:1 message from the owner: r = member, same id.
		a.send(`{"m":{"id":"bm1","r":"news","c":"hello everyone","st":1700000000000}}`)
		a.expect(sr("bm1", "alice"))
		b.expect(`{"m":{"id":"bm1","s":"alice","r":"bob","t":"t","c":"hello everyone","st":1700000000000,"p":"1","sc":"1","pc":"1"}}`)
		a.quiet(short) // the owner is not a member
		d.quiet(short) // blocked

		// Receipts come back to the owner.
		b.send(`{"m":{"id":"bd1","dm":{"id":"bm1"}}}`)
		a.expect(`{"m":{"id":"bd1","s":"bob","r":"alice","st":"*","dm":{"id":"bm1"}}}`)
		c := g.login(t, "carol") // offline until now: stored for her
		c.expect(`{"m":{"id":"bm1","s":"alice","r":"carol","t":"t","c":"hello everyone","st":1700000000000,"p":"1","sc":"1","pc":"1"}}`)
		c.send(`{"m":{"id":"cd1","nm":{"id":"bm1"}}}`)
		a.expect(`{"m":{"id":"cd1","s":"carol","r":"alice","st":"*","nm":{"id":"bm1"}}}`)

		// Members can not send to the list; nor can strangers.
		b.send(`{"m":{"id":"bm2","r":"news","c":"reply all"}}`)
		b.expect(errM("bm2", 403))
		d.send(`{"m":{"id":"bm3","r":"news","c":"me too"}}`)
		d.expect(errM("bm3", 403))

		// Flags reach every copy; a re-send is not delivered twice.
		a.send(`{"m":{"id":"bm4","r":"news","c":"quiet","sc":"0","pc":"0"}}`)
		b.expect(`{"m":{"id":"bm4","s":"alice","r":"bob","t":"t","c":"quiet","st":"*","p":"1","sc":"0","pc":"0"}}`)
		c.expect(`{"m":{"id":"bm4","s":"alice","r":"carol","t":"t","c":"quiet","st":"*","p":"1","sc":"0","pc":"0"}}`)
		a.send(`{"m":{"id":"bm4","r":"news","c":"quiet","sc":"0","pc":"0"}}`)
		a.quiet(short)
		b.quiet(short)
		c.quiet(short)
		d.quiet(short)
	})
}

// A deleted account's broadcast lists end with it: a new account of the same
// name does not inherit them.
func TestDeletedOwnerLosesBroadcastLists(t *testing.T) {
	forEachBackend(t, func(t *testing.T, g *gateway) {
		g.users(t, "alice", "bob")
		g.user(t, "root", true)
		a := g.login(t, "alice")
		root := g.login(t, "root")
		a.ok("b1", `"br":{"t":"c","i":"pals","m":["bob"]}`)
		root.ok("d1", `"ad":{"c":"del","i":"alice"}`)
		a.expectClose(4404)
		root.ok("c1", `"ad":{"c":"cr","i":"alice","t":"alice-token"}`)
		a = g.login(t, "alice")
		a.fail("b2", `"br":{"t":"i","i":"pals"}`, 403)
		a.send(`{"m":{"id":"x1","r":"pals","c":"inherited?"}}`)
		a.expect(errM("x1", 403))
	})
}

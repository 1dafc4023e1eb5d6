package lempside_test

import (
	"fmt"
	"testing"
)

// Groups: requests of README 1.6, information pushes of README 2.2 and group
// messages (contract decision 11).

// ev is a group information push: {"i":{"g":{"t":t,"i":id,<extra>,"s":by}}}.
func ev(t, id, by, extra string) string {
	if extra != "" {
		extra = "," + extra
	}
	return fmt.Sprintf(`{"i":{"g":{"t":%q,"i":%q%s,"s":%q}}}`, t, id, extra, by)
}

// act sends a group request from an actor who is also told of its event:
// the response and the push arrive in either order.
func (c *client) act(id, body, event string) {
	c.t.Helper()
	c.rq(id, body)
	c.expectSet(`{"rp":{"id":"`+id+`"}}`, event)
}

func TestGroupLifecycle(t *testing.T) {
	forEachBackend(t, func(t *testing.T, g *gateway) {
		g.users(t, "alice", "bob", "carol", "dave", "erin")
		a := g.login(t, "alice")
		b := g.login(t, "bob")
		c := g.login(t, "carol")
		e := g.login(t, "erin") // never a member

		// Create: alice is owner, admin and first member; everyone is told.
		created := ev("c", "g1", "alice", `"n":"Team"`)
		a.act("c1", `"g":{"t":"c","i":"g1","n":"Team","p":"pic1","m":["bob","Carol","bob","alice"]}`, created)
		b.expect(created)
		c.expect(created)
		b.rq("i1", `"g":{"t":"i","i":"g1"}`)
		info := b.expect(`{"rp":{"id":"i1","g":{"i":"g1","n":"Team","p":"pic1","c":"*","m":["alice","bob","carol"],"ad":["alice"],"o":"alice"}}}`)
		if cr := num(t, info, "rp", "g", "c"); cr <= 0 || cr > nowMs() {
			t.Errorf("creation date %d", cr)
		}
		b.rq("ad1", `"g":{"t":"ad","i":"g1"}`)
		b.expect(`{"rp":{"id":"ad1","g":{"i":"g1","ad":["alice"]}}}`)
		b.rq("n1", `"n":{"t":"g","i":"g1"}`)
		b.expect(`{"rp":{"id":"n1","n":{"i":"g1","n":"Team"}}}`)
		b.rq("p1", `"p":{"t":"g","i":"g1"}`)
		b.expect(`{"rp":{"id":"p1","p":{"i":"g1","v":"pic1"}}}`)

		// Members only read; unknown ids are 404.
		e.fail("i2", `"g":{"t":"i","i":"g1"}`, 403)
		e.fail("i3", `"g":{"t":"ad","i":"g1"}`, 403)
		e.fail("i4", `"n":{"t":"g","i":"g1"}`, 403)
		e.fail("i5", `"p":{"t":"g","i":"g1"}`, 403)
		e.fail("i6", `"g":{"t":"l","i":"g1"}`, 403)
		e.fail("i7", `"mt":{"i":"g1","t":1900000000000}`, 403)
		b.fail("i8", `"g":{"t":"i","i":"nope"}`, 404)
		b.fail("i9", `"n":{"t":"g","i":"nope"}`, 404)
		b.fail("i10", `"p":{"t":"g","i":"nope"}`, 404)
		b.fail("i11", `"g":{"t":"a","i":"nope","m":["dave"]}`, 404)

		// Admins only manage; bob is a plain member.
		for i, body := range []string{
			`"g":{"t":"a","i":"g1","m":["dave"]}`,
			`"g":{"t":"b","i":"g1","m":["carol"]}`,
			`"g":{"t":"t","i":"g1"}`,
			`"g":{"t":"aad","i":"g1","ad":["bob"]}`,
			`"n":{"t":"s","i":"g1","n":"Mine"}`,
			`"p":{"t":"s","i":"g1","v":"mine.png"}`,
		} {
			b.fail(fmt.Sprintf("f%d", i), body, 403)
		}
		e.fail("f9", `"g":{"t":"a","i":"g1","m":["erin"]}`, 403)

		// Add: dave is offline; members (dave included) get t:"a".
		added := ev("a", "g1", "alice", `"m":["dave"]`)
		a.act("a1", `"g":{"t":"a","i":"g1","m":["Dave","bob"]}`, added) // bob already in
		b.expect(added)
		c.expect(added)
		a.fail("a2", `"g":{"t":"a","i":"g1","m":["nobody"]}`, 404)
		a.fail("a3", `"g":{"t":"a","i":"g1","m":["x@example.org"]}`, 503)
		a.ok("a4", `"g":{"t":"a","i":"g1","m":["bob"]}`) // nothing new: no push

		// Admins: aad needs members.
		a.ok("aa1", `"g":{"t":"aad","i":"g1","ad":["bob"]}`)
		a.fail("aa2", `"g":{"t":"aad","i":"g1","ad":["erin"]}`, 400)
		c.rq("ad2", `"g":{"t":"ad","i":"g1"}`)
		c.expect(`{"rp":{"id":"ad2","g":{"i":"g1","ad":["alice","bob"]}}}`)

		// bob, now an admin, renames and changes the picture.
		named := ev("n", "g1", "bob", `"n":"Crew"`)
		b.act("n2", `"n":{"t":"s","i":"g1","n":"Crew"}`, named)
		a.expect(named)
		c.expect(named)
		pictured := ev("p", "g1", "bob", "")
		b.act("p2", `"p":{"t":"s","i":"g1","v":"pic2"}`, pictured)
		a.expect(pictured)
		c.expect(pictured)
		c.rq("n3", `"n":{"t":"g","i":"g1"}`)
		c.expect(`{"rp":{"id":"n3","n":{"i":"g1","n":"Crew"}}}`)
		c.rq("p3", `"p":{"t":"g","i":"g1"}`)
		c.expect(`{"rp":{"id":"p3","p":{"i":"g1","v":"pic2"}}}`)
		// bob's own picture did not change.
		c.rq("p4", `"p":{"t":"g","u":"bob"}`)
		c.expect(`{"rp":{"id":"p4","p":{"u":"bob"}}}`)

		// dave, offline all along, gets the events since he joined, in order.
		d := g.login(t, "dave")
		d.expect(added)
		d.expect(named)
		d.expect(pictured)
		d.quiet(short)

		// Mute is per member and shows in that member's info.
		c.ok("mt1", `"mt":{"i":"g1","t":1900000000000}`)
		c.rq("i12", `"g":{"t":"i","i":"g1"}`)
		c.expect(`{"rp":{"id":"i12","g":{"i":"g1","n":"Crew","p":"pic2","c":"*","mt":1900000000000,"m":["alice","bob","carol","dave"],"ad":["alice","bob"],"o":"alice"}}}`)
		a.rq("i13", `"g":{"t":"i","i":"g1"}`)
		a.expect(`{"rp":{"id":"i13","g":{"i":"g1","n":"Crew","p":"pic2","c":"*","m":["alice","bob","carol","dave"],"ad":["alice","bob"],"o":"alice"}}}`)
		c.ok("mt2", `"umt":{"i":"g1"}`)
		c.rq("i14", `"g":{"t":"i","i":"g1"}`)
		c.expect(`{"rp":{"id":"i14","g":{"i":"g1","n":"Crew","p":"pic2","c":"*","m":["alice","bob","carol","dave"],"ad":["alice","bob"],"o":"alice"}}}`)
		c.fail("mt3", `"mt":{"t":1900000000000}`, 400)
		c.fail("mt4", `"umt":{}`, 400)
		c.fail("mt5", `"mt":{"i":"nope","t":1900000000000}`, 404)

		// Banish: the owner can not be banished; the banished hear it too.
		b.fail("b1", `"g":{"t":"b","i":"g1","m":["alice"]}`, 403)
		banished := ev("b", "g1", "alice", `"m":"dave"`)
		a.act("b2", `"g":{"t":"b","i":"g1","m":["DAVE","erin"]}`, banished)
		b.expect(banished)
		c.expect(banished)
		d.expect(banished)
		d.fail("b3", `"g":{"t":"i","i":"g1"}`, 403)

		// Leave: the leaver hears it too.
		left := ev("l", "g1", "carol", `"m":"carol"`)
		c.act("l1", `"g":{"t":"l","i":"g1"}`, left)
		a.expect(left)
		b.expect(left)
		c.fail("l2", `"g":{"t":"l","i":"g1"}`, 403)
		c.fail("l3", `"g":{"t":"i","i":"g1"}`, 403)

		// The owner leaving hands the group to an admin.
		left = ev("l", "g1", "alice", `"m":"alice"`)
		a.act("l4", `"g":{"t":"l","i":"g1"}`, left)
		b.expect(left)
		b.rq("i15", `"g":{"t":"i","i":"g1"}`)
		b.expect(`{"rp":{"id":"i15","g":{"i":"g1","n":"Crew","p":"pic2","c":"*","m":["bob"],"ad":["bob"],"o":"bob"}}}`)

		// Terminate (admin): members are told; the id stays taken.
		b.act("a5", `"g":{"t":"a","i":"g1","m":["carol"]}`, ev("a", "g1", "bob", `"m":["carol"]`))
		c.expect(ev("a", "g1", "bob", `"m":["carol"]`))
		c.fail("t0", `"g":{"t":"t","i":"g1"}`, 403)
		term := ev("t", "g1", "bob", "")
		b.act("t1", `"g":{"t":"t","i":"g1"}`, term)
		c.expect(term)
		b.fail("t2", `"g":{"t":"i","i":"g1"}`, 403)
		b.fail("t3", `"g":{"t":"t","i":"g1"}`, 403)
		b.fail("t4", `"n":{"t":"s","i":"g1","n":"Back"}`, 403)
		b.fail("t5", `"g":{"t":"c","i":"g1"}`, 409)
		a.quiet(short)
		e.quiet(short)
	})
}

func TestGroupOwnerHandoverWithoutAdmins(t *testing.T) {
	forEachBackend(t, func(t *testing.T, g *gateway) {
		g.users(t, "alice", "bob", "carol")
		a := g.login(t, "alice")
		created := ev("c", "g2", "alice", "")
		a.act("c1", `"g":{"t":"c","i":"g2","m":["bob","carol"]}`, created)
		left := ev("l", "g2", "alice", `"m":"alice"`)
		a.act("l1", `"g":{"t":"l","i":"g2"}`, left)
		// bob, the first member left, is owner and admin.
		b := g.login(t, "bob")
		b.expect(created)
		b.expect(left)
		b.rq("i1", `"g":{"t":"i","i":"g2"}`)
		b.expect(`{"rp":{"id":"i1","g":{"i":"g2","c":"*","m":["bob","carol"],"ad":["bob"],"o":"bob"}}}`)
		ren := ev("n", "g2", "bob", `"n":"Ours"`)
		b.act("n1", `"n":{"t":"s","i":"g2","n":"Ours"}`, ren)
	})
}

func TestGroupLastMemberLeavingTerminates(t *testing.T) {
	forEachBackend(t, func(t *testing.T, g *gateway) {
		g.users(t, "alice")
		a := g.login(t, "alice")
		a.act("c1", `"g":{"t":"c","i":"solo","n":"Me"}`, ev("c", "solo", "alice", `"n":"Me"`))
		a.send(`{"m":{"id":"m0","r":"solo","c":"anyone?"}}`)
		a.expect(sr("m0", "alice")) // no other member: nobody receives it
		a.act("l1", `"g":{"t":"l","i":"solo"}`, ev("l", "solo", "alice", `"m":"alice"`))
		a.fail("i1", `"g":{"t":"i","i":"solo"}`, 403)
		a.send(`{"m":{"id":"m1","r":"solo","c":"hello?"}}`)
		a.expect(errM("m1", 403))
		a.fail("c2", `"g":{"t":"c","i":"solo"}`, 409)
		a.quiet(short)
	})
}

func TestGroupCreateErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, g *gateway) {
		g.users(t, "alice", "bob")
		a := g.login(t, "alice")
		b := g.login(t, "bob")
		a.act("c1", `"g":{"t":"c","i":"team","m":["bob"]}`, ev("c", "team", "alice", ""))
		b.expect(ev("c", "team", "alice", ""))
		b.fail("c2", `"g":{"t":"c","i":"team"}`, 409)  // existing group
		b.fail("c3", `"g":{"t":"c","i":"alice"}`, 409) // a username
		b.fail("c4", `"g":{"t":"c","i":"ALICE"}`, 409) // a username in another case
		b.fail("c5", `"br":{"t":"c","i":"team"}`, 409) // one namespace with broadcast lists
		b.fail("c6", `"g":{"t":"c","i":""}`, 400)      // no id
		b.fail("c7", `"g":{"t":"c"}`, 400)             // no id
		b.fail("c8", `"g":{"t":"c","i":"a b"}`, 400)   // bad id
		b.fail("c9", `"g":{"t":"c","i":"x","m":["nobody"]}`, 404)
		b.fail("c10", `"g":{"t":"c","i":"room@conference.example.org"}`, 503)
		b.fail("c11", `"g":{"t":"zz","i":"team"}`, 400)
		b.fail("c12", `"g":{"i":"team"}`, 400)
		b.fail("c13", `"n":{"t":"s","n":"x"}`, 400) // neither i nor b
		b.fail("c14", `"n":{"t":"q","i":"team"}`, 400)
		b.fail("c15", `"p":{"t":"q","i":"team"}`, 400)
		b.fail("c16", `"br":{"t":"i","i":"team"}`, 404) // a group is not a broadcast list
		b.fail("c17", `"g":{"t":"i","i":"x"}`, 404)     // the failed create left nothing
		a.quiet(short)
		b.quiet(short)
	})
}

func TestGroupMessages(t *testing.T) {
	forEachBackend(t, func(t *testing.T, g *gateway) {
		g.users(t, "alice", "bob", "carol", "dave")
		a := g.login(t, "alice")
		d := g.login(t, "dave") // not a member; watches bob come and go
		d.ok("f1", `"af":[{"u":"bob"}]`)
		b := g.login(t, "bob")
		d.expect(`{"i":{"li":"bob"}}`)
		created := ev("c", "g1", "alice", "")
		a.act("c1", `"g":{"t":"c","i":"g1","m":["bob","carol"]}`, created)
		b.expect(created)

		// Fan-out: every other member, r = group, s = sender.
		a.send(`{"m":{"id":"gm1","r":"g1","c":"hi all","st":1700000000000}}`)
		a.expect(sr("gm1", "alice"))
		b.expect(`{"m":{"id":"gm1","s":"alice","r":"g1","t":"t","c":"hi all","st":1700000000000,"p":"1","sc":"1","pc":"1"}}`)
		a.quiet(short) // not to the sender
		// A member's dm goes back to the sender.
		b.send(`{"m":{"id":"gd1","dm":{"id":"gm1"}}}`)
		a.expect(`{"m":{"id":"gd1","s":"bob","r":"alice","st":"*","dm":{"id":"gm1"}}}`)
		b.send(`{"m":{"id":"gm2","r":"g1","t":"p","c":"photo"}}`)
		b.expect(sr("gm2", "bob"))
		a.expect(`{"m":{"id":"gm2","s":"bob","r":"g1","t":"p","c":"photo","st":"*","p":"1","sc":"1","pc":"1"}}`)

		// Non-members are refused.
		d.send(`{"m":{"id":"gm3","r":"g1","c":"let me in"}}`)
		d.expect(errM("gm3", 403))

		// An offline member gets its group's events and messages at login, in order.
		c := g.login(t, "carol")
		c.expect(created)
		c.expect(`{"m":{"id":"gm1","s":"alice","r":"g1","t":"t","c":"hi all","st":1700000000000,"p":"1","sc":"1","pc":"1"}}`)
		c.expect(`{"m":{"id":"gm2","s":"bob","r":"g1","t":"p","c":"photo","st":"*","p":"1","sc":"1","pc":"1"}}`)
		c.send(`{"m":{"id":"cd1","dm":{"id":"gm1"}}}`)
		a.expect(`{"m":{"id":"cd1","s":"carol","r":"alice","st":"*","dm":{"id":"gm1"}}}`)
		c.send(`{"m":{"id":"cd2","nm":{"id":"gm2"}}}`)
		b.expect(`{"m":{"id":"cd2","s":"carol","r":"bob","st":"*","nm":{"id":"gm2"}}}`)

		// p "0" reaches only the online members (carol, not bob). A block
		// does not filter group traffic (contract decision 11: every other
		// member receives it), unlike 1:1 and broadcast messages.
		b.ws.Close()
		d.expect(`{"i":{"lo":"bob"}}`) // bob is offline now
		a.send(`{"m":{"id":"gm4","r":"g1","c":"now only","p":"0"}}`)
		a.expect(sr("gm4", "alice"))
		c.expect(`{"m":{"id":"gm4","s":"alice","r":"g1","t":"t","c":"now only","st":"*","p":"0","sc":"1","pc":"1"}}`)
		c.ok("bl", `"b":{"u":"alice"}`)
		a.send(`{"m":{"id":"gm5","r":"g1","c":"later"}}`)
		a.expect(sr("gm5", "alice"))
		b = g.login(t, "bob")
		d.expect(`{"i":{"li":"bob"}}`)
		b.expect(`{"m":{"id":"gm5","s":"alice","r":"g1","t":"t","c":"later","st":"*","p":"1","sc":"1","pc":"1"}}`)
		c.expect(`{"m":{"id":"gm5","s":"alice","r":"g1","t":"t","c":"later","st":"*","p":"1","sc":"1","pc":"1"}}`)
		b.quiet(short)
		c.quiet(short)

		// After banishment, the banished is not a member any more.
		banished := ev("b", "g1", "alice", `"m":"carol"`)
		a.act("b1", `"g":{"t":"b","i":"g1","m":["carol"]}`, banished)
		b.expect(banished)
		c.expect(banished)
		c.send(`{"m":{"id":"gm6","r":"g1","c":"hey"}}`)
		c.expect(errM("gm6", 403))

		// A terminated group takes no messages.
		term := ev("t", "g1", "alice", "")
		a.act("t1", `"g":{"t":"t","i":"g1"}`, term)
		b.expect(term)
		a.send(`{"m":{"id":"gm7","r":"g1","c":"anyone?"}}`)
		a.expect(errM("gm7", 403))
		b.send(`{"m":{"id":"gm8","r":"g1","c":"anyone?"}}`)
		b.expect(errM("gm8", 403))
		d.quiet(short)
	})
}

func TestDeletedUserLeavesGroups(t *testing.T) {
	forEachBackend(t, func(t *testing.T, g *gateway) {
		g.user(t, "root", true)
		g.users(t, "alice", "bob", "carol")
		a := g.login(t, "alice")
		b := g.login(t, "bob")
		created := ev("c", "g1", "alice", "")
		a.act("c1", `"g":{"t":"c","i":"g1","m":["bob","carol"]}`, created)
		b.expect(created)

		r := g.login(t, "root")
		r.ok("d1", `"ad":{"c":"del","i":"alice"}`)
		// alice leaves her groups before her session is closed: she may
		// hear of it first.
		a.expectCloseSkipping(4404, ev("l", "g1", "alice", `"m":"alice"`))
		b.expect(ev("l", "g1", "alice", `"m":"alice"`))
		// The owner's group went to the next member.
		b.rq("i1", `"g":{"t":"i","i":"g1"}`)
		b.expect(`{"rp":{"id":"i1","g":{"i":"g1","c":"*","m":["bob","carol"],"ad":["bob"],"o":"bob"}}}`)
		c := g.login(t, "carol")
		c.expect(created)
		c.expect(ev("l", "g1", "alice", `"m":"alice"`))
		c.quiet(short)
	})
}

// Group ids are case-folded like usernames: a group "Team" takes "team", so a
// user "team" can not be created beside it (it would capture the group's
// messages), and "TEAM" addresses the group.
func TestGroupIDsAreCaseFolded(t *testing.T) {
	forEachBackend(t, func(t *testing.T, g *gateway) {
		g.users(t, "alice", "bob")
		g.user(t, "root", true)
		a := g.login(t, "alice")
		b := g.login(t, "bob")
		root := g.login(t, "root")
		a.act("c1", `"g":{"t":"c","i":"Team","m":["bob"]}`, ev("c", "team", "alice", ""))
		b.expect(ev("c", "team", "alice", ""))
		b.fail("c2", `"g":{"t":"c","i":"tEAM"}`, 409)
		root.fail("a1", `"ad":{"c":"cr","i":"team","t":"x"}`, 409)
		a.send(`{"m":{"id":"m1","r":"TEAM","c":"to the group"}}`)
		a.expect(sr("m1", "alice"))
		b.expect(`{"m":{"id":"m1","s":"alice","r":"team","t":"t","c":"to the group","st":"*","p":"1","sc":"1","pc":"1"}}`)
		b.rq("i1", `"g":{"t":"ad","i":"TeAm"}`) // reads work in any case
		b.expect(`{"rp":{"id":"i1","g":{"i":"team","ad":["alice"]}}}`)
	})
}

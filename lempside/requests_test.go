package lempside_test

import (
	"testing"
	"time"
)

// Requests of README section 1 other than groups and broadcast lists:
// authentication, personal requests, privacy, followings, server and admin
// requests.

func TestLoginFailuresKeepConnection(t *testing.T) {
	forEachBackend(t, func(t *testing.T, g *gateway) {
		g.user(t, "alice", false)
		c := g.dial(t)
		for i, tc := range []struct{ identity, token string }{
			{"alice", "wrong"},
			{"nobody", "nobody-token"},
			{"alice", ""},
			{"", "alice-token"},
			{"al ice", "alice-token"},
		} {
			id := nonce("l", string(rune('a'+i)))
			c.send(`{"rq":{"id":"` + id + `","a":{"i":"` + tc.identity + `","t":"` + tc.token + `"}}}`)
			c.expect(`{"rp":{"id":"` + id + `","response":0,"e":{"c":401,"d":"*"}}}`)
		}
		// Still not logged in, and the connection still works for a login.
		c.fail("s1", `"s":{"u":"alice"}`, 401)
		c.send(`{"rq":{"id":"ok","a":{"i":"alice","t":"alice-token"}}}`)
		c.expect(`{"rp":{"id":"ok","response":1}}`)
		c.knock("k1")
	})
}

func TestLoginCaseFolded(t *testing.T) {
	forEachBackend(t, func(t *testing.T, g *gateway) {
		g.user(t, "Alice", false) // stored as alice
		g.user(t, "bob", false)
		a := g.loginAs(t, "l1", "ALICE", "Alice-token")
		a.expect(`{"rp":{"id":"l1","response":1}}`)
		// The session is alice's: own info and messages name "alice".
		a.rq("i1", `"i":{}`)
		a.expect(`{"rp":{"id":"i1","i":{"u":"alice","c":"*","r":"*"}}}`)
		b := g.login(t, "bob")
		a.send(`{"m":{"id":"m1","r":"Bob","c":"hi"}}`)
		a.expect(sr("m1", "alice"))
		b.expect(`{"m":{"id":"m1","s":"alice","r":"bob","t":"t","c":"hi","st":"*","p":"1","sc":"1","pc":"1"}}`)
		// Lower case login of the same account works too (and replaces the session).
		a2 := g.loginAs(t, "l2", "alice", "Alice-token")
		a2.expect(`{"rp":{"id":"l2","response":1}}`)
		a.expectClose(4409)
	})
}

func TestSecondLoginOnSameConnection(t *testing.T) {
	forEachBackend(t, func(t *testing.T, g *gateway) {
		g.users(t, "alice", "bob")
		a := g.login(t, "alice")
		a.send(`{"rq":{"id":"again","a":{"i":"alice","t":"alice-token"}}}`)
		a.expect(`{"rp":{"id":"again","response":0,"e":{"c":409,"d":"*"}}}`)
		a.send(`{"rq":{"id":"other","a":{"i":"bob","t":"bob-token"}}}`)
		a.expect(`{"rp":{"id":"other","response":0,"e":{"c":409,"d":"*"}}}`)
		// Still alice, still working.
		a.rq("i1", `"i":{}`)
		a.expect(`{"rp":{"id":"i1","i":{"u":"alice","c":"*","r":"*"}}}`)
	})
}

func TestSecondLoginReplacesSession(t *testing.T) {
	forEachBackend(t, func(t *testing.T, g *gateway) {
		g.users(t, "alice", "bob")
		a1 := g.login(t, "alice")
		a2 := g.login(t, "alice")
		a1.expectClose(4409)
		a2.knock("k1")
		// Messages reach the new session.
		b := g.login(t, "bob")
		b.send(`{"m":{"id":"m1","r":"alice","c":"hi"}}`)
		b.expect(sr("m1", "bob"))
		a2.expect(`{"m":{"id":"m1","s":"bob","r":"alice","t":"t","c":"hi","st":"*","p":"1","sc":"1","pc":"1"}}`)
		// alice is still online: the old session's end did not log her out.
		b.rq("s1", `"s":{"u":"alice"}`)
		b.expect(`{"rp":{"id":"s1","s":{"u":"alice","v":0}}}`)
	})
}

func TestLogout(t *testing.T) {
	forEachBackend(t, func(t *testing.T, g *gateway) {
		g.users(t, "alice", "bob", "carol")
		b := g.login(t, "bob")
		b.ok("f1", `"af":[{"u":"alice"}]`)
		a := g.login(t, "alice")
		b.expect(`{"i":{"li":"alice"}}`)
		a.rq("x", `"lo":{"r":"bye"}`)
		a.expectClose(1000) // no response before the close
		b.expect(`{"i":{"lo":"alice"}}`)
		// The README's first form, lo:"reason", is a logout as well.
		a = g.login(t, "alice")
		b.expect(`{"i":{"li":"alice"}}`)
		a.rq("y", `"lo":"gone"`)
		a.expectClose(1000)
		b.expect(`{"i":{"lo":"alice"}}`)
		// Before login a logout is unauthorized, and nothing is closed.
		c := g.dial(t)
		c.fail("z", `"lo":{"r":"bye"}`, 401)
		c.knockBeforeLogin("k1")
	})
}

// knockBeforeLogin checks the connection answers (srq needs a login: 401).
func (c *client) knockBeforeLogin(id string) {
	c.t.Helper()
	c.send(`{"srq":{"id":"` + id + `","t":"k"}}`)
	c.expect(errRP(id, 401))
}

func TestPersonalInfo(t *testing.T) {
	forEachBackend(t, func(t *testing.T, g *gateway) {
		before := nowMs()
		g.users(t, "alice", "bob")
		after := nowMs()
		a := g.login(t, "alice")
		a.rq("i1", `"i":{"u":"bob"}`)
		rp := a.expect(`{"rp":{"id":"i1","i":{"u":"bob","c":"*","r":"*"}}}`)
		if c := num(t, rp, "rp", "i", "c"); c < before || c > after {
			t.Errorf("creation %d not within [%d, %d]", c, before, after)
		}
		if r := num(t, rp, "rp", "i", "r"); r < before || r > after {
			t.Errorf("registration %d not within [%d, %d]", r, before, after)
		}
		a.rq("i2", `"i":{"u":"BOB"}`)
		a.expect(`{"rp":{"id":"i2","i":{"u":"bob","c":"*","r":"*"}}}`)
		a.fail("i3", `"i":{"u":"nobody"}`, 404)
		a.fail("i4", `"i":{"u":"bob@example.org"}`, 503)
	})
}

func TestPictureAndStatus(t *testing.T) {
	forEachBackend(t, func(t *testing.T, g *gateway) {
		g.users(t, "alice", "bob", "carol")
		a := g.login(t, "alice")
		b := g.login(t, "bob")

		// Picture: set own (latest README form without u, older form with u).
		a.ok("p1", `"p":{"t":"s","v":"http://x/alice.png"}`)
		b.rq("p2", `"p":{"t":"g","u":"alice"}`)
		b.expect(`{"rp":{"id":"p2","p":{"u":"alice","v":"http://x/alice.png"}}}`)
		a.ok("p3", `"p":{"t":"s","u":"Alice","v":"http://x/alice2.png"}`)
		b.rq("p4", `"p":{"t":"g","u":"alice"}`)
		b.expect(`{"rp":{"id":"p4","p":{"u":"alice","v":"http://x/alice2.png"}}}`)
		a.rq("p5", `"p":{"t":"g"}`) // own
		a.expect(`{"rp":{"id":"p5","p":{"u":"alice","v":"http://x/alice2.png"}}}`)
		b.rq("p6", `"p":{"t":"g","u":"carol"}`) // no picture: v omitted
		b.expect(`{"rp":{"id":"p6","p":{"u":"carol"}}}`)
		b.fail("p7", `"p":{"t":"s","u":"alice","v":"evil"}`, 403)
		b.fail("p8", `"p":{"t":"g","u":"nobody"}`, 404)
		b.fail("p9", `"p":{"t":"x","u":"alice"}`, 400)
		a.rq("p10", `"p":{"t":"g"}`) // bob's attempt changed nothing
		a.expect(`{"rp":{"id":"p10","p":{"u":"alice","v":"http://x/alice2.png"}}}`)

		// Status.
		a.ok("s1", `"st":{"t":"s","s":"busy"}`)
		b.rq("s2", `"st":{"t":"g","u":"alice"}`)
		b.expect(`{"rp":{"id":"s2","st":{"u":"alice","s":"busy"}}}`)
		a.ok("s3", `"st":{"t":"s","u":"alice","s":"away"}`)
		b.rq("s4", `"st":{"t":"g","u":"ALICE"}`)
		b.expect(`{"rp":{"id":"s4","st":{"u":"alice","s":"away"}}}`)
		b.rq("s5", `"st":{"t":"g","u":"carol"}`)
		b.expect(`{"rp":{"id":"s5","st":{"u":"carol"}}}`)
		b.fail("s6", `"st":{"t":"s","u":"alice","s":"hacked"}`, 403)
		b.fail("s7", `"st":{"t":"g","u":"nobody"}`, 404)
		b.fail("s8", `"st":{"t":"q"}`, 400)
		a.rq("s9", `"st":{"t":"g"}`)
		a.expect(`{"rp":{"id":"s9","st":{"u":"alice","s":"away"}}}`)
	})
}

func TestBlockList(t *testing.T) {
	forEachBackend(t, func(t *testing.T, g *gateway) {
		g.users(t, "alice", "bob", "carol")
		a := g.login(t, "alice")
		a.rq("g0", `"get":{"o":"pr"}`)
		a.expect(`{"rp":{"id":"g0","pr":[]}}`)

		a.ok("b1", `"b":{"u":"bob"}`)           // README key
		a.ok("b2", `"b":{"username":"Carol"}`)  // reference key, folded
		a.ok("b3", `"b":{"u":"bob"}`)           // again: no duplicate
		a.fail("b4", `"b":{"u":"nobody"}`, 404) // typos are seen
		a.fail("b5", `"b":{}`, 400)             // nobody named
		a.fail("b6", `"b":{"u":"x@example.org"}`, 503)
		a.rq("g1", `"get":{"o":"pr"}`)
		a.expect(`{"rp":{"id":"g1","pr":["bob","carol"]}}`)

		a.ok("u1", `"ub":{"username":"bob"}`)
		a.rq("g2", `"get":{"o":"pr"}`)
		a.expect(`{"rp":{"id":"g2","pr":["carol"]}}`)
		a.ok("u2", `"ub":{"u":"carol"}`)
		a.ok("u3", `"ub":{"u":"carol"}`) // not blocked any more: fine
		a.fail("u4", `"ub":{}`, 400)
		a.rq("g3", `"get":{"o":"pr"}`)
		a.expect(`{"rp":{"id":"g3","pr":[]}}`)

		// The first README name of the list, and an unknown list.
		a.ok("b7", `"b":{"u":"bob"}`)
		a.rq("g4", `"get":{"o":"pl"}`)
		a.expect(`{"rp":{"id":"g4","pr":["bob"]}}`)
		a.fail("g5", `"get":{"o":"zz"}`, 400)

		// Block lists are per user.
		b := g.login(t, "bob")
		b.rq("g6", `"get":{"o":"pr"}`)
		b.expect(`{"rp":{"id":"g6","pr":[]}}`)
	})
}

func TestFollowings(t *testing.T) {
	forEachBackend(t, func(t *testing.T, g *gateway) {
		g.users(t, "alice", "bob", "carol", "dave")
		a := g.login(t, "alice")
		a.rq("g0", `"get":{"o":"f"}`)
		a.expect(`{"rp":{"id":"g0","f":[]}}`)

		a.ok("af1", `"af":[{"u":"bob","n":"Bobby"},{"u":"Carol"}]`)
		a.rq("g1", `"get":{"o":"f"}`)
		a.expect(`{"rp":{"id":"g1","f":[{"u":"bob","n":"Bobby"},{"u":"carol"}]}}`)

		// af with an unknown user is refused as a whole.
		a.fail("af2", `"af":[{"u":"dave"},{"u":"nobody"}]`, 404)
		a.fail("af3", `"af":[{"u":"x@example.org","n":"X"}]`, 503)
		a.rq("g2", `"get":{"o":"f"}`)
		a.expect(`{"rp":{"id":"g2","f":[{"u":"bob","n":"Bobby"},{"u":"carol"}]}}`)

		a.ok("uf1", `"uf":[{"u":"bob","n":"Robert"},{"u":"carol","n":"Caz"},{"u":"dave","n":"ignored"}]`)
		a.rq("g3", `"get":{"o":"f"}`)
		a.expect(`{"rp":{"id":"g3","f":[{"u":"bob","n":"Robert"},{"u":"carol","n":"Caz"}]}}`)

		a.ok("rf1", `"rf":["CAROL","nobody"]`)
		a.rq("g4", `"get":{"o":"f"}`)
		a.expect(`{"rp":{"id":"g4","f":[{"u":"bob","n":"Robert"}]}}`)

		// af again overwrites the nick.
		a.ok("af4", `"af":[{"u":"bob","n":"B"}]`)
		a.rq("g5", `"get":{"o":"f"}`)
		a.expect(`{"rp":{"id":"g5","f":[{"u":"bob","n":"B"}]}}`)
		a.ok("rf2", `"rf":["bob"]`)
		a.rq("g6", `"get":{"o":"f"}`)
		a.expect(`{"rp":{"id":"g6","f":[]}}`)
	})
}

func TestServerRequests(t *testing.T) {
	forEachBackend(t, func(t *testing.T, g *gateway) {
		g.user(t, "alice", false)
		a := g.login(t, "alice")
		before := nowMs()
		a.send(`{"srq":{"id":"t1","t":"t"}}`)
		got := a.expect(`{"srp":{"id":"t1","t":"t","tm":"*"},"o":"*"}`)
		after := nowMs()
		if tm := num(t, got, "srp", "tm"); tm < before || tm > after {
			t.Errorf("tm %d not within [%d, %d]", tm, before, after)
		}
		_, off := time.Now().Zone()
		if o := num(t, got, "o"); o != int64(off/3600) {
			t.Errorf("o = %d, want %d", o, off/3600)
		}
		a.knock("k1")
		a.send(`{"srq":{"id":"x1","t":"x"}}`)
		a.expect(errRP("x1", 400))
		a.send(`{"srq":{"id":"x2"}}`)
		a.expect(errRP("x2", 400))
	})
}

func TestAdminRequests(t *testing.T) {
	forEachBackend(t, func(t *testing.T, g *gateway) {
		g.user(t, "root", true)
		g.users(t, "alice", "bob")
		a := g.login(t, "alice")
		a.fail("n1", `"ad":{"c":"cr","i":"mallory","t":"pw","ty":"1"}`, 403)
		a.fail("n2", `"ad":{"c":"del","i":"bob"}`, 403)
		a.fail("n3", `"ad":{"c":"zz","i":"bob"}`, 403)

		r := g.login(t, "root")
		r.ok("c1", `"ad":{"c":"cr","i":"dave","t":"dave-token","ty":"0"}`)
		dave := g.login(t, "dave")
		dave.fail("c1d", `"ad":{"c":"cr","i":"x","t":"x"}`, 403) // ty 0: not an admin
		r.fail("c2", `"ad":{"c":"cr","i":"dave","t":"other"}`, 409)
		r.fail("c3", `"ad":{"c":"cr","i":"DAVE","t":"other"}`, 409)
		r.fail("c4", `"ad":{"c":"cr","i":"nope","t":""}`, 400)
		r.fail("c5", `"ad":{"c":"cr","i":"a b","t":"t"}`, 400)
		r.fail("c6", `"ad":{"c":"cr","i":"","t":"t"}`, 400)
		r.fail("c7", `"ad":{"c":"mk","i":"x","t":"t"}`, 400)

		// Case-folded at creation; ty as a number and as "1" make admins.
		r.ok("c8", `"ad":{"c":"cr","i":"Eve","t":"eve-token","ty":1}`)
		eve := g.loginAs(t, "le", "eve", "eve-token")
		eve.expect(`{"rp":{"id":"le","response":1}}`)
		eve.ok("c9", `"ad":{"c":"cr","i":"frank","t":"frank-token"}`)
		frank := g.login(t, "frank")
		frank.fail("c10", `"ad":{"c":"del","i":"alice"}`, 403) // ty absent: plain user

		// A username can not take a group id.
		a.rq("g1", `"g":{"t":"c","i":"team"}`)
		a.expectSet(`{"rp":{"id":"g1"}}`, `{"i":{"g":{"t":"c","i":"team","s":"alice"}}}`)
		r.fail("c11", `"ad":{"c":"cr","i":"team","t":"t"}`, 409)

		// Deleting a user closes its live session and its login.
		r.ok("d1", `"ad":{"c":"del","i":"dave"}`)
		dave.expectClose(4404)
		d := g.loginAs(t, "ld", "dave", "dave-token")
		d.expect(`{"rp":{"id":"ld","response":0,"e":{"c":401,"d":"*"}}}`)
		r.fail("d2", `"ad":{"c":"del","i":"dave"}`, 404)
		r.fail("d3", `"ad":{"c":"del","i":"nobody"}`, 404)
		a.fail("d4", `"s":{"u":"dave"}`, 404)
		// An offline user can be deleted too.
		r.ok("d5", `"ad":{"c":"del","i":"BOB"}`)
		b := g.loginAs(t, "lb", "bob", "bob-token")
		b.expect(`{"rp":{"id":"lb","response":0,"e":{"c":401,"d":"*"}}}`)
		// The name is free again.
		r.ok("c12", `"ad":{"c":"cr","i":"bob","t":"new-token"}`)
		b = g.loginAs(t, "lb2", "bob", "new-token")
		b.expect(`{"rp":{"id":"lb2","response":1}}`)
	})
}

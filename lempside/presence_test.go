package lempside_test

import (
	"testing"
)

// Presence: li/lo pushes to followers (README 2.1), li for online followings
// at login (contract decision 10) and the state request (README 1.3).

func TestPresencePushesToFollowers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, g *gateway) {
		g.users(t, "alice", "bob", "carol", "dave")
		a := g.login(t, "alice")
		a.ok("f1", `"af":[{"u":"bob","n":"B"}]`)
		c := g.login(t, "carol")
		c.ok("f2", `"af":[{"u":"bob"}]`)
		d := g.login(t, "dave") // not a follower
		b := g.login(t, "bob")
		a.expect(`{"i":{"li":"bob"}}`)
		c.expect(`{"i":{"li":"bob"}}`)
		// bob blocks carol: from now on carol hears nothing of him.
		b.ok("b1", `"b":{"u":"carol"}`)
		b.rq("x", `"lo":{"r":"bye"}`)
		b.expectClose(1000)
		a.expect(`{"i":{"lo":"bob"}}`)

		b = g.login(t, "bob")
		a.expect(`{"i":{"li":"bob"}}`)
		// A dropped connection (no logout) is a logout too.
		b.ws.Close()
		a.expect(`{"i":{"lo":"bob"}}`)
		c.quiet(short)
		d.quiet(short)

		// Unblocked, carol hears again; unfollowed, alice does not.
		b = g.login(t, "bob")
		a.expect(`{"i":{"li":"bob"}}`)
		b.ok("u1", `"ub":{"u":"carol"}`)
		a.ok("r1", `"rf":["bob"]`)
		b.rq("x", `"lo":{"r":"bye"}`)
		b.expectClose(1000)
		c.expect(`{"i":{"lo":"bob"}}`)
		a.quiet(short)
		d.quiet(short)
	})
}

func TestPresenceAtLogin(t *testing.T) {
	forEachBackend(t, func(t *testing.T, g *gateway) {
		g.users(t, "alice", "bob", "carol", "dave", "erin")
		b := g.login(t, "bob")
		c := g.login(t, "carol")
		e := g.login(t, "erin")
		// A knock is answered after the login's presence work is done.
		b.knock("kb")
		c.knock("kc")
		c.ok("b1", `"b":{"u":"alice"}`) // carol blocked alice

		// alice follows bob (online), carol (online, blocked her), dave (offline).
		a := g.login(t, "alice")
		a.ok("f1", `"af":[{"u":"bob"},{"u":"carol"},{"u":"dave"}]`)
		a.rq("x", `"lo":{"r":"bye"}`)
		a.expectClose(1000)
		e.send(`{"m":{"id":"q1","r":"alice","c":"while you were out"}}`)
		e.expect(sr("q1", "erin"))

		a = g.login(t, "alice")
		// First the online followings, then the queued message.
		a.expect(`{"i":{"li":"bob"}}`)
		a.expect(`{"m":{"id":"q1","s":"erin","r":"alice","t":"t","c":"while you were out","st":"*","p":"1","sc":"1","pc":"1"}}`)
		a.quiet(short)
		// alice follows nobody back: her login is not pushed anywhere.
		b.quiet(short)
		c.quiet(short)
	})
}

func TestStateRequest(t *testing.T) {
	forEachBackend(t, func(t *testing.T, g *gateway) {
		g.users(t, "alice", "bob", "carol")
		a := g.login(t, "alice")
		a.ok("f1", `"af":[{"u":"bob"}]`)

		a.rq("s1", `"s":{"u":"carol"}`) // never seen
		a.expect(`{"rp":{"id":"s1","s":{"u":"carol","v":-1}}}`)
		a.fail("s2", `"s":{"u":"nobody"}`, 404)
		a.fail("s3", `"s":{"u":"bob@example.org"}`, 503)
		a.rq("s4", `"s":{"u":"alice"}`) // self: online
		a.expect(`{"rp":{"id":"s4","s":{"u":"alice","v":0}}}`)

		b := g.login(t, "bob")
		a.expect(`{"i":{"li":"bob"}}`)
		a.rq("s5", `"s":{"u":"BOB"}`)
		a.expect(`{"rp":{"id":"s5","s":{"u":"bob","v":0}}}`)

		before := nowMs()
		b.rq("x", `"lo":{"r":"bye"}`)
		b.expectClose(1000)
		a.expect(`{"i":{"lo":"bob"}}`) // pushed after the time is recorded
		after := nowMs()
		a.rq("s6", `"s":{"u":"bob"}`)
		rp := a.expect(`{"rp":{"id":"s6","s":{"u":"bob","v":"*"}}}`)
		if v := num(t, rp, "rp", "s", "v"); v < before || v > after {
			t.Errorf("last offline %d not within [%d, %d]", v, before, after)
		}
	})
}

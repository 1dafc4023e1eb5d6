package lempside_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lempgw/lempgw/bridge"
	"github.com/lempgw/lempgw/lempside"
)

// The core's limits, end to end: queue length per user, group size,
// picture size (bridge.Config), each counted in lempgw_limited_total.

// TestQueueLimit: a message to a user whose queue is full is refused with
// 429 and not written (so the same id can be sent again later); a group
// message skips the full member only; receipts and events still go
// through; once the receiver has read, the refused message is accepted.
func TestQueueLimit(t *testing.T) {
	const max = 3
	forEachLimited(t, bridge.Config{MaxQueue: max}, lempside.Config{}, func(t *testing.T, g *gateway, reg *prometheus.Registry) {
		g.users(t, "alice", "bob", "carol")
		a := g.login(t, "alice")
		for i := range max {
			id := fmt.Sprintf("q%d", i)
			a.send(`{"m":{"id":"` + id + `","r":"bob","c":"` + id + `"}}`)
			a.expect(sr(id, "alice"))
		}
		a.send(`{"m":{"id":"q3","r":"bob","c":"q3"}}`)
		a.expect(errM("q3", 429))
		a.send(`{"m":{"id":"q3","r":"bob","c":"q3"}}`) // not taken as a duplicate
		a.expect(errM("q3", 429))

		// A group: bob's copy is skipped, carol's is not. The creation
		// event reaches bob all the same (events are not refused).
		created := ev("c", "grp", "alice", "")
		a.act("g1", `"g":{"t":"c","i":"grp","m":["bob","carol"]}`, created)
		a.send(`{"m":{"id":"gm","r":"grp","c":"to the group"}}`)
		a.expect(sr("gm", "alice"))

		b := g.login(t, "bob")
		for i := range max {
			id := fmt.Sprintf("q%d", i)
			b.expect(msg(id, "alice", "bob", id))
		}
		b.expect(created)
		b.quiet(short) // no gm
		c := g.login(t, "carol")
		c.expect(created)
		c.expect(`{"m":{"id":"gm","s":"alice","r":"grp","t":"t","c":"to the group","st":"*","p":"1","sc":"1","pc":"1"}}`)

		// bob reads one: room for one more, and alice gets the receipt.
		b.send(`{"m":{"id":"d0","dm":{"id":"q0"}}}`)
		a.expect(`{"m":{"id":"d0","s":"bob","r":"alice","st":"*","dm":{"id":"q0"}}}`)
		a.send(`{"m":{"id":"q3","r":"bob","c":"q3"}}`)
		a.expect(sr("q3", "alice"))
		b.expect(msg("q3", "alice", "bob", "q3"))

		if got := limitedCount(t, reg, "queue"); got != 2 {
			t.Errorf("lempgw_limited_total{limit=queue} = %d, want 2", got)
		}
	})
}

// TestGroupSizeLimit: a group or broadcast list at its maximum size refuses
// the next member (413), at creation and when adding.
func TestGroupSizeLimit(t *testing.T) {
	const max = 3
	forEachLimited(t, bridge.Config{MaxGroupMembers: max}, lempside.Config{}, func(t *testing.T, g *gateway, reg *prometheus.Registry) {
		g.users(t, "alice", "bob", "carol", "dave", "erin")
		a := g.login(t, "alice")
		// alice + 3 others is one too many.
		a.fail("c1", `"g":{"t":"c","i":"big","m":["bob","carol","dave"]}`, 413)
		a.act("c2", `"g":{"t":"c","i":"grp","m":["bob","carol"]}`, ev("c", "grp", "alice", ""))
		a.fail("a1", `"g":{"t":"a","i":"grp","m":["dave"]}`, 413)
		a.send(`{"rq":{"id":"i1","g":{"t":"i","i":"grp"}}}`)
		a.expect(`{"rp":{"id":"i1","g":{"i":"grp","c":"*","m":["alice","bob","carol"],"ad":["alice"],"o":"alice"}}}`)
		// Adding members already in is not growing.
		a.ok("a2", `"g":{"t":"a","i":"grp","m":["bob"]}`)

		// Broadcast lists: the owner is not a member.
		a.fail("b1", `"br":{"t":"c","i":"bc","m":["bob","carol","dave","erin"]}`, 413)
		a.ok("b2", `"br":{"t":"c","i":"bc","m":["bob","carol","dave"]}`)
		a.fail("b3", `"br":{"t":"a","i":"bc","m":["erin"]}`, 413)

		if got := limitedCount(t, reg, "group_size"); got != 4 {
			t.Errorf("lempgw_limited_total{limit=group_size} = %d, want 4", got)
		}
	})
}

// TestPictureLimit: pictures over the configured size are refused (413)
// for users, groups and broadcast lists; a status is held to its own bound.
func TestPictureLimit(t *testing.T) {
	const max = 100
	fit, over := strings.Repeat("p", max), strings.Repeat("p", max+1)
	forEachLimited(t, bridge.Config{MaxPictureBytes: max}, lempside.Config{}, func(t *testing.T, g *gateway, reg *prometheus.Registry) {
		g.users(t, "alice", "bob")
		a := g.login(t, "alice")
		a.ok("p1", `"p":{"t":"s","v":"`+fit+`"}`)
		a.fail("p2", `"p":{"t":"s","v":"`+over+`"}`, 413)
		a.send(`{"rq":{"id":"p3","p":{"t":"g"}}}`)
		a.expect(`{"rp":{"id":"p3","p":{"u":"alice","v":"` + fit + `"}}}`) // unchanged

		a.fail("g1", `"g":{"t":"c","i":"grp","p":"`+over+`"}`, 413)
		a.act("g2", `"g":{"t":"c","i":"grp","p":"`+fit+`"}`, ev("c", "grp", "alice", ""))
		a.fail("g3", `"p":{"t":"s","i":"grp","v":"`+over+`"}`, 413)
		a.fail("b1", `"br":{"t":"c","i":"bc","m":["bob"],"p":"`+over+`"}`, 413)
		a.ok("b2", `"br":{"t":"c","i":"bc","m":["bob"]}`)
		a.fail("b3", `"p":{"t":"s","b":"bc","v":"`+over+`"}`, 413)

		// Names and statuses are not pictures.
		a.ok("s1", `"st":{"t":"s","s":"`+strings.Repeat("s", 4*max)+`"}`)
		a.act("n1", `"n":{"t":"s","i":"grp","n":"`+strings.Repeat("n", 4*max)+`"}`, ev("n", "grp", "alice", `"n":"`+strings.Repeat("n", 4*max)+`"`))

		if got := limitedCount(t, reg, "picture"); got != 5 {
			t.Errorf("lempgw_limited_total{limit=picture} = %d, want 5", got)
		}
	})
}

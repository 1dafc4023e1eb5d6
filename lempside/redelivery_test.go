package lempside_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lempgw/lempgw/internal/lemptest"
	"github.com/lempgw/lempgw/lempside"
	"github.com/lempgw/lempgw/state"
)

// TestRedeliveriesCounted: a message written to a session and not
// acknowledged is written again to the next session, and counted; an
// acknowledged one and a first delivery are not.
func TestRedeliveriesCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := lemptest.Start(t, state.NewMemory(), lemptest.Options{Server: lempside.Config{Registry: reg}})
	g.User(t, "alice", false)
	g.User(t, "bob", false)
	alice := g.Login(t, "alice")
	bob := g.Login(t, "bob")
	for _, id := range []string{"m1", "m2"} {
		alice.Send(`{"m":{"id":"` + id + `","r":"bob","t":"t","c":"hi"}}`)
		alice.Expect(`{"m":{"id":"` + id + `","r":"alice","sr":{"id":"` + id + `"}}}`)
		bob.Expect(`{"m":{"id":"` + id + `","s":"alice","r":"bob","t":"t","c":"hi","st":"*","p":"1","sc":"1","pc":"1"}}`)
	}
	bob.Send(`{"m":{"id":"d1","dm":{"id":"m1"}}}`) // m2 stays unacknowledged
	alice.Expect(`{"m":{"id":"d1","s":"bob","r":"alice","st":"*","dm":{"id":"m1"}}}`)
	if n := metricValue(t, reg, "lempgw_redeliveries_total"); n != 0 {
		t.Fatalf("redeliveries before any reconnect: %v", n)
	}
	bob.WS.Close()
	bob = g.Login(t, "bob")
	bob.Expect(`{"m":{"id":"m2","s":"alice","r":"bob","t":"t","c":"hi","st":"*","p":"1","sc":"1","pc":"1"}}`)
	alice.Send(`{"m":{"id":"m3","r":"bob","t":"t","c":"new"}}`)
	alice.Expect(`{"m":{"id":"m3","r":"alice","sr":{"id":"m3"}}}`)
	bob.Expect(`{"m":{"id":"m3","s":"alice","r":"bob","t":"t","c":"new","st":"*","p":"1","sc":"1","pc":"1"}}`)
	if n := metricValue(t, reg, "lempgw_redeliveries_total"); n != 1 {
		t.Fatalf("redeliveries = %v, want 1 (m2)", n)
	}
}

package lempside_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lempgw/lempgw/bridge"
	"github.com/lempgw/lempgw/internal/lemptest"
	"github.com/lempgw/lempgw/lempside"
	"github.com/lempgw/lempgw/state"
)

// Harness for the abuse-limit tests: a gateway with core limits and a
// metrics registry of its own, and clients dialling from a chosen loopback
// address or with chosen headers.

// startLimited runs a gateway on st with the core configured by bc (Store,
// Local and, when unset, Hash are filled in) and the server by sc.
func startLimited(t *testing.T, st state.Store, bc bridge.Config, sc lempside.Config) (*gateway, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	sc.Registry = reg
	return &gateway{lemptest.Start(t, st, lemptest.Options{Core: bc, Server: sc})}, reg
}

// forEachLimited runs f once per store on a gateway from startLimited.
func forEachLimited(t *testing.T, bc bridge.Config, sc lempside.Config, f func(t *testing.T, g *gateway, reg *prometheus.Registry)) {
	for name, mk := range backends() {
		t.Run(name, func(t *testing.T) {
			g, reg := startLimited(t, mk(t), bc, sc)
			f(t, g, reg)
		})
	}
}

// metricValue reads a counter or gauge from reg; labels are name, value
// pairs the series must carry. A series that does not exist reads 0.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					found = found || (lp.GetName() == labels[i] && lp.GetValue() == labels[i+1])
				}
				if !found {
					continue series
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

func limitedCount(t *testing.T, reg *prometheus.Registry, limit string) int {
	t.Helper()
	return int(metricValue(t, reg, "lempgw_limited_total", "limit", limit))
}

// rawClient is a websocket client dialled with a chosen source address and
// headers (lemptest.Client always dials from 127.0.0.1 without headers).
type rawClient struct {
	t      *testing.T
	ws     *websocket.Conn
	frames chan []byte
	closed chan error
}

// dialFrom dials g from the loopback address local ("" = any) with header
// h. On a refused handshake it returns the HTTP response and the error.
func dialFrom(t *testing.T, g *gateway, local string, h http.Header) (*rawClient, *http.Response, error) {
	t.Helper()
	d := *websocket.DefaultDialer
	if local != "" {
		nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
		d.NetDialContext = nd.DialContext
	}
	ws, resp, err := d.Dial(g.URL, h)
	if err != nil {
		return nil, resp, err
	}
	c := &rawClient{t: t, ws: ws, frames: make(chan []byte, 4096), closed: make(chan error, 1)}
	go func() {
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				c.closed <- err
				close(c.frames)
				return
			}
			c.frames <- b
		}
	}()
	t.Cleanup(func() { ws.Close() })
	return c, resp, nil
}

// mustDialFrom is dialFrom that fails the test when the dial fails.
func mustDialFrom(t *testing.T, g *gateway, local string, h http.Header) *rawClient {
	t.Helper()
	c, resp, err := dialFrom(t, g, local, h)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial from %q: %v (HTTP %d)", local, err, status)
	}
	return c
}

// wantRefusedDial checks that a dial is answered with HTTP 429 before the upgrade.
func wantRefusedDial(t *testing.T, g *gateway, local string, h http.Header) {
	t.Helper()
	c, resp, err := dialFrom(t, g, local, h)
	if err == nil {
		c.ws.Close()
		t.Fatalf("dial from %q with %v was accepted, want HTTP 429", local, h)
	}
	if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("dial from %q: %v, response %v; want HTTP 429", local, err, resp)
	}
}

func (c *rawClient) send(frame string) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

func (c *rawClient) expect(want string) {
	c.t.Helper()
	select {
	case b, ok := <-c.frames:
		if !ok {
			c.t.Fatalf("closed while waiting for %s", want)
		}
		if !frameMatches(b, want) {
			c.t.Fatalf("frame mismatch\n got: %s\nwant: %s", b, want)
		}
	case <-time.After(wait):
		c.t.Fatalf("no frame within %v, want %s", wait, want)
	}
}

// login sends a login for name (token name-token) and expects success.
func (c *rawClient) login(name string) {
	c.t.Helper()
	c.send(`{"rq":{"id":"login","a":{"i":"` + name + `","t":"` + name + `-token"}}}`)
	c.expect(`{"rp":{"id":"login","response":1}}`)
}

// reply is the part of a frame the limit tests look at.
type reply struct {
	RP *struct {
		ID       string        `json:"id"`
		Response *int          `json:"response"`
		E        *bridge.Error `json:"e"`
	} `json:"rp"`
	M *struct {
		ID string        `json:"id"`
		SR *bridge.Ref   `json:"sr"`
		E  *bridge.Error `json:"e"`
	} `json:"m"`
	SRP *struct {
		ID string `json:"id"`
	} `json:"srp"`
}

// parseReply decodes a frame; it is an error for a frame that is not JSON.
func parseReply(b []byte) (reply, error) {
	var r reply
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("frame is not JSON: %s", b)
	}
	return r, nil
}

// code is the error code of a response or message error (0: none).
func (r reply) code() int {
	switch {
	case r.RP != nil && r.RP.E != nil:
		return r.RP.E.Code
	case r.M != nil && r.M.E != nil:
		return r.M.E.Code
	}
	return 0
}

// waitFor polls cond every 10ms for up to wait.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", wait, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

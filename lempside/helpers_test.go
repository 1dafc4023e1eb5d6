package lempside_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lempgw/lempgw/lempside"
)

// Helpers on top of harness_test.go, shared by the protocol suites.

// forEachBackendCfg is forEachBackend with a server configuration.
func forEachBackendCfg(t *testing.T, cfg lempside.Config, f func(t *testing.T, g *gateway)) {
	for name, mk := range backends() {
		t.Run(name, func(t *testing.T) {
			f(t, startGateway(t, mk(t), cfg))
		})
	}
}

// users creates plain (non-admin) accounts.
func (g *gateway) users(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		g.user(t, n, false)
	}
}

// loginAs dials and sends a login with the given identity and token; the
// caller checks the response.
func (g *gateway) loginAs(t *testing.T, id, identity, token string) *client {
	t.Helper()
	c := g.dial(t)
	c.send(`{"rq":{"id":"` + id + `","a":{"i":"` + identity + `","t":"` + token + `"}}}`)
	return c
}

// rq sends {"rq":{"id":id, <body>}}; body is one or more members, e.g. `"s":{"u":"bob"}`.
func (c *client) rq(id, body string) {
	c.t.Helper()
	c.send(`{"rq":{"id":"` + id + `",` + body + `}}`)
}

// ok sends a request and expects the bare success response.
func (c *client) ok(id, body string) {
	c.t.Helper()
	c.rq(id, body)
	c.expect(`{"rp":{"id":"` + id + `"}}`)
}

// fail sends a request and expects an error response with code.
func (c *client) fail(id, body string, code int) map[string]any {
	c.t.Helper()
	c.rq(id, body)
	return c.expect(errRP(id, code))
}

// errRP is the error response pattern for a request id.
func errRP(id string, code int) string {
	if id == "" {
		return fmt.Sprintf(`{"rp":{"e":{"c":%d,"d":"*"}}}`, code)
	}
	return fmt.Sprintf(`{"rp":{"id":%q,"e":{"c":%d,"d":"*"}}}`, id, code)
}

// errM is the error pattern for a message id.
func errM(id string, code int) string {
	if id == "" {
		return fmt.Sprintf(`{"m":{"e":{"c":%d,"d":"*"}}}`, code)
	}
	return fmt.Sprintf(`{"m":{"id":%q,"e":{"c":%d,"d":"*"}}}`, id, code)
}

// sr is the server receipt pattern for message id sent by sender.
func sr(id, sender string) string {
	return fmt.Sprintf(`{"m":{"id":%q,"r":%q,"sr":{"id":%q}}}`, id, sender, id)
}

// knock sends a knock-knock and expects its answer: the connection works.
func (c *client) knock(id string) {
	c.t.Helper()
	c.send(`{"srq":{"id":"` + id + `","t":"k"}}`)
	c.expect(`{"srp":{"id":"` + id + `","t":"k"}}`)
}

// expectCloseSkipping is expectClose, letting frames that match one of
// allowed arrive first.
func (c *client) expectCloseSkipping(code int, allowed ...string) {
	c.t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case b, ok := <-c.frames:
			if !ok {
				continue
			}
			skip := false
			for _, w := range allowed {
				skip = skip || frameMatches(b, w)
			}
			if !skip {
				c.t.Fatalf("frame before close %d: %s", code, b)
			}
		case err := <-c.closed:
			ce, ok := err.(*websocket.CloseError)
			if !ok || ce.Code != code {
				c.t.Fatalf("closed with %v, want code %d", err, code)
			}
			return
		case <-deadline:
			c.t.Fatalf("not closed within %v", wait)
		}
	}
}

// sendBinary writes a binary frame.
func (c *client) sendBinary(b []byte) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.BinaryMessage, b); err != nil {
		c.t.Fatalf("send binary: %v", err)
	}
}

// expectSet reads len(wants) frames and matches each to a distinct want, in
// any order (a response and a push the same request caused race each other).
func (c *client) expectSet(wants ...string) []map[string]any {
	c.t.Helper()
	ws := make([]any, len(wants))
	for i, w := range wants {
		if err := json.Unmarshal([]byte(w), &ws[i]); err != nil {
			c.t.Fatalf("bad want %s: %v", w, err)
		}
	}
	used := make([]bool, len(wants))
	out := make([]map[string]any, 0, len(wants))
	for range wants {
		got := c.next()
		var g map[string]any
		if err := json.Unmarshal([]byte(got), &g); err != nil {
			c.t.Fatalf("frame is not JSON: %s", got)
		}
		found := false
		for i, w := range ws {
			if !used[i] && match(w, g) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			var left []string
			for i, w := range wants {
				if !used[i] {
					left = append(left, w)
				}
			}
			c.t.Fatalf("unexpected frame\n got: %s\nwant one of:\n  %s", got, strings.Join(left, "\n  "))
		}
		out = append(out, g)
	}
	return out
}

// frameMatches compares a frame with a pattern like expect does, without
// failing the test (for goroutines).
func frameMatches(got []byte, want string) bool {
	var g, w any
	if json.Unmarshal(got, &g) != nil || json.Unmarshal([]byte(want), &w) != nil {
		return false
	}
	return match(w, g)
}

// num reads a JSON number at a path of object keys.
func num(t *testing.T, v map[string]any, path ...string) int64 {
	t.Helper()
	var cur any = v
	for _, k := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			t.Fatalf("no object at %q in %v", k, v)
		}
		cur = m[k]
	}
	f, ok := cur.(float64)
	if !ok {
		t.Fatalf("%v is not a number at %v", cur, path)
	}
	return int64(f)
}

// nowMs is the test's clock in ms.
func nowMs() int64 { return time.Now().UnixMilli() }

// short is how long quiet waits to assert that nothing arrives.
const short = 100 * time.Millisecond

// Package lemptest runs an in-process LEMP gateway on a loopback port and
// drives it with real websocket clients, for the tests of every package.
package lemptest

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lempgw/lempgw/bridge"
	"github.com/lempgw/lempgw/lempside"
	"github.com/lempgw/lempgw/state"
)

// CheapHash keeps argon2id fast in tests; production uses the defaults.
var CheapHash = bridge.HashParams{MemoryKiB: 64, Time: 1, Threads: 1}

// Wait is how long Expect waits for a frame.
const Wait = 10 * time.Second

// Gateway is a running LEMP server on a loopback port.
type Gateway struct {
	URL   string
	Store state.Store
	Core  *bridge.Core
	Srv   *lempside.Server
	Hub   *lempside.Hub
}

// Options tune Start.
type Options struct {
	Server lempside.Config
	// Core configures the core; Store and Local are filled in, and Hash
	// (when unset) is CheapHash.
	Core bridge.Config
	// Remote, when set, is called with the core before serving, to attach
	// the XMPP side (core.SetRemote).
	Remote func(core *bridge.Core)
}

// Start runs a gateway on st until the test ends.
func Start(t testing.TB, st state.Store, opt Options) *Gateway {
	t.Helper()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	hub := lempside.NewHub()
	bc := opt.Core
	bc.Store, bc.Local = st, hub
	if bc.Log == nil {
		bc.Log = log
	}
	if bc.Hash == (bridge.HashParams{}) {
		bc.Hash = CheapHash
	}
	core, err := bridge.New(bc)
	if err != nil {
		t.Fatal(err)
	}
	if opt.Remote != nil {
		opt.Remote(core)
	}
	cfg := opt.Server
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	srv, err := lempside.NewServer(cfg, core, hub, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return &Gateway{URL: srv.URL(), Store: st, Core: core, Srv: srv, Hub: hub}
}

// User creates an account whose token is name+"-token".
func (g *Gateway) User(t testing.TB, name string, admin bool) {
	t.Helper()
	if e := g.Core.CreateUser(context.Background(), name, name+"-token", admin); e != nil {
		t.Fatalf("create user %s: %v", name, e)
	}
}

// Client is a LEMP websocket client. Frames receives every frame the server
// sends; Closed receives the read error (the close frame) once it closes.
type Client struct {
	t      testing.TB
	WS     *websocket.Conn
	Frames <-chan []byte
	Closed <-chan error
	frames chan []byte
	closed chan error
}

// Dial connects a client.
func (g *Gateway) Dial(t testing.TB) *Client {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(g.URL, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", g.URL, err)
	}
	c := &Client{t: t, WS: ws, frames: make(chan []byte, 4096), closed: make(chan error, 1)}
	c.Frames, c.Closed = c.frames, c.closed
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
	return c
}

// Login dials and logs name in, checking the success response.
func (g *Gateway) Login(t testing.TB, name string) *Client {
	t.Helper()
	c := g.Dial(t)
	c.Send(`{"rq":{"id":"login","a":{"i":"` + name + `","t":"` + name + `-token"}}}`)
	c.Expect(`{"rp":{"id":"login","response":1}}`)
	return c
}

// Send writes one text frame.
func (c *Client) Send(frame string) {
	c.t.Helper()
	if err := c.WS.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// Next returns the next frame, failing after Wait.
func (c *Client) Next() string {
	c.t.Helper()
	select {
	case b, ok := <-c.frames:
		if !ok {
			c.t.Fatalf("connection closed while waiting for a frame")
		}
		return string(b)
	case <-time.After(Wait):
		c.t.Fatalf("no frame within %v", Wait)
	}
	return ""
}

// Expect reads the next frame and compares it with want as JSON; a value
// "*" in want matches anything present. It returns the frame decoded.
func (c *Client) Expect(want string) map[string]any {
	c.t.Helper()
	got := c.Next()
	var g, w map[string]any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		c.t.Fatalf("frame is not JSON: %s", got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		c.t.Fatalf("bad want %s: %v", want, err)
	}
	if !Match(w, g) {
		c.t.Fatalf("frame mismatch\n got: %s\nwant: %s", got, want)
	}
	return g
}

// Match compares decoded JSON: maps must have the same keys; "*" matches any value.
func Match(want, got any) bool {
	if s, ok := want.(string); ok && s == "*" {
		return got != nil
	}
	wm, ok := want.(map[string]any)
	if !ok {
		return reflect.DeepEqual(want, got)
	}
	gm, ok := got.(map[string]any)
	if !ok || len(gm) != len(wm) {
		return false
	}
	for k, v := range wm {
		if !Match(v, gm[k]) {
			return false
		}
	}
	return true
}

// Quiet checks that no frame arrives within d.
func (c *Client) Quiet(d time.Duration) {
	c.t.Helper()
	select {
	case b, ok := <-c.frames:
		if ok {
			c.t.Fatalf("unexpected frame: %s", b)
		}
	case <-time.After(d):
	}
}

// ExpectClose waits for the server to close the connection with code.
func (c *Client) ExpectClose(code int) {
	c.t.Helper()
	deadline := time.After(Wait)
	for {
		select {
		case b, ok := <-c.frames:
			if ok {
				c.t.Fatalf("frame before close %d: %s", code, b)
			}
		case err := <-c.closed:
			ce, ok := err.(*websocket.CloseError)
			if !ok || ce.Code != code {
				c.t.Fatalf("closed with %v, want code %d", err, code)
			}
			return
		case <-deadline:
			c.t.Fatalf("not closed within %v", Wait)
		}
	}
}

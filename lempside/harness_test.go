package lempside_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lempgw/lempgw/bridge"
	"github.com/lempgw/lempgw/internal/testenv"
	"github.com/lempgw/lempgw/lempside"
	"github.com/lempgw/lempgw/state"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// cheapHash keeps argon2id fast in tests; production uses the defaults.
var cheapHash = bridge.HashParams{MemoryKiB: 64, Time: 1, Threads: 1}

// backends are the stores every protocol test runs on.
func backends() map[string]func(t testing.TB) state.Store {
	return map[string]func(t testing.TB) state.Store{
		"memory": func(t testing.TB) state.Store { return state.NewMemory() },
		"redis": func(t testing.TB) state.Store {
			s, err := state.NewRedis(context.Background(), state.RedisConfig{URL: testenv.RedisURL(t), KeyPrefix: testenv.UniquePrefix(t)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
	}
}

// forEachBackend runs f once per store, as subtests.
func forEachBackend(t *testing.T, f func(t *testing.T, g *gateway)) {
	for name, mk := range backends() {
		t.Run(name, func(t *testing.T) {
			f(t, startGateway(t, mk(t), lempside.Config{}))
		})
	}
}

// gateway is a running LEMP server on a loopback port.
type gateway struct {
	URL   string
	Store state.Store
	Core  *bridge.Core
	Srv   *lempside.Server
	Hub   *lempside.Hub
}

func startGateway(t testing.TB, st state.Store, cfg lempside.Config) *gateway {
	t.Helper()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	hub := lempside.NewHub()
	core, err := bridge.New(bridge.Config{Store: st, Local: hub, Log: log, Hash: cheapHash})
	if err != nil {
		t.Fatal(err)
	}
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
	return &gateway{URL: srv.URL(), Store: st, Core: core, Srv: srv, Hub: hub}
}

// user creates an account.
func (g *gateway) user(t testing.TB, name string, admin bool) {
	t.Helper()
	if e := g.Core.CreateUser(context.Background(), name, name+"-token", admin); e != nil {
		t.Fatalf("create user %s: %v", name, e)
	}
}

// client is a LEMP websocket client.
type client struct {
	t      *testing.T
	ws     *websocket.Conn
	frames chan []byte
	closed chan error // the read error (close frame) once the server closed
}

func (g *gateway) dial(t *testing.T) *client {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(g.URL, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", g.URL, err)
	}
	c := &client{t: t, ws: ws, frames: make(chan []byte, 1024), closed: make(chan error, 1)}
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

// login dials and logs name in, checking the success response.
func (g *gateway) login(t *testing.T, name string) *client {
	t.Helper()
	c := g.dial(t)
	c.send(`{"rq":{"id":"login","a":{"i":"` + name + `","t":"` + name + `-token"}}}`)
	c.expect(`{"rp":{"id":"login","response":1}}`)
	return c
}

func (c *client) send(frame string) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

const wait = 5 * time.Second

// next returns the next frame, failing after a timeout.
func (c *client) next() string {
	c.t.Helper()
	select {
	case b, ok := <-c.frames:
		if !ok {
			c.t.Fatalf("connection closed while waiting for a frame")
		}
		return string(b)
	case <-time.After(wait):
		c.t.Fatalf("no frame within %v", wait)
	}
	return ""
}

// expect reads the next frame and compares it with want as JSON. A value
// "*" in want matches anything present.
func (c *client) expect(want string) map[string]any {
	c.t.Helper()
	got := c.next()
	var g, w map[string]any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		c.t.Fatalf("frame is not JSON: %s", got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		c.t.Fatalf("bad want %s: %v", want, err)
	}
	if !match(w, g) {
		c.t.Fatalf("frame mismatch\n got: %s\nwant: %s", got, want)
	}
	return g
}

func match(want, got any) bool {
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
		if !match(v, gm[k]) {
			return false
		}
	}
	return true
}

// quiet checks that no frame arrives within d.
func (c *client) quiet(d time.Duration) {
	c.t.Helper()
	select {
	case b, ok := <-c.frames:
		if ok {
			c.t.Fatalf("unexpected frame: %s", b)
		}
	case <-time.After(d):
	}
}

// expectClose waits for the server to close the connection with code.
func (c *client) expectClose(code int) {
	c.t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case b, ok := <-c.frames:
			if ok {
				c.t.Fatalf("frame before close %d: %s", code, b)
			}
		case err := <-c.closed:
			var ce *websocket.CloseError
			if !asClose(err, &ce) || ce.Code != code {
				c.t.Fatalf("closed with %v, want code %d", err, code)
			}
			return
		case <-deadline:
			c.t.Fatalf("not closed within %v", wait)
		}
	}
}

func asClose(err error, ce **websocket.CloseError) bool {
	e, ok := err.(*websocket.CloseError)
	if ok {
		*ce = e
	}
	return ok
}

// nonce makes ids unique within a test.
func nonce(parts ...string) string { return strings.Join(parts, "-") }

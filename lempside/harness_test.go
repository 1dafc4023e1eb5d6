package lempside_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lempgw/lempgw/internal/lemptest"
	"github.com/lempgw/lempgw/internal/testenv"
	"github.com/lempgw/lempgw/lempside"
	"github.com/lempgw/lempgw/state"
)

func TestMain(m *testing.M) {
	code := testenv.Main(m)
	testenv.StopSharedRedisCluster()
	os.Exit(code)
}

// backends are the stores every protocol test runs on: memory, a single
// Redis, and a 3-master Redis Cluster (one per test process, shared).
func backends() map[string]func(t testing.TB) state.Store {
	return map[string]func(t testing.TB) state.Store{
		"memory": func(t testing.TB) state.Store { return state.NewMemory() },
		"redis": func(t testing.TB) state.Store {
			return openRedis(t, state.RedisConfig{URL: testenv.RedisURL(t), KeyPrefix: testenv.UniquePrefix(t)})
		},
		"cluster": func(t testing.TB) state.Store {
			return openRedis(t, state.RedisConfig{URL: testenv.SharedRedisCluster(t).URL, KeyPrefix: testenv.UniquePrefix(t)})
		},
	}
}

func openRedis(t testing.TB, cfg state.RedisConfig) *state.Redis {
	t.Helper()
	s, err := state.NewRedis(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// forEachBackend runs f once per store, as subtests.
func forEachBackend(t *testing.T, f func(t *testing.T, g *gateway)) {
	for name, mk := range backends() {
		t.Run(name, func(t *testing.T) {
			f(t, startGateway(t, mk(t), lempside.Config{}))
		})
	}
}

// gateway is a running LEMP server on a loopback port (lemptest.Gateway
// with this package's lower-case helpers).
type gateway struct{ *lemptest.Gateway }

func startGateway(t testing.TB, st state.Store, cfg lempside.Config) *gateway {
	t.Helper()
	return &gateway{lemptest.Start(t, st, lemptest.Options{Server: cfg})}
}

// user creates an account whose token is name+"-token".
func (g *gateway) user(t testing.TB, name string, admin bool) {
	t.Helper()
	g.User(t, name, admin)
}

// client is a LEMP websocket client.
type client struct {
	*lemptest.Client
	t      testing.TB
	ws     *websocket.Conn
	frames <-chan []byte
	closed <-chan error
}

func wrap(t testing.TB, c *lemptest.Client) *client {
	return &client{Client: c, t: t, ws: c.WS, frames: c.Frames, closed: c.Closed}
}

func (g *gateway) dial(t *testing.T) *client { t.Helper(); return wrap(t, g.Dial(t)) }

// login dials and logs name in, checking the success response.
func (g *gateway) login(t *testing.T, name string) *client {
	t.Helper()
	return wrap(t, g.Login(t, name))
}

func (c *client) send(frame string)                 { c.t.Helper(); c.Send(frame) }
func (c *client) next() string                      { c.t.Helper(); return c.Next() }
func (c *client) expect(want string) map[string]any { c.t.Helper(); return c.Expect(want) }
func (c *client) quiet(d time.Duration)             { c.t.Helper(); c.Quiet(d) }
func (c *client) expectClose(code int)              { c.t.Helper(); c.ExpectClose(code) }

func match(want, got any) bool { return lemptest.Match(want, got) }

const wait = lemptest.Wait

// nonce makes ids unique within a test.
func nonce(parts ...string) string { return strings.Join(parts, "-") }

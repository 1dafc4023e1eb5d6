package main

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lempgw/lempgw/internal/testenv"
)

// The failures docs/operations.md's troubleshooting guide describes, each
// made for real, with the symptoms the guide tells operators to look for.

var built struct {
	once sync.Once
	bin  string
	err  error
	out  []byte
}

// lempgwBinary builds the binary once per test process.
func lempgwBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "lempgw-bin-")
		if err != nil {
			built.err = err
			return
		}
		built.bin = filepath.Join(dir, "lempgw")
		built.out, built.err = exec.Command("go", "build", "-o", built.bin, ".").CombinedOutput()
	})
	if built.err != nil {
		t.Fatalf("go build: %v\n%s", built.err, built.out)
	}
	return built.bin
}

// gateway is a `lempgw serve` process with the given environment.
type gateway struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	lemp   string // host:port
	ops    string // host:port
}

func startGateway(t *testing.T, env ...string) *gateway {
	t.Helper()
	g := &gateway{stderr: &syncBuffer{}, lemp: freeAddr(t), ops: freeAddr(t)}
	g.cmd = exec.Command(lempgwBinary(t), "serve", "--lemp.listen", g.lemp, "--http.listen", g.ops)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LEMPGW_") {
			g.cmd.Env = append(g.cmd.Env, kv)
		}
	}
	g.cmd.Env = append(g.cmd.Env, env...)
	g.cmd.Stderr = g.stderr
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = g.cmd.Process.Signal(syscall.SIGTERM)
		_ = g.cmd.Wait()
		if t.Failed() {
			t.Logf("gateway log:\n%s", g.stderr.String())
		}
	})
	return g
}

// waitLog waits until the gateway's log has a line with every part.
func (g *gateway) waitLog(t *testing.T, parts ...string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(g.stderr.String(), "\n") {
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(line, p)
			}
			if ok {
				return line
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no log line with %q", parts)
	return ""
}

// waitReady waits until /readyz answers code, and returns its body.
func (g *gateway) waitReady(t *testing.T, code int) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var got int
	var body string
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + g.ops + "/readyz")
		if err == nil {
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			resp.Body.Close()
			got, body = resp.StatusCode, b.String()
			if got == code {
				return body
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("/readyz = %d %s, want %d", got, body, code)
	return ""
}

func TestTroubleshooting(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary against real servers")
	}
	t.Run("wrong component secret", func(t *testing.T) {
		srv := testenv.StartProsody(t)
		g := startGateway(t, "LEMPGW_XMPP__COMPONENT_ADDRESS="+srv.ComponentAddr,
			"LEMPGW_XMPP__DOMAIN="+srv.ComponentDomain, "LEMPGW_XMPP__SECRET=not-the-secret")
		line := g.waitLog(t, "component link down", "not-authorized")
		t.Logf("symptom: %s", line)
		if body := g.waitReady(t, 503); !strings.Contains(body, "component") {
			t.Fatalf("/readyz body %s", body)
		}
	})
	t.Run("domain not routed", func(t *testing.T) {
		srv := testenv.StartProsody(t)
		g := startGateway(t, "LEMPGW_XMPP__COMPONENT_ADDRESS="+srv.ComponentAddr,
			"LEMPGW_XMPP__DOMAIN=elsewhere."+srv.Domain, "LEMPGW_XMPP__SECRET="+srv.ComponentSecret)
		line := g.waitLog(t, "component link down", "host-unknown")
		t.Logf("symptom: %s", line)
		g.waitReady(t, 503)
	})
	t.Run("redis down", func(t *testing.T) {
		// At start: a one-line error naming the address, exit 1.
		cmd := exec.Command(lempgwBinary(t), "serve", "--state.backend", "redis", "--state.redis_url", "redis://127.0.0.1:1/0",
			"--lemp.listen", freeAddr(t), "--http.listen", freeAddr(t))
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "127.0.0.1:1") || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 {
			t.Fatalf("serve with Redis down: err %v, output %q", err, out)
		}
		t.Logf("symptom at start: %s", out)
		// Later: not ready, with the reason; clients get 503; back when Redis is.
		rs := testenv.StartRedis(t)
		g := startGateway(t, "LEMPGW_STATE__BACKEND=redis", "LEMPGW_STATE__REDIS_URL="+rs.URL,
			"LEMPGW_AUTH__ADMIN_IDENTITY=admin", "LEMPGW_AUTH__ADMIN_TOKEN=secret")
		g.waitReady(t, 200)
		ws, _, err := websocket.DefaultDialer.Dial("ws://"+g.lemp+"/lemp", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		exchange := func(send, want string) time.Duration {
			t.Helper()
			start := time.Now()
			if err := ws.WriteMessage(websocket.TextMessage, []byte(send)); err != nil {
				t.Fatal(err)
			}
			_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, b, err := ws.ReadMessage()
			if err != nil || !strings.Contains(string(b), want) {
				t.Fatalf("sent %s: got %s %v, want %s", send, b, err, want)
			}
			return time.Since(start)
		}
		exchange(`{"rq":{"id":"r1","a":{"i":"admin","t":"secret"}}}`, `"response":1`)
		rs.Stop()
		took := exchange(`{"m":{"id":"m1","r":"admin","t":"t","c":"anyone?"}}`, `{"m":{"id":"m1","e":{"c":503,"d":"state store unavailable"}}}`)
		t.Logf("symptom for clients: 503 after %v", took.Round(time.Millisecond))
		// One log line per connection event, and per refusal with the user
		// and the packet's id.
		g.waitLog(t, `msg="connection opened"`, `remote=`)
		g.waitLog(t, `msg="logged in"`, `user=admin`)
		t.Logf("logged: %s", g.waitLog(t, `msg=refused`, `m=m1`, `code=503`, `user=admin`))
		body := g.waitReady(t, 503)
		if !strings.Contains(body, "state store") {
			t.Fatalf("/readyz body %s", body)
		}
		t.Logf("symptom later: /readyz %s", body)
		rs.Restart(t)
		g.waitReady(t, 200)
		ws.Close()
		g.waitLog(t, `msg="connection closed"`, `user=admin`)
	})
	t.Run("origin rejected", func(t *testing.T) {
		g := startGateway(t, "LEMPGW_LEMP__ALLOWED_ORIGINS=https://app.example.org")
		g.waitReady(t, 200)
		h := http.Header{"Origin": {"https://other.example.org"}}
		_, resp, err := websocket.DefaultDialer.Dial("ws://"+g.lemp+"/lemp", h)
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("dial from another origin: %v %v", err, resp)
		}
		line := g.waitLog(t, "websocket origin rejected", "https://other.example.org")
		t.Logf("symptom: %s", line)
		h.Set("Origin", "https://app.example.org")
		ws, _, err := websocket.DefaultDialer.Dial("ws://"+g.lemp+"/lemp", h)
		if err != nil {
			t.Fatalf("dial from the allowed origin: %v", err)
		}
		ws.Close()
	})
}

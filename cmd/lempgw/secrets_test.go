package main

import (
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lempgw/lempgw/internal/testenv"
)

// TestSecretsNeverLogged runs the real binary at log level debug with every
// kind of secret in use: the Redis password (an ACL user in the URL), the
// XEP-0114 secret (a real handshake with Prosody), the bootstrap admin
// token, a user token set by an admin request, and a wrong token tried at
// login. None may appear in the log, in /metrics or /readyz, or in
// "lempgw config check".
func TestSecretsNeverLogged(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary against real servers")
	}
	const (
		redisPass  = "redis-PASS-4417"
		adminToken = "admin-TOKEN-9931"
		newToken   = "new-user-TOKEN-2208"
		wrongToken = "wrong-TOKEN-5150"
	)
	// The default user keeps no password (testenv's PING); the gateway logs
	// in as "lempgw".
	rs := testenv.StartRedis(t, "--user", "lempgw", "on", ">"+redisPass, "~*", "&*", "+@all")
	redisURL := "redis://lempgw:" + redisPass + "@" + rs.Addr + "/0"
	xs := testenv.StartProsody(t)
	env := []string{
		"LEMPGW_LOG__LEVEL=debug",
		"LEMPGW_STATE__BACKEND=redis", "LEMPGW_STATE__REDIS_URL=" + redisURL, "LEMPGW_STATE__KEY_PREFIX=" + testenv.UniquePrefix(t),
		"LEMPGW_XMPP__COMPONENT_ADDRESS=" + xs.ComponentAddr, "LEMPGW_XMPP__DOMAIN=" + xs.ComponentDomain,
		"LEMPGW_XMPP__SECRET=" + xs.ComponentSecret,
		"LEMPGW_AUTH__ADMIN_IDENTITY=admin", "LEMPGW_AUTH__ADMIN_TOKEN=" + adminToken,
	}
	g := startGateway(t, env...)
	g.waitReady(t, 200) // Redis answers with the password, and the component link is up (the secret was used)

	url := "ws://" + g.lemp + "/lemp"
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	exchange := func(send, want string) {
		t.Helper()
		if err := ws.WriteMessage(websocket.TextMessage, []byte(send)); err != nil {
			t.Fatal(err)
		}
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, b, err := ws.ReadMessage()
		if err != nil || !strings.Contains(string(b), want) {
			t.Fatalf("sent %s: got %s %v, want %s", send, b, err, want)
		}
	}
	exchange(`{"rq":{"id":"r0","a":{"i":"admin","t":"`+wrongToken+`"}}}`, `"response":0`)
	exchange(`{"rq":{"id":"r1","a":{"i":"admin","t":"`+adminToken+`"}}}`, `"response":1`)
	exchange(`{"rq":{"id":"r2","ad":{"c":"cr","i":"carol","t":"`+newToken+`","ty":0}}}`, `{"rp":{"id":"r2"}}`)
	exchange(`{"m":{"id":"m1","r":"nobody@`+xs.Domain+`","t":"t","c":"hello"}}`, `"sr"`)

	var seen strings.Builder
	for _, path := range []string{"/metrics", "/readyz"} {
		resp, err := http.Get("http://" + g.ops + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		seen.Write(b)
	}
	cmd := exec.Command(lempgwBinary(t), "config", "check")
	cmd.Env = append(cleanEnv(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("config check: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "redis://lempgw:***@") {
		t.Fatalf("config check does not show the masked URL:\n%s", out)
	}
	seen.Write(out)

	ws.Close()
	time.Sleep(200 * time.Millisecond) // the disconnect's log lines
	log := g.stderr.String()
	for _, want := range []string{"level=DEBUG", "component link up", "logged in"} {
		if !strings.Contains(log, want) {
			t.Fatalf("the log has no %q: not the log of this run?\n%s", want, log)
		}
	}
	for name, secret := range map[string]string{
		"redis password": redisPass, "component secret": xs.ComponentSecret,
		"admin token": adminToken, "new user's token": newToken, "wrong token": wrongToken,
	} {
		if strings.Contains(log, secret) {
			t.Errorf("the %s is in the log", name)
		}
		if strings.Contains(seen.String(), secret) {
			t.Errorf("the %s is in /metrics, /readyz or config check", name)
		}
	}
	t.Logf("%d log lines at debug level, %d bytes of /metrics, /readyz and config check: no secret", strings.Count(log, "\n"), seen.Len())
}

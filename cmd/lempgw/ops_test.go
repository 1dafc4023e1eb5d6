package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lempgw/lempgw/internal/testenv"
)

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric returns the value of one sample line of a Prometheus text page.
func metric(page, series string) float64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(page)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// TestOpsEndpoints runs serve on its own redis-server: /healthz, /readyz
// (503 with a JSON reason while Redis is down) and /metrics, whose counters
// move with LEMP traffic.
func TestOpsEndpoints(t *testing.T) {
	t.Parallel()
	redis := testenv.StartRedis(t)
	lempAddr, opsAddr := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	var errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runEnv(ctx, []string{"serve", "--lemp.listen", lempAddr, "--http.listen", opsAddr,
			"--state.backend", "redis", "--state.redis_url", redis.URL, "--state.key_prefix", testenv.UniquePrefix(t)},
			[]string{"LEMPGW_AUTH__ADMIN_IDENTITY=root", "LEMPGW_AUTH__ADMIN_TOKEN=r00t",
				"LEMPGW_AUTH__ARGON2_MEMORY_KIB=64", "LEMPGW_AUTH__ARGON2_TIME=1"}, io.Discard, &errb)
	}()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
		}
	}()
	waitHealthy(t, opsAddr)
	base := "http://" + opsAddr

	if code, body := httpGet(t, base+"/healthz"); code != 200 || strings.TrimSpace(body) != `{"status":"ok"}` {
		t.Errorf("/healthz: %d %s", code, body)
	}
	if code, body := httpGet(t, base+"/readyz"); code != 200 || strings.TrimSpace(body) != `{"status":"ready"}` {
		t.Errorf("/readyz: %d %s", code, body)
	}

	_, before := httpGet(t, base+"/metrics")
	for _, name := range []string{"lempgw_sessions", "lempgw_lemp_connections", "go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(before, "\n"+name+" ") {
			t.Errorf("/metrics has no %s", name)
		}
	}

	// Traffic: a failed login, a good one, a request, a message refused, one accepted.
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+lempAddr+"/lemp", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	for _, f := range []string{
		`{"rq":{"id":"1","a":{"i":"root","t":"wrong"}}}`,
		`{"rq":{"id":"2","a":{"i":"root","t":"r00t"}}}`,
		`{"srq":{"id":"3","t":"k"}}`,
		`{"m":{"id":"m1","r":"nobody","c":"x"}}`,
		`{"m":{"id":"m2","r":"root","c":"to myself"}}`,
	} {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(f)); err != nil {
			t.Fatal(err)
		}
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for range 6 { // rp, rp, srp, m error, sr, the message itself
		if _, b, err := ws.ReadMessage(); err != nil {
			t.Fatalf("reading: %v", err)
		} else if !json.Valid(b) {
			t.Fatalf("bad frame %s", b)
		}
	}
	_, after := httpGet(t, base+"/metrics")
	for series, want := range map[string]float64{
		`lempgw_logins_total{result="failed"}`:                       1,
		`lempgw_logins_total{result="ok"}`:                           1,
		`lempgw_packets_in_total{type="rq"}`:                         2,
		`lempgw_packets_in_total{type="srq"}`:                        1,
		`lempgw_packets_in_total{type="m"}`:                          2,
		`lempgw_messages_total{outcome="accepted",path="lemp-lemp"}`: 1,
		`lempgw_messages_total{outcome="refused",path="lemp-lemp"}`:  1,
		`lempgw_errors_total{code="401"}`:                            1,
		`lempgw_errors_total{code="404"}`:                            1,
		`lempgw_sessions`:                                            1,
		`lempgw_lemp_connections`:                                    1,
	} {
		if got := metric(after, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	// Frames written by type: rp, rp, srp, then m (the error, the sr, the
	// message). The writer counts a frame once written: the client can
	// read it first.
	out := func() (rp, srp, m float64) {
		return metric(after, `lempgw_packets_out_total{type="rp"}`), metric(after, `lempgw_packets_out_total{type="srp"}`),
			metric(after, `lempgw_packets_out_total{type="m"}`)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		if rp, srp, m := out(); rp >= 2 && srp >= 1 && m >= 3 {
			break
		}
		time.Sleep(10 * time.Millisecond)
		_, after = httpGet(t, base+"/metrics")
	}
	if rp, srp, m := out(); rp < 2 || srp < 1 || m < 3 {
		t.Errorf("lempgw_packets_out_total by type: rp %v, srp %v, m %v; want at least 2, 1, 3", rp, srp, m)
	}
	// The XMPP side's queues (empty: bridging is off) and the Redis round
	// trips the traffic made, timed by command.
	for _, q := range []string{`lempgw_queue_items{queue="@xmpp"}`, `lempgw_queue_items{queue="@muc"}`} {
		if !strings.Contains(after, "\n"+q+" 0\n") {
			t.Errorf("/metrics has no %s 0", q)
		}
	}
	if got := metric(after, `lempgw_redis_seconds_count{cmd="evalsha"}`); got < 1 {
		t.Errorf(`lempgw_redis_seconds_count{cmd="evalsha"} = %v, want >= 1 (the delivery script)`, got)
	}

	// Redis down: not ready, with the reason; back up: ready again.
	redis.Stop()
	code, body := httpGet(t, base+"/readyz")
	var r struct{ Status, Reason string }
	if code != http.StatusServiceUnavailable || json.Unmarshal([]byte(body), &r) != nil || r.Status != "unready" || !strings.Contains(r.Reason, "state store") {
		t.Errorf("/readyz with Redis down: %d %s", code, body)
	}
	redis.Restart(t)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if code, _ := httpGet(t, base+"/readyz"); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz not ready after Redis returned; stderr %s", errb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

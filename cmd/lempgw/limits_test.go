package main

import (
	"context"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lempgw/lempgw/lempside"
)

// TestLimitsConfig: the [limits] keys load from the file and the
// environment, 0 turns a rate limit off, bad values are one-line errors
// naming the key.
func TestLimitsConfig(t *testing.T) {
	file := writeFile(t, `
[limits]
message_rate = 0
request_rate = 5
request_burst = 7
flood_factor = 0
login_backoff = "2s"
proxy_header = "X-Real-IP"
trusted_proxies = ["10.0.0.0/8", "192.0.2.1"]
max_queue = 0
`)
	cfg, err := LoadConfig(file, []string{"LEMPGW_LIMITS__MAX_GROUP_MEMBERS=10", "LEMPGW_LIMITS__CONNECTIONS_PER_ADDRESS=0"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.Limits.LEMP()
	want := lempside.Limits{
		RequestRate: 5, RequestBurst: 7, MessageBurst: 500,
		FloodFactor:   -1, // 0 in the file: never closed
		LoginFailures: 5, LoginAddressFailures: 50, LoginBackoff: 2 * time.Second, LoginBackoffMax: 15 * time.Minute,
		ProxyHeader: "X-Real-IP", TrustedProxies: []string{"10.0.0.0/8", "192.0.2.1"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("LEMP limits:\n got %+v\nwant %+v", got, want)
	}
	if cfg.Limits.MaxGroupMembers != 10 || cfg.Limits.MaxQueue != 0 || cfg.Limits.MaxPictureBytes != 16384 {
		t.Errorf("core limits: %+v", cfg.Limits)
	}

	for _, tc := range []struct {
		env  string
		want []string
	}{
		{"LEMPGW_LIMITS__MESSAGE_RATE=-1", []string{"limits.message_rate", `"-1"`}},
		{"LEMPGW_LIMITS__MESSAGE_RATE=fast", []string{"limits.message_rate", "want an integer"}},
		{"LEMPGW_LIMITS__MAX_GROUP_MEMBERS=0", []string{"limits.max_group_members", "between 1 and"}},
		{"LEMPGW_LIMITS__MAX_PICTURE_BYTES=0", []string{"limits.max_picture_bytes"}},
		{"LEMPGW_LIMITS__LOGIN_BACKOFF=0s", []string{"limits.login_backoff", "positive"}},
		{"LEMPGW_LIMITS__LOGIN_BACKOFF_MAX=100ms", []string{"limits.login_backoff_max", "at least"}},
		{"LEMPGW_LIMITS__PROXY_HEADER=X Forwarded", []string{"limits.proxy_header"}},
		{"LEMPGW_LIMITS__TRUSTED_PROXIES=10.0.0.0/8,nonsense", []string{"limits.trusted_proxies"}},
		{"LEMPGW_LIMITS__MAX_QUEUES=5", []string{`unknown key "limits.max_queues"`}},
	} {
		_, err := LoadConfig("", []string{tc.env}, nil)
		wantErr(t, err, tc.want...)
	}
}

// TestServeLimits runs serve with tight limits and checks each one that
// serve wires is enforced and counted in /metrics.
func TestServeLimits(t *testing.T) {
	t.Parallel()
	lempAddr, opsAddr := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	var errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runEnv(ctx, []string{"serve", "--lemp.listen", lempAddr, "--http.listen", opsAddr},
			[]string{"LEMPGW_AUTH__ADMIN_IDENTITY=root", "LEMPGW_AUTH__ADMIN_TOKEN=r00t",
				"LEMPGW_AUTH__ARGON2_MEMORY_KIB=64", "LEMPGW_AUTH__ARGON2_TIME=1",
				"LEMPGW_LIMITS__CONNECTIONS_PER_ADDRESS=1", "LEMPGW_LIMITS__MESSAGE_RATE=1",
				"LEMPGW_LIMITS__MESSAGE_BURST=1", "LEMPGW_LIMITS__MAX_PICTURE_BYTES=10",
				"LEMPGW_LIMITS__LOGIN_FAILURES=1", "LEMPGW_LIMITS__LOGIN_BACKOFF=1h",
				"LEMPGW_LIMITS__LOGIN_BACKOFF_MAX=2h"}, io.Discard, &errb)
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
	url := "ws://" + lempAddr + "/lemp"

	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if c, resp, err := websocket.DefaultDialer.Dial(url, nil); err == nil {
		c.Close()
		t.Fatal("a second connection from the same address was accepted")
	} else if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("second connection: %v, %v; want HTTP 429", err, resp)
	}
	send := func(frames ...string) {
		t.Helper()
		for _, f := range frames {
			if err := ws.WriteMessage(websocket.TextMessage, []byte(f)); err != nil {
				t.Fatal(err)
			}
		}
	}
	expect := func(want string) {
		t.Helper()
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), want) {
			t.Fatalf("got %s, want %s", b, want)
		}
	}
	send(`{"rq":{"id":"1","a":{"i":"ghost","t":"wrong"}}}`)
	expect(`"c":401`)
	send(`{"rq":{"id":"2","a":{"i":"ghost","t":"wrong"}}}`)
	expect(`"c":429`) // ghost backs off
	send(`{"rq":{"id":"3","a":{"i":"root","t":"r00t"}}}`)
	expect(`"response":1`) // root does not
	send(`{"rq":{"id":"4","p":{"t":"s","v":"http://x/too-long.png"}}}`)
	expect(`"c":413`)
	// Two messages back to back: the burst is one.
	send(`{"m":{"id":"m1","r":"root","c":"x"}}`, `{"m":{"id":"m2","r":"root","c":"x"}}`)
	// In any order: the receipt, the refusal, and m1 itself (to myself).
	var frames []string
	for range 3 {
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, string(b))
	}
	all := strings.Join(frames, "\n")
	for _, want := range []string{`"sr":{"id":"m1"}`, `{"m":{"id":"m2","e":{"c":429`, `"id":"m1","s":"root"`} {
		if !strings.Contains(all, want) {
			t.Errorf("no %s in\n%s", want, all)
		}
	}

	_, page := httpGet(t, "http://"+opsAddr+"/metrics")
	for series, want := range map[string]float64{
		`lempgw_limited_total{limit="connections"}`: 1,
		`lempgw_limited_total{limit="logins"}`:      1,
		`lempgw_limited_total{limit="picture"}`:     1,
		`lempgw_limited_total{limit="messages"}`:    1,
		`lempgw_limited_total{limit="requests"}`:    0,
		`lempgw_limited_total{limit="queue"}`:       0,
		`lempgw_limited_total{limit="group_size"}`:  0,
		`lempgw_login_checks_total`:                 2,
	} {
		if got := metric(page, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
}

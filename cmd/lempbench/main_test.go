package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lempgw/lempgw/internal/lemptest"
	"github.com/lempgw/lempgw/state"
)

func startGateway(t *testing.T) *lemptest.Gateway {
	t.Helper()
	g := lemptest.Start(t, state.NewMemory(), lemptest.Options{})
	g.User(t, "admin", true)
	return g
}

func TestScenarios(t *testing.T) {
	g := startGateway(t)
	pid := os.Getpid() // the in-process gateway is this process
	cases := []struct {
		name string
		cfg  config
		want func(t *testing.T, r *Result)
	}{
		{"lemp-lemp", config{Scenario: "lemp-lemp", N: 300, Pairs: 2, Window: 16, Duration: 20 * time.Second}, func(t *testing.T, r *Result) {
			if r.Sent != 600 || r.Delivered != 600 || r.Acked != 600 || r.ServerAcks != 600 {
				t.Errorf("sent %d delivered %d acked %d sr %d, want 600 each", r.Sent, r.Delivered, r.Acked, r.ServerAcks)
			}
			if r.Rate <= 0 || r.P50ms <= 0 || r.P99ms < r.P50ms || r.P999ms < r.P99ms {
				t.Errorf("rate %v p50 %v p99 %v p999 %v", r.Rate, r.P50ms, r.P99ms, r.P999ms)
			}
		}},
		{"lemp-lemp-timed", config{Scenario: "lemp-lemp", Pairs: 1, Window: 4, Duration: 300 * time.Millisecond}, func(t *testing.T, r *Result) {
			if r.Sent == 0 || r.Acked != r.Sent {
				t.Errorf("sent %d acked %d", r.Sent, r.Acked)
			}
		}},
		{"lemp-lemp-paced", config{Scenario: "lemp-lemp", Pairs: 2, Window: 64, Rate: 200, Duration: time.Second}, func(t *testing.T, r *Result) {
			// 200 msgs/s in all for 1 s: about 200 sent, far fewer than the
			// window would let through unpaced.
			if r.Sent < 150 || r.Sent > 210 || r.TargetRate != 200 {
				t.Errorf("paced at %v: sent %d in 1 s, want about 200", r.TargetRate, r.Sent)
			}
		}},
		{"idle", config{Scenario: "idle", N: 20, Duration: 200 * time.Millisecond}, func(t *testing.T, r *Result) {
			if r.SessionsOK != 20 {
				t.Errorf("sessions ok %d, want 20", r.SessionsOK)
			}
			if r.RSSAfterKiB <= 0 || r.RSSBeforeKiB <= 0 {
				t.Errorf("rss %d -> %d", r.RSSBeforeKiB, r.RSSAfterKiB)
			}
		}},
		{"group-fanout", config{Scenario: "group-fanout", N: 20, Members: 15, Window: 4, Duration: 20 * time.Second}, func(t *testing.T, r *Result) {
			if r.Sent != 20 || r.Delivered != 20*15 {
				t.Errorf("sent %d delivered %d, want 20 and 300", r.Sent, r.Delivered)
			}
			if r.P50ms <= 0 || r.P99ms < r.P50ms {
				t.Errorf("p50 %v p99 %v", r.P50ms, r.P99ms)
			}
		}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.cfg
			cfg.URL, cfg.Admin, cfg.AdminToken = g.URL, "admin", "admin-token"
			cfg.Drain, cfg.Parallel, cfg.PID = 10*time.Second, 8, pid
			cfg.Prefix = "t" + string(rune('a'+i))
			r, err := runScenario(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if r.Errors != 0 {
				t.Errorf("errors: %v", r.ErrorList)
			}
			if c.name != "idle" && (!r.Verified || r.Lost != 0 || r.Duplicates != 0) {
				t.Errorf("not verified: lost %d dups %d", r.Lost, r.Duplicates)
			}
			c.want(t, r)
			var buf bytes.Buffer
			printTable(&buf, r)
			if !strings.Contains(buf.String(), c.cfg.Scenario) {
				t.Errorf("table:\n%s", buf.String())
			}
		})
	}
	// Running the same prefix again reuses the users (409 is fine).
	cfg := config{URL: g.URL, Admin: "admin", AdminToken: "admin-token", Scenario: "lemp-lemp", N: 10, Pairs: 1, Window: 2,
		Duration: 10 * time.Second, Drain: 5 * time.Second, Parallel: 4, Prefix: "ta"}
	if r, err := runScenario(cfg); err != nil || !r.Verified {
		t.Fatalf("rerun with existing users: %v %+v", err, r)
	}
}

func TestCLI(t *testing.T) {
	g := startGateway(t)
	var out, errb bytes.Buffer
	code := run([]string{"-url", g.URL, "-admin-token", "admin-token", "-scenario", "lemp-lemp", "-pairs", "1", "-n", "50", "-window", "8", "-json"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, errb.String(), out.String())
	}
	s := out.String()
	if !strings.Contains(s, "yes: every message id arrived once") {
		t.Errorf("table does not say exactly once:\n%s", s)
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(s[strings.Index(s, "{"):]), &r); err != nil {
		t.Fatalf("json: %v\n%s", err, s)
	}
	if r["verified_exactly_once"] != true || r["sent"].(float64) != 50 {
		t.Errorf("json %v", r)
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		{"-url", "ws://10.0.0.1:8025/lemp", "-admin-token", "x"},
		{"-url", "ws://example.org/lemp", "-admin-token", "x"},
		{"-admin-token", "x", "-window", "0"},
		{"-url", "ws://127.0.0.1:1/lemp"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("%q: exit %d, want 2 (%s)", args, code, errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"-url", "ws://127.0.0.1:1/lemp", "-admin-token", "x", "-scenario", "nope"}, &out, &errb); code != 1 {
		t.Errorf("unknown scenario: exit %d", code)
	}
}

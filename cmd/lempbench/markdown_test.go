package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sampleResults() []Result {
	return []Result{
		{Scenario: "xmpp-xmpp", XMPPKind: "prosody", Rate: 3000, Acked: 30000, Elapsed: 10, Pairs: 2, Window: 64, P50ms: 20, P99ms: 50, P999ms: 60, Verified: true, ServerCPUSecs: 9.9},
		{Scenario: "lemp-xmpp", Backend: "redis", XMPPKind: "prosody", Rate: 1500, Acked: 15000, Verified: true, GatewayCPUSecs: 1.5, ServerCPUSecs: 5},
		{Scenario: "xmpp-lemp", Backend: "redis", XMPPKind: "prosody", Rate: 2850, Acked: 28500, Verified: false, Lost: 3, Errors: 1, ErrorList: []string{"a | b"}},
		{Scenario: "xmpp-xmpp", XMPPKind: "ejabberd", Failed: "ejabberd: no"},
		{Scenario: "lemp-lemp", Backend: "redis", Rate: 6000, Acked: 60000, Verified: true, GatewayCPUSecs: 6},
		{Scenario: "lemp-lemp", Backend: "redis", Rate: 5900, TargetRate: 6000, P99ms: 4.2, Verified: true},
		{Scenario: "idle", Backend: "memory", Sessions: 100, SessionsOK: 100, RSSPerSessKiB: 20, RSSBeforeKiB: 1000, RSSAfterKiB: 3000},
		{Scenario: "group-fanout", Backend: "redis", Members: 1000, Sent: 50, Delivered: 50000, Rate: 9000, P99ms: 80, Verified: true},
	}
}

func TestRenderReport(t *testing.T) {
	s := renderReport(sampleResults(), "2 CPUs", "scripts/bench.sh 5", time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
	for _, want := range []string{
		"### Results (2026-11-23 10:00 UTC",
		"Machine: 2 CPUs.",
		"Command: `scripts/bench.sh 5`",
		"| - | prosody | `xmpp-xmpp` | **3000 msgs/s**, 30000 msgs in 10.0 s, 2 pairs, window 64 | 20.00 / 50.00 / 60.00 ms | yes |",
		"| redis | prosody | `lemp-xmpp` |",
		"1.50 s (100 µs/msg)",           // gateway CPU per message
		"**NO** (lost 3, duplicates 0)", // not verified
		"| 1: a / b |",                  // a | in an error is escaped
		"failed: ejabberd: no",          // a failed run is a row
		"| prosody | 3000 msgs/s | 1500 msgs/s = **0.50x** | 2850 msgs/s = **0.95x** | 6000 msgs/s = **2.00x** | - |",
		"| `lemp-lemp` on Redis ≥ 4x Prosody's `xmpp-xmpp` | 6000 / 3000 msgs/s = 2.00x | **missed** (2.0x short) |",
		"| ... with p99 < 5 ms at half that rate | p99 4.20 ms paced at 6000 msgs/s (achieved 5900) | met |",
		"| `lemp-xmpp` ≥ 0.9x prosody's `xmpp-xmpp` | 1500 / 3000 msgs/s = 0.50x | **missed** (1.8x short) |",
		"| `xmpp-lemp` ≥ 0.9x prosody's `xmpp-xmpp` | 2850 / 3000 msgs/s = 0.95x | met |",
		"| `idle`: ≤ 16 KiB RSS per session (at 20,000) | memory: 20.0 KiB at 100 sessions | **missed** (1.2x over) |",
		"| `group-fanout` to 1000: p99 ≤ 100 ms | redis: p99 80.00 ms | met |",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %q in\n%s", want, s)
		}
	}
	// ejabberd's baseline failed: no ratio, and the targets say so.
	if strings.Contains(s, "\n| ejabberd |") || !strings.Contains(s, "| `lemp-xmpp` ≥ 0.9x ejabberd's `xmpp-xmpp` | not measured: no `xmpp-xmpp` baseline | |") {
		t.Errorf("ejabberd's failed baseline:\n%s", s)
	}
}

func TestSplice(t *testing.T) {
	doc := "# B\n\nintro\n<!-- lempbench:begin x -->\nold\nold2\n<!-- lempbench:end -->\ntail\n"
	got, err := splice(doc, "new")
	if err != nil {
		t.Fatal(err)
	}
	if want := "# B\n\nintro\n<!-- lempbench:begin x -->\nnew\n<!-- lempbench:end -->\ntail\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// Re-running replaces, it does not accumulate.
	if again, _ := splice(got, "new"); again != got {
		t.Errorf("second splice: %q", again)
	}
	for _, bad := range []string{
		"no markers",
		"<!-- lempbench:end -->\n<!-- lempbench:begin -->\n",
		"<!-- lempbench:begin -->\n<!-- lempbench:begin -->\n<!-- lempbench:end -->\n",
		"<!-- lempbench:begin -->\n",
	} {
		if _, err := splice(bad, "x"); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestReportCommand(t *testing.T) {
	dir := t.TempDir()
	res := filepath.Join(dir, "r.jsonl")
	for _, r := range sampleResults() {
		if err := appendResult(res, &r); err != nil {
			t.Fatal(err)
		}
	}
	doc := filepath.Join(dir, "b.md")
	if err := os.WriteFile(doc, []byte("x\n<!-- lempbench:begin -->\n<!-- lempbench:end -->\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"report", "-results", res, "-doc", doc, "-command", "c", "-machine", "m"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	b, _ := os.ReadFile(doc)
	if !strings.Contains(string(b), "**0.50x**") || !strings.HasSuffix(string(b), "<!-- lempbench:end -->\n") {
		t.Errorf("doc:\n%s", b)
	}
	for _, args := range [][]string{{"report"}, {"report", "-results", filepath.Join(dir, "none")}, {"report", "-results", doc}} {
		out.Reset()
		errb.Reset()
		if code := run(args, &out, &errb); code == 0 {
			t.Errorf("%q: exit 0", args)
		}
	}
}

// FuzzSplice: any document either has its section replaced, keeping what
// is outside the markers, or gets an error; never a panic.
func FuzzSplice(f *testing.F) {
	f.Add("a\n<!-- lempbench:begin -->\nold\n<!-- lempbench:end -->\nb\n", "new")
	f.Add("<!-- lempbench:begin --><!-- lempbench:end -->", "")
	f.Add("no markers", "x")
	f.Fuzz(func(t *testing.T, doc, section string) {
		out, err := splice(doc, section)
		if err != nil {
			return
		}
		head := doc[:strings.Index(doc, markBegin)]
		tail := doc[strings.Index(doc, markEnd):]
		if !strings.HasPrefix(out, head) || !strings.HasSuffix(out, tail) || !strings.Contains(out, section) {
			t.Fatalf("splice(%q, %q) = %q", doc, section, out)
		}
	})
}

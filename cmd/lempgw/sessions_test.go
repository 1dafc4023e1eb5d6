package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lempgw/lempgw/internal/testenv"
	"github.com/lempgw/lempgw/state"
)

// sessionsJSON runs "lempgw sessions --json" and decodes its output.
func sessionsJSON(t *testing.T, file string, args ...string) sessionsOut {
	t.Helper()
	code, out, errs := runCLI(t, nil, append([]string{"sessions", "--json", "--config", file}, args...)...)
	if code != 0 {
		t.Fatalf("sessions --json: exit %d, stderr %q", code, errs)
	}
	var o sessionsOut
	if err := json.Unmarshal([]byte(out), &o); err != nil {
		t.Fatalf("sessions --json printed %q: %v", out, err)
	}
	return o
}

// where maps "user@node" to the session's remote address.
func where(o sessionsOut) map[string]string {
	m := map[string]string{}
	for _, s := range o.Sessions {
		m[s.User+"@"+s.Node] = s.Remote
	}
	return m
}

// TestSessionsCommand checks the output and the errors of "lempgw
// sessions" on registry entries written straight to a real Redis.
func TestSessionsCommand(t *testing.T) {
	t.Parallel()
	file, url, prefix := redisConfig(t)
	st := openTestRedis(t, url, prefix)
	ctx := context.Background()

	code, out, errs := runCLI(t, nil, "sessions", "--config", file)
	if code != 0 || out != "0 sessions on 0 nodes\n" {
		t.Fatalf("sessions on an empty store: exit %d, stdout %q, stderr %q", code, out, errs)
	}

	t0 := time.Date(2026, 11, 22, 21, 40, 0, 0, time.UTC).UnixMilli()
	a := state.Node{ID: "gw-a", Run: "ra", Version: "v1.0.0", Listen: "ws://10.0.0.1:8025/lemp", Started: t0, LastBeat: t0 + 5000}
	b := state.Node{ID: "gw-b", Run: "rb", Listen: "ws://10.0.0.2:8025/lemp", Started: t0, LastBeat: t0 + 6000}
	for _, n := range []state.Node{a, b} {
		if err := st.StartNode(ctx, n, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []state.Session{
		{ID: "1", User: "bob", Node: "gw-b", Run: "rb", Remote: "192.0.2.2:4000", Started: t0 + 2000},
		{ID: "2", User: "alice", Node: "gw-a", Run: "ra", Remote: "192.0.2.1:5000", Started: t0 + 1000},
	} {
		if err := st.RegisterSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}

	code, out, errs = runCLI(t, nil, "sessions", "--config", file)
	want := "alice\tgw-a\t2026-11-22T21:40:01Z\t192.0.2.1:5000\n" +
		"bob\tgw-b\t2026-11-22T21:40:02Z\t192.0.2.2:4000\n" +
		"2 sessions on 2 nodes\n" +
		"node\tgw-a\tv1.0.0\tstarted 2026-11-22T21:40:00Z\tbeat 2026-11-22T21:40:05Z\tws://10.0.0.1:8025/lemp\n" +
		"node\tgw-b\t-\tstarted 2026-11-22T21:40:00Z\tbeat 2026-11-22T21:40:06Z\tws://10.0.0.2:8025/lemp\n"
	if code != 0 || out != want {
		t.Fatalf("sessions: exit %d, stderr %q, stdout:\n%s\nwant:\n%s", code, errs, out, want)
	}
	code, out, _ = runCLI(t, []string{"LEMPGW_CONFIG=" + file}, "sessions", "BOB")
	if code != 0 || !strings.HasPrefix(out, "bob\tgw-b\t2026-11-22T21:40:02Z\t192.0.2.2:4000\n1 session of bob\nnode\tgw-a") {
		t.Fatalf("sessions BOB: exit %d:\n%s", code, out)
	}
	code, out, _ = runCLI(t, nil, "sessions", "carol", "--config", file)
	if code != 0 || !strings.HasPrefix(out, "0 sessions of carol\n") {
		t.Fatalf("sessions carol: exit %d:\n%s", code, out)
	}
	o := sessionsJSON(t, file)
	if len(o.Nodes) != 2 || o.Nodes[0] != a || len(o.Sessions) != 2 || o.Sessions[0].User != "alice" || o.Sessions[0].Started != t0+1000 {
		t.Fatalf("sessions --json = %+v", o)
	}
	if o = sessionsJSON(t, file, "alice"); len(o.Sessions) != 1 || o.Sessions[0].Remote != "192.0.2.1:5000" {
		t.Fatalf("sessions --json alice = %+v", o)
	}

	code, out, _ = runCLI(t, nil, "sessions", "--help")
	if code != 0 || !strings.Contains(out, "lempgw sessions [USER] [--json] [--config FILE]") || !strings.Contains(out, "--json") {
		t.Errorf("sessions --help: exit %d:\n%s", code, out)
	}
	if code, out, _ = runCLI(t, nil, "help"); code != 0 || !strings.Contains(out, "sessions [USER] [--json]") {
		t.Errorf("help does not list sessions:\n%s", out)
	}
	for _, c := range []struct {
		args  []string
		code  int
		parts []string
	}{
		{[]string{"sessions", "a/b", "--config", file}, 2, []string{"invalid user name", `"a/b"`}},
		{[]string{"sessions", "alice", "bob", "--config", file}, 2, []string{`unexpected argument "bob"`}},
		{[]string{"sessions", "--bogus", "--config", file}, 2, []string{"--bogus"}},
		{[]string{"sessions"}, 2, []string{"persistent store"}},
		{[]string{"sessions", "--state.backend", "redis", "--state.redis_url", "redis://:hunter2@" + deadAddr(t) + "/0"}, 1, []string{"unreachable"}},
	} {
		code, _, errs := runCLI(t, nil, c.args...)
		if code != c.code {
			t.Errorf("%q: exit %d, want %d (stderr %q)", c.args, code, c.code, errs)
		}
		wantOneLine(t, errs, c.parts...)
		if strings.Contains(errs, "hunter2") {
			t.Errorf("%q: stderr shows the password: %q", c.args, errs)
		}
	}
}

// TestSessionsTwoNodes runs two real "lempgw serve" processes with
// different node ids on one real redis-server, logs users in to each over
// websocket, and checks "lempgw sessions" shows them all; then SIGKILLs one
// node and checks its sessions leave the listing node.ttl after its last
// heartbeat, while the other node's heartbeat keeps its own.
func TestSessionsTwoNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "lempgw")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	const heartbeat, ttl = 200 * time.Millisecond, 1500 * time.Millisecond
	url, prefix := testenv.RedisURL(t), testenv.UniquePrefix(t)
	file := writeFile(t, fmt.Sprintf(`
[state]
backend = "redis"
redis_url = %q
key_prefix = %q

[auth]
argon2_memory_kib = 64
argon2_time = 1

[node]
heartbeat = %q
ttl = %q
`, url, prefix, formatDuration(heartbeat), formatDuration(ttl)))
	for _, u := range []string{"alice", "bob", "carol"} {
		if code, _, errs := runCLI(t, nil, "user", "add", u, "--token", u+"-token", "--config", file); code != 0 {
			t.Fatalf("user add %s: exit %d: %s", u, code, errs)
		}
	}

	type node struct {
		cmd *exec.Cmd
		url string
	}
	start := func(id string) node {
		t.Helper()
		lempAddr, opsAddr := freeAddr(t), freeAddr(t)
		cmd := exec.Command(bin, "serve", "--config", file, "--lemp.listen", lempAddr, "--http.listen", opsAddr)
		cmd.Env = append(cleanEnv(), "LEMPGW_NODE__ID="+id)
		cmd.Stderr = io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
		waitHealthy(t, opsAddr)
		return node{cmd: cmd, url: "ws://" + lempAddr + "/lemp"}
	}
	a, b := start("gw-a"), start("gw-b")
	alice := dialLogin(t, a.url, "alice")
	bob := dialLogin(t, b.url, "bob")
	carol := dialLogin(t, b.url, "carol")

	// A login is recorded before its response: no waiting needed.
	o := sessionsJSON(t, file)
	want := map[string]string{
		"alice@gw-a": alice.LocalAddr().String(),
		"bob@gw-b":   bob.LocalAddr().String(),
		"carol@gw-b": carol.LocalAddr().String(),
	}
	if got := where(o); !maps.Equal(got, want) {
		t.Fatalf("sessions: %v, want %v", got, want)
	}
	if len(o.Nodes) != 2 || o.Nodes[0].ID != "gw-a" || o.Nodes[0].Listen != a.url || o.Nodes[1].ID != "gw-b" || o.Nodes[1].Listen != b.url {
		t.Fatalf("nodes: %+v", o.Nodes)
	}
	code, out, _ := runCLI(t, nil, "sessions", "--config", file)
	line := regexp.MustCompile(`(?m)^carol\tgw-b\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\t` + regexp.QuoteMeta(carol.LocalAddr().String()) + `$`)
	if code != 0 || !line.MatchString(out) || !strings.Contains(out, "\n3 sessions on 2 nodes\n") {
		t.Fatalf("sessions: exit %d:\n%s", code, out)
	}

	// SIGKILL gw-b: no goodbye, its record expires ttl after its last beat.
	if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	_, _ = b.cmd.Process.Wait()
	var gone time.Duration
	for {
		o := sessionsJSON(t, file)
		since := time.Since(killed)
		got := where(o)
		if _, ok := got["bob@gw-b"]; !ok {
			if _, ok := got["carol@gw-b"]; ok {
				t.Fatalf("bob's session left before carol's, of the same node: %v", got)
			}
			gone = since
			break
		}
		if since > ttl+10*time.Second {
			t.Fatalf("gw-b's sessions still listed %v after its SIGKILL (node.ttl %v)", since, ttl)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("node.heartbeat %v, node.ttl %v: gw-b's sessions left the listing %v after its SIGKILL", heartbeat, ttl, gone.Round(time.Millisecond))
	// The last beat was at most one period before the kill (a beat that
	// was late makes it earlier; 2 periods of slack for a loaded machine).
	if gone < ttl-3*heartbeat {
		t.Errorf("gw-b's sessions left the listing %v after its SIGKILL, before node.ttl %v minus a few heartbeats", gone, ttl)
	}
	// gw-a's heartbeat keeps alice, well past one TTL.
	time.Sleep(time.Until(killed.Add(2 * ttl)))
	o = sessionsJSON(t, file)
	if got := where(o); !maps.Equal(got, map[string]string{"alice@gw-a": alice.LocalAddr().String()}) || len(o.Nodes) != 1 || o.Nodes[0].ID != "gw-a" {
		t.Fatalf("after gw-b died: sessions %v, nodes %+v", got, o.Nodes)
	}
	// The listing deleted what gw-b left.
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opt)
	defer rc.Close()
	if ks := rc.Keys(context.Background(), prefix+"*{gw-b}*").Val(); len(ks) != 0 {
		t.Errorf("gw-b's keys left after the listing: %q", ks)
	}
	if ks := rc.Keys(context.Background(), prefix+"us:{bob}").Val(); len(ks) != 0 {
		t.Errorf("bob's registry entry left after the listing: %q", ks)
	}

	// A disconnect on gw-a removes alice; SIGTERM removes gw-a at once.
	_ = alice.Close()
	deadline := time.Now().Add(10 * time.Second)
	for len(sessionsJSON(t, file).Sessions) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("alice's session still listed 10s after she disconnected")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Wait(); err != nil {
		t.Fatalf("gw-a after SIGTERM: %v", err)
	}
	if code, out, _ := runCLI(t, nil, "sessions", "--config", file); code != 0 || out != "0 sessions on 0 nodes\n" {
		t.Fatalf("sessions after gw-a stopped: exit %d: %q", code, out)
	}
}

// TestNodeConfig checks the node.* keys: defaults, overrides, and bad values
// named in a one-line error.
func TestNodeConfig(t *testing.T) {
	cfg, err := LoadConfig("", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Node != (NodeConfig{Heartbeat: 10 * time.Second, TTL: 30 * time.Second}) {
		t.Errorf("node defaults = %+v", cfg.Node)
	}
	cfg, err = LoadConfig(writeFile(t, "[node]\nid = \"gw-1.eu_west\"\nheartbeat = \"2s\"\n"), []string{"LEMPGW_NODE__TTL=5s"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Node != (NodeConfig{ID: "gw-1.eu_west", Heartbeat: 2 * time.Second, TTL: 5 * time.Second}) {
		t.Errorf("node = %+v", cfg.Node)
	}
	for _, c := range []struct {
		env   string
		parts []string
	}{
		{"LEMPGW_NODE__ID=gw/1", []string{"node.id", `"gw/1"`}},
		{"LEMPGW_NODE__ID=" + strings.Repeat("x", 65), []string{"node.id"}},
		{"LEMPGW_NODE__HEARTBEAT=10ms", []string{"node.heartbeat", `"10ms"`}},
		{"LEMPGW_NODE__HEARTBEAT=2h", []string{"node.heartbeat"}},
		{"LEMPGW_NODE__TTL=15s", []string{"node.ttl", `"15s"`, "twice node.heartbeat"}},
		{"LEMPGW_NODE__TTL=soon", []string{"node.ttl", "duration"}},
	} {
		_, err := LoadConfig("", []string{c.env}, nil)
		wantErr(t, err, c.parts...)
	}
	if id := defaultNodeID(); !validNodeID(id) || id == defaultNodeID() {
		t.Errorf("defaultNodeID() = %q: not a valid id, or not random", id)
	}
}

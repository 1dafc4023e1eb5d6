package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lempgw/lempgw/bridge"
	"github.com/lempgw/lempgw/internal/testenv"
	"github.com/lempgw/lempgw/state"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// runCLI runs the program in-process with a clean environment plus environ.
func runCLI(t *testing.T, environ []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code = runEnv(ctx, args, environ, &out, &errb)
	return code, out.String(), errb.String()
}

// wantOneLine checks stderr is exactly one "lempgw: ..." line containing
// every part, without a panic or stack trace.
func wantOneLine(t *testing.T, stderr string, parts ...string) {
	t.Helper()
	if !strings.HasPrefix(stderr, "lempgw: ") || strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") {
		t.Errorf("stderr is not one \"lempgw: \" line: %q", stderr)
	}
	for _, bad := range []string{"goroutine", "panic", ".go:"} {
		if strings.Contains(stderr, bad) {
			t.Errorf("stderr shows %q: %q", bad, stderr)
		}
	}
	for _, p := range parts {
		if !strings.Contains(stderr, p) {
			t.Errorf("stderr %q does not contain %q", stderr, p)
		}
	}
}

// redisConfig writes a config file for the shared test Redis under a
// prefix of its own, with cheap token hashing.
func redisConfig(t *testing.T) (file, url, prefix string) {
	t.Helper()
	url, prefix = testenv.RedisURL(t), testenv.UniquePrefix(t)
	file = writeFile(t, fmt.Sprintf(`
[state]
backend = "redis"
redis_url = %q
key_prefix = %q

[auth]
argon2_memory_kib = 64
argon2_time = 1
`, url, prefix))
	return file, url, prefix
}

func openTestRedis(t *testing.T, url, prefix string) state.Store {
	t.Helper()
	st, err := state.NewRedis(context.Background(), state.RedisConfig{URL: url, KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestUserCommands(t *testing.T) {
	t.Parallel()
	file, url, prefix := redisConfig(t)
	st := openTestRedis(t, url, prefix)
	ctx := context.Background()

	code, out, errs := runCLI(t, nil, "user", "add", "Alice", "--token", "t1", "--config", file)
	if code != 0 {
		t.Fatalf("user add: exit %d, stderr %q", code, errs)
	}
	if !strings.Contains(out, "alice") {
		t.Errorf("user add printed %q", out)
	}
	// The config file from the environment; flags may come first.
	code, _, errs = runCLI(t, []string{"LEMPGW_CONFIG=" + file}, "user", "add", "--admin", "--token=t2", "bob")
	if code != 0 {
		t.Fatalf("user add --admin: exit %d, stderr %q", code, errs)
	}

	alice, err := st.GetUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if alice.Admin || !bridge.VerifyToken(alice.TokenHash, "t1") || strings.Contains(alice.TokenHash, "t1$") {
		t.Errorf("alice = %+v", alice)
	}
	if d := time.Since(time.UnixMilli(alice.Created)); d < 0 || d > time.Minute {
		t.Errorf("alice created %v ago", d)
	}
	bob, err := st.GetUser(ctx, "bob")
	if err != nil || !bob.Admin || !bridge.VerifyToken(bob.TokenHash, "t2") {
		t.Errorf("bob = %+v, %v", bob, err)
	}

	// Existing user, in any case.
	code, _, errs = runCLI(t, nil, "user", "add", "ALICE", "--token", "x", "--config", file)
	if code != 1 {
		t.Errorf("user add existing: exit %d, want 1", code)
	}
	wantOneLine(t, errs, "user alice exists")

	code, out, errs = runCLI(t, nil, "user", "list", "--config", file)
	if code != 0 {
		t.Fatalf("user list: exit %d, stderr %q", code, errs)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	line := regexp.MustCompile(`^([^\t]+)\t(admin|user)\t(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)$`)
	if len(lines) != 2 {
		t.Fatalf("user list printed %q", out)
	}
	for i, want := range [][2]string{{"alice", "user"}, {"bob", "admin"}} {
		m := line.FindStringSubmatch(lines[i])
		if m == nil || m[1] != want[0] || m[2] != want[1] {
			t.Errorf("user list line %d = %q, want %s\\t%s\\t<RFC3339>", i, lines[i], want[0], want[1])
			continue
		}
		if tm, err := time.Parse(time.RFC3339, m[3]); err != nil || time.Since(tm) > time.Minute {
			t.Errorf("user list time %q: %v", m[3], err)
		}
	}

	// passwd.
	code, _, errs = runCLI(t, nil, "user", "passwd", "alice", "--token", "t3", "--config", file)
	if code != 0 {
		t.Fatalf("user passwd: exit %d, stderr %q", code, errs)
	}
	alice2, err := st.GetUser(ctx, "alice")
	if err != nil || !bridge.VerifyToken(alice2.TokenHash, "t3") || bridge.VerifyToken(alice2.TokenHash, "t1") || alice2.Created != alice.Created {
		t.Errorf("after passwd alice = %+v, %v", alice2, err)
	}
	code, _, errs = runCLI(t, nil, "user", "passwd", "carol", "--token", "t3", "--config", file)
	if code != 1 {
		t.Errorf("user passwd unknown: exit %d, want 1", code)
	}
	wantOneLine(t, errs, "carol")

	// del.
	code, _, errs = runCLI(t, nil, "user", "del", "Alice", "--config", file)
	if code != 0 {
		t.Fatalf("user del: exit %d, stderr %q", code, errs)
	}
	if _, err := st.GetUser(ctx, "alice"); err == nil {
		t.Error("alice still exists after user del")
	}
	code, _, errs = runCLI(t, nil, "user", "del", "alice", "--config", file)
	if code != 1 {
		t.Errorf("user del unknown: exit %d, want 1", code)
	}
	wantOneLine(t, errs, "alice")

	code, out, _ = runCLI(t, nil, "user", "list", "--config", file)
	if code != 0 || !strings.HasPrefix(out, "bob\tadmin\t") || strings.Count(out, "\n") != 1 {
		t.Errorf("user list after del: exit %d, %q", code, out)
	}
}

func TestUserCommandErrors(t *testing.T) {
	t.Parallel()
	file, _, _ := redisConfig(t)
	memFile := writeFile(t, "[state]\nbackend = \"memory\"\n")
	for _, tc := range []struct {
		name    string
		environ []string
		args    []string
		code    int
		want    []string
	}{
		{"name with @", nil, []string{"user", "add", "a@b", "--token", "t", "--config", file}, 2, []string{`"a@b"`, "'@'"}},
		{"name with /", nil, []string{"user", "del", "a/b", "--config", file}, 2, []string{`"a/b"`}},
		{"name with space", nil, []string{"user", "passwd", "a b", "--token", "t", "--config", file}, 2, []string{`"a b"`}},
		{"long name", nil, []string{"user", "add", strings.Repeat("x", 65), "--token", "t", "--config", file}, 2, []string{"64"}},
		{"missing token", nil, []string{"user", "add", "alice", "--config", file}, 2, []string{"--token"}},
		{"empty token", nil, []string{"user", "passwd", "alice", "--token", "", "--config", file}, 2, []string{"--token"}},
		{"missing name", nil, []string{"user", "add", "--token", "t", "--config", file}, 2, []string{"missing NAME"}},
		{"extra argument", nil, []string{"user", "list", "x", "--config", file}, 2, []string{`"x"`}},
		{"unknown flag", nil, []string{"user", "list", "--bogus", "--config", file}, 2, []string{"--bogus"}},
		{"unknown subcommand", nil, []string{"user", "rename", "a"}, 2, []string{`"rename"`}},
		{"no subcommand", nil, []string{"user"}, 2, []string{"subcommand"}},
		{"unknown command", nil, []string{"frobnicate"}, 2, []string{`"frobnicate"`}},
		{"no command", nil, nil, 2, []string{"no command"}},
		{"memory backend", nil, []string{"user", "list"}, 2, []string{`user commands need a persistent store (state.backend = "redis"); the memory store lives inside "lempgw serve"`}},
		{"memory backend file", nil, []string{"user", "add", "alice", "--token", "t", "--config", memFile}, 2, []string{"persistent store"}},
		{"memory backend flag", nil, []string{"user", "del", "alice", "--config", file, "--state.backend", "memory"}, 2, []string{"persistent store"}},
		{"bad config", []string{"LEMPGW_STATE__BACKEND=etcd"}, []string{"user", "list"}, 2, []string{"state.backend", `"etcd"`}},
		{"unreachable redis", nil, []string{"user", "list", "--state.backend=redis", "--state.redis_url", "redis://:hunter2@" + deadAddr(t) + "/0"}, 1, []string{deadAddr(t)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runCLI(t, tc.environ, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.code, errs)
			}
			if out != "" {
				t.Errorf("stdout %q, want none", out)
			}
			wantOneLine(t, errs, tc.want...)
			if strings.Contains(errs, "hunter2") {
				t.Errorf("stderr shows the password: %q", errs)
			}
		})
	}
}

var deadAddrOnce struct {
	addr string
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	if deadAddrOnce.addr == "" {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		deadAddrOnce.addr = l.Addr().String()
		l.Close()
	}
	return deadAddrOnce.addr
}

func TestConfigCheck(t *testing.T) {
	t.Parallel()
	file := writeFile(t, `
[state]
backend = "redis"
redis_url = "redis://gw:p4ssw0rd@127.0.0.1:6379/1"

[auth]
admin_identity = "root"
admin_token = "adm1n-t0ken"

[xmpp]
component_address = "127.0.0.1:5347"
domain = "lemp.example.org"
muc_domain = "muc.example.org"
muc_secret = "mucs3cret"
`)
	environ := []string{"LEMPGW_XMPP__SECRET=s3cret", "LEMPGW_LEMP__LISTEN=127.0.0.1:18025"}
	for _, format := range []string{"toml", "json"} {
		code, out, errs := runCLI(t, environ, "config", "check", "--config", file, "--format", format, "--log.level", "debug")
		if code != 0 || errs != "" {
			t.Fatalf("config check --format %s: exit %d, stderr %q", format, code, errs)
		}
		for _, secret := range []string{"s3cret", "mucs3cret", "adm1n-t0ken", "p4ssw0rd"} {
			if strings.Contains(out, secret) {
				t.Errorf("%s output shows secret %q:\n%s", format, secret, out)
			}
		}
		for _, want := range []string{"***", "redis://gw:***@127.0.0.1:6379/1", "127.0.0.1:18025", "root", "debug", "lemp.example.org", "168h"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s output lacks %q:\n%s", format, want, out)
			}
		}
		if format == "toml" {
			// The output is a valid config file (secrets aside).
			if _, err := LoadConfig(writeFile(t, out), nil, nil); err != nil {
				t.Errorf("config check output does not load: %v\n%s", err, out)
			}
		}
	}
	// Defaults, no file.
	code, out, _ := runCLI(t, nil, "config", "check")
	if code != 0 || !strings.Contains(out, `listen = "127.0.0.1:8025"`) || !strings.Contains(out, `backend = "memory"`) {
		t.Errorf("config check on defaults: exit %d\n%s", code, out)
	}

	// Bad configs: exit 2, one line naming the key.
	for _, tc := range []struct {
		name    string
		file    string
		environ []string
		args    []string
		want    []string
	}{
		{"unknown key", "[lemp]\nlistn = \"x\"\n", nil, nil, []string{`unknown key "lemp.listn"`}},
		{"bad value", "[lemp]\nmax_packet_bytes = 10\n", nil, nil, []string{"lemp.max_packet_bytes", `"10"`}},
		{"env", "", []string{"LEMPGW_XMPP__SECRETS=x"}, nil, []string{`unknown key "xmpp.secrets"`}},
		{"flag", "", nil, []string{"--lemp.path", "nopath"}, []string{"lemp.path", `"nopath"`}},
		{"syntax", "[lemp\n", nil, nil, []string{"lempgw.toml:1"}},
		{"missing file", "", nil, []string{"--config", "/nonexistent/lempgw.toml"}, []string{"/nonexistent/lempgw.toml"}},
		{"format", "", nil, []string{"--format", "yaml"}, []string{`"yaml"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"config", "check"}, tc.args...)
			if tc.file != "" {
				args = append(args, "--config", writeFile(t, tc.file))
			}
			code, out, errs := runCLI(t, tc.environ, args...)
			if code != 2 || out != "" {
				t.Errorf("exit %d, stdout %q; want 2 and none", code, out)
			}
			wantOneLine(t, errs, tc.want...)
		})
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--help"}, {"-h"}, {"help"},
		{"help", "serve"}, {"serve", "--help"},
		{"help", "user"}, {"user", "--help"}, {"user", "help"},
		{"help", "user", "add"}, {"user", "add", "--help"}, {"user", "help", "passwd"},
		{"user", "del", "-h"}, {"user", "list", "--help"},
		{"config", "--help"}, {"config", "check", "--help"}, {"help", "config", "check"},
		{"version", "--help"},
	} {
		code, out, errs := runCLI(t, nil, args...)
		if code != 0 || errs != "" || !strings.Contains(out, "Usage:") || !strings.Contains(out, "lempgw") {
			t.Errorf("%q: exit %d, stderr %q, stdout %q", args, code, errs, out)
		}
	}
	_, out, _ := runCLI(t, nil, "user", "add", "--help")
	for _, want := range []string{"--token", "--admin", "--config"} {
		if !strings.Contains(out, want) {
			t.Errorf("user add --help lacks %s:\n%s", want, out)
		}
	}
	_, out, _ = runCLI(t, nil, "help")
	for _, want := range []string{"serve", "user add", "user del", "user list", "user passwd", "config check", "version"} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q:\n%s", want, out)
		}
	}
	code, out, _ := runCLI(t, nil, "version", "--config", "/whatever.toml")
	if code != 0 || !strings.HasPrefix(out, "lempgw ") {
		t.Errorf("version: exit %d, %q", code, out)
	}
}

func TestServeBadConfig(t *testing.T) {
	t.Parallel()
	code, _, errs := runCLI(t, []string{"LEMPGW_STATE__BACKEND=redis", "LEMPGW_STATE__REDIS_URL="}, "serve")
	if code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	wantOneLine(t, errs, "state.redis_url")

	code, _, errs = runCLI(t, nil, "serve", "extra")
	if code != 2 {
		t.Errorf("serve extra: exit %d, want 2", code)
	}
	wantOneLine(t, errs, `"extra"`)

	// Unreachable Redis at start: a runtime failure naming the address.
	code, _, errs = runCLI(t, nil, "serve", "--state.backend", "redis", "--state.redis_url", "redis://"+deadAddr(t)+"/0")
	if code != 1 {
		t.Errorf("serve unreachable redis: exit %d, want 1", code)
	}
	if !strings.Contains(errs, deadAddr(t)) || strings.Contains(errs, "goroutine") {
		t.Errorf("serve unreachable redis: stderr %q", errs)
	}
}

// serve on the placeholder: starts on defaults, logs that bridging is off,
// creates the admin account, stops when the context ends.
func TestServeAdmin(t *testing.T) {
	t.Parallel()
	file, url, prefix := redisConfig(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runEnv(ctx, []string{"serve", "--config", file, "--lemp.listen", "127.0.0.1:0", "--http.listen", "127.0.0.1:0"},
			[]string{"LEMPGW_AUTH__ADMIN_IDENTITY=Root", "LEMPGW_AUTH__ADMIN_TOKEN=r00t"}, &out, &errb)
	}()
	st := openTestRedis(t, url, prefix)
	deadline := time.Now().Add(30 * time.Second)
	for {
		u, err := st.GetUser(context.Background(), "root")
		if err == nil {
			if !u.Admin || !bridge.VerifyToken(u.TokenHash, "r00t") {
				t.Errorf("admin account = %+v", u)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("admin account not created: %v; stderr %s", err, errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("serve exit %d; stderr %s", code, errb.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
	if n := strings.Count(errb.String(), "xmpp bridging off"); n != 1 {
		t.Errorf("\"xmpp bridging off\" logged %d times:\n%s", n, errb.String())
	}
}

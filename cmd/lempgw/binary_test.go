package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBinary builds the real binary and runs it: version, a bad config, and
// serve on the embedded defaults stopped by SIGTERM.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "lempgw")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// A clean environment: no LEMPGW_ variables from the caller.
	var environ []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LEMPGW_") {
			environ = append(environ, kv)
		}
	}
	runBin := func(extraEnv []string, args ...string) (int, string, string) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(append([]string{}, environ...), extraEnv...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return 0, out.String(), errb.String()
		case errors.As(err, &ee):
			return ee.ExitCode(), out.String(), errb.String()
		}
		t.Fatalf("run %s: %v", args, err)
		return 0, "", ""
	}

	code, out, errs := runBin(nil, "version")
	if code != 0 || !strings.HasPrefix(out, "lempgw ") || errs != "" {
		t.Errorf("version: exit %d, stdout %q, stderr %q", code, out, errs)
	}

	code, _, errs = runBin([]string{"LEMPGW_LEMP__LISTN=127.0.0.1:1"}, "serve")
	if code != 2 {
		t.Errorf("serve with unknown key: exit %d, want 2", code)
	}
	wantOneLine(t, errs, `unknown key "lemp.listn"`)

	bad := writeFile(t, "[state]\nbackend = \"etcd\"\n")
	code, _, errs = runBin(nil, "serve", "--config", bad)
	if code != 2 {
		t.Errorf("serve with bad backend: exit %d, want 2", code)
	}
	wantOneLine(t, errs, "state.backend", `"etcd"`)

	// Unreachable Redis: one line naming the address, no go-redis log lines.
	dead := deadAddr(t)
	for _, args := range [][]string{
		{"user", "list", "--state.backend", "redis", "--state.redis_url", "redis://:hunter2@" + dead + "/0"},
		{"serve", "--state.backend", "redis", "--state.redis_url", "redis://:hunter2@" + dead + "/0", "--lemp.listen", "127.0.0.1:0", "--http.listen", "127.0.0.1:0"},
	} {
		code, _, errs = runBin(nil, args...)
		if code != 1 {
			t.Errorf("%s with unreachable redis: exit %d, want 1", args[0], code)
		}
		if args[0] == "user" {
			wantOneLine(t, errs, dead)
		} else if lines := strings.Split(strings.TrimSpace(errs), "\n"); !strings.HasPrefix(lines[len(lines)-1], "lempgw: ") ||
			!strings.Contains(lines[len(lines)-1], dead) || strings.Contains(errs, "pool.go") || strings.Contains(errs, "hunter2") {
			t.Errorf("serve with unreachable redis: stderr %q", errs)
		}
	}

	// serve on defaults (ports moved off the well-known ones), SIGTERM: exit 0.
	cmd := exec.Command(bin, "serve", "--lemp.listen", "127.0.0.1:0", "--http.listen", "127.0.0.1:0")
	cmd.Env = environ
	var errb syncBuffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(errb.String(), "xmpp bridging off") {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("serve did not log \"xmpp bridging off\"; stderr:\n%s", errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Errorf("serve after SIGTERM: %v; stderr:\n%s", err, errb.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-waited
		t.Fatalf("serve did not stop on SIGTERM; stderr:\n%s", errb.String())
	}
	if strings.Contains(errb.String(), "goroutine") {
		t.Errorf("stderr shows a stack trace:\n%s", errb.String())
	}
}

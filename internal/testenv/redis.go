// Package testenv gives tests the real servers they integrate with, started
// from temporary configurations on loopback ports. Today: redis-server.
//
// A package whose tests use RedisURL or StartRedis should run them from
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
//
// so the shared server is stopped when the tests end. (On Linux a server
// also dies with the test process, TestMain or not.)
//
// When redis-server is missing, tests skip with a clear message, except when
// the CI environment variable is set: then they fail, so CI never skips.
package testenv

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// EnvRedisURL names the environment variable that points the tests at an
// existing Redis (e.g. redis://127.0.0.1:6379/15) instead of a throwaway one.
const EnvRedisURL = "LEMPGW_TEST_REDIS_URL"

// startTimeout bounds how long a server may take to answer PING.
const startTimeout = 15 * time.Second

var shared struct {
	once    sync.Once
	srv     *RedisServer
	dir     string
	missing error // redis-server is not installed
	err     error // it is, but did not start
}

// RedisURL returns the URL of a real Redis for tests: $LEMPGW_TEST_REDIS_URL
// when set, otherwise a throwaway redis-server shared by the whole test
// process (started on first use, without persistence). Tests sharing it
// keep apart with UniquePrefix.
func RedisURL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv(EnvRedisURL); u != "" {
		return u
	}
	shared.once.Do(startShared)
	if shared.missing != nil {
		unavailable(t, shared.missing)
	}
	if shared.err != nil {
		t.Fatalf("testenv: %v", shared.err)
	}
	return shared.srv.URL
}

func startShared() {
	bin, err := redisServerBinary()
	if err != nil {
		shared.missing = err
		return
	}
	dir, err := os.MkdirTemp("", "lempgw-redis-*")
	if err != nil {
		shared.err = err
		return
	}
	shared.dir = dir
	shared.srv, shared.err = startNew(bin, dir, nil)
}

// Main runs the tests and then stops the shared Redis; call it from TestMain
// as os.Exit(testenv.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if shared.srv != nil {
		shared.srv.Stop()
	}
	if shared.dir != "" {
		_ = os.RemoveAll(shared.dir)
	}
	return code
}

// UniquePrefix returns a Redis key prefix no other test uses, such as
// "test:3f9a0c1b7d2e:".
func UniquePrefix(t testing.TB) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("testenv: random prefix: %v", err)
	}
	return "test:" + hex.EncodeToString(b[:]) + ":"
}

// RedisServer is a redis-server owned by one test (StartRedis), for tests
// that stop, kill or restart Redis.
type RedisServer struct {
	URL  string // redis://127.0.0.1:<port>/0
	Addr string // 127.0.0.1:<port>

	bin  string
	dir  string
	port int
	args []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done <-chan struct{} // closed when cmd has exited
	out  *tailBuffer
}

// StartRedis starts a dedicated redis-server in a temporary directory and
// stops it when the test ends. args are extra redis-server arguments that
// override the defaults (no RDB snapshots, no AOF), e.g. "--appendonly",
// "yes", "--appendfsync", "always". Restart reuses the port, directory and
// arguments, so data persisted there survives it.
func StartRedis(t testing.TB, args ...string) *RedisServer {
	t.Helper()
	bin, err := redisServerBinary()
	if err != nil {
		unavailable(t, err)
	}
	s, err := startNew(bin, t.TempDir(), args)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// startNew starts a server on a free port, trying a few ports in case
// another process takes the one picked before redis-server binds it.
func startNew(bin, dir string, args []string) (*RedisServer, error) {
	var err error
	for range 5 {
		var port int
		if port, err = freePort(); err != nil {
			return nil, err
		}
		s := &RedisServer{
			URL:  fmt.Sprintf("redis://127.0.0.1:%d/0", port),
			Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
			bin:  bin, dir: dir, port: port, args: args,
		}
		if err = s.start(); err == nil {
			return s, nil
		}
		if !strings.Contains(err.Error(), "in use") {
			return nil, err
		}
	}
	return nil, err
}

// Stop shuts the server down gracefully (SIGTERM: an AOF is flushed) and
// waits for it to exit; it kills it after 10s. Stopping a stopped server
// does nothing.
func (s *RedisServer) Stop() { s.signal(syscall.SIGTERM, 10*time.Second) }

// Kill kills the server (SIGKILL, like a crash) and waits for it to exit.
func (s *RedisServer) Kill() { s.signal(syscall.SIGKILL, 0) }

// Restart stops the server if it runs and starts it again on the same port
// and directory, waiting until it answers PING (after loading its data).
func (s *RedisServer) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		t.Fatalf("testenv: restart: %v", err)
	}
}

func (s *RedisServer) signal(sig syscall.Signal, grace time.Duration) {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	if grace > 0 {
		select {
		case <-done:
			return
		case <-time.After(grace):
			_ = cmd.Process.Kill()
		}
	}
	<-done
}

func (s *RedisServer) start() error {
	args := []string{
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir,
		"--daemonize", "no", "--logfile", "",
	}
	args = append(args, s.args...)
	cmd := exec.Command(s.bin, args...)
	out := &tailBuffer{max: 16 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	done, err := startProcess(cmd)
	if err != nil {
		return fmt.Errorf("starting %s: %w", s.bin, err)
	}
	s.mu.Lock()
	s.cmd, s.done, s.out = cmd, done, out
	s.mu.Unlock()

	deadline := time.Now().Add(startTimeout)
	for {
		if ping(s.Addr) == nil {
			return nil
		}
		select {
		case <-done:
			s.mu.Lock()
			s.cmd = nil
			s.mu.Unlock()
			return fmt.Errorf("redis-server on %s exited: %s", s.Addr, out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Kill()
			return fmt.Errorf("redis-server on %s did not answer PING within %v: %s", s.Addr, startTimeout, out.String())
		}
	}
}

// startProcess starts cmd from a goroutine locked to its OS thread for the
// life of the process: the parent-death signal fires when the starting
// thread exits, so that thread must outlive the server. The returned channel
// is closed when the process has exited.
func startProcess(cmd *exec.Cmd) (<-chan struct{}, error) {
	setParentDeath(cmd)
	started := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the process
		defer close(done)
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
	}()
	if err := <-started; err != nil {
		<-done
		return nil, err
	}
	return done, nil
}

// ping sends PING and expects +PONG (not -LOADING while data loads).
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return errors.New(strings.TrimSpace(line))
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// unavailable skips the test because redis-server is missing, or fails it
// when $CI is set.
func unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("testenv: redis-server is required in CI: %v", err)
	}
	t.Skipf("testenv: skipping, redis-server is not available (%v); install the redis-server package or set %s", err, EnvRedisURL)
}

var install struct {
	once sync.Once
	log  string
}

// redisServerBinary finds redis-server, installing it with apt-get (once
// per process) when it is missing and we run as root.
func redisServerBinary() (string, error) {
	if p, err := lookRedisServer(); err == nil {
		return p, nil
	}
	if os.Geteuid() == 0 {
		install.once.Do(aptInstall)
		if p, err := lookRedisServer(); err == nil {
			return p, nil
		}
	}
	msg := "redis-server not found in PATH"
	if install.log != "" {
		msg += "; apt-get install failed: " + install.log
	}
	return "", errors.New(msg)
}

func lookRedisServer() (string, error) {
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p, nil
	}
	const debian = "/usr/bin/redis-server"
	if _, err := os.Stat(debian); err == nil {
		return debian, nil
	}
	return "", exec.ErrNotFound
}

func aptInstall() {
	apt, err := exec.LookPath("apt-get")
	if err != nil {
		install.log = "apt-get not found"
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for _, args := range [][]string{{"update"}, {"install", "-y", "redis-server"}} {
		cmd := exec.CommandContext(ctx, apt, args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			install.log = fmt.Sprintf("apt-get %s: %v: %s", strings.Join(args, " "), err, lastLines(string(out), 5))
			return
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// tailBuffer keeps the last max bytes written to it (a server's log).
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (w *tailBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b = append(w.b, p...)
	if len(w.b) > w.max {
		w.b = append(w.b[:0], w.b[len(w.b)-w.max:]...)
	}
	return len(p), nil
}

func (w *tailBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return lastLines(string(w.b), 10)
}

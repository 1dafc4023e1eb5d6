package testenv

// Servers for the load tool (cmd/lempbench): the same private Prosody and
// ejabberd as the tests get, plus in-band registration (XEP-0077), so that
// the load tool can create thousands of accounts over the c2s port instead
// of one prosodyctl/ejabberdctl process per account. Registration is only
// ever enabled here, never in the configurations the tests use.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ErrXMPPMissing is wrapped by NewBenchXMPP when the server kind is not
// installed (and could not be installed), as opposed to failing to start.
var ErrXMPPMissing = errors.New("XMPP server not installed")

// NewBenchXMPP starts a server of the given kind (KindProsody or
// KindEjabberd) outside any test: its files go in a new directory under
// dir, it listens on free loopback ports, and in-band registration is open
// to loopback clients. The caller stops it with Stop or Kill; on Linux the
// kernel also kills it when the calling process dies.
func NewBenchXMPP(kind, dir string) (*XMPPServer, error) {
	p, err := findXMPP(kind)
	if err != nil {
		if errors.Is(err, errUnknownKind) {
			return nil, err
		}
		return nil, fmt.Errorf("%s: %w: %v", kind, ErrXMPPMissing, err)
	}
	for attempt := range 3 {
		var s *XMPPServer
		if s, err = newXMPPServer(p, filepath.Join(dir, fmt.Sprintf("%s-%d", kind, attempt))); err != nil {
			return nil, err
		}
		if err = enableRegistration(s); err != nil {
			return nil, err
		}
		if err = s.start(); err == nil {
			return s, nil
		}
		if !errors.Is(err, errPortInUse) {
			return nil, err
		}
	}
	return nil, err
}

// StartBenchXMPP is NewBenchXMPP for a test: the server lives in t's
// temporary directory and is killed when t ends. A kind that is not
// installed skips t, or fails it when $CI is set.
func StartBenchXMPP(t testing.TB, kind string) *XMPPServer {
	t.Helper()
	begin := time.Now()
	s, err := NewBenchXMPP(kind, t.TempDir())
	if errors.Is(err, ErrXMPPMissing) {
		xmppUnavailable(t, err.Error())
	}
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(s.Kill)
	t.Logf("testenv: %s with in-band registration ready in %v (c2s %s, components %s)", kind, time.Since(begin).Round(time.Millisecond), s.C2SAddr, s.ComponentAddr)
	return s
}

// PID returns the server's process id, 0 when it is not running. For
// Prosody it is the Lua interpreter, for ejabberd the Erlang VM: the
// processes whose CPU time and memory are the server's.
func (s *XMPPServer) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// enableRegistration edits the generated configuration of s (before it
// starts) to allow XEP-0077 registration without limits from loopback.
func enableRegistration(s *XMPPServer) error {
	b, err := os.ReadFile(s.ConfigFile)
	if err != nil {
		return err
	}
	cfg := string(b)
	var edits [][2]string
	switch s.Kind {
	case KindProsody:
		// mod_register (IBR) on every host; loopback is on mod_register_limits'
		// default allowlist, so there is no throttle.
		edits = [][2]string{
			{"modules_enabled = {", "modules_enabled = {\n\t\"register\"; -- lempbench: in-band registration"},
			{"\nVirtualHost ", "\nallow_registration = true\n\nVirtualHost "},
		}
	case KindEjabberd:
		// registration_timeout (default 600 s) allows one registration per IP
		// address per period.
		edits = [][2]string{
			{"\nmodules:\n", "\nregistration_timeout: infinity\n\nmodules:\n" +
				"  mod_register:\n    access: all\n    ip_access: all\n    password_strength: 0\n"},
		}
	default:
		return fmt.Errorf("%w %q", errUnknownKind, s.Kind)
	}
	for _, e := range edits {
		if strings.Count(cfg, e[0]) != 1 {
			return fmt.Errorf("testenv: cannot enable registration in %s: %q found %d times, want once", s.ConfigFile, e[0], strings.Count(cfg, e[0]))
		}
		cfg = strings.Replace(cfg, e[0], e[1], 1)
	}
	return os.WriteFile(s.ConfigFile, []byte(cfg), 0o644)
}

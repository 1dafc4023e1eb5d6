package testenv_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mellium.im/xmpp/component"
	"mellium.im/xmpp/jid"

	"github.com/lempgw/lempgw/internal/testenv"
)

// TestStartProsodyWithComponents: the component part of the configuration
// comes from ProsodyOptions.Components only (its own port line, its own
// secret), in an included file, and both component domains work as with
// StartProsody.
func TestStartProsodyWithComponents(t *testing.T) {
	t.Parallel()
	const secret = "secret-from-the-option"
	calls := 0
	s := testenv.StartProsodyWith(t, testenv.ProsodyOptions{Components: func(s *testenv.XMPPServer) (string, error) {
		calls++
		_, port, err := net.SplitHostPort(s.ComponentAddr)
		if err != nil {
			return "", err
		}
		s.ComponentSecret = secret
		return fmt.Sprintf(`component_ports = { %s }
component_interfaces = { "127.0.0.1" }

Component %q
	component_secret = %q

Component %q
	component_secret = %q
`, port, s.ComponentDomain, secret, s.MUCComponentDomain, secret), nil
	}})
	if calls == 0 {
		t.Fatal("Components was not called")
	}
	cfg, err := os.ReadFile(s.ConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	included := filepath.Join(s.Dir, "components.cfg.lua")
	for _, bad := range []string{"component_ports", "component_secret", "Component " + fmt.Sprintf("%q", s.ComponentDomain)} {
		if strings.Contains(string(cfg), bad) {
			t.Errorf("the generated configuration still has %q:\n%s", bad, cfg)
		}
	}
	if !strings.Contains(string(cfg), fmt.Sprintf("Include %q", included)) {
		t.Errorf("the generated configuration does not include %s:\n%s", included, cfg)
	}
	if text, err := os.ReadFile(included); err != nil || !strings.Contains(string(text), secret) {
		t.Fatalf("%s: %v %q", included, err, text)
	}

	// The option's secret is the one the server checks.
	ctx := context30s(t)
	for _, d := range []string{s.ComponentDomain, s.MUCComponentDomain} {
		conn, err := net.Dial("tcp", s.ComponentAddr)
		if err != nil {
			t.Fatal(err)
		}
		sess, err := component.NewSession(ctx, jid.MustParse(d), []byte("not-"+secret), conn)
		_ = conn.Close()
		if err == nil {
			_ = sess.Close()
			t.Fatalf("component %s: handshake with a wrong secret succeeded", d)
		}
	}
	testComponents(t, s)
}

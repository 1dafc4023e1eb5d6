package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// ProsodyOptions changes what StartProsodyWith configures.
type ProsodyOptions struct {
	// Components, when set, replaces the component part of the generated
	// configuration (component_ports, component_interfaces and the two
	// lempgw Component sections) with the Lua text it returns. It is
	// called with the server's ports, names and Dir already chosen (again
	// for each attempt when a port was taken), and the text goes to its own
	// file, Dir/components.cfg.lua, which the configuration Includes at its
	// end, as Debian's prosody.cfg.lua includes conf.d/*.cfg.lua: it starts
	// in the global section.
	//
	// The text must open the component port of s.ComponentAddr and define
	// s.ComponentDomain and s.MUCComponentDomain, or the server never
	// becomes ready. It may set s.ComponentSecret to the secret it uses, so
	// that DialComponent and ComponentSession work.
	Components func(s *XMPPServer) (string, error)
}

// StartProsodyWith starts a private Prosody as StartProsody does, changed
// by opt.
func StartProsodyWith(t testing.TB, opt ProsodyOptions) *XMPPServer {
	t.Helper()
	found, err := findProsody()
	if err != nil {
		xmppUnavailable(t, fmt.Sprintf("%s: %v", KindProsody, err))
	}
	p := found.(prosodyPrereq)
	p.components = opt.Components
	begin := time.Now()
	s, err := startXMPP(t, p)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(s.Kill)
	t.Logf("testenv: prosody ready in %v (c2s %s, components %s, %s)", time.Since(begin).Round(time.Millisecond), s.C2SAddr, s.ComponentAddr, s.Dir)
	return s
}

// writeComponents writes the text of p.components to Dir/components.cfg.lua
// and returns that path; without p.components it returns "".
func (p prosodyPrereq) writeComponents(s *XMPPServer) (string, error) {
	if p.components == nil {
		return "", nil
	}
	text, err := p.components(s)
	if err != nil {
		return "", fmt.Errorf("components: %w", err)
	}
	if text == "" {
		return "", errors.New("components: empty configuration text")
	}
	path := filepath.Join(s.Dir, "components.cfg.lua")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return "", err
	}
	return path, nil
}

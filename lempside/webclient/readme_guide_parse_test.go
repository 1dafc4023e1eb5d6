package webclient_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// readmeText is README.md of the module.
func readmeText(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestReadmeGuide: README's section parses, its tokens are all replaced,
// and every kind of drift the test relies on catching is an error. It
// needs neither Prosody nor a browser, so README drift fails here even
// where TestReadmeJabberChat skips.
func TestReadmeGuide(t *testing.T) {
	md := readmeText(t)
	g, err := parseReadme(md)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(g.uiNames, readmeUISteps) {
		t.Fatalf("README's browser steps name %q, want %q", g.uiNames, readmeUISteps)
	}
	if g.jabberUser == "" || g.jabberHost != readmeHost || g.jabberPassword == "" {
		t.Fatalf("register: %q %q %q", g.jabberUser, g.jabberHost, g.jabberPassword)
	}
	cfg, err := g.testProsodyConfig("40001", "xmpp.test")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"component_ports = { 40001 }", `Component "lemp.xmpp.test"`, `Component "rooms.xmpp.test"`} {
		if !strings.Contains(cfg, want) {
			t.Errorf("test config has no %q:\n%s", want, cfg)
		}
	}
	env, err := g.testServeEnv("127.0.0.1:40001", "xmpp.test", "127.0.0.1:40002", "127.0.0.1:40003")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"LEMPGW_XMPP__COMPONENT_ADDRESS=127.0.0.1:40001", "LEMPGW_XMPP__DOMAIN=lemp.xmpp.test",
		"LEMPGW_XMPP__MUC_DOMAIN=rooms.xmpp.test", "LEMPGW_LEMP__LISTEN=127.0.0.1:40002", "LEMPGW_HTTP__LISTEN=127.0.0.1:40003"} {
		if !slices.Contains(env, want) {
			t.Errorf("test env has no %s: %q", want, env)
		}
	}
	if len(env) != len(g.serveEnv)+2 {
		t.Errorf("test env %q: want README's %d variables and the two listen addresses", env, len(g.serveEnv))
	}

	// Each drift must be caught, at parsing or at substitution.
	drift := []struct {
		name, old, new string
	}{
		{"marker gone", markerServe, ""},
		{"marker twice", markerProsodyConfig, markerProsodyConfig + "\n" + markerProsodyConfig},
		{"block language", markerProsodyConfig + "\n```lua", markerProsodyConfig + "\n```"},
		{"other port", "component_ports = { 5347 }", "component_ports = { 5348 }"},
		{"other component domain", `Component "rooms.localhost"`, `Component "groups.localhost"`},
		{"host left in the lua", "component_interfaces = { \"127.0.0.1\" }", "component_interfaces = { \"localhost\" }"},
		{"no register", "prosodyctl register", "prosodyctl adduser"},
		{"register shape", "prosodyctl register romeo localhost romeo-pw", "prosodyctl register romeo@localhost romeo-pw"},
		{"serve command", "go run ./cmd/lempgw serve\n", "go run ./cmd/lempgw serve --log.level debug\n"},
		{"serve quoting", "LEMPGW_XMPP__SECRET=change-me", "LEMPGW_XMPP__SECRET='change-me'"},
		{"serve address", "LEMPGW_XMPP__COMPONENT_ADDRESS=127.0.0.1:5347", "LEMPGW_XMPP__COMPONENT_ADDRESS=localhost:5347"},
		{"serve domain missing", "LEMPGW_XMPP__MUC_DOMAIN=rooms.localhost ", ""},
		{"serve sets a listen address", "LEMPGW_AUTH__ADMIN_TOKEN=secret \\\n", "LEMPGW_AUTH__ADMIN_TOKEN=secret LEMPGW_LEMP__LISTEN=127.0.0.1:8025 \\\n"},
		{"serve not a variable", "LEMPGW_AUTH__ADMIN_TOKEN=secret \\\n", "LEMPGW_AUTH__ADMIN_TOKEN=secret lempgw_auth=admin \\\n"},
	}
	for _, d := range drift {
		t.Run(d.name, func(t *testing.T) {
			if n := strings.Count(md, d.old); n != 1 {
				t.Fatalf("README has %q %d times, want once: update this case", d.old, n)
			}
			changed := strings.Replace(md, d.old, d.new, 1)
			g, err := parseReadme(changed)
			if err == nil {
				_, err = g.testProsodyConfig("40001", "xmpp.test")
			}
			if err == nil {
				_, err = g.testServeEnv("127.0.0.1:40001", "xmpp.test", "127.0.0.1:40002", "127.0.0.1:40003")
			}
			if err == nil {
				t.Fatal("not caught")
			}
			t.Logf("caught: %v", err)
		})
	}
	// A renamed button or field changes the names the browser steps give.
	g2, err := parseReadme(strings.Replace(md, "**Follow**", "**Add**", 1))
	if err != nil || slices.Equal(g2.uiNames, readmeUISteps) {
		t.Fatalf("renamed button: err %v, names %q", err, g2.uiNames)
	}
}

// FuzzParseReadme: any text parses or is refused with an error, never a
// panic, and what parses is consistent.
func FuzzParseReadme(f *testing.F) {
	f.Add(readmeText(f))
	f.Add("<!-- readme-test: prosody-config -->\n```lua\nx\n```\n<!-- readme-test: prosody-user -->\n```sh\nprosodyctl register a localhost b\n```\n" +
		"<!-- readme-test: serve -->\n```sh\nLEMPGW_X=1 \\\ngo run ./cmd/lempgw serve\n```\n**Log in**\n## Next")
	f.Add("<!-- readme-test: prosody-config -->\n```lua\n")
	f.Add("<!-- readme-test: serve -->```sh\n```")
	f.Fuzz(func(t *testing.T, md string) {
		g, err := parseReadme(md)
		if err != nil {
			return
		}
		if len(g.serveEnv) == 0 || g.jabberUser == "" || g.jabberHost == "" || g.jabberPassword == "" {
			t.Fatalf("parsed an incomplete guide: %+v", g)
		}
		for _, v := range g.serveEnv {
			if !envNameRE.MatchString(v.name) || strings.ContainsAny(v.value, " \t\n") {
				t.Fatalf("bad variable %+v", v)
			}
		}
		_, _ = g.testProsodyConfig("1", "xmpp.test")
		_, _ = g.testServeEnv("127.0.0.1:1", "xmpp.test", "127.0.0.1:2", "127.0.0.1:3")
	})
}

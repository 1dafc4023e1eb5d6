package webclient_test

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// The README's "Chat with a Jabber user" steps, read from README.md itself
// so that TestReadmeJabberChat runs what a newcomer is told to run. Each
// block follows a marker comment; what must differ on a test machine is
// replaced by explicit tokens, and a token that is not there is an error, so
// that README drift fails the test.

// The markers before the README's blocks.
const (
	markerProsodyConfig = "<!-- readme-test: prosody-config -->"
	markerProsodyUser   = "<!-- readme-test: prosody-user -->"
	markerServe         = "<!-- readme-test: serve -->"
)

// What the README uses that a test machine must change.
const (
	readmeHost          = "localhost"              // Prosody's virtual host on Debian
	readmeComponentPort = "5347"                   // Prosody's component port
	readmePageURL       = "http://127.0.0.1:8025/" // the web client, lemp.listen's default
	readmeServeCommand  = "go run ./cmd/lempgw serve"
)

// readmeGuide is what the README's section says to do.
type readmeGuide struct {
	prosodyConfig string // the Lua block for Prosody, as written

	jabberUser, jabberHost, jabberPassword string // prosodyctl register USER HOST PASSWORD

	serveEnv []envVar // the serve command's NAME=VALUE words, in order

	browser string   // the text after the serve block, up to the next section
	uiNames []string // the **bold** names in browser: what to look for on the page
}

type envVar struct{ name, value string }

// env returns the value of the README's variable name.
func (g *readmeGuide) env(name string) (string, bool) {
	for _, v := range g.serveEnv {
		if v.name == name {
			return v.value, true
		}
	}
	return "", false
}

// parseReadme reads the section's blocks from README.md's text.
func parseReadme(md string) (*readmeGuide, error) {
	var g readmeGuide
	var err error
	if g.prosodyConfig, _, err = fencedBlock(md, markerProsodyConfig, "lua"); err != nil {
		return nil, err
	}
	user, _, err := fencedBlock(md, markerProsodyUser, "sh")
	if err != nil {
		return nil, err
	}
	if g.jabberUser, g.jabberHost, g.jabberPassword, err = parseRegister(user); err != nil {
		return nil, err
	}
	serve, end, err := fencedBlock(md, markerServe, "sh")
	if err != nil {
		return nil, err
	}
	if g.serveEnv, err = parseServe(serve); err != nil {
		return nil, err
	}
	g.browser = md[end:]
	if i := strings.Index(g.browser, "\n## "); i >= 0 {
		g.browser = g.browser[:i]
	}
	for _, m := range boldRE.FindAllStringSubmatch(g.browser, -1) {
		g.uiNames = append(g.uiNames, m[1])
	}
	return &g, nil
}

var boldRE = regexp.MustCompile(`\*\*([^*\n]+)\*\*`)

// fencedBlock returns the body of the fenced block of language lang that
// follows the only occurrence of marker (blank lines between them allowed),
// and the offset just after the block.
func fencedBlock(md, marker, lang string) (string, int, error) {
	switch n := strings.Count(md, marker); n {
	case 0:
		return "", 0, fmt.Errorf("README: no %s", marker)
	case 1:
	default:
		return "", 0, fmt.Errorf("README: %d times %s, want once", n, marker)
	}
	i := strings.Index(md, marker) + len(marker)
	rest := strings.TrimLeft(md[i:], " \t\r\n")
	i = len(md) - len(rest)
	open := "```" + lang + "\n"
	if !strings.HasPrefix(rest, open) {
		first, _, _ := strings.Cut(rest, "\n")
		return "", 0, fmt.Errorf("README: %s is followed by %q, want a ```%s block", marker, first, lang)
	}
	body := rest[len(open):]
	j := strings.Index(body, "\n```")
	if j < 0 {
		return "", 0, fmt.Errorf("README: the ```%s block after %s is not closed", lang, marker)
	}
	end := i + len(open) + j + len("\n```")
	return body[:j+1], end, nil
}

// shellLines joins backslash-continued lines and drops blank ones.
func shellLines(block string) []string {
	var lines []string
	for l := range strings.SplitSeq(strings.ReplaceAll(block, "\\\n", " "), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// plainWords splits a command line into words, refusing what would need a
// shell to mean what it says (quotes, expansions, redirections).
func plainWords(line string) ([]string, error) {
	if i := strings.IndexAny(line, "'\"`$<>|;&*?\\#~(){}"); i >= 0 {
		return nil, fmt.Errorf("%q: %q needs a shell; the test reads plain words only", line, line[i])
	}
	return strings.Fields(line), nil
}

// parseRegister finds the one `prosodyctl register USER HOST PASSWORD`.
func parseRegister(block string) (user, host, password string, err error) {
	found := 0
	for _, l := range shellLines(block) {
		for cmd := range strings.SplitSeq(l, "&&") {
			if !strings.Contains(cmd, "prosodyctl register") {
				continue
			}
			w, err := plainWords(cmd)
			if err != nil {
				return "", "", "", err
			}
			if len(w) > 0 && w[0] == "sudo" {
				w = w[1:]
			}
			if len(w) != 5 || w[0] != "prosodyctl" || w[1] != "register" {
				return "", "", "", fmt.Errorf("README: %q, want prosodyctl register USER HOST PASSWORD", strings.TrimSpace(cmd))
			}
			user, host, password = w[2], w[3], w[4]
			found++
		}
	}
	if found != 1 {
		return "", "", "", fmt.Errorf("README: %d prosodyctl register commands after %s, want 1", found, markerProsodyUser)
	}
	return user, host, password, nil
}

// parseServe reads the serve block: one command, NAME=VALUE words, then
// exactly readmeServeCommand.
func parseServe(block string) ([]envVar, error) {
	lines := shellLines(block)
	if len(lines) != 1 {
		return nil, fmt.Errorf("README: the serve block has %d commands, want 1", len(lines))
	}
	words, err := plainWords(lines[0])
	if err != nil {
		return nil, fmt.Errorf("README: serve block: %w", err)
	}
	var env []envVar
	seen := map[string]bool{}
	for len(words) > 0 {
		name, value, ok := strings.Cut(words[0], "=")
		if !ok {
			break
		}
		if !envNameRE.MatchString(name) {
			return nil, fmt.Errorf("README: serve block: %q is not a LEMPGW_ variable", words[0])
		}
		if seen[name] {
			return nil, fmt.Errorf("README: serve block sets %s twice", name)
		}
		seen[name] = true
		env = append(env, envVar{name, value})
		words = words[1:]
	}
	if got := strings.Join(words, " "); got != readmeServeCommand {
		return nil, fmt.Errorf("README: serve block runs %q, want %q", got, readmeServeCommand)
	}
	if len(env) == 0 {
		return nil, errors.New("README: serve block sets no variable")
	}
	return env, nil
}

var envNameRE = regexp.MustCompile(`^LEMPGW_[A-Z0-9_]+$`)

// token is one explicit replacement: old must occur in the text.
type token struct{ old, new string }

// replaceTokens replaces every token, failing on one that is missing, and
// then on any of leftovers still in the result (a README value the test
// does not know how to change).
func replaceTokens(what, text string, tokens []token, leftovers ...string) (string, error) {
	for _, tk := range tokens {
		if !strings.Contains(text, tk.old) {
			return "", fmt.Errorf("README: %s has no %q: update the README or the test's tokens", what, tk.old)
		}
		text = strings.ReplaceAll(text, tk.old, tk.new)
	}
	for _, l := range leftovers {
		if strings.Contains(text, l) {
			return "", fmt.Errorf("README: %s still has %q after the test's replacements:\n%s", what, l, text)
		}
	}
	return text, nil
}

// testProsodyConfig is the README's Lua block for a test server: its
// component port and virtual host.
func (g *readmeGuide) testProsodyConfig(componentPort, host string) (string, error) {
	return replaceTokens("the prosody-config block", g.prosodyConfig, []token{
		{"component_ports = { " + readmeComponentPort + " }", "component_ports = { " + componentPort + " }"},
		{fmt.Sprintf("Component %q", "lemp."+readmeHost), fmt.Sprintf("Component %q", "lemp."+host)},
		{fmt.Sprintf("Component %q", "rooms."+readmeHost), fmt.Sprintf("Component %q", "rooms."+host)},
	}, readmeHost, readmeComponentPort)
}

// testServeEnv is the README's serve environment for a test server (its
// component address and virtual host), plus the listen addresses of the
// test's gateway, as NAME=VALUE.
func (g *readmeGuide) testServeEnv(componentAddr, host, lempListen, opsListen string) ([]string, error) {
	change := map[string]token{
		"LEMPGW_XMPP__COMPONENT_ADDRESS": {"127.0.0.1:" + readmeComponentPort, componentAddr},
		"LEMPGW_XMPP__DOMAIN":            {"lemp." + readmeHost, "lemp." + host},
		"LEMPGW_XMPP__MUC_DOMAIN":        {"rooms." + readmeHost, "rooms." + host},
	}
	added := []envVar{{"LEMPGW_LEMP__LISTEN", lempListen}, {"LEMPGW_HTTP__LISTEN", opsListen}}
	var env []string
	for _, v := range g.serveEnv {
		if tk, ok := change[v.name]; ok {
			if v.value != tk.old {
				return nil, fmt.Errorf("README: serve block has %s=%s, the test replaces %q", v.name, v.value, tk.old)
			}
			v.value = tk.new
			delete(change, v.name)
		}
		for _, a := range added {
			if v.name == a.name {
				return nil, fmt.Errorf("README: serve block sets %s, which the test sets to a free port", v.name)
			}
		}
		if strings.Contains(v.value, readmeHost) || strings.Contains(v.value, readmeComponentPort) {
			return nil, fmt.Errorf("README: serve block has %s=%s, which the test does not know how to change", v.name, v.value)
		}
		env = append(env, v.name+"="+v.value)
	}
	if len(change) > 0 {
		var missing []string
		for name, tk := range change {
			missing = append(missing, name+"="+tk.old)
		}
		slices.Sort(missing)
		return nil, fmt.Errorf("README: serve block does not set %s", strings.Join(missing, " "))
	}
	for _, a := range added {
		env = append(env, a.name+"="+a.value)
	}
	return env, nil
}

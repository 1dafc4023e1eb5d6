package testenv_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/lempgw/lempgw/internal/testenv"
)

// fenced returns the body of the first ```lang block after heading in doc.
func fenced(t *testing.T, doc, heading, lang string) string {
	t.Helper()
	i := strings.Index(doc, heading)
	if i < 0 {
		t.Fatalf("docs/operations.md has no %q", heading)
	}
	rest := doc[i:]
	j := strings.Index(rest, "```"+lang+"\n")
	if j < 0 {
		t.Fatalf("no ```%s block under %q", lang, heading)
	}
	body := rest[j+len("```"+lang+"\n"):]
	return body[:strings.Index(body, "```")]
}

// directives are the setting lines of a snippet: comments, blank lines and
// "..." placeholders dropped, whitespace collapsed, and the example values
// (domains, port, secret) replaced by what the harness gives the servers.
func directives(snippet string, repl *strings.Replacer) []string {
	var out []string
	for _, l := range strings.Split(snippet, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "--") || strings.HasPrefix(l, "#") || strings.Contains(l, "...") {
			continue
		}
		out = append(out, strings.Join(strings.Fields(repl.Replace(l)), " "))
	}
	return out
}

// TestOperationsSnippets: the Prosody and ejabberd settings that
// docs/operations.md tells operators to add are the ones the integration
// tests run the servers with (the harness's generated configurations), so
// the guide cannot drift from what is tested.
func TestOperationsSnippets(t *testing.T) {
	b, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	testenv.ForEachXMPPServer(t, func(t *testing.T, srv *testenv.XMPPServer) {
		cfg, err := os.ReadFile(srv.ConfigFile)
		if err != nil {
			t.Fatal(err)
		}
		port := regexp.MustCompile(`:(\d+)$`).FindStringSubmatch(srv.ComponentAddr)[1]
		repl := strings.NewReplacer(
			"lemp.example.org", srv.ComponentDomain, "rooms.example.org", srv.MUCComponentDomain,
			"5347", port, "change-me", srv.ComponentSecret)
		heading, lang := "## Running lempgw with Prosody", "lua"
		if srv.Kind == testenv.KindEjabberd {
			heading, lang = "## Running lempgw with ejabberd", "yaml"
		}
		have := map[string]bool{}
		for _, l := range directives(string(cfg), strings.NewReplacer()) {
			have[strings.Trim(l, `"`)] = true
			have[l] = true
		}
		want := directives(fenced(t, doc, heading, lang), repl)
		if len(want) < 4 {
			t.Fatalf("the %s snippet has too few settings: %q", srv.Kind, want)
		}
		for _, l := range want {
			if !have[l] && !have[strings.ReplaceAll(l, `"`, ``)] && !strings.Contains(strings.ReplaceAll(string(cfg), `"`, ``), strings.ReplaceAll(l, `"`, ``)) {
				t.Errorf("docs/operations.md tells %s operators to set %q, but the tests' configuration has no such line", srv.Kind, l)
			}
		}
	})
}

package webclient_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"

	"github.com/lempgw/lempgw/internal/lemptest"
	"github.com/lempgw/lempgw/internal/testenv"
	"github.com/lempgw/lempgw/mapping"
)

// readmeUISteps are the page's names that README's browser steps give, in
// their order: TestReadmeJabberChat finds each on the page by that name.
var readmeUISteps = []string{"Identity", "Token", "Log in", "Follow a user or a jid@server", "Follow", "Contacts", "Message", "Send"}

// TestReadmeJabberChat follows README.md's "Chat with a Jabber user" as a
// newcomer would: a Prosody whose configuration is the test harness's base
// plus README's Lua block, the Jabber user README registers, the real
// gateway binary run with README's environment, and the web client driven
// in headless Chromium by the names README gives, while a real XMPP client
// logged in as the Jabber user accepts the subscription, gets the message
// and answers. What must differ here (virtual host, ports) is replaced by
// explicit tokens, and a missing token fails: README drift breaks the test.
// The steps it cannot run are the ones that touch the system (apt-get,
// the TLS certificate, systemctl): the harness's Prosody is private and
// speaks plain XMPP on loopback.
func TestReadmeJabberChat(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway with Prosody and Chromium")
	}
	findChromium(t) // skip before starting anything when there is no browser
	root := moduleRoot(t)
	md, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	guide, err := parseReadme(string(md))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(guide.uiNames, readmeUISteps) {
		t.Fatalf("README's browser steps name %q; this test does %q: update one or the other", guide.uiNames, readmeUISteps)
	}
	identity, _ := guide.env("LEMPGW_AUTH__ADMIN_IDENTITY")
	token, _ := guide.env("LEMPGW_AUTH__ADMIN_TOKEN")
	secret, _ := guide.env("LEMPGW_XMPP__SECRET")
	if identity == "" || token == "" || secret == "" {
		t.Fatalf("README's serve block must set LEMPGW_AUTH__ADMIN_IDENTITY, LEMPGW_AUTH__ADMIN_TOKEN and LEMPGW_XMPP__SECRET: %v", guide.serveEnv)
	}
	if guide.jabberHost != readmeHost {
		t.Fatalf("README registers %s@%s; the test replaces the host %q", guide.jabberUser, guide.jabberHost, readmeHost)
	}
	readmeJID := guide.jabberUser + "@" + readmeHost
	for _, s := range []string{"`" + identity + "`", "`" + token + "`", "`" + readmeJID + "`", "`" + guide.jabberPassword + "`",
		"`" + identity + "@lemp." + readmeHost + "`", readmePageURL} {
		if !strings.Contains(guide.browser, s) {
			t.Fatalf("README's browser steps do not say %s:\n%s", s, guide.browser)
		}
	}

	// Steps 1 and 2: Prosody with README's components, README's user.
	srv := testenv.StartProsodyWith(t, testenv.ProsodyOptions{Components: func(s *testenv.XMPPServer) (string, error) {
		_, port, err := net.SplitHostPort(s.ComponentAddr)
		if err != nil {
			return "", err
		}
		if s.ComponentDomain != "lemp."+s.Domain || s.MUCComponentDomain != "rooms."+s.Domain {
			return "", fmt.Errorf("test server names %s, %s: not README's lemp./rooms. of %s", s.ComponentDomain, s.MUCComponentDomain, s.Domain)
		}
		s.ComponentSecret = secret
		return guide.testProsodyConfig(port, s.Domain)
	}})
	srv.Ctl(t, "register", guide.jabberUser, srv.Domain, guide.jabberPassword)

	// Step 3: the gateway, with README's environment.
	lempAddr, opsAddr := freeLoopbackAddr(t), freeLoopbackAddr(t)
	env, err := guide.testServeEnv(srv.ComponentAddr, srv.Domain, lempAddr, opsAddr)
	if err != nil {
		t.Fatal(err)
	}
	gw := runGateway(t, buildGateway(t, root), env)
	gw.waitReady(t, opsAddr)
	if n := gw.countLog(`msg="component link up"`); n != 2 {
		t.Fatalf("the gateway logged %d component link up, README says twice:\n%s", n, gw.log.String())
	}

	// Step 4: the Jabber user, on a real XMPP client.
	romeo := loginJabber(t, srv, guide.jabberUser, guide.jabberPassword)
	romeoJID, adminJID := guide.jabberUser+"@"+srv.Domain, identity+"@"+srv.ComponentDomain

	// Step 5: log in and follow, by the names README gives.
	pageURL := strings.Replace(readmePageURL, "127.0.0.1:8025", lempAddr, 1)
	browser := startBrowser(t)
	page := newTab(t, browser, identity)
	page.do("open "+pageURL, chromedp.Navigate(pageURL))
	page.typeInto("Identity", identity)
	page.typeInto("Token", token)
	page.press("Log in")
	page.waitFor("the chat view", `!document.getElementById("app-view").hidden && document.getElementById("conn").dataset.state === "online"`)
	page.typeInto("Follow a user or a jid@server", romeoJID)
	page.press("Follow")

	// Step 6: romeo accepts, shows online; a message there and back.
	romeo.expectPresence(adminJID, "subscribe")
	romeo.send(`<presence to="` + adminJID + `" type="subscribed"/>`)
	page.contactOnline(romeoJID, true)
	page.pickFromList("Contacts", romeoJID)
	page.waitFor("the conversation with "+romeoJID, `document.getElementById("chat-pane").dataset.peer === `+js(romeoJID))
	page.typeInto("Message", "hello romeo, from the README")
	page.press("Send")
	m := romeo.nextMessage()
	if len(m.Body) == 0 || m.Body[0].Text != "hello romeo, from the README" || bareJID(m.From) != adminJID {
		t.Fatalf("romeo got %+v, want the page's message from %s", m, adminJID)
	}
	romeo.send(`<message to="` + adminJID + `" type="chat" id="answer1"><body>hello admin, romeo here</body></message>`)
	page.waitMessage(romeoJID, "hello admin, romeo here")
	t.Logf("screenshot: %s", page.screenshot("readme-jabber.png"))
}

func bareJID(j string) string {
	bare, _, _ := strings.Cut(j, "/")
	return bare
}

// uiFind is a JavaScript function that finds the visible element the page
// calls name: a field by its label or placeholder, a button by its text, a
// heading by its text. It tags the element data-readme=name and reports
// whether there was one.
const uiFind = `((name) => {
	const visible = (e) => e && e.getClientRects().length > 0;
	const text = (e) => e.textContent.trim();
	let found = null;
	for (const l of document.querySelectorAll("label[for]")) {
		const f = document.getElementById(l.htmlFor);
		if (!found && text(l) === name && visible(f)) found = f;
	}
	for (const e of document.querySelectorAll("input[placeholder], textarea[placeholder]")) {
		if (!found && e.placeholder === name && visible(e)) found = e;
	}
	for (const e of document.querySelectorAll("button, h1, h2, h3")) {
		if (!found && text(e) === name && visible(e)) found = e;
	}
	for (const e of document.querySelectorAll("[data-readme]")) e.removeAttribute("data-readme");
	if (found) found.setAttribute("data-readme", name);
	return found !== null;
})`

// ui waits for the element the page calls name and returns its selector.
func (p *tab) ui(name string) string {
	p.t.Helper()
	p.waitFor(fmt.Sprintf("%q on the page", name), uiFind+`(`+js(name)+`)`)
	return `[data-readme=` + js(name) + `]`
}

// typeInto types text into the field the page calls name, emptied first.
func (p *tab) typeInto(name, text string) {
	p.t.Helper()
	sel := p.ui(name)
	p.clear(sel)
	p.do(fmt.Sprintf("type into %q", name), chromedp.SendKeys(css(sel), text))
}

// press clicks the button the page calls name.
func (p *tab) press(name string) {
	p.t.Helper()
	p.do(fmt.Sprintf("press %q", name), chromedp.Click(css(p.ui(name))))
}

// pickFromList clicks the entry for key in the list under the heading
// the page calls name.
func (p *tab) pickFromList(name, key string) {
	p.t.Helper()
	heading := p.ui(name)
	entry := `document.querySelector(` + js(heading) + `).nextElementSibling.querySelector('li[data-user=` + js(key) + `]')`
	p.waitFor(fmt.Sprintf("%s under %q", key, name), entry+` !== null`)
	// The page may redraw the list after the click, dropping the mark.
	eval[chromedp.Void](p, `document.querySelectorAll("[data-readme-entry]").forEach((e) => e.removeAttribute("data-readme-entry")); `+
		entry+`.setAttribute("data-readme-entry", "")`)
	p.do(fmt.Sprintf("click %s under %q", key, name), chromedp.Click(css(`[data-readme-entry]`)))
}

// loginJabber logs user in on srv as a Jabber client does (roster, then
// initial presence) and collects what it receives.
func loginJabber(t *testing.T, srv *testenv.XMPPServer, user, password string) *jabber {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sess := testenv.ClientSession(ctx, t, srv, user, password)
	j := &jabber{t: t, sess: sess, in: make(chan mapping.Message, 256), pres: make(chan mapping.Presence, 256), iqs: make(chan string, 16)}
	go func() {
		_ = sess.Serve(xmpp.HandlerFunc(func(tr xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			d := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), tr))
			switch start.Name.Local {
			case "message":
				var m mapping.Message
				if err := d.Decode(&m); err == nil {
					j.in <- m
				}
			case "presence":
				var p mapping.Presence
				if err := d.Decode(&p); err == nil {
					j.pres <- p
				}
			case "iq":
				var iq struct {
					ID   string `xml:"id,attr"`
					Type string `xml:"type,attr"`
				}
				if err := d.Decode(&iq); err == nil && iq.Type == "result" {
					j.iqs <- iq.ID
				}
			}
			return nil
		}))
	}()
	j.send(`<iq type="get" id="roster1"><query xmlns="jabber:iq:roster"/></iq>`)
	select {
	case <-j.iqs:
	case <-time.After(lemptest.Wait):
		t.Fatal("no roster")
	}
	j.send(`<presence/>`)
	return j
}

// moduleRoot is the directory of go.mod, above the package's.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// buildGateway builds cmd/lempgw (`go build ./cmd/lempgw`) into the test's
// temporary directory.
func buildGateway(t *testing.T, root string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "lempgw")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/lempgw")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/lempgw: %v\n%s", err, out)
	}
	return bin
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// lockedBuffer is a bytes.Buffer safe for a process's writes and the
// test's reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// gatewayProc is a running `lempgw serve`.
type gatewayProc struct {
	cmd    *exec.Cmd
	log    *lockedBuffer
	exited chan struct{}
}

// runGateway runs `bin serve` with env added to the test's environment
// (without its own LEMPGW_ variables), and stops it with SIGTERM when the
// test ends.
func runGateway(t *testing.T, bin string, env []string) *gatewayProc {
	t.Helper()
	g := &gatewayProc{cmd: exec.Command(bin, "serve"), log: &lockedBuffer{}, exited: make(chan struct{})}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LEMPGW_") {
			g.cmd.Env = append(g.cmd.Env, kv)
		}
	}
	g.cmd.Env = append(g.cmd.Env, env...)
	g.cmd.Stdout, g.cmd.Stderr = g.log, g.log
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.cmd.Wait(); close(g.exited) }()
	t.Cleanup(func() {
		_ = g.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-g.exited:
			if code := g.cmd.ProcessState.ExitCode(); code != 0 {
				t.Errorf("lempgw serve exited %d after SIGTERM", code)
			}
		case <-time.After(15 * time.Second):
			_ = g.cmd.Process.Kill()
			<-g.exited
			t.Errorf("lempgw serve still running 15s after SIGTERM")
		}
		if t.Failed() {
			t.Logf("gateway log:\n%s", g.log.String())
		}
	})
	return g
}

// waitReady waits until the gateway's /readyz answers 200: the store and
// both component links are up.
func (g *gatewayProc) waitReady(t *testing.T, opsAddr string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	client := &http.Client{Timeout: 2 * time.Second}
	last := errors.New("no answer")
	for time.Now().Before(deadline) {
		select {
		case <-g.exited:
			t.Fatalf("lempgw serve exited (%v):\n%s", g.cmd.ProcessState, g.log.String())
		default:
		}
		resp, err := client.Get("http://" + opsAddr + "/readyz")
		if err == nil {
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("%d %s", resp.StatusCode, strings.TrimSpace(b.String()))
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("lempgw not ready within 60s: /readyz: %v\n%s", last, g.log.String())
}

// countLog counts the log lines containing s.
func (g *gatewayProc) countLog(s string) int {
	n := 0
	for l := range strings.SplitSeq(g.log.String(), "\n") {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

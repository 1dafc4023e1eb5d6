package webclient_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// browserWait bounds every wait for the page; the CPU is shared.
const browserWait = 20 * time.Second

// envChromium names a browser binary to use instead of the one on PATH.
const envChromium = "LEMPGW_TEST_CHROMIUM"

// envScreenshotDir, when set, is a directory the browser tests also write
// their screenshots to.
const envScreenshotDir = "LEMPGW_TEST_SCREENSHOT_DIR"

// findChromium returns the browser binary; without one the test skips, or
// fails when the CI variable is set (CI installs chromium: scripts/deps.sh).
func findChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(envChromium); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("%s=%s: %v", envChromium, p, err)
		}
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	msg := "chromium not found: install the Debian package chromium (scripts/deps.sh does) or set " + envChromium
	if os.Getenv("CI") != "" {
		t.Fatalf("browser test needs a browser in CI: %s", msg)
	}
	t.Skipf("skipping browser test: %s", msg)
	return ""
}

// startBrowser starts one headless Chromium for the test; tabs opened with
// newTab share it but not their storage.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	bin := findChromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox, // tests run as root
		chromedp.WindowSize(1100, 720),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	// The first action starts the browser, bound to the context it runs
	// on: that must be bctx itself, not a shorter-lived child.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	return bctx
}

// tab is one browser page in its own browser context (its own cookies and
// storage), so two users can be logged in side by side.
type tab struct {
	t    *testing.T
	name string
	ctx  context.Context

	mu         sync.Mutex
	console    []string
	exceptions []string
}

func newTab(t *testing.T, browser context.Context, name string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	tb := &tab{t: t, name: name, ctx: ctx}
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		t.Fatalf("%s: opening a tab: %v", name, err)
	}
	// Subscribe before anything loads; the loops read in the background.
	consoleEvents := chromedp.Events(ctx, runtime.ConsoleAPICalled)
	exceptionEvents := chromedp.Events(ctx, runtime.ExceptionThrown)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for ev, err := range consoleEvents {
			if err != nil {
				return
			}
			var parts []string
			for _, a := range ev.Args {
				if len(a.Value) > 0 {
					parts = append(parts, string(a.Value))
				} else {
					parts = append(parts, a.Description)
				}
			}
			tb.mu.Lock()
			tb.console = append(tb.console, string(ev.Type)+": "+strings.Join(parts, " "))
			tb.mu.Unlock()
		}
	}()
	go func() {
		defer wg.Done()
		for ev, err := range exceptionEvents {
			if err != nil {
				return
			}
			d := ev.ExceptionDetails
			text := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				text += " " + d.Exception.Description
			}
			tb.mu.Lock()
			tb.exceptions = append(tb.exceptions, fmt.Sprintf("%s (%s:%d)", text, d.URL, d.LineNumber))
			tb.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		tb.mu.Lock()
		defer tb.mu.Unlock()
		if len(tb.exceptions) > 0 {
			t.Errorf("%s: uncaught JavaScript exceptions:\n%s", name, strings.Join(tb.exceptions, "\n"))
		}
		if t.Failed() && len(tb.console) > 0 {
			t.Logf("%s: browser console:\n%s", name, strings.Join(tb.console, "\n"))
		}
	})
	return tb
}

// do runs actions, failing the test with what the page shows on an error.
func (p *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserWait)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %s: %v\npage: %s", p.name, what, err, p.pageText())
	}
}

// eval evaluates a JavaScript expression and decodes its value into T.
func eval[T any](p *tab, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserWait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("%s: evaluating %s: %v", p.name, expr, err)
	}
	return v
}

// waitFor polls a JavaScript condition until it is true.
func (p *tab) waitFor(what, cond string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserWait+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](cond,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(browserWait)))
	if err != nil {
		p.t.Fatalf("%s: waiting for %s: %v\ncondition: %s\npage: %s", p.name, what, err, cond, p.pageText())
	}
}

// pageText is the visible text of the page, for failure messages.
func (p *tab) pageText() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return s
}

// js quotes s as a JavaScript string literal.
func js(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

// login fills the login form.
func (p *tab) login(pageURL, user, token string) {
	p.t.Helper()
	p.do("open the page", chromedp.Navigate(pageURL), chromedp.WaitVisible(css("#identity")))
	p.clear("#identity")
	p.do("log in",
		chromedp.SendKeys(css("#identity"), user),
		chromedp.SendKeys(css("#token"), token),
		chromedp.Click(css("#login-btn")),
	)
	p.waitFor("the chat view", `!document.getElementById("app-view").hidden && document.getElementById("conn").dataset.state === "online"`)
}

// fill fills a field (after clearing it) and clicks a button.
func (p *tab) fill(field, text, button string) {
	p.t.Helper()
	p.do("wait for "+field, chromedp.WaitVisible(css(field)))
	p.clear(field)
	p.do("fill "+field,
		chromedp.SendKeys(css(field), text),
		chromedp.Click(css(button)),
	)
}

// clear empties an input. (chromedp's SetValue with "" reports a failure,
// and Clear sets the attribute, not what was typed.)
func (p *tab) clear(sel string) {
	p.t.Helper()
	eval[chromedp.Void](p, `document.querySelector(`+js(sel)+`).value = ""`)
}

func (p *tab) click(sel string) {
	p.t.Helper()
	p.do("click "+sel, chromedp.WaitVisible(css(sel)), chromedp.Click(css(sel)))
}

// follow follows a user or JID through the follow form.
func (p *tab) follow(user, nick string) {
	p.t.Helper()
	if nick != "" {
		p.do("nick", chromedp.SendKeys(css("#follow-nick"), nick))
	}
	p.fill("#follow-user", user, "#follow-btn")
	p.waitFor("contact "+user, `document.querySelector('#contacts li[data-user=`+js(user)+`]') !== null`)
}

// open opens the conversation with a contact or a group.
func (p *tab) open(key string) {
	p.t.Helper()
	sel := `#contacts li[data-user=` + js(key) + `], #groups li[data-group=` + js(key) + `]`
	p.click(sel)
	p.waitFor("conversation "+key, `document.getElementById("chat-pane").dataset.peer === `+js(key))
}

// send sends a text in the open conversation.
func (p *tab) send(text string) {
	p.t.Helper()
	p.fill("#composer-input", text, "#send")
}

// msgExpr is a JavaScript expression for the message element whose text is
// text (null when there is none).
func msgExpr(text string) string {
	return `([...document.querySelectorAll("#messages .msg")].find((e) => e.querySelector(".text").textContent === ` + js(text) + `) || null)`
}

// waitMark waits until my message text shows state (sent, delivered, read).
func (p *tab) waitMark(text, state string) {
	p.t.Helper()
	m := msgExpr(text)
	p.waitFor(fmt.Sprintf("%q marked %s", text, state), `(`+m+` !== null && `+m+`.classList.contains("mine") && `+m+`.dataset.state === `+js(state)+`)`)
}

// waitMessage waits until a message with text from sender is shown in the
// open conversation.
func (p *tab) waitMessage(from, text string) {
	p.t.Helper()
	m := msgExpr(text)
	p.waitFor(fmt.Sprintf("message %q from %s", text, from), `(`+m+` !== null && `+m+`.dataset.from === `+js(from)+`)`)
}

// mark is the state of my message text now.
func (p *tab) mark(text string) string {
	p.t.Helper()
	m := msgExpr(text)
	return eval[string](p, `(`+m+` ? `+m+`.dataset.state || "" : "")`)
}

// contactOnline waits until the contact list shows user online (or not).
func (p *tab) contactOnline(user string, online bool) {
	p.t.Helper()
	p.waitFor(fmt.Sprintf("%s shown online=%v", user, online),
		`(document.querySelector('#contacts li[data-user=`+js(user)+`]') || {dataset: {}}).dataset.online === `+js(fmt.Sprint(online)))
}

// screenshot saves a PNG of the page under t.TempDir() and, when
// LEMPGW_TEST_SCREENSHOT_DIR is set, there too; it returns the first path.
func (p *tab) screenshot(file string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserWait)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatalf("%s: screenshot: %v", p.name, err)
	}
	if _, err := png.DecodeConfig(bytes.NewReader(buf)); err != nil {
		p.t.Fatalf("%s: screenshot is not a PNG: %v", p.name, err)
	}
	path := filepath.Join(p.t.TempDir(), file)
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		p.t.Fatal(err)
	}
	if dir := os.Getenv(envScreenshotDir); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			p.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, file), buf, 0o644); err != nil {
			p.t.Fatal(err)
		}
		p.t.Logf("screenshot: %s", filepath.Join(dir, file))
	}
	return path
}

// pictureURL is a data: URL of a small PNG in one colour, for profile pictures.
func pictureURL(t *testing.T, c color.RGBA) string {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for y := range 16 {
		for x := range 16 {
			img.SetRGBA(x, y, c)
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(b.Bytes())
}

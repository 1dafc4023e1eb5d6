package webclient_test

import (
	"encoding/json"
	"image/color"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/lempgw/lempgw/internal/lemptest"
	"github.com/lempgw/lempgw/internal/testenv"
	"github.com/lempgw/lempgw/state"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// startWebGateway runs a gateway (memory store) that serves the web client,
// and returns it with the page's URL.
func startWebGateway(t *testing.T, opt lemptest.Options) (*lemptest.Gateway, string) {
	t.Helper()
	opt.Server.WebClient = true
	g := lemptest.Start(t, state.NewMemory(), opt)
	return g, "http://" + g.Srv.Addr().String() + "/"
}

// TestBrowserTwoUsers drives the web client in headless Chromium: alice and
// bob log in through the page in two tabs, follow each other, see each
// other come and go (li/lo), chat with sent/delivered/read marks, set a
// status and a picture, use a group (with a third user on a plain LEMP
// client), see a server error, survive a dropped connection, and are told
// when a newer login replaces the session.
func TestBrowserTwoUsers(t *testing.T) {
	g, pageURL := startWebGateway(t, lemptest.Options{})
	for _, u := range []string{"alice", "bob", "carol"} {
		g.User(t, u, false)
	}
	browser := startBrowser(t)
	alice := newTab(t, browser, "alice")
	bob := newTab(t, browser, "bob")

	alice.login(pageURL, "alice", "alice-token")
	bob.login(pageURL, "bob", "bob-token")

	// A wrong token stays on the login form with the server's error.
	mallory := newTab(t, browser, "mallory")
	mallory.do("open the page", chromedp.Navigate(pageURL), chromedp.WaitVisible(css("#identity")))
	mallory.fill("#token", "wrong", "#login-btn") // identity is empty: the form refuses
	mallory.fill("#identity", "alice", "#login-btn")
	mallory.waitFor("the login error", `document.getElementById("login-error").textContent === "bad identity or token"`)
	if hidden := eval[bool](mallory, `document.getElementById("app-view").hidden`); !hidden {
		t.Fatal("mallory: the chat view is shown after a refused login")
	}

	// Following: the contact shows up with its state (s: online).
	alice.follow("bob", "")
	alice.contactOnline("bob", true)
	bob.follow("alice", "Ally")
	bob.contactOnline("alice", true)
	bob.waitFor("alice's nick", `document.querySelector('#contacts li[data-user="alice"] .name').textContent === "Ally (alice)"`)

	// Presence pushes: bob logs out (lo) and in again (li); at his login
	// bob gets li for alice.
	bob.click("#logout")
	bob.waitFor("the login form", `!document.getElementById("login-view").hidden`)
	alice.contactOnline("bob", false)
	alice.waitFor("bob's last seen", `document.querySelector('#contacts li[data-user="bob"] .sub').textContent.startsWith("last seen")`)
	bob.fill("#token", "bob-token", "#login-btn")
	bob.waitFor("the chat view", `document.getElementById("conn").dataset.state === "online"`)
	alice.contactOnline("bob", true)
	bob.contactOnline("alice", true)

	// 1:1 chat. bob has no conversation open: his page confirms delivery
	// (dm) but not reading (nm) until he opens it.
	alice.open("bob")
	alice.send("hello bob")
	alice.waitMark("hello bob", "delivered")
	bob.waitFor("an unread badge", `document.querySelector('#contacts li[data-user="alice"] .unread').textContent === "1"`)
	time.Sleep(300 * time.Millisecond)
	if got := alice.mark("hello bob"); got != "delivered" {
		t.Fatalf("alice: hello bob is %q before bob opened the chat, want delivered", got)
	}
	bob.open("alice")
	bob.waitMessage("alice", "hello bob")
	alice.waitMark("hello bob", "read")
	bob.waitFor("no unread badge", `document.querySelector('#contacts li[data-user="alice"] .unread').textContent === ""`)

	// With the conversation open on both sides, a message is read at once.
	bob.send("hi alice")
	alice.waitMessage("bob", "hi alice")
	bob.waitMark("hi alice", "read")

	// Status and picture: alice sets them, bob reads them when he opens
	// the conversation again.
	pic := pictureURL(t, color.RGBA{R: 0x25, G: 0x63, B: 0xeb, A: 0xff})
	alice.click("#profile summary")
	alice.fill("#status-input", "busy writing tests", "#status-form button")
	alice.waitFor("the status saved", `document.getElementById("profile-note").textContent === "Status saved."`)
	alice.do("picture", chromedp.SetValue(css("#picture-input"), pic), chromedp.Click(css("#picture-form button")))
	alice.waitFor("the picture saved", `document.getElementById("profile-note").textContent === "Picture saved."`)
	alice.waitFor("alice's own picture", `(document.querySelector("#me-avatar img") || {}).src === `+js(pic))
	alice.click("#profile summary")
	bob.open("alice") // reloads alice's state, status and picture
	bob.waitFor("alice's status", `document.getElementById("chat-sub").textContent === "online · busy writing tests"`)
	bob.waitFor("alice's picture", `(document.querySelector('#contacts li[data-user="alice"] .avatar img') || {}).src === `+js(pic))

	// A group with a third member on a plain LEMP client.
	carol := g.Login(t, "carol")
	alice.click("#new-group summary")
	alice.do("group form",
		chromedp.SendKeys(css("#group-id"), "team"),
		chromedp.SendKeys(css("#group-name"), "Team"),
		chromedp.SendKeys(css("#group-members"), "bob"),
		chromedp.Click(css("#group-create")),
	)
	alice.waitFor("the group conversation", `document.getElementById("chat-pane").dataset.peer === "team"`)
	alice.waitFor("the creation event", `[...document.querySelectorAll("#messages .sys")].some((e) => e.textContent === 'alice created the group "Team"')`)
	bob.waitFor("the group in bob's list", `document.querySelector('#groups li[data-group="team"] .name') !== null && document.querySelector('#groups li[data-group="team"] .name').textContent === "Team (team)"`)
	alice.fill("#add-member", "carol", "#add-member-btn")
	carol.Expect(`{"i":{"g":{"t":"a","i":"team","m":["carol"],"s":"alice"}}}`)
	alice.waitFor("carol in the member list", `document.getElementById("group-members-list").textContent === "Members: alice, bob, carol"`)

	alice.send("hello team")
	m := carol.Expect(`{"m":{"id":"*","s":"alice","r":"team","t":"t","c":"hello team","st":"*","p":"1","sc":"1","pc":"1"}}`)
	id := m["m"].(map[string]any)["id"].(string)
	carol.Send(`{"m":{"id":"carol-d1","dm":{"id":"` + id + `"}}}`)
	alice.waitMark("hello team", "delivered")
	bob.open("team")
	bob.waitMessage("alice", "hello team")
	alice.waitMark("hello team", "read")
	carol.Send(`{"m":{"id":"carol-1","r":"team","c":"thanks!"}}`)
	carol.Expect(`{"m":{"id":"carol-1","r":"carol","sr":{"id":"carol-1"}}}`)
	bob.waitMessage("carol", "thanks!")
	bob.waitFor("the sender's name", `[...document.querySelectorAll("#messages .msg")].some((e) => e.querySelector(".from") && e.querySelector(".from").textContent === "carol")`)
	// Both pages confirmed carol's message: dm, and nm as the group is open.
	expectReceipts(t, carol, "carol-1", "alice dm", "alice nm", "bob dm", "bob nm")

	// The server's errors are shown.
	alice.fill("#follow-user", "zed", "#follow-btn")
	alice.waitFor("the error banner", `!document.getElementById("banner").hidden && document.getElementById("banner-text").textContent === "user zed not found (404)"`)
	alice.open("bob")
	alice.send("while you are in the group")
	alice.waitMark("while you are in the group", "delivered") // bob has the group open
	bob.waitFor("an unread badge", `document.querySelector('#contacts li[data-user="alice"] .unread').textContent === "1"`)

	// A dropped connection: the page reconnects, logs in again and sends
	// what was written while it was away.
	alice.do("drop the socket", chromedp.Evaluate[chromedp.Void](`window.lempgw.client.ws.close()`))
	alice.send("sent while reconnecting")
	alice.waitFor("the reconnect", `document.getElementById("conn").dataset.state === "online"`)
	bob.open("alice")
	bob.waitMessage("alice", "sent while reconnecting")
	alice.waitMark("sent while reconnecting", "read")
	alice.contactOnline("bob", true)

	alice.do("hide the banner", chromedp.Click(css("#banner-close")))
	alice.clear("#follow-user")
	t.Logf("screenshot: %s", alice.screenshot("webclient.png"))

	// On a phone-sized screen the list and the conversation take turns.
	bob.do("phone viewport", chromedp.EmulateViewport(390, 760, chromedp.EmulateMobile))
	bob.waitFor("the conversation alone", `getComputedStyle(document.querySelector(".sidebar")).display === "none" && getComputedStyle(document.getElementById("back")).display !== "none"`)
	bob.click("#back")
	bob.waitFor("the list alone", `getComputedStyle(document.querySelector(".sidebar")).display !== "none" && getComputedStyle(document.getElementById("chat")).display === "none"`)
	bob.open("alice")
	bob.waitFor("the conversation alone", `getComputedStyle(document.querySelector(".sidebar")).display === "none"`)
	if state := eval[string](bob, `document.getElementById("conn").dataset.state`); state != "online" {
		t.Errorf("bob: connection shown as %q, want online", state)
	}
	t.Logf("screenshot: %s", bob.screenshot("webclient-phone.png"))

	// A newer login elsewhere closes the page's session with 4409.
	g.Login(t, "bob")
	bob.waitFor("the conflict message", `!document.getElementById("login-view").hidden && document.getElementById("login-error").textContent === "Logged in elsewhere: this session was closed."`)
	alice.contactOnline("bob", true) // the newer session is still online
}

// expectReceipts reads c's frames until it has seen a receipt for id of
// each kind in want ("bob dm", "alice nm"), in any order between senders.
func expectReceipts(t *testing.T, c *lemptest.Client, id string, want ...string) {
	t.Helper()
	var seen []string
	for len(want) > 0 {
		frame := c.Next()
		var f struct {
			M struct {
				S  string               `json:"s"`
				DM *struct{ ID string } `json:"dm"`
				NM *struct{ ID string } `json:"nm"`
			} `json:"m"`
		}
		if err := json.Unmarshal([]byte(frame), &f); err != nil {
			t.Fatalf("frame %s: %v", frame, err)
		}
		key := ""
		switch {
		case f.M.DM != nil && f.M.DM.ID == id:
			key = f.M.S + " dm"
		case f.M.NM != nil && f.M.NM.ID == id:
			key = f.M.S + " nm"
		default:
			t.Fatalf("want receipts %v for %s, got %s", want, id, frame)
		}
		i := slices.Index(want, key)
		if i < 0 {
			t.Fatalf("unexpected receipt %s (already seen: %s)", frame, strings.Join(seen, ", "))
		}
		want = slices.Delete(want, i, i+1)
		seen = append(seen, key)
	}
}

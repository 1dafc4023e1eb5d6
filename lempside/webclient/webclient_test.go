package webclient_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/lempgw/lempgw/bridge"
	"github.com/lempgw/lempgw/internal/lemptest"
	"github.com/lempgw/lempgw/lempside"
	"github.com/lempgw/lempgw/lempside/webclient"
	"github.com/lempgw/lempgw/state"
)

func get(t *testing.T, h http.Handler, method, path string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Result()
}

func readBody(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestHandlerServesThePage: the page, every file it references, the
// websocket path in config.json, and the headers that keep it to its own
// origin.
func TestHandlerServesThePage(t *testing.T) {
	h := webclient.Handler(webclient.WSPath("/chat"))
	r := get(t, h, http.MethodGet, "/")
	page := readBody(t, r)
	if r.StatusCode != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %s", r.StatusCode, r.Header.Get("Content-Type"))
	}
	csp := r.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	if r.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q", r.Header.Get("X-Content-Type-Options"))
	}

	// Every local file the page names is served with its type.
	types := map[string]string{".js": "text/javascript", ".css": "text/css"}
	refs := regexp.MustCompile(`(?:src|href)="([^":]+)"`).FindAllStringSubmatch(page, -1)
	if len(refs) < 3 {
		t.Fatalf("the page names %d files, want style.css, lemp.js and app.js: %v", len(refs), refs)
	}
	for _, m := range refs {
		r := get(t, h, http.MethodGet, "/"+m[1])
		body := readBody(t, r)
		ext := m[1][strings.LastIndex(m[1], "."):]
		if r.StatusCode != http.StatusOK || len(body) == 0 || !strings.HasPrefix(r.Header.Get("Content-Type"), types[ext]) {
			t.Errorf("GET /%s = %d %q, %d bytes", m[1], r.StatusCode, r.Header.Get("Content-Type"), len(body))
		}
	}

	r = get(t, h, http.MethodGet, "/config.json")
	if body := readBody(t, r); r.StatusCode != http.StatusOK || body != `{"ws_path":"/chat"}` || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("GET /config.json = %d %q %s", r.StatusCode, r.Header.Get("Content-Type"), body)
	}
	if body := readBody(t, get(t, webclient.Handler(), http.MethodGet, "/config.json")); body != `{"ws_path":"/lemp"}` {
		t.Errorf("default config.json = %s", body)
	}
	if r := get(t, h, http.MethodHead, "/app.js"); r.StatusCode != http.StatusOK {
		t.Errorf("HEAD /app.js = %d", r.StatusCode)
	}
	for _, path := range []string{"/nope.js", "/static/app.js", "/x/", "/../go.mod"} {
		if r := get(t, h, http.MethodGet, path); r.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, r.StatusCode)
		}
	}
	r = get(t, h, http.MethodPost, "/")
	if r.StatusCode != http.StatusMethodNotAllowed || r.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST / = %d, Allow %q", r.StatusCode, r.Header.Get("Allow"))
	}
}

// TestServerMountsWebClient: with Config.WebClient the LEMP listener serves
// the page at / and still the websocket at its path, to a browser Origin
// on the allow-list; without it, / is 404.
func TestServerMountsWebClient(t *testing.T) {
	g := lemptest.Start(t, state.NewMemory(), lemptest.Options{Server: lempside.Config{
		WebClient: true, Path: "/ws", AllowedOrigins: []string{"http://lemp.example.org"},
	}})
	base := "http://" + g.Srv.Addr().String()
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page := readBody(t, resp)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `<script src="app.js"`) {
		t.Fatalf("GET / = %d\n%s", resp.StatusCode, page)
	}
	resp, err = http.Get(base + "/config.json")
	if err != nil {
		t.Fatal(err)
	}
	if body := readBody(t, resp); body != `{"ws_path":"/ws"}` {
		t.Errorf("config.json = %s", body)
	}
	resp.Body.Close()

	g.User(t, "alice", false)
	ws, _, err := websocket.DefaultDialer.Dial(g.URL, http.Header{"Origin": {"http://lemp.example.org"}})
	if err != nil {
		t.Fatalf("websocket at %s: %v", g.URL, err)
	}
	defer ws.Close()
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"rq":{"id":"l","a":{"i":"alice","t":"alice-token"}}}`)); err != nil {
		t.Fatal(err)
	}
	if _, b, err := ws.ReadMessage(); err != nil || string(b) != `{"rp":{"id":"l","response":1}}` {
		t.Fatalf("login beside the web client: %s %v", b, err)
	}

	off := lemptest.Start(t, state.NewMemory(), lemptest.Options{})
	resp, err = http.Get("http://" + off.Srv.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET / without the web client = %d, want 404", resp.StatusCode)
	}
}

// TestWebClientNeedsItsOwnPath: the page is at /, so the websocket cannot be.
func TestWebClientNeedsItsOwnPath(t *testing.T) {
	hub := lempside.NewHub()
	core, err := bridge.New(bridge.Config{Store: state.NewMemory(), Local: hub, Log: slog.New(slog.DiscardHandler), Hash: lemptest.CheapHash})
	if err != nil {
		t.Fatal(err)
	}
	_, err = lempside.NewServer(lempside.Config{Path: "/", WebClient: true}, core, hub, nil)
	if err == nil || !strings.Contains(err.Error(), "lemp.path") {
		t.Fatalf("NewServer with the web client on path / = %v, want an error naming lemp.path", err)
	}
	srv, err := lempside.NewServer(lempside.Config{Path: "/", Listen: "127.0.0.1:0"}, core, hub, nil)
	if err != nil {
		t.Fatalf("path / without the web client: %v", err)
	}
	_ = srv.Shutdown(context.Background())
}

package webclient

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed static
var static embed.FS

// DefaultWSPath is the websocket path the page connects to unless WSPath
// says otherwise: lemp.path's default.
const DefaultWSPath = "/lemp"

// contentSecurityPolicy keeps the page to its own scripts and styles and its
// own origin's websocket; pictures are URLs chosen by users, so images may
// come from anywhere.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"img-src * data: blob:; connect-src 'self'; manifest-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Option tunes Handler.
type Option func(*options)

type options struct{ wsPath string }

// WSPath sets the websocket path (lemp.path) the page connects to, on the
// page's own host and scheme (ws for http, wss for https).
func WSPath(path string) Option { return func(o *options) { o.wsPath = path } }

// Handler serves the web client: the page at "/", its assets, and
// /config.json, which tells the page the websocket path. Anything else is
// 404; methods other than GET and HEAD get 405.
func Handler(opts ...Option) http.Handler {
	o := options{wsPath: DefaultWSPath}
	for _, f := range opts {
		f(&o)
	}
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree always has static/
	}
	files := http.FileServerFS(sub)
	config, err := json.Marshal(struct {
		WSPath string `json:"ws_path"`
	}{o.wsPath})
	if err != nil {
		panic(err) // a struct of one string always marshals
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// The files change with the binary, which sets no modification
		// time: make browsers ask again rather than keep a stale script.
		h.Set("Cache-Control", "no-cache")
		if r.URL.Path == "/config.json" {
			h.Set("Content-Type", "application/json")
			_, _ = w.Write(config)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/") && r.URL.Path != "/" {
			http.NotFound(w, r) // no directory listings
			return
		}
		files.ServeHTTP(w, r)
	})
}

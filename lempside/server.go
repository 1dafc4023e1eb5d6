package lempside

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lempgw/lempgw/bridge"
	"github.com/lempgw/lempgw/lempside/webclient"
)

// Config configures the LEMP websocket server. Zero values take the defaults
// noted on each field.
type Config struct {
	Listen         string        // default 127.0.0.1:8025
	Path           string        // default /lemp
	MaxPacketBytes int           // default 65536
	TLSCert        string        // wss when both TLSCert and TLSKey are set
	TLSKey         string        //
	AllowedOrigins []string      // browser Origins allowed; empty allows any ("*" too)
	WriteQueue     int           // outbound frames queued per connection; default 256
	PingInterval   time.Duration // websocket ping period; default 30s
	Registry       prometheus.Registerer
	Now            func() time.Time // default time.Now
	// WebClient serves the demo web client (package webclient) at "/"
	// beside the websocket at Path (issue 7).
	WebClient bool
	// Limits are the abuse limits (limits.go); the zero value limits nothing.
	Limits Limits
}

func (c *Config) defaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8025"
	}
	if c.Path == "" {
		c.Path = "/lemp"
	}
	if c.MaxPacketBytes <= 0 {
		c.MaxPacketBytes = 65536
	}
	if c.WriteQueue <= 0 {
		c.WriteQueue = 256
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 30 * time.Second
	}
	if c.PingInterval < minPingInterval {
		c.PingInterval = minPingInterval
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.Limits.defaults()
}

// Server is the LEMP websocket server.
type Server struct {
	cfg      Config
	core     *bridge.Core
	hub      *Hub
	log      *slog.Logger
	metrics  *metrics
	upgrader websocket.Upgrader
	http     *http.Server
	ln       net.Listener

	// Abuse limits (limits.go).
	trusted []netip.Prefix // proxies whose Limits.ProxyHeader is believed
	logins  *loginGuard    // nil: no login back-off
	perAddr addrConns

	mu       sync.Mutex
	conns    map[*conn]struct{}
	closing  bool
	wg       sync.WaitGroup
	shutOnce sync.Once
}

// NewServer returns a server for core; hub must be the Local the core was built with.
func NewServer(cfg Config, core *bridge.Core, hub *Hub, log *slog.Logger) (*Server, error) {
	cfg.defaults()
	if !strings.HasPrefix(cfg.Path, "/") {
		return nil, fmt.Errorf("lemp: path %q must start with /", cfg.Path)
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return nil, errors.New("lemp: tls_cert and tls_key go together")
	}
	if cfg.WebClient && cfg.Path == "/" {
		return nil, errors.New("lemp: the web client is served at /: lemp.path must be another path (or turn lemp.web_client off)")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	trusted, err := ParseTrustedProxies(cfg.Limits.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("limits: %w", err)
	}
	s := &Server{cfg: cfg, core: core, hub: hub, log: log, conns: make(map[*conn]struct{}),
		trusted: trusted, logins: newLoginGuard(cfg.Limits, cfg.Now),
		perAddr: addrConns{n: map[string]int{}, max: cfg.Limits.ConnectionsPerAddress}}
	m, err := newMetrics(cfg.Registry, hub)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	core.SetLimitObserver(m.limit) // group size, picture, queue
	s.upgrader = websocket.Upgrader{
		ReadBufferSize:  1024,
		WriteBufferSize: 1024,
		// Write buffers are borrowed for each write, so an idle
		// connection holds none.
		WriteBufferPool: &sync.Pool{},
		CheckOrigin:     s.checkOrigin,
	}
	mux := http.NewServeMux()
	mux.Handle(cfg.Path, s)
	if cfg.WebClient { // issue 7: the demo web client at "/", same origin as the websocket
		mux.Handle("/", webclient.Handler(webclient.WSPath(cfg.Path)))
	}
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	return s, nil
}

func (s *Server) now() time.Time { return s.cfg.Now() }

// checkOrigin allows requests without Origin (non-browser clients) and
// browser Origins on the allow-list (any when it is empty or has "*").
func (s *Server) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || len(s.cfg.AllowedOrigins) == 0 || slices.Contains(s.cfg.AllowedOrigins, "*") {
		return true
	}
	for _, o := range s.cfg.AllowedOrigins {
		if strings.EqualFold(o, origin) {
			return true
		}
	}
	s.log.Warn("websocket origin rejected", "origin", origin, "remote", r.RemoteAddr)
	return false
}

// Listen binds the listening socket, so address errors surface at start.
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("lemp.listen %s: %w", s.cfg.Listen, err)
	}
	if s.cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(s.cfg.TLSCert, s.cfg.TLSKey)
		if err != nil {
			ln.Close()
			return fmt.Errorf("lemp.tls_cert: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	s.ln = ln
	return nil
}

// Addr is the bound address (after Listen).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// URL is the websocket URL clients use (after Listen).
func (s *Server) URL() string {
	scheme := "ws"
	if s.cfg.TLSCert != "" {
		scheme = "wss"
	}
	return scheme + "://" + s.ln.Addr().String() + s.cfg.Path
}

// Serve accepts connections until Shutdown; it returns nil after Shutdown.
func (s *Server) Serve() error {
	if s.ln == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	err := s.http.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// ServeHTTP upgrades a request to a LEMP websocket and serves it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	handedOff := false
	defer func() {
		if !handedOff {
			s.wg.Done()
		}
	}()

	client := s.clientAddr(r)
	addr := addrKey(client)
	if !s.perAddr.acquire(addr) {
		s.metrics.limit(limitConnections)
		s.log.Warn("too many connections from one address", "client", addr, "limit", s.cfg.Limits.ConnectionsPerAddress)
		http.Error(w, "too many connections from your address", http.StatusTooManyRequests)
		return
	}
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.perAddr.release(addr)
		return // the upgrader has answered
	}
	log := s.log.With("remote", r.RemoteAddr)
	if client != peerAddr(r.RemoteAddr) {
		log = log.With("client", client.String()) // from the proxy header
	}
	c := newConn(s, ws, log, addr)
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	s.metrics.connections.Inc()
	// The connection runs on a goroutine of its own and this handler
	// returns: net/http then drops its buffered reader and writer (8 KiB
	// that an idle websocket would otherwise keep).
	handedOff = true
	go func() {
		defer s.wg.Done()
		defer s.perAddr.release(addr)
		defer func() {
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			s.metrics.connections.Dec()
		}()
		c.run()
	}()
}

// Shutdown stops accepting, closes every connection with 1001 (going away)
// and waits for their goroutines, or for ctx. It is idempotent.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	s.shutOnce.Do(func() {
		s.mu.Lock()
		s.closing = true
		conns := make([]*conn, 0, len(s.conns))
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()
		if s.http != nil {
			_ = s.http.Shutdown(ctx)
		}
		for _, c := range conns {
			c.closeWith(closeGoingAway, "server shutting down")
		}
		done := make(chan struct{})
		go func() { s.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			err = ctx.Err()
		}
	})
	return err
}

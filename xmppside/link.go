package xmppside

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"mellium.im/xmpp"
	"mellium.im/xmpp/component"
	"mellium.im/xmpp/jid"
)

// LinkConfig configures one XEP-0114 component link.
type LinkConfig struct {
	Address      string // the server's component port, host:port
	Domain       string // the component domain
	Secret       string
	ServerDomain string        // pinged for keepalive; default: Domain without its first label
	PingInterval time.Duration // keepalive period; default 30s
	PingTimeout  time.Duration // a ping unanswered this long drops the link; default 10s
	MinBackoff   time.Duration // first redial delay; default 200ms
	MaxBackoff   time.Duration // redial delay cap; default 30s
}

func (c *LinkConfig) defaults() error {
	if c.Address == "" || c.Domain == "" || c.Secret == "" {
		return errors.New("xmpp: component_address, domain and secret are required")
	}
	if c.ServerDomain == "" {
		if _, parent, ok := cut(c.Domain); ok {
			c.ServerDomain = parent
		} else {
			c.ServerDomain = c.Domain
		}
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 30 * time.Second
	}
	if c.PingTimeout <= 0 {
		c.PingTimeout = 10 * time.Second
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 200 * time.Millisecond
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 30 * time.Second
	}
	return nil
}

func cut(domain string) (first, rest string, ok bool) {
	for i := 0; i < len(domain); i++ {
		if domain[i] == '.' {
			return domain[:i], domain[i+1:], i+1 < len(domain)
		}
	}
	return domain, "", false
}

// wrapConn, when set (by tests only), wraps every dialled connection, to
// record the raw stream.
var wrapConn func(domain string, c net.Conn) net.Conn

// link is one supervised component stream: it dials, handshakes, serves
// inbound stanzas with handler, pings to detect a dead peer, and redials with
// backoff until its context ends. Whoever needs the session waits for up().
type link struct {
	cfg     LinkConfig
	log     *slog.Logger
	handler xmpp.Handler
	domain  jid.JID
	server  jid.JID

	mu       sync.Mutex
	sess     *xmpp.Session
	upCh     chan struct{} // closed while a session is up; replaced when it drops
	downCh   chan struct{} // closed when the current session drops
	redials  int
	onChange func(up bool)
}

func newLink(cfg LinkConfig, handler xmpp.Handler, log *slog.Logger) (*link, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	domain, err := jid.Parse(cfg.Domain)
	if err != nil || domain.Localpart() != "" || domain.Resourcepart() != "" {
		return nil, fmt.Errorf("xmpp.domain %q is not a domain", cfg.Domain)
	}
	server, err := jid.Parse(cfg.ServerDomain)
	if err != nil {
		return nil, fmt.Errorf("xmpp server domain %q: %w", cfg.ServerDomain, err)
	}
	return &link{
		cfg: cfg, log: log.With("component", cfg.Domain), handler: handler,
		domain: domain, server: server,
		upCh: make(chan struct{}), downCh: make(chan struct{}),
	}, nil
}

// up returns the live session and a channel closed when it drops, waiting
// for one until ctx ends.
func (l *link) up(ctx context.Context) (*xmpp.Session, <-chan struct{}, error) {
	for {
		l.mu.Lock()
		sess, upCh, downCh := l.sess, l.upCh, l.downCh
		l.mu.Unlock()
		if sess != nil {
			return sess, downCh, nil
		}
		select {
		case <-upCh:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
}

// current returns the live session, or nil while the link is down.
func (l *link) current() *xmpp.Session {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sess
}

// isUp reports whether a session is up now.
func (l *link) isUp() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sess != nil
}

// run dials and serves until ctx ends, redialling with jittered exponential
// backoff; a session that lasted a while resets the backoff.
func (l *link) run(ctx context.Context) {
	backoff := l.cfg.MinBackoff
	for ctx.Err() == nil {
		started := time.Now()
		err := l.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > time.Minute {
			backoff = l.cfg.MinBackoff
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		l.log.Warn("component link down; redialling", "err", err, "in", wait.Round(time.Millisecond))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
		backoff = min(backoff*2, l.cfg.MaxBackoff)
		l.mu.Lock()
		l.redials++
		l.mu.Unlock()
	}
}

// session runs one component session to its end.
func (l *link) session(ctx context.Context) error {
	d := net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", l.cfg.Address)
	if err != nil {
		return fmt.Errorf("dial %s: %w", l.cfg.Address, err)
	}
	if wrapConn != nil {
		conn = wrapConn(l.cfg.Domain, conn)
	}
	hctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	sess, err := component.NewSession(hctx, l.domain, []byte(l.cfg.Secret), conn)
	cancel()
	if err != nil {
		conn.Close()
		return fmt.Errorf("handshake as %s at %s: %w", l.cfg.Domain, l.cfg.Address, err)
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- sess.Serve(l.handler) }()
	l.setSession(sess)
	l.log.Info("component link up", "address", l.cfg.Address)
	defer func() {
		l.setSession(nil)
		_ = sess.Close()
		conn.Close()
	}()

	ticker := time.NewTicker(l.cfg.PingInterval)
	defer ticker.Stop()
	for {
		select {
		case err := <-served:
			if err == nil {
				err = errors.New("stream closed by the server")
			}
			return err
		case <-ticker.C:
			if err := l.ping(sctx, sess); err != nil {
				return fmt.Errorf("keepalive: %w", err)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ping sends an XEP-0199 ping to the server and waits for any answer (an
// error answer proves the link is alive too).
func (l *link) ping(ctx context.Context, sess *xmpp.Session) error {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.PingTimeout)
	defer cancel()
	resp, err := sess.SendIQElement(ctx, pingPayload(), iqHeader(l.domain, l.server, "get", newID()))
	if err != nil {
		return err
	}
	return resp.Close()
}

func (l *link) setSession(s *xmpp.Session) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s != nil {
		l.sess = s
		close(l.upCh)
		l.downCh = make(chan struct{})
	} else if l.sess != nil {
		l.sess = nil
		close(l.downCh)
		l.upCh = make(chan struct{})
	}
	if l.onChange != nil {
		l.onChange(s != nil)
	}
}

// drop closes sess if it is still the live session, so the link redials.
func (l *link) drop(sess *xmpp.Session) {
	l.mu.Lock()
	live := l.sess == sess
	l.mu.Unlock()
	if live {
		_ = sess.Conn().Close()
	}
}

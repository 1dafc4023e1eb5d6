package testenv

// Real XMPP servers (Prosody, ejabberd) for integration tests.
//
// StartProsody and StartEjabberd each start a private server from a
// temporary configuration: one virtual host, c2s and an XEP-0114 component
// listener on free loopback ports, two component domains sharing a secret
// (the ones lempgw connects as) and the server's own MUC service. The server
// runs as a child of the test process in its own process group; it is
// killed when the test ends (its data goes with the test's temporary
// directory) and, on Linux, when the test process dies. System services,
// their configuration and epmd are never used.
//
// Both kinds get the same names: virtual host XMPPDomain ("xmpp.test"),
// component domains "lemp.xmpp.test" and "rooms.xmpp.test" (one random
// secret), MUC service "conference.xmpp.test"; ports are random. Boot takes
// about 0.1s for Prosody and 1s for ejabberd.
//
// When a server is not installed (and apt-get cannot install it) tests skip,
// except when the CI environment variable is set: then they fail.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmpp"
	"mellium.im/xmpp/component"
	"mellium.im/xmpp/jid"
)

// The kinds of XMPP server, as in XMPPServer.Kind.
const (
	KindProsody  = "prosody"
	KindEjabberd = "ejabberd"
)

// EnvXMPPServers names the environment variable that limits
// ForEachXMPPServer and XMPPServers to some kinds, e.g. "prosody" or
// "prosody,ejabberd" (the default: both).
const EnvXMPPServers = "LEMPGW_TEST_XMPP_SERVERS"

// XMPPDomain is the virtual host of every test server: a reserved TLD
// (RFC 2606), so nothing can ever be routed to a real domain.
const XMPPDomain = "xmpp.test"

// xmppStartTimeout bounds how long a server may take to become ready; a
// cold ejabberd on a loaded CI machine is the slow case.
const xmppStartTimeout = 60 * time.Second

// XMPPServer is a private Prosody or ejabberd owned by one test.
type XMPPServer struct {
	Kind   string // KindProsody or KindEjabberd
	Domain string // the virtual host, XMPPDomain

	C2SAddr       string // 127.0.0.1:<port>, client connections (no TLS)
	ComponentAddr string // 127.0.0.1:<port>, XEP-0114 components

	ComponentDomain    string // "lemp.<Domain>", lempgw's component
	MUCComponentDomain string // "rooms.<Domain>", lempgw's group component
	ComponentSecret    string // the secret of both component domains

	MUCService string // "conference.<Domain>", the server's own MUC

	Dir        string // the instance's directory: config, data, logs
	ConfigFile string // the generated server configuration

	c2sPort, componentPort int

	// Set by the kind's constructor.
	newCmd   func() *exec.Cmd                                          // the server process
	ctl      func(ctx context.Context, args ...string) ([]byte, error) // prosodyctl / ejabberdctl
	ready    func(ctx context.Context) error                           // extra readiness check, may be nil
	logFiles []string                                                  // server logs, most useful first

	mu   sync.Mutex
	cmd  *exec.Cmd
	done <-chan struct{} // closed when cmd has exited
}

// ForEachXMPPServer runs fn as a subtest named after each server kind
// ("prosody", "ejabberd"), each with a fresh server that fn may share
// between its own subtests. $LEMPGW_TEST_XMPP_SERVERS limits the kinds.
func ForEachXMPPServer(t *testing.T, fn func(t *testing.T, s *XMPPServer)) {
	t.Helper()
	for _, kind := range XMPPKinds() {
		t.Run(kind, func(t *testing.T) {
			fn(t, StartXMPP(t, kind))
		})
	}
}

// XMPPServers starts one server of each kind (concurrently) and returns
// them; a kind that is not installed is left out (or fails the test in CI),
// and the test is skipped when none is.
func XMPPServers(t *testing.T) []*XMPPServer {
	t.Helper()
	kinds := XMPPKinds()
	type result struct {
		s       *XMPPServer
		missing error
		err     error
	}
	results := make([]result, len(kinds))
	var wg sync.WaitGroup
	for i, kind := range kinds {
		wg.Go(func() {
			r := &results[i]
			var p xmppPrereq
			if p, r.missing = findXMPP(kind); r.missing != nil {
				if errors.Is(r.missing, errUnknownKind) {
					r.err, r.missing = r.missing, nil
				}
				return
			}
			r.s, r.err = startXMPP(t, p)
		})
	}
	wg.Wait()
	var servers []*XMPPServer
	var missing []string
	for i, r := range results {
		if r.s != nil {
			t.Cleanup(r.s.Kill)
			servers = append(servers, r.s)
		}
		if r.err != nil {
			t.Errorf("testenv: %v", r.err)
		}
		if r.missing != nil {
			missing = append(missing, fmt.Sprintf("%s: %v", kinds[i], r.missing))
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	if len(missing) > 0 && (os.Getenv("CI") != "" || len(servers) == 0) {
		xmppUnavailable(t, strings.Join(missing, "; "))
	}
	return servers
}

// XMPPKinds lists the server kinds to test: $LEMPGW_TEST_XMPP_SERVERS or
// both.
func XMPPKinds() []string {
	v := strings.TrimSpace(os.Getenv(EnvXMPPServers))
	if v == "" {
		return []string{KindProsody, KindEjabberd}
	}
	var kinds []string
	for k := range strings.SplitSeq(v, ",") {
		if k = strings.TrimSpace(k); k != "" {
			kinds = append(kinds, k)
		}
	}
	return kinds
}

// StartXMPP starts a server of the given kind (StartProsody or
// StartEjabberd).
func StartXMPP(t testing.TB, kind string) *XMPPServer {
	t.Helper()
	p, err := findXMPP(kind)
	if errors.Is(err, errUnknownKind) {
		t.Fatalf("testenv: %v", err)
	}
	if err != nil {
		xmppUnavailable(t, fmt.Sprintf("%s: %v", kind, err))
	}
	begin := time.Now()
	s, err := startXMPP(t, p)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(s.Kill)
	t.Logf("testenv: %s ready in %v (c2s %s, components %s, %s)", kind, time.Since(begin).Round(time.Millisecond), s.C2SAddr, s.ComponentAddr, s.Dir)
	return s
}

// StartProsody starts a private Prosody; see XMPPServer.
func StartProsody(t testing.TB) *XMPPServer {
	t.Helper()
	return StartXMPP(t, KindProsody)
}

// StartEjabberd starts a private ejabberd; see XMPPServer.
func StartEjabberd(t testing.TB) *XMPPServer {
	t.Helper()
	return StartXMPP(t, KindEjabberd)
}

// xmppPrereq is what a kind needs installed, found by findXMPP.
type xmppPrereq interface {
	kind() string
	// newServer fills in s (ports, domains and directory are set) and writes
	// its configuration.
	newServer(s *XMPPServer) error
}

func findXMPP(kind string) (xmppPrereq, error) {
	switch kind {
	case KindProsody:
		return findProsody()
	case KindEjabberd:
		return findEjabberd()
	}
	return nil, fmt.Errorf("%w %q (want %q or %q)", errUnknownKind, kind, KindProsody, KindEjabberd)
}

var errUnknownKind = errors.New("unknown XMPP server kind")

// startXMPP creates and starts a server in a directory of t's, trying fresh
// ports when another process took one of those picked.
func startXMPP(t testing.TB, p xmppPrereq) (*XMPPServer, error) {
	base := t.TempDir()
	var err error
	for attempt := range 3 {
		dir := filepath.Join(base, fmt.Sprintf("%s-%d", p.kind(), attempt))
		var s *XMPPServer
		if s, err = newXMPPServer(p, dir); err != nil {
			return nil, err
		}
		if err = s.start(); err == nil {
			return s, nil
		}
		if !errors.Is(err, errPortInUse) {
			return nil, err
		}
	}
	return nil, err
}

func newXMPPServer(p xmppPrereq, dir string) (*XMPPServer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	secret, err := randomHex(12)
	if err != nil {
		return nil, err
	}
	s := &XMPPServer{
		Kind:               p.kind(),
		Domain:             XMPPDomain,
		C2SAddr:            net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])),
		ComponentAddr:      net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1])),
		ComponentDomain:    "lemp." + XMPPDomain,
		MUCComponentDomain: "rooms." + XMPPDomain,
		ComponentSecret:    secret,
		MUCService:         "conference." + XMPPDomain,
		Dir:                dir,
		c2sPort:            ports[0],
		componentPort:      ports[1],
	}
	if err := p.newServer(s); err != nil {
		return nil, fmt.Errorf("configuring %s: %w", s.Kind, err)
	}
	return s, nil
}

// JID returns user@Domain.
func (s *XMPPServer) JID(user string) jid.JID {
	j, err := jid.New(user, s.Domain, "")
	if err != nil {
		panic(fmt.Sprintf("testenv: bad user %q: %v", user, err))
	}
	return j
}

// Register creates the account user@Domain with password (prosodyctl
// register / ejabberdctl register).
func (s *XMPPServer) Register(t testing.TB, user, password string) {
	t.Helper()
	s.Ctl(t, "register", user, s.Domain, password)
}

// Ctl runs prosodyctl (with this instance's --config) or ejabberdctl
// (against this instance's node) with args, fails the test unless it
// succeeds, and returns its output.
func (s *XMPPServer) Ctl(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := s.ctl(ctx, args...)
	if err != nil {
		t.Fatalf("testenv: %s %s: %v: %s\n%s", s.ctlName(), strings.Join(args, " "), err, strings.TrimSpace(string(out)), s.Logs())
	}
	return string(out)
}

func (s *XMPPServer) ctlName() string {
	if s.Kind == KindEjabberd {
		return "ejabberdctl"
	}
	return "prosodyctl"
}

// Restart stops the server and starts it again with the same configuration,
// ports and data (accounts survive), waiting until it is ready. Connected
// clients and components are disconnected.
func (s *XMPPServer) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		t.Fatalf("testenv: restart: %v", err)
	}
}

// Stop shuts the server down gracefully (SIGTERM) and waits for it to exit,
// killing it after 15s, and anything it left in its process group. Stopping
// a stopped server does nothing.
func (s *XMPPServer) Stop() { s.signal(syscall.SIGTERM, 15*time.Second) }

// Kill kills the server (SIGKILL, like a crash) and waits for it to exit.
func (s *XMPPServer) Kill() { s.signal(syscall.SIGKILL, 0) }

func (s *XMPPServer) signal(sig syscall.Signal, grace time.Duration) {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	killRest := snapshotTree(cmd.Process.Pid)
	defer killRest()
	_ = cmd.Process.Signal(sig)
	if grace > 0 {
		select {
		case <-done:
		case <-time.After(grace):
			_ = cmd.Process.Kill()
			<-done
		}
	} else {
		<-done
	}
	killProcessGroup(cmd.Process.Pid)
}

// Logs returns the tail of the server's logs, for failure messages.
func (s *XMPPServer) Logs() string {
	var b strings.Builder
	for _, f := range append(s.logFiles, filepath.Join(s.Dir, "stdout.log")) {
		tail := tailFile(f, 40)
		if tail == "" {
			continue
		}
		fmt.Fprintf(&b, "--- %s\n%s\n", f, tail)
	}
	if b.Len() == 0 {
		return "(no server logs)"
	}
	return b.String()
}

var errPortInUse = errors.New("port in use")

// start runs the server process and waits until it is ready.
func (s *XMPPServer) start() error {
	out, err := os.OpenFile(filepath.Join(s.Dir, "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := s.newCmd()
	// A file, not a pipe: Wait must not wait for helper processes (Erlang
	// port programs) that inherit the output.
	cmd.Stdout, cmd.Stderr = out, out
	setParentDeath(cmd)
	setProcessGroup(cmd)
	done, err := startProcess(cmd)
	_ = out.Close()
	if err != nil {
		return fmt.Errorf("starting %s: %w", s.Kind, err)
	}
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), xmppStartTimeout)
	defer cancel()
	var lastErr error
	for i := 0; ; i++ {
		if lastErr = s.checkReady(ctx); lastErr == nil {
			return nil
		}
		if i%5 == 4 && s.portConflict() {
			s.Kill()
			return fmt.Errorf("%s: %w: %s", s.Kind, errPortInUse, s.Logs())
		}
		select {
		case <-done:
			s.mu.Lock()
			s.cmd = nil
			s.mu.Unlock()
			killProcessGroup(cmd.Process.Pid)
			if s.portConflict() {
				return fmt.Errorf("%s: %w: %s", s.Kind, errPortInUse, s.Logs())
			}
			return fmt.Errorf("%s exited during startup (%v):\n%s", s.Kind, cmd.ProcessState, s.Logs())
		case <-ctx.Done():
			s.Kill()
			return fmt.Errorf("%s not ready within %v: %v\n%s", s.Kind, xmppStartTimeout, lastErr, s.Logs())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// checkReady opens a client stream to Domain and a component stream to
// each component domain, then runs the kind's own check.
func (s *XMPPServer) checkReady(ctx context.Context) error {
	if err := probeStream(ctx, s.C2SAddr, "jabber:client", s.Domain); err != nil {
		return fmt.Errorf("c2s %s: %w", s.C2SAddr, err)
	}
	for _, d := range []string{s.ComponentDomain, s.MUCComponentDomain} {
		if err := probeStream(ctx, s.ComponentAddr, component.NSAccept, d); err != nil {
			return fmt.Errorf("component %s for %s: %w", s.ComponentAddr, d, err)
		}
	}
	if s.ready != nil {
		return s.ready(ctx)
	}
	return nil
}

// portConflict reports whether the logs say a listener could not bind.
func (s *XMPPServer) portConflict() bool {
	for _, f := range append(s.logFiles, filepath.Join(s.Dir, "stdout.log")) {
		l := strings.ToLower(tailFile(f, 200))
		if strings.Contains(l, "address already in use") || strings.Contains(l, "eaddrinuse") ||
			strings.Contains(l, "failed to open server port") {
			return true
		}
	}
	return false
}

// probeStream opens an XML stream to domain in namespace ns and waits for
// the server's answer: stream features for a client stream, a stream header
// with an id (the handshake challenge) for a component stream. A stream
// error (such as host-unknown while the server is still loading) fails.
func probeStream(ctx context.Context, addr, ns, domain string) error {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	version := ""
	if ns == "jabber:client" {
		version = " version='1.0'"
	}
	header := fmt.Sprintf("<?xml version='1.0'?><stream:stream to='%s' xmlns='%s' xmlns:stream='http://etherx.jabber.org/streams'%s>", domain, ns, version)
	if _, err := io.WriteString(c, header); err != nil {
		return err
	}
	dec := xml.NewDecoder(c)
	for {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch {
		case start.Name.Local == "stream":
			if ns == component.NSAccept {
				for _, a := range start.Attr {
					if a.Name.Local == "id" && a.Value != "" {
						return nil
					}
				}
				return errors.New("component stream header without id")
			}
		case start.Name.Local == "features":
			return nil
		case start.Name.Local == "error":
			var e struct {
				Inner []byte `xml:",innerxml"`
			}
			_ = dec.DecodeElement(&e, &start)
			return fmt.Errorf("stream error: %s", e.Inner)
		default:
			return fmt.Errorf("unexpected <%s>", start.Name.Local)
		}
	}
}

// ClientSession logs user in on s's c2s port and returns the session,
// closed when the test ends; see DialClient.
func ClientSession(ctx context.Context, t testing.TB, s *XMPPServer, user, password string) *xmpp.Session {
	t.Helper()
	sess, err := DialClient(ctx, s, user, password)
	if err != nil {
		t.Fatalf("testenv: logging in %s: %v\n%s", s.JID(user), err, s.Logs())
	}
	t.Cleanup(func() { closeSession(sess) })
	return sess
}

// DialClient connects to s.C2SAddr and negotiates a client session for
// user@Domain: SASL PLAIN on the plain TCP connection, then resource
// binding. Close the session, then its Conn, when done.
//
// mellium only offers SASL on a secure stream, so the loopback connection
// is declared secure (xmpp.Secure) rather than wrapped in TLS; the servers
// are configured to allow PLAIN without TLS.
func DialClient(ctx context.Context, s *XMPPServer, user, password string) (*xmpp.Session, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.C2SAddr)
	if err != nil {
		return nil, err
	}
	features := []xmpp.StreamFeature{
		xmpp.SASL("", password, sasl.Plain),
		xmpp.BindResource(),
	}
	sess, err := xmpp.NewSession(ctx, jid.MustParse(s.Domain), s.JID(user), conn, xmpp.Secure,
		xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
			return xmpp.StreamConfig{Features: features}
		}))
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	return sess, nil
}

// ComponentSession connects to s.ComponentAddr as the component domain
// (s.ComponentDomain or s.MUCComponentDomain) and returns the session,
// closed when the test ends; see DialComponent.
func ComponentSession(ctx context.Context, t testing.TB, s *XMPPServer, domain string) *xmpp.Session {
	t.Helper()
	sess, err := DialComponent(ctx, s, domain)
	if err != nil {
		t.Fatalf("testenv: connecting component %s: %v\n%s", domain, err, s.Logs())
	}
	t.Cleanup(func() { closeSession(sess) })
	return sess
}

// DialComponent performs the XEP-0114 handshake for domain with
// s.ComponentSecret. Stanzas the component sends need an explicit from in
// domain (ejabberd rejects the stream otherwise; mellium only fills in from
// on server-to-server streams). Close the session, then its Conn, when done.
func DialComponent(ctx context.Context, s *XMPPServer, domain string) (*xmpp.Session, error) {
	addr, err := jid.Parse(domain)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.ComponentAddr)
	if err != nil {
		return nil, err
	}
	sess, err := component.NewSession(ctx, addr, []byte(s.ComponentSecret), conn)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	return sess, nil
}

func closeSession(sess *xmpp.Session) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = sess.Close()
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second): // a stuck write: closing the conn unblocks it
	}
	_ = sess.Conn().Close()
	<-done
}

// runTool runs a short-lived helper (prosodyctl, an ejabberdctl node) in its
// own process group, killing the group when ctx ends.
func runTool(ctx context.Context, cmd *exec.Cmd) ([]byte, error) {
	out := &tailBuffer{max: 64 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 2 * time.Second
	setParentDeath(cmd)
	setProcessGroup(cmd)
	done, err := startProcess(cmd)
	if err != nil {
		return nil, err
	}
	select {
	case <-done:
	case <-ctx.Done():
		killRest := snapshotTree(cmd.Process.Pid)
		killProcessGroup(cmd.Process.Pid)
		<-done
		killRest()
		return []byte(out.all()), fmt.Errorf("%s: %w", filepath.Base(cmd.Path), ctx.Err())
	}
	killProcessGroup(cmd.Process.Pid)
	if !cmd.ProcessState.Success() {
		return []byte(out.all()), fmt.Errorf("%s: %v", filepath.Base(cmd.Path), cmd.ProcessState)
	}
	return []byte(out.all()), nil
}

func (w *tailBuffer) all() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.b)
}

// cleanEnv is the test process's environment without variables that would
// point a server at system configuration, plus extra.
func cleanEnv(home string, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "HOME" || strings.HasPrefix(k, "ERL_") || strings.HasPrefix(k, "EJABBERD") ||
			strings.HasPrefix(k, "PROSODY") || strings.HasPrefix(k, "CONTRIB_MODULES") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "HOME="+home)
	return append(env, extra...)
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// tailFile returns the last n lines of a file ("" if it cannot be read).
func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const max = 64 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		_, _ = f.Seek(fi.Size()-max, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return lastLines(string(b), n)
}

func xmppUnavailable(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("testenv: XMPP servers are required in CI: %s", msg)
	}
	t.Skipf("testenv: skipping, XMPP server not available (%s); install the prosody and ejabberd packages or limit the kinds with %s", msg, EnvXMPPServers)
}

// findBinary looks name up in PATH, then in the Debian locations.
func findBinary(name string, dirs ...string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

var aptInstalls struct {
	mu   sync.Mutex
	done map[string]error
}

// aptInstallPackage installs a Debian package once per process when we run
// as root, with a policy-rc.d that keeps its system service from starting.
func aptInstallPackage(pkg string) error {
	if os.Geteuid() != 0 {
		return errors.New("not root, not installing with apt-get")
	}
	aptInstalls.mu.Lock()
	defer aptInstalls.mu.Unlock()
	if err, ok := aptInstalls.done[pkg]; ok {
		return err
	}
	err := aptInstallNoStart(pkg)
	if aptInstalls.done == nil {
		aptInstalls.done = map[string]error{}
	}
	aptInstalls.done[pkg] = err
	return err
}

func aptInstallNoStart(pkg string) error {
	apt, err := exec.LookPath("apt-get")
	if err != nil {
		return errors.New("apt-get not found")
	}
	const policy = "/usr/sbin/policy-rc.d"
	if _, err := os.Stat(policy); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(policy, []byte("#!/bin/sh\n# lempgw testenv: no service starts during apt-get install\nexit 101\n"), 0o755); err != nil {
			return fmt.Errorf("writing %s: %w", policy, err)
		}
		defer os.Remove(policy)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for _, args := range [][]string{{"update"}, {"install", "-y", "--no-install-recommends", pkg}} {
		cmd := exec.CommandContext(ctx, apt, args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get %s: %v: %s", strings.Join(args, " "), err, lastLines(string(out), 5))
		}
	}
	return nil
}

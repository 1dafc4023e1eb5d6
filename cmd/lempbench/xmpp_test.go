package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"mellium.im/xmlstream"

	"github.com/lempgw/lempgw/bridge"
	"github.com/lempgw/lempgw/internal/lemptest"
	"github.com/lempgw/lempgw/internal/testenv"
	"github.com/lempgw/lempgw/state"
	"github.com/lempgw/lempgw/xmppside"
)

// bridgedGateway is an in-process gateway linked as a component to srv.
func bridgedGateway(t *testing.T, srv *testenv.XMPPServer) *lemptest.Gateway {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var comp *xmppside.Component
	g := lemptest.Start(t, state.NewMemory(), lemptest.Options{Remote: func(core *bridge.Core) {
		var err error
		comp, err = xmppside.New(xmppside.Config{
			Link: xmppside.LinkConfig{Address: srv.ComponentAddr, Domain: srv.ComponentDomain, Secret: srv.ComponentSecret},
			Core: core, Registry: prometheus.NewRegistry(),
			Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		})
		if err != nil {
			t.Fatal(err)
		}
		core.SetRemote(comp)
		wg.Go(func() { comp.Run(ctx) })
	}})
	t.Cleanup(func() { cancel(); wg.Wait() })
	for deadline := time.Now().Add(30 * time.Second); !comp.Up(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("component link not up\n%s", srv.Logs())
		}
	}
	g.User(t, "admin", true)
	return g
}

// TestXMPPScenarios runs the three scenarios with Jabber users against a
// real Prosody (accounts by in-band registration) and a gateway linked to
// it, and checks that every message was counted once with its receipts.
func TestXMPPScenarios(t *testing.T) {
	srv := testenv.StartBenchXMPP(t, testenv.KindProsody)
	g := bridgedGateway(t, srv)
	for i, sc := range []string{"xmpp-xmpp", "lemp-xmpp", "xmpp-lemp"} {
		t.Run(sc, func(t *testing.T) {
			cfg := config{
				URL: g.URL, Admin: "admin", AdminToken: "admin-token", Scenario: sc,
				N: 150, Pairs: 2, Window: 8, Duration: 30 * time.Second, Drain: 15 * time.Second, Parallel: 4,
				Prefix: "x" + string(rune('a'+i)), XMPPAddr: srv.C2SAddr, XMPPDomain: srv.Domain,
				GatewayDomain: srv.ComponentDomain, XMPPRegister: true,
				PID: os.Getpid(), ServerPID: srv.PID(),
			}
			r, err := runScenario(cfg)
			if err != nil {
				t.Fatalf("%v\n%s", err, srv.Logs())
			}
			if r.Errors != 0 || !r.Verified || r.Lost != 0 || r.Duplicates != 0 {
				t.Fatalf("errors %v, verified %v, lost %d, dups %d", r.ErrorList, r.Verified, r.Lost, r.Duplicates)
			}
			if r.Sent != 300 || r.Delivered != 300 || r.Acked != 300 {
				t.Errorf("sent %d delivered %d acked %d, want 300 each", r.Sent, r.Delivered, r.Acked)
			}
			wantSR := int64(0)
			if sc == "lemp-xmpp" {
				wantSR = 300
			}
			if r.ServerAcks != wantSR {
				t.Errorf("sr %d, want %d", r.ServerAcks, wantSR)
			}
			if r.Rate <= 0 || r.P50ms <= 0 || r.P99ms < r.P50ms || r.P999ms < r.P99ms {
				t.Errorf("rate %v p50 %v p99 %v p999 %v", r.Rate, r.P50ms, r.P99ms, r.P999ms)
			}
			if r.ServerCPUSecs <= 0 || r.ServerRSSKiB <= 0 || r.GatewayRSSKiB <= 0 {
				t.Errorf("server CPU %v s, server RSS %d KiB, gateway RSS %d KiB", r.ServerCPUSecs, r.ServerRSSKiB, r.GatewayRSSKiB)
			}
			var buf bytes.Buffer
			printTable(&buf, r)
			if !strings.Contains(buf.String(), "yes: every message id arrived once") || !strings.Contains(buf.String(), "XMPP server CPU") {
				t.Errorf("table:\n%s", buf.String())
			}
		})
	}
	// Run again with the same prefix: the accounts exist (registration
	// answers conflict) and are logged in.
	cfg := config{Scenario: "xmpp-xmpp", N: 5, Pairs: 1, Window: 1, Duration: 10 * time.Second, Drain: 5 * time.Second,
		Parallel: 2, Prefix: "xa", XMPPAddr: srv.C2SAddr, XMPPDomain: srv.Domain, XMPPRegister: true}
	if r, err := runScenario(cfg); err != nil || !r.Verified {
		t.Fatalf("rerun with existing accounts: %v %+v", err, r)
	}
}

// TestRegistrationNotOffered: against a server without in-band
// registration, creating a Jabber user fails and says why.
func TestRegistrationNotOffered(t *testing.T) {
	srv := testenv.StartProsody(t) // the tests' configuration: no registration
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := dialXMPP(ctx, srv.C2SAddr, srv.Domain, "nobody", true)
	if err == nil || !strings.Contains(err.Error(), "does not offer in-band registration") {
		t.Fatalf("got %v, want an error about in-band registration", err)
	}
	// A user that exists logs in without registration.
	srv.Register(t, "bob", passwordFor("bob"))
	x, err := dialXMPP(ctx, srv.C2SAddr, srv.Domain, "bob", false)
	if err != nil {
		t.Fatal(err)
	}
	x.close()
}

// TestServeXMPP starts a bench server the way scripts/bench.sh does,
// registers and logs a user in on it, and checks that it is gone once the
// context ends.
func TestServeXMPP(t *testing.T) {
	if _, err := testenv.NewBenchXMPP("nope", t.TempDir()); err == nil {
		t.Fatal("unknown kind accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- serveXMPP(ctx, testenv.KindProsody, t.TempDir(), pw); pw.Close() }()
	vars := map[string]string{}
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		vars[k] = strings.Trim(v, "'")
		if k == "XMPP_READY" {
			break
		}
	}
	if vars["XMPP_READY"] != "1" {
		cancel()
		if err := <-errc; testenvMissing(err) {
			t.Skipf("no Prosody: %v", err)
		}
		t.Fatalf("no XMPP_READY line; got %v", vars)
	}
	for _, k := range []string{"XMPP_KIND", "XMPP_C2S", "XMPP_COMPONENT", "XMPP_DOMAIN", "XMPP_GATEWAY_DOMAIN", "XMPP_SECRET", "XMPP_PID", "XMPP_DIR"} {
		if vars[k] == "" {
			t.Errorf("%s missing: %v", k, vars)
		}
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer dcancel()
	x, err := dialXMPP(dctx, vars["XMPP_C2S"], vars["XMPP_DOMAIN"], "carol", true)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	x.close()
	pid, err := strconv.Atoi(vars["XMPP_PID"])
	if err != nil {
		t.Fatalf("XMPP_PID: %v", err)
	}
	if _, err := cpuSeconds(pid); err != nil {
		t.Errorf("XMPP_PID %d: %v", pid, err)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("server %d still running after the context ended", pid)
	}
}

func testenvMissing(err error) bool {
	return err != nil && strings.Contains(err.Error(), testenv.ErrXMPPMissing.Error()) && os.Getenv("CI") == ""
}

func TestParseStanza(t *testing.T) {
	cases := []struct {
		in   string
		want stanzaInfo
		err  bool
	}{
		{`<message from="a@x/r" id="m1" type="chat"><body>hi</body><request xmlns="urn:xmpp:receipts"/></message>`,
			stanzaInfo{Name: "message", From: "a@x/r", ID: "m1", Type: "chat", Body: true, Request: true}, false},
		{`<message from="b@x" id="d1"><received xmlns="urn:xmpp:receipts" id="m1"/></message>`,
			stanzaInfo{Name: "message", From: "b@x", ID: "d1", Received: "m1"}, false},
		{`<message type="error" id="m2"><body>x</body><error type="cancel"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/><text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">gone</text></error></message>`,
			stanzaInfo{Name: "message", ID: "m2", Type: "error", Body: true, ErrorCond: "item-not-found"}, false},
		// A body or receipt deeper down (a forwarded copy) is not this stanza's.
		{`<message id="c1"><sent><forwarded><message><body>x</body><received xmlns="urn:xmpp:receipts" id="z"/></message></forwarded></sent></message>`,
			stanzaInfo{Name: "message", ID: "c1"}, false},
		{`<iq type="result" id="r1"/>`, stanzaInfo{Name: "iq", Type: "result", ID: "r1"}, false},
		{`<message id="m3"><body>cut`, stanzaInfo{Name: "message", ID: "m3", Body: true}, true},
		{`<message id="m4"><body></wrong></message>`, stanzaInfo{Name: "message", ID: "m4", Body: true}, true},
	}
	// A reader that ends inside the stanza (as mellium's does at the end of
	// the stream) is an error, not a stanza.
	if _, err := parseStanza(xml.StartElement{Name: xml.Name{Local: "message"}}, xmlstream.Token(xml.CharData("x"))); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated reader: %v", err)
	}
	for _, c := range cases {
		d := xmlDecoder(c.in)
		start, ok := firstStart(d)
		if !ok {
			t.Fatalf("%s: no start element", c.in)
		}
		got, err := parseStanza(start, d)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("%s:\n got %+v, %v\nwant %+v, error %v", c.in, got, err, c.want, c.err)
		}
	}
}

func TestParseRegisterResult(t *testing.T) {
	for in, want := range map[string]string{
		`<iq type="result" id="lempbench-reg"/>`: "",
		`<iq type="error" id="lempbench-reg"><error type="cancel"><conflict xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`:       errUserExists.Error(),
		`<iq type="error" id="lempbench-reg"><error type="wait"><policy-violation xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`: "registration refused: policy-violation",
		`<iq type="error"/>`:           "registration refused: no condition",
		`<iq type="get"/>`:             `registration answer of type "get"`,
		`<message type="result"/>`:     "registration: got <message>, want the iq answer",
		`<iq type="result"><query>`:    "registration answer: XML syntax error on line 1: unexpected EOF",
		`<iq type="result"></query>`:   "registration answer: XML syntax error on line 1: element <iq> closed by </query>",
		`<iq type='result' id='x'/>  `: "",
	} {
		d := xmlDecoder(in)
		start, _ := firstStart(d)
		err := parseRegisterResult(start, d)
		if got := errString(err); got != want {
			t.Errorf("%s: got %q, want %q", in, got, want)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestUsageXMPP(t *testing.T) {
	for _, args := range [][]string{
		{"-scenario", "xmpp-xmpp"}, // no -xmpp-c2s
		{"-scenario", "xmpp-xmpp", "-xmpp-c2s", "10.0.0.1:5222", "-xmpp-domain", "x.test"},
		{"-scenario", "xmpp-xmpp", "-xmpp-c2s", "127.0.0.1", "-xmpp-domain", "x.test"},
		{"-scenario", "lemp-xmpp", "-admin-token", "x", "-xmpp-c2s", "127.0.0.1:5222", "-xmpp-domain", "x.test"}, // no -gateway-domain
		{"xmpp-server", "-kind", "openfire"},
		{"xmpp-server", "extra"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("%q: exit %d, want 2 (%s)", args, code, errb.String())
		}
	}
	// Nothing listens: a clear failure, exit 1.
	var out, errb bytes.Buffer
	if code := run([]string{"-scenario", "xmpp-xmpp", "-xmpp-c2s", "127.0.0.1:1", "-xmpp-domain", "x.test", "-pairs", "1"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "Jabber logins failed") {
		t.Errorf("exit %d: %s", code, errb.String())
	}
}

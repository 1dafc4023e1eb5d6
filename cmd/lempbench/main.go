// Command lempbench is a load generator for lempgw. It creates its own
// users (LEMP users through an admin connection, Jabber users by XEP-0077
// in-band registration), runs one named scenario against a gateway and an
// XMPP server on loopback addresses, verifies that every message arrived
// exactly once, and prints a table (and, with -json, a JSON object).
//
//	lempbench -url ws://127.0.0.1:8025/lemp -admin admin -admin-token T \
//	    -scenario lemp-lemp|idle|group-fanout [-n N] [-duration D] [-window W] [-pid PID] [-json]
//	lempbench -scenario xmpp-xmpp|lemp-xmpp|xmpp-lemp -xmpp-c2s 127.0.0.1:5222 -xmpp-domain xmpp.test \
//	    [-gateway-domain lemp.xmpp.test] [-server-pid PID] ...
//	lempbench xmpp-server -kind prosody|ejabberd [-dir DIR]
//
// With -pid (-server-pid), the gateway's (the XMPP server's) CPU seconds and
// peak RSS cover the measured phase only (from after user creation and
// login to the end of the scenario). xmpp-server starts a private Prosody or
// ejabberd for the bench (see serveXMPP) and prints its addresses.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole command; it returns the exit status (0 ok, 1 run failed
// or not verified, 2 usage).
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "xmpp-server":
			return runXMPPServer(args[1:], stdout, stderr)
		case "report":
			return runReport(args[1:], stdout, stderr)
		}
	}
	fs := flag.NewFlagSet("lempbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	var asJSON bool
	var resultsFile string
	fs.StringVar(&cfg.URL, "url", "ws://127.0.0.1:8025/lemp", "gateway LEMP websocket URL (loopback only)")
	fs.StringVar(&cfg.Admin, "admin", "admin", "admin identity used to create the test users")
	fs.StringVar(&cfg.AdminToken, "admin-token", "", "admin token")
	fs.StringVar(&cfg.Scenario, "scenario", "lemp-lemp", "lemp-lemp, lemp-xmpp, xmpp-lemp, xmpp-xmpp, idle or group-fanout")
	fs.IntVar(&cfg.N, "n", 0, "1:1 scenarios: messages per pair (0: until -duration); idle: sessions (default 100); group-fanout: messages (default 100)")
	fs.IntVar(&cfg.Pairs, "pairs", 2, "1:1 scenarios: sender/receiver pairs")
	fs.IntVar(&cfg.Members, "members", 100, "group-fanout: group members besides the sender")
	fs.IntVar(&cfg.Window, "window", 64, "messages in flight per sender (lemp-lemp: without sr+dm; group-fanout: without sr)")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "lemp-lemp: sending time; idle: hold time; group-fanout: sending time limit")
	fs.DurationVar(&cfg.Drain, "drain", 15*time.Second, "how long to wait for outstanding messages after sending stops")
	fs.IntVar(&cfg.Parallel, "parallel", 64, "concurrent logins and pipelined admin requests")
	fs.IntVar(&cfg.PID, "pid", 0, "gateway pid: report its CPU time (and RSS for idle) from /proc")
	fs.StringVar(&cfg.Prefix, "prefix", "", "user name prefix (default: unique per run)")
	fs.StringVar(&cfg.XMPPAddr, "xmpp-c2s", "", "XMPP scenarios: the XMPP server's c2s address (loopback only)")
	fs.StringVar(&cfg.XMPPDomain, "xmpp-domain", "", "XMPP scenarios: the server's virtual host")
	fs.StringVar(&cfg.GatewayDomain, "gateway-domain", "", "lemp-xmpp, xmpp-lemp: the gateway's component domain")
	fs.BoolVar(&cfg.XMPPRegister, "xmpp-register", true, "create the Jabber users by in-band registration (XEP-0077); false: they exist with password NAME-bench-pw")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "XMPP server pid: report its CPU time and peak RSS from /proc")
	fs.IntVar(&cfg.RedisPID, "redis-pid", 0, "redis-server pid: report its CPU time from /proc")
	fs.Float64Var(&cfg.Rate, "rate", 0, "1:1 scenarios: send at most this many messages per second in all (0: as fast as -window allows)")
	fs.StringVar(&cfg.Backend, "backend", "", "label: the gateway's state backend (recorded in the result)")
	fs.StringVar(&cfg.XMPPKind, "xmpp-kind", "", "label: the XMPP server's kind (recorded in the result)")
	fs.StringVar(&resultsFile, "results", "", "append the result as one JSON line to this file (for lempbench report)")
	fs.BoolVar(&asJSON, "json", false, "also print the result as a JSON object")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "lempbench: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if err := checkLoopback(cfg.URL); err != nil {
		fmt.Fprintln(stderr, "lempbench:", err)
		return 2
	}
	_, isOneToOne := oneToOne[cfg.Scenario]
	usesXMPP := isOneToOne && cfg.Scenario != "lemp-lemp"
	if cfg.AdminToken == "" && cfg.Scenario != "xmpp-xmpp" {
		fmt.Fprintln(stderr, "lempbench: -admin-token is required")
		return 2
	}
	if usesXMPP {
		if err := needXMPP(cfg); err != nil {
			fmt.Fprintln(stderr, "lempbench:", err)
			return 2
		}
		if cfg.Scenario != "xmpp-xmpp" && cfg.GatewayDomain == "" {
			fmt.Fprintln(stderr, "lempbench: -gateway-domain is required for", cfg.Scenario)
			return 2
		}
	}
	if cfg.Duration <= 0 || cfg.Duration > 24*time.Hour || cfg.Drain < 0 || cfg.Drain > time.Hour {
		fmt.Fprintln(stderr, "lempbench: -duration must be in (0, 24h] and -drain in [0, 1h]")
		return 2
	}
	if cfg.Rate < 0 || cfg.Rate > 10_000_000 {
		fmt.Fprintln(stderr, "lempbench: -rate out of range")
		return 2
	}
	if cfg.N < 0 || cfg.N > 10_000_000 || cfg.Pairs < 1 || cfg.Pairs > 10_000 || cfg.Members < 1 || cfg.Members > 5000 || cfg.Window < 1 || cfg.Window > 100_000 || cfg.Parallel < 1 {
		fmt.Fprintln(stderr, "lempbench: -n, -pairs, -members (≤5000), -window or -parallel out of range")
		return 2
	}
	if cfg.N == 0 && (cfg.Scenario == "idle" || cfg.Scenario == "group-fanout") {
		cfg.N = 100
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "lb" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	res, err := runScenario(cfg)
	if resultsFile != "" {
		rec := res
		if err != nil {
			rec = &Result{Scenario: cfg.Scenario, URL: cfg.URL, Failed: err.Error()}
		}
		rec.Backend, rec.XMPPKind = cfg.Backend, cfg.XMPPKind
		if werr := appendResult(resultsFile, rec); werr != nil {
			fmt.Fprintln(stderr, "lempbench:", werr)
			return 1
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "lempbench:", err)
		return 1
	}
	printTable(stdout, res)
	if asJSON {
		if err := printJSON(stdout, res); err != nil {
			fmt.Fprintln(stderr, "lempbench:", err)
			return 1
		}
	}
	switch {
	case res.Scenario == "idle" && res.SessionsOK < res.Sessions:
		return 1
	case res.Scenario != "idle" && !res.Verified:
		return 1
	}
	return 0
}

// runScenario logs the admin in, runs cfg.Scenario and measures the
// gateway's CPU around it when cfg.PID is set.
func runScenario(cfg config) (*Result, error) {
	var fn func(config, *conn, *Result) error
	switch cfg.Scenario {
	case "lemp-lemp", "lemp-xmpp", "xmpp-lemp", "xmpp-xmpp":
		fn = runOneToOne
	case "idle":
		fn = runIdle
	case "group-fanout":
		fn = runGroupFanout
	default:
		return nil, fmt.Errorf("%q: %w", cfg.Scenario, errUnknownScenario)
	}
	if cfg.RunID == "" {
		cfg.RunID = "r" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	for _, pid := range []int{cfg.PID, cfg.ServerPID, cfg.RedisPID} {
		if pid > 0 {
			if _, err := cpuSeconds(pid); err != nil {
				return nil, err
			}
		}
	}
	var admin *conn
	if cfg.Scenario != "xmpp-xmpp" { // the baseline does not touch the gateway
		var err error
		if admin, err = login(cfg.URL, cfg.Admin, cfg.AdminToken); err != nil {
			return nil, fmt.Errorf("admin: %w", err)
		}
		defer admin.close()
	}
	res := &Result{Scenario: cfg.Scenario, URL: cfg.URL}
	switch cfg.Scenario {
	case "xmpp-xmpp":
		res.URL = "xmpp://" + cfg.XMPPAddr
	case "lemp-xmpp", "xmpp-lemp":
		res.URL = cfg.URL + " + xmpp://" + cfg.XMPPAddr
	}
	err := fn(cfg, admin, res)
	res.markEnd(cfg) // when fn failed before its end
	if err != nil {
		return nil, err
	}
	return res, nil
}

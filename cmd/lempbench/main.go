// Command lempbench is a load generator for lempgw's LEMP side. It creates
// its own users through an admin connection, runs one named scenario against
// a gateway on a loopback address, verifies that every message arrived
// exactly once, and prints a table (and, with -json, a JSON object).
//
//	lempbench -url ws://127.0.0.1:8025/lemp -admin admin -admin-token T \
//	    -scenario lemp-lemp|idle|group-fanout [-n N] [-duration D] [-window W] [-pid PID] [-json]
//
// With -pid, gateway CPU seconds cover the measured phase only (from after
// user creation and login to the end of the scenario).
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
	fs := flag.NewFlagSet("lempbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	var asJSON bool
	fs.StringVar(&cfg.URL, "url", "ws://127.0.0.1:8025/lemp", "gateway LEMP websocket URL (loopback only)")
	fs.StringVar(&cfg.Admin, "admin", "admin", "admin identity used to create the test users")
	fs.StringVar(&cfg.AdminToken, "admin-token", "", "admin token")
	fs.StringVar(&cfg.Scenario, "scenario", "lemp-lemp", "lemp-lemp, idle or group-fanout")
	fs.IntVar(&cfg.N, "n", 0, "lemp-lemp: messages per pair (0: until -duration); idle: sessions (default 100); group-fanout: messages (default 100)")
	fs.IntVar(&cfg.Pairs, "pairs", 2, "lemp-lemp: sender/receiver pairs")
	fs.IntVar(&cfg.Members, "members", 100, "group-fanout: group members besides the sender")
	fs.IntVar(&cfg.Window, "window", 64, "messages in flight per sender (lemp-lemp: without sr+dm; group-fanout: without sr)")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "lemp-lemp: sending time; idle: hold time; group-fanout: sending time limit")
	fs.DurationVar(&cfg.Drain, "drain", 15*time.Second, "how long to wait for outstanding messages after sending stops")
	fs.IntVar(&cfg.Parallel, "parallel", 64, "concurrent logins and pipelined admin requests")
	fs.IntVar(&cfg.PID, "pid", 0, "gateway pid: report its CPU time (and RSS for idle) from /proc")
	fs.StringVar(&cfg.Prefix, "prefix", "", "user name prefix (default: unique per run)")
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
	if cfg.AdminToken == "" {
		fmt.Fprintln(stderr, "lempbench: -admin-token is required")
		return 2
	}
	if cfg.Duration <= 0 || cfg.Duration > 24*time.Hour || cfg.Drain < 0 || cfg.Drain > time.Hour {
		fmt.Fprintln(stderr, "lempbench: -duration must be in (0, 24h] and -drain in [0, 1h]")
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
	case "lemp-lemp":
		fn = runLempLemp
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
	admin, err := login(cfg.URL, cfg.Admin, cfg.AdminToken)
	if err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	defer admin.close()
	res := &Result{Scenario: cfg.Scenario, URL: cfg.URL}
	if cfg.PID > 0 {
		if _, err := cpuSeconds(cfg.PID); err != nil {
			return nil, err
		}
	}
	if err := fn(cfg, admin, res); err != nil {
		return nil, err
	}
	if cfg.PID > 0 && res.cpuMarked {
		if cpu1, err := cpuSeconds(cfg.PID); err == nil {
			res.GatewayCPUSecs = cpu1 - res.cpu0
		} else {
			res.addErr(err)
		}
	}
	return res, nil
}

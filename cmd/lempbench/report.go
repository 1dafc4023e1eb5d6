package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is what one scenario run measured. Zero fields that do not apply to
// a scenario are left out of the JSON.
type Result struct {
	Scenario string  `json:"scenario"`
	URL      string  `json:"url"`
	Backend  string  `json:"backend,omitempty"`   // label: the gateway's state backend
	XMPPKind string  `json:"xmpp_kind,omitempty"` // label: the XMPP server
	Failed   string  `json:"failed,omitempty"`    // the run failed (written by -results only)
	Elapsed  float64 `json:"elapsed_s"`

	// Message scenarios.
	Pairs      int     `json:"pairs,omitempty"`
	Members    int     `json:"members,omitempty"`
	Window     int     `json:"window,omitempty"`
	Sent       int64   `json:"sent,omitempty"`
	ServerAcks int64   `json:"sr,omitempty"`
	Delivered  int64   `json:"delivered,omitempty"` // receiver arrivals (group: member arrivals)
	Acked      int64   `json:"acked,omitempty"`     // dm back at the sender
	Rate       float64 `json:"msgs_per_s,omitempty"`
	TargetRate float64 `json:"target_rate,omitempty"` // -rate
	P50ms      float64 `json:"p50_ms,omitempty"`
	P99ms      float64 `json:"p99_ms,omitempty"`
	P999ms     float64 `json:"p999_ms,omitempty"`
	MaxMs      float64 `json:"max_ms,omitempty"`
	Lost       int64   `json:"lost"`
	Duplicates int64   `json:"duplicates"`
	Verified   bool    `json:"verified_exactly_once"`

	// idle.
	Sessions       int     `json:"sessions,omitempty"`
	SessionsOK     int     `json:"sessions_ok,omitempty"`
	RSSBeforeKiB   int64   `json:"rss_before_kib,omitempty"`
	RSSAfterKiB    int64   `json:"rss_after_kib,omitempty"`
	RSSPerSessKiB  float64 `json:"rss_per_session_kib,omitempty"`
	GatewayCPUSecs float64 `json:"gateway_cpu_s,omitempty"`
	GatewayRSSKiB  int64   `json:"gateway_rss_peak_kib,omitempty"` // peak VmRSS while measuring (-pid)

	// XMPP scenarios.
	XMPPLoginSecs float64 `json:"xmpp_login_s,omitempty"` // registering and logging in the Jabber users
	ServerCPUSecs float64 `json:"server_cpu_s,omitempty"` // the XMPP server's CPU time while measuring (-server-pid)
	ServerRSSKiB  int64   `json:"server_rss_peak_kib,omitempty"`

	RedisCPUSecs  float64 `json:"redis_cpu_s,omitempty"`  // -redis-pid
	ClientCPUSecs float64 `json:"client_cpu_s,omitempty"` // lempbench itself

	cpu0      []float64 // at markCPU, per cpuProbes
	cpuMarked bool
	ended     bool
	samp      *sampler

	Errors    int64    `json:"errors"`
	ErrorList []string `json:"error_samples,omitempty"`
}

func (r *Result) addErr(err error) {
	r.Errors++
	if len(r.ErrorList) < 10 {
		r.ErrorList = append(r.ErrorList, err.Error())
	}
}

// percentiles fills p50/p99/p999/max from latencies (sorted in place).
func (r *Result) percentiles(lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	at := func(q float64) float64 {
		i := int(q * float64(len(lat)))
		if i >= len(lat) {
			i = len(lat) - 1
		}
		return float64(lat[i].Microseconds()) / 1000
	}
	r.P50ms, r.P99ms, r.P999ms = at(0.50), at(0.99), at(0.999)
	r.MaxMs = float64(lat[len(lat)-1].Microseconds()) / 1000
}

// printTable writes r as a two-column table.
func printTable(w io.Writer, r *Result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
	row("scenario", r.Scenario)
	row("url", r.URL)
	row("elapsed", fmt.Sprintf("%.2f s", r.Elapsed))
	switch r.Scenario {
	case "idle":
		row("sessions", fmt.Sprintf("%d of %d logged in", r.SessionsOK, r.Sessions))
		if r.RSSAfterKiB > 0 {
			row("gateway RSS", fmt.Sprintf("%d KiB before, %d KiB with the sessions", r.RSSBeforeKiB, r.RSSAfterKiB))
			row("RSS per session", fmt.Sprintf("%.1f KiB", r.RSSPerSessKiB))
		}
	default:
		if r.Pairs > 0 {
			row("pairs", r.Pairs)
		}
		if r.TargetRate > 0 {
			row("paced at", fmt.Sprintf("%.0f msgs/s in all", r.TargetRate))
		}
		if r.Members > 0 {
			row("members", r.Members)
		}
		row("window", r.Window)
		row("sent", r.Sent)
		row("sr received", r.ServerAcks)
		row("delivered", r.Delivered)
		if _, ok := oneToOne[r.Scenario]; ok {
			row("acks back at sender", fmt.Sprintf("%d (dm for a LEMP sender, XEP-0184 receipt for a Jabber sender)", r.Acked))
			row("throughput", fmt.Sprintf("%.0f msgs/s (delivered and acknowledged)", r.Rate))
		} else {
			row("throughput", fmt.Sprintf("%.0f member deliveries/s", r.Rate))
		}
		row("latency p50/p99/p999/max", fmt.Sprintf("%.2f / %.2f / %.2f / %.2f ms", r.P50ms, r.P99ms, r.P999ms, r.MaxMs))
		row("lost / duplicates", fmt.Sprintf("%d / %d", r.Lost, r.Duplicates))
		if r.Verified {
			row("exactly once", "yes: every message id arrived once")
		} else {
			row("exactly once", "NO")
		}
	}
	if r.GatewayCPUSecs > 0 {
		row("gateway CPU", fmt.Sprintf("%.2f s", r.GatewayCPUSecs))
	}
	if r.GatewayRSSKiB > 0 {
		row("gateway RSS peak", fmt.Sprintf("%d KiB", r.GatewayRSSKiB))
	}
	if r.XMPPLoginSecs > 0 {
		row("Jabber logins", fmt.Sprintf("%.2f s (registration and login, not measured)", r.XMPPLoginSecs))
	}
	if r.ServerCPUSecs > 0 {
		row("XMPP server CPU", fmt.Sprintf("%.2f s", r.ServerCPUSecs))
	}
	if r.ServerRSSKiB > 0 {
		row("XMPP server RSS peak", fmt.Sprintf("%d KiB", r.ServerRSSKiB))
	}
	if r.RedisCPUSecs > 0 {
		row("Redis CPU", fmt.Sprintf("%.2f s", r.RedisCPUSecs))
	}
	if r.ClientCPUSecs > 0 {
		row("lempbench CPU", fmt.Sprintf("%.2f s", r.ClientCPUSecs))
	}
	row("errors", r.Errors)
	for _, e := range r.ErrorList {
		row("  error", e)
	}
	tw.Flush()
}

// appendResult appends r as one JSON line to path.
func appendResult(path string, r *Result) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func printJSON(w io.Writer, r *Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// rssKiB reads VmRSS of pid from /proc.
func rssKiB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

// clockTicks is USER_HZ, 100 on every Linux platform Go supports.
const clockTicks = 100

// cpuSeconds reads utime+stime of pid from /proc/PID/stat.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:])
	// After the comm field: state is field 3, utime 14, stime 15 (1-based).
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	return float64(ut+st) / clockTicks, nil
}

// sampler records the peak VmRSS of the gateway and the XMPP server every
// 100 ms while a scenario measures.
type sampler struct {
	stop, done chan struct{}
	gw, srv    int64 // peaks, read after done
}

func startSampler(gwPID, srvPID int) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if gwPID > 0 {
				if v, err := rssKiB(gwPID); err == nil {
					s.gw = max(s.gw, v)
				}
			}
			if srvPID > 0 {
				if v, err := rssKiB(srvPID); err == nil {
					s.srv = max(s.srv, v)
				}
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// cpuProbes are the processes whose CPU time a run reports, with where.
func cpuProbes(cfg config, r *Result) []struct {
	pid int
	dst *float64
} {
	return []struct {
		pid int
		dst *float64
	}{
		{cfg.PID, &r.GatewayCPUSecs},
		{cfg.ServerPID, &r.ServerCPUSecs},
		{cfg.RedisPID, &r.RedisCPUSecs},
		{os.Getpid(), &r.ClientCPUSecs},
	}
}

// markCPU starts the measured phase (after the users exist and are logged
// in): the CPU times of the gateway (-pid), the XMPP server (-server-pid),
// Redis (-redis-pid) and lempbench itself, and the RSS sampler.
func markCPU(cfg config, res *Result) {
	for _, p := range cpuProbes(cfg, res) {
		v := -1.0
		if p.pid > 0 {
			if c, err := cpuSeconds(p.pid); err == nil {
				v = c
			}
		}
		res.cpu0 = append(res.cpu0, v)
	}
	res.cpuMarked = true
	res.samp = startSampler(cfg.PID, cfg.ServerPID)
}

// markEnd ends the measured phase; later calls do nothing.
func (r *Result) markEnd(cfg config) {
	if !r.cpuMarked || r.ended {
		return
	}
	r.ended = true
	close(r.samp.stop)
	<-r.samp.done
	r.GatewayRSSKiB, r.ServerRSSKiB = r.samp.gw, r.samp.srv
	for i, p := range cpuProbes(cfg, r) {
		if r.cpu0[i] < 0 {
			continue
		}
		if v, err := cpuSeconds(p.pid); err == nil {
			*p.dst = v - r.cpu0[i]
		} else {
			r.addErr(err)
		}
	}
}

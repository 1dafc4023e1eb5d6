package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// config is everything a run needs (flags in main.go).
type config struct {
	URL        string
	Admin      string
	AdminToken string
	Scenario   string
	N          int // lemp-lemp: messages per pair (0: until -duration); idle: sessions; group-fanout: messages
	Pairs      int
	Members    int
	Window     int
	Duration   time.Duration
	Drain      time.Duration // how long to wait for outstanding messages after sending stops
	Parallel   int           // concurrent logins and pipelined admin requests
	PID        int
	Prefix     string
	RunID      string // starts every message id: unique per run even when users are reused

	// XMPP scenarios.
	XMPPAddr      string // the XMPP server's c2s address (loopback)
	XMPPDomain    string // its virtual host: Jabber users are name@XMPPDomain
	GatewayDomain string // the gateway's component domain: LEMP user u is u@GatewayDomain
	XMPPRegister  bool   // create the Jabber accounts with XEP-0077 in-band registration
	ServerPID     int    // the XMPP server's pid: report its CPU time and RSS
	RedisPID      int    // redis-server's pid: report its CPU time

	Rate              float64 // 1:1 scenarios: messages per second in all; 0: as fast as the window allows
	Backend, XMPPKind string  // labels for the result
}

func tokenFor(name string) string { return name + "-bench-token" }

// seqOf returns the number after the last '-' of a message id.
func seqOf(id string) (int, bool) {
	i := strings.LastIndexByte(id, '-')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(id[i+1:])
	return n, err == nil && n >= 0
}

// waitUntil polls cond every 2 ms until it holds or d passes.
func waitUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
	return true
}

func closeAll(cs []*conn) {
	var wg sync.WaitGroup
	for _, c := range cs {
		if c != nil {
			wg.Add(1)
			go func() { defer wg.Done(); c.close() }()
		}
	}
	wg.Wait()
}

func runIdle(cfg config, admin *conn, res *Result) error {
	n := max(1, cfg.N)
	res.Sessions = n
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%si%d", cfg.Prefix, i)
	}
	if err := createUsers(admin, names, tokenFor, cfg.Parallel); err != nil {
		return err
	}
	if cfg.PID > 0 {
		time.Sleep(200 * time.Millisecond)
		if v, err := rssKiB(cfg.PID); err == nil {
			res.RSSBeforeKiB = v
		} else {
			res.addErr(err)
		}
	}
	markCPU(cfg, res)
	start := time.Now()
	conns, errs := loginAll(cfg.URL, names, tokenFor, cfg.Parallel)
	defer closeAll(conns)
	for _, e := range errs {
		res.addErr(e)
	}
	var stop atomic.Bool
	var readers sync.WaitGroup
	var dropped atomic.Int64
	for _, c := range conns {
		if c == nil {
			continue
		}
		res.SessionsOK++
		readers.Add(1)
		go func() { // answer pings (gorilla does it while reading) and notice drops
			defer readers.Done()
			for {
				if _, err := c.read(cfg.Duration + time.Minute); err != nil {
					if !stop.Load() {
						dropped.Add(1)
					}
					return
				}
			}
		}()
	}
	time.Sleep(cfg.Duration)
	if cfg.PID > 0 {
		if v, err := rssKiB(cfg.PID); err == nil {
			res.RSSAfterKiB = v
			if res.SessionsOK > 0 {
				res.RSSPerSessKiB = float64(res.RSSAfterKiB-res.RSSBeforeKiB) / float64(res.SessionsOK)
			}
		} else {
			res.addErr(err)
		}
	}
	if d := dropped.Load(); d > 0 {
		res.addErr(fmt.Errorf("%d sessions were closed during the hold", d))
		res.SessionsOK -= int(d)
	}
	res.Elapsed = time.Since(start).Seconds()
	res.markEnd(cfg)
	stop.Store(true)
	closeAll(conns)
	readers.Wait()
	return nil
}

// member is one group member's arrivals.
type member struct {
	got  []uint16
	lat  []time.Duration
	errs []error
}

func runGroupFanout(cfg config, admin *conn, res *Result) error {
	m := max(1, cfg.Members)
	k := max(1, cfg.N)
	win := max(1, cfg.Window)
	res.Members, res.Window = m, win
	sender := cfg.Prefix + "gs"
	gid := cfg.Prefix + cfg.RunID + "grp" // a fresh group per run, even when users are reused
	names := make([]string, m)
	for i := range names {
		names[i] = fmt.Sprintf("%sgm%d", cfg.Prefix, i)
	}
	if err := createUsers(admin, append([]string{sender}, names...), tokenFor, cfg.Parallel); err != nil {
		return err
	}
	conns, errs := loginAll(cfg.URL, append([]string{sender}, names...), tokenFor, cfg.Parallel)
	defer closeAll(conns)
	if len(errs) > 0 {
		return fmt.Errorf("%d logins failed, first: %w", len(errs), errs[0])
	}
	snd := conns[0]
	sentAt := make([]atomic.Int64, k) // unix ns
	var arrivals atomic.Int64
	var stop atomic.Bool
	var readers sync.WaitGroup
	members := make([]*member, m)
	for i := range members {
		mb := &member{got: make([]uint16, k)}
		members[i] = mb
		c := conns[i+1]
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				b, err := c.read(ioTimeout + cfg.Duration)
				if err != nil {
					if !stop.Load() {
						mb.errs = append(mb.errs, fmt.Errorf("member: %w", err))
					}
					return
				}
				f, err := parse(b)
				if err != nil || f.M == nil || f.M.S != sender || f.M.R != gid || f.M.SR != nil || f.M.DM != nil || !strings.HasPrefix(f.M.ID, cfg.RunID) {
					continue
				}
				now := time.Now().UnixNano()
				seq, ok := seqOf(f.M.ID)
				if !ok || seq >= k || sentAt[seq].Load() == 0 {
					mb.errs = append(mb.errs, fmt.Errorf("member: unknown message id %q", f.M.ID))
					continue
				}
				mb.got[seq]++
				if mb.got[seq] == 1 {
					mb.lat = append(mb.lat, time.Duration(now-sentAt[seq].Load()))
					arrivals.Add(1)
				}
			}
		}()
	}
	var list strings.Builder
	for i, n := range names {
		if i > 0 {
			list.WriteByte(',')
		}
		list.WriteString(`"` + n + `"`)
	}
	if e, err := snd.request("gc", []byte(`{"rq":{"id":"gc","g":{"t":"c","i":"`+gid+`","m":[`+list.String()+`]}}}`)); err != nil {
		return fmt.Errorf("group create: %w", err)
	} else if e != nil {
		return fmt.Errorf("group create: %w", e)
	}
	credits := make(chan struct{}, win)
	for range win {
		credits <- struct{}{}
	}
	var srs atomic.Int64
	var sndErrs []error
	var sndMu sync.Mutex
	readers.Add(1)
	go func() {
		defer readers.Done()
		for {
			b, err := snd.read(ioTimeout + cfg.Duration)
			if err != nil {
				if !stop.Load() {
					sndMu.Lock()
					sndErrs = append(sndErrs, fmt.Errorf("sender: %w", err))
					sndMu.Unlock()
				}
				return
			}
			f, err := parse(b)
			if err != nil || f.M == nil {
				continue
			}
			switch {
			case f.M.SR != nil:
				srs.Add(1)
				credits <- struct{}{}
			case f.M.E != nil:
				sndMu.Lock()
				sndErrs = append(sndErrs, fmt.Errorf("message %s refused: %w", f.M.ID, f.M.E))
				sndMu.Unlock()
				credits <- struct{}{}
			}
		}
	}()
	markCPU(cfg, res)
	start := time.Now()
	end := start.Add(cfg.Duration)
	sent := 0
send:
	for seq := range k {
		select {
		case <-credits:
		case <-time.After(time.Until(end)):
			break send
		}
		sentAt[seq].Store(time.Now().UnixNano())
		// pc "0": members send no dm; the message leaves each queue once written.
		if err := snd.send([]byte(`{"m":{"id":"` + cfg.RunID + `g-` + strconv.Itoa(seq) + `","r":"` + gid + `","t":"t","c":"fan-out ` + strconv.Itoa(seq) + `","pc":"0"}}`)); err != nil {
			res.addErr(err)
			break
		}
		sent++
	}
	want := int64(sent) * int64(m)
	waitUntil(cfg.Drain, func() bool { return arrivals.Load() >= want && srs.Load() >= int64(sent) })
	res.Elapsed = time.Since(start).Seconds()
	res.markEnd(cfg)
	stop.Store(true)
	closeAll(conns)
	readers.Wait()

	res.Sent = int64(sent)
	res.ServerAcks = srs.Load()
	var lat []time.Duration
	for _, mb := range members {
		for seq := range sent {
			switch c := mb.got[seq]; {
			case c == 0:
				res.Lost++
			case c > 1:
				res.Duplicates += int64(c - 1)
			}
		}
		res.Delivered += int64(len(mb.lat))
		lat = append(lat, mb.lat...)
		for _, e := range mb.errs {
			res.addErr(e)
		}
	}
	for _, e := range sndErrs {
		res.addErr(e)
	}
	res.percentiles(lat)
	if res.Elapsed > 0 {
		res.Rate = float64(res.Delivered) / res.Elapsed
	}
	res.Verified = sent > 0 && res.Lost == 0 && res.Duplicates == 0 && res.Errors == 0 && res.ServerAcks == int64(sent)
	return nil
}

var errUnknownScenario = errors.New("unknown scenario (want lemp-lemp, lemp-xmpp, xmpp-lemp, xmpp-xmpp, idle or group-fanout)")

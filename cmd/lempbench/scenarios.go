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

// pair is one sender and one receiver of lemp-lemp.
type pair struct {
	id       int
	runID    string
	sender   string
	receiver string
	snd, rcv *conn
	credits  chan struct{}

	mu      sync.Mutex
	sentAt  []time.Time
	state   []uint8  // bit 0: sr, bit 1: dm at the sender
	got     []uint16 // arrivals at the receiver
	lat     []time.Duration
	sr, dm  int64
	done    int64 // messages with both sr and dm (or refused)
	deliver int64
	dups    int64
	errs    []error
}

func (p *pair) fail(err error) {
	p.mu.Lock()
	p.errs = append(p.errs, err)
	p.mu.Unlock()
}

// senderReader handles sr and dm at the sender and returns credits.
func (p *pair) senderReader(stop *atomic.Bool) {
	for {
		b, err := p.snd.read(ioTimeout)
		if err != nil {
			if !stop.Load() {
				p.fail(fmt.Errorf("pair %d sender: %w", p.id, err))
			}
			return
		}
		f, err := parse(b)
		if err != nil || f.M == nil {
			continue
		}
		var bit uint8
		var id string
		switch {
		case f.M.SR != nil:
			bit, id = 1, f.M.SR.ID
		case f.M.DM != nil:
			bit, id = 2, f.M.DM.ID
		case f.M.E != nil:
			bit, id = 3, f.M.ID
			p.fail(fmt.Errorf("message %s refused: %w", f.M.ID, f.M.E))
		default:
			continue
		}
		seq, ok := seqOf(id)
		p.mu.Lock()
		if !ok || seq >= len(p.state) {
			p.mu.Unlock()
			p.fail(fmt.Errorf("pair %d: receipt for unknown id %q", p.id, id))
			continue
		}
		old := p.state[seq]
		p.state[seq] |= bit
		if old&bit == 0 {
			if bit == 1 {
				p.sr++
			} else if bit == 2 {
				p.dm++
			}
		}
		complete := old != 3 && p.state[seq] == 3
		if complete {
			p.done++
		}
		p.mu.Unlock()
		if complete {
			p.credits <- struct{}{}
		}
	}
}

// receiverReader counts arrivals, measures latency and acknowledges with dm.
func (p *pair) receiverReader(stop *atomic.Bool) {
	for {
		b, err := p.rcv.read(ioTimeout)
		if err != nil {
			if !stop.Load() {
				p.fail(fmt.Errorf("pair %d receiver: %w", p.id, err))
			}
			return
		}
		f, err := parse(b)
		if err != nil || f.M == nil || f.M.SR != nil || f.M.DM != nil || f.M.E != nil || f.M.S != p.sender {
			continue
		}
		if !strings.HasPrefix(f.M.ID, p.runID) { // left over from an earlier run: acknowledge, do not count
			_ = p.rcv.send([]byte(`{"m":{"id":"d` + f.M.ID + `","dm":{"id":` + jsonStr(f.M.ID) + `}}}`))
			continue
		}
		now := time.Now()
		seq, ok := seqOf(f.M.ID)
		p.mu.Lock()
		if !ok || seq >= len(p.sentAt) {
			p.mu.Unlock()
			p.fail(fmt.Errorf("pair %d: unknown message id %q", p.id, f.M.ID))
			continue
		}
		for len(p.got) <= seq {
			p.got = append(p.got, 0)
		}
		p.got[seq]++
		if p.got[seq] == 1 {
			p.deliver++
			p.lat = append(p.lat, now.Sub(p.sentAt[seq]))
		} else {
			p.dups++
		}
		p.mu.Unlock()
		if err := p.rcv.send([]byte(`{"m":{"id":"d` + f.M.ID + `","dm":{"id":` + jsonStr(f.M.ID) + `}}}`)); err != nil && !stop.Load() {
			p.fail(fmt.Errorf("pair %d receiver dm: %w", p.id, err))
		}
	}
}

func runLempLemp(cfg config, admin *conn, res *Result) error {
	np := max(1, cfg.Pairs)
	win := max(1, cfg.Window)
	res.Pairs, res.Window = np, win
	pairs := make([]*pair, np)
	var names []string
	for i := range pairs {
		p := &pair{id: i, runID: cfg.RunID, sender: fmt.Sprintf("%ss%d", cfg.Prefix, i), receiver: fmt.Sprintf("%sr%d", cfg.Prefix, i), credits: make(chan struct{}, win)}
		for range win {
			p.credits <- struct{}{}
		}
		pairs[i] = p
		names = append(names, p.sender, p.receiver)
	}
	if err := createUsers(admin, names, tokenFor, cfg.Parallel); err != nil {
		return err
	}
	conns, errs := loginAll(cfg.URL, names, tokenFor, cfg.Parallel)
	defer closeAll(conns)
	if len(errs) > 0 {
		return fmt.Errorf("%d logins failed, first: %w", len(errs), errs[0])
	}
	var stop atomic.Bool
	var readers sync.WaitGroup
	for i, p := range pairs {
		p.snd, p.rcv = conns[2*i], conns[2*i+1]
		readers.Add(2)
		go func() { defer readers.Done(); p.senderReader(&stop) }()
		go func() { defer readers.Done(); p.receiverReader(&stop) }()
	}
	markCPU(cfg, res)
	start := time.Now()
	end := start.Add(cfg.Duration)
	var senders sync.WaitGroup
	for _, p := range pairs {
		senders.Add(1)
		go func() {
			defer senders.Done()
			timer := time.NewTimer(time.Until(end))
			defer timer.Stop()
			for seq := 0; cfg.N == 0 || seq < cfg.N; seq++ {
				select {
				case <-p.credits:
				case <-timer.C:
					return
				}
				if time.Now().After(end) {
					return
				}
				id := fmt.Sprintf("%sp%d-%d", cfg.RunID, p.id, seq)
				p.mu.Lock()
				p.sentAt = append(p.sentAt, time.Now())
				p.state = append(p.state, 0)
				p.mu.Unlock()
				if err := p.snd.send([]byte(`{"m":{"id":"` + id + `","r":"` + p.receiver + `","t":"t","c":"lempbench message ` + strconv.Itoa(seq) + `"}}`)); err != nil {
					p.fail(fmt.Errorf("pair %d send: %w", p.id, err))
					return
				}
			}
		}()
	}
	senders.Wait()
	allDone := func() bool {
		for _, p := range pairs {
			p.mu.Lock()
			d := p.done == int64(len(p.sentAt))
			p.mu.Unlock()
			if !d {
				return false
			}
		}
		return true
	}
	waitUntil(cfg.Drain, allDone)
	res.Elapsed = time.Since(start).Seconds()
	stop.Store(true)
	closeAll(conns)
	readers.Wait()

	var lat []time.Duration
	for _, p := range pairs {
		p.mu.Lock()
		res.Sent += int64(len(p.sentAt))
		res.ServerAcks += p.sr
		res.Acked += p.dm
		res.Delivered += p.deliver
		res.Duplicates += p.dups
		for seq := range p.sentAt {
			if seq >= len(p.got) || p.got[seq] == 0 {
				res.Lost++
			}
		}
		lat = append(lat, p.lat...)
		for _, e := range p.errs {
			res.addErr(e)
		}
		p.mu.Unlock()
	}
	res.percentiles(lat)
	if res.Elapsed > 0 {
		res.Rate = float64(res.Acked) / res.Elapsed
	}
	res.Verified = res.Sent > 0 && res.Lost == 0 && res.Duplicates == 0 && res.Errors == 0 &&
		res.Acked == res.Sent && res.ServerAcks == res.Sent
	return nil
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

var errUnknownScenario = errors.New("unknown scenario (want lemp-lemp, idle or group-fanout)")

// markCPU records the gateway's CPU time when the measured phase starts
// (after the users exist and are logged in).
func markCPU(cfg config, res *Result) {
	if cfg.PID > 0 {
		if v, err := cpuSeconds(cfg.PID); err == nil {
			res.cpu0, res.cpuMarked = v, true
		}
	}
}

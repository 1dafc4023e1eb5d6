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

// side is one end of a 1:1 scenario: a LEMP client of the gateway or a
// Jabber client of the XMPP server.
type side int

const (
	lempSide side = iota
	xmppSide
)

// oneToOne are the 1:1 scenarios: who sends, who receives. A LEMP sender
// gets sr and dm; a Jabber sender asks for and gets an XEP-0184 receipt.
var oneToOne = map[string][2]side{
	"lemp-lemp": {lempSide, lempSide},
	"lemp-xmpp": {lempSide, xmppSide},
	"xmpp-lemp": {xmppSide, lempSide},
	"xmpp-xmpp": {xmppSide, xmppSide},
}

// Bits of a message's state at its sender.
const (
	bitSR  uint8 = 1 // LEMP server receipt
	bitAck uint8 = 2 // dm (LEMP) or XEP-0184 receipt (XMPP) back at the sender
)

// pair is one sender and one receiver, and the bookkeeping of their
// messages: every id is checked to arrive once, with its receipts.
type pair struct {
	id       int
	runID    string
	from, to side
	sender   string // the sender's name on its server
	receiver string
	// senderAddr is the sender as the receiver sees it (LEMP s, the bare
	// JID of a stanza's from); receiverAddr the receiver as the sender
	// addresses it (LEMP r, a stanza's to).
	senderAddr, receiverAddr string
	want                     uint8 // the state bits that complete a message
	credits                  chan struct{}

	lsnd, lrcv *conn // LEMP ends
	xsnd, xrcv *xclient

	mu      sync.Mutex
	sentAt  []time.Time
	state   []uint8
	got     []uint16 // arrivals at the receiver
	lat     []time.Duration
	sr, ack int64
	done    int64 // messages complete (or refused)
	deliver int64
	dups    int64
	errs    []error
}

func (p *pair) fail(err error) {
	p.mu.Lock()
	p.errs = append(p.errs, err)
	p.mu.Unlock()
}

func (p *pair) msgID(seq int) string {
	return p.runID + "p" + strconv.Itoa(p.id) + "-" + strconv.Itoa(seq)
}

// receipt records bit for message id at the sender and returns a credit
// when the message is complete. refused completes it at once.
func (p *pair) receipt(id string, bit uint8, refused error) {
	if !strings.HasPrefix(id, p.runID) {
		return // left over from an earlier run
	}
	seq, ok := seqOf(id)
	p.mu.Lock()
	if !ok || seq >= len(p.state) {
		p.mu.Unlock()
		p.fail(fmt.Errorf("pair %d: receipt for unknown id %q", p.id, id))
		return
	}
	old := p.state[seq]
	if refused != nil {
		p.errs = append(p.errs, fmt.Errorf("message %s refused: %w", id, refused))
		p.state[seq] |= p.want
	} else {
		p.state[seq] |= bit
		if old&bit == 0 {
			switch bit {
			case bitSR:
				p.sr++
			case bitAck:
				p.ack++
			}
		}
	}
	complete := old&p.want != p.want && p.state[seq]&p.want == p.want
	if complete {
		p.done++
	}
	p.mu.Unlock()
	if complete {
		p.credits <- struct{}{}
	}
}

// arrived counts message id at the receiver; it reports whether the id
// belongs to this run (an older run's leftovers are acknowledged, not
// counted).
func (p *pair) arrived(id string) bool {
	if !strings.HasPrefix(id, p.runID) {
		return false
	}
	now := time.Now()
	seq, ok := seqOf(id)
	p.mu.Lock()
	defer p.mu.Unlock()
	if !ok || seq >= len(p.sentAt) {
		p.errs = append(p.errs, fmt.Errorf("pair %d: unknown message id %q", p.id, id))
		return true
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
	return true
}

// lempSender reads sr, dm and refusals at a LEMP sender.
func (p *pair) lempSender(stop *atomic.Bool) {
	for {
		b, err := p.lsnd.read(ioTimeout)
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
		switch {
		case f.M.SR != nil:
			p.receipt(f.M.SR.ID, bitSR, nil)
		case f.M.DM != nil:
			p.receipt(f.M.DM.ID, bitAck, nil)
		case f.M.E != nil:
			p.receipt(f.M.ID, 0, f.M.E)
		}
	}
}

// lempReceiver counts arrivals at a LEMP receiver and acknowledges each
// with dm.
func (p *pair) lempReceiver(stop *atomic.Bool) {
	for {
		b, err := p.lrcv.read(ioTimeout)
		if err != nil {
			if !stop.Load() {
				p.fail(fmt.Errorf("pair %d receiver: %w", p.id, err))
			}
			return
		}
		f, err := parse(b)
		if err != nil || f.M == nil || f.M.SR != nil || f.M.DM != nil || f.M.E != nil || f.M.S != p.senderAddr {
			continue
		}
		p.arrived(f.M.ID)
		if err := p.lrcv.send([]byte(`{"m":{"id":"d` + f.M.ID + `","dm":{"id":` + jsonStr(f.M.ID) + `}}}`)); err != nil && !stop.Load() {
			p.fail(fmt.Errorf("pair %d receiver dm: %w", p.id, err))
		}
	}
}

// xmppSender handles receipts and error answers at a Jabber sender.
func (p *pair) xmppSender(st stanzaInfo) {
	switch {
	case st.Type == "error":
		cond := st.ErrorCond
		if cond == "" {
			cond = "error without condition"
		}
		p.receipt(st.ID, 0, errors.New(cond))
	case st.Received != "":
		p.receipt(st.Received, bitAck, nil)
	}
}

// xmppReceiver counts arrivals at a Jabber receiver and answers each with
// an XEP-0184 receipt to the full JID it came from.
func (p *pair) xmppReceiver(stop *atomic.Bool) func(stanzaInfo) {
	return func(st stanzaInfo) {
		bare, _, _ := strings.Cut(st.From, "/")
		if !st.Body || st.Type == "error" || bare != p.senderAddr {
			return
		}
		p.arrived(st.ID)
		if err := p.xrcv.sendReceipt(st.From, st.ID); err != nil && !stop.Load() {
			p.fail(fmt.Errorf("pair %d receiver receipt: %w", p.id, err))
		}
	}
}

// send writes message seq.
func (p *pair) send(seq int) error {
	id := p.msgID(seq)
	body := "lempbench message " + strconv.Itoa(seq)
	if p.from == lempSide {
		return p.lsnd.send([]byte(`{"m":{"id":"` + id + `","r":` + jsonStr(p.receiverAddr) + `,"t":"t","c":"` + body + `"}}`))
	}
	return p.xsnd.sendChat(p.receiverAddr, id, body)
}

// needXMPP checks that cfg can reach an XMPP server.
func needXMPP(cfg config) error {
	if cfg.XMPPAddr == "" || cfg.XMPPDomain == "" {
		return errors.New("this scenario needs -xmpp-c2s and -xmpp-domain")
	}
	return checkLoopbackAddr(cfg.XMPPAddr)
}

// runOneToOne runs a 1:1 scenario: cfg.Pairs senders, each with at most
// cfg.Window messages in flight (a message leaves the window once its
// sender has every receipt it gets: sr and dm for a LEMP sender, the
// XEP-0184 receipt for a Jabber sender), each receiver acknowledging every
// message. Throughput is messages acknowledged back at their senders per
// second; latency is send -> the receiver has it.
func runOneToOne(cfg config, admin *conn, res *Result) error {
	sides, ok := oneToOne[cfg.Scenario]
	if !ok {
		return fmt.Errorf("%q: %w", cfg.Scenario, errUnknownScenario)
	}
	if sides[0] == xmppSide || sides[1] == xmppSide {
		if err := needXMPP(cfg); err != nil {
			return err
		}
		if sides[0] != sides[1] && cfg.GatewayDomain == "" {
			return errors.New("a bridged scenario needs -gateway-domain (the gateway's component domain)")
		}
	}
	np := max(1, cfg.Pairs)
	win := max(1, cfg.Window)
	res.Pairs, res.Window, res.TargetRate = np, win, cfg.Rate
	// addr is how a user of kind s is addressed from the other end.
	addr := func(s, other side, name string) string {
		switch {
		case s == lempSide && other == lempSide:
			return name
		case s == lempSide:
			return name + "@" + cfg.GatewayDomain
		}
		return name + "@" + cfg.XMPPDomain
	}
	pairs := make([]*pair, np)
	var lempNames, xmppNames []string
	var lempIdx, xmppIdx [][2]int // per pair: index into the name lists, -1 for the other kind
	for i := range pairs {
		p := &pair{id: i, runID: cfg.RunID, from: sides[0], to: sides[1], credits: make(chan struct{}, win), want: bitAck}
		if p.from == lempSide {
			p.want |= bitSR
		}
		idx := [2]int{-1, -1}
		jdx := [2]int{-1, -1}
		for k, s := range sides {
			role := "s"
			if k == 1 {
				role = "r"
			}
			name := fmt.Sprintf("%s%s%d", cfg.Prefix, role, i)
			if s == xmppSide {
				name = fmt.Sprintf("%sx%s%d", cfg.Prefix, role, i)
				jdx[k] = len(xmppNames)
				xmppNames = append(xmppNames, name)
			} else {
				idx[k] = len(lempNames)
				lempNames = append(lempNames, name)
			}
			if k == 0 {
				p.sender = name
			} else {
				p.receiver = name
			}
		}
		p.senderAddr = addr(p.from, p.to, p.sender)
		p.receiverAddr = addr(p.to, p.from, p.receiver)
		for range win {
			p.credits <- struct{}{}
		}
		pairs[i] = p
		lempIdx = append(lempIdx, idx)
		xmppIdx = append(xmppIdx, jdx)
	}

	var lconns []*conn
	if len(lempNames) > 0 {
		if err := createUsers(admin, lempNames, tokenFor, cfg.Parallel); err != nil {
			return err
		}
		var errs []error
		lconns, errs = loginAll(cfg.URL, lempNames, tokenFor, cfg.Parallel)
		defer closeAll(lconns)
		if len(errs) > 0 {
			return fmt.Errorf("%d LEMP logins failed, first: %w", len(errs), errs[0])
		}
	}
	var xconns []*xclient
	if len(xmppNames) > 0 {
		begin := time.Now()
		var errs []error
		xconns, errs = dialAllXMPP(cfg.XMPPAddr, cfg.XMPPDomain, xmppNames, cfg.XMPPRegister, cfg.Parallel)
		defer closeAllXMPP(xconns)
		if len(errs) > 0 {
			return fmt.Errorf("%d of %d Jabber logins failed, first: %w", len(errs), len(xmppNames), errs[0])
		}
		res.XMPPLoginSecs = time.Since(begin).Seconds()
	}

	var stop atomic.Bool
	var readers sync.WaitGroup
	var startErr error
	for i, p := range pairs {
		if j := lempIdx[i][0]; j >= 0 {
			p.lsnd = lconns[j]
			readers.Go(func() { p.lempSender(&stop) })
		}
		if j := lempIdx[i][1]; j >= 0 {
			p.lrcv = lconns[j]
			readers.Go(func() { p.lempReceiver(&stop) })
		}
		if j := xmppIdx[i][0]; j >= 0 {
			p.xsnd = xconns[j]
			if err := p.xsnd.start(p.xmppSender); err != nil && startErr == nil {
				startErr = err
			}
		}
		if j := xmppIdx[i][1]; j >= 0 {
			p.xrcv = xconns[j]
			if err := p.xrcv.start(p.xmppReceiver(&stop)); err != nil && startErr == nil {
				startErr = err
			}
		}
	}
	if startErr != nil {
		stop.Store(true)
		closeAll(lconns)
		closeAllXMPP(xconns)
		readers.Wait()
		return startErr
	}

	markCPU(cfg, res)
	start := time.Now()
	end := start.Add(cfg.Duration)
	var senders sync.WaitGroup
	for _, p := range pairs {
		senders.Go(func() {
			timer := time.NewTimer(time.Until(end))
			defer timer.Stop()
			// With -rate, each sender paces itself to its share; a window
			// that is full still holds it back.
			var interval time.Duration
			if cfg.Rate > 0 {
				interval = time.Duration(float64(np) / cfg.Rate * float64(time.Second))
			}
			next := start.Add(time.Duration(p.id) * interval / time.Duration(np))
			for seq := 0; cfg.N == 0 || seq < cfg.N; seq++ {
				if interval > 0 {
					if d := time.Until(next); d > 0 {
						select {
						case <-time.After(d):
						case <-timer.C:
							return
						}
					}
					next = next.Add(interval)
				}
				select {
				case <-p.credits:
				case <-timer.C:
					return
				}
				if time.Now().After(end) {
					return
				}
				p.mu.Lock()
				p.sentAt = append(p.sentAt, time.Now())
				p.state = append(p.state, 0)
				p.mu.Unlock()
				if err := p.send(seq); err != nil {
					p.fail(fmt.Errorf("pair %d send: %w", p.id, err))
					return
				}
			}
		})
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
	res.markEnd(cfg)
	stop.Store(true)
	closeAll(lconns)
	closeAllXMPP(xconns)
	readers.Wait()

	var lat []time.Duration
	for _, p := range pairs {
		p.mu.Lock()
		res.Sent += int64(len(p.sentAt))
		res.ServerAcks += p.sr
		res.Acked += p.ack
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
		res.Acked == res.Sent && (sides[0] != lempSide || res.ServerAcks == res.Sent)
	return nil
}

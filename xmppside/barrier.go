package xmppside

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
)

// barrierPrefix marks the ids of the pings written around outbound stanzas;
// the leading ping's id ends with leadSuffix.
const (
	barrierPrefix = "lgw-b-"
	leadSuffix    = "-lead"
)

// barrierTimeout is a last resort only. A slow answer must not count as a
// lost one: the server may well have handled the stanza, and sending it
// again on a new stream would deliver it twice. A dead link is the
// keepalive's business (it closes the stream, which fails the waits).
const barrierTimeout = 2 * time.Minute

// barrier matches the answers to the pings the outbound sender writes behind
// every stanza. The server answers in stream order, so an answer proves that
// the stanza written before its ping was handled.
//
// The converse does not hold: a server may handle a stanza and never answer
// the ping behind it. Prosody 0.12 runs its SIGTERM handler inside whatever
// Lua code is running (util.signal sets a Lua hook); if that is the handling
// of our stanza, the shutdown closes the component connection under it and,
// when nothing is waiting in the connection's write buffer, destroys the
// session at once. The stanza is still handled to the end (a message lands in
// the user's offline store), then the ping read with it in the same chunk
// meets a dead session and is dropped ("Unhandled (nil) stanza"). So every
// write starts with a ping of its own: its answer is in the write buffer
// before the server starts on the stanza, the close then waits to flush that
// buffer, the session stays alive meanwhile, and the ping behind the stanza is
// answered too (TestShutdownMidStanzaSendsOnce). Prosody can still lose
// answers it has written at shutdown (docs/architecture.md, "Exactly once
// across a server restart"), so this narrows the gap without closing it.
type barrier struct {
	mu      sync.Mutex
	next    uint64
	waiting map[string]chan error
}

func newBarrier() *barrier { return &barrier{waiting: make(map[string]chan error)} }

// add registers a new ping id and the channel its outcome arrives on.
func (b *barrier) add() (string, chan error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.next++
	id := barrierPrefix + strconv.FormatUint(b.next, 10)
	ch := make(chan error, 1)
	b.waiting[id] = ch
	return id, ch
}

// resolve delivers the answer to ping id (from the stanza handler); it
// reports whether id was one of ours.
func (b *barrier) resolve(id, typ string) bool {
	if !strings.HasPrefix(id, barrierPrefix) {
		return false
	}
	if strings.HasSuffix(id, leadSuffix) {
		return true // a leading ping: its answer proves nothing
	}
	b.mu.Lock()
	ch, ok := b.waiting[id]
	delete(b.waiting, id)
	b.mu.Unlock()
	if ok {
		// An error answer (a server without XEP-0199) also proves the ping was read.
		ch <- nil
	}
	_ = typ
	return true
}

// forget drops id (its flight was abandoned).
func (b *barrier) forget(id string) {
	b.mu.Lock()
	delete(b.waiting, id)
	b.mu.Unlock()
}

// errBarrierTimeout: the server did not answer a barrier ping in time.
var errBarrierTimeout = errors.New("no answer to the barrier ping")

// wait waits for a barrier ping's answer.
func wait(ch chan error, timeout time.Duration, down <-chan struct{}) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-ch:
		return err
	case <-t.C:
		select {
		case err := <-ch:
			return err
		default:
			return errBarrierTimeout
		}
	case <-down:
		// The answer may have been read just before the stream ended (the
		// handler resolves it before the link reports down): a ready answer
		// wins, or a confirmed stanza would be sent twice.
		select {
		case err := <-ch:
			return err
		default:
			return errors.New("component stream closed")
		}
	}
}

// writeWithPing writes a leading ping, stanzas vs and the barrier ping with
// id to l's server, flushed together, under one hold of the session's writer.
func (c *Component) writeWithPing(ctx context.Context, l *link, sess *xmpp.Session, vs []any, id string) error {
	var raw []byte
	for _, v := range vs {
		b, err := xml.Marshal(v)
		if err != nil {
			return err
		}
		raw = append(raw, b...)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = sess.Conn().SetWriteDeadline(dl)
	} else {
		_ = sess.Conn().SetWriteDeadline(time.Now().Add(10 * time.Second))
	}
	defer func() { _ = sess.Conn().SetWriteDeadline(time.Time{}) }()
	w := sess.TokenWriter()
	defer w.Close()
	if err := encodePing(w, l, id+leadSuffix); err != nil {
		return err
	}
	d := xml.NewDecoder(bytes.NewReader(raw))
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if se, ok := tok.(xml.StartElement); ok {
			tok = withoutXMLNS(se) // the name carries the namespace already
		}
		if err := w.EncodeToken(tok); err != nil {
			return err
		}
	}
	if err := encodePing(w, l, id); err != nil {
		return err
	}
	return w.Flush()
}

// encodePing writes an XEP-0199 ping with id from l's domain to its server.
func encodePing(w xmlstream.TokenWriter, l *link, id string) error {
	iq := xml.StartElement{Name: xml.Name{Local: "iq"}, Attr: []xml.Attr{
		{Name: xml.Name{Local: "type"}, Value: "get"},
		{Name: xml.Name{Local: "id"}, Value: id},
		{Name: xml.Name{Local: "from"}, Value: l.cfg.Domain},
		{Name: xml.Name{Local: "to"}, Value: l.cfg.ServerDomain},
	}}
	ping := xml.StartElement{Name: xml.Name{Space: nsPing, Local: "ping"}}
	for _, tok := range []xml.Token{iq, ping, ping.End(), iq.End()} {
		if err := w.EncodeToken(tok); err != nil {
			return err
		}
	}
	return nil
}

// withoutXMLNS drops xmlns attributes, which a decoder reports beside the
// namespace it already put in the names (an encoder would write them twice).
func withoutXMLNS(se xml.StartElement) xml.StartElement {
	attrs := se.Attr[:0:0]
	for _, a := range se.Attr {
		if (a.Name.Space == "" && a.Name.Local == "xmlns") || a.Name.Space == "xmlns" {
			continue
		}
		attrs = append(attrs, a)
	}
	se.Attr = attrs
	return se
}

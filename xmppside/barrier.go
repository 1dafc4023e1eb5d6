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

	"mellium.im/xmpp"
)

// barrierPrefix marks the ids of the pings written behind outbound stanzas.
const barrierPrefix = "lgw-b-"

// barrierTimeout is a last resort only. A slow answer must not count as a
// lost one: the server may well have handled the stanza, and sending it
// again on a new stream would deliver it twice. A dead link is the
// keepalive's business (it closes the stream, which fails the waits).
const barrierTimeout = 2 * time.Minute

// barrier matches the answers to the pings the outbound sender writes behind
// every stanza. The ping goes out in the same write as its stanza, so the
// server reads both in one go: it handles both or neither, and its answer
// proves the stanza arrived.
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

// writeWithPing writes stanzas vs and a ping with id to the server, flushed
// together, under one hold of the session's writer.
func (c *Component) writeWithPing(ctx context.Context, sess *xmpp.Session, vs []any, id string) error {
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
	iq := xml.StartElement{Name: xml.Name{Local: "iq"}, Attr: []xml.Attr{
		{Name: xml.Name{Local: "type"}, Value: "get"},
		{Name: xml.Name{Local: "id"}, Value: id},
		{Name: xml.Name{Local: "from"}, Value: c.cfg.Link.Domain},
		{Name: xml.Name{Local: "to"}, Value: c.link.cfg.ServerDomain},
	}}
	ping := xml.StartElement{Name: xml.Name{Space: nsPing, Local: "ping"}}
	for _, tok := range []xml.Token{iq, ping, ping.End(), iq.End()} {
		if err := w.EncodeToken(tok); err != nil {
			return err
		}
	}
	return w.Flush()
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

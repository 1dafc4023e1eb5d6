package xmppside

import (
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// StreamTrace records the raw component streams of the links dialled while
// it is installed (TraceStreams), for tests that must show what crossed the
// wire, in which order, around an event such as a server restart.
type StreamTrace struct {
	mu      sync.Mutex
	start   time.Time
	domains []string // by connection number - 1
	events  []traceEvent
}

type traceEvent struct {
	at   time.Duration
	conn int
	dir  string // "out", "in", "err", "close"
	data string
}

// TraceStreams records every component stream dialled from now until the
// returned stop function is called; call it once those links have stopped
// (t.Cleanup, registered before the rig's).
func TraceStreams() (*StreamTrace, func()) {
	tr := &StreamTrace{start: time.Now()}
	wrapConn = func(domain string, c net.Conn) net.Conn {
		tr.mu.Lock()
		tr.domains = append(tr.domains, domain)
		n := len(tr.domains)
		tr.mu.Unlock()
		return &tracedConn{Conn: c, tr: tr, n: n}
	}
	return tr, func() { wrapConn = nil }
}

func (tr *StreamTrace) add(conn int, dir, data string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.events = append(tr.events, traceEvent{at: time.Since(tr.start), conn: conn, dir: dir, data: data})
}

// Lines returns the trace of domain's streams, one line per read, write,
// error or close ("  12.345ms stream 2 out   <message…"), in the order they
// happened; with filter set, only the lines containing any of its strings.
func (tr *StreamTrace) Lines(domain string, filter ...string) []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out []string
	for _, e := range tr.events {
		if tr.domains[e.conn-1] != domain {
			continue
		}
		line := fmt.Sprintf("%9.3fms stream %d %-5s %s", float64(e.at.Microseconds())/1000, e.conn, e.dir, e.data)
		keep := len(filter) == 0
		for _, f := range filter {
			keep = keep || strings.Contains(line, f)
		}
		if keep {
			out = append(out, line)
		}
	}
	return out
}

// Unconfirmed returns, for each stream of domain that has been closed, its
// flights (the ids of the stanzas written between a leading ping and a
// barrier ping) whose barrier ping was never answered on that stream, oldest
// first. These are sent again on the next stream: the only stanzas that can
// arrive twice. A stream whose flights were all confirmed is left out.
func (tr *StreamTrace) Unconfirmed(domain string) map[int][][]string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	out, in := map[int]*strings.Builder{}, map[int]*strings.Builder{}
	closed := map[int]bool{}
	for _, e := range tr.events {
		if tr.domains[e.conn-1] != domain {
			continue
		}
		switch e.dir {
		case "close":
			closed[e.conn] = true
		case "out", "in":
			m := out
			if e.dir == "in" {
				m = in
			}
			if m[e.conn] == nil {
				m[e.conn] = &strings.Builder{}
			}
			m[e.conn].WriteString(e.data)
		}
	}
	res := map[int][][]string{}
	for conn := range closed {
		if out[conn] == nil {
			continue
		}
		answered := map[string]bool{}
		if in[conn] != nil {
			for _, el := range topLevel(in[conn].String()) {
				if el.name == "iq" && (el.typ == "result" || el.typ == "error") {
					answered[el.id] = true
				}
			}
		}
		var flight []string
		for _, el := range topLevel(out[conn].String()) {
			switch {
			case el.name == "iq" && strings.HasPrefix(el.id, barrierPrefix) && strings.HasSuffix(el.id, leadSuffix):
				flight = nil
			case el.name == "iq" && strings.HasPrefix(el.id, barrierPrefix):
				if !answered[el.id] && len(flight) > 0 {
					res[conn] = append(res[conn], flight)
				}
				flight = nil
			case el.name == "message" || el.name == "presence":
				flight = append(flight, el.id)
			}
		}
	}
	return res
}

type element struct{ name, id, typ string }

// topLevel lists the elements directly inside the stream's root element in
// raw, which may end in the middle of one.
func topLevel(raw string) []element {
	d := xml.NewDecoder(strings.NewReader(raw))
	d.Strict = false
	var els []element
	depth := 0
	for {
		tok, err := d.RawToken()
		if err == io.EOF || err != nil {
			return els
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 2 {
				el := element{name: t.Name.Local}
				for _, a := range t.Attr {
					switch a.Name.Local {
					case "id":
						el.id = a.Value
					case "type":
						el.typ = a.Value
					}
				}
				els = append(els, el)
			}
		case xml.EndElement:
			depth--
		}
	}
}

type tracedConn struct {
	net.Conn
	tr *StreamTrace
	n  int
}

func (c *tracedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.tr.add(c.n, "in", string(p[:n]))
	}
	if err != nil {
		c.tr.add(c.n, "err", "read: "+err.Error())
	}
	return n, err
}

func (c *tracedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.tr.add(c.n, "out", string(p[:n]))
	}
	if err != nil {
		c.tr.add(c.n, "err", "write: "+err.Error())
	}
	return n, err
}

func (c *tracedConn) Close() error {
	c.tr.add(c.n, "close", "")
	return c.Conn.Close()
}

func TestStreamTraceUnconfirmed(t *testing.T) {
	tr := &StreamTrace{domains: []string{"lemp.x", "rooms.x", "lemp.x", "lemp.x"}}
	head := `<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='lemp.x'>`
	flight := func(n int, msg string) string {
		return fmt.Sprintf(`<iq type="get" id="lgw-b-%d-lead"><ping xmlns="urn:xmpp:ping"></ping></iq>`+
			`<message id=%q to="bob@x"><body>b</body></message>`+
			`<iq type="get" id="lgw-b-%d"><ping xmlns="urn:xmpp:ping"></ping></iq>`, n, msg, n)
	}
	pong := func(id string) string { return fmt.Sprintf(`<iq type='result' id='%s'/>`, id) }
	// Stream 1 (closed): k1 confirmed, k2 and k3 not (k2's leading ping was).
	tr.add(1, "out", head+flight(1, "k1")+flight(2, "k2")[:90])
	tr.add(1, "out", flight(2, "k2")[90:]+flight(3, "k3"))
	tr.add(1, "in", `<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' id='s1'>`+pong("lgw-b-1-lead")+pong("lgw-b-1")+pong("lgw-b-2-lead")[:10])
	tr.add(1, "in", pong("lgw-b-2-lead")[10:])
	tr.add(1, "close", "")
	// Stream 2: another domain.
	tr.add(2, "out", head+flight(9, "r1"))
	tr.add(2, "close", "")
	// Stream 3 (closed): everything confirmed. Stream 4: still open.
	tr.add(3, "out", head+flight(4, "k4"))
	tr.add(3, "in", `<stream:stream>`+pong("lgw-b-4"))
	tr.add(3, "close", "")
	tr.add(4, "out", head+flight(5, "k5"))

	if got, want := fmt.Sprint(tr.Unconfirmed("lemp.x")), "map[1:[[k2] [k3]]]"; got != want {
		t.Fatalf("Unconfirmed = %s, want %s", got, want)
	}
	if got, want := fmt.Sprint(tr.Unconfirmed("rooms.x")), "map[2:[[r1]]]"; got != want {
		t.Fatalf("Unconfirmed(rooms) = %s, want %s", got, want)
	}
}

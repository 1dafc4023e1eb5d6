package muc

import (
	"context"
	"encoding/xml"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lempgw/lempgw/bridge"
	"github.com/lempgw/lempgw/mapping"
)

// memBackend is a small in-memory Backend: rooms, history, and a log of
// what was asked of it. Admin and SetSubject change the rooms as the core
// would (the real Backend is the lead's adapter over bridge.Core, tested
// against real servers).
type memBackend struct {
	mu        sync.Mutex
	rooms     map[string]Room
	history   map[string][]*bridge.Message
	posts     []*bridge.Message
	subjects  []string // "room actor subject"
	admin     []string // "room actor op target,target"
	roomCalls int

	roomErr, postErr, historyErr, subjectErr, adminErr error
}

func (b *memBackend) Room(_ context.Context, id string) (Room, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.roomCalls++
	if b.roomErr != nil {
		return Room{}, b.roomErr
	}
	r, ok := b.rooms[id]
	if !ok {
		return Room{}, ErrNoRoom
	}
	return cloneRoom(r), nil
}

func (b *memBackend) Post(_ context.Context, room, from string, m *bridge.Message) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.postErr != nil {
		return b.postErr
	}
	if m.S != from || m.R != room || m.ID == "" {
		return errors.New("post: inconsistent message")
	}
	cp := *m
	b.posts = append(b.posts, &cp)
	b.history[room] = append(b.history[room], &cp)
	return nil
}

func (b *memBackend) History(_ context.Context, room string, max int) ([]*bridge.Message, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.historyErr != nil {
		return nil, b.historyErr
	}
	h := b.history[room]
	if len(h) > max {
		h = h[len(h)-max:]
	}
	return slices.Clone(h), nil
}

func (b *memBackend) SetSubject(_ context.Context, room, actor, subject string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.subjectErr != nil {
		return b.subjectErr
	}
	r := b.rooms[room]
	r.Name = subject
	b.rooms[room] = r
	b.subjects = append(b.subjects, room+" "+actor+" "+subject)
	return nil
}

func (b *memBackend) Admin(_ context.Context, room, actor, op string, targets []string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.adminErr != nil {
		return b.adminErr
	}
	b.admin = append(b.admin, room+" "+actor+" "+op+" "+strings.Join(targets, ","))
	r := b.rooms[room]
	switch op {
	case OpAdd:
		r.Members = append(r.Members, targets...)
	case OpAdmin:
		r.Admins = append(r.Admins, targets...)
		for _, t := range targets {
			if !slices.Contains(r.Members, t) {
				r.Members = append(r.Members, t)
			}
		}
	case OpBanish:
		del := func(s string) bool { return slices.Contains(targets, s) }
		r.Members = slices.DeleteFunc(r.Members, del)
		r.Admins = slices.DeleteFunc(r.Admins, del)
	case OpTerminate:
		r.Terminated = true
	}
	b.rooms[room] = r
	return nil
}

func (b *memBackend) room(id string) Room {
	b.mu.Lock()
	defer b.mu.Unlock()
	return cloneRoom(b.rooms[id])
}

func cloneRoom(r Room) Room {
	r.Admins = slices.Clone(r.Admins)
	r.Members = slices.Clone(r.Members)
	return r
}

// listerBackend adds RoomLister.
type listerBackend struct{ *memBackend }

func (b listerBackend) RoomsOf(_ context.Context, member string) ([]Room, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Room
	for _, r := range b.rooms {
		if slices.Contains(r.Members, member) {
			out = append(out, cloneRoom(r))
		}
	}
	return out, nil
}

// The test world: room g1 with LEMP users alice (owner) and bob, Jabber
// users romeo (admin) and juliet; nurse is a Jabber user who is no member.
const (
	domain    = "rooms.example.org"
	usersDom  = "lemp.example.org"
	room      = "g1@rooms.example.org"
	romeo     = "romeo@montague.lit"
	romeoFull = "romeo@montague.lit/orchard"
	juliet    = "juliet@capulet.lit"
	julietPC  = "juliet@capulet.lit/balcony"
	julietPh  = "juliet@capulet.lit/phone"
	nurse     = "nurse@capulet.lit/kitchen"
)

var t0 = time.Date(2025, 11, 23, 12, 0, 0, 0, time.UTC)

func newWorld(t testing.TB) (*Service, *memBackend) {
	t.Helper()
	b := &memBackend{
		rooms: map[string]Room{
			"g1": {ID: "g1", Name: "Verona", Owner: "alice", Admins: []string{"alice", romeo},
				Members: []string{"alice", "bob", romeo, juliet}},
			"old": {ID: "old", Name: "Old", Owner: "alice", Admins: []string{"alice"}, Members: []string{"alice", juliet}, Terminated: true},
		},
		history: map[string][]*bridge.Message{
			"g1": {
				{ID: "h1", S: "alice", R: "g1", T: "t", C: "first", ST: bridge.Millis(t0.Add(-2 * time.Hour).UnixMilli())},
				{ID: "h2", S: romeo, R: "g1", T: "p", C: "https://example.org/a.jpg", ST: bridge.Millis(t0.Add(-30 * time.Minute).UnixMilli())},
			},
		},
	}
	s := newService(t, b)
	return s, b
}

func newService(t testing.TB, b Backend) *Service {
	t.Helper()
	s, err := New(Config{
		Domain:  domain,
		Users:   mapping.Addresser{Domain: usersDom, Resource: "lemp"},
		Backend: b,
		Now:     func() time.Time { return t0 },
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// node is a parsed XML element, for assertions.
type node struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Text    string     `xml:",chardata"`
	Kids    []node     `xml:",any"`
}

func (n *node) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name && (a.Name.Space == "" || a.Name.Space == "xml") {
			return a.Value
		}
	}
	return ""
}

func (n *node) has(name string) bool {
	for _, a := range n.Attrs {
		if a.Name.Local == name && a.Name.Space == "" {
			return true
		}
	}
	return false
}

// find returns the first descendant with that namespace ("" any) and name.
func (n *node) find(space, local string) *node {
	for i := range n.Kids {
		k := &n.Kids[i]
		if k.XMLName.Local == local && (space == "" || k.XMLName.Space == space) {
			return k
		}
		if f := k.find(space, local); f != nil {
			return f
		}
	}
	return nil
}

// kid returns the first child with that name.
func (n *node) kid(local string) *node {
	for i := range n.Kids {
		if n.Kids[i].XMLName.Local == local {
			return &n.Kids[i]
		}
	}
	return nil
}

// codes are the muc#user status codes of a stanza.
func (n *node) codes() []string {
	x := n.find(nsUser, "x")
	if x == nil {
		return nil
	}
	var out []string
	for _, k := range x.Kids {
		if k.XMLName.Local == "status" {
			out = append(out, k.attr("code"))
		}
	}
	slices.Sort(out)
	return out
}

// item is the muc#user item of a presence.
func (n *node) item() *node {
	if x := n.find(nsUser, "x"); x != nil {
		return x.kid("item")
	}
	return nil
}

// condition is the defined condition of a stanza error, and its type.
func (n *node) condition() (cond, typ string) {
	e := n.kid("error")
	if e == nil {
		return "", ""
	}
	for _, k := range e.Kids {
		if k.XMLName.Space == "urn:ietf:params:xml:ns:xmpp-stanzas" && k.XMLName.Local != "text" {
			return k.XMLName.Local, e.attr("type")
		}
	}
	return "", e.attr("type")
}

func (n *node) String() string {
	b, _ := xml.Marshal(n)
	return string(b)
}

// parse marshals what the engine returned and reads it back, inside a
// stream-like root whose default namespace is the component's.
func parse(t testing.TB, out []any) []node {
	t.Helper()
	nodes := make([]node, 0, len(out))
	for _, v := range out {
		b, err := xml.Marshal(v)
		if err != nil {
			t.Fatalf("marshal %T: %v", v, err)
		}
		var root struct {
			Kids []node `xml:",any"`
		}
		doc := "<stream xmlns='jabber:component:accept'>" + string(b) + "</stream>"
		if err := xml.Unmarshal([]byte(doc), &root); err != nil {
			t.Fatalf("unmarshal %s: %v", b, err)
		}
		if len(root.Kids) != 1 {
			t.Fatalf("%s: %d elements", b, len(root.Kids))
		}
		nodes = append(nodes, root.Kids[0])
	}
	return nodes
}

func decode(t testing.TB, raw string) *Stanza {
	t.Helper()
	st, err := decodeString(raw)
	if err != nil {
		t.Fatalf("Decode(%s): %v", raw, err)
	}
	return st
}

func decodeString(raw string) (*Stanza, error) {
	d := xml.NewDecoder(strings.NewReader(raw))
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		if se, ok := tok.(xml.StartElement); ok {
			return Decode(se.Copy(), d)
		}
	}
}

// handle runs one stanza through Decode and Handle.
func handle(t testing.TB, s *Service, raw string) []node {
	t.Helper()
	return parse(t, s.Handle(context.Background(), decode(t, raw)))
}

// to filters stanzas by recipient.
func to(ns []node, jid string) []node {
	var out []node
	for _, n := range ns {
		if n.attr("to") == jid {
			out = append(out, n)
		}
	}
	return out
}

// join makes full join room g1 as nick and returns what it got.
func join(t testing.TB, s *Service, full, nick string) []node {
	t.Helper()
	return handle(t, s, `<presence from='`+full+`' to='g1@rooms.example.org/`+nick+`' id='j1'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
}

// wantError checks that out is exactly one error stanza of the given name,
// condition and type, answering from addressed to sender.
func wantError(t testing.TB, out []node, name, cond, typ, from, to string) {
	t.Helper()
	if len(out) != 1 {
		t.Fatalf("want one %s error, got %d stanzas: %v", name, len(out), out)
	}
	n := out[0]
	c, ty := n.condition()
	if n.XMLName.Local != name || n.attr("type") != "error" || c != cond || ty != typ {
		t.Fatalf("want %s error %s/%s, got %s", name, typ, cond, n.String())
	}
	if n.attr("from") != from || n.attr("to") != to {
		t.Fatalf("error from %q to %q, want from %q to %q", n.attr("from"), n.attr("to"), from, to)
	}
}

package xmppside

import (
	"context"
	"encoding/xml"
	"fmt"
	"strings"
	"sync"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/lempgw/lempgw/bridge"
	"github.com/lempgw/lempgw/mapping"
)

// Server rooms: a LEMP group whose id is the bare JID of a room of the XMPP
// server. The gateway joins that room on behalf of each LEMP member, with
// an occupant of the member's own JID (username@<domain>/lemp) and the
// username as nick. Room messages addressed to that occupant go to that
// member alone (bridge.Core.RoomMessage); a member's group message is
// delivered to the other LEMP members by the core and sent into the room
// from the member's occupant, for the Jabber occupants. The room's copies of
// messages by our own occupants are dropped: LEMP members already have them.
//
// Occupancy is presence: it lives on the component stream. Every member
// joins again whenever the stream comes back (asking the room for the
// history since the stream dropped), and an XEP-0410 self-ping finds
// occupants a room forgot without the stream dropping (a room service
// restarted on its own).

// selfPingEvery is how often each occupant checks it is still in its room.
const selfPingEvery = 5 * time.Minute

// roomPresence is a presence read from a server room: occupant presence
// with its muc#user item (the occupant's real JID when the room reveals
// it) and status codes.
type roomPresence struct {
	XMLName xml.Name `xml:"presence"`
	From    string   `xml:"from,attr"`
	To      string   `xml:"to,attr"`
	Type    string   `xml:"type,attr"`
	X       *struct {
		Item *struct {
			JID  string `xml:"jid,attr"`
			Role string `xml:"role,attr"`
		} `xml:"item"`
		Status []struct {
			Code string `xml:"code,attr"`
		} `xml:"status"`
	} `xml:"http://jabber.org/protocol/muc#user x"`
	Error *struct {
		Type string `xml:"type,attr"`
		Cond []struct {
			XMLName xml.Name
		} `xml:",any"`
	} `xml:"error"`
}

func (p *roomPresence) hasStatus(code string) bool {
	if p.X == nil {
		return false
	}
	for _, s := range p.X.Status {
		if s.Code == code {
			return true
		}
	}
	return false
}

// serverRooms is the gateway's view of the server rooms it sits in.
type serverRooms struct {
	mu    sync.Mutex
	rooms map[string]*serverRoom // room bare JID (lower case) -> state
	// downSince is when the stream last dropped: the history asked for on
	// rejoin starts there. Zero: no drop seen (no history is asked for).
	downSince time.Time
}

type serverRoom struct {
	members map[string]bool   // LEMP members -> their occupant is in (self-presence seen)
	real    map[string]string // nick -> real bare JID, when the room reveals it
}

func (s *serverRooms) room(id string) *serverRoom {
	if s.rooms == nil {
		s.rooms = map[string]*serverRoom{}
	}
	r := s.rooms[id]
	if r == nil {
		r = &serverRoom{members: map[string]bool{}, real: map[string]string{}}
		s.rooms[id] = r
	}
	return r
}

// known reports whether bare is a server room the gateway is in.
func (s *serverRooms) known(bare string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.rooms[strings.ToLower(bare)]
	return ok
}

// occupant returns the full JID of user's occupant client and the
// occupant JID room/<user>.
func (c *Component) occupant(room, user string) (from, occ jid.JID, err error) {
	if from, err = c.addr.LocalJID(user); err != nil {
		return from, occ, err
	}
	to, err := mapping.ParseAddress(room)
	if err != nil {
		return from, occ, err
	}
	occ, err = to.WithResource(user)
	return from, occ, err
}

// joinStanza is the presence that puts user's occupant in room.
func (c *Component) joinStanza(room, user string, since time.Time) (any, error) {
	from, occ, err := c.occupant(room, user)
	if err != nil {
		return nil, err
	}
	type history struct {
		MaxStanzas string `xml:"maxstanzas,attr,omitempty"`
		Since      string `xml:"since,attr,omitempty"`
	}
	h := history{MaxStanzas: "0"}
	if !since.IsZero() {
		h = history{Since: since.UTC().Format(time.RFC3339)}
	}
	type x struct {
		XMLName xml.Name `xml:"http://jabber.org/protocol/muc x"`
		History history  `xml:"history"`
	}
	return struct {
		XMLName xml.Name `xml:"presence"`
		From    string   `xml:"from,attr"`
		To      string   `xml:"to,attr"`
		X       x
	}{From: from.String(), To: occ.String(), X: x{History: h}}, nil
}

// leaveStanza is the presence that takes user's occupant out of room.
func (c *Component) leaveStanza(room, user string) (any, error) {
	from, occ, err := c.occupant(room, user)
	if err != nil {
		return nil, err
	}
	return mapping.Presence{From: from.String(), To: occ.String(), Type: "unavailable"}, nil
}

// joinAll puts every LEMP member of every server room in its room: at
// link-up, and from the self-ping loop.
func (c *Component) joinAll(ctx context.Context) {
	rooms, err := c.core.ServerRooms(ctx)
	if err != nil {
		c.log.Error("listing server rooms to join", "err", err)
		return
	}
	c.srooms.mu.Lock()
	since := c.srooms.downSince
	for id, members := range rooms {
		r := c.srooms.room(id)
		for _, u := range members {
			r.members[u] = false
		}
	}
	c.srooms.mu.Unlock()
	for id, members := range rooms {
		c.log.Debug("joining a server room", "room", id, "members", len(members), "since", since)
		for _, u := range members {
			if st, err := c.joinStanza(id, u, since); err == nil {
				c.sendNow(ctx, st)
			} else {
				c.log.Warn("joining a server room", "room", id, "user", u, "err", err)
			}
		}
	}
}

// serverRoomEvent maps a server room's group event to joins and leaves.
func (c *Component) serverRoomEvent(ctx context.Context, g *bridge.GroupInfo) ([]any, error) {
	room := strings.ToLower(g.I)
	var join, leave []string
	switch g.T {
	case "c":
		rooms, err := c.core.ServerRooms(ctx)
		if err != nil {
			return nil, err
		}
		join = rooms[room]
	case "a":
		join = names(g.M)
	case "b", "l":
		leave = names(g.M)
	case "t":
		c.srooms.mu.Lock()
		for u := range c.srooms.room(room).members {
			leave = append(leave, u)
		}
		c.srooms.mu.Unlock()
	}
	c.srooms.mu.Lock()
	r := c.srooms.room(room)
	for _, u := range join {
		if _, in := r.members[u]; !in {
			r.members[u] = false
		}
	}
	for _, u := range leave {
		delete(r.members, u)
	}
	if g.T == "t" {
		delete(c.srooms.rooms, room)
	}
	c.srooms.mu.Unlock()
	var out []any
	for _, u := range join {
		if st, err := c.joinStanza(room, u, time.Time{}); err == nil {
			out = append(out, st)
		}
	}
	for _, u := range leave {
		if st, err := c.leaveStanza(room, u); err == nil {
			out = append(out, st)
		}
	}
	return out, nil
}

// names reads a GroupInfo's m: one name or a list, after a JSON round trip.
func names(m any) []string {
	switch v := m.(type) {
	case string:
		return []string{v}
	case []string:
		return v
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// serverRoomMessage maps a member's queued message to a groupchat from its
// occupant into the room.
func (c *Component) serverRoomMessage(m *bridge.Message) ([]any, error) {
	from, err := c.addr.LocalJID(m.S)
	if err != nil {
		return nil, fmt.Errorf("sender %q: %w", m.S, err)
	}
	to, err := mapping.ParseAddress(m.R)
	if err != nil {
		return nil, fmt.Errorf("room %q: %w", m.R, err)
	}
	st := mapping.ToStanza(m, from, to, false)
	st.Type = "groupchat"
	// Receipts and markers are not asked for in a room.
	st.Request, st.Markable = nil, nil
	return []any{st}, nil
}

// serverRoomPresence tracks occupants of a server room: our own members'
// self-presence (joined) and the real JIDs of the others.
func (c *Component) serverRoomPresence(ctx context.Context, p *roomPresence) {
	room, nick, _ := strings.Cut(p.From, "/")
	room = strings.ToLower(room)
	user, err := c.localUser(p.To)
	if err != nil {
		c.drop("room presence to a JID that is no user", err)
		return
	}
	c.srooms.mu.Lock()
	defer c.srooms.mu.Unlock()
	r, ok := c.srooms.rooms[room]
	if !ok {
		return
	}
	switch {
	case p.Type == "error":
		cond := ""
		if p.Error != nil && len(p.Error.Cond) > 0 {
			cond = p.Error.Cond[0].XMLName.Local
		}
		if _, member := r.members[user]; member {
			r.members[user] = false
		}
		c.log.Warn("a server room refused a LEMP member's occupant", "room", room, "user", user, "condition", cond)
		c.metrics.dropped.WithLabelValues("room-join").Inc()
	case p.hasStatus("110"): // about our own occupant
		if _, member := r.members[user]; member {
			r.members[user] = p.Type != "unavailable"
		}
	case nick != "":
		if p.Type == "unavailable" {
			delete(r.real, nick)
		} else if p.X != nil && p.X.Item != nil && p.X.Item.JID != "" {
			r.real[nick] = strings.ToLower(bareOf(p.X.Item.JID))
		}
	}
}

// serverRoomInbound routes a groupchat from a server room to the LEMP member
// whose occupant it was addressed to.
func (c *Component) serverRoomInbound(ctx context.Context, m *mapping.Message) {
	if m.Type == "error" {
		var cond string
		if m.Error != nil {
			cond = string(m.Error.Condition)
		}
		c.log.Debug("error from a server room", "from", m.From, "to", m.To, "id", m.ID, "condition", cond)
		c.drop("error from a server room", nil)
		return
	}
	user, err := c.localUser(m.To)
	if err != nil {
		c.drop("room message to a JID that is no user", err)
		return
	}
	room, nick, _ := strings.Cut(m.From, "/")
	room = strings.ToLower(room)
	if nick == "" {
		return // from the room itself (subject, status): nothing for LEMP
	}
	c.srooms.mu.Lock()
	r := c.srooms.rooms[room]
	var author string
	own := false
	if r != nil {
		author = r.real[nick]
		// Our own members' messages: the core gave the other LEMP members
		// their copies already.
		_, own = r.members[nick]
		if author != "" {
			if j, err := jid.Parse(author); err == nil && c.addr.IsLocalDomain(j.Domainpart()) {
				own = true
			}
		}
	}
	c.srooms.mu.Unlock()
	if own {
		return
	}
	if author == "" {
		author = room + "/" + nick
	}
	chat := *m
	chat.Type = mapping.MessageTypeChat // FromStanza maps chats; this is one, in a room
	lm, kind, err := mapping.FromStanza(&chat, c.now())
	if err != nil || kind != mapping.KindChat {
		return // subjects, chat states, receipts, markers: nothing for LEMP
	}
	lm.S, lm.R = author, room
	if e := c.core.RoomMessage(ctx, user, lm); e != nil {
		c.log.Warn("server room message", "room", room, "user", user, "err", e)
		return
	}
	c.metrics.messages.WithLabelValues("xmpp-lemp").Inc()
}

// checkRooms runs every interval: each LEMP member's occupant in a server
// room checks it is still in (XEP-0410 self-ping), and every member whose
// occupant is not in (refused, removed, forgotten by a room service that
// restarted, a room destroyed and made again) joins again.
func (c *Component) checkRooms(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		if !c.link.isUp() {
			continue // joinAll runs when it comes back
		}
		type occ struct {
			room, user string
			in         bool
		}
		var all []occ
		c.srooms.mu.Lock()
		since := c.srooms.downSince
		for id, r := range c.srooms.rooms {
			for u, in := range r.members {
				all = append(all, occ{id, u, in})
			}
		}
		c.srooms.mu.Unlock()
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		for _, o := range all {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				if o.in && c.selfPing(ctx, o.room, o.user) {
					return
				}
				c.metrics.roomRejoins.Inc()
				if st, err := c.joinStanza(o.room, o.user, since); err == nil {
					c.sendNow(ctx, st)
				}
			}()
		}
		wg.Wait()
	}
}

// selfPing asks room whether user's occupant is in (XEP-0410): a result, or
// the errors a joined client's own answer can give (service-unavailable,
// feature-not-implemented), mean it is; any other error that it is not. No
// answer at all counts as in: the link's own keepalive deals with a dead
// stream.
func (c *Component) selfPing(ctx context.Context, room, user string) bool {
	sess := c.link.current()
	if sess == nil {
		return true
	}
	from, occ, err := c.occupant(room, user)
	if err != nil {
		return true
	}
	id, ch := c.queries.add()
	defer c.queries.forget(id)
	iq := iqOut{ID: id, From: from.String(), To: occ.String(), Type: "get",
		Payload: struct{ XMLName xml.Name }{xml.Name{Space: nsPing, Local: "ping"}}}
	if err := sess.Encode(context.WithoutCancel(ctx), iq); err != nil {
		return true
	}
	select {
	case ans := <-ch:
		if ans.err != nil || ans.a.Type == "result" {
			return true
		}
		cond := ""
		if ans.a.Error != nil && len(ans.a.Error.Cond) > 0 {
			cond = ans.a.Error.Cond[0].XMLName.Local
		}
		in := cond == "service-unavailable" || cond == "feature-not-implemented"
		if !in {
			c.log.Info("a LEMP member's occupant is no longer in its server room; rejoining", "room", room, "user", user, "condition", cond)
			c.srooms.mu.Lock()
			if r := c.srooms.rooms[room]; r != nil {
				if _, member := r.members[user]; member {
					r.members[user] = false
				}
			}
			c.srooms.mu.Unlock()
		}
		return in
	case <-time.After(iqTimeout * 5):
		return true
	case <-ctx.Done():
		return true
	}
}

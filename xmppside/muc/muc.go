package muc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/lempgw/lempgw/bridge"
	"github.com/lempgw/lempgw/mapping"
)

// ErrNoRoom is what Backend.Room returns when no live group has the id.
var ErrNoRoom = errors.New("muc: no such room")

// Room is a hosted room as the gateway's state has it: a LEMP group.
type Room struct {
	ID         string   // room localpart = group id (lower case, no '@')
	Name       string   // room name and subject
	Picture    string   // URL or data: URL; the room's vCard PHOTO
	Owner      string   // username (LEMP user) or bare JID (Jabber user)
	Admins     []string // usernames or bare JIDs
	Members    []string // usernames or bare JIDs; includes Owner and Admins
	Terminated bool
}

// Backend is what the engine needs from the gateway; the lead implements it
// over bridge.Core. actor/from below is always a Jabber user's bare JID.
// Errors that are *bridge.Error map to stanza errors with mapping.ErrorFor(code);
// other errors are internal-server-error.
type Backend interface {
	// Room returns the room; ErrNoRoom when no live group has that id (a
	// terminated group may be returned with Terminated set, or as ErrNoRoom).
	Room(ctx context.Context, id string) (Room, error)
	// Post makes a Jabber member's groupchat message durable for the room's
	// LEMP members (m.S = from, m.R = room id, m.ID = the stanza's origin-id
	// or id, never empty). Nil = accepted.
	Post(ctx context.Context, room, from string, m *bridge.Message) error
	// History returns up to max recent messages of the room, oldest first
	// (m.S author, m.ST stamp).
	History(ctx context.Context, room string, max int) ([]*bridge.Message, error)
	// SetSubject renames the group (admins only, the backend checks).
	SetSubject(ctx context.Context, room, actor, subject string) error
	// Admin changes membership on a Jabber admin's request: op "add"
	// (affiliation member), "admin" (affiliation admin), "banish"
	// (affiliation none/outcast or a kick), "terminate" (destroy).
	Admin(ctx context.Context, room, actor, op string, targets []string) error
}

// RoomLister is an optional ability of a Backend: the live rooms a Jabber
// user (bare JID) is a member of. With it, disco#items of the service lists
// them; without it, the list is empty.
type RoomLister interface {
	RoomsOf(ctx context.Context, member string) ([]Room, error)
}

// Admin operations passed to Backend.Admin.
const (
	OpAdd       = "add"
	OpAdmin     = "admin"
	OpBanish    = "banish"
	OpTerminate = "terminate"
)

// Config configures a Service. Domain, Users.Domain and Backend are required.
type Config struct {
	Domain  string            // the MUC component domain, e.g. rooms.example.org
	Users   mapping.Addresser // username -> real JID (username@<xmpp.domain>) of LEMP members
	Backend Backend
	History int              // messages sent on join; 0 = 20, negative = none
	Now     func() time.Time // default time.Now
	Log     *slog.Logger     // default: discard
}

// DefaultHistory is the number of messages sent on join when Config.History is 0.
const DefaultHistory = 20

// Limits on what one Jabber user can make the engine hold.
const (
	maxSessionsPerUser = 16   // occupants (nicks) of one bare JID in one room
	maxNickBytes       = 1023 // RFC 7622 resourcepart
	maxAdminItems      = 100  // items in one muc#admin set
	maxStatusBytes     = 1024 // presence status kept per occupant
	pendingTTL         = time.Minute
)

// Service is the MUC service: the room engine of one component domain.
// Its methods are safe for concurrent use.
type Service struct {
	domain  string
	users   mapping.Addresser
	backend Backend
	history int
	now     func() time.Time
	log     *slog.Logger

	mu    sync.Mutex
	rooms map[string]*roomState // room id -> its Jabber occupants; absent = none

	jidMu sync.Mutex
	jids  map[string]string // username -> real JID ("" none), see realJID
}

// New checks cfg and returns a Service with no occupants.
func New(cfg Config) (*Service, error) {
	if cfg.Backend == nil {
		return nil, errors.New("muc: no backend")
	}
	d, err := jid.Parse(strings.TrimSuffix(cfg.Domain, "."))
	if err != nil || cfg.Domain == "" || d.Localpart() != "" || d.Resourcepart() != "" {
		return nil, fmt.Errorf("muc: domain %q is not a domain name", cfg.Domain)
	}
	if cfg.Users.Domain == "" {
		return nil, errors.New("muc: no users domain (Users.Domain)")
	}
	if cfg.Users.IsLocalDomain(d.Domainpart()) {
		return nil, fmt.Errorf("muc: domain %q is also the users' domain", cfg.Domain)
	}
	s := &Service{
		domain:  d.Domainpart(),
		users:   cfg.Users,
		backend: cfg.Backend,
		history: cfg.History,
		now:     cfg.Now,
		log:     cfg.Log,
		rooms:   map[string]*roomState{},
		jids:    map[string]string{},
	}
	if s.history == 0 {
		s.history = DefaultHistory
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return s, nil
}

// Domain returns the service's domain as it writes it.
func (s *Service) Domain() string { return s.domain }

// Occupant is one Jabber occupant of a room.
type Occupant struct {
	Nick        string
	JID         string // full JID
	Bare        string
	Role        string // moderator or participant
	Affiliation string // owner, admin or member
}

// Occupants lists the Jabber occupants of a room, by nick.
func (s *Service) Occupants(room string) []Occupant {
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := s.rooms[strings.ToLower(room)]
	if rs == nil {
		return nil
	}
	out := make([]Occupant, 0, len(rs.byNick))
	for _, o := range rs.sorted() {
		out = append(out, Occupant{Nick: o.nick, JID: o.full, Bare: o.bare, Role: roleOf(o.aff), Affiliation: o.aff})
	}
	return out
}

// OccupantCount returns the number of Jabber occupants in all rooms and the
// number of rooms that have any (for metrics).
func (s *Service) OccupantCount() (occupants, rooms int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rs := range s.rooms {
		occupants += len(rs.byNick)
	}
	return occupants, len(s.rooms)
}

// Reset forgets every occupant: the link dropped, and the server told the
// clients nothing. Their XEP-0410 self-pings now fail, and they rejoin.
func (s *Service) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rooms = map[string]*roomState{}
}

// occupant is a Jabber occupant: one full JID under one nick.
type occupant struct {
	nick   string
	full   string
	bare   string
	aff    string // owner, admin or member, as last announced
	show   string
	status string
}

// roomState is what the engine holds for a room with Jabber occupants.
type roomState struct {
	id     string
	byNick map[string]*occupant
	byFull map[string]*occupant
	// lemp is the LEMP members as last announced to the occupants:
	// username -> affiliation.
	lemp map[string]string
	// pending removals requested by Jabber admins (muc#admin set), read when
	// the event that carries them out arrives: target -> how to say it.
	pending map[string]removal
	// subject a Jabber admin set, so that the "n" event it causes is not
	// announced twice.
	subject *pendingSubject
}

// exitFor says how addr leaves when a Jabber admin's request is pending for
// it, else returns def. Under s.mu.
func (rs *roomState) exitFor(addr string, now time.Time, def exit) exit {
	if p, ok := rs.pending[addr]; ok && now.Sub(p.at) < pendingTTL {
		return exit{codes: []string{p.code}, reason: p.reason, actor: p.actor}
	}
	return def
}

type removal struct {
	code   string // 307 kick, 301 ban, 321 affiliation change
	reason string
	actor  string // nick of the admin
	at     time.Time
}

type pendingSubject struct {
	actor, subject string
	at             time.Time
}

func newRoomState(id string) *roomState {
	return &roomState{id: id, byNick: map[string]*occupant{}, byFull: map[string]*occupant{}, pending: map[string]removal{}}
}

// sorted returns the occupants by nick.
func (rs *roomState) sorted() []*occupant {
	out := make([]*occupant, 0, len(rs.byNick))
	for _, o := range rs.byNick {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].nick < out[j].nick })
	return out
}

func (rs *roomState) add(o *occupant) {
	rs.byNick[o.nick] = o
	rs.byFull[o.full] = o
}

func (rs *roomState) remove(o *occupant) {
	delete(rs.byNick, o.nick)
	delete(rs.byFull, o.full)
}

// sessionsOf counts the occupants of one bare JID.
func (rs *roomState) sessionsOf(bare string) int {
	n := 0
	for _, o := range rs.byNick {
		if o.bare == bare {
			n++
		}
	}
	return n
}

// room returns the state of a room, creating it; drop removes it when it has
// no occupants left. Both under s.mu.
func (s *Service) room(id string) *roomState {
	rs := s.rooms[id]
	if rs == nil {
		rs = newRoomState(id)
		s.rooms[id] = rs
	}
	return rs
}

func (s *Service) drop(rs *roomState) {
	if len(rs.byNick) == 0 && s.rooms[rs.id] == rs {
		delete(s.rooms, rs.id)
	}
}

// Affiliations and roles.
const (
	affOwner  = "owner"
	affAdmin  = "admin"
	affMember = "member"
	affNone   = "none"
)

func roleOf(aff string) string {
	switch aff {
	case affOwner, affAdmin:
		return "moderator"
	case affMember:
		return "participant"
	}
	return "none"
}

func isAdmin(aff string) bool { return aff == affOwner || aff == affAdmin }

// view is a Room with its affiliations indexed by normalised address.
type view struct {
	Room
	aff  map[string]string // username or bare JID -> owner/admin/member
	lemp []string          // LEMP usernames, sorted
}

func newView(r Room) *view {
	v := &view{Room: r, aff: map[string]string{}}
	set := func(name, aff string) {
		k := normAddr(name)
		if k == "" {
			return
		}
		if _, ok := v.aff[k]; !ok {
			v.aff[k] = aff
		}
	}
	set(r.Owner, affOwner)
	for _, a := range r.Admins {
		set(a, affAdmin)
	}
	for _, m := range r.Members {
		set(m, affMember)
	}
	for k := range v.aff {
		if !bridge.IsJID(k) {
			v.lemp = append(v.lemp, k)
		}
	}
	sort.Strings(v.lemp)
	return v
}

// affOf returns the affiliation of a username or bare JID, "none" if it is
// no member.
func (v *view) affOf(addr string) string {
	if a, ok := v.aff[normAddr(addr)]; ok {
		return a
	}
	return affNone
}

// jabberAff returns the affiliation of a Jabber sender (bare JID): "none"
// for an address without a localpart, which could otherwise pass for a
// username.
func (v *view) jabberAff(bare string) string {
	if !isUser(bare) {
		return affNone
	}
	return v.affOf(bare)
}

// normAddr is the comparable form of a member: a folded username, or a bare
// JID as mellium normalises it (lower-cased when it does not parse).
func normAddr(a string) string {
	a = strings.TrimSpace(a)
	if !bridge.IsJID(a) {
		return bridge.FoldUsername(a)
	}
	if j, err := mapping.ParseAddress(a); err == nil {
		return j.String()
	}
	return strings.ToLower(a)
}

// errText is the stanza error text of a backend error.
func backendError(err error) (code int, desc string) {
	var e *bridge.Error
	if errors.As(err, &e) {
		return e.Code, e.Desc
	}
	return bridge.CodeInternal, ""
}

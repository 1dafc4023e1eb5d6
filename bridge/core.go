package bridge

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/lempgw/lempgw/state"
)

// Local is what the core needs from the LEMP side: its live sessions.
// Implemented by lempside.Hub. Every method must return quickly and never
// block on a client.
type Local interface {
	// Online reports whether user has a live LEMP session.
	Online(user string) bool
	// Notify tells user's live session (if any) that its queue has new items.
	Notify(user string)
	// Push writes an ephemeral frame (li/lo) to user's live session, if any.
	Push(user string, frame []byte)
	// Disconnect closes user's live session, if any (account deleted).
	Disconnect(user string, reason string)
}

// Config configures a Core. Store and Local are required.
type Config struct {
	Store state.Store
	Local Local
	Log   *slog.Logger
	// Now is the clock (tests set it); default time.Now.
	Now func() time.Time
	// DedupeTTL is how long a (sender, message id) pair is remembered to drop
	// re-sent duplicates; default 7 days.
	DedupeTTL time.Duration
	// IndexTTL is how long dm/nm can still be routed back after the message
	// left the receiver's queue (acknowledged, or written for pc "0"); while
	// it is queued, it always can. Default 30 days.
	IndexTTL time.Duration
	// Hash are the argon2id parameters for new tokens.
	Hash HashParams
	// MaxGroupMembers bounds a group or broadcast list; default
	// DefaultMaxGroupMembers.
	MaxGroupMembers int
	// MaxPictureBytes bounds a picture value (user, group, broadcast list);
	// default MaxProfileBytes.
	MaxPictureBytes int
	// MaxQueue bounds a LEMP user's delivery queue: a message that would
	// grow it past this many items is refused to its sender with 429
	// (state.Delivery.MaxQueue: a group member whose queue is full misses
	// the message). Receipts and group events are not refused. 0: no limit.
	MaxQueue int
}

// DefaultMaxGroupMembers is Config.MaxGroupMembers' default.
const DefaultMaxGroupMembers = 5000

// Names of the limits a Core enforces, as reported to the observer set with
// SetLimitObserver.
const (
	LimitGroupSize = "group_size"
	LimitPicture   = "picture"
	LimitQueue     = "queue"
)

// Core is the routing core: every LEMP request and message goes through it.
type Core struct {
	store  state.Store
	local  Local
	remote Remote // nil while XMPP bridging is off
	rooms  Rooms  // nil while groups are not hosted as MUC rooms
	log    *slog.Logger

	book     *contactBook // Jabber contacts' presence (presence_remote.go)
	sessions sessionSet   // local users online in this process
	now      func() time.Time
	cfg      Config
	onLimit  atomic.Pointer[func(limit string)]
}

// New checks cfg and returns a Core.
func New(cfg Config) (*Core, error) {
	if cfg.Store == nil || cfg.Local == nil {
		return nil, errors.New("bridge: Store and Local are required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.DedupeTTL <= 0 {
		cfg.DedupeTTL = 7 * 24 * time.Hour
	}
	if cfg.IndexTTL <= 0 {
		cfg.IndexTTL = 30 * 24 * time.Hour
	}
	if cfg.MaxGroupMembers <= 0 {
		cfg.MaxGroupMembers = DefaultMaxGroupMembers
	}
	if cfg.MaxPictureBytes <= 0 {
		cfg.MaxPictureBytes = MaxProfileBytes
	}
	if cfg.MaxQueue < 0 {
		cfg.MaxQueue = 0
	}
	return &Core{store: cfg.Store, local: cfg.Local, log: cfg.Log, now: cfg.Now, cfg: cfg, book: newContactBook()}, nil
}

// SetLimitObserver sets f to be called, with one of the Limit names, each
// time the core refuses something for a configured limit (for the
// lempgw_limited_total counter). Safe to call at any time; nil removes it.
func (c *Core) SetLimitObserver(f func(limit string)) {
	if f == nil {
		c.onLimit.Store(nil)
		return
	}
	c.onLimit.Store(&f)
}

// limited reports a refusal for limit to the observer and returns e.
func (c *Core) limited(limit string, e *Error) *Error {
	if f := c.onLimit.Load(); f != nil {
		(*f)(limit)
	}
	return e
}

// Store returns the state store (for the LEMP side's delivery loop).
func (c *Core) Store() state.Store { return c.store }

func (c *Core) nowMs() int64 { return c.now().UnixMilli() }

// storeErr maps a store failure to a coded error, logging the cause.
func (c *Core) storeErr(ctx context.Context, op string, err error) *Error {
	switch {
	case errors.Is(err, state.ErrNotFound):
		return Errorf(CodeNotFound, "not found")
	case errors.Is(err, state.ErrExists):
		return Errorf(CodeConflict, "already exists")
	case errors.Is(err, state.ErrQueueFull):
		return c.limited(LimitQueue, Errorf(CodeRateLimited, "the receiver's queue is full (%d messages): try again later", c.cfg.MaxQueue))
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return Errorf(CodeUnavailable, "state store timed out")
	case errors.Is(err, state.ErrUnavailable):
		c.log.WarnContext(ctx, "state store unavailable", "op", op, "err", err)
		return Errorf(CodeUnavailable, "state store unavailable")
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	c.log.ErrorContext(ctx, "state store failed", "op", op, "err", err)
	return Errorf(CodeInternal, "state store failed")
}

// FoldUsername returns the canonical (lower case) form of a local username.
func FoldUsername(name string) string { return strings.ToLower(strings.TrimSpace(name)) }

// IsJID reports whether a LEMP address names a Jabber user or room (bare JID).
func IsJID(addr string) bool { return strings.Contains(addr, "@") }

// ValidUsername checks a folded local username: 1 to 64 bytes of UTF-8, no
// '@', '/', spaces or control characters.
func ValidUsername(name string) error {
	return validID("username", name, 64)
}

// validGroupID checks a local group or broadcast id (no '@': those are rooms
// of the XMPP server).
func validGroupID(id string) error {
	return validID("group id", id, 128)
}

func validID(what, s string, max int) error {
	if s == "" {
		return Errorf(CodeBadRequest, "%s is empty", what)
	}
	if len(s) > max {
		return Errorf(CodeBadRequest, "%s longer than %d bytes", what, max)
	}
	if !utf8.ValidString(s) {
		return Errorf(CodeBadRequest, "%s is not UTF-8", what)
	}
	for _, r := range s {
		if r == '@' || r == '/' || unicode.IsSpace(r) || unicode.IsControl(r) {
			return Errorf(CodeBadRequest, "%s %q has a forbidden character %q", what, s, r)
		}
	}
	return nil
}

// errBridgingOff is the answer to anything addressed to a Jabber user while
// the XMPP side is not configured.
var errBridgingOff = &Error{Code: CodeUnavailable, Desc: "XMPP bridging is off"}

// userExists reports whether name is a local user; a JID is answered with 503.
func (c *Core) requireUser(ctx context.Context, name string) (state.User, *Error) {
	if IsJID(name) {
		return state.User{}, errBridgingOff
	}
	u, err := c.store.GetUser(ctx, FoldUsername(name))
	if errors.Is(err, state.ErrNotFound) {
		return u, Errorf(CodeNotFound, "user %s not found", name)
	}
	if err != nil {
		return u, c.storeErr(ctx, "get user", err)
	}
	return u, nil
}

// requireContact is requireUser for the requests that also take a Jabber
// user (af, s, st and p get, b): a JID is accepted while bridging is on and
// returned folded as u.Name, with jid true; a local name must be an existing
// user.
func (c *Core) requireContact(ctx context.Context, name string) (u state.User, jid bool, e *Error) {
	if !IsJID(name) {
		u, e := c.requireUser(ctx, name)
		return u, false, e
	}
	if c.remote == nil {
		return u, true, errBridgingOff
	}
	if err := c.remote.CheckAddress(name); err != nil {
		return u, true, Errorf(CodeBadRequest, "bad Jabber address %q: %v", name, err)
	}
	return state.User{Name: FoldUsername(name)}, true, nil
}

// NoSessions is the Local of a process that holds no LEMP sessions (the admin
// subcommands): nobody is online, so everything is queued durably.
type NoSessions struct{}

func (NoSessions) Online(string) bool        { return false }
func (NoSessions) Notify(string)             {}
func (NoSessions) Push(string, []byte)       {}
func (NoSessions) Disconnect(string, string) {}

package bridge

import (
	"context"
	"errors"
	"hash/fnv"
	"slices"
	"sync"
	"time"

	"github.com/lempgw/lempgw/state"
)

// Presence and subscriptions of Jabber users (docs/mapping.md):
//
//   - a LEMP following of a Jabber user is an XMPP presence subscription of
//     the LEMP user's bare JID to it: af sends subscribe, rf unsubscribe and
//     unsubscribed;
//   - a Jabber user subscribing to a LEMP user is approved (subscribed)
//     unless the LEMP user blocked it (unsubscribed), and recorded as a
//     follower of the LEMP user: store.Follow(<bare JID>, [<user>]);
//   - LEMP login, logout and status changes are presence broadcasts to the
//     Jabber followers; probes are answered with the current presence;
//   - Jabber users' presence becomes li/lo for the LEMP users that follow
//     them, are online and did not block them.
//
// Every stanza the core sends goes through OutboundQueue, in order with the
// messages: subscription requests and answers are as durable as messages.
//
// Where the state lives: followings and followers are in the store (as for
// local users). Which Jabber users are available, their last status text,
// their last-offline time and a short-lived picture cache are in memory in
// this process (contactBook): they are learnt again from the server (probes
// at login and when the component link comes back, XEP-0012 and vcard-temp
// queries) after a restart. With several gateway nodes each node's book only
// sees the presence its own component stream receives: that is a later issue.

// PresenceType is the kind of a presence exchanged with a Jabber user.
type PresenceType string

const (
	PresenceAvailable    PresenceType = "available"
	PresenceUnavailable  PresenceType = "unavailable"
	PresenceSubscribe    PresenceType = "subscribe"
	PresenceSubscribed   PresenceType = "subscribed"
	PresenceUnsubscribe  PresenceType = "unsubscribe"
	PresenceUnsubscribed PresenceType = "unsubscribed"
	PresenceProbe        PresenceType = "probe"
)

// Presence is a presence stanza in the core's terms. Outbound (queued on
// OutboundQueue) S is a local username and R a Jabber bare JID; inbound S is
// the Jabber user's bare JID, Res its resource, and R a local username. It is
// never written to a LEMP client.
type Presence struct {
	ID     string       `json:"id,omitempty"`
	T      PresenceType `json:"t"`
	S      string       `json:"s"`
	R      string       `json:"r,omitempty"`
	Res    string       `json:"res,omitempty"`
	Status string       `json:"st,omitempty"` // <status>
	// At is a XEP-0203 delay stamp: inbound, when the presence was sent (0:
	// now); on an outbound unavailable presence, the user's last offline
	// time (0: now).
	At Millis `json:"at,omitempty"`
	// Photo is the XEP-0153 photo hash an inbound presence announced.
	Photo string `json:"ph,omitempty"`
	// Nick is the XEP-0172 nickname of an outbound subscription request.
	Nick string `json:"n,omitempty"`
}

// Timeouts of the questions asked of Jabber users' servers for LEMP requests.
const (
	LastTimeout    = 3 * time.Second // XEP-0012, for the state request s
	PictureTimeout = 5 * time.Second // vcard-temp, for the picture request p
	// PictureTTL is how long a fetched picture is reused without asking
	// again (a XEP-0153 hash change in the contact's presence ends it early).
	PictureTTL = 5 * time.Minute
)

// contactBook is the in-memory presence state of Jabber contacts (see above).
type contactBook struct {
	mu sync.Mutex
	m  map[string]*contact
}

type contact struct {
	res     map[string]bool            // resources available, as last announced to any local user
	to      map[string]map[string]bool // local user -> resources available to it
	status  string
	lastOff int64 // ms; 0 = not known
	photo   string

	pic     string
	picAt   time.Time
	picHash string // photo when pic was fetched
}

func newContactBook() *contactBook { return &contactBook{m: map[string]*contact{}} }

func (b *contactBook) get(jid string) *contact {
	ct := b.m[jid]
	if ct == nil {
		ct = &contact{res: map[string]bool{}, to: map[string]map[string]bool{}}
		b.m[jid] = ct
	}
	return ct
}

// update records an available or unavailable presence of p.S received by
// p.R and reports whether p.S was available to p.R before and after. The
// last-offline time is the delay stamp of an unavailable presence, else now
// when p.S was available until then (an unavailable presence without a
// stamp that answers a probe says nothing of when).
func (b *contactBook) update(p *Presence, now int64) (before, after bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ct := b.get(p.S)
	mine := ct.to[p.R]
	before = len(mine) > 0
	if p.T == PresenceAvailable {
		ct.res[p.Res] = true
		if mine == nil {
			mine = map[string]bool{}
			ct.to[p.R] = mine
		}
		mine[p.Res] = true
		ct.status = p.Status
		if p.Photo != "" {
			ct.photo = p.Photo
		}
		return before, true
	}
	had := len(ct.res) > 0
	if p.Res == "" { // from the bare JID: no resource is available
		clear(ct.res)
		clear(mine)
	} else {
		delete(ct.res, p.Res)
		delete(mine, p.Res)
	}
	if len(mine) == 0 {
		delete(ct.to, p.R)
	}
	if p.Status != "" {
		ct.status = p.Status
	}
	if len(ct.res) == 0 {
		switch {
		case p.At > 0:
			ct.lastOff = int64(p.At)
		case had:
			ct.lastOff = now
		}
	}
	return before, len(mine) > 0
}

// availableTo reports whether jid is available to user.
func (b *contactBook) availableTo(jid, user string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	ct := b.m[jid]
	return ct != nil && len(ct.to[user]) > 0
}

// forget drops what user was told of jid (no longer a following); it
// reports whether jid was available to user.
func (b *contactBook) forget(jid, user string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	ct := b.m[jid]
	if ct == nil {
		return false
	}
	was := len(ct.to[user]) > 0
	delete(ct.to, user)
	return was
}

type contactState struct {
	available bool
	status    string
	lastOff   int64
}

func (b *contactBook) state(jid string) contactState {
	b.mu.Lock()
	defer b.mu.Unlock()
	ct := b.m[jid]
	if ct == nil {
		return contactState{}
	}
	return contactState{available: len(ct.res) > 0, status: ct.status, lastOff: ct.lastOff}
}

func (b *contactBook) setLastOff(jid string, ms int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ct := b.m[jid]; ct != nil && len(ct.res) == 0 {
		ct.lastOff = ms
	}
}

// picture returns the cached picture of jid when it is fresh.
func (b *contactBook) picture(jid string, now time.Time) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ct := b.m[jid]
	if ct == nil || ct.picAt.IsZero() || now.Sub(ct.picAt) > PictureTTL || ct.picHash != ct.photo {
		return "", false
	}
	return ct.pic, true
}

func (b *contactBook) setPicture(jid, pic string, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ct := b.get(jid)
	ct.pic, ct.picAt, ct.picHash = pic, now, ct.photo
}

// reset forgets every resource (the component link dropped: nothing is
// known any more) and returns the (user, jid) pairs that were available.
func (b *contactBook) reset() (pairs [][2]string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for jid, ct := range b.m {
		for user, res := range ct.to {
			if len(res) > 0 {
				pairs = append(pairs, [2]string{user, jid})
			}
		}
		clear(ct.res)
		clear(ct.to)
	}
	return pairs
}

// sessionSet is the set of local users with a live session in this process,
// for the probes sent when the component link comes back.
type sessionSet struct {
	mu    sync.Mutex
	users map[string]struct{}
	locks [64]sync.Mutex // serialise one user's login and logout broadcasts
}

func (s *sessionSet) set(user string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.users == nil {
		s.users = map[string]struct{}{}
	}
	if on {
		s.users[user] = struct{}{}
	} else {
		delete(s.users, user)
	}
}

func (s *sessionSet) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.users))
	for u := range s.users {
		out = append(out, u)
	}
	slices.Sort(out)
	return out
}

func (s *sessionSet) lock(user string) func() {
	h := fnv.New32a()
	_, _ = h.Write([]byte(user))
	m := &s.locks[h.Sum32()%uint32(len(s.locks))]
	m.Lock()
	return m.Unlock
}

// queuePresence writes p durably to OutboundQueue, for p.R or, when to is
// not empty, for each of to, and wakes the XMPP side. Without bridging it
// does nothing.
func (c *Core) queuePresence(ctx context.Context, p *Presence, to []string) error {
	if c.remote == nil {
		return nil
	}
	if p.ID == "" {
		p.ID = randomID()
	}
	_, err := c.store.Deliver(ctx, state.Delivery{Targets: []state.Target{{Receiver: OutboundQueue, Item: state.Item{
		From: p.S, Payload: OutboundItem{P: p, To: to}.Encode(), AckOnWrite: true,
	}}}})
	if err != nil {
		return err
	}
	c.remote.Notify()
	return nil
}

// currentPresence is u's presence as its Jabber followers should see it now.
func (c *Core) currentPresence(u state.User, to string) *Presence {
	if c.local.Online(u.Name) {
		return &Presence{T: PresenceAvailable, S: u.Name, R: to, Status: u.Status}
	}
	return &Presence{T: PresenceUnavailable, S: u.Name, R: to, At: Millis(u.LastSeen)}
}

// broadcastRemote queues user's presence (available with its status, or
// unavailable) for its Jabber followers (jids).
func (c *Core) broadcastRemote(ctx context.Context, user string, available bool, jids []string) {
	if c.remote == nil || len(jids) == 0 {
		return
	}
	p := &Presence{T: PresenceUnavailable, S: user}
	if available {
		u, err := c.store.GetUser(ctx, user)
		if err != nil {
			c.log.ErrorContext(ctx, "reading user for a presence broadcast", "user", user, "err", err)
			return
		}
		p = &Presence{T: PresenceAvailable, S: user, Status: u.Status}
	}
	if err := c.queuePresence(ctx, p, jids); err != nil {
		c.log.ErrorContext(ctx, "queueing a presence broadcast", "user", user, "err", err)
	}
}

// jabberFollowers returns user's Jabber followers that user did not block.
func (c *Core) jabberFollowers(ctx context.Context, user string) ([]string, error) {
	followers, err := c.store.Followers(ctx, user)
	if err != nil {
		return nil, err
	}
	blocks, err := c.blockSet(ctx, user)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range followers {
		if IsJID(f) && !blocks[f] {
			out = append(out, f)
		}
	}
	return out, nil
}

// follows reports whether local user follows jid.
func (c *Core) follows(ctx context.Context, user, jid string) (bool, error) {
	fs, err := c.store.Followers(ctx, jid)
	if err != nil {
		return false, err
	}
	return slices.Contains(fs, user), nil
}

// tell pushes li or lo of jid to user when user is online, follows jid and
// did not block it.
func (c *Core) tell(ctx context.Context, user, jid string, available bool) {
	if !c.local.Online(user) {
		return
	}
	if blocked, err := c.store.IsBlocked(ctx, user, jid); err != nil || blocked {
		return
	}
	if ok, err := c.follows(ctx, user, jid); err != nil || !ok {
		return
	}
	info := &Info{LO: jid}
	if available {
		info = &Info{LI: jid}
	}
	c.local.Push(user, Frame{I: info}.Encode())
}

// InboundPresence handles a presence stanza from a Jabber user (p.S, its
// bare JID, and p.Res) to a local user (p.R). 404 when there is no such
// user; a presence from a JID the user blocked never reaches the user.
func (c *Core) InboundPresence(ctx context.Context, p *Presence) *Error {
	if p == nil || p.R == "" || !IsJID(p.S) {
		return Errorf(CodeBadRequest, "inbound presence needs a JID sender and a local receiver")
	}
	r := FoldUsername(p.R)
	p.R = r
	u, err := c.store.GetUser(ctx, r)
	if errors.Is(err, state.ErrNotFound) {
		return Errorf(CodeNotFound, "no user %s", r)
	}
	if err != nil {
		return c.storeErr(ctx, "get user", err)
	}
	blocked, err := c.store.IsBlocked(ctx, r, p.S)
	if err != nil {
		return c.storeErr(ctx, "is blocked", err)
	}
	fail := func(op string, err error) *Error {
		if err == nil {
			return nil
		}
		return c.storeErr(ctx, op, err)
	}
	switch p.T {
	case PresenceSubscribe:
		if blocked {
			return fail("queue presence", c.queuePresence(ctx, &Presence{T: PresenceUnsubscribed, S: r, R: p.S}, nil))
		}
		if err := c.store.Follow(ctx, p.S, []state.Following{{User: r}}); err != nil {
			return c.storeErr(ctx, "follow", err)
		}
		if err := c.queuePresence(ctx, &Presence{T: PresenceSubscribed, S: r, R: p.S}, nil); err != nil {
			return c.storeErr(ctx, "queue presence", err)
		}
		return fail("queue presence", c.queuePresence(ctx, c.currentPresence(u, p.S), nil))
	case PresenceSubscribed:
		return nil // r's subscription was approved: presence follows
	case PresenceUnsubscribe:
		// p.S no longer wants r's presence.
		if err := c.store.Unfollow(ctx, p.S, []string{r}); err != nil {
			return c.storeErr(ctx, "unfollow", err)
		}
		return fail("queue presence", c.queuePresence(ctx, &Presence{T: PresenceUnavailable, S: r, R: p.S}, nil))
	case PresenceUnsubscribed:
		// p.S refused or cancelled r's subscription: r no longer follows it.
		was := c.book.forget(p.S, r)
		if was && !blocked && c.local.Online(r) {
			c.local.Push(r, Frame{I: &Info{LO: p.S}}.Encode())
		}
		return fail("unfollow", c.store.Unfollow(ctx, r, []string{p.S}))
	case PresenceAvailable, PresenceUnavailable:
		ok, err := c.follows(ctx, r, p.S)
		if err != nil {
			return c.storeErr(ctx, "followers", err)
		}
		if !ok {
			return nil // a presence r did not subscribe to: not recorded
		}
		before, after := c.book.update(p, c.nowMs())
		if before != after && !blocked && c.local.Online(r) {
			info := &Info{LO: p.S}
			if after {
				info = &Info{LI: p.S}
			}
			c.local.Push(r, Frame{I: info}.Encode())
		}
		return nil
	case PresenceProbe:
		followers, err := c.store.Followers(ctx, r)
		if err != nil {
			return c.storeErr(ctx, "followers", err)
		}
		var answer *Presence
		switch {
		case !slices.Contains(followers, p.S):
			answer = &Presence{T: PresenceUnsubscribed, S: r, R: p.S}
		case blocked:
			answer = &Presence{T: PresenceUnavailable, S: r, R: p.S}
		default:
			answer = c.currentPresence(u, p.S)
		}
		return fail("queue presence", c.queuePresence(ctx, answer, nil))
	}
	return Errorf(CodeBadRequest, "unknown presence type %q", p.T)
}

// RemoteUp is called by the XMPP side each time its link to the server is
// up: every online local user probes the Jabber users it follows, so their
// availability is learnt again.
func (c *Core) RemoteUp(ctx context.Context) {
	for _, user := range c.sessions.list() {
		if !c.local.Online(user) {
			continue
		}
		jids, err := c.jabberFollowings(ctx, user)
		if err != nil {
			c.log.ErrorContext(ctx, "reading followings for probes", "user", user, "err", err)
			continue
		}
		if len(jids) > 0 {
			if err := c.queuePresence(ctx, &Presence{T: PresenceProbe, S: user}, jids); err != nil {
				c.log.ErrorContext(ctx, "queueing probes", "user", user, "err", err)
			}
		}
	}
}

// RemoteDown is called by the XMPP side when its link drops: no Jabber
// user's availability is known any more, so the online local users told
// one is available get lo.
func (c *Core) RemoteDown(ctx context.Context) {
	for _, pair := range c.book.reset() {
		c.tell(ctx, pair[0], pair[1], false)
	}
}

// jabberFollowings returns the Jabber users user follows and did not block.
func (c *Core) jabberFollowings(ctx context.Context, user string) ([]string, error) {
	fs, err := c.store.Followings(ctx, user)
	if err != nil {
		return nil, err
	}
	blocks, err := c.blockSet(ctx, user)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range fs {
		if IsJID(f.User) && !blocks[f.User] {
			out = append(out, f.User)
		}
	}
	return out, nil
}

// asker is the local user on whose behalf the gateway asks jid's server: a
// local follower of jid (servers answer XEP-0012 to subscribers only), else
// "" (the gateway's own domain).
func (c *Core) asker(ctx context.Context, jid string) string {
	fs, err := c.store.Followers(ctx, jid)
	if err != nil {
		return ""
	}
	for _, f := range fs {
		if !IsJID(f) {
			return f
		}
	}
	return ""
}

// remoteLastOffline answers the state request for a Jabber user: 0 while it
// is available, its last offline time as seen in its presence, else what
// its server says (XEP-0012), else -1.
func (c *Core) remoteLastOffline(ctx context.Context, jid string) (int64, *Error) {
	st := c.book.state(jid)
	switch {
	case st.available:
		return 0, nil
	case st.lastOff > 0:
		return st.lastOff, nil
	}
	fctx, cancel := context.WithTimeout(ctx, LastTimeout)
	defer cancel()
	idle, err := c.remote.FetchLast(fctx, c.asker(ctx, jid), jid)
	switch {
	case errors.Is(err, ErrNoAnswer):
		return 0, &Error{Code: CodeUnavailable, Desc: err.Error()}
	case err != nil:
		return -1, nil
	case idle <= 0:
		return 0, nil
	}
	ms := c.now().Add(-idle).UnixMilli()
	c.book.setLastOff(jid, ms)
	return ms, nil
}

// remoteProfile is the profile of a Jabber user: its last status and its
// vcard-temp picture (cached for PictureTTL).
func (c *Core) remoteProfile(ctx context.Context, jid string) (state.User, *Error) {
	u := state.User{Name: jid, Status: c.book.state(jid).status}
	if pic, ok := c.book.picture(jid, c.now()); ok {
		u.Picture = pic
		return u, nil
	}
	fctx, cancel := context.WithTimeout(ctx, PictureTimeout)
	defer cancel()
	pic, err := c.remote.FetchPicture(fctx, c.asker(ctx, jid), jid)
	switch {
	case errors.Is(err, ErrNoAnswer):
		return u, &Error{Code: CodeUnavailable, Desc: err.Error()}
	case err != nil:
		pic = "" // no vCard, or the server refused: no picture
	}
	c.book.setPicture(jid, pic, c.now())
	u.Picture = pic
	return u, nil
}

// Blocks reports whether user blocked target (a username or a Jabber bare
// JID), for the XMPP side's answers on user's behalf.
func (c *Core) Blocks(ctx context.Context, user, target string) (bool, *Error) {
	blocked, err := c.store.IsBlocked(ctx, FoldUsername(user), FoldUsername(target))
	if err != nil {
		return false, c.storeErr(ctx, "is blocked", err)
	}
	return blocked, nil
}

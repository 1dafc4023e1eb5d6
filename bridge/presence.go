package bridge

import (
	"context"
	"errors"

	"github.com/lempgw/lempgw/state"
)

// Login checks identity and token. The identity is case-folded. Any failure
// is the same 401, so a client can not probe which users exist.
func (c *Core) Login(ctx context.Context, identity, token string) (state.User, *Error) {
	name := FoldUsername(identity)
	if name == "" || token == "" || ValidUsername(name) != nil {
		return state.User{}, Errorf(CodeUnauthorized, "bad identity or token")
	}
	u, err := c.store.GetUser(ctx, name)
	if errors.Is(err, state.ErrNotFound) {
		// Spend the time a verification takes anyway.
		VerifyToken(dummyHash, token)
		return state.User{}, Errorf(CodeUnauthorized, "bad identity or token")
	}
	if err != nil {
		return state.User{}, c.storeErr(ctx, "login", err)
	}
	if !VerifyToken(u.TokenHash, token) {
		return state.User{}, Errorf(CodeUnauthorized, "bad identity or token")
	}
	return u, nil
}

// dummyHash is verified against when the user does not exist.
var dummyHash, _ = HashToken("lempgw-dummy", DefaultHashParams)

// SessionStarted is called once a user's session is registered: its online
// followers that it has not blocked get li, and its Jabber followers its
// available presence. It returns the users the new session follows that are
// online now (and have not blocked it; for a Jabber user: that it has not
// blocked), for the li pushes the session itself receives first; the Jabber
// users it follows are probed, and their answers come as li later.
func (c *Core) SessionStarted(ctx context.Context, user string) ([]string, error) {
	unlock := c.sessions.lock(user)
	c.sessions.set(user, true)
	c.pushPresence(ctx, user, &Info{LI: user})
	unlock()
	fs, err := c.store.Followings(ctx, user)
	if err != nil {
		return nil, err
	}
	blocks, err := c.blockSet(ctx, user)
	if err != nil {
		return nil, err
	}
	var online, probes []string
	for _, f := range fs {
		if IsJID(f.User) {
			if c.remote == nil || blocks[f.User] {
				continue
			}
			if c.book.availableTo(f.User, user) {
				online = append(online, f.User)
			}
			probes = append(probes, f.User)
			continue
		}
		if !c.local.Online(f.User) {
			continue
		}
		if blocked, err := c.store.IsBlocked(ctx, f.User, user); err != nil || blocked {
			continue
		}
		online = append(online, f.User)
	}
	if len(probes) > 0 {
		if err := c.queuePresence(ctx, &Presence{T: PresenceProbe, S: user}, probes); err != nil {
			c.log.ErrorContext(ctx, "queueing probes", "user", user, "err", err)
		}
	}
	return online, nil
}

// SessionEnded is called when a user's last session is gone: the last-offline
// time is recorded, online followers get lo and Jabber followers its
// unavailable presence.
func (c *Core) SessionEnded(ctx context.Context, user string) {
	now := c.nowMs()
	if _, err := c.store.UpdateUser(ctx, user, func(u *state.User) error {
		u.LastSeen = now
		return nil
	}); err != nil && !errors.Is(err, state.ErrNotFound) {
		c.log.ErrorContext(ctx, "recording last offline", "user", user, "err", err)
	}
	unlock := c.sessions.lock(user)
	defer unlock()
	if c.local.Online(user) {
		// Logged in again meanwhile: that login's broadcast stands.
		c.pushLocalPresence(ctx, user, &Info{LO: user})
		return
	}
	c.sessions.set(user, false)
	c.pushPresence(ctx, user, &Info{LO: user})
}

// pushPresence sends an li/lo push to user's online followers, except those
// the user blocked, and queues the matching presence for its Jabber
// followers.
func (c *Core) pushPresence(ctx context.Context, user string, info *Info) {
	jids := c.pushLocalPresence(ctx, user, info)
	c.broadcastRemote(ctx, user, info.LI != "", jids)
}

// pushLocalPresence pushes info to user's online local followers, except
// those the user blocked; it returns the Jabber followers the user did not
// block.
func (c *Core) pushLocalPresence(ctx context.Context, user string, info *Info) (jids []string) {
	followers, err := c.store.Followers(ctx, user)
	if err != nil {
		c.log.ErrorContext(ctx, "reading followers", "user", user, "err", err)
		return nil
	}
	blocks, err := c.blockSet(ctx, user)
	if err != nil {
		c.log.ErrorContext(ctx, "reading block list", "user", user, "err", err)
		return nil
	}
	var frame []byte
	for _, f := range followers {
		remote := IsJID(f)
		if (!remote && !c.local.Online(f)) || blocks[f] {
			continue
		}
		if remote {
			jids = append(jids, f)
			continue
		}
		if frame == nil {
			frame = Frame{I: info}.Encode()
		}
		c.local.Push(f, frame)
	}
	return jids
}

// LastOffline answers the state request: 0 while target is online, the ms of
// its last disconnect, or -1 when it was never seen. For a Jabber user: 0
// while it is available, its last unavailable presence, else its server's
// XEP-0012 answer (503 when the XMPP side does not answer).
func (c *Core) LastOffline(ctx context.Context, target string) (string, int64, *Error) {
	u, jid, e := c.requireContact(ctx, target)
	if e != nil {
		return "", 0, e
	}
	if jid {
		v, e := c.remoteLastOffline(ctx, u.Name)
		return u.Name, v, e
	}
	if c.local.Online(u.Name) {
		return u.Name, 0, nil
	}
	if u.LastSeen == 0 {
		return u.Name, -1, nil
	}
	return u.Name, u.LastSeen, nil
}

// blockSet reads user's block list once, for loops over its contacts (one
// round trip instead of one per contact).
func (c *Core) blockSet(ctx context.Context, user string) (map[string]bool, error) {
	l, err := c.store.BlockList(ctx, user)
	if err != nil {
		return nil, err
	}
	set := make(map[string]bool, len(l))
	for _, b := range l {
		set[b] = true
	}
	return set, nil
}

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
// followers that it has not blocked get li. It returns the users the new
// session follows that are online now (and have not blocked it), for the li
// pushes the session itself receives first.
func (c *Core) SessionStarted(ctx context.Context, user string) ([]string, error) {
	c.pushPresence(ctx, user, &Info{LI: user})
	fs, err := c.store.Followings(ctx, user)
	if err != nil {
		return nil, err
	}
	var online []string
	for _, f := range fs {
		if !c.local.Online(f.User) {
			continue
		}
		if blocked, err := c.store.IsBlocked(ctx, f.User, user); err != nil || blocked {
			continue
		}
		online = append(online, f.User)
	}
	return online, nil
}

// SessionEnded is called when a user's last session is gone: the last-offline
// time is recorded and online followers get lo.
func (c *Core) SessionEnded(ctx context.Context, user string) {
	now := c.nowMs()
	if _, err := c.store.UpdateUser(ctx, user, func(u *state.User) error {
		u.LastSeen = now
		return nil
	}); err != nil && !errors.Is(err, state.ErrNotFound) {
		c.log.ErrorContext(ctx, "recording last offline", "user", user, "err", err)
	}
	c.pushPresence(ctx, user, &Info{LO: user})
}

// pushPresence sends an li/lo push to user's online followers, except those
// the user blocked.
func (c *Core) pushPresence(ctx context.Context, user string, info *Info) {
	followers, err := c.store.Followers(ctx, user)
	if err != nil {
		c.log.ErrorContext(ctx, "reading followers", "user", user, "err", err)
		return
	}
	var frame []byte
	for _, f := range followers {
		if !c.local.Online(f) {
			continue
		}
		if blocked, err := c.store.IsBlocked(ctx, user, f); err != nil || blocked {
			continue
		}
		if frame == nil {
			frame = Frame{I: info}.Encode()
		}
		c.local.Push(f, frame)
	}
}

// LastOffline answers the state request: 0 while target is online, the ms of
// its last disconnect, or -1 when it was never seen.
func (c *Core) LastOffline(ctx context.Context, target string) (string, int64, *Error) {
	u, e := c.requireUser(ctx, target)
	if e != nil {
		return "", 0, e
	}
	if c.local.Online(u.Name) {
		return u.Name, 0, nil
	}
	if u.LastSeen == 0 {
		return u.Name, -1, nil
	}
	return u.Name, u.LastSeen, nil
}

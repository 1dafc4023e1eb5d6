package bridge

import (
	"context"
	"errors"

	"github.com/lempgw/lempgw/state"
)

// MaxProfileBytes bounds a status and a group or broadcast name, and is the
// default of Config.MaxPictureBytes (a picture is a URL in practice).
const MaxProfileBytes = 16 << 10

// checkPicture refuses a picture value over Config.MaxPictureBytes.
func (c *Core) checkPicture(v string) *Error {
	if max := c.cfg.MaxPictureBytes; len(v) > max {
		return c.limited(LimitPicture, Errorf(CodeTooLarge, "picture over %d bytes", max))
	}
	return nil
}

// checkContacts folds and checks a list of contacts: local users must exist;
// Jabber users need the XMPP side and a usable address.
func (c *Core) checkContacts(ctx context.Context, fs []state.Following) ([]state.Following, *Error) {
	out := make([]state.Following, 0, len(fs))
	for _, f := range fs {
		u, _, e := c.requireContact(ctx, f.User)
		if e != nil {
			return nil, e
		}
		out = append(out, state.Following{User: u.Name, Nick: f.Nick})
	}
	return out, nil
}

// Follow adds followings (af) for user. Following a Jabber user sends it a
// presence subscription request from user's bare JID (durably, like a
// message); its li/lo come once it approved.
func (c *Core) Follow(ctx context.Context, user string, fs []state.Following) *Error {
	fs, e := c.checkContacts(ctx, fs)
	if e != nil {
		return e
	}
	if err := c.store.Follow(ctx, user, fs); err != nil {
		return c.storeErr(ctx, "follow", err)
	}
	for _, f := range fs {
		if !IsJID(f.User) {
			continue
		}
		if err := c.queuePresence(ctx, &Presence{T: PresenceSubscribe, S: user, R: f.User, Nick: user}, nil); err != nil {
			return c.storeErr(ctx, "queue subscribe", err)
		}
	}
	return nil
}

// Unfollow removes followings (rf). Unknown names are ignored. For a Jabber
// user the subscription ends both ways: unsubscribe and unsubscribed are
// sent, and it no longer follows user either.
func (c *Core) Unfollow(ctx context.Context, user string, names []string) *Error {
	folded := make([]string, len(names))
	for i, n := range names {
		folded[i] = FoldUsername(n)
	}
	if err := c.store.Unfollow(ctx, user, folded); err != nil {
		return c.storeErr(ctx, "unfollow", err)
	}
	if c.remote == nil {
		return nil
	}
	for _, jid := range folded {
		if !IsJID(jid) || c.remote.CheckAddress(jid) != nil {
			continue
		}
		c.book.forget(jid, user)
		if err := c.store.Unfollow(ctx, jid, []string{user}); err != nil {
			return c.storeErr(ctx, "unfollow", err)
		}
		for _, t := range []PresenceType{PresenceUnsubscribe, PresenceUnsubscribed} {
			if err := c.queuePresence(ctx, &Presence{T: t, S: user, R: jid}, nil); err != nil {
				return c.storeErr(ctx, "queue "+string(t), err)
			}
		}
	}
	return nil
}

// RenameFollowings updates nicks (uf) of existing followings.
func (c *Core) RenameFollowings(ctx context.Context, user string, fs []state.Following) *Error {
	for i := range fs {
		fs[i].User = FoldUsername(fs[i].User)
	}
	if err := c.store.RenameFollowings(ctx, user, fs); err != nil {
		return c.storeErr(ctx, "rename followings", err)
	}
	return nil
}

// Followings lists user's followings.
func (c *Core) Followings(ctx context.Context, user string) ([]state.Following, *Error) {
	fs, err := c.store.Followings(ctx, user)
	if err != nil {
		return nil, c.storeErr(ctx, "followings", err)
	}
	return fs, nil
}

// Profile returns a user's record (picture, status, creation) for the get
// requests. For a Jabber user: its last presence status and its vcard-temp
// picture (fetched with a timeout, cached for PictureTTL; 503 when the XMPP
// side does not answer).
//
// Profile may ask the XMPP server for a Jabber user's vCard; Contact does not.
func (c *Core) Profile(ctx context.Context, name string) (state.User, *Error) {
	u, jid, e := c.requireContact(ctx, name)
	if e != nil || !jid {
		return u, e
	}
	return c.remoteProfile(ctx, u.Name)
}

// Contact is Profile without the picture of a Jabber user: a local user's
// record, or a Jabber user's bare JID and last presence status. It never
// waits for the XMPP server (status get, personal info).
func (c *Core) Contact(ctx context.Context, name string) (state.User, *Error) {
	u, jid, e := c.requireContact(ctx, name)
	if e != nil || !jid {
		return u, e
	}
	return state.User{Name: u.Name, Status: c.book.state(u.Name).status}, nil
}

// SetPicture sets user's own picture (an opaque string, a URL in practice).
func (c *Core) SetPicture(ctx context.Context, user, v string) *Error {
	if e := c.checkPicture(v); e != nil {
		return e
	}
	if _, err := c.store.UpdateUser(ctx, user, func(u *state.User) error { u.Picture = v; return nil }); err != nil {
		return c.storeErr(ctx, "update user", err)
	}
	return nil
}

// SetStatus sets user's own status text; while user is online its Jabber
// followers get an available presence with the new <status>.
func (c *Core) SetStatus(ctx context.Context, user, s string) *Error {
	if e := c.updateSelf(ctx, user, s, func(u *state.User) { u.Status = s }); e != nil {
		return e
	}
	if c.remote != nil && c.local.Online(user) {
		jids, err := c.jabberFollowers(ctx, user)
		if err != nil {
			return c.storeErr(ctx, "followers", err)
		}
		c.broadcastRemote(ctx, user, true, jids)
	}
	return nil
}

func (c *Core) updateSelf(ctx context.Context, user, v string, set func(*state.User)) *Error {
	if len(v) > MaxProfileBytes {
		return Errorf(CodeTooLarge, "value over %d bytes", MaxProfileBytes)
	}
	if _, err := c.store.UpdateUser(ctx, user, func(u *state.User) error { set(u); return nil }); err != nil {
		return c.storeErr(ctx, "update user", err)
	}
	return nil
}

// Block adds target to user's block list. Blocking a user that does not
// exist is refused (404) so typos are seen. A Jabber user can be blocked
// while bridging is on: nothing from it reaches user any more (messages,
// presence, subscription requests).
func (c *Core) Block(ctx context.Context, user, target string) *Error {
	if target == "" {
		return Errorf(CodeBadRequest, "block needs u (or username)")
	}
	u, jid, e := c.requireContact(ctx, target)
	if e != nil {
		return e
	}
	if err := c.store.Block(ctx, user, u.Name); err != nil {
		return c.storeErr(ctx, "block", err)
	}
	if jid && c.book.availableTo(u.Name, user) && c.local.Online(user) {
		// Its presence no longer reaches user: do not leave it shown online.
		c.local.Push(user, Frame{I: &Info{LO: u.Name}}.Encode())
	}
	return nil
}

// Unblock removes target from user's block list; not being blocked is fine.
func (c *Core) Unblock(ctx context.Context, user, target string) *Error {
	if target == "" {
		return Errorf(CodeBadRequest, "unblock needs u (or username)")
	}
	target = FoldUsername(target)
	if err := c.store.Unblock(ctx, user, target); err != nil {
		return c.storeErr(ctx, "unblock", err)
	}
	if IsJID(target) && c.book.availableTo(target, user) {
		c.tell(ctx, user, target, true) // its presence reaches user again
	}
	return nil
}

// BlockList returns user's block list.
func (c *Core) BlockList(ctx context.Context, user string) ([]string, *Error) {
	l, err := c.store.BlockList(ctx, user)
	if err != nil {
		return nil, c.storeErr(ctx, "block list", err)
	}
	return l, nil
}

// CreateUser makes a local account (admin request cr, `lempgw user add`).
func (c *Core) CreateUser(ctx context.Context, name, token string, admin bool) *Error {
	name = FoldUsername(name)
	if err := ValidUsername(name); err != nil {
		return AsError(err)
	}
	if token == "" {
		return Errorf(CodeBadRequest, "token is required")
	}
	if _, err := c.store.GetGroup(ctx, name); err == nil {
		return Errorf(CodeConflict, "%s is a group id", name)
	}
	hash, err := HashToken(token, c.cfg.Hash)
	if err != nil {
		return c.storeErr(ctx, "hash", err)
	}
	err = c.store.CreateUser(ctx, state.User{Name: name, TokenHash: hash, Admin: admin, Created: c.nowMs()})
	if errors.Is(err, state.ErrExists) {
		return Errorf(CodeConflict, "user %s exists", name)
	}
	if err != nil {
		return c.storeErr(ctx, "create user", err)
	}
	return nil
}

// DeleteUser removes a local account: it leaves its groups (members are told),
// its broadcast lists end, its live session is closed and its data is gone.
func (c *Core) DeleteUser(ctx context.Context, name string) *Error {
	name = FoldUsername(name)
	if _, e := c.requireUser(ctx, name); e != nil {
		return e
	}
	ids, err := c.store.UserGroups(ctx, name)
	if err != nil {
		return c.storeErr(ctx, "user groups", err)
	}
	for _, id := range ids {
		if e := c.leaveOnDelete(ctx, name, id); e != nil {
			return e
		}
	}
	c.local.Disconnect(name, "account deleted")
	if e := c.dropJabberFollowers(ctx, name); e != nil {
		return e
	}
	if err := c.store.DeleteUser(ctx, name); err != nil {
		return c.storeErr(ctx, "delete user", err)
	}
	return nil
}

// dropJabberFollowers tells a deleted account's Jabber followers it is gone
// (unavailable, then unsubscribed) and forgets their subscriptions.
func (c *Core) dropJabberFollowers(ctx context.Context, name string) *Error {
	if c.remote == nil {
		return nil
	}
	followers, err := c.store.Followers(ctx, name)
	if err != nil {
		return c.storeErr(ctx, "followers", err)
	}
	var jids []string
	for _, f := range followers {
		if IsJID(f) {
			jids = append(jids, f)
		}
	}
	if len(jids) == 0 {
		return nil
	}
	for _, t := range []PresenceType{PresenceUnavailable, PresenceUnsubscribed} {
		if err := c.queuePresence(ctx, &Presence{T: t, S: name}, jids); err != nil {
			return c.storeErr(ctx, "queue presence", err)
		}
	}
	for _, j := range jids {
		if err := c.store.Unfollow(ctx, j, []string{name}); err != nil {
			return c.storeErr(ctx, "unfollow", err)
		}
	}
	return nil
}

package bridge

import (
	"context"
	"errors"

	"github.com/lempgw/lempgw/state"
)

// MaxProfileBytes bounds a picture value (a URL in practice) and a status.
const MaxProfileBytes = 16 << 10

// checkContacts folds and checks a list of contacts: local users must exist;
// Jabber users need the XMPP side.
func (c *Core) checkContacts(ctx context.Context, fs []state.Following) ([]state.Following, *Error) {
	out := make([]state.Following, 0, len(fs))
	for _, f := range fs {
		if _, e := c.requireUser(ctx, f.User); e != nil {
			return nil, e
		}
		out = append(out, state.Following{User: FoldUsername(f.User), Nick: f.Nick})
	}
	return out, nil
}

// Follow adds followings (af) for user.
func (c *Core) Follow(ctx context.Context, user string, fs []state.Following) *Error {
	fs, e := c.checkContacts(ctx, fs)
	if e != nil {
		return e
	}
	if err := c.store.Follow(ctx, user, fs); err != nil {
		return c.storeErr(ctx, "follow", err)
	}
	return nil
}

// Unfollow removes followings (rf). Unknown names are ignored.
func (c *Core) Unfollow(ctx context.Context, user string, names []string) *Error {
	folded := make([]string, len(names))
	for i, n := range names {
		folded[i] = FoldUsername(n)
	}
	if err := c.store.Unfollow(ctx, user, folded); err != nil {
		return c.storeErr(ctx, "unfollow", err)
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

// Profile returns a user's record (picture, status, creation) for the get requests.
func (c *Core) Profile(ctx context.Context, name string) (state.User, *Error) {
	return c.requireUser(ctx, name)
}

// SetPicture sets user's own picture (an opaque string, a URL in practice).
func (c *Core) SetPicture(ctx context.Context, user, v string) *Error {
	return c.updateSelf(ctx, user, v, func(u *state.User) { u.Picture = v })
}

// SetStatus sets user's own status text.
func (c *Core) SetStatus(ctx context.Context, user, s string) *Error {
	return c.updateSelf(ctx, user, s, func(u *state.User) { u.Status = s })
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
// exist is refused (404) so typos are seen.
func (c *Core) Block(ctx context.Context, user, target string) *Error {
	if target == "" {
		return Errorf(CodeBadRequest, "block needs u (or username)")
	}
	if _, e := c.requireUser(ctx, target); e != nil {
		return e
	}
	if err := c.store.Block(ctx, user, FoldUsername(target)); err != nil {
		return c.storeErr(ctx, "block", err)
	}
	return nil
}

// Unblock removes target from user's block list; not being blocked is fine.
func (c *Core) Unblock(ctx context.Context, user, target string) *Error {
	if target == "" {
		return Errorf(CodeBadRequest, "unblock needs u (or username)")
	}
	if err := c.store.Unblock(ctx, user, FoldUsername(target)); err != nil {
		return c.storeErr(ctx, "unblock", err)
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
	if err := c.store.DeleteUser(ctx, name); err != nil {
		return c.storeErr(ctx, "delete user", err)
	}
	return nil
}

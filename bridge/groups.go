package bridge

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/lempgw/lempgw/state"
)

// GroupSpec is what a create request carries.
type GroupSpec struct {
	ID, Name, Picture string
	Members           []string
}

// checkSize refuses a group or broadcast list over Config.MaxGroupMembers.
func (c *Core) checkSize(g *state.Group) *Error {
	if max := c.cfg.MaxGroupMembers; len(g.Members) > max {
		return c.limited(LimitGroupSize, Errorf(CodeTooLarge, "%s %s would have more than %d members", kindName(g.Kind), g.ID, max))
	}
	return nil
}

// foldID is the canonical form of a group or broadcast id: lower case, as
// usernames and XMPP room names are, so that an id can equal neither a
// username nor another id in another case.
func foldID(id string) string { return strings.ToLower(id) }

func kindName(k state.GroupKind) string {
	if k == state.KindBroadcast {
		return "broadcast list"
	}
	return "group"
}

// members folds, de-duplicates and checks names: each must be a local user,
// or, when jabber is true, may be a Jabber user's bare JID.
func (c *Core) members(ctx context.Context, names []string, except string, jabber bool) ([]string, *Error) {
	out := make([]string, 0, len(names))
	for _, n := range names {
		n = FoldUsername(n)
		if n == except || slices.Contains(out, n) {
			continue
		}
		if IsJID(n) && jabber {
			if err := c.remote.CheckAddress(n); err != nil {
				return nil, Errorf(CodeBadRequest, "bad Jabber address %q: %v", n, err)
			}
		} else if _, e := c.requireUser(ctx, n); e != nil {
			return nil, e
		}
		out = append(out, n)
	}
	return out, nil
}

// jabberMembers reports whether the group or broadcast list id may have
// Jabber members: a broadcast list when bridging is on, a hosted group when
// its MUC room exists. A server room's members are LEMP users only.
func (c *Core) jabberMembers(kind state.GroupKind, id string) bool {
	if kind == state.KindBroadcast {
		return c.remote != nil
	}
	return c.RoomsOn() && !IsServerRoom(id)
}

// create makes a group (the actor is owner, admin and first member) or a
// broadcast list (the actor is owner, not a member).
func (c *Core) create(ctx context.Context, actor string, kind state.GroupKind, spec GroupSpec) *Error {
	spec.ID = foldID(spec.ID)
	if IsJID(spec.ID) {
		// A room of the XMPP server: the gateway joins it for each member.
		if c.remote == nil {
			return errBridgingOff
		}
		if kind != state.KindGroup {
			return Errorf(CodeBadRequest, "a broadcast id can not be a JID")
		}
		if err := c.remote.CheckAddress(spec.ID); err != nil {
			return Errorf(CodeBadRequest, "bad room address %q: %v", spec.ID, err)
		}
	} else if err := validGroupID(spec.ID); err != nil {
		return AsError(err)
	}
	if len(spec.Name) > MaxProfileBytes {
		return Errorf(CodeTooLarge, "name over %d bytes", MaxProfileBytes)
	}
	if e := c.checkPicture(spec.Picture); e != nil {
		return e
	}
	// Folded: a message to "ALICE" goes to the user alice, so a group
	// "ALICE" could never be reached.
	if _, err := c.store.GetUser(ctx, spec.ID); err == nil {
		return Errorf(CodeConflict, "%s is a username", spec.ID)
	}
	except := ""
	if kind == state.KindGroup {
		except = actor
	}
	mem, e := c.members(ctx, spec.Members, except, c.jabberMembers(kind, spec.ID))
	if e != nil {
		return e
	}
	g := state.Group{ID: spec.ID, Kind: kind, Name: spec.Name, Picture: spec.Picture, Owner: actor, Created: c.nowMs()}
	if kind == state.KindGroup {
		g.Members = append([]string{actor}, mem...)
		g.Admins = []string{actor}
	} else {
		g.Members = mem
	}
	if e := c.checkSize(&g); e != nil {
		return e
	}
	err := c.store.CreateGroup(ctx, g)
	if errors.Is(err, state.ErrExists) {
		return Errorf(CodeConflict, "%s %s exists", kindName(kind), spec.ID)
	}
	if err != nil {
		return c.storeErr(ctx, "create group", err)
	}
	if kind == state.KindGroup {
		c.event(ctx, g.Members, &GroupInfo{T: "c", I: g.ID, N: g.Name, S: actor})
	}
	return nil
}

// event pushes a group event, logging a failure: the change it reports is
// already stored, so the request still succeeds.
func (c *Core) event(ctx context.Context, to []string, g *GroupInfo) {
	if err := c.pushEvent(ctx, to, g); err != nil {
		c.log.ErrorContext(ctx, "pushing group event", "group", g.I, "event", g.T, "err", err)
	}
}

// update runs fn on the group atomically after the common checks.
func (c *Core) update(ctx context.Context, id string, kind state.GroupKind, fn func(g *state.Group) *Error) (state.Group, *Error) {
	id = foldID(id)
	var fnErr *Error
	g, err := c.store.UpdateGroup(ctx, id, func(g *state.Group) error {
		if fnErr = c.check(g, kind); fnErr == nil {
			fnErr = fn(g)
		}
		if fnErr != nil {
			return fnErr
		}
		return nil
	})
	if fnErr != nil {
		return g, fnErr
	}
	if errors.Is(err, state.ErrNotFound) {
		return g, Errorf(CodeNotFound, "%s %s not found", kindName(kind), id)
	}
	if err != nil {
		return g, c.storeErr(ctx, "update group", err)
	}
	return g, nil
}

// read returns a group after the common checks.
func (c *Core) read(ctx context.Context, id string, kind state.GroupKind) (state.Group, *Error) {
	id = foldID(id)
	g, err := c.store.GetGroup(ctx, id)
	if errors.Is(err, state.ErrNotFound) {
		return g, Errorf(CodeNotFound, "%s %s not found", kindName(kind), id)
	}
	if err != nil {
		return g, c.storeErr(ctx, "get group", err)
	}
	return g, c.check(&g, kind)
}

func (c *Core) check(g *state.Group, kind state.GroupKind) *Error {
	if g.Kind != kind {
		return Errorf(CodeNotFound, "%s %s not found", kindName(kind), g.ID)
	}
	if g.Terminated {
		return Errorf(CodeForbidden, "%s %s terminated", kindName(kind), g.ID)
	}
	return nil
}

// Role checks: owner of a broadcast list; admin or member of a group.
func mustOwn(g *state.Group, actor string) *Error {
	if g.Owner != actor {
		return Errorf(CodeForbidden, "not the owner of %s", g.ID)
	}
	return nil
}

func mustAdmin(g *state.Group, actor string) *Error {
	if !slices.Contains(g.Admins, actor) {
		return Errorf(CodeForbidden, "not an admin of %s", g.ID)
	}
	return nil
}

func mustMember(g *state.Group, actor string) *Error {
	if !slices.Contains(g.Members, actor) {
		return Errorf(CodeForbidden, "not a member of %s", g.ID)
	}
	return nil
}

// CreateGroup handles g.t "c".
func (c *Core) CreateGroup(ctx context.Context, actor string, spec GroupSpec) *Error {
	return c.create(ctx, actor, state.KindGroup, spec)
}

// AddMembers handles g.t "a" (admins only). Members are told {t:"a", m:[added]}.
func (c *Core) AddMembers(ctx context.Context, actor, id string, names []string) *Error {
	add, e := c.members(ctx, names, "", c.jabberMembers(state.KindGroup, foldID(id)))
	if e != nil {
		return e
	}
	var added []string
	g, e := c.update(ctx, id, state.KindGroup, func(g *state.Group) *Error {
		if e := mustAdmin(g, actor); e != nil {
			return e
		}
		added = added[:0]
		for _, n := range add {
			if !slices.Contains(g.Members, n) {
				g.Members = append(g.Members, n)
				added = append(added, n)
			}
		}
		return c.checkSize(g)
	})
	if e != nil {
		return e
	}
	if len(added) > 0 {
		c.event(ctx, g.Members, &GroupInfo{T: "a", I: id, M: added, S: actor})
	}
	return nil
}

// remove takes names out of a group's members, admins and mutes.
func remove(g *state.Group, names []string) {
	del := func(s string) bool { return slices.Contains(names, s) }
	g.Members = slices.DeleteFunc(g.Members, del)
	g.Admins = slices.DeleteFunc(g.Admins, del)
	for _, n := range names {
		delete(g.Mutes, n)
	}
}

// Banish handles g.t "b" (admins only; the owner can not be banished). All
// members, the banished included, get one {t:"b", m:"<user>"} per banished user.
func (c *Core) Banish(ctx context.Context, actor, id string, names []string) *Error {
	var gone, before []string
	_, e := c.update(ctx, id, state.KindGroup, func(g *state.Group) *Error {
		if e := mustAdmin(g, actor); e != nil {
			return e
		}
		gone = gone[:0]
		for _, n := range names {
			n = FoldUsername(n)
			if n == g.Owner {
				return Errorf(CodeForbidden, "the owner can not be banished")
			}
			if slices.Contains(g.Members, n) && !slices.Contains(gone, n) {
				gone = append(gone, n)
			}
		}
		before = slices.Clone(g.Members)
		remove(g, gone)
		return nil
	})
	if e != nil {
		return e
	}
	for _, n := range gone {
		c.event(ctx, before, &GroupInfo{T: "b", I: id, M: n, S: actor})
	}
	return nil
}

// Leave handles g.t "l". An owner who leaves hands the group to the first
// admin left, else the first member (who becomes admin); the last member
// leaving terminates the group. Members and the leaver get {t:"l", m:"<user>"}.
func (c *Core) Leave(ctx context.Context, actor, id string) *Error {
	var before []string
	var terminated bool
	_, e := c.update(ctx, id, state.KindGroup, func(g *state.Group) *Error {
		if e := mustMember(g, actor); e != nil {
			return e
		}
		before = slices.Clone(g.Members)
		remove(g, []string{actor})
		terminated = len(g.Members) == 0
		if terminated {
			g.Terminated = true
			return nil
		}
		if g.Owner == actor {
			if len(g.Admins) > 0 {
				g.Owner = g.Admins[0]
			} else {
				g.Owner = g.Members[0]
				g.Admins = []string{g.Owner}
			}
		}
		return nil
	})
	if e != nil {
		return e
	}
	c.event(ctx, before, &GroupInfo{T: "l", I: id, M: actor, S: actor})
	return nil
}

// leaveOnDelete removes a deleted account from a group or broadcast list.
func (c *Core) leaveOnDelete(ctx context.Context, user, id string) *Error {
	g, err := c.store.GetGroup(ctx, id)
	if err != nil {
		return nil // gone meanwhile
	}
	if g.Kind == state.KindGroup {
		if e := c.Leave(ctx, user, id); e != nil && e.Code != CodeForbidden && e.Code != CodeNotFound {
			return e
		}
		return nil
	}
	_, e := c.update(ctx, id, state.KindBroadcast, func(g *state.Group) *Error {
		if g.Owner == user { // the owner's lists end with the account
			g.Terminated, g.Members = true, nil
			return nil
		}
		remove(g, []string{user})
		return nil
	})
	if e != nil && e.Code != CodeForbidden && e.Code != CodeNotFound {
		return e
	}
	return nil
}

// Terminate handles g.t "t" (admins only): every member gets {t:"t"}; the id
// stays taken.
func (c *Core) Terminate(ctx context.Context, actor, id string) *Error {
	var before []string
	_, e := c.update(ctx, id, state.KindGroup, func(g *state.Group) *Error {
		if e := mustAdmin(g, actor); e != nil {
			return e
		}
		before = slices.Clone(g.Members)
		g.Terminated = true
		g.Members, g.Admins, g.Mutes = nil, nil, nil
		return nil
	})
	if e != nil {
		return e
	}
	c.event(ctx, before, &GroupInfo{T: "t", I: id, S: actor})
	return nil
}

// GroupInfo handles g.t "i" (members only).
func (c *Core) GroupInfo(ctx context.Context, actor, id string) (state.Group, *Error) {
	g, e := c.read(ctx, id, state.KindGroup)
	if e == nil {
		e = mustMember(&g, actor)
	}
	return g, e
}

// AddAdmins handles g.t "aad" (admins only); each must be a member.
func (c *Core) AddAdmins(ctx context.Context, actor, id string, names []string) *Error {
	_, e := c.update(ctx, id, state.KindGroup, func(g *state.Group) *Error {
		if e := mustAdmin(g, actor); e != nil {
			return e
		}
		for _, n := range names {
			n = FoldUsername(n)
			if !slices.Contains(g.Members, n) {
				return Errorf(CodeBadRequest, "%s is not a member of %s", n, id)
			}
			if !slices.Contains(g.Admins, n) {
				g.Admins = append(g.Admins, n)
			}
		}
		return nil
	})
	return e
}

// SetGroupName handles n.t "s" with i (admins only); members get {t:"n"}.
func (c *Core) SetGroupName(ctx context.Context, actor, id, name string) *Error {
	return c.setGroupField(ctx, actor, id, name, "n", func(g *state.Group) { g.Name = name })
}

// SetGroupPicture handles p.t "s" with i (admins only); members get {t:"p"}.
func (c *Core) SetGroupPicture(ctx context.Context, actor, id, pic string) *Error {
	return c.setGroupField(ctx, actor, id, pic, "p", func(g *state.Group) { g.Picture = pic })
}

func (c *Core) setGroupField(ctx context.Context, actor, id, v, ev string, set func(*state.Group)) *Error {
	if ev == "p" {
		if e := c.checkPicture(v); e != nil {
			return e
		}
	} else if len(v) > MaxProfileBytes {
		return Errorf(CodeTooLarge, "value over %d bytes", MaxProfileBytes)
	}
	g, e := c.update(ctx, id, state.KindGroup, func(g *state.Group) *Error {
		if e := mustAdmin(g, actor); e != nil {
			return e
		}
		set(g)
		return nil
	})
	if e != nil {
		return e
	}
	info := &GroupInfo{T: ev, I: id, S: actor}
	if ev == "n" {
		info.N = v
	}
	c.event(ctx, g.Members, info)
	return nil
}

// Mute handles mt (members only): the member's own mute-till; 0 unmutes.
func (c *Core) Mute(ctx context.Context, actor, id string, till int64) *Error {
	_, e := c.update(ctx, id, state.KindGroup, func(g *state.Group) *Error {
		if e := mustMember(g, actor); e != nil {
			return e
		}
		if till <= 0 {
			delete(g.Mutes, actor)
			return nil
		}
		if g.Mutes == nil {
			g.Mutes = map[string]int64{}
		}
		g.Mutes[actor] = till
		return nil
	})
	return e
}

// CreateBroadcast handles br.t "c".
func (c *Core) CreateBroadcast(ctx context.Context, actor string, spec GroupSpec) *Error {
	return c.create(ctx, actor, state.KindBroadcast, spec)
}

// UpdateBroadcast handles br.t "a", "b" and "t" (owner only).
func (c *Core) UpdateBroadcast(ctx context.Context, actor, id, op string, names []string) *Error {
	var add []string
	if op == "a" {
		var e *Error
		if add, e = c.members(ctx, names, "", c.jabberMembers(state.KindBroadcast, id)); e != nil {
			return e
		}
	}
	_, e := c.update(ctx, id, state.KindBroadcast, func(g *state.Group) *Error {
		if e := mustOwn(g, actor); e != nil {
			return e
		}
		switch op {
		case "a":
			for _, n := range add {
				if !slices.Contains(g.Members, n) {
					g.Members = append(g.Members, n)
				}
			}
			if e := c.checkSize(g); e != nil {
				return e
			}
		case "b":
			folded := make([]string, len(names))
			for i, n := range names {
				folded[i] = FoldUsername(n)
			}
			remove(g, folded)
		case "t":
			g.Terminated = true
			g.Members = nil
		}
		return nil
	})
	return e
}

// Broadcast returns a broadcast list for its owner (info, name and picture get).
func (c *Core) Broadcast(ctx context.Context, actor, id string) (state.Group, *Error) {
	g, e := c.read(ctx, id, state.KindBroadcast)
	if e == nil {
		e = mustOwn(&g, actor)
	}
	return g, e
}

// SetBroadcastField sets a broadcast list's name ("n") or picture ("p").
func (c *Core) SetBroadcastField(ctx context.Context, actor, id, field, v string) *Error {
	if field == "p" {
		if e := c.checkPicture(v); e != nil {
			return e
		}
	} else if len(v) > MaxProfileBytes {
		return Errorf(CodeTooLarge, "value over %d bytes", MaxProfileBytes)
	}
	_, e := c.update(ctx, id, state.KindBroadcast, func(g *state.Group) *Error {
		if e := mustOwn(g, actor); e != nil {
			return e
		}
		if field == "n" {
			g.Name = v
		} else {
			g.Picture = v
		}
		return nil
	})
	return e
}

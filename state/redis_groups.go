package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"
)

func (r *Redis) CreateGroup(ctx context.Context, g Group) error {
	g = cloneGroup(g)
	b, err := json.Marshal(g)
	if err != nil {
		return fmt.Errorf("state: encode group: %w", err)
	}
	if r.cluster {
		return r.createGroupCluster(ctx, g, b)
	}
	keys := []string{r.groupKey(g.ID), r.groupsKey()}
	if !g.Terminated {
		for _, m := range indexed(g) {
			keys = append(keys, r.ugKey(m))
		}
	}
	n, err := createGroupScript.Run(ctx, r.rdb, keys, b, g.ID).Int()
	if err != nil {
		return r.wrap("create group", err)
	}
	if n == 0 {
		return fmt.Errorf("group %q: %w", g.ID, ErrExists)
	}
	return nil
}

func (r *Redis) GetGroup(ctx context.Context, id string) (Group, error) {
	return r.getGroup(ctx, r.rdb, id)
}

func (r *Redis) getGroup(ctx context.Context, c redis.Cmdable, id string) (Group, error) {
	b, err := c.Get(ctx, r.groupKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Group{}, fmt.Errorf("group %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return Group{}, r.wrap("get group", err)
	}
	var g Group
	if err := json.Unmarshal(b, &g); err != nil {
		return Group{}, fmt.Errorf("state: corrupt group %q: %w", id, err)
	}
	return cloneGroup(g), nil
}

// UpdateGroup is a WATCH transaction on g:<id>: the group and the ug:<user>
// sets of the members that joined or left change in one MULTI/EXEC.
func (r *Redis) UpdateGroup(ctx context.Context, id string, fn func(*Group) error) (Group, error) {
	k := r.groupKey(id)
	var out Group
	err := r.watch(ctx, "update group", func(tx *redis.Tx) error {
		old, err := r.getGroup(ctx, tx, id)
		if err != nil {
			return err
		}
		g := cloneGroup(old)
		if err := fn(&g); err != nil {
			return err
		}
		g.ID = id           // the key can not be renamed
		ng := cloneGroup(g) // fn may keep g: return a copy of our own
		b, err := json.Marshal(ng)
		if err != nil {
			return fmt.Errorf("state: encode group: %w", err)
		}
		if r.cluster {
			// The ug: sets are in the members' slots: add the group to the
			// members' sets before the record changes and take it out of
			// the leavers' sets after (see "Redis Cluster" below).
			if err := r.addGroupIndex(ctx, ng); err != nil {
				return r.wrap("update group", err)
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, k, b, 0)
				return nil
			})
			if err != nil {
				return r.txErr("update group", err)
			}
			out = ng
			return r.wrap("update group", r.settleGroupIndex(ctx, old, ng))
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, k, b, 0)
			keep := map[string]bool{}
			if !ng.Terminated {
				for _, m := range indexed(ng) {
					keep[m] = true
					p.SAdd(ctx, r.ugKey(m), id)
				}
			}
			if !old.Terminated {
				for _, m := range indexed(old) {
					if !keep[m] {
						p.SRem(ctx, r.ugKey(m), id)
					}
				}
			}
			return nil
		})
		out = ng
		return r.txErr("update group", err)
	}, k)
	if err != nil {
		return Group{}, err
	}
	return out, nil
}

func (r *Redis) UserGroups(ctx context.Context, user string) ([]string, error) {
	ids, err := r.sortedMembers(ctx, "user groups", r.ugKey(user))
	if err != nil || !r.cluster || len(ids) == 0 {
		return ids, err
	}
	return r.checkUserGroups(ctx, user, ids)
}

// ---- Redis Cluster: ug:<member> sets are in the members' slots ----
//
// A group's record and its members' ug: sets can not change in one step.
// The order keeps one invariant: a ug: set may hold an id too many, never
// one too few. The group is added to its members' sets before the record
// that names them is written (and again after, settleGroupIndex), and
// taken out of the leavers' sets after the record without them is. A crash in between (or a failed EXEC, or a
// CreateGroup of a taken id) leaves extra ids only, which UserGroups drops:
// it checks each id against its group record.

// addGroupIndex adds g's id to the ug: set of each member g indexes.
func (r *Redis) addGroupIndex(ctx context.Context, g Group) error {
	if g.Terminated {
		return nil
	}
	ms := indexed(g)
	if len(ms) == 0 {
		return nil
	}
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, m := range ms {
			p.SAdd(ctx, r.ugKey(m), g.ID)
		}
		return nil
	})
	return err
}

// settleGroupIndex runs after the record ng replaced old: it adds ng's
// members again and removes the leavers, then re-reads the record and adds
// back any leaver it indexes by now. Concurrent updates stay in step: if
// update B re-adds a member that update A removes, either B's second
// SADD comes after A's SREM, or B's record was written before A's SREM and
// A's re-read sees it.
func (r *Redis) settleGroupIndex(ctx context.Context, old, ng Group) error {
	if err := r.addGroupIndex(ctx, ng); err != nil {
		return err
	}
	gone, err := r.dropGroupIndex(ctx, old, ng)
	if err != nil || len(gone) == 0 {
		return err
	}
	cur, err := r.getGroup(ctx, r.rdb, ng.ID)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if cur.Terminated {
		return nil
	}
	var back []string
	for _, m := range indexed(cur) {
		if slices.Contains(gone, m) {
			back = append(back, m)
		}
	}
	if len(back) == 0 {
		return nil
	}
	_, err = r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, m := range back {
			p.SAdd(ctx, r.ugKey(m), ng.ID)
		}
		return nil
	})
	return err
}

// dropGroupIndex removes the group from the ug: sets of the members of old
// that ng no longer indexes, and returns them.
func (r *Redis) dropGroupIndex(ctx context.Context, old, ng Group) ([]string, error) {
	if old.Terminated {
		return nil, nil
	}
	keep := map[string]bool{}
	if !ng.Terminated {
		for _, m := range indexed(ng) {
			keep[m] = true
		}
	}
	var gone []string
	for _, m := range indexed(old) {
		if !keep[m] {
			gone = append(gone, m)
		}
	}
	if len(gone) == 0 {
		return nil, nil
	}
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, m := range gone {
			p.SRem(ctx, r.ugKey(m), ng.ID)
		}
		return nil
	})
	return gone, err
}

// createGroupCluster is CreateGroup under Cluster: the members' ug: sets
// and groups first (an extra id there is harmless: UserGroups checks it,
// ListGroups skips an id without a record), then SET g: NX decides.
func (r *Redis) createGroupCluster(ctx context.Context, g Group, b []byte) error {
	if err := r.addGroupIndex(ctx, g); err != nil {
		return r.wrap("create group", err)
	}
	if err := r.rdb.SAdd(ctx, r.groupsKey(), g.ID).Err(); err != nil {
		return r.wrap("create group", err)
	}
	ok, err := r.rdb.SetNX(ctx, r.groupKey(g.ID), b, 0).Result()
	if err != nil {
		return r.wrap("create group", err)
	}
	if !ok {
		return fmt.Errorf("group %q: %w", g.ID, ErrExists)
	}
	return nil
}

// checkUserGroups keeps the ids of ids whose group record indexes user. It
// deletes nothing: an UpdateGroup adding user may have run addGroupIndex
// and not yet written its record, and an SREM now would lose that entry.
// An extra id therefore stays in the set (read and dropped each time) until
// a later change of that group adds and removes user again.
func (r *Redis) checkUserGroups(ctx context.Context, user string, ids []string) ([]string, error) {
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = r.groupKey(id)
	}
	vals, err := r.mget(ctx, keys...)
	if err != nil {
		return nil, r.wrap("user groups", err)
	}
	out := make([]string, 0, len(ids))
	for i, v := range vals {
		s, ok := v.(string)
		if ok {
			var g Group
			if err := json.Unmarshal([]byte(s), &g); err != nil {
				return nil, fmt.Errorf("state: corrupt group %q: %w", ids[i], err)
			}
			if !g.Terminated && slices.Contains(indexed(g), user) {
				out = append(out, ids[i])
			}
		}
	}
	return out, nil
}

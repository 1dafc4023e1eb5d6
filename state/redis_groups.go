package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

func (r *Redis) CreateGroup(ctx context.Context, g Group) error {
	g = cloneGroup(g)
	b, err := json.Marshal(g)
	if err != nil {
		return fmt.Errorf("state: encode group: %w", err)
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
	return r.sortedMembers(ctx, "user groups", r.ugKey(user))
}

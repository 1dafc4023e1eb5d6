package state

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
)

func historyMax(n int) int {
	if n <= 0 {
		return DefaultHistoryMax
	}
	return n
}

func (m *Memory) History(_ context.Context, group string, n int) ([][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	log := m.history[group]
	if n > 0 && len(log) > n {
		log = log[len(log)-n:]
	}
	out := make([][]byte, len(log))
	for i, b := range log {
		out[i] = cloneBytes(b)
	}
	return out, nil
}

func (m *Memory) ListGroups(_ context.Context) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]string, 0, len(m.groups))
	for id, r := range m.groups {
		if !r.g.Terminated {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// History is one LRANGE of the group's log list h:<group>.
func (r *Redis) History(ctx context.Context, group string, n int) ([][]byte, error) {
	start := int64(0)
	if n > 0 {
		start = -int64(n)
	}
	ss, err := r.rdb.LRange(ctx, r.historyKey(group), start, -1).Result()
	if err != nil {
		return nil, r.wrap("history", err)
	}
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out, nil
}

// ListGroups reads the set of group ids (added by CreateGroup) and drops the
// terminated ones.
func (r *Redis) ListGroups(ctx context.Context) ([]string, error) {
	ids, err := r.rdb.SMembers(ctx, r.groupsKey()).Result()
	if err != nil {
		return nil, r.wrap("list groups", err)
	}
	slices.Sort(ids)
	out := ids[:0]
	for c := range slices.Chunk(ids, 500) {
		keys := make([]string, len(c))
		for i, id := range c {
			keys[i] = r.groupKey(id)
		}
		vals, err := r.mget(ctx, keys...)
		if err != nil {
			return nil, r.wrap("list groups", err)
		}
		for i, v := range vals {
			s, ok := v.(string)
			if !ok {
				continue // deleted meanwhile
			}
			var g Group
			if err := json.Unmarshal([]byte(s), &g); err != nil {
				return nil, fmt.Errorf("state: corrupt group %q: %w", c[i], err)
			}
			if !g.Terminated {
				out = append(out, c[i])
			}
		}
	}
	return out, nil
}

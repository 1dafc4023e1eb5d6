package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Session registry keys (docs/state.md, "Session registry"). The {...} hash
// tags keep a node's keys in one Redis Cluster slot and a user's entries in
// the slot of the user's other keys.
// Under Cluster the tags are escaped (tag): a raw id such as "}" would make
// the empty tag "{}", which hashes the whole key, and split a node's keys.
func (r *Redis) nodeKey(id string) string    { return r.p + "node:" + r.rtag(id) }
func (r *Redis) nsKey(id, run string) string { return r.p + "ns:" + r.rtag(id) + ":" + run }
func (r *Redis) usKey(user string) string    { return r.p + "us:" + r.rtag(user) }

// rtag is the registry's hash tag: "{<name>}" as the single-node layout
// always wrote it, tag(name) under Cluster.
func (r *Redis) rtag(name string) string {
	if r.cluster {
		return tag(name)
	}
	return "{" + name + "}"
}

func (r *Redis) runsKey() string              { return r.p + "runs" }
func usField(s Session) string                { return strconv.Itoa(len(s.Run)) + ":" + s.Run + ":" + s.ID }
func nodeRecord(n Node) ([]byte, error)       { return json.Marshal(n) }
func sessionRecord(s Session) ([]byte, error) { return json.Marshal(s) }

// registerChunk bounds the sessions one registerScript call writes.
const registerChunk = 500

var (
	// heartbeatScript: KEYS[1] node record; ARGV run, record, ttl ms.
	// Renews the record if it holds that run; 1 if it did, else 0.
	heartbeatScript = redis.NewScript(`#!lua
if redis.call('HGET', KEYS[1], 'run') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'data', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`)

	// stopNodeScript: KEYS[1] node record; ARGV[1] run. Deletes the record
	// if it holds that run.
	stopNodeScript = redis.NewScript(`#!lua
if redis.call('HGET', KEYS[1], 'run') == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`)

	// registerScript: KEYS[1] node record, KEYS[2] the run's session hash,
	// then one user hash per session; ARGV[1] run, then per session: id,
	// user-hash field, record. Writes nothing and returns 0 unless the run
	// is the node's live one.
	registerScript = redis.NewScript(`#!lua
if redis.call('HGET', KEYS[1], 'run') ~= ARGV[1] then return 0 end
for i = 3, #KEYS do
  local a = 2 + 3 * (i - 3)
  redis.call('HSET', KEYS[2], ARGV[a], ARGV[a + 2])
  redis.call('HSET', KEYS[i], ARGV[a + 1], ARGV[a + 2])
end
return 1
`)
)

var (
	// registerNodeScript: registerScript's first step under Redis Cluster.
	// KEYS[1] node record, KEYS[2] the run's session hash; ARGV[1] run, then
	// per session: id, record. Writes nothing and returns 0 unless the run is
	// the node's live one.
	registerNodeScript = redis.NewScript(`#!lua
if redis.call('HGET', KEYS[1], 'run') ~= ARGV[1] then return 0 end
for i = 2, #ARGV, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
end
return 1
`)
)

func init() {
	allScripts = append(allScripts, heartbeatScript, stopNodeScript, registerScript, registerNodeScript)
}

func (r *Redis) StartNode(ctx context.Context, n Node, ttl time.Duration) error {
	if err := checkNode(n, ttl); err != nil {
		return err
	}
	b, err := nodeRecord(n)
	if err != nil {
		return fmt.Errorf("state: encode node: %w", err)
	}
	k := r.nodeKey(n.ID)
	_, err = r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, k)
		p.HSet(ctx, k, "run", n.Run, "data", b)
		p.PExpire(ctx, k, time.Duration(ttlMillis(ttl))*time.Millisecond)
		if !r.cluster {
			p.HSet(ctx, r.runsKey(), n.Run, n.ID)
		}
		return nil
	})
	if err == nil && r.cluster {
		// runs is in another slot: after the record, so a listing never
		// sees the run in runs without its record and cleans it as dead.
		err = r.rdb.HSet(ctx, r.runsKey(), n.Run, n.ID).Err()
	}
	return r.wrap("start node", err)
}

func (r *Redis) Heartbeat(ctx context.Context, n Node, ttl time.Duration) (bool, error) {
	if err := checkNode(n, ttl); err != nil {
		return false, err
	}
	b, err := nodeRecord(n)
	if err != nil {
		return false, fmt.Errorf("state: encode node: %w", err)
	}
	ok, err := heartbeatScript.Run(ctx, r.rdb, []string{r.nodeKey(n.ID)}, n.Run, b, ttlMillis(ttl)).Int()
	if err != nil {
		return false, r.wrap("heartbeat", err)
	}
	return ok == 1, nil
}

func (r *Redis) StopNode(ctx context.Context, id, run string) error {
	if err := stopNodeScript.Run(ctx, r.rdb, []string{r.nodeKey(id)}, run).Err(); err != nil {
		return r.wrap("stop node", err)
	}
	return r.cleanRuns(ctx, []runRef{{id: id, run: run}})
}

// runRef names one run of a node.
type runRef struct{ id, run string }

// runs reads the run index and each node's live record: it returns the
// live runs (with their node records) and the dead ones, whose sessions the
// caller cleans.
func (r *Redis) runs(ctx context.Context) (live []Node, dead []runRef, err error) {
	all, err := r.rdb.HGetAll(ctx, r.runsKey()).Result()
	if err != nil {
		return nil, nil, r.wrap("list runs", err)
	}
	ids := make([]string, 0, len(all))
	for _, id := range all {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	cmds := make([]*redis.SliceCmd, len(ids))
	if len(ids) > 0 {
		_, err = r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range ids {
				cmds[i] = p.HMGet(ctx, r.nodeKey(id), "run", "data")
			}
			return nil
		})
		if err != nil {
			return nil, nil, r.wrap("list nodes", err)
		}
	}
	liveRun := map[string]string{} // node id -> live run
	for i, id := range ids {
		v := cmds[i].Val()
		run, _ := v[0].(string)
		data, _ := v[1].(string)
		if run == "" || all[run] != id {
			continue // expired (or a record whose run the index lost)
		}
		var n Node
		if err := json.Unmarshal([]byte(data), &n); err != nil {
			return nil, nil, fmt.Errorf("state: corrupt node record %q: %w", id, err)
		}
		liveRun[id] = run
		live = append(live, n)
	}
	for run, id := range all {
		if liveRun[id] != run {
			dead = append(dead, runRef{id: id, run: run})
		}
	}
	return live, dead, nil
}

// cleanRuns deletes what dead runs left: their session hashes, their
// entries in the users' hashes and their index entries. A dead run never
// comes back to life, so this can not race with a write that matters.
func (r *Redis) cleanRuns(ctx context.Context, dead []runRef) error {
	for chunk := range slices.Chunk(dead, 100) {
		cmds := make([]*redis.MapStringStringCmd, len(chunk))
		_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, d := range chunk {
				cmds[i] = p.HGetAll(ctx, r.nsKey(d.id, d.run))
			}
			return nil
		})
		if err != nil {
			return r.wrap("clean sessions", err)
		}
		_, err = r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, d := range chunk {
				for _, v := range cmds[i].Val() {
					var s Session
					if json.Unmarshal([]byte(v), &s) == nil && s.User != "" {
						p.HDel(ctx, r.usKey(s.User), usField(s))
					}
				}
				p.Del(ctx, r.nsKey(d.id, d.run))
				p.HDel(ctx, r.runsKey(), d.run)
			}
			return nil
		})
		if err != nil {
			return r.wrap("clean sessions", err)
		}
	}
	return nil
}

func (r *Redis) Nodes(ctx context.Context) ([]Node, error) {
	live, dead, err := r.runs(ctx)
	if err != nil {
		return nil, err
	}
	if err := r.cleanRuns(ctx, dead); err != nil {
		return nil, err
	}
	if live == nil {
		live = []Node{}
	}
	return live, nil
}

func (r *Redis) RegisterSession(ctx context.Context, ss ...Session) error {
	if len(ss) == 0 {
		return nil
	}
	if err := checkSessions(ss); err != nil {
		return err
	}
	node, run := ss[0].Node, ss[0].Run
	for chunk := range slices.Chunk(ss, registerChunk) {
		keys := make([]string, 2, 2+len(chunk))
		keys[0], keys[1] = r.nodeKey(node), r.nsKey(node, run)
		args := make([]any, 1, 1+3*len(chunk))
		args[0] = run
		for _, s := range chunk {
			b, err := sessionRecord(s)
			if err != nil {
				return fmt.Errorf("state: encode session: %w", err)
			}
			keys = append(keys, r.usKey(s.User))
			args = append(args, s.ID, usField(s), b)
		}
		if r.cluster {
			if err := r.registerCluster(ctx, node, run, keys, args); err != nil {
				return err
			}
			continue
		}
		ok, err := registerScript.Run(ctx, r.rdb, keys, args...).Int()
		if err != nil {
			return r.wrap("register session", err)
		}
		if ok != 1 {
			return errRunNotLive(node, run)
		}
	}
	return nil
}

// registerCluster is one registerScript chunk under Cluster, where the
// users' us: hashes are in their own slots: registerNodeScript checks the
// run and writes the node's session hash (node slot), then a pipeline
// writes the us: entries. An entry written after its run died is cleaned
// like any other entry of a dead run (UserSessions checks every run).
func (r *Redis) registerCluster(ctx context.Context, node, run string, keys []string, args []any) error {
	nargs := make([]any, 1, 1+2*(len(keys)-2))
	nargs[0] = args[0]
	for i := range len(keys) - 2 {
		nargs = append(nargs, args[1+3*i], args[3+3*i]) // session id, record
	}
	ok, err := registerNodeScript.Run(ctx, r.rdb, keys[:2], nargs...).Int()
	if err != nil {
		return r.wrap("register session", err)
	}
	if ok != 1 {
		return errRunNotLive(node, run)
	}
	_, err = r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys[2:] {
			p.HSet(ctx, k, args[2+3*i], args[3+3*i])
		}
		return nil
	})
	return r.wrap("register session", err)
}

func (r *Redis) RemoveSession(ctx context.Context, s Session) error {
	_, err := r.pipeline(ctx, func(p redis.Pipeliner) error {
		p.HDel(ctx, r.nsKey(s.Node, s.Run), s.ID)
		p.HDel(ctx, r.usKey(s.User), usField(s))
		return nil
	})
	return r.wrap("remove session", err)
}

func (r *Redis) Sessions(ctx context.Context) ([]Session, error) {
	live, dead, err := r.runs(ctx)
	if err != nil {
		return nil, err
	}
	if err := r.cleanRuns(ctx, dead); err != nil {
		return nil, err
	}
	out := []Session{}
	for chunk := range slices.Chunk(live, 100) {
		cmds := make([]*redis.MapStringStringCmd, len(chunk))
		_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, n := range chunk {
				cmds[i] = p.HGetAll(ctx, r.nsKey(n.ID, n.Run))
			}
			return nil
		})
		if err != nil {
			return nil, r.wrap("list sessions", err)
		}
		for i, n := range chunk {
			for id, v := range cmds[i].Val() {
				s, err := decodeSession(v)
				if err != nil {
					return nil, fmt.Errorf("state: corrupt session %q of node %q: %w", id, n.ID, err)
				}
				out = append(out, s)
			}
		}
	}
	sortSessions(out)
	return out, nil
}

func (r *Redis) UserSessions(ctx context.Context, user string) ([]Session, error) {
	uk := r.usKey(user)
	h, err := r.rdb.HGetAll(ctx, uk).Result()
	if err != nil {
		return nil, r.wrap("user sessions", err)
	}
	all := make(map[string]Session, len(h)) // field -> session
	var ids []string
	for f, v := range h {
		s, err := decodeSession(v)
		if err != nil {
			return nil, fmt.Errorf("state: corrupt session %q of user %q: %w", f, user, err)
		}
		all[f] = s
		if !slices.Contains(ids, s.Node) {
			ids = append(ids, s.Node)
		}
	}
	out := []Session{}
	if len(all) == 0 {
		return out, nil
	}
	cmds := make([]*redis.StringCmd, len(ids))
	_, err = r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGet(ctx, r.nodeKey(id), "run")
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, r.wrap("user sessions", err)
	}
	liveRun := make(map[string]string, len(ids))
	for i, id := range ids {
		if err := cmds[i].Err(); err != nil && !errors.Is(err, redis.Nil) {
			return nil, r.wrap("user sessions", err)
		}
		liveRun[id] = cmds[i].Val() // "" when the node record expired
	}
	var dead []string
	for f, s := range all {
		if liveRun[s.Node] == s.Run {
			out = append(out, s)
		} else {
			dead = append(dead, f)
		}
	}
	if len(dead) > 0 {
		// The fields of a dead run are never written again: deleting them
		// can not undo a newer registration.
		if err := r.rdb.HDel(ctx, uk, dead...).Err(); err != nil {
			return nil, r.wrap("user sessions", err)
		}
	}
	sortSessions(out)
	return out, nil
}

func decodeSession(v string) (Session, error) {
	var s Session
	if err := json.Unmarshal([]byte(v), &s); err != nil {
		return Session{}, err
	}
	if err := checkSession(s); err != nil {
		return Session{}, errors.New(strings.TrimPrefix(err.Error(), "state: "))
	}
	return s, nil
}

package state

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The Lua scripts. Each runs atomically on the server. Redis does not roll a
// script back, so every check comes before the first write, and the "#!lua"
// shebang (Redis 7.0) makes the server refuse a writing script up front when
// it is out of memory rather than at its first write.
var (
	// The message index entry mi:<user>:<msgid> is a hash: field "from" is
	// the sender of the latest delivery, "ttl" that delivery's IndexTTL in ms
	// ("0": none), and every other field (all digits) is the seq of a queued
	// item of <user> with that msgid; its value is "1". Hash fields and
	// values are binary safe, so no sender name needs escaping. The entry has
	// no expiry while it holds a seq; when its last seq leaves (Ack, Remove)
	// it gets PEXPIRE ttl.

	// deliverScript: KEYS[1] dedupe key, then per target seq, queue, index,
	// block set. ARGV: use-dedupe flag, dedupe TTL ms, index TTL ms, target
	// count, max queue ("0": no limit), then per target from, msgid,
	// payload, ackonwrite, unless-blocked ("" = no check), then, for a
	// history entry, its payload and the log's length (its key is the last
	// of KEYS). Returns 1, 0 for a duplicate, -1 when the queue limit left no
	// target (nothing written in either case). Every check (dedupe, block
	// lists, queue lengths before this delivery) comes before the first write.
	deliverScript = redis.NewScript(`#!lua
if ARGV[1] == '1' and redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local n, max = tonumber(ARGV[4]), tonumber(ARGV[5])
local skip, full, left = {}, false, 0
for i = 0, n - 1 do
  local k, a = 2 + 4 * i, 6 + 5 * i
  if ARGV[a + 4] ~= '' and redis.call('SISMEMBER', KEYS[k + 3], ARGV[a + 4]) == 1 then
    skip[i] = true
  elseif max > 0 and ARGV[a + 1] ~= '' and redis.call('XLEN', KEYS[k + 1]) >= max then
    skip[i] = true
    full = true
  else
    left = left + 1
  end
end
if full and left == 0 then return -1 end
if ARGV[1] == '1' then
  if ARGV[2] ~= '0' then
    redis.call('SET', KEYS[1], '1', 'PX', ARGV[2])
  else
    redis.call('SET', KEYS[1], '1')
  end
end
for i = 0, n - 1 do
  local k, a = 2 + 4 * i, 6 + 5 * i
  if not skip[i] then
    local seq = string.format('%d', redis.call('INCR', KEYS[k]))
    redis.call('XADD', KEYS[k + 1], '0-' .. seq,
      'from', ARGV[a], 'msgid', ARGV[a + 1], 'payload', ARGV[a + 2], 'ackonwrite', ARGV[a + 3])
    if ARGV[a + 1] ~= '' then
      redis.call('HSET', KEYS[k + 2], 'from', ARGV[a], 'ttl', ARGV[3], seq, '1')
      redis.call('PERSIST', KEYS[k + 2])
    end
  end
end
local h = 6 + 5 * n
if ARGV[h] then
  local k = KEYS[2 + 4 * n]
  redis.call('RPUSH', k, ARGV[h])
  redis.call('LTRIM', k, -tonumber(ARGV[h + 1]), -1)
end
return 1
`)

	// ackScript: KEYS[1] index entry, KEYS[2] queue. Deletes every queued
	// item the entry names, drops them from it and returns the sender, or nil
	// when there is no entry. The entry expires ttl after the ack that took
	// its last items; an Ack that finds none leaves the expiry as it is.
	ackScript = redis.NewScript(`#!lua
local h = redis.call('HGETALL', KEYS[1])
if #h == 0 then return false end
local from, ttl, seqs = nil, nil, {}
for i = 1, #h, 2 do
  local f = h[i]
  if f == 'from' then
    from = h[i + 1]
  elseif f == 'ttl' then
    ttl = h[i + 1]
  elseif string.find(f, '^%d+$') then
    seqs[#seqs + 1] = f
  else
    return redis.error_reply('corrupt message index entry')
  end
end
if not from or not ttl or not string.find(ttl, '^%d+$') then
  return redis.error_reply('corrupt message index entry')
end
for c = 1, #seqs, 500 do
  local ids, fs = {}, {}
  for j = c, math.min(c + 499, #seqs) do
    ids[#ids + 1] = '0-' .. seqs[j]
    fs[#fs + 1] = seqs[j]
  end
  redis.call('XDEL', KEYS[2], unpack(ids))
  redis.call('HDEL', KEYS[1], unpack(fs))
end
if ttl ~= '0' and (#seqs > 0 or redis.call('PTTL', KEYS[1]) == -1) then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return from
`)

	// removeScript: KEYS[1] queue. ARGV: seq, the user's index key prefix
	// (<p>mi:<escaped user>:). Deletes the item and drops its seq from the
	// index entry of its msgid (a key the script computes: it can not be known
	// before the item is read); when no seq is left, the entry gets PEXPIRE ttl.
	removeScript = redis.NewScript(`#!lua
local id = '0-' .. ARGV[1]
local e = redis.call('XRANGE', KEYS[1], id, id)
if #e == 0 then return 0 end
local msgid = ''
local f = e[1][2]
for i = 1, #f, 2 do
  if f[i] == 'msgid' then msgid = f[i + 1] end
end
redis.call('XDEL', KEYS[1], id)
if msgid ~= '' then
  local k = ARGV[2] .. msgid
  if redis.call('HDEL', k, ARGV[1]) == 1 and redis.call('HLEN', k) <= 2 then
    local ttl = redis.call('HGET', k, 'ttl')
    if ttl and ttl ~= '0' then redis.call('PEXPIRE', k, ttl) end
  end
end
return 1
`)

	// dropQueueScript: KEYS[1] queue. ARGV[1] the user's index key prefix.
	// Deletes the index entries of the queued items (computed keys: their
	// msgids are in the queue), then the queue. DeleteUser runs it inside its
	// MULTI block; it only deletes, so it may run when Redis is out of memory.
	dropQueueScript = redis.NewScript(`#!lua flags=allow-oom
local start = '-'
while true do
  local es = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', 500)
  for _, e in ipairs(es) do
    local f = e[2]
    for i = 1, #f, 2 do
      if f[i] == 'msgid' and f[i + 1] ~= '' then redis.call('DEL', ARGV[1] .. f[i + 1]) end
    end
  end
  if #es < 500 then break end
  start = '(' .. es[#es][1]
end
redis.call('DEL', KEYS[1])
return 0
`)

	// createGroupScript: KEYS[1] group, KEYS[2] the set of group ids,
	// KEYS[3..] the members' ug sets. ARGV: group JSON, group id. Returns 1,
	// or 0 when the id is taken.
	createGroupScript = redis.NewScript(`#!lua
if not redis.call('SET', KEYS[1], ARGV[1], 'NX') then return 0 end
redis.call('SADD', KEYS[2], ARGV[2])
for i = 3, #KEYS do redis.call('SADD', KEYS[i], ARGV[2]) end
return 1
`)

	// renameScript: KEYS[1] followings hash; ARGV pairs of followee, nick.
	// Sets the nick of the followees already in the hash.
	renameScript = redis.NewScript(`#!lua
for i = 1, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
return 0
`)

	allScripts = []*redis.Script{deliverScript, ackScript, removeScript, dropQueueScript, createGroupScript, renameScript}
)

// Deliver is one EVALSHA of deliverScript: one round trip whatever the
// number of targets.
func (r *Redis) Deliver(ctx context.Context, d Delivery) (bool, error) {
	if d.DedupeKey == "" && len(d.Targets) == 0 && d.History == nil {
		return false, nil
	}
	if r.cluster {
		return r.deliverCluster(ctx, d)
	}
	keys := make([]string, 0, 1+4*len(d.Targets))
	args := make([]any, 0, 5+5*len(d.Targets))
	if d.DedupeKey != "" {
		keys = append(keys, r.dedupeKey(d.DedupeKey))
		args = append(args, "1")
	} else {
		keys = append(keys, r.dedupeKey("")) // unused
		args = append(args, "0")
	}
	args = append(args, ttlMillis(d.DedupeTTL), ttlMillis(d.IndexTTL), len(d.Targets), max(d.MaxQueue, 0))
	for _, t := range d.Targets {
		keys = append(keys, r.seqKey(t.Receiver), r.queueKey(t.Receiver), r.indexKey(t.Receiver, t.Item.MsgID), r.blKey(t.Receiver))
		aow := "0"
		if t.Item.AckOnWrite {
			aow = "1"
		}
		payload := t.Item.Payload
		if payload == nil {
			payload = []byte{}
		}
		args = append(args, t.Item.From, t.Item.MsgID, payload, aow, t.UnlessBlocked)
	}
	if h := d.History; h != nil {
		keys = append(keys, r.historyKey(h.Group))
		args = append(args, append([]byte{}, h.Payload...), historyMax(h.Max))
	}
	n, err := deliverScript.Run(ctx, r.rdb, keys, args...).Int64()
	if err != nil {
		return false, r.wrap("deliver", err)
	}
	if n < 0 {
		return false, ErrQueueFull
	}
	return n == 0, nil
}

// slotStep is one deliverScript call of a cluster Deliver: its keys are all
// in one slot (one receiver's, or the group history's).
type slotStep struct {
	keys []string
	args []any
}

// deliverCluster is Deliver under Redis Cluster (docs/state.md, "Redis
// Cluster"): the delivery-wide dedupe marker dd:<key> is checked first; then
// deliverScript runs once per receiver, with all of that receiver's targets
// and a dedupe marker ddu:{<receiver>}:<key> in the receiver's slot, and
// once for the history entry with ddh:{<group>}:<key>; the steps go out in
// one pipeline (each master gets its part at once). dd:<key> is set last,
// when every step succeeded. A retry after a partial failure therefore
// writes only the steps whose marker is missing: each receiver still gets
// the item once.
func (r *Redis) deliverCluster(ctx context.Context, d Delivery) (bool, error) {
	use := "0"
	if d.DedupeKey != "" {
		use = "1"
		n, err := r.rdb.Exists(ctx, r.dedupeKey(d.DedupeKey)).Result()
		if err != nil {
			return false, r.wrap("deliver", err)
		}
		if n > 0 {
			return true, nil
		}
	}
	var order []string
	by := map[string][]Target{}
	for _, t := range d.Targets {
		if _, ok := by[t.Receiver]; !ok {
			order = append(order, t.Receiver)
		}
		by[t.Receiver] = append(by[t.Receiver], t)
	}
	steps := make([]slotStep, 0, len(order)+1)
	for _, rcv := range order {
		ts := by[rcv]
		st := slotStep{
			keys: make([]string, 0, 1+4*len(ts)),
			args: make([]any, 0, 5+5*len(ts)),
		}
		st.keys = append(st.keys, r.receiverDedupeKey(rcv, d.DedupeKey))
		st.args = append(st.args, use, ttlMillis(d.DedupeTTL), ttlMillis(d.IndexTTL), len(ts), max(d.MaxQueue, 0))
		for _, t := range ts {
			st.keys = append(st.keys, r.seqKey(rcv), r.queueKey(rcv), r.indexKey(rcv, t.Item.MsgID), r.blKey(rcv))
			aow := "0"
			if t.Item.AckOnWrite {
				aow = "1"
			}
			payload := t.Item.Payload
			if payload == nil {
				payload = []byte{}
			}
			st.args = append(st.args, t.Item.From, t.Item.MsgID, payload, aow, t.UnlessBlocked)
		}
		steps = append(steps, st)
	}
	if h := d.History; h != nil {
		steps = append(steps, slotStep{
			keys: []string{r.historyDedupeKey(h.Group, d.DedupeKey), r.historyKey(h.Group)},
			args: []any{use, ttlMillis(d.DedupeTTL), ttlMillis(d.IndexTTL), 0, 0, append([]byte{}, h.Payload...), historyMax(h.Max)},
		})
	}
	if d.MaxQueue > 0 && len(steps) > 1 {
		// Refuse the whole delivery, as one script would, when every
		// messaged receiver is full: read first, since the steps are
		// separate scripts. (A queue that fills between this read and its
		// step is skipped by the step.)
		full, err := r.allFull(ctx, d)
		if err != nil {
			return false, err
		}
		if full {
			return false, ErrQueueFull
		}
	}
	res, err := r.runSteps(ctx, steps)
	if err != nil {
		return false, r.wrap("deliver", err)
	}
	wrote, dup, full := false, false, false
	for _, n := range res {
		switch {
		case n > 0:
			wrote = true
		case n == 0:
			dup = true
		default:
			full = true
		}
	}
	if !wrote && full && !dup {
		return false, ErrQueueFull
	}
	if d.DedupeKey != "" {
		var err error
		if d.DedupeTTL > 0 {
			err = r.rdb.Set(ctx, r.dedupeKey(d.DedupeKey), "1", time.Duration(ttlMillis(d.DedupeTTL))*time.Millisecond).Err()
		} else {
			err = r.rdb.Set(ctx, r.dedupeKey(d.DedupeKey), "1", 0).Err()
		}
		if err != nil {
			return false, r.wrap("deliver", err)
		}
	}
	return !wrote && dup, nil
}

// allFull reports whether, as deliverScript decides it, MaxQueue leaves no
// target of d: some messaged receiver is full and every other target is
// either full or skipped by its block list.
func (r *Redis) allFull(ctx context.Context, d Delivery) (bool, error) {
	blocked := make([]*redis.BoolCmd, len(d.Targets))
	lens := make([]*redis.IntCmd, len(d.Targets))
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, t := range d.Targets {
			if t.UnlessBlocked != "" {
				blocked[i] = p.SIsMember(ctx, r.blKey(t.Receiver), t.UnlessBlocked)
			}
			if t.Item.MsgID != "" {
				lens[i] = p.XLen(ctx, r.queueKey(t.Receiver))
			}
		}
		return nil
	})
	if err != nil {
		return false, r.wrap("deliver", err)
	}
	full, left := false, 0
	for i := range d.Targets {
		switch {
		case blocked[i] != nil && blocked[i].Val():
		case lens[i] != nil && lens[i].Val() >= int64(d.MaxQueue):
			full = true
		default:
			left++
		}
	}
	return full && left == 0, nil
}

// runSteps runs deliverScript for each step in one pipeline of EVALSHA,
// then EVAL for any step whose master did not have the script (NOSCRIPT:
// restarted, failed over, SCRIPT FLUSH).
func (r *Redis) runSteps(ctx context.Context, steps []slotStep) ([]int64, error) {
	if len(steps) == 1 { // a 1:1 message: no pipeline to split
		n, err := deliverScript.Run(ctx, r.rdb, steps[0].keys, steps[0].args...).Int64()
		return []int64{n}, err
	}
	cmds := make([]*redis.Cmd, len(steps))
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, st := range steps {
			cmds[i] = deliverScript.EvalSha(ctx, p, st.keys, st.args...)
		}
		return nil
	})
	if err != nil && !redis.HasErrorPrefix(err, "NOSCRIPT") {
		return nil, err
	}
	res := make([]int64, len(steps))
	for i, c := range cmds {
		n, err := c.Int64()
		if redis.HasErrorPrefix(err, "NOSCRIPT") {
			n, err = deliverScript.Run(ctx, r.rdb, steps[i].keys, steps[i].args...).Int64()
		}
		if err != nil {
			return nil, err
		}
		res[i] = n
	}
	return res, nil
}

func (r *Redis) Pending(ctx context.Context, user string, after uint64, limit int) ([]Item, error) {
	if after == math.MaxUint64 {
		return []Item{}, nil
	}
	start := "-"
	if after > 0 {
		start = "(0-" + strconv.FormatUint(after, 10)
	}
	var msgs []redis.XMessage
	var err error
	if limit > 0 {
		msgs, err = r.rdb.XRangeN(ctx, r.queueKey(user), start, "+", int64(limit)).Result()
	} else {
		msgs, err = r.rdb.XRange(ctx, r.queueKey(user), start, "+").Result()
	}
	if err != nil {
		return nil, r.wrap("pending", err)
	}
	items := make([]Item, 0, len(msgs))
	for _, m := range msgs {
		it, err := parseItem(m)
		if err != nil {
			return nil, fmt.Errorf("state: corrupt queue item %s of %q: %w", m.ID, user, err)
		}
		items = append(items, it)
	}
	return items, nil
}

func parseItem(m redis.XMessage) (Item, error) {
	ms, seqStr, ok := strings.Cut(m.ID, "-")
	if !ok || ms != "0" {
		return Item{}, errors.New("unexpected stream id")
	}
	seq, err := strconv.ParseUint(seqStr, 10, 64)
	if err != nil {
		return Item{}, err
	}
	str := func(f string) string { s, _ := m.Values[f].(string); return s }
	var payload []byte
	if s := str("payload"); s != "" {
		payload = []byte(s)
	}
	return Item{
		Seq:        seq,
		From:       str("from"),
		MsgID:      str("msgid"),
		Payload:    payload,
		AckOnWrite: str("ackonwrite") == "1",
	}, nil
}

// Ack is one EVALSHA of ackScript.
func (r *Redis) Ack(ctx context.Context, user, msgID string) (string, error) {
	from, err := ackScript.Run(ctx, r.rdb, []string{r.indexKey(user, msgID), r.queueKey(user)}).Text()
	if errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("message %q of %q: %w", msgID, user, ErrNotFound)
	}
	if err != nil {
		return "", r.wrap("ack", err)
	}
	return from, nil
}

// Remove is one EVALSHA of removeScript.
func (r *Redis) Remove(ctx context.Context, user string, seq uint64) error {
	err := removeScript.Run(ctx, r.rdb, []string{r.queueKey(user)}, strconv.FormatUint(seq, 10), r.indexPrefix(user)).Err()
	return r.wrap("remove", err)
}

func (r *Redis) QueueLen(ctx context.Context, user string) (int, error) {
	n, err := r.rdb.XLen(ctx, r.queueKey(user)).Result()
	if err != nil {
		return 0, r.wrap("queue length", err)
	}
	return int(n), nil
}

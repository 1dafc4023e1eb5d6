package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisConfig configures NewRedis. The zero value connects to a local Redis.
type RedisConfig struct {
	// URL is a redis:// or rediss:// URL as redis.ParseURL reads it, e.g.
	// redis://user:pass@10.0.0.5:6379/0. Empty means DefaultRedisURL.
	//
	// redis+cluster:// (rediss+cluster:// for TLS) selects Redis Cluster, with
	// one or more seed masters separated by commas and no database, e.g.
	// redis+cluster://user:pass@10.0.0.5:7000,10.0.0.6:7000; go-redis finds
	// the other nodes. Query options are those of redis.ParseClusterURL.
	URL string
	// Cluster selects Redis Cluster with a redis:// or rediss:// URL (its
	// host is the seed; more seeds with ?addr=host:port), like the
	// redis+cluster:// scheme.
	Cluster bool
	// KeyPrefix is put before every key, so several gateways (or tests) can
	// share one database. Empty means DefaultKeyPrefix.
	KeyPrefix string
	// Observe, when set, is called after every command or pipeline sent
	// to Redis with its name ("evalsha", "xrange", "pipeline"...), how long
	// the round trip took and its error (redis_observe.go): the latency
	// metric.
	Observe func(cmd string, took time.Duration, err error)
}

// Defaults of RedisConfig's zero value.
const (
	DefaultRedisURL  = "redis://127.0.0.1:6379/0"
	DefaultKeyPrefix = "lempgw:"
)

// Redis is the Store on a standalone Redis 7.0 or later, or a Redis Cluster
// (go-redis v9). The key layout, and which operations are Lua scripts,
// MULTI/EXEC blocks or WATCH transactions, is documented in docs/state.md.
type Redis struct {
	rdb     redis.UniversalClient
	p       string // key prefix
	addr    string
	cluster bool // hash-tagged keys, cross-slot writes split per slot
}

var _ Store = (*Redis)(nil)

// NewRedis connects to cfg.URL, checks the server answers PING and loads the
// Lua scripts. The error names the address when the server is unreachable.
func NewRedis(ctx context.Context, cfg RedisConfig) (*Redis, error) {
	single, clu, err := parseRedisURL(cfg.URL, cfg.Cluster)
	if err != nil {
		return nil, err
	}
	prefix := cfg.KeyPrefix
	if prefix == "" {
		prefix = DefaultKeyPrefix
	}
	r := &Redis{p: prefix}
	if clu != nil {
		r.rdb, r.addr, r.cluster = redis.NewClusterClient(clu), strings.Join(clu.Addrs, ","), true
	} else {
		r.rdb, r.addr = redis.NewClient(single), single.Addr
	}
	if cfg.Observe != nil {
		r.rdb.AddHook(observeHook{cfg.Observe})
	}
	if err := r.rdb.Ping(ctx).Err(); err != nil {
		_ = r.rdb.Close()
		return nil, fmt.Errorf("state: redis at %s unreachable: %w", r.addr, err)
	}
	// Loading the scripts up front keeps Deliver, Ack and Remove to one round
	// trip (EVALSHA) from the first call; Script.Run falls back to EVAL if the
	// server forgets them (restart, SCRIPT FLUSH).
	for _, s := range allScripts {
		if err := s.Load(ctx, r.rdb).Err(); err != nil {
			_ = r.rdb.Close()
			return nil, fmt.Errorf("state: redis at %s: loading Lua scripts (Redis 7.0 or later required): %w", r.addr, err)
		}
	}
	return r, nil
}

// CheckRedisURL reports whether NewRedis would accept url (with
// RedisConfig.Cluster false): a redis://, rediss://, redis+cluster:// or
// rediss+cluster:// URL.
func CheckRedisURL(url string) error {
	_, _, err := parseRedisURL(url, false)
	return err
}

// parseRedisURL returns the options of a single-node client, or of a
// cluster client for a +cluster scheme or when cluster is set.
func parseRedisURL(u string, cluster bool) (*redis.Options, *redis.ClusterOptions, error) {
	if u == "" {
		u = DefaultRedisURL
	}
	scheme, rest, ok := strings.Cut(u, "://")
	if ok && (scheme == "redis+cluster" || scheme == "rediss+cluster") {
		// redis+cluster://[userinfo@]h1:p1,h2:p2[/][?query] becomes
		// redis://[userinfo@]h1:p1/?query&addr=h2:p2, the form of
		// redis.ParseClusterURL.
		auth, query, _ := strings.Cut(rest, "?")
		auth, path, _ := strings.Cut(auth, "/")
		if path != "" && path != "0" {
			return nil, nil, fmt.Errorf("state: redis URL: a Redis Cluster has only database 0, not %q", path)
		}
		user, hosts := "", auth
		if i := strings.LastIndex(auth, "@"); i >= 0 {
			user, hosts = auth[:i+1], auth[i+1:]
		}
		seeds := strings.Split(hosts, ",")
		if slices.Contains(seeds, "") {
			return nil, nil, errors.New("state: redis URL: want redis+cluster://host:port[,host:port...]")
		}
		q := query
		for _, s := range seeds[1:] {
			if q != "" {
				q += "&"
			}
			q += "addr=" + s
		}
		u = strings.TrimSuffix(scheme, "+cluster") + "://" + user + seeds[0]
		if q != "" {
			u += "?" + q
		}
		cluster = true
	}
	if cluster {
		opt, err := redis.ParseClusterURL(u)
		if err != nil {
			return nil, nil, fmt.Errorf("state: redis cluster URL: %w", err)
		}
		return nil, opt, nil
	}
	opt, err := redis.ParseURL(u)
	if err != nil {
		return nil, nil, fmt.Errorf("state: redis URL: %w", err)
	}
	return opt, nil, nil
}

// Cluster reports whether r is on a Redis Cluster.
func (r *Redis) Cluster() bool { return r.cluster }

// Ping checks that Redis answers.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("state: redis at %s: %w", r.addr, err)
	}
	return nil
}

// Close closes the connection pool.
func (r *Redis) Close() error { return r.rdb.Close() }

// ---- keys (see docs/state.md) ----

// ukey is the key of a kind of per-user (or per-group) record: <p><kind><name>
// on a single Redis, as it always was; under Cluster the name is a hash tag,
// <p><kind>{<escaped name>}, so all of one user's keys share a slot.
func (r *Redis) ukey(kind, name string) string {
	if r.cluster {
		return r.p + kind + tag(name)
	}
	return r.p + kind + name
}

// tag is a name as a Redis Cluster hash tag: '%', '{' and '}' are
// percent-escaped, so the tag ends at its own '}' and is never empty ("{}"
// would hash the whole key): the empty name is "{%}", which no escaped
// name can be.
func tag(name string) string {
	if name == "" {
		return "{%}"
	}
	return "{" + tagEscaper.Replace(name) + "}"
}

var tagEscaper = strings.NewReplacer("%", "%25", "{", "%7B", "}", "%7D")

func (r *Redis) userKey(name string) string  { return r.ukey("u:", name) }
func (r *Redis) usersKey() string            { return r.p + "users" }
func (r *Redis) fwKey(user string) string    { return r.ukey("fw:", user) }
func (r *Redis) frKey(user string) string    { return r.ukey("fr:", user) }
func (r *Redis) blKey(user string) string    { return r.ukey("bl:", user) }
func (r *Redis) groupKey(id string) string   { return r.ukey("g:", id) }
func (r *Redis) groupsKey() string           { return r.p + "groups" }
func (r *Redis) historyKey(id string) string { return r.ukey("h:", id) }
func (r *Redis) ugKey(user string) string    { return r.ukey("ug:", user) }
func (r *Redis) queueKey(user string) string { return r.ukey("q:", user) }
func (r *Redis) seqKey(user string) string   { return r.ukey("seq:", user) }
func (r *Redis) dedupeKey(k string) string   { return r.p + "dd:" + k }

// Cluster only: a delivery's dedupe marker in one receiver's slot, and in
// a group history's slot (docs/state.md, "Redis Cluster").
func (r *Redis) receiverDedupeKey(user, k string) string { return r.p + "ddu:" + tag(user) + ":" + k }
func (r *Redis) historyDedupeKey(id, k string) string    { return r.p + "ddh:" + tag(id) + ":" + k }

// indexKey is the only key with two variable parts: ':' and '%' in the user
// name are percent-escaped so that (user, msgID) pairs can not collide.
// Under Cluster the user is a tag, which ends at the only '}'.
func (r *Redis) indexKey(user, msgID string) string {
	return r.indexPrefix(user) + msgID
}

// indexPrefix is the part of user's index keys before the msgid, for the
// scripts that compute index keys from the msgids of queue items.
func (r *Redis) indexPrefix(user string) string {
	if r.cluster {
		return r.p + "mi:" + tag(user) + ":"
	}
	return r.p + "mi:" + indexEscaper.Replace(user) + ":"
}

var indexEscaper = strings.NewReplacer("%", "%25", ":", "%3A")

// mget is MGET on a single Redis; under Cluster, where MGET must stay in
// one slot, a pipeline of GETs (go-redis sends it to each master at once).
// A missing key is a nil value.
func (r *Redis) mget(ctx context.Context, keys ...string) ([]any, error) {
	if !r.cluster {
		return r.rdb.MGet(ctx, keys...).Result()
	}
	cmds := make([]*redis.StringCmd, len(keys))
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.Get(ctx, k)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	vals := make([]any, len(keys))
	for i, c := range cmds {
		switch v, err := c.Result(); {
		case err == nil:
			vals[i] = v
		case !errors.Is(err, redis.Nil):
			return nil, err
		}
	}
	return vals, nil
}

// wrap reports a Redis failure with context; nil stays nil.
func (r *Redis) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if unreachable(err) {
		return fmt.Errorf("state: redis %s: %w (%w)", op, err, ErrUnavailable)
	}
	return fmt.Errorf("state: redis %s: %w", op, err)
}

// unreachable reports whether err means Redis was not reached or did not
// answer, rather than answered with an error (a redis.Error) or no value.
func unreachable(err error) bool {
	var re redis.Error
	if errors.As(err, &re) {
		// Answers that mean "not now": still loading its data after a
		// restart, a cluster or replica not ready. The request may succeed
		// in a moment: 503, not 500.
		for _, p := range []string{"LOADING ", "MASTERDOWN ", "CLUSTERDOWN ", "TRYAGAIN ", "BUSY "} {
			if strings.HasPrefix(re.Error(), p) {
				return true
			}
		}
		return false
	}
	return !errors.Is(err, redis.Nil) && !errors.Is(err, redis.TxFailedErr) && !errors.Is(err, context.Canceled)
}

// txErr is wrap, except that a failed EXEC (a watched key changed) is
// returned as is so that watch retries it.
func (r *Redis) txErr(op string, err error) error {
	if err == nil || errors.Is(err, redis.TxFailedErr) {
		return err
	}
	return r.wrap(op, err)
}

// watch runs fn in a WATCH transaction on keys, running it again (up to
// maxUpdateAttempts times, with a little jitter) while EXEC fails because a
// watched key changed.
func (r *Redis) watch(ctx context.Context, op string, fn func(*redis.Tx) error, keys ...string) error {
	for attempt := range maxUpdateAttempts {
		ran := false
		err := r.rdb.Watch(ctx, func(tx *redis.Tx) error { ran = true; return fn(tx) }, keys...)
		if !ran {
			return r.wrap(op, err) // WATCH itself failed
		}
		if !errors.Is(err, redis.TxFailedErr) {
			return err
		}
		if attempt >= 2 {
			d := time.Duration(rand.Int64N(int64(min(attempt, 20)) * int64(time.Millisecond)))
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return r.wrap(op, ctx.Err())
			}
		}
	}
	return fmt.Errorf("state: redis %s: gave up after %d concurrent changes", op, maxUpdateAttempts)
}

// pipeline is MULTI/EXEC on a single Redis and a plain pipeline under
// Cluster, for the writes whose keys span slots there and whose commands
// are idempotent (docs/state.md says which).
func (r *Redis) pipeline(ctx context.Context, fn func(redis.Pipeliner) error) ([]redis.Cmder, error) {
	if r.cluster {
		return r.rdb.Pipelined(ctx, fn)
	}
	return r.rdb.TxPipelined(ctx, fn)
}

// ---- users ----

func (r *Redis) CreateUser(ctx context.Context, u User) error {
	b, err := json.Marshal(u)
	if err != nil {
		return fmt.Errorf("state: encode user: %w", err)
	}
	if r.cluster {
		// users is in a slot of its own: add the name first, so a crash
		// between the two steps leaves a name without a record (ListUsers
		// skips it) rather than a record ListUsers misses.
		if err := r.rdb.SAdd(ctx, r.usersKey(), u.Name).Err(); err != nil {
			return r.wrap("create user", err)
		}
		set, err := r.rdb.SetNX(ctx, r.userKey(u.Name), b, 0).Result()
		if err != nil {
			return r.wrap("create user", err)
		}
		if !set {
			return fmt.Errorf("user %q: %w", u.Name, ErrExists)
		}
		return nil
	}
	var set *redis.BoolCmd
	_, err = r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		set = p.SetNX(ctx, r.userKey(u.Name), b, 0)
		p.SAdd(ctx, r.usersKey(), u.Name) // a no-op when the user exists
		return nil
	})
	if err != nil {
		return r.wrap("create user", err)
	}
	if !set.Val() {
		return fmt.Errorf("user %q: %w", u.Name, ErrExists)
	}
	return nil
}

func (r *Redis) GetUser(ctx context.Context, name string) (User, error) {
	return r.getUser(ctx, r.rdb, name)
}

func (r *Redis) getUser(ctx context.Context, c redis.Cmdable, name string) (User, error) {
	b, err := c.Get(ctx, r.userKey(name)).Bytes()
	if errors.Is(err, redis.Nil) {
		return User{}, fmt.Errorf("user %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return User{}, r.wrap("get user", err)
	}
	var u User
	if err := json.Unmarshal(b, &u); err != nil {
		return User{}, fmt.Errorf("state: corrupt user %q: %w", name, err)
	}
	return u, nil
}

func (r *Redis) UpdateUser(ctx context.Context, name string, fn func(*User) error) (User, error) {
	k := r.userKey(name)
	var out User
	err := r.watch(ctx, "update user", func(tx *redis.Tx) error {
		u, err := r.getUser(ctx, tx, name)
		if err != nil {
			return err
		}
		if err := fn(&u); err != nil {
			return err
		}
		u.Name = name // the key can not be renamed
		b, err := json.Marshal(u)
		if err != nil {
			return fmt.Errorf("state: encode user: %w", err)
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, k, b, 0)
			return nil
		})
		out = u
		return r.txErr("update user", err)
	}, k)
	if err != nil {
		return User{}, err
	}
	return out, nil
}

func (r *Redis) DeleteUser(ctx context.Context, name string) error {
	uk, fk := r.userKey(name), r.fwKey(name)
	return r.watch(ctx, "delete user", func(tx *redis.Tx) error {
		n, err := tx.Exists(ctx, uk).Result()
		if err != nil {
			return r.wrap("delete user", err)
		}
		if n == 0 {
			return fmt.Errorf("user %q: %w", name, ErrNotFound)
		}
		followees, err := tx.HKeys(ctx, fk).Result()
		if err != nil {
			return r.wrap("delete user", err)
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Del(ctx, uk, fk, r.blKey(name))
			// The queue and the index entries of its items, from the queue
			// as it is at EXEC. EVAL, not EVALSHA: a NOSCRIPT error inside
			// EXEC would not undo the other commands.
			dropQueueScript.Eval(ctx, p, []string{r.queueKey(name)}, r.indexPrefix(name))
			if !r.cluster {
				p.SRem(ctx, r.usersKey(), name)
				for _, f := range followees {
					p.SRem(ctx, r.frKey(f), name)
				}
			}
			// seq:<name> stays so a re-created user never reuses a seq, and
			// fr:<name> stays in step with the others' followings.
			return nil
		})
		if err != nil || !r.cluster {
			return r.txErr("delete user", err)
		}
		// Cluster: the user's own slot is done (the transaction above); the
		// users set and the followees' fr: sets are in other slots.
		return r.wrap("delete user", r.unindexUser(ctx, name, followees))
	}, uk, fk)
}

// unindexUser is the cross-slot part of DeleteUser under Cluster: SREM from
// users and from each followee's fr: set, pipelined (go-redis sends each
// master its part). Each SREM is idempotent; if it fails halfway, the
// names left behind are those a crash of the single-node MULTI can not
// leave: ListUsers skips a name without a record, and Followers may name
// the deleted user until it is created again and unfollows.
func (r *Redis) unindexUser(ctx context.Context, name string, followees []string) error {
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.SRem(ctx, r.usersKey(), name)
		for _, f := range followees {
			p.SRem(ctx, r.frKey(f), name)
		}
		return nil
	})
	return err
}

func (r *Redis) ListUsers(ctx context.Context) ([]User, error) {
	names, err := r.rdb.SMembers(ctx, r.usersKey()).Result()
	if err != nil {
		return nil, r.wrap("list users", err)
	}
	slices.Sort(names)
	us := make([]User, 0, len(names))
	for chunk := range slices.Chunk(names, 500) {
		ks := make([]string, len(chunk))
		for i, n := range chunk {
			ks[i] = r.userKey(n)
		}
		vals, err := r.mget(ctx, ks...)
		if err != nil {
			return nil, r.wrap("list users", err)
		}
		for i, v := range vals {
			s, ok := v.(string)
			if !ok {
				continue // deleted since SMEMBERS
			}
			var u User
			if err := json.Unmarshal([]byte(s), &u); err != nil {
				return nil, fmt.Errorf("state: corrupt user %q: %w", chunk[i], err)
			}
			us = append(us, u)
		}
	}
	return us, nil
}

// ---- followings ----

func (r *Redis) Follow(ctx context.Context, user string, fs []Following) error {
	if len(fs) == 0 {
		return nil
	}
	// Under Cluster the fr: sets are in the followees' slots: a plain
	// pipeline, fr: before fw:, every command idempotent, so a Follow that
	// failed halfway is completed by the client's retry.
	_, err := r.pipeline(ctx, func(p redis.Pipeliner) error {
		args := make([]any, 0, 2*len(fs))
		for _, f := range fs {
			args = append(args, f.User, f.Nick)
			p.SAdd(ctx, r.frKey(f.User), user)
		}
		p.HSet(ctx, r.fwKey(user), args...)
		return nil
	})
	return r.wrap("follow", err)
}

func (r *Redis) Unfollow(ctx context.Context, user string, names []string) error {
	if len(names) == 0 {
		return nil
	}
	_, err := r.pipeline(ctx, func(p redis.Pipeliner) error {
		p.HDel(ctx, r.fwKey(user), names...)
		for _, n := range names {
			p.SRem(ctx, r.frKey(n), user)
		}
		return nil
	})
	return r.wrap("unfollow", err)
}

func (r *Redis) RenameFollowings(ctx context.Context, user string, fs []Following) error {
	if len(fs) == 0 {
		return nil
	}
	args := make([]any, 0, 2*len(fs))
	for _, f := range fs {
		args = append(args, f.User, f.Nick)
	}
	err := renameScript.Run(ctx, r.rdb, []string{r.fwKey(user)}, args...).Err()
	if errors.Is(err, redis.Nil) {
		err = nil
	}
	return r.wrap("rename followings", err)
}

func (r *Redis) Followings(ctx context.Context, user string) ([]Following, error) {
	h, err := r.rdb.HGetAll(ctx, r.fwKey(user)).Result()
	if err != nil {
		return nil, r.wrap("followings", err)
	}
	fs := make([]Following, 0, len(h))
	for u, n := range h {
		fs = append(fs, Following{User: u, Nick: n})
	}
	slices.SortFunc(fs, func(a, b Following) int { return strings.Compare(a.User, b.User) })
	return fs, nil
}

func (r *Redis) Followers(ctx context.Context, user string) ([]string, error) {
	return r.sortedMembers(ctx, "followers", r.frKey(user))
}

func (r *Redis) sortedMembers(ctx context.Context, op, key string) ([]string, error) {
	ms, err := r.rdb.SMembers(ctx, key).Result()
	if err != nil {
		return nil, r.wrap(op, err)
	}
	if ms == nil {
		ms = []string{}
	}
	slices.Sort(ms)
	return ms, nil
}

// ---- block list ----

func (r *Redis) Block(ctx context.Context, user, target string) error {
	return r.wrap("block", r.rdb.SAdd(ctx, r.blKey(user), target).Err())
}

func (r *Redis) Unblock(ctx context.Context, user, target string) error {
	return r.wrap("unblock", r.rdb.SRem(ctx, r.blKey(user), target).Err())
}

func (r *Redis) BlockList(ctx context.Context, user string) ([]string, error) {
	return r.sortedMembers(ctx, "block list", r.blKey(user))
}

func (r *Redis) IsBlocked(ctx context.Context, user, target string) (bool, error) {
	ok, err := r.rdb.SIsMember(ctx, r.blKey(user), target).Result()
	return ok, r.wrap("is blocked", err)
}

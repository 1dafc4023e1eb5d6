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
	URL string
	// KeyPrefix is put before every key, so several gateways (or tests) can
	// share one database. Empty means DefaultKeyPrefix.
	KeyPrefix string
}

// Defaults of RedisConfig's zero value.
const (
	DefaultRedisURL  = "redis://127.0.0.1:6379/0"
	DefaultKeyPrefix = "lempgw:"
)

// Redis is the Store on a standalone Redis 7.0 or later (go-redis v9). The
// key layout, and which operations are Lua scripts, MULTI/EXEC blocks or
// WATCH transactions, is documented in docs/state.md.
type Redis struct {
	rdb  *redis.Client
	p    string // key prefix
	addr string
}

var _ Store = (*Redis)(nil)

// NewRedis connects to cfg.URL, checks the server answers PING and loads the
// Lua scripts. The error names the address when the server is unreachable.
func NewRedis(ctx context.Context, cfg RedisConfig) (*Redis, error) {
	url := cfg.URL
	if url == "" {
		url = DefaultRedisURL
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("state: redis URL: %w", err)
	}
	prefix := cfg.KeyPrefix
	if prefix == "" {
		prefix = DefaultKeyPrefix
	}
	r := &Redis{rdb: redis.NewClient(opt), p: prefix, addr: opt.Addr}
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

func (r *Redis) userKey(name string) string  { return r.p + "u:" + name }
func (r *Redis) usersKey() string            { return r.p + "users" }
func (r *Redis) fwKey(user string) string    { return r.p + "fw:" + user }
func (r *Redis) frKey(user string) string    { return r.p + "fr:" + user }
func (r *Redis) blKey(user string) string    { return r.p + "bl:" + user }
func (r *Redis) groupKey(id string) string   { return r.p + "g:" + id }
func (r *Redis) groupsKey() string           { return r.p + "groups" }
func (r *Redis) historyKey(id string) string { return r.p + "h:" + id }
func (r *Redis) ugKey(user string) string    { return r.p + "ug:" + user }
func (r *Redis) queueKey(user string) string { return r.p + "q:" + user }
func (r *Redis) seqKey(user string) string   { return r.p + "seq:" + user }
func (r *Redis) dedupeKey(k string) string   { return r.p + "dd:" + k }

// indexKey is the only key with two variable parts: ':' and '%' in the user
// name are percent-escaped so that (user, msgID) pairs can not collide.
func (r *Redis) indexKey(user, msgID string) string {
	return r.indexPrefix(user) + msgID
}

// indexPrefix is the part of user's index keys before the msgid, for the
// scripts that compute index keys from the msgids of queue items.
func (r *Redis) indexPrefix(user string) string {
	return r.p + "mi:" + indexEscaper.Replace(user) + ":"
}

var indexEscaper = strings.NewReplacer("%", "%25", ":", "%3A")

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
	return !errors.As(err, &re) && !errors.Is(err, redis.Nil) && !errors.Is(err, redis.TxFailedErr) &&
		!errors.Is(err, context.Canceled)
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

// ---- users ----

func (r *Redis) CreateUser(ctx context.Context, u User) error {
	b, err := json.Marshal(u)
	if err != nil {
		return fmt.Errorf("state: encode user: %w", err)
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
			p.SRem(ctx, r.usersKey(), name)
			for _, f := range followees {
				p.SRem(ctx, r.frKey(f), name)
			}
			// seq:<name> stays so a re-created user never reuses a seq, and
			// fr:<name> stays in step with the others' followings.
			return nil
		})
		return r.txErr("delete user", err)
	}, uk, fk)
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
		vals, err := r.rdb.MGet(ctx, ks...).Result()
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
	_, err := r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
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
	_, err := r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
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

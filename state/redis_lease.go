package state

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Lease keys (docs/operations.md, "The component link across nodes"): the
// grant, a string "<token>:<holder>" with the lease's TTL (PX), and the
// fencing-token counter, which never expires, so tokens are never reused.
// The {...} hash tag keeps both in one Redis Cluster slot.
func (r *Redis) leaseKey(name string) string      { return r.p + "lease:{" + name + "}" }
func (r *Redis) leaseTokenKey(name string) string { return r.p + "leasetok:{" + name + "}" }

var (
	// acquireLeaseScript: KEYS[1] grant, KEYS[2] token counter; ARGV[1]
	// holder, ARGV[2] ttl ms. Grants the lease with a new token if nobody
	// holds it (SET NX PX): {1, value, pttl}; else {0, current value, pttl}.
	acquireLeaseScript = redis.NewScript(`#!lua
local cur = redis.call('GET', KEYS[1])
if cur then return {0, cur, redis.call('PTTL', KEYS[1])} end
local v = string.format('%d', redis.call('INCR', KEYS[2])) .. ':' .. ARGV[1]
redis.call('SET', KEYS[1], v, 'NX', 'PX', ARGV[2])
return {1, v, tonumber(ARGV[2])}
`)

	// renewLeaseScript: KEYS[1] grant; ARGV[1] value, ARGV[2] ttl ms.
	// Compare-and-renew: 1 if the grant is still ARGV[1], else 0.
	renewLeaseScript = redis.NewScript(`#!lua
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

	// releaseLeaseScript: KEYS[1] grant; ARGV[1] value. Compare-and-delete.
	releaseLeaseScript = redis.NewScript(`#!lua
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`)

	// getLeaseScript: KEYS[1] grant. {value, pttl}, or {} when free.
	getLeaseScript = redis.NewScript(`#!lua
local cur = redis.call('GET', KEYS[1])
if not cur then return {} end
return {cur, redis.call('PTTL', KEYS[1])}
`)
)

func init() {
	allScripts = append(allScripts, acquireLeaseScript, renewLeaseScript, releaseLeaseScript, getLeaseScript)
}

func (r *Redis) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (Lease, bool, error) {
	if err := checkLeaseArgs(name, holder, ttl); err != nil {
		return Lease{}, false, err
	}
	res, err := acquireLeaseScript.Run(ctx, r.rdb, []string{r.leaseKey(name), r.leaseTokenKey(name)}, holder, ttlMillis(ttl)).Slice()
	if err != nil {
		return Lease{}, false, r.wrap("acquire lease", err)
	}
	if len(res) != 3 {
		return Lease{}, false, fmt.Errorf("state: redis acquire lease %q: unexpected answer %v", name, res)
	}
	l, err := leaseFrom(name, res[1], res[2])
	if err != nil {
		return Lease{}, false, err
	}
	granted, _ := res[0].(int64)
	return l, granted == 1, nil
}

func (r *Redis) RenewLease(ctx context.Context, l Lease, ttl time.Duration) (bool, error) {
	if err := checkLease(l); err != nil {
		return false, err
	}
	if err := checkLeaseArgs(l.Name, l.Holder, ttl); err != nil {
		return false, err
	}
	ok, err := renewLeaseScript.Run(ctx, r.rdb, []string{r.leaseKey(l.Name)}, leaseValue(l.Token, l.Holder), ttlMillis(ttl)).Int()
	if err != nil {
		return false, r.wrap("renew lease", err)
	}
	return ok == 1, nil
}

func (r *Redis) ReleaseLease(ctx context.Context, l Lease) error {
	if err := checkLease(l); err != nil {
		return err
	}
	return r.wrap("release lease", releaseLeaseScript.Run(ctx, r.rdb, []string{r.leaseKey(l.Name)}, leaseValue(l.Token, l.Holder)).Err())
}

func (r *Redis) GetLease(ctx context.Context, name string) (Lease, error) {
	if name == "" {
		return Lease{}, checkLeaseArgs(name, "-", time.Millisecond)
	}
	res, err := getLeaseScript.Run(ctx, r.rdb, []string{r.leaseKey(name)}).Slice()
	if errors.Is(err, redis.Nil) {
		res, err = nil, nil
	}
	if err != nil {
		return Lease{}, r.wrap("get lease", err)
	}
	if len(res) == 0 {
		return Lease{}, fmt.Errorf("lease %q: %w", name, ErrNotFound)
	}
	if len(res) != 2 {
		return Lease{}, fmt.Errorf("state: redis get lease %q: unexpected answer %v", name, res)
	}
	return leaseFrom(name, res[0], res[1])
}

// leaseFrom reads a grant's value and PTTL from a script's answer.
func leaseFrom(name string, value, pttl any) (Lease, error) {
	s, ok := value.(string)
	if !ok {
		return Lease{}, fmt.Errorf("state: redis lease %q: unexpected value %v", name, value)
	}
	token, holder, err := parseLeaseValue(s)
	if err != nil {
		return Lease{}, fmt.Errorf("lease %q: %w", name, err)
	}
	ms, _ := pttl.(int64)
	return Lease{Name: name, Holder: holder, Token: token, TTL: time.Duration(max(ms, 0)) * time.Millisecond}, nil
}

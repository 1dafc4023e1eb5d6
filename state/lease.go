package state

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Lease is a named lease in the store (Store.AcquireLease): one holder at
// a time, for a time, with a fencing token.
type Lease struct {
	Name   string
	Holder string // who holds it, e.g. a node id
	// Token is the fencing token: it grows with every grant of the name
	// (never reused, also after an expiry or a release), so a newer holder
	// always has a larger one. Renew and Release act only on the grant
	// whose token they carry.
	Token uint64
	// TTL is what was left of the lease when the store answered (on
	// AcquireLease and GetLease); informative only.
	TTL time.Duration
}

// maxLeaseHolder bounds Lease.Holder (a node id is at most 64 bytes).
const maxLeaseHolder = 256

// checkLeaseArgs validates the arguments of AcquireLease.
func checkLeaseArgs(name, holder string, ttl time.Duration) error {
	switch {
	case name == "":
		return errors.New("state: lease: empty name")
	case holder == "":
		return fmt.Errorf("state: lease %q: empty holder", name)
	case len(holder) > maxLeaseHolder:
		return fmt.Errorf("state: lease %q: holder longer than %d bytes", name, maxLeaseHolder)
	case ttl < time.Millisecond:
		return fmt.Errorf("state: lease %q: ttl %v is under 1ms", name, ttl)
	}
	return nil
}

// checkLease validates a lease given to RenewLease or ReleaseLease.
func checkLease(l Lease) error {
	if err := checkLeaseArgs(l.Name, l.Holder, time.Millisecond); err != nil {
		return err
	}
	if l.Token == 0 {
		return fmt.Errorf("state: lease %q: no token (not a granted lease)", l.Name)
	}
	return nil
}

// leaseValue is how the Redis store keeps a grant: "<token>:<holder>".
func leaseValue(token uint64, holder string) string {
	return strconv.FormatUint(token, 10) + ":" + holder
}

// parseLeaseValue reads a leaseValue; anything else is an error (a key
// written by something else, or corrupt).
func parseLeaseValue(s string) (token uint64, holder string, err error) {
	t, h, ok := strings.Cut(s, ":")
	if !ok || t == "" || h == "" || len(h) > maxLeaseHolder {
		return 0, "", fmt.Errorf("state: corrupt lease value %q", leaseClip(s))
	}
	token, err = strconv.ParseUint(t, 10, 64)
	if err != nil || token == 0 || t[0] == '0' || t[0] == '+' {
		return 0, "", fmt.Errorf("state: corrupt lease token in %q", leaseClip(s))
	}
	return token, h, nil
}

// leaseClip shortens s for an error message.
func leaseClip(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

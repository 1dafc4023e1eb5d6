package state

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Callers branch on them with errors.Is; every other error
// from a Store means the backend failed (unreachable, timed out, corrupt data)
// and is reported upstream as 500/503.
var (
	// ErrNotFound: the user, group or item does not exist.
	ErrNotFound = errors.New("state: not found")
	// ErrExists: a create found the key already taken.
	ErrExists = errors.New("state: already exists")
	// ErrQueueFull: a Deliver with MaxQueue found every receiver it would
	// have written to at the limit, and wrote nothing.
	ErrQueueFull = errors.New("state: receiver's queue is full")
)

// User is a local LEMP account. Names are lower case (the caller folds them).
type User struct {
	Name      string `json:"name"`
	TokenHash string `json:"token_hash"` // PHC-style hash string, never the token itself
	Admin     bool   `json:"admin,omitempty"`
	Picture   string `json:"picture,omitempty"`
	Status    string `json:"status,omitempty"`
	Created   int64  `json:"created"`             // ms since the epoch
	LastSeen  int64  `json:"last_seen,omitempty"` // ms since the epoch of the last disconnect; 0 = never
}

// Following is one entry of a user's followings list (the LEMP roster).
type Following struct {
	User string `json:"u"`
	Nick string `json:"n,omitempty"`
}

// GroupKind tells a LEMP group from a broadcast list. Both live in one id
// namespace: a group and a broadcast list can not share an id.
type GroupKind uint8

const (
	KindGroup     GroupKind = 1
	KindBroadcast GroupKind = 2
)

// Group is a LEMP group or broadcast list.
type Group struct {
	ID         string           `json:"id"`
	Kind       GroupKind        `json:"kind"`
	Name       string           `json:"name,omitempty"`
	Picture    string           `json:"picture,omitempty"`
	Owner      string           `json:"owner"`
	Created    int64            `json:"created"`           // ms since the epoch
	Members    []string         `json:"members,omitempty"` // in order of joining; includes the owner for groups
	Admins     []string         `json:"admins,omitempty"`  // subset of Members (groups only)
	Mutes      map[string]int64 `json:"mutes,omitempty"`   // member -> muted until (ms)
	Terminated bool             `json:"terminated,omitempty"`
}

// Item is one entry of a user's delivery queue: a frame waiting to be
// written to that user's LEMP connection.
type Item struct {
	// Seq is assigned by the store: strictly increasing per receiver, never reused.
	Seq uint64
	// From is the original sender (a username or a JID); dm/nm are routed back to it.
	From string
	// MsgID is the message id as the receiver sees it ("" for items that are
	// not acknowledged by id, such as group events).
	MsgID string
	// Payload is the complete frame to write, e.g. {"m":{...}}.
	Payload []byte
	// AckOnWrite items are removed once written to the receiver's socket
	// (pc "0" messages, receipts, events); the others stay until Ack.
	AckOnWrite bool
}

// Target is one receiver of a Delivery.
type Target struct {
	Receiver string
	Item     Item // Seq is ignored on input
	// UnlessBlocked, when set, skips this target if Receiver's block list
	// holds it (the sender): the block check costs no round trip of its own.
	UnlessBlocked string
}

// Delivery is an atomic, de-duplicated write of one item to one or more queues.
type Delivery struct {
	// DedupeKey, when not empty, makes the delivery happen at most once per key
	// (within DedupeTTL): a second Deliver with the same key writes nothing and
	// reports a duplicate. The router uses sender + "\x00" + message id.
	// A zero DedupeTTL keeps the key forever.
	DedupeKey string
	DedupeTTL time.Duration
	// IndexTTL is how long the message index of (receiver, MsgID) resolves
	// after its last queued item left the queue (by Ack or Remove). While any
	// item of the receiver with that id is queued, the index does not expire,
	// so an item can always be acknowledged. The latest delivery of an id sets
	// the TTL its index gets. Zero: forever. Items with an empty MsgID are not
	// indexed.
	IndexTTL time.Duration
	Targets  []Target
	// History, when set, appends an entry to a group's recent-message log
	// in the same atomic write (and not at all for a duplicate).
	History *HistoryEntry
	// MaxQueue, when > 0, bounds the receivers' queues, checked in the same
	// atomic write: a target whose item has a MsgID (a message, not a
	// receipt or an event) and whose receiver already has MaxQueue items or
	// more queued (counted before this delivery) is skipped, as a blocked
	// one is. When targets were skipped for it and none is left to write,
	// the whole delivery is refused with ErrQueueFull: nothing is written, the dedupe key is not
	// taken (the same message can be sent again later) and no history entry
	// is added.
	MaxQueue int
}

// HistoryEntry is one entry of a group's recent-message log: what a Jabber
// user joining the group's MUC room is shown (XEP-0045 discussion history).
type HistoryEntry struct {
	Group   string
	Payload []byte
	Max     int // the log keeps the Max latest entries; <= 0 means 50
}

// DefaultHistoryMax is the length of a group's log when HistoryEntry.Max is not set.
const DefaultHistoryMax = 50

// Store is the gateway's whole persistent state. Implementations: the memory
// store (embedded default, single node) and the Redis store. Every method is
// safe for concurrent use, and every method that changes more than one key
// does so atomically: a crash midway leaves the old or the new state, never a
// mix. Both implementations pass statetest.Run.
type Store interface {
	// Users.
	CreateUser(ctx context.Context, u User) error // ErrExists
	GetUser(ctx context.Context, name string) (User, error)
	// UpdateUser reads the user, calls fn and writes the result, atomically
	// (retrying fn on concurrent change). An error from fn aborts and is returned.
	// fn may run more than once; a changed Name is ignored.
	UpdateUser(ctx context.Context, name string, fn func(*User) error) (User, error)
	// DeleteUser removes the user, its followings (and the mirror follower
	// entries), its block list, its delivery queue and the message index
	// entries of the items still queued (the others expire with their
	// IndexTTL). Group membership is the
	// caller's business (it must push events). ErrNotFound when there is no
	// such user. The user's seq counter is kept (seqs are never reused).
	DeleteUser(ctx context.Context, name string) error
	ListUsers(ctx context.Context) ([]User, error) // sorted by name

	// Followings: Follow adds or overwrites nicks, Unfollow removes, and both
	// keep the mirror "followers" set of each followee in step.
	Follow(ctx context.Context, user string, fs []Following) error
	Unfollow(ctx context.Context, user string, names []string) error
	// RenameFollowings updates the nick of entries that exist and ignores the rest.
	RenameFollowings(ctx context.Context, user string, fs []Following) error
	Followings(ctx context.Context, user string) ([]Following, error) // sorted by User
	Followers(ctx context.Context, user string) ([]string, error)     // sorted

	// Block list.
	Block(ctx context.Context, user, target string) error
	Unblock(ctx context.Context, user, target string) error
	BlockList(ctx context.Context, user string) ([]string, error) // sorted
	IsBlocked(ctx context.Context, user, target string) (bool, error)

	// Groups and broadcast lists. A terminated group stays as a tombstone so its
	// id is not reused; CreateGroup on it returns ErrExists.
	CreateGroup(ctx context.Context, g Group) error // ErrExists
	GetGroup(ctx context.Context, id string) (Group, error)
	// UpdateGroup is the atomic read-modify-write of one group, keeping the
	// per-user index (UserGroups) in step with Members and Owner. As with
	// UpdateUser, fn may run more than once and a changed ID is ignored.
	UpdateGroup(ctx context.Context, id string, fn func(*Group) error) (Group, error)
	UserGroups(ctx context.Context, user string) ([]string, error) // ids of live groups and lists the user is a member or the owner of, sorted
	// ListGroups returns the ids of every live (not terminated) group and
	// broadcast list, sorted.
	ListGroups(ctx context.Context) ([]string, error)
	// History returns up to n of the latest entries of group's log (see
	// Delivery.History), oldest first; n <= 0 means all.
	History(ctx context.Context, group string, n int) ([][]byte, error)

	// Delivery queues.
	// Deliver writes every target's item, or (duplicate) none of them. Each
	// item with a MsgID is added to the message index of (receiver, MsgID),
	// which records the seqs of all the receiver's queued items with that id
	// (whoever sent them) and the sender of the latest delivery; the entry
	// loses any expiry it had, as it has a queued item again.
	Deliver(ctx context.Context, d Delivery) (duplicate bool, err error)
	// Pending returns up to limit items of user's queue with Seq > after, in Seq
	// order; limit <= 0 means no limit.
	Pending(ctx context.Context, user string, after uint64, limit int) ([]Item, error)
	// Ack removes all of user's queued items with msgID (from every sender that
	// used the id) and returns the sender of the latest delivery of the id. The
	// index then resolves for the IndexTTL of that delivery, counted from the
	// ack: a second Ack of the id (or one after Remove took its items) returns
	// the same sender and removes nothing. ErrNotFound when the id is unknown or
	// its index expired.
	Ack(ctx context.Context, user, msgID string) (sender string, err error)
	// Remove deletes one item by sequence number (AckOnWrite items once
	// written) and drops it from its message index; when that leaves the index
	// without queued items, the index expires IndexTTL from now. Removing a
	// missing item is not an error.
	Remove(ctx context.Context, user string, seq uint64) error
	QueueLen(ctx context.Context, user string) (int, error)

	// Session registry: which node holds which user, for several gateway
	// nodes on one store (docs/state.md, "Session registry"). A node is one
	// run of a gateway process: StartNode records it, Heartbeat keeps the
	// record alive for ttl more, and a record not renewed in time expires by
	// itself. A session is live while the run it was registered under is the
	// live run of its node, so one Heartbeat per node keeps all of its
	// sessions; the sessions of dead runs are left out of every listing and
	// deleted lazily by the listings. Times are the caller's (ms).
	//
	// StartNode writes n as the live run of node n.ID for ttl, replacing any
	// other run of that id (whose sessions are then dead).
	StartNode(ctx context.Context, n Node, ttl time.Duration) error
	// Heartbeat renews n's record for ttl (storing n's fields, such as
	// LastBeat) if n.Run is still the live run of n.ID, and reports whether it
	// was. It never creates a record: after false the caller starts a new run
	// (StartNode with a new Run) and registers its sessions again.
	Heartbeat(ctx context.Context, n Node, ttl time.Duration) (alive bool, err error)
	// StopNode ends run of node id: its record (if run is still the live one)
	// and its sessions. Stopping a missing node or run is not an error.
	StopNode(ctx context.Context, id, run string) error
	// Nodes returns the live node records, sorted by ID.
	Nodes(ctx context.Context) ([]Node, error)
	// RegisterSession adds or overwrites sessions, all of one node run, by
	// (Run, ID). ErrNotFound when that run is not its node's live run (then
	// nothing more is written; whatever was dies with the run).
	RegisterSession(ctx context.Context, ss ...Session) error
	// RemoveSession deletes a session by (User, Node, Run, ID); a missing one
	// is not an error.
	RemoveSession(ctx context.Context, s Session) error
	// Sessions returns the live sessions, sorted by User, Started, Node, ID.
	Sessions(ctx context.Context) ([]Session, error)
	// UserSessions returns user's live sessions, sorted by Started, Node, ID.
	UserSessions(ctx context.Context, user string) ([]Session, error)

	// Cross-node wake-ups (state/wake.go; docs/operations.md, "Several
	// nodes"). A wake-up is a hint, never the only way something happens:
	// it is delivered at most once, in the order sent from one store
	// client, or not at all (no subscriber, a subscriber too slow, a
	// dropped connection). Whatever must not be lost is written to the
	// store first, and the receiver reads it again on its own.
	//
	// Wake sends ws to node (a node id), or to every node with AllNodes.
	// No subscriber is not an error. In the memory store a wake-up only
	// reaches subscribers of the same store in this process.
	Wake(ctx context.Context, node string, ws ...Wake) error
	// Wakes subscribes to the wake-ups sent to node and to AllNodes; it
	// returns once the subscription is in place, so any Wake that starts
	// after it returns may reach it. The channel is closed after stop,
	// which is idempotent and waits for the subscription to end; ctx only
	// bounds the subscribing.
	Wakes(ctx context.Context, node string) (ws <-chan Wake, stop func(), err error)
	// RunSessions returns the ids of the sessions registered under node's
	// run and not removed, sorted, whether or not the run is live: what a
	// node checks its own sessions against (a newer login on another node
	// removes the older session from the registry).
	RunSessions(ctx context.Context, node, run string) ([]string, error)

	// Leases (state/lease.go): a name held by one holder at a time for a
	// TTL, such as the XMPP component link of several gateway nodes
	// (docs/operations.md, "The component link across nodes"). Every grant
	// gets a fencing token larger than any before it for that name. Times
	// are the store's: a holder must stop acting on a lease before the TTL
	// it last renewed runs out by its own clock.
	//
	// AcquireLease grants name to holder for ttl if nobody holds it (true,
	// with the new grant); otherwise it returns the current grant and false.
	// A holder asking again for what it holds gets false too (it renews).
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (Lease, bool, error)
	// RenewLease extends l for ttl from now if l (name, holder and token)
	// is still the current grant, and reports whether it was.
	RenewLease(ctx context.Context, l Lease, ttl time.Duration) (bool, error)
	// ReleaseLease ends l if it is still the current grant; releasing a
	// lease that expired or was granted again is not an error.
	ReleaseLease(ctx context.Context, l Lease) error
	// GetLease returns name's current grant; ErrNotFound when nobody holds it.
	GetLease(ctx context.Context, name string) (Lease, error)

	// Ping checks the backend is reachable. Close releases it.
	Ping(ctx context.Context) error
	Close() error
}

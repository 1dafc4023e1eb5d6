package lempside

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/lempgw/lempgw/bridge"
	"github.com/lempgw/lempgw/state"
)

// Hub is the registry of live sessions on this node: one per user. It
// implements bridge.Local. After StartRegistry it also records them in the
// store's session registry, under this node's id and run.
type Hub struct {
	mu    sync.RWMutex
	users map[string]*conn
	info  map[*conn]sessionInfo   // of the conns in users
	reg   *registry               // nil until StartRegistry
	cl    atomic.Pointer[cluster] // nil until StartCluster (node.go)

	seqsInit sync.Once
	seqs     *lru.Cache[string, uint64] // redelivery.go
}

// sessionInfo is what the session registry records of a login.
type sessionInfo struct {
	id         string
	remote     string
	started    int64 // ms
	registered bool  // its record is in the store (for cluster.reconcile)
}

var _ bridge.Local = (*Hub)(nil)

// NewHub returns an empty Hub.
func NewHub() *Hub { return &Hub{users: make(map[string]*conn), info: make(map[*conn]sessionInfo)} }

// register makes c the session of user and returns the one it replaces.
func (h *Hub) register(user string, c *conn) *conn {
	started := c.srv.now().UnixMilli()
	cl := h.cl.Load()
	if cl != nil {
		started = cl.loginStarted(user, started)
		cl.drop(user)
	}
	info := sessionInfo{id: randomID(), remote: c.ws.RemoteAddr().String(), started: started}
	h.mu.Lock()
	old := h.users[user]
	oldInfo := h.info[old]
	delete(h.info, old)
	h.users[user] = c
	h.info[c] = info
	reg := h.reg
	h.mu.Unlock()
	if reg != nil {
		reg.added(user, c, info, old != nil, oldInfo)
	}
	return old
}

// unregister removes c if it is still user's session; it reports whether it was.
func (h *Hub) unregister(user string, c *conn) bool {
	h.mu.Lock()
	if h.users[user] != c {
		h.mu.Unlock()
		return false
	}
	info := h.info[c]
	delete(h.users, user)
	delete(h.info, c)
	reg := h.reg
	h.mu.Unlock()
	if reg != nil {
		reg.removed(user, info)
	}
	if cl := h.cl.Load(); cl != nil {
		cl.drop(user)
		if reg != nil {
			cl.queue(state.AllNodes, state.Wake{Kind: state.WakeLogout, User: user, Node: cl.self, Session: info.id})
		}
	}
	return true
}

// supersede removes user's session id from the hub (so that its end is no
// logout: the user is online on another node) and closes it with 4409;
// with removeRecord, its registry record goes too. It reports whether id
// was user's session here.
func (h *Hub) supersede(user, id string, removeRecord bool) bool {
	h.mu.Lock()
	c := h.users[user]
	info, ok := h.info[c]
	if c == nil || !ok || info.id != id {
		h.mu.Unlock()
		return false
	}
	delete(h.users, user)
	delete(h.info, c)
	reg := h.reg
	h.mu.Unlock()
	c.closeWith(closeConflict, "conflict: logged in elsewhere")
	if removeRecord && reg != nil {
		reg.removed(user, info)
	}
	if cl := h.cl.Load(); cl != nil {
		cl.drop(user)
	}
	return true
}

// supersedeOlder closes user's session here if it is older than the
// session (started, id) of a login on another node.
func (h *Hub) supersedeOlder(user string, started int64, id string) {
	h.mu.RLock()
	c := h.users[user]
	info := h.info[c]
	h.mu.RUnlock()
	if c != nil && older(info.started, info.id, started, id) {
		h.supersede(user, info.id, true)
	}
}

// markRegistered notes that c's session id is recorded in the store.
func (h *Hub) markRegistered(c *conn, id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if info, ok := h.info[c]; ok && info.id == id {
		info.registered = true
		h.info[c] = info
	}
}

func (h *Hub) get(user string) *conn {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.users[user]
}

// Online reports whether user has a live session: here, or after
// StartCluster on any node (the registry, cached for OnlineCache).
func (h *Hub) Online(user string) bool {
	if h.get(user) != nil {
		return true
	}
	if cl := h.cl.Load(); cl != nil {
		return cl.online(user)
	}
	return false
}

// Count returns the number of live sessions.
func (h *Hub) Count() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.users)
}

// Notify wakes user's delivery loop; after StartCluster, on the node
// holding user when that is another (a hint: its poll is the backstop).
func (h *Hub) Notify(user string) {
	if c := h.get(user); c != nil {
		c.wake()
	} else if cl := h.cl.Load(); cl != nil {
		cl.queue("", state.Wake{Kind: state.WakeQueue, User: user})
	}
}

// Push sends an ephemeral frame to user's session, if any; after
// StartCluster, also on another node (a hint: a lost push is not sent
// again).
func (h *Hub) Push(user string, frame []byte) {
	if c := h.get(user); c != nil {
		c.push(frame)
	} else if cl := h.cl.Load(); cl != nil {
		cl.queue("", state.Wake{Kind: state.WakePush, User: user, Frame: frame})
	}
}

// Disconnect closes user's session, if any; after StartCluster, on every
// node.
func (h *Hub) Disconnect(user, reason string) {
	if c := h.get(user); c != nil {
		c.closeWith(closeAccountGone, reason)
	}
	if cl := h.cl.Load(); cl != nil {
		cl.queue(state.AllNodes, state.Wake{Kind: state.WakeDisconnect, User: user, Text: reason})
	}
}

// ---- session registry ----

// RegistryConfig configures Hub.StartRegistry. Zero values take the
// defaults noted on each field.
type RegistryConfig struct {
	Store state.Store
	// Node describes this node: ID is required, Version, Listen and Ops are
	// recorded as they are, Started defaults to now; the hub sets Run and
	// LastBeat.
	Node      state.Node
	Heartbeat time.Duration // period of the node's heartbeat; default 10s
	TTL       time.Duration // how long a record outlives its last heartbeat; default 30s, more than Heartbeat
	Log       *slog.Logger
	Now       func() time.Time // default time.Now
}

// registryTimeout bounds one session's registration or removal.
const registryTimeout = 5 * time.Second

// registry keeps this node's record and sessions in the store. A session
// is written when its user logs in and removed when the connection ends;
// one Heartbeat per period keeps them all. When a write fails, or the
// node's record was lost (the store was unreachable, or the node stalled,
// for longer than TTL), the next heartbeat starts a new run: a new record
// with every current session, which leaves whatever the old run had wrong
// to die with it.
type registry struct {
	hub     *Hub
	st      state.Store
	log     *slog.Logger
	now     func() time.Time
	beat    time.Duration
	ttl     time.Duration
	ctx     context.Context // cancelled by StopRegistry
	cancel  context.CancelFunc
	done    chan struct{}
	stopped sync.Once

	// mu orders the store writes: one session's write holds it shared, a
	// new run (which changes node.Run and writes every session) exclusive.
	// A hub change is made before its write is, so a new run's snapshot
	// and the writes after it agree.
	mu    sync.RWMutex
	node  state.Node
	dirty atomic.Bool // a write failed: start a new run at the next beat
}

// StartRegistry records this node and its current sessions in cfg.Store,
// then keeps them there with a heartbeat until StopRegistry. It fails if
// the first write fails.
func (h *Hub) StartRegistry(ctx context.Context, cfg RegistryConfig) error {
	if cfg.Store == nil || cfg.Node.ID == "" {
		return errors.New("lemp: session registry needs a store and a node id")
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 10 * time.Second
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 30 * time.Second
	}
	if cfg.TTL <= cfg.Heartbeat {
		return errors.New("lemp: session registry: the TTL must be longer than the heartbeat period")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Node.Started == 0 {
		cfg.Node.Started = cfg.Now().UnixMilli()
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r := &registry{hub: h, st: cfg.Store, log: cfg.Log.With("node", cfg.Node.ID), now: cfg.Now,
		beat: cfg.Heartbeat, ttl: cfg.TTL, ctx: rctx, cancel: cancel, done: make(chan struct{}), node: cfg.Node}

	r.mu.Lock() // logins meanwhile wait for the first run
	h.mu.Lock()
	if h.reg != nil {
		h.mu.Unlock()
		r.mu.Unlock()
		cancel()
		return errors.New("lemp: session registry already started")
	}
	h.reg = r
	h.mu.Unlock()
	err := r.startRunLocked(ctx)
	r.mu.Unlock()
	if err != nil {
		h.mu.Lock()
		h.reg = nil
		h.mu.Unlock()
		cancel()
		return err
	}
	// A listing deletes what dead runs of any node left behind.
	if nodes, err := r.st.Nodes(ctx); err != nil {
		r.log.Warn("session registry: listing nodes", "err", err)
	} else {
		r.log.Info("session registry: node recorded", "run", r.node.Run, "nodes", len(nodes))
	}
	go r.loop()
	return nil
}

// StopRegistry stops the heartbeat and removes this node's record and
// sessions from the store. It is idempotent.
func (h *Hub) StopRegistry(ctx context.Context) error {
	h.mu.Lock()
	r := h.reg
	h.reg = nil // logins and logouts from now on are not written
	h.mu.Unlock()
	if r == nil {
		return nil
	}
	var err error
	r.stopped.Do(func() {
		r.cancel()
		<-r.done
		r.mu.Lock() // wait for the writes in flight
		defer r.mu.Unlock()
		err = r.st.StopNode(ctx, r.node.ID, r.node.Run)
	})
	return err
}

func (r *registry) loop() {
	defer close(r.done)
	t := time.NewTicker(r.beat)
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
			r.heartbeat()
		}
	}
}

// heartbeat renews the node's record, or starts a new run when a write
// failed or the record was lost.
func (r *registry) heartbeat() {
	if r.dirty.Load() {
		r.log.Warn("session registry: a write failed; recording the node's sessions again")
		r.newRun()
		return
	}
	ctx, cancel := context.WithTimeout(r.ctx, r.beat)
	defer cancel()
	r.mu.RLock()
	n := r.node
	r.mu.RUnlock()
	n.LastBeat = r.now().UnixMilli()
	alive, err := r.st.Heartbeat(ctx, n, r.ttl)
	switch {
	case err != nil:
		if r.ctx.Err() == nil {
			r.log.Warn("session registry: heartbeat", "err", err)
		}
	case !alive:
		r.log.Warn("session registry: the node's record expired or was replaced (store unreachable or node stalled for longer than node.ttl, or another gateway uses this node.id); recording the node again")
		r.newRun()
	default:
		if cl := r.hub.cl.Load(); cl != nil {
			cl.reconcile(ctx) // node.go
		}
	}
}

func (r *registry) newRun() {
	ctx, cancel := context.WithTimeout(r.ctx, r.ttl)
	defer cancel()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.startRunLocked(ctx); err != nil && r.ctx.Err() == nil {
		r.log.Warn("session registry: recording the node", "err", err)
	}
}

// startRunLocked writes the node's record under a new run and every
// current session under it. The caller holds r.mu exclusively.
func (r *registry) startRunLocked(ctx context.Context) error {
	r.dirty.Store(false)
	r.node.Run = randomID()
	r.node.LastBeat = r.now().UnixMilli()
	if err := r.st.StartNode(ctx, r.node, r.ttl); err != nil {
		r.dirty.Store(true)
		return err
	}
	h := r.hub
	h.mu.RLock()
	ss := make([]state.Session, 0, len(h.users))
	ids := make(map[*conn]string, len(h.users))
	for user, c := range h.users {
		ss = append(ss, r.session(user, h.info[c]))
		ids[c] = h.info[c].id
	}
	h.mu.RUnlock()
	if err := r.st.RegisterSession(ctx, ss...); err != nil {
		r.dirty.Store(true)
		return err
	}
	for c, id := range ids {
		h.markRegistered(c, id)
	}
	return nil
}

// session is the store's record of a login. The caller holds r.mu.
func (r *registry) session(user string, info sessionInfo) state.Session {
	return state.Session{ID: info.id, User: user, Node: r.node.ID, Run: r.node.Run, Remote: info.remote, Started: info.started}
}

// added records c's login, and drops the session it replaced. Should c
// have ended or been replaced meanwhile, its record goes again.
func (r *registry) added(user string, c *conn, info sessionInfo, replaced bool, old sessionInfo) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ctx, cancel := context.WithTimeout(r.ctx, registryTimeout)
	defer cancel()
	if replaced {
		r.check("removing a replaced session", r.st.RemoveSession(ctx, r.session(user, old)))
	}
	s := r.session(user, info)
	err := r.st.RegisterSession(ctx, s)
	r.check("registering a session", err)
	if err == nil {
		r.hub.markRegistered(c, info.id)
		if cl := r.hub.cl.Load(); cl != nil {
			cl.loggedIn(ctx, s) // node.go: the newer login wins, across nodes
		}
	}
	if r.hub.get(user) != c {
		r.check("removing a session", r.st.RemoveSession(ctx, s))
	}
}

// removed drops the record of a session that ended.
func (r *registry) removed(user string, info sessionInfo) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ctx, cancel := context.WithTimeout(r.ctx, registryTimeout)
	defer cancel()
	r.check("removing a session", r.st.RemoveSession(ctx, r.session(user, info)))
}

// check notes a failed write: the next heartbeat repairs it with a new run.
func (r *registry) check(what string, err error) {
	if err == nil {
		return
	}
	r.dirty.Store(true)
	if r.ctx.Err() == nil && !errors.Is(err, state.ErrNotFound) {
		r.log.Warn("session registry: "+what, "err", err)
	}
}

// randomID is a random 64-bit id in hex.
func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

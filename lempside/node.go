package lempside

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lempgw/lempgw/state"
)

// Several gateway nodes on one store (docs/operations.md, "Several nodes").
//
// Delivery never depends on a wake-up: every item is durable in the
// receiver's queue before anyone is woken, and with the cluster started
// every session's delivery loop re-reads its queue every Poll. A wake-up
// (Redis pub/sub, one channel per node) only makes it sooner:
//
//   - Notify, Push and Disconnect for a user with no session here go to
//     the nodes that hold the user, found in the session registry
//     (UserSessions, cached for OnlineCache), through one sender goroutine
//     that batches them per node: they never wait for the store.
//   - Online is cluster-wide: a session here, or a live session of the user
//     on another node by the registry (the same cache).
//   - A login is announced to every node (WakeLogin): a node holding an
//     older session of the user closes it with 4409, and every node drops
//     what it cached about the user. The registry is the backstop: the
//     newer login removes the older session's entry, and the older node,
//     at its next heartbeat, closes every session the registry no longer
//     has.

// ClusterConfig configures Hub.StartCluster. Zero values take the defaults
// noted on each field.
type ClusterConfig struct {
	// Poll is how often every session's delivery loop re-reads its queue
	// when nothing woke it: the longest a lost wake-up delays a delivery.
	// Default 2s; negative: never (wake-ups only).
	Poll time.Duration
	// OnlineCache is how long a registry lookup of a user (which nodes
	// hold it) is used before it is read again. Default 1s; negative: no
	// cache.
	OnlineCache time.Duration
	// NoWakes leaves this node unsubscribed from wake-ups: it still sends
	// them, and finds what others sent by polling (tests of a lost hint).
	NoWakes bool
	Log     *slog.Logger
}

// Defaults of ClusterConfig.
const (
	defaultPoll        = 2 * time.Second
	defaultOnlineCache = time.Second
	lookupTimeout      = 500 * time.Millisecond // one registry lookup for Online
	wakeQueueLen       = 8192                   // wake-ups waiting for the sender
	wakeBatch          = 512                    // wake-ups the sender takes at once
	wakeSendTimeout    = 2 * time.Second        // one batch's lookups and publishes
	lookupWorkers      = 8                      // concurrent registry lookups of one batch
	warnEvery          = 10 * time.Second       // rate of the warnings on a failing store
)

// cluster is the hub's cross-node part (StartCluster).
type cluster struct {
	hub   *Hub
	reg   *registry
	st    state.Store
	self  string // node id
	log   *slog.Logger
	poll  time.Duration
	cache time.Duration

	mu      sync.Mutex
	entries map[string]cacheEntry // user -> the other nodes holding it

	out       chan outWake
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	stopWakes func()
	stopped   sync.Once

	dropped  atomic.Uint64 // wake-ups not sent: the sender's queue was full
	lastWarn atomic.Int64  // ns, for warnings at most every warnEvery
}

// cacheEntry is a registry lookup (nodes), or a drop (a login or logout
// announced after a lookup began must not be overwritten by its result).
type cacheEntry struct {
	nodes   []string
	at      time.Time // when the lookup began, or the drop
	exp     time.Time
	dropped bool
}

// outWake is a wake-up waiting for the sender: to node, or (node "") to
// the nodes holding w.User.
type outWake struct {
	node string
	w    state.Wake
}

// StartCluster makes this hub one of several nodes on the registry's
// store: it subscribes to the wake-ups sent to this node (unless NoWakes)
// and starts the sender of this node's wake-ups. Call it after
// StartRegistry and before serving; it fails when the registry is not
// started or the subscription fails.
func (h *Hub) StartCluster(ctx context.Context, cfg ClusterConfig) error {
	h.mu.RLock()
	r := h.reg
	h.mu.RUnlock()
	if r == nil {
		return errors.New("lemp: cluster: start the session registry first")
	}
	if cfg.Poll == 0 {
		cfg.Poll = defaultPoll
	}
	if cfg.OnlineCache == 0 {
		cfg.OnlineCache = defaultOnlineCache
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	r.mu.RLock()
	self := r.node.ID
	r.mu.RUnlock()
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	cl := &cluster{hub: h, reg: r, st: r.st, self: self, log: cfg.Log.With("node", self),
		poll: max(cfg.Poll, 0), cache: max(cfg.OnlineCache, 0), entries: map[string]cacheEntry{},
		out: make(chan outWake, wakeQueueLen), ctx: cctx, cancel: cancel}
	if !cfg.NoWakes {
		// Not the caller's context: a serve cancelled while starting
		// shuts down cleanly rather than failing here (TestServeAdmin).
		// (Wakes bounds its own wait for the subscription.)
		ws, stop, err := r.st.Wakes(context.WithoutCancel(ctx), self)
		if err != nil {
			cancel()
			return err
		}
		cl.stopWakes = stop
		cl.wg.Add(1)
		go cl.receive(ws)
	}
	if !h.cl.CompareAndSwap(nil, cl) {
		cl.stop()
		return errors.New("lemp: cluster already started")
	}
	cl.wg.Add(1)
	go cl.send()
	return nil
}

// StopCluster stops the wake-ups (received and sent); sessions then poll
// no more. It is idempotent.
func (h *Hub) StopCluster() {
	if cl := h.cl.Swap(nil); cl != nil {
		cl.stop()
	}
}

func (cl *cluster) stop() {
	cl.stopped.Do(func() {
		if cl.stopWakes != nil {
			cl.stopWakes()
		}
		cl.cancel()
		cl.wg.Wait()
	})
}

// pollPeriod is how often delivery loops re-read their queue unwoken; 0: never.
func (h *Hub) pollPeriod() time.Duration {
	if cl := h.cl.Load(); cl != nil {
		return cl.poll
	}
	return 0
}

// ---- sending ----

// queue hands a wake-up to the sender without waiting: a full queue drops
// it (a hint; the receiver's poll finds what it was about).
func (cl *cluster) queue(node string, w state.Wake) {
	select {
	case cl.out <- outWake{node: node, w: w}:
	default:
		if n := cl.dropped.Add(1); cl.warnNow() {
			cl.log.Warn("cluster: wake-up queue full: wake-ups dropped (the receivers' poll finds their items)", "dropped", n)
		}
	}
}

// send is the sender goroutine: it takes what is queued, finds the nodes
// of the users it is for, and publishes one batch per node, in order.
func (cl *cluster) send() {
	defer cl.wg.Done()
	sweep := time.NewTicker(max(cl.cache, time.Second) * 10)
	defer sweep.Stop()
	batch := make([]outWake, 0, wakeBatch)
	for {
		select {
		case ow := <-cl.out:
			batch = append(batch[:0], ow)
		case <-sweep.C:
			cl.sweep()
			continue
		case <-cl.ctx.Done():
			return
		}
	more:
		for len(batch) < wakeBatch {
			select {
			case ow := <-cl.out:
				batch = append(batch, ow)
			default:
				break more
			}
		}
		cl.publish(batch)
	}
}

func (cl *cluster) publish(batch []outWake) {
	ctx, cancel := context.WithTimeout(cl.ctx, wakeSendTimeout)
	defer cancel()
	// The users whose nodes are not cached are looked up concurrently.
	var users []string
	seen := map[string]bool{}
	for _, ow := range batch {
		if ow.node == "" && !seen[ow.w.User] {
			seen[ow.w.User] = true
			if _, ok := cl.cached(ow.w.User); !ok {
				users = append(users, ow.w.User)
			}
		}
	}
	if len(users) > 0 {
		work := make(chan string)
		var wg sync.WaitGroup
		for range min(lookupWorkers, len(users)) {
			wg.Go(func() {
				for u := range work {
					if _, err := cl.lookup(ctx, u); err != nil && ctx.Err() == nil && cl.warnNow() {
						cl.log.Warn("cluster: finding the nodes of a user", "user", u, "err", err)
					}
				}
			})
		}
		for _, u := range users {
			work <- u
		}
		close(work)
		wg.Wait()
	}
	// Group per node, in order; one queue wake-up per (node, user).
	var order []string
	per := map[string][]state.Wake{}
	woken := map[[2]string]bool{}
	add := func(node string, w state.Wake) {
		if w.Kind == state.WakeQueue {
			k := [2]string{node, w.User}
			if woken[k] {
				return
			}
			woken[k] = true
		}
		if _, ok := per[node]; !ok {
			order = append(order, node)
		}
		per[node] = append(per[node], w)
	}
	for _, ow := range batch {
		if ow.node != "" {
			add(ow.node, ow.w)
			continue
		}
		nodes, _ := cl.cached(ow.w.User)
		for _, n := range nodes {
			add(n, ow.w)
		}
	}
	for _, n := range order {
		if err := cl.st.Wake(ctx, n, per[n]...); err != nil && cl.ctx.Err() == nil && cl.warnNow() {
			cl.log.Warn("cluster: sending wake-ups (the receivers' poll finds their items)", "to", n, "err", err)
		}
	}
}

// ---- which nodes hold a user ----

// cached returns the other nodes holding user, if a lookup is cached.
func (cl *cluster) cached(user string) ([]string, bool) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	e, ok := cl.entries[user]
	if !ok || e.dropped || !time.Now().Before(e.exp) {
		return nil, false
	}
	return e.nodes, true
}

// lookup reads the other nodes holding user from the registry, and caches
// them unless a drop came meanwhile.
func (cl *cluster) lookup(ctx context.Context, user string) ([]string, error) {
	began := time.Now()
	ss, err := cl.st.UserSessions(ctx, user)
	if err != nil {
		return nil, err
	}
	var nodes []string
	for _, s := range ss {
		if s.Node != cl.self && !slices.Contains(nodes, s.Node) {
			nodes = append(nodes, s.Node)
		}
	}
	if cl.cache > 0 {
		cl.mu.Lock()
		if e, ok := cl.entries[user]; !ok || !e.at.After(began) {
			cl.entries[user] = cacheEntry{nodes: nodes, at: began, exp: began.Add(cl.cache)}
		}
		cl.mu.Unlock()
	}
	return nodes, nil
}

// nodes returns the other nodes holding user: cached, or looked up.
func (cl *cluster) nodes(ctx context.Context, user string) ([]string, error) {
	if nodes, ok := cl.cached(user); ok {
		return nodes, nil
	}
	return cl.lookup(ctx, user)
}

// drop forgets what was cached about user: its sessions changed.
func (cl *cluster) drop(user string) {
	if cl.cache == 0 {
		return
	}
	now := time.Now()
	cl.mu.Lock()
	cl.entries[user] = cacheEntry{at: now, exp: now.Add(cl.cache), dropped: true}
	cl.mu.Unlock()
}

// sweep deletes the expired entries.
func (cl *cluster) sweep() {
	now := time.Now()
	cl.mu.Lock()
	defer cl.mu.Unlock()
	for u, e := range cl.entries {
		if !now.Before(e.exp) {
			delete(cl.entries, u)
		}
	}
}

// online reports whether user has a live session on another node. A
// failed lookup counts as offline (the store is failing: so do the writes
// the answer is for).
func (cl *cluster) online(user string) bool {
	ctx, cancel := context.WithTimeout(cl.ctx, lookupTimeout)
	defer cancel()
	nodes, err := cl.nodes(ctx, user)
	if err != nil {
		if cl.ctx.Err() == nil && cl.warnNow() {
			cl.log.Warn("cluster: reading the session registry; counting the user offline", "user", user, "err", err)
		}
		return false
	}
	return len(nodes) > 0
}

func (cl *cluster) warnNow() bool {
	now, last := time.Now().UnixNano(), cl.lastWarn.Load()
	return now-last >= int64(warnEvery) && cl.lastWarn.CompareAndSwap(last, now)
}

// ---- receiving ----

// receive is the goroutine that acts on the wake-ups sent to this node.
func (cl *cluster) receive(ws <-chan state.Wake) {
	defer cl.wg.Done()
	for w := range ws {
		cl.handle(w)
	}
}

func (cl *cluster) handle(w state.Wake) {
	h := cl.hub
	switch w.Kind {
	case state.WakeQueue:
		if c := h.get(w.User); c != nil {
			c.wake()
		}
	case state.WakePush:
		if c := h.get(w.User); c != nil {
			c.push(w.Frame)
		}
	case state.WakeLogin:
		cl.drop(w.User)
		if w.Node != cl.self {
			h.supersedeOlder(w.User, w.Started, w.Session)
		}
	case state.WakeLogout:
		cl.drop(w.User)
	case state.WakeDisconnect:
		if c := h.get(w.User); c != nil {
			c.closeWith(closeAccountGone, w.Text)
		}
	}
}

// ---- logins across nodes: the newer one wins ----

// older reports whether session (aStarted, aID) is older than (bStarted,
// bID): the order every node agrees on.
func older(aStarted int64, aID string, bStarted int64, bID string) bool {
	return aStarted < bStarted || aStarted == bStarted && aID < bID
}

// loginStarted is the start time of a new login of user: now, or just
// after the newest session of the user the registry holds (a node whose
// clock is behind must not lose to the session it replaces).
func (cl *cluster) loginStarted(user string, now int64) int64 {
	ctx, cancel := context.WithTimeout(cl.ctx, registryTimeout)
	defer cancel()
	ss, err := cl.st.UserSessions(ctx, user)
	if err != nil {
		return now
	}
	for _, s := range ss {
		if s.Started >= now {
			now = s.Started + 1
		}
	}
	return now
}

// loggedIn runs once a login's session s is in the registry: older
// sessions of the user on other nodes leave the registry (their nodes close
// them when told, or at their next heartbeat), every node is told; should
// a newer one exist elsewhere, this one closes instead.
func (cl *cluster) loggedIn(ctx context.Context, s state.Session) {
	ss, err := cl.st.UserSessions(ctx, s.User)
	if err != nil && cl.warnNow() {
		cl.log.Warn("cluster: reading the sessions of a user who logged in", "user", s.User, "err", err)
	}
	for _, o := range ss {
		if o.Node == s.Node {
			continue // this node's own: the hub keeps one per user
		}
		if older(o.Started, o.ID, s.Started, s.ID) {
			if err := cl.st.RemoveSession(ctx, o); err != nil && cl.warnNow() {
				cl.log.Warn("cluster: removing a session a newer login replaced", "user", s.User, "node", o.Node, "err", err)
			}
			continue
		}
		// The caller removes this session's record once it left the hub.
		cl.log.Info("cluster: a newer session of the user is on another node; closing this one", "user", s.User, "other", o.Node)
		cl.hub.supersede(s.User, s.ID, false)
		return
	}
	cl.queue(state.AllNodes, state.Wake{Kind: state.WakeLogin, User: s.User, Node: s.Node, Session: s.ID, Started: s.Started})
}

// reconcile closes the sessions of this node that the registry no longer
// holds: a newer login on another node removed them, and its wake-up was
// lost. It runs after a heartbeat found the node's run alive.
func (cl *cluster) reconcile(ctx context.Context) {
	r, h := cl.reg, cl.hub
	r.mu.RLock() // no new run meanwhile
	h.mu.RLock()
	held := make(map[string]string, len(h.users)) // session id -> user
	for user, c := range h.users {
		if info := h.info[c]; info.registered {
			held[info.id] = user
		}
	}
	h.mu.RUnlock()
	var ids []string
	var err error
	if len(held) > 0 {
		ids, err = r.st.RunSessions(ctx, r.node.ID, r.node.Run)
	}
	r.mu.RUnlock()
	if err != nil {
		if cl.warnNow() {
			cl.log.Warn("cluster: reading this node's sessions", "err", err)
		}
		return
	}
	for _, id := range ids {
		delete(held, id)
	}
	for id, user := range held {
		cl.log.Info("cluster: session replaced by a newer login on another node", "user", user)
		h.supersede(user, id, true)
	}
}

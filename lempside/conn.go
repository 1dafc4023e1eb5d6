package lempside

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lempgw/lempgw/bridge"
)

// Websocket close codes the gateway uses.
const (
	closeNormal      = websocket.CloseNormalClosure   // logout
	closeGoingAway   = websocket.CloseGoingAway       // server shutdown
	closeTooBig      = websocket.CloseMessageTooBig   // frame over lemp.max_packet_bytes
	closeSlow        = websocket.ClosePolicyViolation // outbound queue full (slow consumer)
	closeConflict    = 4409                           // same user logged in elsewhere
	closeAccountGone = 4404                           // account deleted
	closeFlood       = 4429                           // far past a rate limit (limits.go)
	deliveryBatch    = 128                            // queue items read per store call
	writeWait        = 10 * time.Second               // one frame's write deadline
	closeGrace       = time.Second                    // close frame write deadline
	retryPending     = time.Second                    // after a failed queue read
	endTimeout       = 5 * time.Second                // recording a session's end
	minPingInterval  = time.Second                    // floor for Config.PingInterval
	pongSlack        = 2                              // read deadline = slack * ping interval
)

// outFrame is one entry of a connection's outbound queue.
type outFrame struct {
	data       []byte
	seq        uint64 // queue item, for ack-on-write
	ackOnWrite bool
	closeCode  int // when not 0: send a close frame with this code and stop
	reason     string
	linger     bool // leave the socket open: the reader waits for the peer's close (limits.go)
}

// conn is one LEMP websocket connection: two goroutines, the read loop and
// the writer, which writes the frames others queue in out and, after login,
// the user's durable queue (deliver).
type conn struct {
	srv     *Server
	ws      *websocket.Conn
	log     *slog.Logger
	out     *outQueue
	wakeCh  chan struct{}
	startCh chan string // the user, once logged in: the writer starts delivering
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	// writerDone is closed when writeLoop returns.
	writerDone chan struct{}

	closeOnce sync.Once
	user      string // set once at login, read by the reader goroutine only
	admin     bool

	// Abuse limits (limits.go), used by the reader goroutine only.
	addr       string  // client address key (addrKey) for the per-address limits
	msgs, reqs *bucket // per-connection rates; nil: no limit
	flooded    bool    // closing with closeFlood
}

func newConn(s *Server, ws *websocket.Conn, log *slog.Logger, addr string) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	l := &s.cfg.Limits
	return &conn{
		srv:     s,
		ws:      ws,
		log:     log,
		out:     newOutQueue(s.cfg.WriteQueue),
		wakeCh:  make(chan struct{}, 1),
		startCh: make(chan string, 1),
		ctx:     ctx,
		cancel:  cancel,
		addr:    addr,
		msgs:    newBucket(limitMessages, l.MessageRate, l.MessageBurst, l.FloodFactor),
		reqs:    newBucket(limitRequests, l.RequestRate, l.RequestBurst, l.FloodFactor),

		writerDone: make(chan struct{}),
	}
}

// run serves the connection until it closes.
func (c *conn) run() {
	c.log.Info("connection opened")
	c.wg.Add(1)
	go c.writeLoop()
	if c.readLoop() {
		// A close frame is queued (logout, packet too large): let the
		// writer send what is before it and the close frame itself, or
		// cancelling now could drop them.
		select {
		case <-c.writerDone:
		case <-time.After(writeWait + closeGrace):
		}
	}
	c.cancel()
	c.wg.Wait()
	_ = c.ws.Close()
	if c.user != "" && c.srv.hub.unregister(c.user, c) {
		ctx, cancel := context.WithTimeout(context.Background(), endTimeout)
		c.srv.core.SessionEnded(ctx, c.user)
		cancel()
	}
	c.log.Info("connection closed")
}

// readLoop reads frames until the connection ends; it reports whether it
// queued a close frame (logout, frame too large) for the writer to send.
func (c *conn) readLoop() (closeQueued bool) {
	limit := int64(c.srv.cfg.MaxPacketBytes)
	deadline := c.srv.cfg.PingInterval * pongSlack
	_ = c.ws.SetReadDeadline(time.Now().Add(deadline))
	c.ws.SetPongHandler(func(string) error {
		return c.ws.SetReadDeadline(time.Now().Add(deadline))
	})
	for {
		mt, r, err := c.ws.NextReader()
		if err != nil {
			return false
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(deadline))
		// Read one byte past the limit: gorilla's own limit would close the
		// socket before the 413 error packet could be written.
		buf, err := io.ReadAll(io.LimitReader(r, limit+1))
		if err != nil {
			return false
		}
		if int64(len(buf)) > limit {
			c.srv.metrics.packetError(bridge.CodeTooLarge)
			c.send(errorFrame("", false, bridge.Errorf(bridge.CodeTooLarge, "packet over %d bytes", limit)))
			// Read the rest of the frame (for a bounded time) before the
			// close: closing a socket with unread input resets the
			// connection, and the client may lose the 413 and the close.
			_ = c.ws.SetReadDeadline(time.Now().Add(closeGrace))
			_, _ = io.Copy(io.Discard, r)
			c.closeAfter(closeTooBig, "packet too large")
			return true
		}
		if mt != websocket.TextMessage {
			c.send(errorFrame("", false, bridge.Errorf(bridge.CodeBadRequest, "LEMP packets are text frames")))
			continue
		}
		if !c.handle(buf) {
			if c.flooded {
				c.drainUntilClose()
			}
			return true // logout, or flooding
		}
	}
}

// handle processes one frame; false ends the connection (logout, or a
// close queued for flooding).
func (c *conn) handle(frame []byte) (keep bool) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("panic handling packet", "user", c.user, "panic", r, "stack", stack())
			c.send(errorFrame("", false, bridge.Errorf(bridge.CodeInternal, "internal error")))
			keep = true
		}
	}()
	p, derr := Decode(frame)
	if derr != nil {
		if ok, keep := c.admitBad(derr); !ok {
			return keep
		}
		c.srv.metrics.packetError(derr.Err.Code)
		c.send(errorFrame(derr.ID, derr.Message, derr.Err))
		return true
	}
	if ok, keep := c.admit(p); !ok {
		return keep
	}
	switch {
	case p.RQ != nil:
		return c.request(p.RQ)
	case p.M != nil:
		c.message(p.M)
	case p.SRQ != nil:
		c.serverRequest(p.SRQ)
	}
	return true
}

// send queues a frame from the reader goroutine, waiting for room.
func (c *conn) send(data []byte) {
	c.out.put(c.ctx, outFrame{data: data})
}

// push queues a frame from another goroutine without waiting: a full queue
// means a slow consumer, which is disconnected (what it misses that matters
// is in its durable queue).
func (c *conn) push(data []byte) {
	if c.ctx.Err() != nil {
		return
	}
	if !c.out.tryPut(outFrame{data: data}) {
		c.srv.metrics.slowConsumer()
		c.closeWith(closeSlow, "slow consumer")
	}
}

// wake tells the delivery loop to read the queue again.
func (c *conn) wake() {
	select {
	case c.wakeCh <- struct{}{}:
	default:
	}
}

// closeAfter queues a close frame behind what is already queued (reader only).
func (c *conn) closeAfter(code int, reason string) {
	c.out.put(c.ctx, outFrame{closeCode: code, reason: reason})
}

// closeWith closes the connection now, from any goroutine.
func (c *conn) closeWith(code int, reason string) {
	c.closeOnce.Do(func() {
		msg := websocket.FormatCloseMessage(code, reason)
		_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeGrace))
		c.cancel()
		_ = c.ws.Close()
	})
}

func (c *conn) writeLoop() {
	defer c.wg.Done()
	defer close(c.writerDone)
	defer c.cancel()
	ping := time.NewTicker(c.srv.cfg.PingInterval)
	defer ping.Stop()
	d := delivery{}
	for {
		select {
		case <-c.out.ready:
			if !c.flush() {
				return
			}
		case d.user = <-c.startCh:
			d.seen = c.srv.hub.lastWritten(d.user)
			if p := c.srv.hub.pollPeriod(); p > 0 {
				t := time.NewTicker(p)
				defer t.Stop()
				d.poll = t.C
			}
			if !c.deliver(&d) {
				return
			}
		case <-c.wakeCh:
			if d.user != "" && !c.deliver(&d) {
				return
			}
		case <-d.poll:
			if !c.deliver(&d) {
				return
			}
		case <-d.retry:
			if !c.deliver(&d) {
				return
			}
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
				c.closeWith(closeGoingAway, "ping failed")
				return
			}
		case <-c.ctx.Done():
			return
		}
	}
}

// flush writes every frame queued in out; false: the connection is done.
func (c *conn) flush() bool {
	for _, f := range c.out.takeAll() {
		if !c.writeFrame(f) {
			return false
		}
	}
	return true
}

// writeFrame writes one queued frame; false: the connection is done.
func (c *conn) writeFrame(f outFrame) bool {
	if f.closeCode != 0 && f.linger {
		msg := websocket.FormatCloseMessage(f.closeCode, f.reason)
		_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeGrace))
		return false
	}
	if f.closeCode != 0 {
		c.closeWith(f.closeCode, f.reason)
		return false
	}
	_ = c.ws.SetWriteDeadline(time.Now().Add(writeWait))
	if err := c.ws.WriteMessage(websocket.TextMessage, f.data); err != nil {
		c.closeWith(closeGoingAway, "write failed")
		return false
	}
	c.srv.metrics.packetOut(f.data)
	if f.ackOnWrite {
		// The frame is written: remove it even if the connection is
		// closing now, or it would be sent again at the next login.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), writeWait)
		err := c.srv.core.Written(ctx, c.user, f.seq)
		cancel()
		if err != nil && !errors.Is(err, context.Canceled) {
			// Not fatal: the item is sent again at the next login.
			c.log.Warn("removing written item", "user", c.user, "seq", f.seq, "err", err)
		}
	}
	return true
}

// delivery is the writer's state for the user's durable queue.
type delivery struct {
	user   string // "" until login
	cursor uint64 // the last item written
	// seen is the last item an earlier session of the user on this node
	// was written: items up to it are redeliveries (the metric).
	seen  uint64
	poll  <-chan time.Time
	retry <-chan time.Time
}

// deliver writes the user's queue to the socket in order, from the cursor
// on: everything pending at login, then whatever arrives (Hub.Notify wakes
// the writer; with several nodes it also re-reads the queue every poll
// period, so a lost cross-node wake-up only delays: node.go). The writer
// does it itself, between the frames others queue: one goroutine less per
// session than a delivery loop of its own. False: the connection is done.
func (c *conn) deliver(d *delivery) bool {
	d.retry = nil
	for {
		items, err := c.srv.core.Pending(c.ctx, d.user, d.cursor, deliveryBatch)
		if err != nil {
			if c.ctx.Err() != nil {
				return false
			}
			c.log.Error("reading delivery queue", "user", d.user, "err", err)
			d.retry = time.After(retryPending)
			return true
		}
		for _, it := range items {
			if !c.writeFrame(outFrame{data: it.Payload, seq: it.Seq, ackOnWrite: it.AckOnWrite}) {
				return false
			}
			if it.Seq <= d.seen {
				c.srv.metrics.redelivered.Inc()
			}
			d.cursor = it.Seq
			c.srv.hub.written(d.user, it.Seq)
		}
		if !c.flush() { // what others queued meanwhile
			return false
		}
		if len(items) < deliveryBatch {
			return true
		}
	}
}

// startDelivery hands the logged-in user's queue to the writer (reader
// goroutine, once).
func (c *conn) startDelivery() {
	c.startCh <- c.user
}

// outQueue is a connection's outbound frame queue, bounded by
// lemp.write_queue: a slice under a mutex that holds no memory while empty
// (a buffered channel of write_queue frames cost every idle connection
// about 18 KiB). One writer takes everything queued at once, so a slow
// consumer holds at most twice write_queue frames before it is closed.
type outQueue struct {
	mu     sync.Mutex
	frames []outFrame
	max    int
	ready  chan struct{} // cap 1: frames were added
	space  chan struct{} // cap 1: frames were taken
}

func newOutQueue(max int) *outQueue {
	return &outQueue{max: max, ready: make(chan struct{}, 1), space: make(chan struct{}, 1)}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// tryPut queues f unless the queue is full.
func (q *outQueue) tryPut(f outFrame) bool {
	q.mu.Lock()
	if len(q.frames) >= q.max {
		q.mu.Unlock()
		return false
	}
	q.frames = append(q.frames, f)
	q.mu.Unlock()
	signal(q.ready)
	return true
}

// put queues f, waiting for room until ctx ends (false).
func (q *outQueue) put(ctx context.Context, f outFrame) bool {
	for {
		if q.tryPut(f) {
			return true
		}
		select {
		case <-q.space:
		case <-ctx.Done():
			return false
		}
	}
}

// takeAll removes and returns everything queued, in order.
func (q *outQueue) takeAll() []outFrame {
	q.mu.Lock()
	fs := q.frames
	q.frames = nil
	q.mu.Unlock()
	if len(fs) > 0 {
		signal(q.space)
	}
	return fs
}

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

// conn is one LEMP websocket connection: the read loop runs in the HTTP
// handler's goroutine, one writer drains out, and after login one delivery
// loop feeds the user's queue into out.
type conn struct {
	srv    *Server
	ws     *websocket.Conn
	log    *slog.Logger
	out    chan outFrame
	wakeCh chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
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
		srv:    s,
		ws:     ws,
		log:    log,
		out:    make(chan outFrame, s.cfg.WriteQueue),
		wakeCh: make(chan struct{}, 1),
		ctx:    ctx,
		cancel: cancel,
		addr:   addr,
		msgs:   newBucket(limitMessages, l.MessageRate, l.MessageBurst, l.FloodFactor),
		reqs:   newBucket(limitRequests, l.RequestRate, l.RequestBurst, l.FloodFactor),

		writerDone: make(chan struct{}),
	}
}

// run serves the connection until it closes.
func (c *conn) run() {
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
	c.log.Debug("connection closed", "user", c.user)
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
	select {
	case c.out <- outFrame{data: data}:
	case <-c.ctx.Done():
	}
}

// push queues a frame from another goroutine without waiting: a full queue
// means a slow consumer, which is disconnected (what it misses that matters
// is in its durable queue).
func (c *conn) push(data []byte) {
	if c.ctx.Err() != nil {
		return
	}
	select {
	case c.out <- outFrame{data: data}:
	default:
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
	select {
	case c.out <- outFrame{closeCode: code, reason: reason}:
	case <-c.ctx.Done():
	}
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
	for {
		select {
		case f := <-c.out:
			if f.closeCode != 0 && f.linger {
				msg := websocket.FormatCloseMessage(f.closeCode, f.reason)
				_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeGrace))
				return
			}
			if f.closeCode != 0 {
				c.closeWith(f.closeCode, f.reason)
				return
			}
			_ = c.ws.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.ws.WriteMessage(websocket.TextMessage, f.data); err != nil {
				c.closeWith(closeGoingAway, "write failed")
				return
			}
			c.srv.metrics.packetOut()
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

// deliveryLoop writes the user's queue to the socket in order: everything
// pending at login, then whatever arrives (Hub.Notify wakes it; with
// several nodes it also re-reads the queue every poll period, so a lost
// cross-node wake-up only delays: node.go).
func (c *conn) deliveryLoop() {
	defer c.wg.Done()
	var cursor uint64
	var poll <-chan time.Time
	if d := c.srv.hub.pollPeriod(); d > 0 {
		t := time.NewTicker(d)
		defer t.Stop()
		poll = t.C
	}
	for {
		items, err := c.srv.core.Pending(c.ctx, c.user, cursor, deliveryBatch)
		if err != nil {
			if c.ctx.Err() != nil {
				return
			}
			c.log.Error("reading delivery queue", "user", c.user, "err", err)
			select {
			case <-time.After(retryPending):
				continue
			case <-c.ctx.Done():
				return
			}
		}
		for _, it := range items {
			select {
			case c.out <- outFrame{data: it.Payload, seq: it.Seq, ackOnWrite: it.AckOnWrite}:
				cursor = it.Seq
			case <-c.ctx.Done():
				return
			}
		}
		if len(items) == deliveryBatch {
			continue
		}
		select {
		case <-c.wakeCh:
		case <-poll:
		case <-c.ctx.Done():
			return
		}
	}
}

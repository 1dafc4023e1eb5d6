package state

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Wake-ups travel on Redis pub/sub: one channel per node, <p>wake:{<id>},
// and <p>wake:{*} for every node. A message is one batch (EncodeWakes).
// Pub/sub keeps nothing: a node that is not subscribed at that moment
// (restarting, reconnecting) never sees the message, which is why a
// wake-up is only a hint.
func (r *Redis) wakeChannel(node string) string { return r.p + "wake:{" + node + "}" }

// Health checks of the subscription: a connection that answers no PING
// within wakePingTimeout is replaced (and the channels subscribed again).
const (
	wakeHealthCheck   = 2 * time.Second
	wakePingTimeout   = 3 * time.Second
	wakeSubscribeWait = 5 * time.Second // for the subscription's confirmation
)

func (r *Redis) Wake(ctx context.Context, node string, ws ...Wake) error {
	if len(ws) == 0 {
		return nil
	}
	if err := checkWakeArgs(node, ws); err != nil {
		return err
	}
	b, err := EncodeWakes(ws)
	if err != nil {
		return err
	}
	return r.wrap("publish wake-up", r.rdb.Publish(ctx, r.wakeChannel(node), b).Err())
}

func (r *Redis) Wakes(ctx context.Context, node string) (<-chan Wake, func(), error) {
	if err := checkWakesNode(node); err != nil {
		return nil, nil, err
	}
	chans := []string{r.wakeChannel(node), r.wakeChannel(AllNodes)}
	ps := r.rdb.Subscribe(ctx, chans...)
	// Wait for both confirmations: after them, every PUBLISH reaches us.
	for confirmed := 0; confirmed < len(chans); {
		wctx, cancel := context.WithTimeout(ctx, wakeSubscribeWait)
		msg, err := ps.Receive(wctx)
		cancel()
		if err != nil {
			_ = ps.Close()
			return nil, nil, r.wrap("subscribe to wake-ups", err)
		}
		if _, ok := msg.(*redis.Subscription); ok {
			confirmed++
		}
	}
	in := ps.Channel(redis.WithChannelSize(wakeBuffer),
		redis.WithChannelHealthCheckInterval(wakeHealthCheck),
		redis.WithChannelPingTimeout(wakePingTimeout),
		redis.WithChannelSendTimeout(time.Second)) // then go-redis drops the message: a hint
	out := make(chan Wake, wakeBuffer)
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		defer close(out)
		for {
			var m *redis.Message
			var ok bool
			select {
			case m, ok = <-in:
				if !ok {
					return
				}
			case <-done:
				return
			}
			ws, err := DecodeWakes([]byte(m.Payload))
			if err != nil {
				continue // not from a gateway of this version: nothing to do with it
			}
			for _, w := range ws {
				select {
				case out <- w:
				case <-done:
					return
				}
			}
		}
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			close(done)
			_ = ps.Close()
			<-finished
		})
	}
	return out, stop, nil
}

func (r *Redis) RunSessions(ctx context.Context, node, run string) ([]string, error) {
	ids, err := r.rdb.HKeys(ctx, r.nsKey(node, run)).Result()
	if err != nil {
		return nil, r.wrap("run sessions", err)
	}
	if ids == nil {
		ids = []string{}
	}
	slices.Sort(ids)
	return ids, nil
}

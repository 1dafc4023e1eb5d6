package lempside_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Many senders at once to one receiver: nothing lost, nothing duplicated, and
// every receipt finds its way back (contract decisions 7, 8, 9).

const (
	nSenders    = 10
	perSender   = 50
	totalFrames = nSenders * perSender
	loadWait    = 30 * time.Second
)

// recvFrame reads one frame from c without failing the test (for goroutines).
func recvFrame(c *client, d time.Duration) ([]byte, error) {
	select {
	case b, ok := <-c.frames:
		if !ok {
			return nil, fmt.Errorf("connection closed")
		}
		return b, nil
	case <-time.After(d):
		return nil, fmt.Errorf("no frame within %v", d)
	}
}

func TestConcurrentSendersNoLossNoDuplicate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, g *gateway) {
		g.user(t, "sink", false)
		senders := make([]*client, nSenders)
		for i := range senders {
			name := fmt.Sprintf("sender%d", i)
			g.user(t, name, false)
			senders[i] = g.login(t, name)
		}
		sink := g.login(t, "sink")

		// The receiver acknowledges every message with dm as it arrives.
		type seen struct {
			unique map[string]int
			order  map[string][]int // per sender, the sequence numbers in arrival order
			err    error
		}
		res := seen{unique: map[string]int{}, order: map[string][]int{}}
		recvDone := make(chan struct{})
		go func() {
			defer close(recvDone)
			for n := 0; n < totalFrames; n++ {
				b, err := recvFrame(sink, loadWait)
				if err != nil {
					res.err = fmt.Errorf("after %d messages: %v", n, err)
					return
				}
				var f struct {
					M struct{ ID, S, R, C string } `json:"m"`
				}
				if err := json.Unmarshal(b, &f); err != nil || f.M.ID == "" || f.M.R != "sink" {
					res.err = fmt.Errorf("unexpected frame %s", b)
					return
				}
				res.unique[f.M.S+"/"+f.M.ID]++
				var k int
				fmt.Sscanf(f.M.C, "n%d", &k)
				res.order[f.M.S] = append(res.order[f.M.S], k)
				ack := fmt.Sprintf(`{"m":{"id":"ack-%s","dm":{"id":%q}}}`, f.M.ID, f.M.ID)
				if err := sink.ws.WriteMessage(websocket.TextMessage, []byte(ack)); err != nil {
					res.err = err
					return
				}
			}
		}()

		// Each sender sends its messages as fast as it can, then collects its
		// server receipts and delivery receipts (they interleave).
		var wg sync.WaitGroup
		errs := make(chan error, nSenders)
		for i, c := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				name := fmt.Sprintf("sender%d", i)
				for k := 0; k < perSender; k++ {
					frame := fmt.Sprintf(`{"m":{"id":"s%d-m%d","r":"sink","c":"n%d"}}`, i, k, k)
					if err := c.ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
						errs <- fmt.Errorf("%s: send: %v", name, err)
						return
					}
				}
				srs, dms := map[string]int{}, map[string]int{}
				for n := 0; n < 2*perSender; n++ {
					b, err := recvFrame(c, loadWait)
					if err != nil {
						errs <- fmt.Errorf("%s: after %d receipts: %v", name, n, err)
						return
					}
					var f struct {
						M struct {
							ID, S, R string
							SR, DM   *struct{ ID string }
						} `json:"m"`
					}
					if err := json.Unmarshal(b, &f); err != nil || f.M.R != name {
						errs <- fmt.Errorf("%s: unexpected frame %s", name, b)
						return
					}
					switch {
					case f.M.SR != nil && f.M.S == "":
						srs[f.M.SR.ID]++
					case f.M.DM != nil && f.M.S == "sink" && f.M.ID == "ack-"+f.M.DM.ID:
						dms[f.M.DM.ID]++
					default:
						errs <- fmt.Errorf("%s: unexpected frame %s", name, b)
						return
					}
				}
				for k := 0; k < perSender; k++ {
					id := fmt.Sprintf("s%d-m%d", i, k)
					if srs[id] != 1 || dms[id] != 1 {
						errs <- fmt.Errorf("%s: %s has %d server receipts and %d delivery receipts", name, id, srs[id], dms[id])
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		<-recvDone
		if res.err != nil {
			t.Fatal(res.err)
		}
		if len(res.unique) != totalFrames {
			t.Errorf("receiver got %d distinct messages, want %d", len(res.unique), totalFrames)
		}
		for id, n := range res.unique {
			if n != 1 {
				t.Errorf("%s delivered %d times", id, n)
			}
		}
		// Each sender's messages arrive in the order it sent them.
		for s, ks := range res.order {
			for j := range ks {
				if ks[j] != j {
					t.Errorf("%s: message %d arrived at position %d", s, ks[j], j)
					break
				}
			}
		}
		sink.quiet(short)
		for _, c := range senders {
			c.quiet(short)
		}

		// Everything was acknowledged: nothing comes back at the next login.
		sink.knock("k1")
		sink.ws.Close()
		sink = g.login(t, "sink")
		sink.quiet(short)
	})
}

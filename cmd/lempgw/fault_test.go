package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lempgw/lempgw/internal/testenv"
)

// Bounds of TestRedisRestartUnderLoad.
const (
	faultSenders  = 3
	faultOutage   = 3 * time.Second  // Redis stays down this long
	faultHang     = 10 * time.Second // no answer to a message for this long is a hang
	faultMaxError = 5 * time.Second  // an error answer must come sooner than this
	faultRecover  = 15 * time.Second // acknowledgements must resume this soon after Redis is back
)

// TestRedisRestartUnderLoad is issue 6's Redis fault test: the real binary
// on a real redis-server with AOF, senders sending steadily to an offline
// receiver; Redis is stopped (SIGTERM, appendfsync everysec) or killed
// (SIGKILL, appendfsync always, with state.durability = "fsync"), kept
// down, and started again on the same port and directory. While it is down
// every message gets an answer, 503, within faultMaxError; the gateway
// (not restarted) acknowledges again once Redis is back; a sender retries a
// refused message with the same id, as clients do; and the receiver then
// gets every acknowledged message exactly once by id.
func TestRedisRestartUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary against a real redis-server")
	}
	for _, tc := range []struct {
		name       string
		redisArgs  []string
		durability string
		kill       bool
	}{
		{"SIGTERM everysec", []string{"--appendonly", "yes", "--appendfsync", "everysec"}, "default", false},
		{"SIGKILL always fsync", []string{"--appendonly", "yes", "--appendfsync", "always"}, "fsync", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := testenv.StartRedis(t, tc.redisArgs...)
			prefix := testenv.UniquePrefix(t)
			storeArgs := []string{"--state.backend", "redis", "--state.redis_url", rs.URL, "--state.key_prefix", prefix}
			users := []string{"bob"}
			for i := range faultSenders {
				users = append(users, fmt.Sprintf("s%d", i))
			}
			for _, u := range users {
				var out, errb strings.Builder
				if code := run(append([]string{"user", "add", u, "--token", u + "-token"}, storeArgs...), &out, &errb); code != 0 {
					t.Fatalf("user add %s: exit %d: %s", u, code, errb.String())
				}
			}
			g := startGateway(t, "LEMPGW_STATE__BACKEND=redis", "LEMPGW_STATE__REDIS_URL="+rs.URL,
				"LEMPGW_STATE__KEY_PREFIX="+prefix, "LEMPGW_STATE__DURABILITY="+tc.durability,
				"LEMPGW_LIMITS__MESSAGE_RATE=0") // durability under load, not the rate limits
			g.waitReady(t, 200)
			url := "ws://" + g.lemp + "/lemp"

			var st faultStats
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for i := range faultSenders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					st.send(url, fmt.Sprintf("s%d", i), stop)
				}()
			}
			stopSenders := func() {
				select {
				case <-stop:
				default:
					close(stop)
				}
				wg.Wait()
			}
			defer stopSenders()

			waitFor(t, 30*time.Second, "300 acknowledged messages before the fault", func() bool { return st.ackCount() >= 300 })
			before := st.ackCount()
			down := time.Now()
			if tc.kill {
				rs.Kill()
			} else {
				rs.Stop()
			}
			if body := g.waitReady(t, 503); !strings.Contains(body, "state store") {
				t.Errorf("/readyz while Redis is down: %s", body)
			}
			time.Sleep(time.Until(down.Add(faultOutage)))
			errsDown := st.errCount()
			rs.Restart(t) // same port, directory and arguments; returns once it answers PING
			up := time.Now()
			atUp := st.ackCount()
			waitFor(t, faultRecover, "acknowledgements after Redis is back", func() bool { return st.ackCount() > atUp+50 })
			recovered := time.Since(up)
			time.Sleep(time.Second)
			stopSenders()
			if g.cmd.ProcessState != nil {
				t.Fatalf("the gateway exited: %v", g.cmd.ProcessState)
			}
			g.waitReady(t, 200)

			// Everything acknowledged is in bob's queue, once.
			bob := dialLogin(t, url, "bob")
			seen := map[string]int{}
			for {
				_ = bob.SetReadDeadline(time.Now().Add(3 * time.Second))
				_, b, err := bob.ReadMessage()
				if err != nil {
					break // quiet for 3s: the queue is drained
				}
				var f struct {
					M *struct{ ID, S string } `json:"m"`
				}
				if json.Unmarshal(b, &f) != nil || f.M == nil {
					continue // not a message (pushes)
				}
				seen[f.M.S+"/"+f.M.ID]++
			}

			st.mu.Lock()
			defer st.mu.Unlock()
			lost, dups, unacked := 0, 0, 0
			for id := range st.acked {
				if seen[id] == 0 {
					lost++
				}
			}
			for id, n := range seen {
				if n > 1 {
					dups++
				}
				if !st.acked[id] {
					unacked++
				}
			}
			t.Logf("redis %s, durability %q: %d acknowledged (%d before the fault, %d by the time Redis was back after %v down), "+
				"%d errors while down (%d in all, codes %v, slowest %v), %d reconnects, acknowledging again %v after Redis was back; "+
				"bob got %d distinct messages: lost %d, duplicated %d, delivered without acknowledgement %d",
				strings.Join(tc.redisArgs, " "), tc.durability, len(st.acked), before, atUp, up.Sub(down).Round(time.Millisecond),
				errsDown, st.errors, st.codes, st.slowestErr.Round(time.Millisecond), st.reconnects, recovered.Round(time.Millisecond),
				len(seen), lost, dups, unacked)
			if st.problem != nil {
				t.Fatal(st.problem)
			}
			if errsDown == 0 {
				t.Fatal("no client saw an error while Redis was down: the test proves nothing")
			}
			for code := range st.codes {
				if code != 503 {
					t.Errorf("messages refused with %d while Redis was restarting, want 503 only (%v)", code, st.codes)
				}
			}
			if st.slowestErr > faultMaxError {
				t.Errorf("slowest error answer took %v, want under %v", st.slowestErr, faultMaxError)
			}
			if lost > 0 || dups > 0 {
				t.Errorf("lost %d acknowledged messages, %d delivered twice", lost, dups)
			}
		})
	}
}

// faultStats are what the senders of TestRedisRestartUnderLoad saw.
type faultStats struct {
	mu         sync.Mutex
	acked      map[string]bool // sender/id
	errors     int
	codes      map[int]int
	slowestErr time.Duration
	reconnects int
	problem    error // a hang or an unexpected frame
	nAcked     atomic.Int64
	nErrors    atomic.Int64
}

func (s *faultStats) ackCount() int { return int(s.nAcked.Load()) }
func (s *faultStats) errCount() int { return int(s.nErrors.Load()) }

func (s *faultStats) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.problem == nil {
		s.problem = err
	}
}

// send sends messages to bob one at a time, waiting for each answer, until
// stop; a refused message is sent again with the same id (100 ms later),
// and a dropped connection is dialled again.
func (s *faultStats) send(url, user string, stop <-chan struct{}) {
	var ws *websocket.Conn
	defer func() {
		if ws != nil {
			ws.Close()
		}
	}()
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	for n := 0; !stopped(); n++ {
		id := fmt.Sprintf("m%d", n)
		for !stopped() {
			if ws == nil {
				var err error
				start := time.Now()
				if ws, err = loginOnce(url, user); err != nil {
					if took := time.Since(start); took > faultMaxError {
						s.fail(fmt.Errorf("%s: login failed after %v (%v): a hang", user, took, err))
						return
					}
					time.Sleep(100 * time.Millisecond)
					continue
				}
			}
			frame := fmt.Sprintf(`{"m":{"id":%q,"r":"bob","t":"t","c":"message %d from %s"}}`, id, n, user)
			start := time.Now()
			code, err := exchangeMessage(ws, id, frame)
			took := time.Since(start)
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				s.fail(fmt.Errorf("%s: no answer to message %s within %v: a hang", user, id, faultHang))
				return
			case err != nil:
				ws.Close()
				ws = nil
				s.mu.Lock()
				s.reconnects++
				s.mu.Unlock()
				continue // the connection dropped: send the same id again
			}
			s.mu.Lock()
			if code == 0 {
				if s.acked == nil {
					s.acked = map[string]bool{}
				}
				s.acked[user+"/"+id] = true
				s.nAcked.Add(1)
				s.mu.Unlock()
				break
			}
			s.errors++
			s.nErrors.Add(1)
			if s.codes == nil {
				s.codes = map[int]int{}
			}
			s.codes[code]++
			s.slowestErr = max(s.slowestErr, took)
			s.mu.Unlock()
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// exchangeMessage writes frame and reads up to the answer to message id: 0
// for a server receipt, else the error code.
func exchangeMessage(ws *websocket.Conn, id, frame string) (int, error) {
	if err := ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		return 0, err
	}
	_ = ws.SetReadDeadline(time.Now().Add(faultHang))
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			return 0, err
		}
		var f struct {
			M *struct {
				ID string           `json:"id"`
				S  string           `json:"s"`
				SR json.RawMessage  `json:"sr"`
				E  *struct{ C int } `json:"e"`
			} `json:"m"`
		}
		if json.Unmarshal(b, &f) != nil || f.M == nil || f.M.ID != id || f.M.S != "" {
			continue // a push, a message to us, or an answer to an earlier connection's message
		}
		switch {
		case f.M.E != nil:
			return f.M.E.C, nil
		case f.M.SR != nil:
			return 0, nil
		}
		return 0, fmt.Errorf("answer to %s is neither sr nor e: %s", id, b)
	}
}

// loginOnce dials and logs user in (token user-token); an error when either fails.
func loginOnce(url, user string) (*websocket.Conn, error) {
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	ws, _, err := d.Dial(url, nil)
	if err != nil {
		return nil, err
	}
	login := `{"rq":{"id":"l","a":{"i":"` + user + `","t":"` + user + `-token"}}}`
	if err := ws.WriteMessage(websocket.TextMessage, []byte(login)); err != nil {
		ws.Close()
		return nil, err
	}
	_ = ws.SetReadDeadline(time.Now().Add(faultHang))
	_, b, err := ws.ReadMessage()
	if err != nil || !strings.Contains(string(b), `"response":1`) {
		ws.Close()
		return nil, fmt.Errorf("login %s: %s %v", user, b, err)
	}
	return ws, nil
}

// waitFor polls cond every 20 ms until it holds, failing the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

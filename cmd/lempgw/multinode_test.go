package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lempgw/lempgw/internal/testenv"
)

// Several real "lempgw serve" processes on one real redis-server
// (docs/operations.md, "Several nodes"). Each client writes fewer than 500
// messages per connection: the default limits.message_burst never applies.

// defaultPoll is lempside's default poll period, which serve uses: a
// cross-node delivery much faster than it was woken, not polled.
const defaultPoll = 2 * time.Second

// gwCluster is a set of gateway nodes on one Redis key prefix.
type gwCluster struct {
	t     *testing.T
	bin   string
	file  string
	nodes map[string]*gwNode
}

type gwNode struct {
	id  string
	cmd *exec.Cmd
	url string
}

// newCluster builds the binary and writes a config on a fresh key prefix of
// the test Redis, with users; node.heartbeat 200ms, node.ttl 1.5s.
func newCluster(t *testing.T, users ...string) *gwCluster {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "lempgw")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	url, prefix := testenv.RedisURL(t), testenv.UniquePrefix(t)
	file := writeFile(t, fmt.Sprintf(`
[state]
backend = "redis"
redis_url = %q
key_prefix = %q

[auth]
argon2_memory_kib = 64
argon2_time = 1

[node]
heartbeat = "200ms"
ttl = "1500ms"
`, url, prefix))
	for _, u := range users {
		if code, _, errs := runCLI(t, nil, "user", "add", u, "--token", u+"-token", "--config", file); code != 0 {
			t.Fatalf("user add %s: exit %d: %s", u, code, errs)
		}
	}
	return &gwCluster{t: t, bin: bin, file: file, nodes: map[string]*gwNode{}}
}

// start runs node id and waits until it is healthy.
func (c *gwCluster) start(id string) *gwNode {
	c.t.Helper()
	lempAddr, opsAddr := freeAddr(c.t), freeAddr(c.t)
	cmd := exec.Command(c.bin, "serve", "--config", c.file, "--lemp.listen", lempAddr, "--http.listen", opsAddr)
	cmd.Env = append(cleanEnv(), "LEMPGW_NODE__ID="+id)
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	waitHealthy(c.t, opsAddr)
	n := &gwNode{id: id, cmd: cmd, url: "ws://" + lempAddr + "/lemp"}
	c.nodes[id] = n
	return n
}

// lempClient is a LEMP user's client that acknowledges (dm) every message
// it receives and, when its connection drops, logs in again on the next
// node of its list (the node it was on may be dead). A sender re-sends,
// with the same ids, what it sent without a server receipt.
type lempClient struct {
	t     *testing.T
	user  string
	urls  []string // where to (re)connect, in order of preference
	start time.Time

	mu      sync.Mutex
	ws      *websocket.Conn
	up      chan struct{} // closed while connected
	closing bool
	logins  []string // the URL of every login
	sent    []string // ids in order
	frames  map[string]string
	acked   map[string]bool
	got     map[string]int           // message id -> deliveries
	gotAt   map[string]time.Duration // first delivery, since start
	sentAt  map[string]time.Duration
	wrongTo int // messages addressed to someone else
	resent  int // messages sent again after a new login
}

func connect(t *testing.T, user string, start time.Time, urls ...string) *lempClient {
	t.Helper()
	c := &lempClient{t: t, user: user, urls: urls, start: start, up: make(chan struct{}),
		frames: map[string]string{}, acked: map[string]bool{}, got: map[string]int{},
		gotAt: map[string]time.Duration{}, sentAt: map[string]time.Duration{}}
	if err := c.login(); err != nil {
		t.Fatalf("%s: %v", user, err)
	}
	t.Cleanup(c.close)
	return c
}

// login connects to the first node of urls that accepts the login.
func (c *lempClient) login() error {
	var last error
	for _, u := range c.urls {
		ws, _, err := websocket.DefaultDialer.Dial(u, nil)
		if err != nil {
			last = err
			continue
		}
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		err = ws.WriteMessage(websocket.TextMessage, []byte(`{"rq":{"id":"l","a":{"i":"`+c.user+`","t":"`+c.user+`-token"}}}`))
		var b []byte
		if err == nil {
			_, b, err = ws.ReadMessage()
		}
		if err != nil || !strings.Contains(string(b), `"response":1`) {
			last = fmt.Errorf("login on %s: %s %v", u, b, err)
			ws.Close()
			continue
		}
		_ = ws.SetReadDeadline(time.Time{})
		c.mu.Lock()
		c.ws = ws
		c.logins = append(c.logins, u)
		close(c.up)
		// Re-send what has no server receipt: the store de-duplicates by id.
		for _, id := range c.sent {
			if !c.acked[id] {
				_ = ws.WriteMessage(websocket.TextMessage, []byte(c.frames[id]))
				c.resent++
			}
		}
		c.mu.Unlock()
		go c.read(ws)
		return nil
	}
	return fmt.Errorf("no node accepted the login: %v", last)
}

func (c *lempClient) read(ws *websocket.Conn) {
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			break
		}
		var f struct {
			M *struct {
				ID, S, R, C string
				SR          *struct{ ID string } `json:"sr"`
			} `json:"m"`
		}
		if json.Unmarshal(b, &f) != nil || f.M == nil {
			continue
		}
		c.mu.Lock()
		switch {
		case f.M.SR != nil:
			c.acked[f.M.SR.ID] = true
		case f.M.C != "":
			if f.M.R != c.user {
				c.wrongTo++
			}
			if c.got[f.M.ID] == 0 {
				c.gotAt[f.M.ID] = time.Since(c.start)
			}
			c.got[f.M.ID]++
			_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"m":{"id":"d-`+f.M.ID+`","dm":{"id":"`+f.M.ID+`"}}}`))
		}
		c.mu.Unlock()
	}
	ws.Close()
	c.mu.Lock()
	if c.ws != ws || c.closing {
		c.mu.Unlock()
		return
	}
	c.up = make(chan struct{})
	c.mu.Unlock()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := c.login()
		if err == nil {
			return
		}
		c.mu.Lock()
		closing := c.closing
		c.mu.Unlock()
		if closing {
			return
		}
		if time.Now().After(deadline) {
			c.t.Errorf("%s: could not log in again: %v", c.user, err)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// send sends a message to r with id, waiting for a connection if there is none.
func (c *lempClient) send(id, r string) {
	frame := `{"m":{"id":"` + id + `","r":"` + r + `","t":"t","c":"from ` + c.user + `"}}`
	c.mu.Lock()
	c.sent = append(c.sent, id)
	c.frames[id] = frame
	c.sentAt[id] = time.Since(c.start)
	ws, up := c.ws, c.up
	c.mu.Unlock()
	select {
	case <-up:
	case <-time.After(30 * time.Second):
		c.t.Errorf("%s: no connection for 30s", c.user)
		return
	}
	c.mu.Lock()
	if c.ws == ws {
		_ = ws.WriteMessage(websocket.TextMessage, []byte(frame)) // a failure: re-sent after the next login
	}
	c.mu.Unlock()
}

// close closes the connection for good (an offline user).
func (c *lempClient) close() {
	c.mu.Lock()
	c.closing = true
	ws := c.ws
	c.mu.Unlock()
	if ws != nil {
		ws.Close()
	}
}

func (c *lempClient) ackedIDs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []string
	for id := range c.acked {
		ids = append(ids, id)
	}
	return ids
}

func (c *lempClient) has(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.got[id] > 0
}

// waitAll waits until every client of receivers has every id in want
// (receiver -> ids), for up to d.
func waitAll(t *testing.T, want map[*lempClient][]string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		missing := 0
		for r, ids := range want {
			for _, id := range ids {
				if !r.has(id) {
					missing++
				}
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Logf("%d messages still missing after %v", missing, d)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestMultiNodeMessaging runs two and then three nodes on one Redis. Users
// on different nodes message each other live: every delivery is measured,
// and must be far below the poll period (it was woken). Then one user is
// offline while the others write to it, and logs in on another node.
func TestMultiNodeMessaging(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("%dnodes", n), func(t *testing.T) {
			var users []string
			for i := range 2 * n {
				users = append(users, fmt.Sprintf("u%d", i))
			}
			c := newCluster(t, users...)
			var urls []string
			for i := range n {
				urls = append(urls, c.start(fmt.Sprintf("gw-%d", i)).url)
			}
			start := time.Now()
			clients := make([]*lempClient, len(users))
			for i, u := range users {
				clients[i] = connect(t, u, start, urls[i%n]) // ui on node i mod n
			}
			// Live: each user writes to every user on another node, one at a time.
			const rounds = 10
			want := map[*lempClient][]string{}
			sent := 0
			for round := range rounds {
				for i, s := range clients {
					for j, r := range clients {
						if i%n == j%n {
							continue
						}
						id := fmt.Sprintf("%s-%s-%d", s.user, r.user, round)
						s.send(id, r.user)
						want[r] = append(want[r], id)
						sent++
					}
				}
				time.Sleep(20 * time.Millisecond)
			}
			waitAll(t, want, 15*time.Second)
			var lat []time.Duration
			missing := 0
			for r, ids := range want {
				for _, id := range ids {
					parts := strings.SplitN(id, "-", 2)
					s := clients[slices.Index(users, parts[0])]
					s.mu.Lock()
					at := s.sentAt[id]
					s.mu.Unlock()
					r.mu.Lock()
					got, ok := r.gotAt[id]
					r.mu.Unlock()
					if !ok {
						missing++
						continue
					}
					lat = append(lat, got-at)
				}
			}
			slices.Sort(lat)
			if len(lat) == 0 {
				t.Fatalf("no message delivered of %d", sent)
			}
			p50, p99, worst := lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
			t.Logf("%d nodes: %d live cross-node messages, %d delivered, %d missing; latency p50 %v, p99 %v, max %v (poll period %v)",
				n, sent, len(lat), missing, p50.Round(time.Microsecond), p99.Round(time.Microsecond), worst.Round(time.Microsecond), defaultPoll)
			if missing > 0 {
				t.Fatalf("%d live messages not delivered", missing)
			}
			// Polled instead of woken, they would spread over the whole
			// poll period (p50 near 1s).
			if p50 > defaultPoll/10 || p99 > defaultPoll/4 {
				t.Fatalf("cross-node latency p50 %v, p99 %v: not far below the poll period %v (not woken?)", p50, p99, defaultPoll)
			}

			// Offline: u0 leaves; the others write to it; it logs in on another node.
			off := clients[0]
			off.close()
			time.Sleep(100 * time.Millisecond)
			var offIDs []string
			for _, s := range clients[1:] {
				id := fmt.Sprintf("%s-off", s.user)
				s.send(id, off.user)
				offIDs = append(offIDs, id)
			}
			deadline := time.Now().Add(10 * time.Second)
			for _, s := range clients[1:] {
				for !slices.Contains(s.ackedIDs(), s.user+"-off") {
					if time.Now().After(deadline) {
						t.Fatalf("%s: no server receipt for its message to offline %s", s.user, off.user)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
			back := connect(t, off.user, start, urls[1]) // u0 was on gw-0
			waitAll(t, map[*lempClient][]string{back: offIDs}, 10*time.Second)
			for _, id := range offIDs {
				if !back.has(id) {
					t.Fatalf("%s did not get %s at its login on another node", off.user, id)
				}
			}
			t.Logf("%d nodes: %s got the %d messages sent while it was offline at its login on another node", n, off.user, len(offIDs))
		})
	}
}

// TestMultiNodeSIGKILLTakeover runs three nodes on one Redis. Senders on
// all three keep writing to receivers on all three; one node is SIGKILLed
// midway, and its users (receivers and a sender) log in again on the
// others. Every message that got a server receipt is delivered, exactly
// once by id after de-duplication, and nothing else is.
func TestMultiNodeSIGKILLTakeover(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	users := []string{"s1", "s2", "s3", "r1", "r2", "r3"}
	c := newCluster(t, users...)
	n1, n2, n3 := c.start("gw-1"), c.start("gw-2"), c.start("gw-3")
	start := time.Now()
	// gw-3 holds r1, r2 and s3; its users fall back to gw-1 and gw-2.
	s1 := connect(t, "s1", start, n1.url)
	s2 := connect(t, "s2", start, n2.url)
	s3 := connect(t, "s3", start, n3.url, n1.url)
	r1 := connect(t, "r1", start, n3.url, n1.url)
	r2 := connect(t, "r2", start, n3.url, n2.url)
	r3 := connect(t, "r3", start, n1.url)
	senders, receivers := []*lempClient{s1, s2, s3}, []*lempClient{r1, r2, r3}

	const perSender = 300 // under limits.message_burst per connection
	var wg sync.WaitGroup
	for _, s := range senders {
		wg.Go(func() {
			for i := range perSender {
				r := receivers[i%len(receivers)]
				s.send(fmt.Sprintf("%s-%d", s.user, i), r.user)
				time.Sleep(4 * time.Millisecond)
			}
		})
	}
	// SIGKILL gw-3 once a third is acknowledged.
	deadline := time.Now().Add(30 * time.Second)
	for len(s1.ackedIDs()) < perSender/3 {
		if time.Now().After(deadline) {
			t.Fatal("senders too slow: no third acknowledged in 30s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := n3.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = n3.cmd.Process.Wait()
	killedAt := time.Since(start)
	wg.Wait()
	deadline = time.Now().Add(30 * time.Second)

	// Every sender's messages all get a server receipt in the end (re-sent
	// after a reconnection when needed).
	for _, s := range senders {
		for len(s.ackedIDs()) < perSender {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d of %d messages acknowledged", s.user, len(s.ackedIDs()), perSender)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	want := map[*lempClient][]string{}
	acked := 0
	for _, s := range senders {
		for _, id := range s.ackedIDs() {
			var i int
			fmt.Sscanf(id[strings.IndexByte(id, '-')+1:], "%d", &i)
			r := receivers[i%len(receivers)]
			want[r] = append(want[r], id)
			acked++
		}
	}
	waitAll(t, want, 20*time.Second)

	lost, raw, unique, dups, wrong, unknown := 0, 0, 0, 0, 0, 0
	for _, r := range receivers {
		r.mu.Lock()
		for _, id := range want[r] {
			if r.got[id] == 0 {
				lost++
			}
		}
		for id, k := range r.got {
			raw += k
			unique++
			if k > 1 {
				dups += k - 1
			}
			if !slices.Contains(want[r], id) {
				unknown++
			}
		}
		wrong += r.wrongTo
		r.mu.Unlock()
	}
	var relogins []string
	resent := 0
	for _, cl := range append(senders, receivers...) {
		cl.mu.Lock()
		resent += cl.resent
		if len(cl.logins) > 1 {
			relogins = append(relogins, fmt.Sprintf("%s->%s", cl.user, strings.TrimPrefix(cl.logins[len(cl.logins)-1], "ws://")))
		}
		cl.mu.Unlock()
	}
	t.Logf("3 nodes, gw-3 SIGKILLed at %v: sent %d (%d sent again after a new login), acknowledged %d; delivered %d times, %d unique ids (%d redeliveries removed by de-duplication), lost %d, unexpected %d, misaddressed %d; logged in again: %v",
		killedAt.Round(time.Millisecond), len(senders)*perSender, resent, acked, raw, unique, dups, lost, unknown, wrong, relogins)
	if lost > 0 || unknown > 0 || wrong > 0 {
		t.Fatalf("lost %d acknowledged messages, %d unexpected, %d misaddressed", lost, unknown, wrong)
	}
	if len(relogins) != 3 {
		t.Fatalf("gw-3's three users did not all log in again elsewhere: %v", relogins)
	}
}

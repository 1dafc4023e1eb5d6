package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lempgw/lempgw/internal/testenv"
)

// TestSIGKILLLosesNoAcknowledgedMessage runs the real binary on a real
// redis-server, has alice send messages to offline bob as fast as it can,
// SIGKILLs the gateway midway, starts it again and checks that bob receives
// every message alice got a server receipt for, each exactly once.
func TestSIGKILLLosesNoAcknowledgedMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "lempgw")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	redisURL, prefix := testenv.RedisURL(t), testenv.UniquePrefix(t)
	storeArgs := []string{"--state.backend", "redis", "--state.redis_url", redisURL, "--state.key_prefix", prefix}
	for _, u := range []string{"alice", "bob"} {
		var out, errb strings.Builder
		if code := run(append([]string{"user", "add", u, "--token", u + "-token"}, storeArgs...), &out, &errb); code != 0 {
			t.Fatalf("user add %s: exit %d: %s", u, code, errb.String())
		}
	}

	lempAddr, opsAddr := freeAddr(t), freeAddr(t)
	start := func() *exec.Cmd {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"serve", "--lemp.listen", lempAddr, "--http.listen", opsAddr}, storeArgs...)...)
		// Durability under load, not the rate limits: the sender goes flat out.
		cmd.Env = append(cleanEnv(), "LEMPGW_LIMITS__MESSAGE_RATE=0")
		cmd.Stderr = io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
		waitHealthy(t, opsAddr)
		return cmd
	}
	url := "ws://" + lempAddr + "/lemp"

	gw := start()
	alice := dialLogin(t, url, "alice")
	const total = 2000
	var mu sync.Mutex
	acked := map[string]bool{}
	enough := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			_, b, err := alice.ReadMessage()
			if err != nil {
				return
			}
			var f struct {
				M struct {
					SR *struct{ ID string } `json:"sr"`
				} `json:"m"`
			}
			if json.Unmarshal(b, &f) == nil && f.M.SR != nil {
				mu.Lock()
				acked[f.M.SR.ID] = true
				if len(acked) == total/4 {
					close(enough)
				}
				mu.Unlock()
			}
		}
	}()
	go func() {
		for i := range total {
			frame := fmt.Sprintf(`{"m":{"id":"k%d","r":"bob","t":"t","c":"message %d"}}`, i, i)
			if alice.WriteMessage(websocket.TextMessage, []byte(frame)) != nil {
				return
			}
		}
	}()
	select {
	case <-enough:
	case <-time.After(30 * time.Second):
		t.Fatal("no server receipts")
	}
	if err := gw.Process.Kill(); err != nil { // SIGKILL, mid-stream
		t.Fatal(err)
	}
	_, _ = gw.Process.Wait()
	<-readerDone
	mu.Lock()
	nAcked := len(acked)
	mu.Unlock()
	if nAcked == total {
		t.Fatalf("every message was acknowledged before the kill: the test proves nothing")
	}

	start()
	bob := dialLogin(t, url, "bob")
	seen := map[string]int{}
	for {
		_ = bob.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, b, err := bob.ReadMessage()
		if err != nil {
			break // quiet for 2s: the queue is drained
		}
		var f struct {
			M struct{ ID, S string } `json:"m"`
		}
		if json.Unmarshal(b, &f) != nil || f.M.S != "alice" {
			t.Fatalf("unexpected frame %s", b)
		}
		seen[f.M.ID]++
	}
	lost, dups := 0, 0
	for id := range acked {
		if seen[id] == 0 {
			lost++
		}
	}
	for _, n := range seen {
		if n > 1 {
			dups++
		}
	}
	t.Logf("sent up to %d, acknowledged %d before SIGKILL, delivered %d after restart, lost %d, duplicated %d",
		total, nAcked, len(seen), lost, dups)
	if lost > 0 || dups > 0 {
		t.Fatalf("lost %d acknowledged messages, %d delivered twice", lost, dups)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LEMPGW_") {
			env = append(env, kv)
		}
	}
	return env
}

func waitHealthy(t *testing.T, opsAddr string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + opsAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("gateway not healthy at %s", opsAddr)
}

func dialLogin(t *testing.T, url, user string) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	login := `{"rq":{"id":"l","a":{"i":"` + user + `","t":"` + user + `-token"}}}`
	if err := ws.WriteMessage(websocket.TextMessage, []byte(login)); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := ws.ReadMessage()
	if err != nil || !strings.Contains(string(b), `"response":1`) {
		t.Fatalf("login %s: %s %v", user, b, err)
	}
	_ = ws.SetReadDeadline(time.Time{})
	return ws
}

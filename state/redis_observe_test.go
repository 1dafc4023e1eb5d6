package state_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/lempgw/lempgw/internal/testenv"
	"github.com/lempgw/lempgw/state"
)

// TestRedisObserve: every command is timed, with its name (the latency
// histogram of /metrics).
func TestRedisObserve(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	r, err := state.NewRedis(t.Context(), state.RedisConfig{URL: testenv.RedisURL(t), KeyPrefix: testenv.UniquePrefix(t),
		Observe: func(cmd string, took time.Duration, err error) {
			mu.Lock()
			defer mu.Unlock()
			if took <= 0 {
				t.Errorf("%s took %v", cmd, took)
			}
			seen[cmd]++
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.GetUser(t.Context(), "nobody"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("GetUser: %v", err)
	}
	if _, err := r.Deliver(t.Context(), state.Delivery{Targets: []state.Target{{Receiver: "bob", Item: state.Item{Payload: []byte("x")}}}}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if seen["ping"] == 0 || seen["get"] == 0 || seen["evalsha"]+seen["eval"] == 0 {
		t.Fatalf("commands seen: %v", seen)
	}
}

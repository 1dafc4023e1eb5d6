package state_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lempgw/lempgw/internal/testenv"
	"github.com/lempgw/lempgw/state"
)

// TestRedisWakesSkipGarbage: a message on a node's channel that is not a
// batch of wake-ups is dropped, and the subscription goes on.
func TestRedisWakesSkipGarbage(t *testing.T) {
	t.Parallel()
	s, url, prefix := newRedisPrefix(t)
	ctx := context.Background()
	ch, stop, err := s.Wakes(ctx, "gw-a")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opt)
	defer rc.Close()
	for _, junk := range []string{"", "hello", `{"k":1,"u":"bob"}`, `[{"k":2,"u":"bob"}]`, `[{"k":1}]`} {
		if err := rc.Publish(ctx, prefix+"wake:{gw-a}", junk).Err(); err != nil {
			t.Fatal(err)
		}
	}
	want := state.Wake{Kind: state.WakeQueue, User: "bob"}
	if err := s.Wake(ctx, "gw-a", want); err != nil {
		t.Fatal(err)
	}
	select {
	case w := <-ch:
		if w.Kind != want.Kind || w.User != want.User {
			t.Fatalf("first wake-up after the garbage: %+v", w)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no wake-up after the garbage")
	}
}

// TestRedisWakesAfterRestart: when Redis restarts, the subscription comes
// back by itself (go-redis reconnects and subscribes again, its health
// check finds a dead connection); what was published meanwhile is lost,
// which the receivers' poll covers.
func TestRedisWakesAfterRestart(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedis(t)
	ctx := context.Background()
	s, err := state.NewRedis(ctx, state.RedisConfig{URL: srv.URL, KeyPrefix: testenv.UniquePrefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ch, stop, err := s.Wakes(ctx, "gw-a")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	srv.Restart(t)
	restarted := time.Now()
	// Publish until one arrives: the subscription is back.
	for i := 0; ; i++ {
		if time.Since(restarted) > 20*time.Second {
			t.Fatal("no wake-up within 20s of the restart")
		}
		_ = s.Wake(ctx, "gw-a", state.Wake{Kind: state.WakeQueue, User: "bob"})
		select {
		case _, ok := <-ch:
			if !ok {
				t.Fatal("wake-ups closed by the restart")
			}
			t.Logf("wake-ups back %v after the restart (%d published)", time.Since(restarted).Round(time.Millisecond), i+1)
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

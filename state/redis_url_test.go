package state_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/lempgw/lempgw/state"
)

func TestCheckRedisURL(t *testing.T) {
	for _, tc := range []struct {
		url     string
		wantErr string // "" = accepted
	}{
		{"", ""}, // the default
		{"redis://127.0.0.1:6379/0", ""},
		{"rediss://u:p@example.net:6380/2", ""},
		{"redis+cluster://10.0.0.5:7000", ""},
		{"redis+cluster://u:p@10.0.0.5:7000,10.0.0.6:7000,[::1]:7002/", ""},
		{"rediss+cluster://10.0.0.5:7000/0?dial_timeout=3s", ""},
		{"http://127.0.0.1/", "scheme"},
		{"redis+cluster://10.0.0.5:7000/3", "database 0"},
		{"redis+cluster://10.0.0.5:7000,,10.0.0.6:7000", "host:port"},
		{"redis+cluster://", "host:port"},
		{"redis+cluster://h:1?dial_timeout=soon", "dial_timeout"},
	} {
		err := state.CheckRedisURL(tc.url)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("CheckRedisURL(%q): %v", tc.url, err)
		case tc.wantErr != "" && err == nil:
			t.Errorf("CheckRedisURL(%q) accepted it", tc.url)
		case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
			t.Errorf("CheckRedisURL(%q): %v, want an error about %q", tc.url, err, tc.wantErr)
		}
	}
}

// FuzzCheckRedisURL: any string gets an answer, never a panic.
func FuzzCheckRedisURL(f *testing.F) {
	for _, s := range []string{"redis://127.0.0.1:6379/0", "redis+cluster://u:p@a:1,b:2/?addr=c:3", "rediss+cluster://@/", "redis+cluster://,", "redis+cluster://a@b@c:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_ = state.CheckRedisURL(s)
	})
}

// TestNewRedisClusterUnreachable: a cluster URL whose seeds do not answer
// fails NewRedis with an error naming them.
func TestNewRedisClusterUnreachable(t *testing.T) {
	var addrs []string
	for range 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, l.Addr().String())
		l.Close() // nothing listens there now
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := state.NewRedis(ctx, state.RedisConfig{URL: "redis+cluster://" + strings.Join(addrs, ",")})
	if err == nil {
		s.Close()
		t.Fatalf("NewRedis on %v succeeded", addrs)
	}
	for _, a := range addrs {
		if !strings.Contains(err.Error(), a) {
			t.Errorf("error %q does not name the seed %s", err, a)
		}
	}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lempgw/lempgw/internal/testenv"
)

func TestDurabilityConfig(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want string // error part; "" = accepted
	}{
		{nil, ""},
		{[]string{"LEMPGW_STATE__DURABILITY=FSync", "LEMPGW_STATE__BACKEND=redis"}, ""},
		{[]string{"LEMPGW_STATE__DURABILITY=fsync"}, `invalid value "fsync" for state.durability: needs state.backend = "redis"`},
		{[]string{"LEMPGW_STATE__DURABILITY=sometimes", "LEMPGW_STATE__BACKEND=redis"}, `invalid value "sometimes" for state.durability: want "default" or "fsync"`},
	} {
		cfg, err := LoadConfig("", tc.env, nil)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v", tc.env, err)
		case tc.want == "" && cfg.State.Durability != durabilityDefault && cfg.State.Durability != durabilityFsync:
			t.Errorf("%v: durability %q", tc.env, cfg.State.Durability)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: error %v, want %q", tc.env, err, tc.want)
		}
	}
}

// TestDurabilityFsyncRefusesWeakRedis: with state.durability = "fsync",
// "lempgw serve" refuses to start on a Redis that does not fsync every
// write before answering (one line naming the setting and the address);
// on one that does, it acknowledges messages, and when the setting is
// weakened at run time (CONFIG SET) it refuses them with 503 and is not
// ready until the setting is back.
func TestDurabilityFsyncRefusesWeakRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary against real redis-servers")
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "has appendonly no, want yes"},
		{[]string{"--appendonly", "yes", "--appendfsync", "everysec"}, "has appendfsync everysec, want always"},
		{[]string{"--appendonly", "yes", "--appendfsync", "always", "--no-appendfsync-on-rewrite", "yes"}, "has no-appendfsync-on-rewrite yes, want no"},
	} {
		rs := testenv.StartRedis(t, tc.args...)
		cmd := exec.Command(lempgwBinary(t), "serve", "--state.backend", "redis", "--state.redis_url", rs.URL,
			"--lemp.listen", freeAddr(t), "--http.listen", freeAddr(t))
		cmd.Env = append(cleanEnv(), "LEMPGW_STATE__DURABILITY=fsync")
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitFailure {
			t.Fatalf("redis %v: serve exited with %v, want %d: %s", tc.args, err, exitFailure, out)
		}
		line := strings.TrimSpace(string(out))
		if strings.Contains(line, "\n") || !strings.Contains(line, tc.want) || !strings.Contains(line, rs.Addr) || !strings.Contains(line, "state.durability") {
			t.Fatalf("redis %v: output %q, want one line with %q and %s", tc.args, line, tc.want, rs.Addr)
		}
		t.Logf("refused: %s", line)
	}

	rs := testenv.StartRedis(t, "--appendonly", "yes", "--appendfsync", "always")
	g := startGateway(t, "LEMPGW_STATE__BACKEND=redis", "LEMPGW_STATE__REDIS_URL="+rs.URL,
		"LEMPGW_STATE__KEY_PREFIX="+testenv.UniquePrefix(t), "LEMPGW_STATE__DURABILITY=fsync",
		"LEMPGW_AUTH__ADMIN_IDENTITY=admin", "LEMPGW_AUTH__ADMIN_TOKEN=admin-token")
	g.waitReady(t, 200)
	g.waitLog(t, "durability: redis fsyncs every write before answering")
	ws := dialLogin(t, "ws://"+g.lemp+"/lemp", "admin")
	n := 0
	send := func() int {
		t.Helper()
		n++
		id := fmt.Sprintf("d%d", n)
		code, err := exchangeMessage(ws, id, `{"m":{"id":"`+id+`","r":"admin","t":"t","c":"durable?"}}`)
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	if code := send(); code != 0 {
		t.Fatalf("message refused with %d on a Redis that fsyncs", code)
	}

	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	defer rdb.Close()
	ctx := context.Background()
	if err := rdb.ConfigSet(ctx, "appendfsync", "everysec").Err(); err != nil {
		t.Fatal(err)
	}
	weakened := time.Now()
	waitFor(t, durabilityCheckPeriod+5*time.Second, "a 503 after appendfsync everysec", func() bool { return send() == 503 })
	t.Logf("refusing messages %v after CONFIG SET appendfsync everysec", time.Since(weakened).Round(time.Millisecond))
	if body := g.waitReady(t, 503); !strings.Contains(body, "appendfsync everysec") {
		t.Fatalf("/readyz %s", body)
	}
	g.waitLog(t, "durability: messages refused (503)", "appendfsync everysec")

	if err := rdb.ConfigSet(ctx, "appendfsync", "always").Err(); err != nil {
		t.Fatal(err)
	}
	restored := time.Now()
	waitFor(t, 5*time.Second, "acknowledgements after appendfsync always", func() bool { return send() == 0 })
	t.Logf("acknowledging again %v after CONFIG SET appendfsync always", time.Since(restored).Round(time.Millisecond))
	g.waitReady(t, 200)
}

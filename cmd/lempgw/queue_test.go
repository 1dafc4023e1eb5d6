package main

import (
	"context"
	"strings"
	"testing"

	"github.com/lempgw/lempgw/bridge"
)

func TestQueueCommand(t *testing.T) {
	t.Parallel()
	file, url, prefix := redisConfig(t)
	st := openTestRedis(t, url, prefix)
	ctx := context.Background()
	core, err := bridge.New(bridge.Config{Store: st, Local: bridge.NoSessions{}, Hash: bridge.HashParams{MemoryKiB: 64, Time: 1, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob"} {
		if e := core.CreateUser(ctx, u, "x", false); e != nil {
			t.Fatal(e)
		}
	}
	for _, m := range []*bridge.Message{
		{ID: "m1", R: "bob", C: "one"},
		{ID: "m2", R: "bob", C: "two", PC: bridge.FlagOff},
	} {
		if e := core.Send(ctx, "alice", m); e != nil {
			t.Fatal(e)
		}
	}

	code, out, errs := runCLI(t, nil, "queue", "Bob", "--config", file)
	if code != 0 {
		t.Fatalf("queue: exit %d, stderr %q", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 ||
		!strings.HasPrefix(lines[0], "1\talice\tm1\tdm\t{\"m\":{\"id\":\"m1\"") ||
		!strings.HasPrefix(lines[1], "2\talice\tm2\twrite\t") ||
		lines[2] != "2 queued for bob" {
		t.Fatalf("queue printed:\n%s", out)
	}
	if code, out, _ = runCLI(t, nil, "queue", "bob", "--limit", "1", "--config", file); code != 0 || strings.Count(out, "\n") != 2 {
		t.Errorf("queue --limit 1: exit %d:\n%s", code, out)
	}
	if code, out, _ = runCLI(t, nil, "queue", "alice", "--config", file); code != 0 || out != "0 queued for alice\n" {
		t.Errorf("empty queue: exit %d: %q", code, out)
	}
	if code, _, errs = runCLI(t, nil, "queue", "a/b", "--config", file); code != 2 || !strings.Contains(errs, "invalid user name") {
		t.Errorf("bad name: exit %d, stderr %q", code, errs)
	}
	if code, _, _ = runCLI(t, nil, "queue", "bob"); code != 2 {
		t.Errorf("memory backend: exit %d, want 2", code)
	}
}

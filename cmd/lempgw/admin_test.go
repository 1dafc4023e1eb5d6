package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/lempgw/lempgw/bridge"
	"github.com/lempgw/lempgw/state"
)

func TestEnsureAdmin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	st := state.NewMemory()
	defer st.Close()
	auth := AuthConfig{AdminIdentity: "Root", AdminToken: "first", Argon2MemoryKiB: 64, Argon2Time: 1}

	// Not configured: nothing happens.
	if err := ensureAdmin(ctx, st, AuthConfig{}, log); err != nil {
		t.Fatal(err)
	}
	if us, _ := st.ListUsers(ctx); len(us) != 0 {
		t.Fatalf("users without admin config: %+v", us)
	}

	if err := ensureAdmin(ctx, st, auth, log); err != nil {
		t.Fatal(err)
	}
	u, err := st.GetUser(ctx, "root")
	if err != nil || !u.Admin || !bridge.VerifyToken(u.TokenHash, "first") || u.Created == 0 {
		t.Fatalf("root = %+v, %v", u, err)
	}
	if !strings.Contains(logs.String(), "created admin account") {
		t.Errorf("logs: %s", logs.String())
	}

	// Existing account: the token is kept.
	auth.AdminToken = "second"
	if err := ensureAdmin(ctx, st, auth, log); err != nil {
		t.Fatal(err)
	}
	u2, _ := st.GetUser(ctx, "root")
	if u2.TokenHash != u.TokenHash {
		t.Error("ensureAdmin changed an existing account's token")
	}

	// An existing non-admin account is made an admin.
	if err := st.CreateUser(ctx, state.User{Name: "boss", TokenHash: "x", Created: 1}); err != nil {
		t.Fatal(err)
	}
	if err := ensureAdmin(ctx, st, AuthConfig{AdminIdentity: "boss", AdminToken: "t"}, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	if b, _ := st.GetUser(ctx, "boss"); !b.Admin || b.TokenHash != "x" {
		t.Errorf("boss = %+v", b)
	}
}

func TestOpenStoreMemory(t *testing.T) {
	st, err := openStore(context.Background(), DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestNewLogger(t *testing.T) {
	for _, tc := range []struct {
		level, format string
		wantDebug     bool
		wantPrefix    string
	}{
		{"debug", "json", true, "{"},
		{"info", "text", false, "time="},
		{"error", "text", false, ""},
	} {
		cfg := DefaultConfig()
		cfg.Log.Level, cfg.Log.Format = tc.level, tc.format
		var b syncBuffer
		l := newLoggerTo(&b, cfg)
		l.Debug("dbg")
		l.Info("inf")
		out := b.String()
		if strings.Contains(out, "dbg") != tc.wantDebug {
			t.Errorf("%s/%s: debug shown = %v: %q", tc.level, tc.format, !tc.wantDebug, out)
		}
		if tc.level == "error" && out != "" {
			t.Errorf("error level logged info: %q", out)
		}
		if tc.wantPrefix != "" && !strings.HasPrefix(out, tc.wantPrefix) {
			t.Errorf("%s/%s: output %q", tc.level, tc.format, out)
		}
	}
	if newLogger(DefaultConfig()) == nil {
		t.Error("newLogger returned nil")
	}
}

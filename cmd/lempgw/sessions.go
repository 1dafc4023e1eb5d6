package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/lempgw/lempgw/bridge"
	"github.com/lempgw/lempgw/lempside"
	"github.com/lempgw/lempgw/state"
)

// sessionsCommand is "lempgw sessions"; main.go lists it.
var sessionsCommand = &command{
	name: "sessions", args: "[USER] [--json] [--config FILE]",
	summary: "show who is online on which gateway node",
	help: "One line per live session, by user: user, node id, login time (RFC 3339, UTC),\n" +
		"the client's address; a count; then one line per live node: id, version, start\n" +
		"time, last heartbeat, LEMP URL. With USER only that user's sessions. --json prints\n" +
		"{\"nodes\":[...],\"sessions\":[...]} with times in ms since the epoch. A node that\n" +
		"stopped without a goodbye (crash, SIGKILL) and its sessions are gone node.ttl after\n" +
		"its last heartbeat.",
	run: cmdSessions,
}

var errMemorySessions = errors.New(`sessions needs a persistent store (state.backend = "redis"); the memory store lives inside "lempgw serve"`)

// sessionsOut is the --json output.
type sessionsOut struct {
	Nodes    []state.Node    `json:"nodes"`
	Sessions []state.Session `json:"sessions"`
}

func cmdSessions(e *cli, args []string) error {
	f := newFlagSet("sessions")
	asJSON := f.Bool("json", false, "print JSON")
	f.addConfigFlags(storeFlagKeys...)
	if err := f.parse(e, args); err != nil {
		return err
	}
	pos := f.Args()
	if len(pos) > 1 {
		return usageErr("sessions: unexpected argument %q (usage: lempgw sessions %s)", pos[1], f.cmd.args)
	}
	user := ""
	if len(pos) == 1 {
		user = strings.ToLower(pos[0])
		if err := bridge.ValidUsername(user); err != nil {
			return usageErr("sessions: invalid user name %q: %s", pos[0], err)
		}
	}
	cfg, err := f.loadConfig(e)
	if err != nil {
		return err
	}
	if cfg.State.Backend == "memory" {
		return usageErr("%s", errMemorySessions)
	}
	st, err := openStore(e.ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	var out sessionsOut
	if user == "" {
		out.Sessions, err = st.Sessions(e.ctx)
	} else {
		out.Sessions, err = st.UserSessions(e.ctx, user)
	}
	if err != nil {
		return fmt.Errorf("sessions: %w", err)
	}
	if out.Nodes, err = st.Nodes(e.ctx); err != nil {
		return fmt.Errorf("sessions: %w", err)
	}
	if *asJSON {
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(e.stdout, "%s\n", b)
		return err
	}
	var b strings.Builder
	for _, s := range out.Sessions {
		fmt.Fprintf(&b, "%s\t%s\t%s\t%s\n", s.User, s.Node, msTime(s.Started), orDash(s.Remote))
	}
	if user == "" {
		fmt.Fprintf(&b, "%s on %s\n", plural(len(out.Sessions), "session"), plural(len(out.Nodes), "node"))
	} else {
		fmt.Fprintf(&b, "%s of %s\n", plural(len(out.Sessions), "session"), user)
	}
	for _, n := range out.Nodes {
		fmt.Fprintf(&b, "node\t%s\t%s\tstarted %s\tbeat %s\t%s\n", n.ID, orDash(n.Version), msTime(n.Started), msTime(n.LastBeat), orDash(n.Listen))
	}
	_, err = fmt.Fprint(e.stdout, b.String())
	return err
}

func msTime(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339) }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// ---- the node's entry in the registry (lempgw serve) ----

// startRegistry records this node and its sessions in the store and keeps
// them there (node.*); the returned function removes them at shutdown.
func startRegistry(ctx context.Context, cfg Config, hub *lempside.Hub, st state.Store, lempURL, opsAddr string, log *slog.Logger) (stop func(), err error) {
	id := cfg.Node.ID
	if id == "" {
		id = defaultNodeID()
	}
	// A signal during the start must not fail it: serve then stops
	// normally, and removes the record again.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Node.TTL)
	defer cancel()
	err = hub.StartRegistry(sctx, lempside.RegistryConfig{
		Store:     st,
		Node:      state.Node{ID: id, Version: versionString(), Listen: lempURL, Ops: opsAddr},
		Heartbeat: cfg.Node.Heartbeat,
		TTL:       cfg.Node.TTL,
		Log:       log,
	})
	if err != nil {
		return nil, fmt.Errorf("session registry of node %s: %w", id, err)
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := hub.StopRegistry(ctx); err != nil {
			log.Warn("session registry: removing the node", "node", id, "err", err)
		}
	}, nil
}

// defaultNodeID is the node id when node.id is empty: the host name (made a
// valid id) and a random suffix, new at every start.
func defaultNodeID() string {
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '.' || r == '_' || r == '-' {
			return r
		}
		return '-'
	}, host)
	if len(host) > 50 {
		host = host[:50]
	}
	if host == "" {
		host = "lempgw"
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}

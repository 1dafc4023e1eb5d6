package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/lempgw/lempgw/internal/testenv"
)

// runXMPPServer is "lempbench xmpp-server": it starts a private Prosody or
// ejabberd for the bench and runs until SIGINT or SIGTERM.
func runXMPPServer(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lempbench xmpp-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kind := fs.String("kind", testenv.KindProsody, "prosody or ejabberd")
	dir := fs.String("dir", "", "directory for the server's configuration, data and logs (default: a temporary one, removed at the end)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "lempbench xmpp-server: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *kind != testenv.KindProsody && *kind != testenv.KindEjabberd {
		fmt.Fprintf(stderr, "lempbench xmpp-server: -kind %q: want prosody or ejabberd\n", *kind)
		return 2
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "lempbench-xmpp-*")
		if err != nil {
			fmt.Fprintln(stderr, "lempbench xmpp-server:", err)
			return 1
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serveXMPP(ctx, *kind, *dir, stdout); err != nil {
		fmt.Fprintln(stderr, "lempbench xmpp-server:", err)
		if errors.Is(err, testenv.ErrXMPPMissing) {
			return 3
		}
		return 1
	}
	return 0
}

// serveXMPP starts a server of kind in dir with internal/testenv's
// configuration (the one the tests use: one virtual host, c2s and the
// component listener on free loopback ports, the gateway's component domain
// and secret) plus open in-band registration, writes its parameters to out
// as shell assignments ending with XMPP_READY=1, and kills it when ctx ends.
func serveXMPP(ctx context.Context, kind, dir string, out io.Writer) error {
	s, err := testenv.NewBenchXMPP(kind, dir)
	if err != nil {
		return err
	}
	defer s.Kill() // throwaway data: no need for a graceful (for ejabberd, slow) shutdown
	for _, kv := range [][2]string{
		{"XMPP_KIND", s.Kind},
		{"XMPP_C2S", s.C2SAddr},
		{"XMPP_COMPONENT", s.ComponentAddr},
		{"XMPP_DOMAIN", s.Domain},
		{"XMPP_GATEWAY_DOMAIN", s.ComponentDomain},
		{"XMPP_SECRET", s.ComponentSecret},
		{"XMPP_PID", fmt.Sprint(s.PID())},
		{"XMPP_DIR", s.Dir},
		{"XMPP_READY", "1"},
	} {
		if _, err := fmt.Fprintf(out, "%s=%s\n", kv[0], shellQuote(kv[1])); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return nil
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Command lempgw is the XMPP-to-LEMP gateway: "lempgw serve" runs it, the
// other subcommands administer its state store. "lempgw help" lists them.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/pflag"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise it comes from the module's build information.
var version = ""

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // runtime failure
	exitUsage   = 2 // usage or configuration error
)

// run is the whole program: args without the program name. It returns the
// exit code. SIGINT and SIGTERM cancel the context the commands run under.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, a second one kills at once (default behavior).
	go func() {
		<-ctx.Done()
		stop()
	}()
	return runEnv(ctx, args, os.Environ(), stdout, stderr)
}

// exitError carries an exit code with the message.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErr is a mistake in the command line: exit 2.
func usageErr(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// configErr is a bad configuration: exit 2.
func configErr(err error) error { return &exitError{code: exitUsage, err: err} }

// errHelpShown ends a command that printed its help: exit 0.
var errHelpShown = errors.New("help shown")

// runEnv is run with an explicit context and environment.
func runEnv(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	e := &cli{ctx: ctx, environ: environ, stdout: stdout, stderr: stderr}
	err := e.dispatch(args)
	switch {
	case err == nil, errors.Is(err, errHelpShown):
		return exitOK
	}
	fmt.Fprintf(stderr, "lempgw: %s\n", oneLine(err.Error()))
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitFailure
}

// cli is what the commands run with.
type cli struct {
	ctx            context.Context
	environ        []string
	stdout, stderr io.Writer
}

// command is one subcommand (or group of them).
type command struct {
	name    string // "user add"
	args    string // "NAME --token T [--admin]"
	summary string
	help    string // more text after the usage line
	run     func(e *cli, args []string) error
	subs    []*command
}

var commands []*command

func init() {
	commands = []*command{
		{
			name: "serve", args: "[--config FILE] [flags]",
			summary: "run the gateway in the foreground until SIGINT/SIGTERM",
			help: "Without --config the gateway runs on the embedded defaults: in-memory state, LEMP\n" +
				"websocket server on 127.0.0.1:8025 path /lemp, ops HTTP on 127.0.0.1:9025, XMPP\n" +
				"bridging off. LEMPGW_* environment variables and the flags below override the file.",
			run: cmdServe,
		},
		{
			name: "user", args: "add|del|list|passwd ...",
			summary: "manage local LEMP accounts in the configured state store",
			help: "The user commands work on the state store of the configuration, which must be\n" +
				"persistent (state.backend = \"redis\"). User names are folded to lower case.",
			subs: []*command{
				{name: "user add", args: "NAME --token T [--admin] [--config FILE]", summary: "create an account", run: cmdUserAdd,
					help: "The token is the account's password (LEMP login); it is stored hashed (argon2id)."},
				{name: "user del", args: "NAME [--config FILE]", summary: "delete an account, its followings, block list and queue", run: cmdUserDel},
				{name: "user list", args: "[--config FILE]", summary: "list accounts: name, admin|user, creation time", run: cmdUserList},
				{name: "user passwd", args: "NAME --token T [--config FILE]", summary: "set an account's token", run: cmdUserPasswd},
			},
		},
		{
			name: "config", args: "check [--config FILE]",
			summary: "check the configuration and print the effective one",
			subs: []*command{
				{name: "config check", args: "[--config FILE] [--format toml|json] [flags]", run: cmdConfigCheck,
					summary: "print the effective configuration, secrets masked",
					help: "Loads the configuration (defaults < file < environment < flags) and prints it with\n" +
						"the secrets masked, exit 0; or prints the error on one line, exit 2."},
			},
		},
		{name: "queue", args: "NAME [--limit N] [--config FILE]", summary: "show what waits in a user's delivery queue", run: cmdQueue,
			help: "One line per item, oldest first: sequence number, sender, message id, when it\n" +
				"leaves the queue (dm: on the receiver's acknowledgement; write: once written),\n" +
				"and the frame. The name @xmpp shows the outbound queue to Jabber users."},
		sessionsCommand, // sessions.go
		{name: "version", args: "", summary: "print the version", run: cmdVersion},
		{name: "help", args: "[COMMAND...]", summary: "show help for a command", run: cmdHelp},
	}
}

const mainUsage = `lempgw - XMPP-to-LEMP gateway

Usage:
  lempgw COMMAND [ARGS] [--config FILE]

Commands:
%s
Every command accepts --config FILE (a TOML file; default: $LEMPGW_CONFIG, else the
embedded defaults) and --help. Exit codes: 0 ok, 1 runtime failure, 2 usage or
configuration error. See docs/configuration.md.
`

func mainHelp() string {
	var b strings.Builder
	for _, c := range commands {
		if c.subs == nil {
			fmt.Fprintf(&b, "  %-36s %s\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
			continue
		}
		for _, s := range c.subs {
			fmt.Fprintf(&b, "  %-36s %s\n", strings.TrimSpace(s.name+" "+firstWords(s.args)), s.summary)
		}
	}
	return fmt.Sprintf(mainUsage, b.String())
}

// firstWords drops the common "[--config FILE]" from a usage for the overview.
func firstWords(args string) string {
	args = strings.ReplaceAll(args, "[--config FILE]", "")
	args = strings.ReplaceAll(args, "[flags]", "")
	return strings.Join(strings.Fields(args), " ")
}

func (e *cli) dispatch(args []string) error {
	if len(args) == 0 {
		return usageErr("no command given (see \"lempgw help\")")
	}
	switch args[0] {
	case "-h", "--help", "-help":
		fmt.Fprint(e.stdout, mainHelp())
		return nil
	case "-v", "--version":
		return cmdVersion(e, args[1:])
	}
	c := findCommand(commands, args[0])
	if c == nil {
		return usageErr("unknown command %q (see \"lempgw help\")", args[0])
	}
	if c.subs == nil {
		return c.run(e, args[1:])
	}
	rest := args[1:]
	if len(rest) == 0 {
		return usageErr("%s: missing subcommand (see \"lempgw help %s\")", c.name, c.name)
	}
	switch rest[0] {
	case "-h", "--help", "-help", "help":
		if len(rest) > 1 && rest[0] == "help" {
			return cmdHelp(e, append([]string{c.name}, rest[1:]...))
		}
		fmt.Fprint(e.stdout, groupHelp(c))
		return nil
	}
	s := findCommand(c.subs, c.name+" "+rest[0])
	if s == nil {
		return usageErr("%s: unknown subcommand %q (see \"lempgw help %s\")", c.name, rest[0], c.name)
	}
	return s.run(e, rest[1:])
}

func findCommand(cs []*command, name string) *command {
	for _, c := range cs {
		if c.name == name {
			return c
		}
	}
	return nil
}

func groupHelp(c *command) string {
	var b strings.Builder
	fmt.Fprintf(&b, "lempgw %s - %s\n\nUsage:\n", c.name, c.summary)
	for _, s := range c.subs {
		fmt.Fprintf(&b, "  lempgw %s %s\n", s.name, s.args)
	}
	if c.help != "" {
		fmt.Fprintf(&b, "\n%s\n", c.help)
	}
	fmt.Fprintf(&b, "\nRun \"lempgw help %s SUBCOMMAND\" for the flags.\n", c.name)
	return b.String()
}

func commandHelp(c *command, fs *pflag.FlagSet) string {
	var b strings.Builder
	fmt.Fprintf(&b, "lempgw %s - %s\n\nUsage:\n  lempgw %s %s\n", c.name, c.summary, c.name, c.args)
	if c.help != "" {
		fmt.Fprintf(&b, "\n%s\n", c.help)
	}
	if fs != nil && fs.HasFlags() {
		fmt.Fprintf(&b, "\nFlags:\n%s", fs.FlagUsages())
	}
	return b.String()
}

// cmdHelp: lempgw help [COMMAND [SUBCOMMAND]].
func cmdHelp(e *cli, args []string) error {
	var names []string
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			names = append(names, a)
		}
	}
	if len(names) == 0 {
		fmt.Fprint(e.stdout, mainHelp())
		return nil
	}
	c := findCommand(commands, names[0])
	if c == nil {
		return usageErr("help: unknown command %q", names[0])
	}
	if len(names) > 1 && c.subs != nil {
		s := findCommand(c.subs, c.name+" "+names[1])
		if s == nil {
			return usageErr("help: unknown command %q", c.name+" "+names[1])
		}
		return s.run(e, []string{"--help"})
	}
	if c.subs != nil {
		fmt.Fprint(e.stdout, groupHelp(c))
		return nil
	}
	return c.run(e, []string{"--help"})
}

// ---- flags ----

// flagSet is a subcommand's flags; every one has --config.
type flagSet struct {
	*pflag.FlagSet
	cmd    *command
	config *string
}

func newFlagSet(name string) *flagSet {
	c := findCommand(commands, name)
	if c == nil {
		group, _, _ := strings.Cut(name, " ")
		c = findCommand(findCommand(commands, group).subs, name)
	}
	fs := pflag.NewFlagSet("lempgw "+name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	f := &flagSet{FlagSet: fs, cmd: c}
	f.config = fs.String("config", "", "TOML configuration `FILE` (default $LEMPGW_CONFIG, else embedded defaults)")
	return f
}

// Config keys that have flags: the store and the log on every command that
// loads the configuration, the listeners and the XMPP endpoint on serve and
// config check. Secrets have no flags (they would show in the process list).
var (
	storeFlagKeys  = []string{"state.backend", "state.redis_url", "state.key_prefix", "log.level", "log.format"}
	serverFlagKeys = []string{"lemp.listen", "lemp.path", "lemp.web_client", "http.listen", "http.pprof", "xmpp.component_address", "xmpp.domain", "xmpp.muc_domain"}
)

// addConfigFlags adds a --KEY flag for each config key, shown with its
// embedded default; only flags given on the command line override.
func (f *flagSet) addConfigFlags(keys ...string) {
	defs := toMap(DefaultConfig())
	for _, key := range keys {
		sec, name, _ := strings.Cut(key, ".")
		def := defs[sec].(map[string]any)[name]
		usage := "override " + key
		switch d := def.(type) {
		case bool:
			f.Bool(key, d, usage)
		case []string:
			f.StringSlice(key, d, usage+" (comma-separated)")
		default:
			f.String(key, fmt.Sprint(d), usage)
		}
	}
}

// parse parses args; --help prints the command's help and ends it.
func (f *flagSet) parse(e *cli, args []string) error {
	err := f.Parse(args)
	if errors.Is(err, pflag.ErrHelp) {
		fmt.Fprint(e.stdout, commandHelp(f.cmd, f.FlagSet))
		return errHelpShown
	}
	if err != nil {
		return usageErr("%s: %s (see \"lempgw %s --help\")", f.cmd.name, err, f.cmd.name)
	}
	return nil
}

// args checks the number of positional arguments.
func (f *flagSet) args(n int, what string) ([]string, error) {
	a := f.Args()
	switch {
	case len(a) < n:
		return nil, usageErr("%s: missing %s (usage: lempgw %s %s)", f.cmd.name, what, f.cmd.name, f.cmd.args)
	case len(a) > n:
		return nil, usageErr("%s: unexpected argument %q (usage: lempgw %s %s)", f.cmd.name, a[n], f.cmd.name, f.cmd.args)
	}
	return a, nil
}

// loadConfig loads the configuration for a command: --config, else
// $LEMPGW_CONFIG; a failure is a config error (exit 2).
func (f *flagSet) loadConfig(e *cli) (Config, error) {
	file := *f.config
	if !f.Changed("config") {
		for _, kv := range e.environ {
			if v, ok := strings.CutPrefix(kv, envConfigFile+"="); ok {
				file = v
			}
		}
	}
	cfg, err := LoadConfig(file, e.environ, f.FlagSet)
	if err != nil {
		return Config{}, configErr(err)
	}
	return cfg, nil
}

// ---- commands ----

func cmdVersion(e *cli, args []string) error {
	f := newFlagSet("version")
	if err := f.parse(e, args); err != nil {
		return err
	}
	if _, err := f.args(0, ""); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "lempgw %s %s %s/%s\n", versionString(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

func cmdServe(e *cli, args []string) error {
	f := newFlagSet("serve")
	f.addConfigFlags(serverFlagKeys...)
	f.addConfigFlags(storeFlagKeys...)
	if err := f.parse(e, args); err != nil {
		return err
	}
	if _, err := f.args(0, ""); err != nil {
		return err
	}
	cfg, err := f.loadConfig(e)
	if err != nil {
		return err
	}
	log := newLoggerTo(e.stderr, cfg)
	redisLog.Store(log)
	return runServe(e.ctx, cfg, log)
}

func cmdConfigCheck(e *cli, args []string) error {
	f := newFlagSet("config check")
	format := f.String("format", "toml", "output `FORMAT`: toml or json")
	f.addConfigFlags(serverFlagKeys...)
	f.addConfigFlags(storeFlagKeys...)
	if err := f.parse(e, args); err != nil {
		return err
	}
	if _, err := f.args(0, ""); err != nil {
		return err
	}
	var marshal func(Config) []byte
	switch *format {
	case "toml":
		marshal = marshalTOML
	case "json":
		marshal = marshalJSON
	default:
		return usageErr("config check: --format must be toml or json, not %q", *format)
	}
	cfg, err := f.loadConfig(e)
	if err != nil {
		return err
	}
	_, err = e.stdout.Write(marshal(cfg.Masked()))
	return err
}

package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lempgw/lempgw/bridge"
	"github.com/lempgw/lempgw/state"
)

// errMemoryStore refuses the user commands on the in-process memory store.
var errMemoryStore = errors.New(`user commands need a persistent store (state.backend = "redis"); the memory store lives inside "lempgw serve"`)

// maxTokenBytes bounds a token given on the command line.
const maxTokenBytes = 1024

// userCmd parses a user subcommand: its flags, nArgs positional arguments
// (the first, if any, is the user name, folded and checked), the
// configuration; then it opens the store. The caller closes it.
type userCmd struct {
	*flagSet
	name  string
	cfg   Config
	store state.Store
}

func parseUserCmd(e *cli, f *flagSet, args []string, nArgs int, needToken *string) (*userCmd, error) {
	f.addConfigFlags(storeFlagKeys...)
	if err := f.parse(e, args); err != nil {
		return nil, err
	}
	pos, err := f.args(nArgs, "NAME")
	if err != nil {
		return nil, err
	}
	u := &userCmd{flagSet: f}
	if nArgs > 0 {
		u.name = strings.ToLower(pos[0])
		if err := bridge.ValidUsername(u.name); err != nil {
			return nil, usageErr("%s: invalid user name %q: %s", f.cmd.name, pos[0], err)
		}
	}
	if needToken != nil {
		switch {
		case !f.Changed("token"):
			return nil, usageErr("%s: missing --token T (usage: lempgw %s %s)", f.cmd.name, f.cmd.name, f.cmd.args)
		case *needToken == "":
			return nil, usageErr("%s: --token must not be empty", f.cmd.name)
		case len(*needToken) > maxTokenBytes:
			return nil, usageErr("%s: --token is longer than %d bytes", f.cmd.name, maxTokenBytes)
		}
	}
	if u.cfg, err = f.loadConfig(e); err != nil {
		return nil, err
	}
	if u.cfg.State.Backend == "memory" {
		return nil, usageErr("%s", errMemoryStore)
	}
	if u.store, err = openStore(e.ctx, u.cfg); err != nil {
		return nil, err
	}
	return u, nil
}

func cmdUserAdd(e *cli, args []string) error {
	f := newFlagSet("user add")
	token := f.String("token", "", "the account's token (its LEMP password), stored hashed")
	admin := f.Bool("admin", false, "make the account an admin")
	u, err := parseUserCmd(e, f, args, 1, token)
	if err != nil {
		return err
	}
	defer u.store.Close()
	core, err := u.core()
	if err != nil {
		return err
	}
	if e := core.CreateUser(e.ctx, u.name, *token, *admin); e != nil {
		return fmt.Errorf("user add %s: %s", u.name, e.Desc)
	}
	fmt.Fprintf(e.stdout, "added user %s (%s)\n", u.name, role(*admin))
	return nil
}

func cmdUserDel(e *cli, args []string) error {
	u, err := parseUserCmd(e, newFlagSet("user del"), args, 1, nil)
	if err != nil {
		return err
	}
	defer u.store.Close()
	core, err := u.core()
	if err != nil {
		return err
	}
	// Through the core, so the account also leaves its groups (members are told).
	if e := core.DeleteUser(e.ctx, u.name); e != nil {
		if e.Code == bridge.CodeNotFound {
			return fmt.Errorf("user %s does not exist", u.name)
		}
		return fmt.Errorf("user del %s: %s", u.name, e.Desc)
	}
	fmt.Fprintf(e.stdout, "deleted user %s\n", u.name)
	return nil
}

func cmdUserList(e *cli, args []string) error {
	u, err := parseUserCmd(e, newFlagSet("user list"), args, 0, nil)
	if err != nil {
		return err
	}
	defer u.store.Close()
	users, err := u.store.ListUsers(e.ctx)
	if err != nil {
		return fmt.Errorf("user list: %w", err)
	}
	var b strings.Builder
	for _, x := range users {
		fmt.Fprintf(&b, "%s\t%s\t%s\n", x.Name, role(x.Admin), time.UnixMilli(x.Created).UTC().Format(time.RFC3339))
	}
	_, err = fmt.Fprint(e.stdout, b.String())
	return err
}

func cmdUserPasswd(e *cli, args []string) error {
	f := newFlagSet("user passwd")
	token := f.String("token", "", "the new token, stored hashed")
	u, err := parseUserCmd(e, f, args, 1, token)
	if err != nil {
		return err
	}
	defer u.store.Close()
	hash, err := bridge.HashToken(*token, u.cfg.Auth.HashParams())
	if err != nil {
		return err
	}
	_, err = u.store.UpdateUser(e.ctx, u.name, func(x *state.User) error {
		x.TokenHash = hash
		return nil
	})
	switch {
	case errors.Is(err, state.ErrNotFound):
		return fmt.Errorf("user %s does not exist", u.name)
	case err != nil:
		return fmt.Errorf("user passwd %s: %w", u.name, err)
	}
	fmt.Fprintf(e.stdout, "changed the token of user %s\n", u.name)
	return nil
}

// core is the routing core over the command's store, with no live sessions:
// what it would push is queued durably.
func (u *userCmd) core() (*bridge.Core, error) {
	return bridge.New(bridge.Config{Store: u.store, Local: bridge.NoSessions{}, Hash: u.cfg.Auth.HashParams()})
}

func role(admin bool) string {
	if admin {
		return "admin"
	}
	return "user"
}

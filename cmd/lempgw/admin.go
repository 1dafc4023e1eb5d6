package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/lempgw/lempgw/bridge"
	"github.com/lempgw/lempgw/state"
)

// ensureAdmin creates the account auth.admin_identity with auth.admin_token
// (stored hashed) when both are set and the account does not exist yet. An
// existing account keeps its token (change it with "lempgw user passwd");
// it is made an admin if it was not one.
func ensureAdmin(ctx context.Context, st state.Store, auth AuthConfig, log *slog.Logger) error {
	if auth.AdminIdentity == "" || auth.AdminToken == "" {
		return nil
	}
	name := strings.ToLower(auth.AdminIdentity)
	if err := bridge.ValidUsername(name); err != nil {
		return fmt.Errorf("auth.admin_identity %q: %w", auth.AdminIdentity, err)
	}
	u, err := st.GetUser(ctx, name)
	switch {
	case err == nil:
		if u.Admin {
			log.Debug("admin account exists", "user", name)
			return nil
		}
		if _, err := st.UpdateUser(ctx, name, func(u *state.User) error {
			u.Admin = true
			return nil
		}); err != nil {
			return fmt.Errorf("admin account %s: %w", name, err)
		}
		log.Info("made existing account an admin", "user", name)
		return nil
	case !errors.Is(err, state.ErrNotFound):
		return fmt.Errorf("admin account %s: %w", name, err)
	}
	hash, err := bridge.HashToken(auth.AdminToken, auth.HashParams())
	if err != nil {
		return fmt.Errorf("admin account %s: %w", name, err)
	}
	err = st.CreateUser(ctx, state.User{Name: name, TokenHash: hash, Admin: true, Created: time.Now().UnixMilli()})
	switch {
	case errors.Is(err, state.ErrExists):
		// Created concurrently (another gateway on the same store).
		return nil
	case err != nil:
		return fmt.Errorf("admin account %s: %w", name, err)
	}
	log.Info("created admin account", "user", name)
	return nil
}

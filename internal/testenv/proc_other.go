//go:build !linux

package testenv

import "os/exec"

// setParentDeath is Linux-only; elsewhere Main and t.Cleanup stop servers.
func setParentDeath(*exec.Cmd) {}

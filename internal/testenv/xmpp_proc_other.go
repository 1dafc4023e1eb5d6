//go:build !unix

package testenv

import "os/exec"

// Process groups are a Unix thing; elsewhere Stop only ends the server.
func setProcessGroup(*exec.Cmd) {}

func killProcessGroup(int) {}

//go:build linux

package testenv

import (
	"os/exec"
	"syscall"
)

// setParentDeath makes the kernel kill the server if the test process dies
// without stopping it (a panic, a timeout, a package without TestMain). The
// signal follows the starting thread, which startProcess keeps alive for as
// long as the server runs.
func setParentDeath(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

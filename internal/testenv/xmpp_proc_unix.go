//go:build unix

package testenv

import (
	"os/exec"
	"syscall"
	"time"
)

// setProcessGroup starts cmd in a process group of its own, so that
// killProcessGroup also reaches the helpers it spawns (Erlang port programs).
func setProcessGroup(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
}

// killProcessGroup kills what is left of the process group led by pid and
// waits (up to 2s) until it is gone.
func killProcessGroup(pid int) {
	if pid <= 0 {
		return
	}
	deadline := time.Now().Add(2 * time.Second)
	for syscall.Kill(-pid, syscall.SIGKILL) == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

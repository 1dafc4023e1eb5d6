//go:build linux

package testenv

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// procID identifies a process across pid reuse.
type procID struct {
	pid   int
	start string // starttime, field 22 of /proc/<pid>/stat
}

// procStat returns the parent and start time of pid, and whether it is
// alive (not gone, not a zombie).
func procStat(pid int) (ppid int, start string, alive bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, "", false
	}
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses.
	i := strings.LastIndex(string(b), ") ")
	if i < 0 {
		return 0, "", false
	}
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 20 {
		return 0, "", false
	}
	ppid, _ = strconv.Atoi(f[1])
	return ppid, f[19], f[0] != "Z" && f[0] != "X"
}

// snapshotTree records the processes descended from pid and returns a
// function that kills those of them still alive and waits (up to 2s) for
// them to go. Erlang starts its helpers (erl_child_setup, inet_gethost,
// memsup, eimp) in sessions of their own, out of reach of the server's
// process group; call the function once the server has exited.
func snapshotTree(pid int) (killRest func()) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return func() {}
	}
	children := map[int][]procID{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, start, alive := procStat(p); alive {
			children[ppid] = append(children[ppid], procID{p, start})
		}
	}
	var tree []procID
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			tree = append(tree, c)
			queue = append(queue, c.pid)
		}
	}
	return func() {
		deadline := time.Now().Add(2 * time.Second)
		for _, p := range tree {
			for {
				_, start, alive := procStat(p.pid)
				if !alive || start != p.start || time.Now().After(deadline) {
					break
				}
				_ = syscall.Kill(p.pid, syscall.SIGKILL)
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
}

package state

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Node is one run of a gateway node in the session registry.
type Node struct {
	ID string `json:"id"` // node.id, unique among the gateways on one store
	// Run identifies this run of the node: random, new at every start and
	// whenever the node lost its record. Sessions belong to a run.
	Run      string `json:"run"`
	Version  string `json:"version,omitempty"`
	Listen   string `json:"listen,omitempty"` // the LEMP websocket URL it serves
	Ops      string `json:"ops,omitempty"`    // its ops HTTP address: where other nodes can reach it
	Started  int64  `json:"started"`          // ms since the epoch, process start
	LastBeat int64  `json:"last_beat"`        // ms since the epoch, last StartNode or Heartbeat
}

// Session is one logged-in LEMP connection in the session registry.
type Session struct {
	ID      string `json:"id"` // unique per login: a newer session of the user is a different one
	User    string `json:"user"`
	Node    string `json:"node"`             // Node.ID of the node holding the connection
	Run     string `json:"run"`              // Node.Run it was registered under
	Remote  string `json:"remote,omitempty"` // the client's address as the node sees it
	Started int64  `json:"started"`          // ms since the epoch, login
}

// checkNode validates a node record and ttl for StartNode and Heartbeat.
func checkNode(n Node, ttl time.Duration) error {
	switch {
	case n.ID == "":
		return errors.New("state: node: empty id")
	case n.Run == "":
		return fmt.Errorf("state: node %q: empty run", n.ID)
	case ttl <= 0:
		return fmt.Errorf("state: node %q: ttl %v is not positive", n.ID, ttl)
	}
	return nil
}

// checkSessions validates sessions for RegisterSession: complete, and all
// of one node run.
func checkSessions(ss []Session) error {
	for i, s := range ss {
		if err := checkSession(s); err != nil {
			return err
		}
		if s.Node != ss[0].Node || s.Run != ss[0].Run {
			return fmt.Errorf("state: session %d is of node %q run %q, session 0 of node %q run %q: one call registers sessions of one node run",
				i, s.Node, s.Run, ss[0].Node, ss[0].Run)
		}
	}
	return nil
}

func checkSession(s Session) error {
	switch {
	case s.ID == "":
		return errors.New("state: session: empty id")
	case s.User == "":
		return fmt.Errorf("state: session %q: empty user", s.ID)
	case s.Node == "":
		return fmt.Errorf("state: session %q: empty node", s.ID)
	case s.Run == "":
		return fmt.Errorf("state: session %q: empty run", s.ID)
	}
	return nil
}

// errRunNotLive is RegisterSession's ErrNotFound.
func errRunNotLive(node, run string) error {
	return fmt.Errorf("node %q run %q is not live: %w", node, run, ErrNotFound)
}

// sortSessions puts sessions in the order of Sessions: User, Started, Node, ID.
func sortSessions(ss []Session) {
	slices.SortFunc(ss, func(a, b Session) int {
		if c := strings.Compare(a.User, b.User); c != 0 {
			return c
		}
		if a.Started != b.Started {
			if a.Started < b.Started {
				return -1
			}
			return 1
		}
		if c := strings.Compare(a.Node, b.Node); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

package state

import (
	"encoding/json"
	"errors"
	"fmt"
)

// AllNodes, as the node of Store.Wake, sends to every node. It can not be a
// node id (node.id allows letters, digits, '.', '_' and '-').
const AllNodes = "*"

// WakeKind says what a Wake asks of the node that receives it.
type WakeKind uint8

const (
	// WakeQueue: User's queue has new items; the delivery loop of User's
	// session reads it again.
	WakeQueue WakeKind = 1
	// WakePush: write Frame (an ephemeral li/lo push) to User's session.
	WakePush WakeKind = 2
	// WakeLogin: User logged in, session Session on node Node, started at
	// Started (ms). A node holding an older session of User closes it, and
	// every node forgets what it cached about User's sessions.
	WakeLogin WakeKind = 3
	// WakeLogout: User's session Session on node Node ended; every node
	// forgets what it cached about User's sessions.
	WakeLogout WakeKind = 4
	// WakeDisconnect: close User's sessions, with Text as the reason
	// (account deleted).
	WakeDisconnect WakeKind = 5

	maxWakeKind = WakeDisconnect
)

// Wake is one cross-node wake-up.
type Wake struct {
	Kind    WakeKind `json:"k"`
	User    string   `json:"u"`
	Node    string   `json:"n,omitempty"` // the node that sent it
	Session string   `json:"s,omitempty"` // a session id (WakeLogin, WakeLogout)
	Started int64    `json:"t,omitempty"` // ms (WakeLogin)
	Frame   []byte   `json:"f,omitempty"` // WakePush
	Text    string   `json:"x,omitempty"` // WakeDisconnect's reason
}

// MaxWakeMessage bounds one encoded batch of wake-ups that DecodeWakes reads.
const MaxWakeMessage = 1 << 20

// checkWake reports what is missing from a wake-up of a known kind.
func checkWake(w Wake) error {
	if w.Kind == 0 || w.Kind > maxWakeKind {
		return fmt.Errorf("state: wake-up of unknown kind %d", w.Kind)
	}
	if w.User == "" {
		return fmt.Errorf("state: wake-up of kind %d: empty user", w.Kind)
	}
	switch w.Kind {
	case WakePush:
		if len(w.Frame) == 0 {
			return fmt.Errorf("state: push wake-up for %q: empty frame", w.User)
		}
	case WakeLogin, WakeLogout:
		if w.Session == "" || w.Node == "" {
			return fmt.Errorf("state: wake-up of kind %d for %q: empty session or node", w.Kind, w.User)
		}
	}
	return nil
}

// EncodeWakes encodes a batch of wake-ups as one pub/sub message: a JSON
// array of Wake objects. Each must be complete for its kind.
func EncodeWakes(ws []Wake) ([]byte, error) {
	if len(ws) == 0 {
		return nil, errors.New("state: no wake-ups to encode")
	}
	for _, w := range ws {
		if err := checkWake(w); err != nil {
			return nil, err
		}
	}
	b, err := json.Marshal(ws)
	if err != nil {
		return nil, fmt.Errorf("state: encode wake-ups: %w", err)
	}
	return b, nil
}

// DecodeWakes decodes what EncodeWakes wrote. Entries of a kind this
// version does not know are skipped (a newer node may send them during a
// rolling upgrade); an incomplete entry of a known kind, or anything that is
// not such an array, is an error and nothing is returned.
func DecodeWakes(b []byte) ([]Wake, error) {
	if len(b) > MaxWakeMessage {
		return nil, fmt.Errorf("state: wake-up message of %d bytes, over %d", len(b), MaxWakeMessage)
	}
	var raw []Wake
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("state: bad wake-up message: %w", err)
	}
	if raw == nil {
		return nil, errors.New("state: bad wake-up message: not an array")
	}
	ws := raw[:0]
	for i, w := range raw {
		if w.Kind == 0 || w.Kind > maxWakeKind {
			continue
		}
		if err := checkWake(w); err != nil {
			return nil, fmt.Errorf("%w (entry %d of the message)", err, i)
		}
		ws = append(ws, w)
	}
	return ws, nil
}

// checkWakeArgs validates Store.Wake's arguments.
func checkWakeArgs(node string, ws []Wake) error {
	if node == "" {
		return errors.New("state: wake-up: empty node (AllNodes sends to every node)")
	}
	for _, w := range ws {
		if err := checkWake(w); err != nil {
			return err
		}
	}
	return nil
}

// checkWakesNode validates Store.Wakes's node.
func checkWakesNode(node string) error {
	if node == "" || node == AllNodes {
		return fmt.Errorf("state: wake-ups: %q is not a node id", node)
	}
	return nil
}

// wakeBuffer is how many wake-ups a subscription holds for a slow reader
// before it drops new ones.
const wakeBuffer = 4096

package main

import (
	"fmt"
	"strings"

	"github.com/lempgw/lempgw/bridge"
)

// cmdQueue prints what waits in a user's delivery queue (or, for the name
// "@xmpp", in the outbound queue to Jabber users): one line per item, in
// order: sequence number, sender, message id, when it leaves the queue
// (dm = on the receiver's acknowledgement, write = once written), frame.
func cmdQueue(e *cli, args []string) error {
	f := newFlagSet("queue")
	limit := f.Int("limit", 100, "print at most this many items (0 = all)")
	f.addConfigFlags(storeFlagKeys...)
	if err := f.parse(e, args); err != nil {
		return err
	}
	pos, err := f.args(1, "NAME")
	if err != nil {
		return err
	}
	name := strings.ToLower(pos[0])
	if name != bridge.OutboundQueue {
		if err := bridge.ValidUsername(name); err != nil {
			return usageErr("queue: invalid user name %q: %s", pos[0], err)
		}
	}
	cfg, err := f.loadConfig(e)
	if err != nil {
		return err
	}
	if cfg.State.Backend == "memory" {
		return usageErr("%s", errMemoryStore)
	}
	st, err := openStore(e.ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	n := *limit
	if n < 0 {
		n = 0
	}
	items, err := st.Pending(e.ctx, name, 0, n)
	if err != nil {
		return fmt.Errorf("queue %s: %w", name, err)
	}
	var b strings.Builder
	for _, it := range items {
		ack := "dm"
		if it.AckOnWrite {
			ack = "write"
		}
		msgID := it.MsgID
		if msgID == "" {
			msgID = "-"
		}
		fmt.Fprintf(&b, "%d\t%s\t%s\t%s\t%s\n", it.Seq, it.From, msgID, ack, it.Payload)
	}
	total, err := st.QueueLen(e.ctx, name)
	if err != nil {
		return fmt.Errorf("queue %s: %w", name, err)
	}
	fmt.Fprintf(&b, "%d queued for %s\n", total, name)
	_, err = fmt.Fprint(e.stdout, b.String())
	return err
}

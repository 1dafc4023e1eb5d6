package bridge_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lempgw/lempgw/bridge"
	"github.com/lempgw/lempgw/internal/testenv"
	"github.com/lempgw/lempgw/state"
)

// benchLocal is a process where every member is online (so p "1" and p "0"
// messages are both queued) and wake-ups are free.
type benchLocal struct{}

func (benchLocal) Online(string) bool        { return true }
func (benchLocal) Notify(string)             {}
func (benchLocal) Push(string, []byte)       {}
func (benchLocal) Disconnect(string, string) {}

// benchRemote is an XMPP side that accepts every address; the queued items
// stay in OutboundQueue / RoomQueue (nothing drains them here).
type benchRemote struct{}

func (benchRemote) Notify()                                                          {}
func (benchRemote) NotifyRooms()                                                     {}
func (benchRemote) CheckAddress(string) error                                        { return nil }
func (benchRemote) FetchLast(context.Context, string, string) (time.Duration, error) { return 0, nil }
func (benchRemote) FetchPicture(context.Context, string, string) (string, error)     { return "", nil }

// BenchmarkGroupFanout measures Core.Send of one group message: the durable
// write of one copy per LEMP member (one Deliver: one round trip on Redis),
// plus, in the mixed groups (half of the members Jabber users), one
// RoomQueue item and the group's history entry. lemp-copies/s counts the
// LEMP members' copies made durable per second.
//
//	go test -run '^$' -bench GroupFanout -benchtime 200x ./bridge/
func BenchmarkGroupFanout(b *testing.B) {
	backends := []struct {
		name string
		new  func(b *testing.B) state.Store
	}{
		{"memory", func(*testing.B) state.Store { return state.NewMemory() }},
		{"redis", func(b *testing.B) state.Store {
			st, err := state.NewRedis(context.Background(), state.RedisConfig{URL: testenv.RedisURL(b), KeyPrefix: testenv.UniquePrefix(b)})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Close() })
			return st
		}},
	}
	for _, be := range backends {
		for _, n := range []int{1, 100, 1000} {
			for _, mixed := range []bool{false, true} {
				kind := "lemp"
				if mixed {
					kind = "mixed"
				}
				b.Run(fmt.Sprintf("%s/receivers=%d/%s", be.name, n, kind), func(b *testing.B) {
					benchFanout(b, be.new(b), n, mixed)
				})
			}
		}
	}
}

func benchFanout(b *testing.B, st state.Store, n int, mixed bool) {
	ctx := context.Background()
	core, err := bridge.New(bridge.Config{Store: st, Local: benchLocal{}})
	if err != nil {
		b.Fatal(err)
	}
	if mixed {
		core.SetRemote(benchRemote{})
		core.SetRooms(benchRemote{})
	}
	// m0 sends to n receivers; in a mixed group every other one is a Jabber user.
	var members []string
	lemp := 0
	for i := range n + 1 {
		name := fmt.Sprintf("m%d", i)
		if mixed && i%2 == 0 && i > 0 {
			members = append(members, name+"@jabber.example.org")
			continue
		}
		if err := st.CreateUser(ctx, state.User{Name: name}); err != nil {
			b.Fatal(err)
		}
		members = append(members, name)
		lemp++
	}
	if e := core.CreateGroup(ctx, "m0", bridge.GroupSpec{ID: "g", Members: members[1:]}); e != nil {
		b.Fatal(e)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		m := &bridge.Message{ID: fmt.Sprintf("b%d", i), R: "g", T: bridge.TypeText, C: "hello, group"}
		if e := core.Send(ctx, "m0", m); e != nil {
			b.Fatal(e)
		}
	}
	b.ReportMetric(float64(b.N*(lemp-1))/b.Elapsed().Seconds(), "lemp-copies/s")
}

package muc

import (
	"context"
	"fmt"
	"testing"

	"github.com/lempgw/lempgw/bridge"
)

// bigWorld is a room with lemp LEMP members and jabber joined Jabber members.
func bigWorld(b *testing.B, lemp, jabber int) (*Service, *memBackend) {
	b.Helper()
	r := Room{ID: "big", Name: "Big", Owner: "u0", Admins: []string{"u0"}}
	for i := range lemp {
		r.Members = append(r.Members, fmt.Sprintf("u%d", i))
	}
	for i := range jabber {
		r.Members = append(r.Members, fmt.Sprintf("j%d@example.org", i))
	}
	mb := &memBackend{rooms: map[string]Room{"big": r}, history: map[string][]*bridge.Message{}}
	s := newService(b, mb)
	ctx := context.Background()
	for i := range jabber {
		st := decode(b, fmt.Sprintf(`<presence from='j%d@example.org/r' to='big@rooms.example.org/j%d'><x xmlns='http://jabber.org/protocol/muc'/></presence>`, i, i))
		s.Handle(ctx, st)
	}
	return s, mb
}

// BenchmarkJoin: one Jabber member joins (and leaves) a room of N LEMP
// members and 10 Jabber occupants: the join sends N+11 presences.
func BenchmarkJoin(b *testing.B) {
	for _, n := range []int{100, 1000, 5000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			s, mb := bigWorld(b, n, 10)
			r := mb.rooms["big"]
			r.Members = append(r.Members, "new@example.org")
			mb.rooms["big"] = r
			join := decode(b, `<presence from='new@example.org/r' to='big@rooms.example.org/new'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
			leave := decode(b, `<presence from='new@example.org/r' to='big@rooms.example.org/new' type='unavailable'/>`)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if out := s.Handle(ctx, join); len(out) < n {
					b.Fatalf("%d stanzas", len(out))
				}
				s.Handle(ctx, leave)
			}
		})
	}
}

// BenchmarkGroupchat: a Jabber occupant's message, posted and reflected to
// N Jabber occupants.
func BenchmarkGroupchat(b *testing.B) {
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			s, _ := bigWorld(b, 10, n)
			st := decode(b, `<message from='j0@example.org/r' to='big@rooms.example.org' type='groupchat' id='m1'><body>hello everyone</body><origin-id xmlns='urn:xmpp:sid:0' id='m1'/></message>`)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if out := s.Handle(ctx, st); len(out) != n {
					b.Fatalf("%d stanzas", len(out))
				}
			}
		})
	}
}

// BenchmarkFanout: a LEMP member's message rendered for N Jabber occupants.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			s, _ := bigWorld(b, 10, n)
			m := &bridge.Message{ID: "m1", S: "u1", R: "big", T: "t", C: "hello everyone"}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if out := s.Fanout(ctx, "big", m); len(out) != n {
					b.Fatalf("%d stanzas", len(out))
				}
			}
		})
	}
}

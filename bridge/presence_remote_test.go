package bridge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lempgw/lempgw/state"
)

// fakeLocal records pushes; online users are set by the test.
type fakeLocal struct {
	mu     sync.Mutex
	online map[string]bool
	pushes []string // "user frame"
}

func (l *fakeLocal) Online(u string) bool { l.mu.Lock(); defer l.mu.Unlock(); return l.online[u] }
func (l *fakeLocal) Notify(string)        {}
func (l *fakeLocal) Push(u string, frame []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pushes = append(l.pushes, u+" "+string(frame))
}
func (l *fakeLocal) Disconnect(string, string) {}

func (l *fakeLocal) set(u string, on bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.online[u] = on
}

func (l *fakeLocal) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.pushes
	l.pushes = nil
	return p
}

// fakeRemote answers fetches from its fields.
type fakeRemote struct {
	idle    time.Duration
	idleErr error
	pic     string
	picErr  error
	asked   []string // "last|picture asker jid"
	mu      sync.Mutex
}

func (r *fakeRemote) Notify() {}
func (r *fakeRemote) CheckAddress(addr string) error {
	if addr == "bad@" {
		return errors.New("bad")
	}
	return nil
}
func (r *fakeRemote) FetchLast(_ context.Context, asker, jid string) (time.Duration, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked = append(r.asked, "last "+asker+" "+jid)
	return r.idle, r.idleErr
}
func (r *fakeRemote) FetchPicture(_ context.Context, asker, jid string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked = append(r.asked, "picture "+asker+" "+jid)
	return r.pic, r.picErr
}

type presenceRig struct {
	t      *testing.T
	core   *Core
	st     state.Store
	local  *fakeLocal
	remote *fakeRemote
	now    time.Time
	ctx    context.Context
}

func newPresenceRig(t *testing.T) *presenceRig {
	r := &presenceRig{t: t, st: state.NewMemory(), local: &fakeLocal{online: map[string]bool{}},
		remote: &fakeRemote{}, now: time.UnixMilli(1763850000000), ctx: context.Background()}
	core, err := New(Config{Store: r.st, Local: r.local, Now: func() time.Time { return r.now },
		Hash: HashParams{MemoryKiB: 64, Time: 1, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	core.SetRemote(r.remote)
	r.core = core
	for _, u := range []string{"alice", "carol"} {
		if e := core.CreateUser(r.ctx, u, "tok", false); e != nil {
			t.Fatal(e)
		}
	}
	return r
}

// outbound returns the presences queued on OutboundQueue since the last call
// as "type from->to[,to] status", and empties the queue.
func (r *presenceRig) outbound() []string {
	r.t.Helper()
	items, err := r.st.Pending(r.ctx, OutboundQueue, 0, 0)
	if err != nil {
		r.t.Fatal(err)
	}
	var out []string
	for _, it := range items {
		o, err := DecodeOutbound(it.Payload)
		if err != nil {
			r.t.Fatal(err)
		}
		if o.P == nil {
			continue
		}
		to := o.P.R
		if len(o.To) > 0 {
			to = fmt.Sprint(o.To)
		}
		s := fmt.Sprintf("%s %s->%s", o.P.T, o.P.S, to)
		if o.P.Status != "" {
			s += " " + o.P.Status
		}
		out = append(out, s)
		_ = r.st.Remove(r.ctx, OutboundQueue, it.Seq)
	}
	return out
}

func (r *presenceRig) in(p Presence) {
	r.t.Helper()
	if e := r.core.InboundPresence(r.ctx, &p); e != nil {
		r.t.Fatalf("InboundPresence(%+v): %v", p, e)
	}
}

func eq(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

func TestInboundSubscription(t *testing.T) {
	r := newPresenceRig(t)
	const bob = "bob@example.org"
	// Offline alice: subscribed, then her unavailable presence.
	r.in(Presence{T: PresenceSubscribe, S: bob, R: "Alice"})
	eq(t, "answer", r.outbound(), []string{"subscribed alice->" + bob, "unavailable alice->" + bob})
	if fs, _ := r.st.Followers(r.ctx, "alice"); !slices.Equal(fs, []string{bob}) {
		t.Errorf("followers %v", fs)
	}
	// Login: available to bob, and local li pushes as before.
	if e := r.core.SetStatus(r.ctx, "alice", "busy"); e != nil {
		t.Fatal(e)
	}
	r.local.set("alice", true)
	if _, err := r.core.SessionStarted(r.ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	eq(t, "login", r.outbound(), []string{"available alice->[" + bob + "] busy"})
	// Probe from a follower: current presence; from a stranger: unsubscribed.
	r.in(Presence{T: PresenceProbe, S: bob, R: "alice"})
	r.in(Presence{T: PresenceProbe, S: "eve@example.org", R: "alice"})
	eq(t, "probes", r.outbound(), []string{"available alice->" + bob + " busy", "unsubscribed alice->eve@example.org"})
	// Status change while online.
	if e := r.core.SetStatus(r.ctx, "alice", "free"); e != nil {
		t.Fatal(e)
	}
	eq(t, "status", r.outbound(), []string{"available alice->[" + bob + "] free"})
	// Logout.
	r.local.set("alice", false)
	r.core.SessionEnded(r.ctx, "alice")
	eq(t, "logout", r.outbound(), []string{"unavailable alice->[" + bob + "]"})
	// Blocked: a probe gets unavailable, a subscribe unsubscribed.
	if e := r.core.Block(r.ctx, "alice", "BOB@example.org"); e != nil {
		t.Fatal(e)
	}
	r.local.set("alice", true)
	r.in(Presence{T: PresenceProbe, S: bob, R: "alice"})
	r.in(Presence{T: PresenceSubscribe, S: "bob@example.org", R: "alice"})
	eq(t, "blocked", r.outbound(), []string{"unavailable alice->" + bob, "unsubscribed alice->" + bob})
	// Unsubscribe: no longer a follower.
	r.in(Presence{T: PresenceUnsubscribe, S: bob, R: "alice"})
	if fs, _ := r.st.Followers(r.ctx, "alice"); len(fs) != 0 {
		t.Errorf("followers after unsubscribe %v", fs)
	}
	// Unknown user: 404.
	if e := r.core.InboundPresence(r.ctx, &Presence{T: PresenceSubscribe, S: bob, R: "nobody"}); e == nil || e.Code != CodeNotFound {
		t.Errorf("to nobody: %v", e)
	}
}

func TestFollowJabberUserPresence(t *testing.T) {
	r := newPresenceRig(t)
	const bob = "bob@example.org"
	r.local.set("alice", true)
	if e := r.core.Follow(r.ctx, "alice", []state.Following{{User: "Bob@Example.org", Nick: "Bob"}}); e != nil {
		t.Fatal(e)
	}
	eq(t, "af", r.outbound(), []string{"subscribe alice->" + bob})
	if e := r.core.Follow(r.ctx, "alice", []state.Following{{User: "bad@"}}); e == nil || e.Code != CodeBadRequest {
		t.Errorf("bad JID: %v", e)
	}
	// Presence from bob: li once per transition, per resource.
	r.in(Presence{T: PresenceSubscribed, S: bob, R: "alice"})
	r.in(Presence{T: PresenceAvailable, S: bob, Res: "phone", R: "alice", Status: "hi"})
	r.in(Presence{T: PresenceAvailable, S: bob, Res: "laptop", R: "alice"})
	eq(t, "li", r.local.take(), []string{`alice {"i":{"li":"` + bob + `"}}`})
	// Presence to carol, who does not follow bob: nothing.
	r.local.set("carol", true)
	r.in(Presence{T: PresenceAvailable, S: bob, Res: "phone", R: "carol"})
	eq(t, "carol", r.local.take(), nil)

	if _, v, e := r.core.LastOffline(r.ctx, bob); e != nil || v != 0 {
		t.Errorf("state while available: %d, %v", v, e)
	}
	if u, e := r.core.Profile(r.ctx, bob); e != nil || u.Status != "" || u.Name != bob {
		t.Errorf("profile %+v, %v", u, e) // the laptop's presence had no status
	}
	r.in(Presence{T: PresenceUnavailable, S: bob, Res: "phone", R: "alice"})
	eq(t, "one resource left", r.local.take(), nil)
	r.now = r.now.Add(time.Minute)
	r.in(Presence{T: PresenceUnavailable, S: bob, Res: "laptop", R: "alice", Status: "bye"})
	eq(t, "lo", r.local.take(), []string{`alice {"i":{"lo":"` + bob + `"}}`})
	if _, v, e := r.core.LastOffline(r.ctx, bob); e != nil || v != r.now.UnixMilli() {
		t.Errorf("state after unavailable: %d, %v", v, e)
	}
	if u, _ := r.core.Profile(r.ctx, bob); u.Status != "bye" {
		t.Errorf("status %q", u.Status)
	}
	// A probe answer without a stamp says nothing of when: the time stays.
	r.now = r.now.Add(time.Minute)
	r.in(Presence{T: PresenceUnavailable, S: bob, R: "alice"})
	if _, v, _ := r.core.LastOffline(r.ctx, bob); v != r.now.Add(-time.Minute).UnixMilli() {
		t.Errorf("state after a bare unavailable: %d", v)
	}

	// Login: bob is probed; li only for what is known.
	r.in(Presence{T: PresenceAvailable, S: bob, Res: "phone", R: "alice"})
	r.local.take()
	r.outbound()
	online, err := r.core.SessionStarted(r.ctx, "alice")
	if err != nil || !slices.Equal(online, []string{bob}) {
		t.Errorf("SessionStarted = %v, %v", online, err)
	}
	eq(t, "login probes", r.outbound(), []string{"probe alice->[" + bob + "]"})

	// Block: lo now; presence no longer pushed; unblock: li.
	if e := r.core.Block(r.ctx, "alice", bob); e != nil {
		t.Fatal(e)
	}
	eq(t, "block", r.local.take(), []string{`alice {"i":{"lo":"` + bob + `"}}`})
	r.in(Presence{T: PresenceUnavailable, S: bob, Res: "phone", R: "alice"})
	r.in(Presence{T: PresenceAvailable, S: bob, Res: "phone", R: "alice"})
	eq(t, "blocked", r.local.take(), nil)
	if e := r.core.Unblock(r.ctx, "alice", bob); e != nil {
		t.Fatal(e)
	}
	eq(t, "unblock", r.local.take(), []string{`alice {"i":{"li":"` + bob + `"}}`})

	// Link down: lo; link up: probes again.
	r.core.RemoteDown(r.ctx)
	eq(t, "link down", r.local.take(), []string{`alice {"i":{"lo":"` + bob + `"}}`})
	r.core.RemoteUp(r.ctx)
	eq(t, "link up", r.outbound(), []string{"probe alice->[" + bob + "]"})

	// rf: unsubscribe and unsubscribed; bob no longer follows alice either.
	r.in(Presence{T: PresenceSubscribe, S: bob, R: "alice"})
	r.outbound()
	if e := r.core.Unfollow(r.ctx, "alice", []string{"Bob@example.org"}); e != nil {
		t.Fatal(e)
	}
	eq(t, "rf", r.outbound(), []string{"unsubscribe alice->" + bob, "unsubscribed alice->" + bob})
	if fs, _ := r.st.Followers(r.ctx, "alice"); len(fs) != 0 {
		t.Errorf("alice's followers after rf: %v", fs)
	}
	r.in(Presence{T: PresenceAvailable, S: bob, Res: "tablet", R: "alice"})
	eq(t, "after rf", r.local.take(), nil)
}

func TestInboundUnsubscribed(t *testing.T) {
	r := newPresenceRig(t)
	const bob = "bob@example.org"
	r.local.set("alice", true)
	if e := r.core.Follow(r.ctx, "alice", []state.Following{{User: bob}}); e != nil {
		t.Fatal(e)
	}
	r.in(Presence{T: PresenceAvailable, S: bob, Res: "r", R: "alice"})
	r.local.take()
	r.in(Presence{T: PresenceUnsubscribed, S: bob, R: "alice"})
	eq(t, "unsubscribed", r.local.take(), []string{`alice {"i":{"lo":"` + bob + `"}}`})
	if fs, _ := r.st.Followings(r.ctx, "alice"); len(fs) != 0 {
		t.Errorf("followings %v", fs)
	}
}

func TestRemoteStateAndPicture(t *testing.T) {
	r := newPresenceRig(t)
	const bob = "bob@example.org"
	if e := r.core.Follow(r.ctx, "carol", []state.Following{{User: bob}}); e != nil {
		t.Fatal(e)
	}
	// Nothing known: XEP-0012, asked as carol (bob's follower).
	r.remote.idle = 90 * time.Second
	if _, v, e := r.core.LastOffline(r.ctx, bob); e != nil || v != r.now.Add(-90*time.Second).UnixMilli() {
		t.Errorf("state from XEP-0012: %d, %v", v, e)
	}
	eq(t, "asked", r.remote.asked, []string{"last carol " + bob})
	r.remote.idleErr = errors.New("forbidden")
	if _, v, e := r.core.LastOffline(r.ctx, "dave@example.org"); e != nil || v != -1 {
		t.Errorf("refused: %d, %v", v, e)
	}
	r.remote.idleErr = fmt.Errorf("%w: link down", ErrNoAnswer)
	if _, _, e := r.core.LastOffline(r.ctx, "erin@example.org"); e == nil || e.Code != CodeUnavailable {
		t.Errorf("link down: %v", e)
	}

	r.remote.asked = nil
	r.remote.pic = "https://x/y.png"
	for range 2 { // the second comes from the cache
		if u, e := r.core.Profile(r.ctx, bob); e != nil || u.Picture != "https://x/y.png" {
			t.Errorf("picture %+v, %v", u, e)
		}
	}
	eq(t, "picture asked once", r.remote.asked, []string{"picture carol " + bob})
	// A new XEP-0153 hash ends the cache early.
	r.in(Presence{T: PresenceAvailable, S: bob, Res: "r", R: "carol", Photo: "abcd"})
	r.remote.pic = "https://x/z.png"
	if u, _ := r.core.Profile(r.ctx, bob); u.Picture != "https://x/z.png" {
		t.Errorf("picture after a new hash %q", u.Picture)
	}
	r.remote.picErr = fmt.Errorf("%w: link down", ErrNoAnswer)
	if _, e := r.core.Profile(r.ctx, "frank@example.org"); e == nil || e.Code != CodeUnavailable {
		t.Errorf("picture with the link down: %v", e)
	}
	r.remote.picErr = errors.New("item-not-found")
	if u, e := r.core.Profile(r.ctx, "gina@example.org"); e != nil || u.Picture != "" {
		t.Errorf("no vCard: %+v, %v", u, e)
	}
}

func TestJIDsWithoutBridging(t *testing.T) {
	core, err := New(Config{Store: state.NewMemory(), Local: NoSessions{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for name, e := range map[string]*Error{
		"follow":  core.Follow(ctx, "alice", []state.Following{{User: "bob@example.org"}}),
		"block":   core.Block(ctx, "alice", "bob@example.org"),
		"profile": func() *Error { _, e := core.Profile(ctx, "bob@example.org"); return e }(),
		"state":   func() *Error { _, _, e := core.LastOffline(ctx, "bob@example.org"); return e }(),
	} {
		if e == nil || e.Code != CodeUnavailable {
			t.Errorf("%s: %v, want 503", name, e)
		}
	}
}

// Deleting an account tells its Jabber followers (unavailable, unsubscribed)
// and forgets their subscriptions.
func TestDeletedAccountTellsJabberFollowers(t *testing.T) {
	r := newPresenceRig(t)
	const bob, dan = "bob@example.org", "dan@example.net"
	r.in(Presence{T: PresenceSubscribe, S: bob, R: "alice"})
	r.in(Presence{T: PresenceSubscribe, S: dan, R: "alice"})
	r.outbound()
	if e := r.core.DeleteUser(r.ctx, "alice"); e != nil {
		t.Fatal(e)
	}
	eq(t, "delete", r.outbound(), []string{"unavailable alice->[" + bob + " " + dan + "]", "unsubscribed alice->[" + bob + " " + dan + "]"})
	for _, j := range []string{bob, dan} {
		if fs, _ := r.st.Followings(r.ctx, j); len(fs) != 0 {
			t.Errorf("%s still follows %v", j, fs)
		}
	}
}

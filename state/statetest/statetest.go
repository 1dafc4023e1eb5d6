// Package statetest is the conformance suite every state.Store passes.
//
//	func TestMemory(t *testing.T) {
//		statetest.Run(t, func(t *testing.T) state.Store { return state.NewMemory() })
//	}
package statetest

import (
	"errors"
	"reflect"
	"testing"

	"github.com/lempgw/lempgw/state"
)

// Run runs the whole suite against the stores newStore makes. newStore must
// return an isolated, empty store on every call and release it with
// t.Cleanup. The subtests run in parallel.
func Run(t *testing.T, newStore func(t *testing.T) state.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s state.Store)
	}{
		{"Ping", testPing},
		{"UserCreateGet", testUserCreateGet},
		{"UserUpdate", testUserUpdate},
		{"UserUpdateConcurrent", testUserUpdateConcurrent},
		{"UserDelete", testUserDelete},
		{"ListUsers", testListUsers},
		{"Followings", testFollowings},
		{"RenameFollowings", testRenameFollowings},
		{"BlockList", testBlockList},
		{"GroupCreateGet", testGroupCreateGet},
		{"GroupUpdate", testGroupUpdate},
		{"GroupTombstone", testGroupTombstone},
		{"GroupUpdateConcurrent", testGroupUpdateConcurrent},
		{"UserGroups", testUserGroups},
		{"ListGroups", testListGroups},
		{"GroupHistory", testGroupHistory},
		{"DeliverPending", testDeliverPending},
		{"PendingCursor", testPendingCursor},
		{"ItemRoundTrip", testItemRoundTrip},
		{"Dedupe", testDedupe},
		{"DeliverUnlessBlocked", testDeliverUnlessBlocked},
		{"QueueLimit", testQueueLimit},
		{"DedupeExpiry", testDedupeExpiry},
		{"Ack", testAck},
		{"AckReusedID", testAckReusedID},
		{"IndexKeptWhileQueued", testIndexKeptWhileQueued},
		{"IndexExpiry", testIndexExpiry},
		{"Remove", testRemove},
		{"RemoveIndex", testRemoveIndex},
		{"SeqNeverReused", testSeqNeverReused},
		{"DeliverConcurrent", testDeliverConcurrent},
		{"CopyIsolation", testCopyIsolation},
		{"SessionRegistry", testSessionRegistry},
		{"SessionNewRun", testSessionNewRun},
		{"StopNode", testStopNode},
		{"Heartbeat", testHeartbeat},
		{"SessionExpiry", testSessionExpiry},
		{"SessionValidation", testSessionValidation},
		{"SessionRoundTrip", testSessionRoundTrip},
		{"SessionsConcurrent", testSessionsConcurrent},
		{"Wakes", testWakes},
		{"Leases", testLeases},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

func testPing(t *testing.T, s state.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

// ---- helpers ----

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

func wantEqual[T any](t *testing.T, got, want T, what string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %#v\nwant %#v", what, got, want)
	}
}

// wantStrings compares string lists, treating nil and empty alike.
func wantStrings(t *testing.T, got []string, want []string, what string) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	wantEqual(t, got, want, what)
}

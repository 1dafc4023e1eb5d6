// Package state is the gateway's persistent state: users, followings, block
// lists, groups and broadcast lists, and the per-user delivery queues that make
// delivery at-least-once.
//
// Store is the one interface; NewMemory (the embedded default, one node) and
// NewRedis (go-redis v9, Redis 7.0 or later) implement it, and both pass the
// conformance suite in state/statetest.
package state

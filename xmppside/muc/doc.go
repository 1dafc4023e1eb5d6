// Package muc is the XEP-0045 room engine of the gateway's MUC service: every
// LEMP group g is the members-only, non-anonymous, persistent room
// g@<muc_domain>, hosted on a second XEP-0114 component link.
//
// No server-side MUC library exists in Go (mellium's muc package is the
// client side), so the engine is written here. It is pure: no network, no
// goroutines, no store of its own. The caller decodes each inbound stanza
// (Decode), hands it to Service.Handle and writes the stanzas it returns; it
// renders LEMP members' group messages (Service.Fanout) and group events
// (Service.Event) for the room's Jabber occupants. What the gateway knows of
// a room (members, admins, name, picture, history) comes through Backend.
//
// LEMP members are always-present occupants (nick = username); Jabber
// occupants are held in memory and forgotten by Reset when the link drops
// (clients notice with XEP-0410 self-pings and rejoin). docs/muc.md lists
// what is supported, the choices made and the status codes sent.
package muc

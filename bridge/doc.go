// Package bridge is the gateway's routing core. It owns the model (the LEMP
// message, info pushes and coded errors), the services behind every LEMP
// request (login, followings, profiles, blocks, groups, broadcast lists), and
// the router that makes every message durable before it is acknowledged and
// hands it to the side that delivers it.
//
// It defines what it needs from the others as small interfaces: Local (the
// LEMP side's live sessions, implemented by lempside.Hub), Remote (the XMPP
// side, implemented by xmppside) and state.Store. lempside and xmppside import
// bridge; bridge imports neither; cmd/lempgw wires them together.
package bridge

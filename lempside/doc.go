// Package lempside is the LEMP front end: the packet codec (strict JSON and
// the README's relaxed form), the websocket server, one connection per client
// with a read loop, a single writer draining a bounded queue and a delivery
// loop feeding the user's durable queue, and the request handlers that turn
// packets into calls on the bridge core.
package lempside

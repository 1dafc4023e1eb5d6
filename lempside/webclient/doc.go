// Package webclient is the demo LEMP web client that the gateway serves at
// "/" on its LEMP listener, beside the websocket at lemp.path (same origin;
// a non-empty lemp.allowed_origins must list it): plain HTML, CSS and two JavaScript
// files embedded in the binary, with no build step. The page logs in, follows
// LEMP users and Jabber JIDs, shows who is online (li/lo), chats 1:1 and in
// groups with sent/delivered/read marks (sr, dm, nm), sets the user's status
// and picture, reconnects, and shows the errors the server sends. It speaks
// the dialect of docs/protocol.md and nothing else.
//
// static/lemp.js is the protocol client (requests matched by id, the
// outgoing message queue that is sent again after a reconnect, receipts);
// static/app.js is the user interface.
package webclient

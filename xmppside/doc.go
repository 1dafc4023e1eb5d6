// Package xmppside is the gateway's XMPP side: an XEP-0114 external component
// of an existing ejabberd or Prosody. One supervised stream per component
// domain (redialled with backoff, kept alive with XEP-0199 pings), one
// handler that reads each stanza once and never returns an error to the
// stream, bounded workers sharded by sender so order holds per conversation,
// and a sender that drains the durable outbound queue in order, removing a
// stanza only once a barrier ping proves the server read it.
//
// It bridges chat messages and receipts, presence and subscriptions
// (inbound presence goes to bridge.Core.InboundPresence; what the core
// queues as bridge.OutboundItem presence is sent like messages), answers
// ping, time, disco#info, vcard-temp and XEP-0012 last activity for the
// component and its users, and asks Jabber users' servers for their vCard
// and last activity on the core's behalf (bridge.Remote's Fetch methods).
// docs/mapping.md is the table as built.
package xmppside

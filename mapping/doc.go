// Package mapping translates between the gateway's LEMP model (package
// bridge) and XMPP: addresses (LEMP usernames and Jabber bare JIDs <-> JIDs,
// with XEP-0106 escaping), 1:1 chat messages and their receipts (LEMP `m`
// objects <-> <message/> stanzas), and errors (LEMP codes <-> stanza error
// conditions).
//
// The package is pure: no I/O, no goroutines, no clock (callers pass the
// current time in). Everything that reads remote input (UnescapeLocal,
// ParseAddress, FromStanza) returns an error for bad input and never panics;
// each has a fuzz target.
//
// # Messages
//
// The rows of the project's mapping table (shared/mapping.md) implemented here:
//
//	LEMP                         XMPP
//	t "t", c text                <message type="chat" id=ID><body>text</body><origin-id id=ID/>
//	t "p"/"v"/"a", c URL         <body>URL</body> + XEP-0066 <x xmlns="jabber:x:oob"><url>URL</url></x>
//	t "l", c "lat,lon"           XEP-0080 <geoloc><lat/><lon/></geoloc> + <body>geo:lat,lon</body>
//	st (queued delivery)         XEP-0203 <delay stamp=... from=component domain/>
//	p "0"                        XEP-0334 <no-store/>
//	pc "1" (or absent)           XEP-0184 <request/> + XEP-0333 <markable/>
//	dm {id}                      XEP-0184 <received id=.../> (inbound: also XEP-0333 <received/>)
//	nm {id}                      XEP-0333 <displayed id=.../> (inbound: also <acknowledged/>)
//
// Message.UnmarshalXML reads a stanza's <error/> leniently (a by attribute
// mellium's JID parser rejects is dropped instead of failing the stanza).
//
// Groups (MUC) are not mapped here yet: FromStanza reports groupchat
// messages as KindIgnorable.
package mapping

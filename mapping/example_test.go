package mapping_test

import (
	"encoding/xml"
	"fmt"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/lempgw/lempgw/bridge"
	"github.com/lempgw/lempgw/mapping"
)

// A LEMP text message from local user alice to the Jabber user
// bob@example.org becomes a chat stanza.
func ExampleToStanza() {
	addr := mapping.Addresser{Domain: "lemp.example.org", Resource: "lemp"}
	m := &bridge.Message{ID: "m1", S: "alice", R: "bob@example.org", T: "t", C: "Hello, Bob!", P: "1", PC: "1"}

	from, _ := addr.LocalJID(m.S)
	to, _ := mapping.ParseAddress(m.R)
	b, _ := xml.MarshalIndent(mapping.ToStanza(m, from, to, false), "", "  ")
	fmt.Println(string(b))
	// Output:
	// <message id="m1" from="alice@lemp.example.org/lemp" to="bob@example.org" type="chat">
	//   <body>Hello, Bob!</body>
	//   <origin-id xmlns="urn:xmpp:sid:0" id="m1"></origin-id>
	//   <request xmlns="urn:xmpp:receipts"></request>
	//   <markable xmlns="urn:xmpp:chat-markers:0"></markable>
	// </message>
}

// A stanza from a Jabber user, as the server delivers it to the component,
// becomes a LEMP message.
func ExampleFromStanza() {
	raw := `<message xmlns="jabber:component:accept" from="bob@example.org/phone"
	  to="alice@lemp.example.org" type="chat" id="b1">
	  <body>https://up.example.org/u/cat.jpg</body>
	  <x xmlns="jabber:x:oob"><url>https://up.example.org/u/cat.jpg</url></x>
	  <request xmlns="urn:xmpp:receipts"/>
	  <active xmlns="http://jabber.org/protocol/chatstates"/>
	  <delay xmlns="urn:xmpp:delay" from="example.org" stamp="2025-11-22T21:00:00Z"/>
	</message>`
	var s mapping.Message
	if err := xml.Unmarshal([]byte(raw), &s); err != nil {
		fmt.Println(err)
		return
	}
	m, kind, err := mapping.FromStanza(&s, time.UnixMilli(1763850000000))
	if err != nil {
		fmt.Println(err)
		return
	}
	addr := mapping.Addresser{Domain: "lemp.example.org", Resource: "lemp"}
	m.S, _, _ = addr.FromJID(jid.MustParse(s.From))
	m.R, _, _ = addr.FromJID(jid.MustParse(s.To))
	fmt.Println(kind)
	fmt.Println(string(bridge.Frame{M: m}.Encode()))
	// Output:
	// chat
	// {"m":{"id":"b1","s":"bob@example.org","r":"alice","t":"p","c":"https://up.example.org/u/cat.jpg","st":1763845200000,"p":"1","pc":"1"}}
}

func ExampleEscapeLocal() {
	fmt.Println(mapping.EscapeLocal("d'artagnan"))
	fmt.Println(mapping.EscapeLocal(`c:\net`))
	fmt.Println(mapping.UnescapeLocal(`at\26t\20guy`))
	_, err := mapping.UnescapeLocal(`a\2Fb`)
	fmt.Println(err)
	// Output:
	// d\27artagnan
	// c\3a\net
	// at&t guy <nil>
	// invalid XEP-0106 escaped localpart: escape sequence "\\2F" at byte 1 is not in lower case
}

func ExampleAddresser_FromJID() {
	addr := mapping.Addresser{Domain: "lemp.example.org", Resource: "lemp"}
	for _, s := range []string{`d\27artagnan@lemp.example.org/lemp`, "Bob@Example.org/phone", "example.org"} {
		fmt.Println(addr.FromJID(jid.MustParse(s)))
	}
	// Output:
	// d'artagnan true <nil>
	// bob@example.org false <nil>
	//  false bad address: example.org has no localpart: not a user address
}

func ExampleErrorFor() {
	typ, cond := mapping.ErrorFor(bridge.CodeNotFound)
	fmt.Println(typ, cond)
	fmt.Println(mapping.CodeFor("remote-server-not-found"))
	// Output:
	// cancel item-not-found
	// 404
}

package main

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
)

// Namespaces the bench reads and writes.
const (
	nsReceipts        = "urn:xmpp:receipts"
	nsStanzas         = "urn:ietf:params:xml:ns:xmpp-stanzas"
	nsRegister        = "jabber:iq:register"
	nsRegisterFeature = "http://jabber.org/features/iq-register"
)

// maxStanzaTokens bounds how many tokens parseStanza reads from one stanza:
// the bench's stanzas have a dozen; a server never sends it thousands.
const maxStanzaTokens = 10_000

// stanzaInfo is what the bench needs from a stanza it received.
type stanzaInfo struct {
	Name      string // message, presence or iq
	ID        string
	From      string
	Type      string
	Body      bool   // a <body> child
	Request   bool   // an XEP-0184 <request/>
	Received  string // the id of an XEP-0184 <received/>
	ErrorCond string // the defined condition of an <error/> child
}

var errStanzaTooLong = errors.New("stanza has too many tokens")

// parseStanza reads the stanza that start opened from r (its children and
// its end element, as mellium hands them to a handler, or the rest of a
// document) and returns the fields the bench uses. It reads nothing past
// the stanza's end element.
func parseStanza(start xml.StartElement, r xml.TokenReader) (stanzaInfo, error) {
	st := stanzaInfo{Name: start.Name.Local}
	for _, a := range start.Attr {
		if a.Name.Space != "" {
			continue
		}
		switch a.Name.Local {
		case "id":
			st.ID = a.Value
		case "from":
			st.From = a.Value
		case "type":
			st.Type = a.Value
		}
	}
	depth := 1
	inError := false
	for n := 0; depth > 0; n++ {
		if n >= maxStanzaTokens {
			return st, errStanzaTooLong
		}
		tok, err := r.Token()
		if errors.Is(err, io.EOF) {
			if tok == nil {
				return st, fmt.Errorf("<%s> ends before its end element: %w", st.Name, io.ErrUnexpectedEOF)
			}
			err = nil
		}
		if err != nil {
			return st, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case depth == 2 && t.Name.Local == "body":
				st.Body = true
			case depth == 2 && t.Name.Space == nsReceipts && t.Name.Local == "request":
				st.Request = true
			case depth == 2 && t.Name.Space == nsReceipts && t.Name.Local == "received":
				for _, a := range t.Attr {
					if a.Name.Space == "" && a.Name.Local == "id" {
						st.Received = a.Value
					}
				}
			case depth == 2 && t.Name.Local == "error":
				inError = true
			case depth == 3 && inError && t.Name.Space == nsStanzas && t.Name.Local != "text":
				st.ErrorCond = t.Name.Local
			}
		case xml.EndElement:
			depth--
			if depth == 1 {
				inError = false
			}
		}
	}
	return st, nil
}

// errUserExists is a registration refused because the account exists.
var errUserExists = errors.New("account exists")

// parseRegisterResult reads the answer to an XEP-0077 registration (an iq
// whose start element is start) from r: nil for a result, errUserExists for
// a conflict, another error for anything else.
func parseRegisterResult(start xml.StartElement, r xml.TokenReader) error {
	if start.Name.Local != "iq" {
		return fmt.Errorf("registration: got <%s>, want the iq answer", start.Name.Local)
	}
	st, err := parseStanza(start, r)
	if err != nil {
		return fmt.Errorf("registration answer: %w", err)
	}
	switch {
	case st.Type == "result":
		return nil
	case st.Type == "error" && st.ErrorCond == "conflict":
		return errUserExists
	case st.Type == "error":
		if st.ErrorCond == "" {
			st.ErrorCond = "no condition"
		}
		return fmt.Errorf("registration refused: %s", st.ErrorCond)
	}
	return fmt.Errorf("registration answer of type %q", st.Type)
}

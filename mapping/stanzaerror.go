package mapping

import (
	"encoding/xml"

	"mellium.im/xmpp/jid"

	"mellium.im/xmpp/stanza"
)

// errorElement decodes the <error/> of an error stanza (RFC 6120 8.3)
// leniently: mellium's stanza.Error refuses the whole stanza when its by
// attribute is a JID mellium's parser rejects (one that a server accepted);
// here such a by is dropped. Message.UnmarshalXML uses it.
type errorElement struct {
	Type      stanza.ErrorType
	Condition stanza.Condition
	By        string
	Text      map[string]string
}

// stanzaError returns e as a stanza.Error, By dropped when it is no valid JID.
func (e *errorElement) stanzaError() stanza.Error {
	se := stanza.Error{Type: e.Type, Condition: e.Condition, Text: e.Text}
	if e.By != "" {
		if j, err := jid.Parse(e.By); err == nil {
			se.By = j
		}
	}
	return se
}

// UnmarshalXML reads the type and by attributes, the first defined condition
// and the texts; other children (application conditions) are skipped.
func (e *errorElement) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	var raw struct {
		Type     string `xml:"type,attr"`
		By       string `xml:"by,attr"`
		Children []struct {
			XMLName xml.Name
			Lang    string `xml:"http://www.w3.org/XML/1998/namespace lang,attr"`
			Text    string `xml:",chardata"`
		} `xml:",any"`
	}
	if err := d.DecodeElement(&raw, &start); err != nil {
		return err
	}
	*e = errorElement{Type: stanza.ErrorType(raw.Type), By: raw.By}
	for _, c := range raw.Children {
		if c.XMLName.Space != stanza.NSError {
			continue
		}
		switch {
		case c.XMLName.Local == "text":
			if c.Text == "" {
				continue
			}
			if e.Text == nil {
				e.Text = make(map[string]string)
			}
			if _, dup := e.Text[c.Lang]; !dup {
				e.Text[c.Lang] = c.Text
			}
		case e.Condition == "":
			e.Condition = stanza.Condition(c.XMLName.Local)
		}
	}
	return nil
}

// UnmarshalXML decodes a message stanza like encoding/xml would from the
// struct tags, except that its <error/> is read leniently (errorElement).
func (m *Message) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	type Fields Message // the same fields, without this method; exported, or encoding/xml cannot set them
	var w struct {
		Fields
		Err *errorElement `xml:"error"` // shallower: shadows Fields.Error
	}
	if err := d.DecodeElement(&w, &start); err != nil {
		return err
	}
	*m = Message(w.Fields)
	m.XMLName = start.Name
	if w.Err != nil {
		se := w.Err.stanzaError()
		m.Error = &se
	}
	return nil
}

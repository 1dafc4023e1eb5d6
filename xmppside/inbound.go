package xmppside

import (
	"context"
	"encoding/xml"
	"strings"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/lempgw/lempgw/bridge"
	"github.com/lempgw/lempgw/mapping"
)

// handler reads each stanza once. It never returns an error: any error
// returned to mellium's Serve would end the component stream. Messages go to
// the sender's worker; IQ get/set are answered here (mellium would otherwise
// answer them itself, without the from that ejabberd requires).
type handler struct{ c *Component }

func (h handler) HandleXMPP(t xmlstream.TokenReadEncoder, start *xml.StartElement) (err error) {
	c := h.c
	defer func() {
		if r := recover(); r != nil {
			c.metrics.panics.Inc()
			c.log.Error("panic reading stanza", "panic", r, "stanza", start.Name.Local)
			err = nil
		}
	}()
	c.metrics.stanzasIn.WithLabelValues(start.Name.Local).Inc()
	// The reader starts after the start element: put it back in front.
	d := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), t))
	switch start.Name.Local {
	case "message":
		var m mapping.Message
		if err := d.Decode(&m); err != nil {
			c.drop("malformed message", err)
			return nil
		}
		c.dispatch(bareOf(m.From), func(ctx context.Context) { c.inboundMessage(ctx, &m) })
	case "iq":
		var iq iqIn
		if err := d.Decode(&iq); err != nil {
			c.drop("malformed iq", err)
			// Still answer a get/set, or mellium answers without a from.
			iq = iqIn{ID: attr(start, "id"), From: attr(start, "from"), To: attr(start, "to"), Type: attr(start, "type")}
			if iq.Type == "get" || iq.Type == "set" {
				_ = t.Encode(iq.fail(stanza.Modify, stanza.BadRequest))
			}
			return nil
		}
		if iq.Type == "get" || iq.Type == "set" {
			if err := t.Encode(c.answerIQ(&iq)); err != nil {
				c.log.Warn("answering iq", "err", err)
			}
		}
	case "presence":
		// Presence and subscriptions are not bridged yet: read and ignored.
		c.metrics.dropped.WithLabelValues("presence").Inc()
	default:
		c.drop("unknown stanza "+start.Name.Local, nil)
	}
	return nil
}

func attr(start *xml.StartElement, name string) string {
	for _, a := range start.Attr {
		if a.Name.Local == name && a.Name.Space == "" {
			return a.Value
		}
	}
	return ""
}

func (c *Component) drop(why string, err error) {
	c.metrics.dropped.WithLabelValues(strings.Fields(why)[0]).Inc()
	c.log.Debug("stanza dropped", "why", why, "err", err)
}

// bareOf returns the bare part of a JID string without parsing it.
func bareOf(s string) string {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[:i]
	}
	return s
}

// answerIQ answers an IQ get or set addressed to the component or a user.
func (c *Component) answerIQ(iq *iqIn) iqOut {
	toUser := strings.Contains(bareOf(iq.To), "@")
	ns, local := iq.Payload.XMLName.Space, iq.Payload.XMLName.Local
	if toUser {
		user, err := c.localUser(iq.To)
		if err != nil {
			return iq.fail(stanza.Modify, stanza.JIDMalformed)
		}
		ctx, cancel := context.WithTimeout(context.Background(), iqTimeout)
		defer cancel()
		if _, e := c.core.Profile(ctx, user); e != nil {
			return iq.fail(mapping.ErrorFor(e.Code))
		}
	}
	switch {
	case iq.Type != "get":
	case ns == nsPing && local == "ping":
		return iq.result(nil)
	case ns == nsTime && local == "time":
		return iq.result(entityTime(c.now()))
	case ns == nsDiscoInfo && toUser:
		return iq.result(userInfo())
	case ns == nsDiscoInfo:
		return iq.result(componentInfo())
	case ns == nsDiscoItem:
		return iq.result(discoItems{})
	case ns == "jabber:iq:version" && !toUser:
		return iq.result(versionResult{Name: "lempgw", Version: "dev"})
	}
	return iq.fail(stanza.Cancel, stanza.ServiceUnavailable)
}

// localUser returns the LEMP username a JID of the component domain names.
func (c *Component) localUser(s string) (string, error) {
	j, err := jid.Parse(s)
	if err != nil {
		return "", err
	}
	addr, local, err := c.addr.FromJID(j)
	if err != nil {
		return "", err
	}
	if !local {
		return "", errNotLocal
	}
	return addr, nil
}

var errNotLocal = xmlError("not a user of this gateway")

// iqTimeout bounds the store lookup behind an IQ answer (it blocks the stream).
const iqTimeout = 2 * time.Second

type xmlError string

func (e xmlError) Error() string { return string(e) }

// inboundMessage routes one message from a Jabber user to a LEMP user.
func (c *Component) inboundMessage(ctx context.Context, m *mapping.Message) {
	if m.Type == "error" {
		c.bounced(ctx, m)
		return
	}
	user, err := c.localUser(m.To)
	if err != nil {
		c.replyError(ctx, m, stanza.Error{Type: stanza.Modify, Condition: stanza.JIDMalformed})
		return
	}
	from, err := jid.Parse(m.From)
	if err != nil {
		c.drop("message from malformed JID", err)
		return
	}
	lm, kind, err := mapping.FromStanza(m, c.now())
	if err != nil {
		c.replyError(ctx, m, stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest})
		return
	}
	if kind == mapping.KindIgnorable {
		return
	}
	lm.S, lm.R = from.Bare().String(), user
	if e := c.core.Inbound(ctx, lm); e != nil {
		c.replyError(ctx, m, mapping.StanzaError(e))
		return
	}
	c.metrics.messages.WithLabelValues("xmpp-lemp").Inc()
}

// bounced turns the server's error answer to one of our messages into a
// LEMP message error for its sender.
func (c *Component) bounced(ctx context.Context, m *mapping.Message) {
	user, err := c.localUser(m.To)
	if err != nil || m.ID == "" {
		c.drop("error stanza", err)
		return
	}
	code := bridge.CodeUnavailable
	if m.Error != nil {
		code = mapping.CodeFor(m.Error.Condition)
	}
	if e := c.core.Bounce(ctx, user, m.ID, bareOf(m.From), &bridge.Error{Code: code, Desc: "the Jabber server refused the message"}); e != nil {
		c.log.Warn("bouncing message error", "user", user, "err", e)
	}
}

// replyError answers a message with a stanza error (never an error with an error).
func (c *Component) replyError(ctx context.Context, m *mapping.Message, se stanza.Error) {
	c.metrics.errorsOut.WithLabelValues(string(se.Condition)).Inc()
	sess, _, err := c.link.up(ctx)
	if err != nil {
		return
	}
	reply := mapping.Message{ID: m.ID, From: m.To, To: m.From, Type: "error", Error: &se}
	if err := sess.Encode(ctx, reply); err != nil {
		c.log.Warn("sending stanza error", "err", err)
	}
}

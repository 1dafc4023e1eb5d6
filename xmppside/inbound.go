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
	"github.com/lempgw/lempgw/state"
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
		if m.Type == "groupchat" || c.srooms.known(bareOf(m.From)) {
			c.dispatch(bareOf(m.From), func(ctx context.Context) { c.serverRoomInbound(ctx, &m) })
			return nil
		}
		c.dispatch(bareOf(m.From), func(ctx context.Context) { c.inboundMessage(ctx, &m) })
	case "iq":
		if id, typ := attr(start, "id"), attr(start, "type"); strings.HasPrefix(id, queryPrefix) && (typ == "result" || typ == "error") {
			var a iqAnswer
			err := d.Decode(&a)
			c.queries.resolve(id, queryAnswer{a: a, err: err})
			return nil
		}
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
		if (iq.Type == "result" || iq.Type == "error") && c.barrier.resolve(iq.ID, iq.Type) {
			return nil
		}
		if iq.Type == "get" || iq.Type == "set" {
			if err := t.Encode(c.answerIQ(&iq)); err != nil {
				c.log.Warn("answering iq", "err", err)
			}
		}
	case "presence":
		if c.srooms.known(bareOf(attr(start, "from"))) {
			var p roomPresence
			if err := d.Decode(&p); err != nil {
				c.drop("malformed presence", err)
				return nil
			}
			c.dispatch(bareOf(p.From), func(ctx context.Context) { c.serverRoomPresence(ctx, &p) })
			return nil
		}
		var p mapping.Presence
		if err := d.Decode(&p); err != nil {
			c.drop("malformed presence", err)
			return nil
		}
		c.dispatch(bareOf(p.From), func(ctx context.Context) { c.inboundPresence(ctx, &p) })
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
	var u state.User
	ctx, cancel := context.WithTimeout(context.Background(), iqTimeout)
	defer cancel()
	if toUser {
		user, err := c.localUser(iq.To)
		if err != nil {
			return iq.fail(stanza.Modify, stanza.JIDMalformed)
		}
		var e *bridge.Error
		if u, e = c.core.Profile(ctx, user); e != nil {
			return iq.fail(mapping.ErrorFor(e.Code))
		}
	}
	switch {
	case iq.Type != "get":
		if toUser && ns == nsVCard {
			return iq.fail(stanza.Cancel, stanza.NotAllowed) // only the user sets its picture, over LEMP
		}
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
	case ns == nsLast && local == "query" && toUser:
		return c.lastActivity(ctx, iq, u.Name)
	case ns == nsVCard && local == "vCard" && toUser:
		return iq.result(mapping.VCardFor(u.Name, u.Picture))
	}
	return iq.fail(stanza.Cancel, stanza.ServiceUnavailable)
}

// lastActivity answers XEP-0012 for a LEMP user: seconds since its last
// logout, 0 while online; forbidden to a JID the user blocked.
func (c *Component) lastActivity(ctx context.Context, iq *iqIn, user string) iqOut {
	if from, _, err := remoteAddr(iq.From); err == nil {
		if blocked, e := c.core.Blocks(ctx, user, from); e != nil {
			return iq.fail(mapping.ErrorFor(e.Code))
		} else if blocked {
			return iq.fail(stanza.Auth, stanza.Forbidden)
		}
	}
	_, v, e := c.core.LastOffline(ctx, user)
	if e != nil {
		return iq.fail(mapping.ErrorFor(e.Code))
	}
	q, ok := mapping.LastActivityFor(v, c.now())
	if !ok {
		return iq.fail(stanza.Cancel, stanza.ItemNotFound)
	}
	return iq.result(q)
}

// localUser returns the LEMP username a JID of the component domain names
// (its resource, if any, is ignored). The JID is parsed leniently, as
// mapping.ParseAddress does: a localpart the server let through but PRECIS
// refuses still names a user (who may not exist).
func (c *Component) localUser(s string) (string, error) {
	b := bareOf(s)
	var j jid.JID
	var err error
	if strings.Contains(b, "@") {
		j, err = mapping.ParseAddress(b)
	} else {
		j, err = jid.Parse(b)
	}
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
	from, _, err := remoteAddr(m.From)
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
	lm.S, lm.R = from, user
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
	if !c.sent.take(user, strings.ToLower(bareOf(m.From)), m.ID) {
		// Not the answer to a message we sent (recently): a Jabber user can
		// not make up errors for LEMP users.
		c.drop("error stanza not about a message we sent", nil)
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
	c.sendNow(ctx, mapping.ErrorReply(m, se))
}

// sendNow writes v (an answer that need not be durable) on the live
// stream, waiting for one until ctx ends.
func (c *Component) sendNow(ctx context.Context, v any) {
	sess, _, err := c.link.up(ctx)
	if err != nil {
		return
	}
	// Without the context's end: mellium would turn it into a write
	// deadline in the past, which can fail another goroutine's write.
	if err := sess.Encode(context.WithoutCancel(ctx), v); err != nil {
		c.log.Warn("sending a stanza", "err", err)
	}
}

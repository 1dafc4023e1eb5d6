package xmppside

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"mellium.im/xmpp/stanza"

	"github.com/lempgw/lempgw/bridge"
	"github.com/lempgw/lempgw/mapping"
)

// remoteAddr splits the address of a Jabber user (from a stanza the server
// routed to us) into its bare JID, in canonical form, and its resource. The
// bare JID is parsed leniently (mapping.ParseAddress): a localpart PRECIS
// refuses but the server accepted is kept.
func remoteAddr(s string) (bare, resource string, err error) {
	b, res, _ := strings.Cut(s, "/")
	j, err := mapping.ParseAddress(b)
	if err != nil {
		return "", "", err
	}
	return j.String(), res, nil
}

// subscriptionish reports whether a presence of type t expects an answer
// (a subscription request or a probe): those to an unknown user are
// answered, the rest is dropped.
func subscriptionish(t string) bool {
	return t == "subscribe" || t == "probe"
}

// inboundPresence routes one presence from a Jabber user to the core.
func (c *Component) inboundPresence(ctx context.Context, p *mapping.Presence) {
	if p.Type == "error" {
		// An answer to one of our presences (a subscription request to a
		// JID that does not exist, say): nothing to tell a LEMP user.
		c.drop("presence error", nil)
		return
	}
	user, err := c.localUser(p.To)
	if err != nil {
		if subscriptionish(p.Type) && strings.Contains(bareOf(p.To), "@") {
			c.replyPresenceError(ctx, p, stanza.Error{Type: stanza.Modify, Condition: stanza.JIDMalformed})
			return
		}
		c.drop("presence to a JID that is no user", err)
		return
	}
	from, res, err := remoteAddr(p.From)
	if err != nil {
		c.drop("presence from malformed JID", err)
		return
	}
	bp, err := mapping.FromPresence(p, c.now())
	if err != nil {
		c.replyPresenceError(ctx, p, stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest})
		return
	}
	bp.S, bp.Res, bp.R = from, res, user
	if e := c.core.InboundPresence(ctx, bp); e != nil {
		switch {
		case e.Code == bridge.CodeNotFound && subscriptionish(p.Type):
			// RFC 6121 3.1.3 and 4.3.2: no such contact.
			c.sendNow(ctx, mapping.Presence{ID: p.ID, From: bareOf(p.To), To: from, Type: "unsubscribed"})
		case e.Code == bridge.CodeNotFound:
			c.drop("presence to unknown user", nil)
		default:
			c.log.Warn("inbound presence", "from", from, "to", user, "type", bp.T, "err", e)
		}
		return
	}
	c.metrics.presence.WithLabelValues("xmpp-lemp", string(bp.T)).Inc()
}

// replyPresenceError answers a presence with a stanza error.
func (c *Component) replyPresenceError(ctx context.Context, p *mapping.Presence, se stanza.Error) {
	c.metrics.errorsOut.WithLabelValues(string(se.Condition)).Inc()
	c.sendNow(ctx, mapping.PresenceErrorReply(p, se))
}

// FetchLast asks jid's server for its XEP-0012 last activity (bridge.Remote).
func (c *Component) FetchLast(ctx context.Context, asker, to string) (time.Duration, error) {
	var a iqAnswer
	if err := c.ask(ctx, asker, to, nsLast, "query", &a); err != nil {
		return 0, err
	}
	return mapping.IdleOf(a.Last)
}

// FetchPicture fetches jid's vcard-temp and returns its PHOTO as a LEMP
// picture value (bridge.Remote).
func (c *Component) FetchPicture(ctx context.Context, asker, to string) (string, error) {
	var a iqAnswer
	if err := c.ask(ctx, asker, to, nsVCard, "vCard", &a); err != nil {
		return "", err
	}
	if a.VCard == nil {
		return "", nil // an empty result: no vCard
	}
	return mapping.PictureOf(a.VCard)
}

// iqAnswer is the result (or error) of a query we asked.
type iqAnswer struct {
	XMLName xml.Name
	Type    string                `xml:"type,attr"`
	Last    *mapping.LastActivity `xml:"jabber:iq:last query"`
	VCard   *mapping.VCard        `xml:"vcard-temp vCard"`
	Error   *struct {
		Type string `xml:"type,attr"`
		Cond []struct {
			XMLName xml.Name
		} `xml:",any"`
	} `xml:"error"`
}

// errRefused is wrapped by the error of a query the Jabber side answered
// with an error.
var errRefused = errors.New("the Jabber side refused the query")

// ask sends an IQ get with an empty <local xmlns=ns/> from asker's bare JID
// (or the component) to a Jabber bare JID, and decodes the answer into a.
// It does not wait for a link that is down; errors that mean nobody
// answered wrap bridge.ErrNoAnswer.
//
// The answer is matched by id in the stanza handler (queries), not with
// mellium's SendIQ: mellium turns the end of a send's context into a write
// deadline in the past, briefly, when the context ends soon after the write,
// and that can fail a concurrent write of the outbound sender.
func (c *Component) ask(ctx context.Context, asker, to, ns, local string, a *iqAnswer) error {
	sess := c.link.current()
	if sess == nil {
		return fmt.Errorf("%w: the component link is down", bridge.ErrNoAnswer)
	}
	toJID, err := mapping.ParseAddress(to)
	if err != nil {
		return err
	}
	from := c.link.domain
	if asker != "" {
		if j, err := c.addr.LocalBareJID(asker); err == nil {
			from = j
		}
	}
	id, ch := c.queries.add()
	defer c.queries.forget(id)
	iq := iqOut{ID: id, From: from.String(), To: toJID.String(), Type: "get",
		Payload: struct{ XMLName xml.Name }{xml.Name{Space: ns, Local: local}}}
	wrote := make(chan error, 1)
	go func() { wrote <- sess.Encode(context.WithoutCancel(ctx), iq) }()
	var ans queryAnswer
	select {
	case err := <-wrote:
		if err != nil {
			c.metrics.queries.WithLabelValues(local, "no-answer").Inc()
			return fmt.Errorf("%w: %v", bridge.ErrNoAnswer, err)
		}
		select {
		case ans = <-ch:
		case <-ctx.Done():
			c.metrics.queries.WithLabelValues(local, "no-answer").Inc()
			return fmt.Errorf("%w: %v", bridge.ErrNoAnswer, ctx.Err())
		}
	case ans = <-ch:
	case <-ctx.Done():
		c.metrics.queries.WithLabelValues(local, "no-answer").Inc()
		return fmt.Errorf("%w: %v", bridge.ErrNoAnswer, ctx.Err())
	}
	if ans.err != nil {
		c.metrics.queries.WithLabelValues(local, "malformed").Inc()
		return fmt.Errorf("%w: malformed answer: %v", errRefused, ans.err)
	}
	*a = ans.a
	if a.Type != "result" {
		cond := "none"
		if a.Error != nil && len(a.Error.Cond) > 0 {
			cond = a.Error.Cond[0].XMLName.Local
		}
		c.metrics.queries.WithLabelValues(local, "error").Inc()
		return fmt.Errorf("%w: %s", errRefused, cond)
	}
	c.metrics.queries.WithLabelValues(local, "result").Inc()
	return nil
}

// queryPrefix marks the ids of the IQs ask sends.
const queryPrefix = "lgw-q-"

type queryAnswer struct {
	a   iqAnswer
	err error
}

// queries matches answers to the IQs ask sent, by id.
type queries struct {
	mu      sync.Mutex
	next    uint64
	waiting map[string]chan queryAnswer
}

func (q *queries) add() (string, chan queryAnswer) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.waiting == nil {
		q.waiting = map[string]chan queryAnswer{}
	}
	q.next++
	id := queryPrefix + newID() + "-" + strconv.FormatUint(q.next, 10)
	ch := make(chan queryAnswer, 1)
	q.waiting[id] = ch
	return id, ch
}

func (q *queries) forget(id string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.waiting, id)
}

// resolve hands an answer to the asker waiting for id, if any.
func (q *queries) resolve(id string, ans queryAnswer) {
	q.mu.Lock()
	ch, ok := q.waiting[id]
	delete(q.waiting, id)
	q.mu.Unlock()
	if ok {
		ch <- ans
	}
}

// sentIDs remembers the ids of the last messages sent to Jabber users, so
// that an error stanza is only bounced to the LEMP user when it answers one
// of them (a Jabber user can not make up errors for LEMP users).
type sentIDs struct {
	mu   sync.Mutex
	set  map[string]struct{}
	ring []string
	next int
}

const sentIDsKept = 1 << 14

func sentKey(user, to, id string) string { return user + "\x00" + to + "\x00" + id }

func (s *sentIDs) add(user, to, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.set == nil {
		s.set = make(map[string]struct{}, sentIDsKept)
		s.ring = make([]string, sentIDsKept)
	}
	k := sentKey(user, to, id)
	if _, ok := s.set[k]; ok {
		return
	}
	if old := s.ring[s.next]; old != "" {
		delete(s.set, old)
	}
	s.ring[s.next] = k
	s.next = (s.next + 1) % len(s.ring)
	s.set[k] = struct{}{}
}

// take reports whether (user, to, id) was sent and forgets it.
func (s *sentIDs) take(user, to, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := sentKey(user, to, id)
	_, ok := s.set[k]
	delete(s.set, k)
	return ok
}

// linkWatch turns the link's up/down changes (reported under the link's
// lock) into calls of the core's RemoteUp and RemoteDown, in order, on a
// goroutine of their own.
type linkWatch struct {
	mu   sync.Mutex
	up   bool
	gen  uint64 // sessions that came up
	wake chan struct{}
}

func (w *linkWatch) changed(up bool) {
	w.mu.Lock()
	w.up = up
	if up {
		w.gen++
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (c *Component) watchLink(ctx context.Context) {
	var seen uint64
	var up bool
	for {
		select {
		case <-c.lw.wake:
		case <-ctx.Done():
			return
		}
		c.lw.mu.Lock()
		nowUp, gen := c.lw.up, c.lw.gen
		c.lw.mu.Unlock()
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		if up && (!nowUp || gen != seen) {
			c.srooms.mu.Lock()
			c.srooms.downSince = c.now()
			c.srooms.mu.Unlock()
			c.core.RemoteDown(wctx)
			up = false
		}
		if nowUp && gen != seen {
			c.core.RemoteUp(wctx)
			c.joinAll(wctx)
			up, seen = true, gen
		}
		cancel()
	}
}

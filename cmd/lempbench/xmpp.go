package main

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/ping"
)

// xclient is one Jabber user's c2s session (mellium), with an available
// presence once started.
type xclient struct {
	sess *xmpp.Session
	bare string        // user@domain
	done chan struct{} // closed when Serve returns (start was called)
	once sync.Once
}

func passwordFor(name string) string { return name + "-bench-pw" }

// dialXMPP connects to the c2s port addr of domain and logs user in with
// SASL PLAIN on the plain loopback connection (declared secure, as
// internal/testenv's DialClient does), registering the account first with
// XEP-0077 when register is set (an existing account is fine).
func dialXMPP(ctx context.Context, addr, domain, user string, register bool) (*xclient, error) {
	origin, err := jid.New(user, domain, "")
	if err != nil {
		return nil, fmt.Errorf("jid %s@%s: %w", user, domain, err)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	password := passwordFor(user)
	// listed: the server's features were read (SASL is always among them),
	// so a missing registration feature is the server's choice.
	var listed, offered bool
	auth := xmpp.SASL("", password, sasl.Plain)
	parseAuth := auth.Parse
	auth.Parse = func(ctx context.Context, d *xml.Decoder, start *xml.StartElement) (bool, any, error) {
		listed = true
		return parseAuth(ctx, d, start)
	}
	features := []xmpp.StreamFeature{auth, xmpp.BindResource()}
	var regErr error
	if register {
		features = append(features, registerFeature(user, password, &offered, &regErr))
	}
	sess, err := xmpp.NewSession(ctx, origin.Domain(), origin, conn, xmpp.Secure,
		xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
			return xmpp.StreamConfig{Features: features}
		}))
	switch {
	case register && listed && !offered && err != nil:
		err = fmt.Errorf("the server does not offer in-band registration (XEP-0077): %w", err)
	case regErr != nil && !errors.Is(regErr, errUserExists):
		err = fmt.Errorf("registering %s: %w", origin, regErr)
	case err != nil:
		err = fmt.Errorf("logging in %s: %w", origin, err)
	}
	if err != nil {
		if sess != nil {
			_ = sess.Close()
		}
		_ = conn.Close()
		return nil, err
	}
	return &xclient{sess: sess, bare: origin.String()}, nil
}

// registerFeature is XEP-0077 in-band registration as an optional stream
// feature: mellium negotiates optional features before the required SASL,
// so the account is created and then logged in on one connection.
func registerFeature(user, password string, offered *bool, result *error) xmpp.StreamFeature {
	return xmpp.StreamFeature{
		Name:       xml.Name{Space: nsRegisterFeature, Local: "register"},
		Prohibited: xmpp.Authn,
		Parse: func(_ context.Context, d *xml.Decoder, _ *xml.StartElement) (bool, any, error) {
			*offered = true
			return false, nil, d.Skip()
		},
		Negotiate: func(_ context.Context, s *xmpp.Session, _ any) (xmpp.SessionState, io.ReadWriter, error) {
			*result = register(s, user, password)
			if errors.Is(*result, errUserExists) {
				return 0, nil, nil
			}
			return 0, nil, *result
		},
	}
}

// register sends the registration iq and reads its answer.
func register(s *xmpp.Session, user, password string) error {
	field := func(name, v string) xml.TokenReader {
		return xmlstream.Wrap(xmlstream.Token(xml.CharData(v)), xml.StartElement{Name: xml.Name{Local: name}})
	}
	iq := xmlstream.Wrap(
		xmlstream.Wrap(xmlstream.MultiReader(field("username", user), field("password", password)),
			xml.StartElement{Name: xml.Name{Space: nsRegister, Local: "query"}}),
		xml.StartElement{Name: xml.Name{Local: "iq"}, Attr: []xml.Attr{
			{Name: xml.Name{Local: "type"}, Value: "set"}, {Name: xml.Name{Local: "id"}, Value: "lempbench-reg"}}},
	)
	w := s.TokenWriter()
	defer w.Close()
	if _, err := xmlstream.Copy(w, iq); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	r := s.TokenReader()
	defer r.Close()
	for range 16 { // skip whitespace before the answer
		tok, err := r.Token()
		if err != nil {
			return err
		}
		if start, ok := tok.(xml.StartElement); ok {
			return parseRegisterResult(start, r)
		}
	}
	return errors.New("registration: no answer")
}

// start serves the session, calling h for every message (from the
// session's read goroutine, one at a time), then sends the initial
// presence and waits until the server has handled it (a ping round trip):
// messages to the bare JID reach this session from then on.
func (x *xclient) start(h func(stanzaInfo)) error {
	x.done = make(chan struct{})
	go func() {
		defer close(x.done)
		_ = x.sess.Serve(xmpp.HandlerFunc(func(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			if start.Name.Local != "message" {
				return nil
			}
			st, err := parseStanza(*start, r)
			if err == nil {
				h(st)
			}
			return nil // an error would end the stream
		}))
	}()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := x.sess.Send(context.Background(), xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Local: "presence"}})); err != nil {
		return fmt.Errorf("%s: initial presence: %w", x.bare, err)
	}
	if err := ping.Send(ctx, x.sess, x.sess.LocalAddr().Domain()); err != nil {
		return fmt.Errorf("%s: ping after the initial presence: %w", x.bare, err)
	}
	return nil
}

func attrs(kv ...string) []xml.Attr {
	a := make([]xml.Attr, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		a = append(a, xml.Attr{Name: xml.Name{Local: kv[i]}, Value: kv[i+1]})
	}
	return a
}

// sendChat sends a chat message with a body and an XEP-0184 receipt request.
func (x *xclient) sendChat(to, id, body string) error {
	msg := xmlstream.Wrap(
		xmlstream.MultiReader(
			xmlstream.Wrap(xmlstream.Token(xml.CharData(body)), xml.StartElement{Name: xml.Name{Local: "body"}}),
			xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: nsReceipts, Local: "request"}}),
		),
		xml.StartElement{Name: xml.Name{Local: "message"}, Attr: attrs("to", to, "type", "chat", "id", id)},
	)
	// No deadline in the context: mellium turns its end into a write
	// deadline in the past for a moment (see xmppside's tests).
	return x.sess.Send(context.Background(), msg)
}

// sendReceipt sends the XEP-0184 receipt for message ofID to to.
func (x *xclient) sendReceipt(to, ofID string) error {
	msg := xmlstream.Wrap(
		xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: nsReceipts, Local: "received"}, Attr: attrs("id", ofID)}),
		xml.StartElement{Name: xml.Name{Local: "message"}, Attr: attrs("to", to, "id", "d"+ofID)},
	)
	return x.sess.Send(context.Background(), msg)
}

// close ends the stream and the connection and waits (bounded) for the
// read loop.
func (x *xclient) close() {
	x.once.Do(func() {
		closed := make(chan struct{})
		go func() { defer close(closed); _ = x.sess.Close() }()
		select {
		case <-closed:
		case <-time.After(2 * time.Second): // a stuck write: closing the conn unblocks it
		}
		_ = x.sess.Conn().Close()
		<-closed
		if x.done != nil {
			select {
			case <-x.done:
			case <-time.After(5 * time.Second):
			}
		}
	})
}

// dialAllXMPP connects users with up to par concurrent dials; nil where a
// dial failed, with the failures.
func dialAllXMPP(addr, domain string, users []string, register bool, par int) ([]*xclient, []error) {
	out := make([]*xclient, len(users))
	var mu sync.Mutex
	var errs []error
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range max(1, par) {
		wg.Go(func() {
			for i := range jobs {
				ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
				x, err := dialXMPP(ctx, addr, domain, users[i], register)
				cancel()
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					continue
				}
				out[i] = x
			}
		})
	}
	for i := range users {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return out, errs
}

func closeAllXMPP(xs []*xclient) {
	var wg sync.WaitGroup
	for _, x := range xs {
		if x != nil {
			wg.Go(x.close)
		}
	}
	wg.Wait()
}

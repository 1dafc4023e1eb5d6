package muc

import (
	"context"
	"errors"

	"mellium.im/xmpp/stanza"

	"github.com/lempgw/lempgw/bridge"
	"github.com/lempgw/lempgw/mapping"
)

// Handle processes one inbound stanza addressed to the service, a room or an
// occupant and returns the stanzas to write, in order: each a complete
// <message/>, <presence/> or <iq/> with from and to set, that encoding/xml
// marshals. An IQ get or set always gets exactly one answer; an error stanza
// never gets one. It never panics.
func (s *Service) Handle(ctx context.Context, st *Stanza) (out []any) {
	if st == nil {
		return nil
	}
	if st.To == "" {
		// Addressed to nobody: taken as the service, which answers from its domain.
		cp := *st
		cp.To = s.domain
		st = &cp
	}
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("muc: panic handling a stanza", "panic", r, "stanza", st.Name, "type", st.Type)
			out = nil
			if st.Name == "iq" && (st.Type == "get" || st.Type == "set") {
				out = []any{st.iqError(errorOf(stanza.Cancel, stanza.InternalServerError, ""))}
			}
		}
	}()
	switch st.Name {
	case "iq":
		if st.Type != "get" && st.Type != "set" {
			return nil // results and errors: the engine asks nothing
		}
		return []any{s.handleIQ(ctx, st)}
	case "presence":
		return s.handlePresence(ctx, st)
	case "message":
		return s.handleMessage(ctx, st)
	}
	return nil
}

// iqError is the error answer to an IQ.
func (st *Stanza) iqError(e *stanza.Error) iqOut {
	return iqOut{ID: st.ID, From: st.To, To: st.From, Type: "error", Payload: e}
}

func (st *Stanza) iqResult(payload any) iqOut {
	return iqOut{ID: st.ID, From: st.To, To: st.From, Type: "result", Payload: payload}
}

// presenceError is the error answer to a presence (with the MUC <x/>, as
// XEP-0045 shows it).
func (st *Stanza) presenceError(e *stanza.Error) []any {
	return []any{presenceOut{ID: st.ID, From: st.To, To: st.From, Type: "error", MUC: &mucX{}, Error: e}}
}

// messageError is the error answer to a message.
func (st *Stanza) messageError(e *stanza.Error) []any {
	return []any{messageOut{ID: st.ID, From: st.To, To: st.From, Type: "error", Error: e}}
}

// addressError is the stanza error for a bad 'to'.
func addressError(err error) *stanza.Error {
	if errors.Is(err, errNotHere) {
		return errorOf(stanza.Cancel, stanza.ItemNotFound, "not an address of this service")
	}
	return errorOf(stanza.Modify, stanza.JIDMalformed, err.Error())
}

// backendStanzaError maps a backend error: a *bridge.Error by its code,
// anything else to internal-server-error.
func backendStanzaError(err error) *stanza.Error {
	if errors.Is(err, ErrNoRoom) {
		return errorOf(stanza.Cancel, stanza.ItemNotFound, "no such room")
	}
	code, desc := backendError(err)
	if code == bridge.CodeInternal {
		desc = ""
	}
	typ, cond := mapping.ErrorFor(code)
	return errorOf(typ, cond, desc)
}

// loadRoom reads a room for a request: the error to answer when it does
// not exist, is terminated or cannot be read.
func (s *Service) loadRoom(ctx context.Context, id string, joining bool) (*view, *stanza.Error) {
	r, err := s.backend.Room(ctx, id)
	if err != nil {
		if !errors.Is(err, ErrNoRoom) {
			s.log.WarnContext(ctx, "muc: reading a room", "room", id, "err", err)
		}
		return nil, backendStanzaError(err)
	}
	if r.Terminated {
		if joining {
			return nil, errorOf(stanza.Cancel, stanza.Gone, "the group was terminated")
		}
		return nil, errorOf(stanza.Cancel, stanza.ItemNotFound, "the group was terminated")
	}
	r.ID = id
	return newView(r), nil
}

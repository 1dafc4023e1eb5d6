package lempside

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/lempgw/lempgw/bridge"
	"github.com/lempgw/lempgw/state"
)

// Packet is one LEMP frame, in either direction. Exactly one of RQ, M, SRQ
// is set on a client frame; the server sets one of RP, SRP (with O), M, I.
type Packet struct {
	RQ  *Request        `json:"rq,omitempty"`
	RP  *Response       `json:"rp,omitempty"`
	SRQ *ServerRequest  `json:"srq,omitempty"`
	SRP *ServerResponse `json:"srp,omitempty"`
	O   *int            `json:"o,omitempty"` // UTC offset in hours, beside srp (README form)
	M   *bridge.Message `json:"m,omitempty"`
	I   *bridge.Info    `json:"i,omitempty"`
}

// StringList is a list of names; a single string is accepted as a list of one.
type StringList []string

// UnmarshalJSON accepts ["a","b"], "a" and null.
func (l *StringList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*l = StringList{s}
		return nil
	}
	var ss []string
	if err := json.Unmarshal(b, &ss); err != nil {
		return err
	}
	*l = ss
	return nil
}

// Request is the `rq` object. Exactly one operation key is set.
type Request struct {
	ID  string            `json:"id,omitempty"`
	A   *Auth             `json:"a,omitempty"`
	LO  *Logout           `json:"lo,omitempty"`
	AF  []state.Following `json:"af,omitempty"`
	RF  StringList        `json:"rf,omitempty"`
	UF  []state.Following `json:"uf,omitempty"`
	S   *UserRef          `json:"s,omitempty"`
	I   *UserRef          `json:"i,omitempty"` // personal info (older README)
	P   *PictureReq       `json:"p,omitempty"`
	ST  *StatusReq        `json:"st,omitempty"`
	B   *BlockReq         `json:"b,omitempty"`
	UB  *BlockReq         `json:"ub,omitempty"`
	G   *GroupReq         `json:"g,omitempty"`
	BR  *GroupReq         `json:"br,omitempty"`
	N   *NameReq          `json:"n,omitempty"`
	MT  *MuteReq          `json:"mt,omitempty"`
	UMT *MuteReq          `json:"umt,omitempty"`
	AD  *AdminReq         `json:"ad,omitempty"`
	GET *GetReq           `json:"get,omitempty"`
}

// Auth is the login `a` object.
type Auth struct {
	I string `json:"i"`
	T string `json:"t"`
}

// Logout is `lo`: {r:"reason"} (README) or "reason" (README before 2017-06).
type Logout struct {
	R string `json:"r,omitempty"`
}

// UnmarshalJSON accepts both forms.
func (l *Logout) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &l.R)
	}
	type plain Logout
	return json.Unmarshal(b, (*plain)(l))
}

// UserRef names a user: {u:"bob"}.
type UserRef struct {
	U string `json:"u"`
}

// PictureReq is `p`: personal (u), group (i) or broadcast list (b) picture.
type PictureReq struct {
	T string `json:"t"` // s set, g get
	U string `json:"u,omitempty"`
	I string `json:"i,omitempty"`
	B string `json:"b,omitempty"`
	V string `json:"v,omitempty"`
}

// StatusReq is `st`.
type StatusReq struct {
	T string `json:"t"`
	U string `json:"u,omitempty"`
	S string `json:"s,omitempty"`
}

// BlockReq is `b`/`ub`: README key u, reference key username.
type BlockReq struct {
	U        string `json:"u,omitempty"`
	Username string `json:"username,omitempty"`
}

// Name returns whichever key was given.
func (b *BlockReq) Name() string {
	if b.U != "" {
		return b.U
	}
	return b.Username
}

// GroupReq is `g` and `br`.
type GroupReq struct {
	T  string     `json:"t"`
	I  string     `json:"i"`
	N  string     `json:"n,omitempty"`
	P  string     `json:"p,omitempty"`
	M  StringList `json:"m,omitempty"`
	AD StringList `json:"ad,omitempty"`
}

// NameReq is `n`: group (i) or broadcast list (b) name.
type NameReq struct {
	T string `json:"t"`
	I string `json:"i,omitempty"`
	B string `json:"b,omitempty"`
	N string `json:"n,omitempty"`
}

// MuteReq is `mt`/`umt`.
type MuteReq struct {
	I string        `json:"i"`
	T bridge.Millis `json:"t,omitempty"`
}

// AdminReq is `ad`.
type AdminReq struct {
	C  string      `json:"c"`
	I  string      `json:"i"`
	T  string      `json:"t,omitempty"`
	TY bridge.Flag `json:"ty,omitempty"` // "1" admin; absent or "0" user
}

// GetReq is `get`: o "pr" privacy list, "f" followings.
type GetReq struct {
	O string `json:"o"`
}

// ServerRequest is `srq`: t "t" time, "k" knock-knock.
type ServerRequest struct {
	ID string `json:"id,omitempty"`
	T  string `json:"t"`
}

// ServerResponse is `srp`.
type ServerResponse struct {
	ID string `json:"id,omitempty"`
	T  string `json:"t"`
	TM int64  `json:"tm,omitempty"`
}

// Response is `rp`.
type Response struct {
	ID       string             `json:"id,omitempty"`
	Response *int               `json:"response,omitempty"` // login: 1 ok, 0 failed
	E        *bridge.Error      `json:"e,omitempty"`
	S        *StateResp         `json:"s,omitempty"`
	I        *InfoResp          `json:"i,omitempty"`
	P        *PictureResp       `json:"p,omitempty"`
	ST       *StatusResp        `json:"st,omitempty"`
	PR       *[]string          `json:"pr,omitempty"`
	F        *[]state.Following `json:"f,omitempty"`
	G        *GroupResp         `json:"g,omitempty"`
	BR       *GroupResp         `json:"br,omitempty"`
	N        *NameResp          `json:"n,omitempty"`
}

// StateResp is {u, v}: v 0 online, ms of last disconnect, -1 never seen.
type StateResp struct {
	U string `json:"u"`
	V int64  `json:"v"`
}

// InfoResp is personal info: c creation, r registration (the same time here).
type InfoResp struct {
	U string `json:"u"`
	C int64  `json:"c"`
	R int64  `json:"r"`
}

// PictureResp is {u|i|b, v}.
type PictureResp struct {
	U string `json:"u,omitempty"`
	I string `json:"i,omitempty"`
	B string `json:"b,omitempty"`
	V string `json:"v,omitempty"`
}

// StatusResp is {u, s}.
type StatusResp struct {
	U string `json:"u"`
	S string `json:"s,omitempty"`
}

// GroupResp is group or broadcast list info.
type GroupResp struct {
	I  string   `json:"i"`
	N  string   `json:"n,omitempty"`
	P  string   `json:"p,omitempty"`
	C  int64    `json:"c,omitempty"`
	MT int64    `json:"mt,omitempty"`
	M  []string `json:"m,omitempty"`
	AD []string `json:"ad,omitempty"`
	O  string   `json:"o,omitempty"`
}

// NameResp is {i|b, n}.
type NameResp struct {
	I string `json:"i,omitempty"`
	B string `json:"b,omitempty"`
	N string `json:"n"`
}

// MaxDepth bounds the nesting of an incoming frame; LEMP needs 4.
const MaxDepth = 16

// DecodeError is why a frame could not be used; ID is the request or message
// id when it could be read, so the error response can carry it.
type DecodeError struct {
	ID      string
	Message bool // the frame was an `m`: the error goes back as {"m":{"id":..,"e":..}}
	Err     *bridge.Error
}

func (e *DecodeError) Error() string { return e.Err.Error() }

// Decode parses one client frame: strict JSON or the README's relaxed form.
//
// The hot packet, a client message, takes a fast path (decodeFast), in
// strict JSON directly, in the relaxed form once Relaxed has made it strict.
// Everything else, and every error, takes the general path, encoding/json;
// both give the same result for any frame (FuzzDecodeFastPath).
//
// The packet does not share memory with frame: the caller may reuse it.
func Decode(frame []byte) (*Packet, *DecodeError) {
	if p := decodeFast(frame); p != nil {
		return p, nil
	}
	src, derr := relax(frame)
	if derr != nil {
		return nil, derr
	}
	if len(src) > 0 && &src[0] != &frame[0] { // rewritten: try the fast path on the strict form
		if p := decodeFast(src); p != nil {
			return p, nil
		}
	}
	return decodeJSON(src)
}

// decodeGeneral is Decode without the fast path.
func decodeGeneral(frame []byte) (*Packet, *DecodeError) {
	src, derr := relax(frame)
	if derr != nil {
		return nil, derr
	}
	return decodeJSON(src)
}

// relax is Relaxed with Decode's error.
func relax(frame []byte) ([]byte, *DecodeError) {
	src, err := Relaxed(frame, MaxDepth)
	if err != nil {
		return nil, &DecodeError{Err: bridge.Errorf(bridge.CodeBadRequest, "malformed packet: %v", err)}
	}
	return src, nil
}

// decodeJSON decodes src, strict JSON, with encoding/json.
func decodeJSON(src []byte) (*Packet, *DecodeError) {
	var p Packet
	if err := json.Unmarshal(src, &p); err != nil {
		id, key := salvageID(src)
		return nil, &DecodeError{ID: id, Message: key == "m", Err: bridge.Errorf(bridge.CodeBadRequest, "bad packet: %s", describe(err))}
	}
	n := 0
	id := ""
	if p.RQ != nil {
		n++
		id = p.RQ.ID
	}
	if p.M != nil {
		n++
		id = p.M.ID
	}
	if p.SRQ != nil {
		n++
		id = p.SRQ.ID
	}
	switch {
	case n == 0:
		return nil, &DecodeError{Err: bridge.Errorf(bridge.CodeBadRequest, "unknown packet: want rq, m or srq")}
	case n > 1:
		return nil, &DecodeError{ID: id, Message: p.M != nil && p.RQ == nil && p.SRQ == nil, Err: bridge.Errorf(bridge.CodeBadRequest, "one of rq, m, srq per packet")}
	}
	return &p, nil
}

// describe turns a json error into a short client-facing reason.
func describe(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("field %q must not be %s", te.Field, te.Value)
		}
		return fmt.Sprintf("unexpected %s", te.Value)
	}
	return err.Error()
}

// salvageID reads rq.id, m.id or srq.id from a frame whose other fields had
// the wrong types, and says which key it found it under.
func salvageID(src []byte) (id, key string) {
	var probe map[string]json.RawMessage
	if json.Unmarshal(src, &probe) != nil {
		return "", ""
	}
	for _, k := range []string{"rq", "m", "srq"} {
		raw, ok := probe[k]
		if !ok {
			continue
		}
		var inner struct {
			ID json.RawMessage `json:"id"`
		}
		if json.Unmarshal(raw, &inner) != nil {
			continue
		}
		if json.Unmarshal(inner.ID, &id) == nil {
			return id, k
		}
	}
	return "", ""
}

// Encode returns the strict, compact JSON of p. A message packet costs one
// allocation: the returned slice.
func Encode(p *Packet) []byte {
	if p.M != nil && p.RQ == nil && p.RP == nil && p.SRQ == nil && p.SRP == nil && p.O == nil && p.I == nil {
		// {"m":...} plus room for a few escapes.
		return bridge.AppendMessageFrame(make([]byte, 0, 6+p.M.JSONLen()+16), p.M)
	}
	b, err := json.Marshal(p)
	if err != nil {
		panic("lempside: encoding packet: " + err.Error())
	}
	return b
}

// errorFrame is the response to a request or message that failed.
func errorFrame(id string, isMessage bool, e *bridge.Error) []byte {
	if isMessage {
		return Encode(&Packet{M: &bridge.Message{ID: id, E: e}})
	}
	return Encode(&Packet{RP: &Response{ID: id, E: e}})
}

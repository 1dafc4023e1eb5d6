package lempside

import (
	"context"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/lempgw/lempgw/bridge"
	"github.com/lempgw/lempgw/state"
)

// requestTimeout bounds one request's work on the state store.
const requestTimeout = 10 * time.Second

func stack() string { return string(debug.Stack()) }

func (c *conn) reqCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.ctx, requestTimeout)
}

// reply sends a response; e (when not nil) makes it an error response.
func (c *conn) reply(id string, rp *Response, e *bridge.Error) {
	if rp == nil {
		rp = &Response{}
	}
	rp.ID = id
	if e != nil {
		c.srv.metrics.packetError(e.Code)
		c.logRefusal("rq", id, e)
		rp = &Response{ID: id, E: e, Response: rp.Response}
	}
	c.send(Encode(&Packet{RP: rp}))
}

// opCount returns how many operation keys an rq carries.
func opCount(rq *Request) int {
	n := 0
	for _, set := range []bool{
		rq.A != nil, rq.LO != nil, rq.AF != nil, rq.RF != nil, rq.UF != nil, rq.S != nil,
		rq.I != nil, rq.P != nil, rq.ST != nil, rq.B != nil, rq.UB != nil, rq.G != nil,
		rq.BR != nil, rq.N != nil, rq.MT != nil, rq.UMT != nil, rq.AD != nil, rq.GET != nil,
	} {
		if set {
			n++
		}
	}
	return n
}

// request handles an rq; false ends the connection (logout).
func (c *conn) request(rq *Request) bool {
	c.srv.metrics.packetIn("rq")
	switch n := opCount(rq); {
	case n == 0:
		c.reply(rq.ID, nil, bridge.Errorf(bridge.CodeBadRequest, "unknown request"))
		return true
	case n > 1:
		c.reply(rq.ID, nil, bridge.Errorf(bridge.CodeBadRequest, "one request per rq"))
		return true
	}
	if rq.A != nil {
		c.login(rq)
		return true
	}
	if c.user == "" {
		c.reply(rq.ID, nil, bridge.Errorf(bridge.CodeUnauthorized, "log in first"))
		return true
	}
	if rq.LO != nil {
		c.closeAfter(closeNormal, "logout")
		return false
	}
	ctx, cancel := c.reqCtx()
	defer cancel()
	rp, e := c.dispatch(ctx, rq)
	c.reply(rq.ID, rp, e)
	return true
}

func (c *conn) login(rq *Request) {
	fail := 0
	if c.user != "" {
		c.reply(rq.ID, &Response{Response: &fail}, bridge.Errorf(bridge.CodeConflict, "already logged in as %s", c.user))
		return
	}
	// Backing off after failed logins (limits.go): refused before the
	// token check, so a guesser does not make the gateway pay argon2id.
	if wait := c.srv.logins.wait(rq.A.I, c.addr); wait > 0 {
		c.srv.metrics.limit(limitLogins)
		c.reply(rq.ID, &Response{Response: &fail}, bridge.Errorf(bridge.CodeRateLimited,
			"too many failed logins: try again in %s", retryIn(wait)))
		return
	}
	ctx, cancel := c.reqCtx()
	defer cancel()
	if identityKey(rq.A.I) != "" && rq.A.T != "" {
		c.srv.metrics.loginCheck() // core.Login verifies the token
	}
	u, e := c.srv.core.Login(ctx, rq.A.I, rq.A.T)
	if e != nil {
		c.srv.metrics.login(false)
		if e.Code == bridge.CodeUnauthorized {
			c.srv.logins.failed(rq.A.I, c.addr)
		}
		c.reply(rq.ID, &Response{Response: &fail}, e)
		return
	}
	c.srv.metrics.login(true)
	c.srv.logins.succeeded(u.Name)
	c.user, c.admin = u.Name, u.Admin
	c.log = c.log.With("user", u.Name)
	if old := c.srv.hub.register(u.Name, c); old != nil {
		old.closeWith(closeConflict, "conflict: logged in elsewhere")
	}
	ok := 1
	c.reply(rq.ID, &Response{Response: &ok}, nil)
	online, err := c.srv.core.SessionStarted(ctx, u.Name)
	if err != nil {
		c.log.Error("reading followings at login", "err", err)
	}
	for _, name := range online {
		c.send(Encode(&Packet{I: &bridge.Info{LI: name}}))
	}
	c.startDelivery()
	c.log.Info("logged in")
}

// dispatch runs every request but login and logout.
func (c *conn) dispatch(ctx context.Context, rq *Request) (*Response, *bridge.Error) {
	core, me := c.srv.core, c.user
	switch {
	case rq.AF != nil:
		return nil, core.Follow(ctx, me, rq.AF)
	case rq.RF != nil:
		return nil, core.Unfollow(ctx, me, rq.RF)
	case rq.UF != nil:
		return nil, core.RenameFollowings(ctx, me, rq.UF)
	case rq.S != nil:
		u, v, e := core.LastOffline(ctx, rq.S.U)
		if e != nil {
			return nil, e
		}
		return &Response{S: &StateResp{U: u, V: v}}, nil
	case rq.I != nil:
		u, e := core.Contact(ctx, orSelf(rq.I.U, me))
		if e != nil {
			return nil, e
		}
		return &Response{I: &InfoResp{U: u.Name, C: u.Created, R: u.Created}}, nil
	case rq.P != nil:
		return c.picture(ctx, rq.P)
	case rq.ST != nil:
		return c.status(ctx, rq.ST)
	case rq.B != nil:
		return nil, core.Block(ctx, me, rq.B.Name())
	case rq.UB != nil:
		return nil, core.Unblock(ctx, me, rq.UB.Name())
	case rq.GET != nil:
		switch rq.GET.O {
		case "pr", "pl":
			l, e := core.BlockList(ctx, me)
			if l == nil {
				l = []string{}
			}
			return &Response{PR: &l}, e
		case "f":
			fs, e := core.Followings(ctx, me)
			if fs == nil {
				fs = []state.Following{}
			}
			return &Response{F: &fs}, e
		}
		return nil, bridge.Errorf(bridge.CodeBadRequest, "get: o must be pr or f")
	case rq.G != nil:
		return c.group(ctx, rq.G)
	case rq.BR != nil:
		return c.broadcast(ctx, rq.BR)
	case rq.N != nil:
		return c.name(ctx, rq.N)
	case rq.MT != nil:
		if rq.MT.I == "" {
			return nil, bridge.Errorf(bridge.CodeBadRequest, "mt needs i")
		}
		return nil, core.Mute(ctx, me, rq.MT.I, int64(rq.MT.T))
	case rq.UMT != nil:
		if rq.UMT.I == "" {
			return nil, bridge.Errorf(bridge.CodeBadRequest, "umt needs i")
		}
		return nil, core.Mute(ctx, me, rq.UMT.I, 0)
	case rq.AD != nil:
		return nil, c.adminRequest(ctx, rq.AD)
	}
	return nil, bridge.Errorf(bridge.CodeBadRequest, "unknown request")
}

func orSelf(u, me string) string {
	if u == "" {
		return me
	}
	return u
}

func badT(what, t string) *bridge.Error {
	return bridge.Errorf(bridge.CodeBadRequest, "%s: t must be s or g, got %q", what, t)
}

// picture handles p: personal (u or none), group (i) or broadcast list (b).
func (c *conn) picture(ctx context.Context, p *PictureReq) (*Response, *bridge.Error) {
	core, me := c.srv.core, c.user
	switch {
	case p.T != "s" && p.T != "g":
		return nil, badT("p", p.T)
	case p.I != "" && p.T == "s":
		return nil, core.SetGroupPicture(ctx, me, p.I, p.V)
	case p.I != "":
		g, e := core.GroupInfo(ctx, me, p.I)
		return &Response{P: &PictureResp{I: g.ID, V: g.Picture}}, e
	case p.B != "" && p.T == "s":
		return nil, core.SetBroadcastField(ctx, me, p.B, "p", p.V)
	case p.B != "":
		g, e := core.Broadcast(ctx, me, p.B)
		return &Response{P: &PictureResp{B: g.ID, V: g.Picture}}, e
	case p.T == "s":
		if p.U != "" && bridge.FoldUsername(p.U) != me {
			return nil, bridge.Errorf(bridge.CodeForbidden, "can only set your own picture")
		}
		return nil, core.SetPicture(ctx, me, p.V)
	}
	u, e := core.Profile(ctx, orSelf(p.U, me))
	return &Response{P: &PictureResp{U: u.Name, V: u.Picture}}, e
}

// status handles st.
func (c *conn) status(ctx context.Context, st *StatusReq) (*Response, *bridge.Error) {
	core, me := c.srv.core, c.user
	switch st.T {
	case "s":
		if st.U != "" && bridge.FoldUsername(st.U) != me {
			return nil, bridge.Errorf(bridge.CodeForbidden, "can only set your own status")
		}
		return nil, core.SetStatus(ctx, me, st.S)
	case "g":
		u, e := core.Contact(ctx, orSelf(st.U, me))
		return &Response{ST: &StatusResp{U: u.Name, S: u.Status}}, e
	}
	return nil, badT("st", st.T)
}

// name handles n: group (i) or broadcast list (b).
func (c *conn) name(ctx context.Context, n *NameReq) (*Response, *bridge.Error) {
	core, me := c.srv.core, c.user
	switch {
	case n.T != "s" && n.T != "g":
		return nil, badT("n", n.T)
	case n.I != "" && n.T == "s":
		return nil, core.SetGroupName(ctx, me, n.I, n.N)
	case n.I != "":
		g, e := core.GroupInfo(ctx, me, n.I)
		return &Response{N: &NameResp{I: g.ID, N: g.Name}}, e
	case n.B != "" && n.T == "s":
		return nil, core.SetBroadcastField(ctx, me, n.B, "n", n.N)
	case n.B != "":
		g, e := core.Broadcast(ctx, me, n.B)
		return &Response{N: &NameResp{B: g.ID, N: g.Name}}, e
	}
	return nil, bridge.Errorf(bridge.CodeBadRequest, "n needs i (group) or b (broadcast list)")
}

// group handles g.
func (c *conn) group(ctx context.Context, g *GroupReq) (*Response, *bridge.Error) {
	core, me := c.srv.core, c.user
	if g.I == "" {
		return nil, bridge.Errorf(bridge.CodeBadRequest, "g needs i")
	}
	switch g.T {
	case "c":
		return nil, core.CreateGroup(ctx, me, bridge.GroupSpec{ID: g.I, Name: g.N, Picture: g.P, Members: g.M})
	case "a":
		return nil, core.AddMembers(ctx, me, g.I, g.M)
	case "b":
		return nil, core.Banish(ctx, me, g.I, g.M)
	case "l":
		return nil, core.Leave(ctx, me, g.I)
	case "t":
		return nil, core.Terminate(ctx, me, g.I)
	case "i":
		gr, e := core.GroupInfo(ctx, me, g.I)
		if e != nil {
			return nil, e
		}
		return &Response{G: &GroupResp{I: gr.ID, N: gr.Name, P: gr.Picture, C: gr.Created,
			MT: gr.Mutes[me], M: gr.Members, AD: gr.Admins, O: gr.Owner}}, nil
	case "aad":
		return nil, core.AddAdmins(ctx, me, g.I, g.AD)
	case "ad":
		gr, e := core.GroupInfo(ctx, me, g.I)
		if e != nil {
			return nil, e
		}
		return &Response{G: &GroupResp{I: gr.ID, AD: gr.Admins}}, nil
	}
	return nil, bridge.Errorf(bridge.CodeBadRequest, "g: unknown t %q", g.T)
}

// broadcast handles br.
func (c *conn) broadcast(ctx context.Context, b *GroupReq) (*Response, *bridge.Error) {
	core, me := c.srv.core, c.user
	if b.I == "" {
		return nil, bridge.Errorf(bridge.CodeBadRequest, "br needs i")
	}
	switch b.T {
	case "c":
		return nil, core.CreateBroadcast(ctx, me, bridge.GroupSpec{ID: b.I, Name: b.N, Picture: b.P, Members: b.M})
	case "a", "b", "t":
		return nil, core.UpdateBroadcast(ctx, me, b.I, b.T, b.M)
	case "i":
		g, e := core.Broadcast(ctx, me, b.I)
		if e != nil {
			return nil, e
		}
		return &Response{BR: &GroupResp{I: g.ID, N: g.Name, P: g.Picture, C: g.Created, M: g.Members, O: g.Owner}}, nil
	}
	return nil, bridge.Errorf(bridge.CodeBadRequest, "br: unknown t %q", b.T)
}

// adminRequest handles ad (admins only).
func (c *conn) adminRequest(ctx context.Context, ad *AdminReq) *bridge.Error {
	if !c.admin {
		return bridge.Errorf(bridge.CodeForbidden, "admin requests need an admin account")
	}
	switch ad.C {
	case "cr":
		return c.srv.core.CreateUser(ctx, ad.I, ad.T, ad.TY == bridge.FlagOn)
	case "del":
		return c.srv.core.DeleteUser(ctx, ad.I)
	}
	return bridge.Errorf(bridge.CodeBadRequest, "ad: c must be cr or del")
}

// logRefusal logs one line per refused request or message, with the
// connection's user (c.log carries it after login) and the packet's id: at
// warning level for the gateway's own failures (5xx), else at debug level
// (a client's mistakes and the rate limit's 429s would flood the log).
func (c *conn) logRefusal(kind, id string, e *bridge.Error) {
	level := slog.LevelDebug
	if e.Code >= 500 {
		level = slog.LevelWarn
	}
	c.log.Log(c.ctx, level, "refused", kind, id, "code", e.Code, "why", e.Desc)
}

// message handles m: a chat message or a dm/nm receipt.
func (c *conn) message(m *bridge.Message) {
	c.srv.metrics.packetIn("m")
	if c.user == "" {
		c.send(errorFrame(m.ID, true, bridge.Errorf(bridge.CodeUnauthorized, "log in first")))
		return
	}
	ctx, cancel := c.reqCtx()
	defer cancel()
	if m.DM != nil || m.NM != nil {
		if e := c.srv.core.Receipt(ctx, c.user, m); e != nil {
			c.msgs.charge() // receipts are free only while they succeed (limits.go)
			c.srv.metrics.packetError(e.Code)
			c.logRefusal("m", m.ID, e)
			c.send(errorFrame(m.ID, true, e))
		}
		return
	}
	if e := c.srv.core.Send(ctx, c.user, m); e != nil {
		c.srv.metrics.message(m.R, false)
		c.srv.metrics.packetError(e.Code)
		c.logRefusal("m", m.ID, e)
		c.send(errorFrame(m.ID, true, e))
		return
	}
	c.srv.metrics.message(m.R, true)
	if m.SC.On() {
		c.send(Encode(&Packet{M: &bridge.Message{ID: m.ID, R: c.user, SR: &bridge.Ref{ID: m.ID}}}))
	}
}

// serverRequest handles srq: time and knock-knock.
func (c *conn) serverRequest(q *ServerRequest) {
	c.srv.metrics.packetIn("srq")
	if c.user == "" {
		c.reply(q.ID, nil, bridge.Errorf(bridge.CodeUnauthorized, "log in first"))
		return
	}
	switch q.T {
	case "t":
		now := c.srv.now()
		_, off := now.Zone()
		o := off / 3600
		c.send(Encode(&Packet{SRP: &ServerResponse{ID: q.ID, T: "t", TM: now.UnixMilli()}, O: &o}))
	case "k":
		c.send(Encode(&Packet{SRP: &ServerResponse{ID: q.ID, T: "k"}}))
	default:
		c.reply(q.ID, nil, bridge.Errorf(bridge.CodeBadRequest, "srq: t must be t or k"))
	}
}

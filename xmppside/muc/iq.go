package muc

import (
	"context"
	"crypto/sha1" // #nosec G505 -- XEP-0153 avatar hashes are SHA-1
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"sort"
	"strconv"

	"mellium.im/xmpp/stanza"

	"github.com/lempgw/lempgw/mapping"
)

func (s *Service) handleIQ(ctx context.Context, st *Stanza) iqOut {
	if st.bad != nil || st.payload == nil {
		return st.iqError(errorOf(stanza.Modify, stanza.BadRequest, "an IQ request has exactly one payload"))
	}
	full, bare, err := parseFrom(st.From)
	if err != nil {
		return st.iqError(errorOf(stanza.Modify, stanza.JIDMalformed, "unusable sender address"))
	}
	t, err := s.parseTo(st.To)
	if err != nil {
		return st.iqError(addressError(err))
	}
	switch {
	case t.room == "":
		return s.serviceIQ(ctx, st, bare)
	case t.nick != "":
		return s.occupantIQ(st, t, full)
	}
	return s.roomIQ(ctx, st, t.room, full, bare)
}

// payloadIs reports whether the IQ's payload is ns:local.
func (st *Stanza) payloadIs(ns, local string) bool {
	return st.payload.name.Space == ns && st.payload.name.Local == local
}

// node is the node attribute of the payload (disco).
func (st *Stanza) node() string {
	if len(st.payload.toks) > 0 {
		if se, ok := st.payload.toks[0].(xml.StartElement); ok {
			for _, a := range se.Attr {
				if a.Name.Space == "" && a.Name.Local == "node" {
					return a.Value
				}
			}
		}
	}
	return ""
}

var errUnavailable = errorOf(stanza.Cancel, stanza.ServiceUnavailable, "")

// serviceIQ answers an IQ to the service itself.
func (s *Service) serviceIQ(ctx context.Context, st *Stanza, bare string) iqOut {
	if st.Type != "get" {
		return st.iqError(errUnavailable)
	}
	switch {
	case st.payloadIs(nsPing, "ping"):
		return st.iqResult(nil)
	case st.payloadIs(nsDiscoInfo, "query"):
		if st.node() != "" {
			return st.iqError(errorOf(stanza.Cancel, stanza.ItemNotFound, "no such node"))
		}
		return st.iqResult(discoInfo{
			Identities: []discoIdentity{{Category: "conference", Type: "text", Name: "LEMP groups"}},
			Features:   features(nsDiscoInfo, nsDiscoItems, nsMUC, nsPing),
		})
	case st.payloadIs(nsDiscoItems, "query"):
		if st.node() != "" {
			return st.iqError(errorOf(stanza.Cancel, stanza.ItemNotFound, "no such node"))
		}
		items := discoItems{}
		if l, ok := s.backend.(RoomLister); ok && isUser(bare) {
			rooms, err := l.RoomsOf(ctx, bare)
			if err != nil {
				return st.iqError(backendStanzaError(err))
			}
			for _, r := range rooms {
				if !r.Terminated && r.ID != "" {
					items.Items = append(items.Items, discoItem{JID: s.roomJID(r.ID), Name: r.Name})
				}
			}
			sort.Slice(items.Items, func(i, j int) bool { return items.Items[i].JID < items.Items[j].JID })
		}
		return st.iqResult(items)
	}
	return st.iqError(errUnavailable)
}

// occupantIQ answers an IQ to room/nick: the XEP-0410 self-ping. IQs are not
// relayed between occupants.
func (s *Service) occupantIQ(st *Stanza, t target, full string) iqOut {
	s.mu.Lock()
	var nick string
	if rs := s.rooms[t.room]; rs != nil {
		if o := rs.byFull[full]; o != nil {
			nick = o.nick
		}
	}
	s.mu.Unlock()
	if nick == "" {
		return st.iqError(errorOf(stanza.Cancel, stanza.NotAcceptable, "not joined to this room"))
	}
	if st.Type == "get" && st.payloadIs(nsPing, "ping") && nick == t.nick {
		return st.iqResult(nil)
	}
	return st.iqError(errorOf(stanza.Cancel, stanza.ServiceUnavailable, "requests are not relayed to occupants"))
}

// roomIQ answers an IQ to a room.
func (s *Service) roomIQ(ctx context.Context, st *Stanza, room, full, bare string) iqOut {
	get := st.Type == "get"
	var handled bool
	switch {
	case st.payloadIs(nsPing, "ping"), st.payloadIs(nsDiscoInfo, "query"), st.payloadIs(nsDiscoItems, "query"):
		handled = get
	case st.payloadIs(mapping.NSVCard, "vCard"), st.payloadIs(nsAdmin, "query"), st.payloadIs(nsOwner, "query"):
		handled = true
	}
	if !handled {
		return st.iqError(errUnavailable)
	}
	v, serr := s.loadRoom(ctx, room, false)
	if serr != nil {
		return st.iqError(serr)
	}
	aff := v.jabberAff(bare)
	switch {
	case st.payloadIs(nsPing, "ping"):
		return st.iqResult(nil)
	case st.payloadIs(nsDiscoInfo, "query"):
		return s.roomInfo(st, v)
	case st.payloadIs(nsDiscoItems, "query"):
		return s.roomItems(st, v, aff)
	case st.payloadIs(mapping.NSVCard, "vCard"):
		if get {
			return st.iqResult(mapping.VCard{FN: v.Name, Photo: mapping.VCardFor("", v.Picture).Photo})
		}
		return st.iqError(notConfigurable(aff, "the group's picture is set in LEMP"))
	case st.payloadIs(nsAdmin, "query"):
		if get {
			return s.adminGet(st, v, aff)
		}
		return s.adminSet(ctx, st, v, full, bare, aff)
	}
	// muc#owner
	if !isAdmin(aff) {
		return st.iqError(errorOf(stanza.Auth, stanza.Forbidden, "only the group's admins"))
	}
	if !get {
		var q struct {
			Destroy *struct {
				Reason string `xml:"reason"`
			} `xml:"destroy"`
		}
		if err := st.payload.decoder().Decode(&q); err != nil {
			return st.iqError(errorOf(stanza.Modify, stanza.BadRequest, err.Error()))
		}
		if q.Destroy != nil {
			if err := s.backend.Admin(ctx, v.ID, bare, OpTerminate, nil); err != nil {
				return st.iqError(backendStanzaError(err))
			}
			return st.iqResult(nil)
		}
	}
	return st.iqError(notConfigurable(aff, "the room's configuration is the group's: change it in LEMP"))
}

// notConfigurable is the answer to a configuration request: forbidden for
// a non-admin, not-allowed for an admin (LEMP owns the configuration).
func notConfigurable(aff, text string) *stanza.Error {
	if !isAdmin(aff) {
		return errorOf(stanza.Auth, stanza.Forbidden, "only the group's admins")
	}
	return errorOf(stanza.Cancel, stanza.NotAllowed, text)
}

// roomInfo is a room's disco#info (XEP-0045 6.4) with the muc#roominfo form.
func (s *Service) roomInfo(st *Stanza, v *view) iqOut {
	switch st.node() {
	case "":
	case "x-roomuser-item":
		// No reserved nicks (XEP-0045 7.12): an empty answer.
		return st.iqResult(discoInfo{Node: "x-roomuser-item"})
	default:
		return st.iqError(errorOf(stanza.Cancel, stanza.ItemNotFound, "no such node"))
	}
	name := v.Name
	if name == "" {
		name = v.ID
	}
	s.mu.Lock()
	n := len(v.lemp)
	if rs := s.rooms[v.ID]; rs != nil {
		n += len(rs.byNick)
	}
	s.mu.Unlock()
	form := &dataForm{Type: "result", Fields: []formField{
		{Var: "FORM_TYPE", Type: "hidden", Values: []string{nsRoomInfo}},
		{Var: "muc#roominfo_occupants", Label: "Number of occupants", Values: []string{strconv.Itoa(n)}},
		{Var: "muc#roomconfig_roomname", Label: "Name", Values: []string{v.Name}},
		{Var: "muc#roominfo_subject", Label: "Subject", Values: []string{v.Name}},
		{Var: "muc#roominfo_subjectmod", Type: "boolean", Label: "Occupants may change the subject", Values: []string{"0"}},
	}}
	if h := avatarHash(v.Picture); h != "" {
		form.Fields = append(form.Fields, formField{Var: "muc#roominfo_avatarhash", Type: "text-multi", Label: "Avatar hash", Values: []string{h}})
	}
	return st.iqResult(discoInfo{
		Identities: []discoIdentity{{Category: "conference", Type: "text", Name: name}},
		Features: features(nsDiscoInfo, nsDiscoItems, nsMUC, "muc_membersonly", "muc_nonanonymous",
			"muc_persistent", "muc_hidden", "muc_unsecured", "muc_unmoderated", nsStableID, nsSelfPing,
			mapping.NSSID, mapping.NSVCard, nsPing),
		Form: form,
	})
}

// avatarHash is the XEP-0153 hash of an inline (data: URL) picture; "" for
// none or a URL (the room cannot hash what it does not have).
func avatarHash(pic string) string {
	p := mapping.VCardFor("", pic).Photo
	if p == nil || p.BinVal == "" {
		return ""
	}
	b, err := base64.StdEncoding.DecodeString(p.BinVal)
	if err != nil {
		return ""
	}
	h := sha1.Sum(b) // #nosec G401 -- XEP-0153
	return hex.EncodeToString(h[:])
}

// roomItems is a room's disco#items: its occupants, to members only.
func (s *Service) roomItems(st *Stanza, v *view, aff string) iqOut {
	if st.node() != "" {
		return st.iqError(errorOf(stanza.Cancel, stanza.ItemNotFound, "no such node"))
	}
	items := discoItems{}
	if aff == affNone {
		return st.iqResult(items)
	}
	for _, u := range v.lemp {
		items.Items = append(items.Items, discoItem{JID: s.occJID(v.ID, u), Name: u})
	}
	s.mu.Lock()
	if rs := s.rooms[v.ID]; rs != nil {
		for _, o := range rs.sorted() {
			items.Items = append(items.Items, discoItem{JID: s.occJID(v.ID, o.nick), Name: o.nick})
		}
	}
	s.mu.Unlock()
	return st.iqResult(items)
}

// adminQuery is a muc#admin query.
type adminQuery struct {
	Items []adminItem `xml:"item"`
}

type adminItem struct {
	Affiliation string `xml:"affiliation,attr"`
	Role        string `xml:"role,attr"`
	JID         string `xml:"jid,attr"`
	Nick        string `xml:"nick,attr"`
	Reason      string `xml:"reason"`
}

// adminGet lists members by affiliation or occupants by role (XEP-0045 9.5,
// 8.5): to members.
func (s *Service) adminGet(st *Stanza, v *view, aff string) iqOut {
	if aff == affNone {
		return st.iqError(errorOf(stanza.Auth, stanza.Forbidden, "only members"))
	}
	var q adminQuery
	if err := st.payload.decoder().Decode(&q); err != nil || len(q.Items) == 0 {
		return st.iqError(errorOf(stanza.Modify, stanza.BadRequest, "say which list: <item affiliation/> or <item role/>"))
	}
	want := q.Items[0]
	out := adminQueryOut{}
	switch {
	case want.Affiliation == affOwner || want.Affiliation == affAdmin || want.Affiliation == affMember:
		keys := make([]string, 0, len(v.aff))
		for k := range v.aff {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if v.aff[k] != want.Affiliation {
				continue
			}
			it := itemOut{Affiliation: v.aff[k], JID: s.actorJID(k)}
			if !isUser(k) {
				it.Nick = k
			}
			if it.JID != "" {
				out.Items = append(out.Items, it)
			}
		}
	case want.Affiliation == "outcast" || want.Affiliation == affNone:
	case want.Role == "moderator" || want.Role == "participant":
		for _, u := range v.lemp {
			if roleOf(v.aff[u]) == want.Role && s.realJID(u) != "" {
				out.Items = append(out.Items, itemOut{Affiliation: v.aff[u], Role: want.Role, JID: s.realJID(u), Nick: u})
			}
		}
		s.mu.Lock()
		if rs := s.rooms[v.ID]; rs != nil {
			for _, o := range rs.sorted() {
				if roleOf(o.aff) == want.Role {
					it := o.item()
					it.Nick = o.nick
					out.Items = append(out.Items, it)
				}
			}
		}
		s.mu.Unlock()
	case want.Role == "visitor" || want.Role == "none":
	default:
		return st.iqError(errorOf(stanza.Modify, stanza.BadRequest, "unknown affiliation or role"))
	}
	return st.iqResult(out)
}

// adminSet changes membership (XEP-0045 9, 8.2): role none (kick) and
// affiliation none or outcast banish, member adds, admin makes an admin.
// Admins only; the Backend applies each operation, in item order grouped by
// operation; the presences follow with the group events.
func (s *Service) adminSet(ctx context.Context, st *Stanza, v *view, full, bare, aff string) iqOut {
	if !isAdmin(aff) {
		return st.iqError(errorOf(stanza.Auth, stanza.Forbidden, "only the group's admins"))
	}
	var q adminQuery
	if err := st.payload.decoder().Decode(&q); err != nil || len(q.Items) == 0 || len(q.Items) > maxAdminItems {
		return st.iqError(errorOf(stanza.Modify, stanza.BadRequest, "one to 100 <item/>s"))
	}
	type change struct {
		addr, op string
		rm       removal
	}
	var changes []change
	for _, it := range q.Items {
		if it.Role != "" && it.Affiliation != "" {
			return st.iqError(errorOf(stanza.Modify, stanza.BadRequest, "an item changes a role or an affiliation, not both"))
		}
		addr, serr := s.itemTarget(v, it)
		if serr != nil {
			return st.iqError(serr)
		}
		cur := v.affOf(addr)
		c := change{addr: addr, rm: removal{reason: truncate(it.Reason, maxStatusBytes), at: s.now()}}
		switch {
		case it.Role == "none":
			c.op, c.rm.code = OpBanish, codeKicked
		case it.Role != "":
			return st.iqError(errorOf(stanza.Cancel, stanza.NotAllowed, "roles follow affiliations in this room"))
		case it.Affiliation == affNone:
			c.op, c.rm.code = OpBanish, codeAffiliation
		case it.Affiliation == "outcast":
			c.op, c.rm.code = OpBanish, codeBanned
		case it.Affiliation == affMember:
			if isAdmin(cur) {
				return st.iqError(errorOf(stanza.Cancel, stanza.NotAllowed, "an admin can not be made a plain member"))
			}
			c.op = OpAdd
		case it.Affiliation == affAdmin:
			if cur == affOwner {
				return st.iqError(errorOf(stanza.Cancel, stanza.NotAllowed, "the owner stays the owner"))
			}
			c.op = OpAdmin
		case it.Affiliation == affOwner:
			return st.iqError(errorOf(stanza.Cancel, stanza.NotAllowed, "ownership is managed in LEMP"))
		default:
			return st.iqError(errorOf(stanza.Modify, stanza.BadRequest, "unknown affiliation"))
		}
		switch {
		case c.op == OpBanish && cur == affOwner:
			return st.iqError(errorOf(stanza.Cancel, stanza.NotAllowed, "the owner can not be removed"))
		case c.op == OpBanish && cur == affNone, c.op == OpAdd && cur == affMember, c.op == OpAdmin && cur == affAdmin:
			continue // nothing to change
		}
		changes = append(changes, c)
	}
	var ops []string
	targets := map[string][]string{}
	s.mu.Lock()
	rs := s.rooms[v.ID]
	for _, c := range changes {
		if _, ok := targets[c.op]; !ok {
			ops = append(ops, c.op)
		}
		targets[c.op] = append(targets[c.op], c.addr)
		if c.op == OpBanish && rs != nil {
			if o := rs.byFull[full]; o != nil {
				c.rm.actor = o.nick
			}
			rs.addPending(c.addr, c.rm)
		}
	}
	s.mu.Unlock()
	for _, op := range ops {
		if err := s.backend.Admin(ctx, v.ID, bare, op, targets[op]); err != nil {
			if op == OpBanish {
				s.mu.Lock()
				if rs := s.rooms[v.ID]; rs != nil {
					for _, a := range targets[op] {
						delete(rs.pending, a)
					}
				}
				s.mu.Unlock()
			}
			return st.iqError(backendStanzaError(err))
		}
	}
	return st.iqResult(nil)
}

// itemTarget is the member an admin item names, by jid or by nick.
func (s *Service) itemTarget(v *view, it adminItem) (string, *stanza.Error) {
	if it.JID != "" {
		addr, err := s.memberAddr(it.JID)
		if err != nil {
			return "", errorOf(stanza.Modify, stanza.JIDMalformed, "item jid: "+err.Error())
		}
		return normAddr(addr), nil
	}
	if it.Nick == "" {
		return "", errorOf(stanza.Modify, stanza.BadRequest, "an item names a jid or a nick")
	}
	if k := normAddr(it.Nick); !isUser(k) && v.affOf(k) != affNone {
		return k, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if rs := s.rooms[v.ID]; rs != nil {
		if o := rs.byNick[it.Nick]; o != nil {
			return o.bare, nil
		}
	}
	return "", errorOf(stanza.Cancel, stanza.ItemNotFound, "no occupant with that nick")
}

package mapping

import (
	"testing"

	"mellium.im/xmpp/stanza"

	"github.com/lempgw/lempgw/bridge"
)

func TestErrorTable(t *testing.T) {
	for _, c := range []struct {
		code int
		typ  stanza.ErrorType
		cond stanza.Condition
	}{
		{400, stanza.Modify, stanza.BadRequest},
		{401, stanza.Auth, stanza.NotAuthorized},
		{403, stanza.Auth, stanza.Forbidden},
		{404, stanza.Cancel, stanza.ItemNotFound},
		{409, stanza.Cancel, stanza.Conflict},
		{413, stanza.Modify, stanza.NotAcceptable},
		{429, stanza.Wait, stanza.PolicyViolation},
		{500, stanza.Cancel, stanza.InternalServerError},
		{503, stanza.Cancel, stanza.ServiceUnavailable},
		{418, stanza.Cancel, stanza.UndefinedCondition},
		{0, stanza.Cancel, stanza.UndefinedCondition},
	} {
		typ, cond := ErrorFor(c.code)
		if typ != c.typ || cond != c.cond || ConditionFor(c.code) != c.cond {
			t.Errorf("ErrorFor(%d) = %s/%s, want %s/%s", c.code, typ, cond, c.typ, c.cond)
		}
		if c.cond != stanza.UndefinedCondition {
			if got := CodeFor(cond); got != c.code {
				t.Errorf("CodeFor(ConditionFor(%d)) = %d", c.code, got)
			}
		}
	}
}

func TestCodeFor(t *testing.T) {
	for _, c := range []struct {
		cond stanza.Condition
		code int
		typ  stanza.ErrorType
	}{
		{stanza.BadRequest, 400, stanza.Modify},
		{stanza.Conflict, 409, stanza.Cancel},
		{stanza.FeatureNotImplemented, 400, stanza.Cancel},
		{stanza.Forbidden, 403, stanza.Auth},
		{stanza.Gone, 404, stanza.Cancel},
		{stanza.InternalServerError, 500, stanza.Cancel},
		{stanza.ItemNotFound, 404, stanza.Cancel},
		{stanza.JIDMalformed, 400, stanza.Modify},
		{stanza.NotAcceptable, 413, stanza.Modify},
		{stanza.NotAllowed, 403, stanza.Cancel},
		{stanza.NotAuthorized, 401, stanza.Auth},
		{stanza.PolicyViolation, 429, stanza.Modify},
		{stanza.RecipientUnavailable, 503, stanza.Wait},
		{stanza.Redirect, 404, stanza.Modify},
		{stanza.RegistrationRequired, 403, stanza.Auth},
		{stanza.RemoteServerNotFound, 404, stanza.Cancel},
		{stanza.RemoteServerTimeout, 503, stanza.Wait},
		{stanza.ResourceConstraint, 429, stanza.Wait},
		{stanza.ServiceUnavailable, 503, stanza.Cancel},
		{stanza.SubscriptionRequired, 403, stanza.Auth},
		{stanza.UndefinedCondition, 500, stanza.Cancel},
		{stanza.UnexpectedRequest, 400, stanza.Wait},
		{"", 500, stanza.Cancel},
		{"made-up", 500, stanza.Cancel},
	} {
		if got := CodeFor(c.cond); got != c.code {
			t.Errorf("CodeFor(%q) = %d, want %d", c.cond, got, c.code)
		}
		if got := TypeFor(c.cond); got != c.typ {
			t.Errorf("TypeFor(%q) = %s, want %s", c.cond, got, c.typ)
		}
	}
}

func TestStanzaErrorRoundTrip(t *testing.T) {
	for _, code := range []int{400, 401, 403, 404, 409, 413, 429, 500, 503} {
		e := &bridge.Error{Code: code, Desc: "because"}
		got := LEMPError(StanzaError(e))
		if *got != *e {
			t.Errorf("LEMPError(StanzaError(%v)) = %v", e, got)
		}
	}
	if se := StanzaError(nil); se.Condition != stanza.InternalServerError {
		t.Errorf("StanzaError(nil) = %v", se)
	}
	e := LEMPError(stanza.Error{Condition: stanza.Gone, Text: map[string]string{"fr": "parti", "de": "weg"}})
	if e.Code != 404 || e.Desc != "weg" {
		t.Errorf("LEMPError without default text = %v, want 404 weg", e)
	}
	if e := LEMPError(stanza.Error{}); e.Code != 500 || e.Desc != "undefined-condition" {
		t.Errorf("LEMPError(empty) = %v", e)
	}
}

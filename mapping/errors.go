package mapping

import (
	"slices"

	"mellium.im/xmpp/stanza"

	"github.com/lempgw/lempgw/bridge"
)

// The LEMP-code <-> stanza-condition table (style.md: it lives here).
//
// LEMP -> XMPP: each LEMP code has one condition and one error type.
// XMPP -> LEMP: every RFC 6120 condition has a LEMP code; an unknown or empty
// condition is 500. For the nine LEMP codes, CodeFor(ConditionFor(c)) == c.
//
// Choices: 413 is not-acceptable (RFC 6120 has no "too large"; the request
// does not meet the recipient's criteria); 429 is policy-violation of type
// wait (rate limits are a local policy; Prosody answers floods this way),
// and resource-constraint also reads as 429; remote-server-not-found, gone
// and redirect read as 404 (the address does not reach anyone: a permanent
// error, while 503 says try later); recipient-unavailable and
// remote-server-timeout read as 503.

// codeRows: LEMP code -> condition and type.
var codeRows = map[int]struct {
	cond stanza.Condition
	typ  stanza.ErrorType
}{
	bridge.CodeBadRequest:   {stanza.BadRequest, stanza.Modify},
	bridge.CodeUnauthorized: {stanza.NotAuthorized, stanza.Auth},
	bridge.CodeForbidden:    {stanza.Forbidden, stanza.Auth},
	bridge.CodeNotFound:     {stanza.ItemNotFound, stanza.Cancel},
	bridge.CodeConflict:     {stanza.Conflict, stanza.Cancel},
	bridge.CodeTooLarge:     {stanza.NotAcceptable, stanza.Modify},
	bridge.CodeRateLimited:  {stanza.PolicyViolation, stanza.Wait},
	bridge.CodeInternal:     {stanza.InternalServerError, stanza.Cancel},
	bridge.CodeUnavailable:  {stanza.ServiceUnavailable, stanza.Cancel},
}

// condRows: every RFC 6120 condition -> LEMP code and its recommended type.
var condRows = map[stanza.Condition]struct {
	code int
	typ  stanza.ErrorType
}{
	stanza.BadRequest:            {bridge.CodeBadRequest, stanza.Modify},
	stanza.Conflict:              {bridge.CodeConflict, stanza.Cancel},
	stanza.FeatureNotImplemented: {bridge.CodeBadRequest, stanza.Cancel},
	stanza.Forbidden:             {bridge.CodeForbidden, stanza.Auth},
	stanza.Gone:                  {bridge.CodeNotFound, stanza.Cancel},
	stanza.InternalServerError:   {bridge.CodeInternal, stanza.Cancel},
	stanza.ItemNotFound:          {bridge.CodeNotFound, stanza.Cancel},
	stanza.JIDMalformed:          {bridge.CodeBadRequest, stanza.Modify},
	stanza.NotAcceptable:         {bridge.CodeTooLarge, stanza.Modify},
	stanza.NotAllowed:            {bridge.CodeForbidden, stanza.Cancel},
	stanza.NotAuthorized:         {bridge.CodeUnauthorized, stanza.Auth},
	stanza.PolicyViolation:       {bridge.CodeRateLimited, stanza.Modify},
	stanza.RecipientUnavailable:  {bridge.CodeUnavailable, stanza.Wait},
	stanza.Redirect:              {bridge.CodeNotFound, stanza.Modify},
	stanza.RegistrationRequired:  {bridge.CodeForbidden, stanza.Auth},
	stanza.RemoteServerNotFound:  {bridge.CodeNotFound, stanza.Cancel},
	stanza.RemoteServerTimeout:   {bridge.CodeUnavailable, stanza.Wait},
	stanza.ResourceConstraint:    {bridge.CodeRateLimited, stanza.Wait},
	stanza.ServiceUnavailable:    {bridge.CodeUnavailable, stanza.Cancel},
	stanza.SubscriptionRequired:  {bridge.CodeForbidden, stanza.Auth},
	stanza.UndefinedCondition:    {bridge.CodeInternal, stanza.Cancel},
	stanza.UnexpectedRequest:     {bridge.CodeBadRequest, stanza.Wait},
}

// ConditionFor returns the stanza error condition for a LEMP error code;
// an unknown code is undefined-condition.
func ConditionFor(code int) stanza.Condition {
	_, c := ErrorFor(code)
	return c
}

// ErrorFor returns the stanza error type and condition for a LEMP error code;
// an unknown code is cancel/undefined-condition.
func ErrorFor(code int) (stanza.ErrorType, stanza.Condition) {
	if r, ok := codeRows[code]; ok {
		return r.typ, r.cond
	}
	return stanza.Cancel, stanza.UndefinedCondition
}

// CodeFor returns the LEMP error code for a stanza error condition; an
// unknown or empty condition is 500.
func CodeFor(cond stanza.Condition) int {
	if r, ok := condRows[cond]; ok {
		return r.code
	}
	return bridge.CodeInternal
}

// TypeFor returns the error type RFC 6120 recommends for a condition
// (cancel for an unknown one).
func TypeFor(cond stanza.Condition) stanza.ErrorType {
	if r, ok := condRows[cond]; ok {
		return r.typ
	}
	return stanza.Cancel
}

// StanzaError returns the stanza error for a LEMP error, its description as
// the error text. A nil error is internal-server-error.
func StanzaError(e *bridge.Error) stanza.Error {
	if e == nil {
		e = &bridge.Error{Code: bridge.CodeInternal}
	}
	typ, cond := ErrorFor(e.Code)
	se := stanza.Error{Type: typ, Condition: cond}
	if e.Desc != "" {
		se.Text = map[string]string{"": e.Desc}
	}
	return se
}

// LEMPError returns the LEMP error for a stanza error: its code from the
// condition, its description from the text (the default language, else the
// first language in sort order, else the condition).
func LEMPError(se stanza.Error) *bridge.Error {
	desc := se.Text[""]
	if desc == "" {
		langs := make([]string, 0, len(se.Text))
		for l, t := range se.Text {
			if t != "" {
				langs = append(langs, l)
			}
		}
		if len(langs) > 0 {
			desc = se.Text[slices.Min(langs)]
		}
	}
	if desc == "" {
		desc = string(se.Condition)
	}
	if desc == "" {
		desc = string(stanza.UndefinedCondition)
	}
	return &bridge.Error{Code: CodeFor(se.Condition), Desc: truncate(desc, maxErrorText)}
}

// maxErrorText bounds an error text taken from a remote stanza.
const maxErrorText = 1024

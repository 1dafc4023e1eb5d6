package bridge

import (
	"errors"
	"fmt"
)

// Error is a coded LEMP error: the `e` object of a response or message,
// {"c":404,"d":"user not found"}.
type Error struct {
	Code int    `json:"c"`
	Desc string `json:"d,omitempty"`
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s", e.Code, e.Desc) }

// LEMP error codes (contract.md, dialect decision 2).
const (
	CodeBadRequest   = 400
	CodeUnauthorized = 401
	CodeForbidden    = 403
	CodeNotFound     = 404
	CodeConflict     = 409
	CodeTooLarge     = 413
	CodeRateLimited  = 429
	CodeInternal     = 500
	CodeUnavailable  = 503
)

// Errorf builds an *Error.
func Errorf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Desc: fmt.Sprintf(format, args...)}
}

// AsError turns any error into an *Error: a coded error passes through, any
// other is an internal error (the original is for the log, not the client).
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: CodeInternal, Desc: "internal error"}
}

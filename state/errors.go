package state

import "errors"

// ErrUnavailable is wrapped by the errors of a backend that could not be
// reached or did not answer (Redis down, a broken connection, a timeout),
// as opposed to one that answered with an error. Callers answer 503: the
// request may succeed when the backend is back.
var ErrUnavailable = errors.New("state: backend unavailable")

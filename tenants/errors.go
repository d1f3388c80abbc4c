package tenants

import (
	"errors"
	"fmt"
)

// The sentinels callers map to answers (the REST layer: 404, 409, 400, 401).
// Errors are wrapped with context; test them with errors.Is.
var (
	// ErrNotFound: no such tenant or key, or a key of another tenant.
	ErrNotFound = errors.New("not found")
	// ErrExists: a tenant with that id exists.
	ErrExists = errors.New("already exists")
	// ErrInvalid: a request is malformed (an id, a quota, a role, a key's
	// name or expiry). Quota errors are also *FieldError.
	ErrInvalid = errors.New("invalid")
	// ErrUnauthenticated: a token is malformed, unknown or has the wrong
	// secret; which of these is deliberately not said. ErrRevoked and
	// ErrExpired wrap it, so errors.Is(err, ErrUnauthenticated) holds for
	// every failed Authenticate.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrRevoked: the token is right but its key was revoked.
	ErrRevoked = fmt.Errorf("%w: key revoked", ErrUnauthenticated)
	// ErrExpired: the token is right but its key has expired.
	ErrExpired = fmt.Errorf("%w: key expired", ErrUnauthenticated)
)

// invalidError marks err as a bad request without changing its message.
type invalidError struct{ err error }

func (e *invalidError) Error() string   { return e.err.Error() }
func (e *invalidError) Unwrap() []error { return []error{e.err, ErrInvalid} }

// invalid wraps err so that errors.Is(err, ErrInvalid) holds.
func invalid(err error) error { return &invalidError{err} }

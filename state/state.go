package state

import (
	"errors"

	"github.com/weirstream/weir/abi"
)

// ID identifies a registered state within one Backend.
type ID uint32

// Backend stores the keyed state and timers of one task (all operators of
// its chain). It is used by a single goroutine, the task's: implementations
// need no locking for the calls below.
//
// Every cell is addressed by (state ID, key group, key, sub key). Value state
// uses an empty sub key; map state uses the map key as sub key; list state
// uses Append and Scan. Key group comes first in every storage key so that a
// snapshot can be split by key-group range (rescaling).
//
// Byte slices passed in are not retained: the backend copies what it keeps.
// Slices returned (Get, Scan callbacks) are valid only until the next call on
// the backend and must not be modified.
type Backend interface {
	// Register returns the ID of state `name` of `operator`. Registering the
	// same (operator, name) again returns the same ID; with another kind it
	// is an error.
	Register(operator, name string, kind abi.StateKind) (ID, error)

	Get(id ID, kg int, key, sub []byte) (value []byte, ok bool, err error)
	Put(id ID, kg int, key, sub, value []byte) error
	Delete(id ID, kg int, key, sub []byte) error
	// Append adds value at the end of the list of (id, kg, key).
	Append(id ID, kg int, key, value []byte) error
	// Scan calls fn for every entry of (id, kg, key): map entries in
	// ascending sub-key order, list values in append order (sub is nil).
	// fn's error stops the scan and is returned. fn must not call the backend.
	Scan(id ID, kg int, key []byte, fn func(sub, value []byte) error) error
	// Clear removes every entry of (id, kg, key).
	Clear(id ID, kg int, key []byte) error

	// RegisterTimer adds a timer; registering an existing timer is a no-op.
	RegisterTimer(t Timer) error
	// DeleteTimer removes a timer; deleting a missing timer is a no-op.
	DeleteTimer(t Timer) error
	// FireTimers removes, in ascending timestamp order (ties: key group, then
	// key), every timer of (owner, domain) with Timestamp <= upTo, and calls
	// fn for each. Timers registered by fn with Timestamp <= upTo fire in the
	// same call. fn may call any method but FireTimers; tm.Key is valid
	// until fn returns.
	FireTimers(owner uint32, domain abi.TimeDomain, upTo int64, fn func(Timer) error) error
	// NextTimer returns the earliest timestamp of (owner, domain).
	NextTimer(owner uint32, domain abi.TimeDomain) (ts int64, ok bool, err error)

	// Close releases the backend's resources.
	Close() error
}

// Timer is a registered timer. Owner is the runtime's number for the operator
// within the task (its chain position); Key and KeyGroup are the key it fires for.
type Timer struct {
	Owner     uint32
	Domain    abi.TimeDomain
	Timestamp int64
	KeyGroup  int
	Key       []byte
}

// ErrKindMismatch is returned by Register when a name is reused with another kind.
var ErrKindMismatch = errors.New("state: registered again with another kind")

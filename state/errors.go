package state

import (
	"errors"
	"fmt"

	"github.com/weirstream/weir/abi"
)

// MaxKeyGroups is the number of key groups a backend accepts: valid key
// groups are 0 <= kg < MaxKeyGroups (Flink's maximum parallelism, 2^15).
// Storage keys begin with the key group as a big-endian u16; the values from
// MaxKeyGroups up are free for backend metadata (see doc.go).
const MaxKeyGroups = 1 << 15

// Argument errors. Each wraps abi.ErrInvalid, so a host call that passes one
// through returns Invalid to the guest (wasmhost maps abi.Errno values).
var (
	// ErrUnknownState: the state ID was not returned by Register on this backend.
	ErrUnknownState = fmt.Errorf("state: unknown state id: %w", abi.ErrInvalid)
	// ErrWrongKind: the call does not apply to the state's kind (Append on
	// value or map state, Get/Put/Delete on list state, a sub key on value
	// state) or Register was given an unknown kind.
	ErrWrongKind = fmt.Errorf("state: operation not valid for the state's kind: %w", abi.ErrInvalid)
	// ErrKeyGroupRange: a key group outside [0, MaxKeyGroups).
	ErrKeyGroupRange = fmt.Errorf("state: key group out of range: %w", abi.ErrInvalid)
	// ErrTimeDomain: a timer domain other than abi.EventTime and abi.ProcessingTime.
	ErrTimeDomain = fmt.Errorf("state: unknown time domain: %w", abi.ErrInvalid)
)

// ErrClosed is returned by every call on a backend after Close.
var ErrClosed = errors.New("state: backend is closed")

// ErrReentrantFire is returned by FireTimers when called from inside the fn
// of another FireTimers call of the same backend: the outer call owns the
// timer queues while it runs.
var ErrReentrantFire = errors.New("state: FireTimers called from a FireTimers callback")

func keyGroupError(kg int) error {
	return fmt.Errorf("key group %d not in [0, %d): %w", kg, MaxKeyGroups, ErrKeyGroupRange)
}

func domainError(d abi.TimeDomain) error {
	return fmt.Errorf("time domain %d: %w", d, ErrTimeDomain)
}

package wasmhost

import "github.com/weirstream/weir/abi"

// StateAccess is the keyed state an instance's operator may use; the runtime
// supplies it per operator instance (it computes key groups and checks that
// the key belongs to the task). Slices passed in are not retained; slices
// returned are valid until the next call.
//
// An error that is an abi.Errno is returned to the guest as that code. Any
// other error is returned to the guest as abi.ErrInternal and fails the call
// (Process returns it).
type StateAccess interface {
	Register(name string, kind abi.StateKind) (int32, error)
	Get(id int32, key, sub []byte) (value []byte, ok bool, err error)
	Put(id int32, key, sub, value []byte) error
	Delete(id int32, key, sub []byte) error
	Append(id int32, key, value []byte) error
	Scan(id int32, key []byte, fn func(sub, value []byte) error) error
	Clear(id int32, key []byte) error
}

// Timers is the timer service and clocks of an operator instance.
type Timers interface {
	RegisterTimer(d abi.TimeDomain, key []byte, ts int64) error
	DeleteTimer(d abi.TimeDomain, key []byte, ts int64) error
	// Watermark is the operator's current event-time watermark.
	Watermark() int64
	// ProcessingTime is the current processing time in epoch milliseconds.
	ProcessingTime() int64
}

// Logger receives guest log lines (ImportLog) and captured stdout/stderr.
type Logger interface {
	GuestLog(level abi.LogLevel, msg string)
}

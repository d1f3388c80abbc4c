// Package abi is the contract between the Weir host and guest operator modules:
// versioned function names, error codes, the record-batch encoding and the key
// hashing that maps keys to key groups.
//
// It is pure Go with no dependencies so that it builds both for the host and
// for GOOS=wasip1 guests (the Go SDK uses it). ABI.md beside this file is the
// normative specification; this package is its Go rendering.
package abi

import "fmt"

// Version is the ABI version a guest reports from ExportABIVersion.
const Version = 1

// HostModule is the Wasm import module name of every host function.
const HostModule = "weir"

// Guest exports. A module must export all of them (plus "memory").
const (
	// ExportABIVersion: () -> i32. Returns Version.
	ExportABIVersion = "weir_abi_version"
	// ExportOperators: () -> i64. Returns ptr<<32 | len of the operator table
	// (see EncodeOperatorTable) in guest memory.
	ExportOperators = "weir_operators"
	// ExportBuffer: (size i32) -> i32. Returns a pointer to a guest-owned
	// buffer of at least size bytes, into which the host writes the argument
	// of the next ExportOpen or ExportProcess call.
	ExportBuffer = "weir_buffer"
	// ExportOpen: (ptr i32, len i32) -> i32 status. Argument: an encoded
	// OpenInfo. Creates the operator this instance runs.
	ExportOpen = "weir_open"
	// ExportProcess: (input i32, ptr i32, len i32) -> i32 status. Argument:
	// an event batch that arrived on the operator's input number `input`.
	ExportProcess = "weir_process"
	// ExportClose: () -> i32 status. End of the operator's life.
	ExportClose = "weir_close"
	// ExportInitialize is the reactor initialiser (WASI); the host calls it
	// once after instantiation when present.
	ExportInitialize = "_initialize"
)

// Host imports, all in module HostModule. Pointers and lengths are i32 into
// the guest's exported memory; the host bounds-checks every one and traps the
// call on a bad one.
const (
	ImportLog            = "log"             // (level, ptr, len)
	ImportFail           = "fail"            // (ptr, len)
	ImportEmit           = "emit"            // (ptr, len) -> i32
	ImportStateRegister  = "state_register"  // (name_ptr, name_len, kind) -> i32
	ImportStateGet       = "state_get"       // (state, kptr, klen, sptr, slen, out_ptr, out_cap) -> i32
	ImportStatePut       = "state_put"       // (state, kptr, klen, sptr, slen, vptr, vlen) -> i32
	ImportStateDelete    = "state_delete"    // (state, kptr, klen, sptr, slen) -> i32
	ImportStateAppend    = "state_append"    // (state, kptr, klen, vptr, vlen) -> i32
	ImportStateScan      = "state_scan"      // (state, kptr, klen, out_ptr, out_cap) -> i32
	ImportStateClear     = "state_clear"     // (state, kptr, klen) -> i32
	ImportTimerRegister  = "timer_register"  // (domain, kptr, klen, ts i64) -> i32
	ImportTimerDelete    = "timer_delete"    // (domain, kptr, klen, ts i64) -> i32
	ImportWatermark      = "watermark"       // () -> i64
	ImportProcessingTime = "processing_time" // () -> i64
)

// Status is the i32 a guest export returns.
type Status int32

const (
	StatusOK Status = 0
	// StatusError: the operator returned an error; its message was passed
	// to ImportFail before returning.
	StatusError Status = 1
	// StatusPanic: the operator panicked; the message was passed to ImportFail.
	StatusPanic Status = 2
	// StatusUnknownOperator: ExportOpen named an operator the module does not export.
	StatusUnknownOperator Status = 3
	// StatusBadInput: the guest could not decode the host's argument.
	StatusBadInput Status = 4
)

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusError:
		return "operator error"
	case StatusPanic:
		return "operator panic"
	case StatusUnknownOperator:
		return "unknown operator"
	case StatusBadInput:
		return "guest could not decode its input"
	}
	return fmt.Sprintf("unknown status %d", int32(s))
}

// Errno is a negative i32 returned by host imports. Non-negative returns are
// results (lengths, ids).
type Errno int32

const (
	ErrNotFound    Errno = -1 // state_get: no value
	ErrInvalid     Errno = -2 // an argument is out of range (unknown state id, bad kind, bad domain)
	ErrNotKeyed    Errno = -3 // keyed state or timers used by an operator not declared keyed
	ErrKeyNotLocal Errno = -4 // the key's key group is not owned by this task
	ErrNotAllowed  Errno = -5 // call not allowed now (state_register outside weir_open)
	ErrOutputLimit Errno = -6 // emit would exceed the output cap for this input batch
	ErrStateLimit  Errno = -7 // state would exceed its byte quota
	ErrInternal    Errno = -8 // host-side failure (storage); the task fails after the call
)

var errnoNames = map[Errno]string{
	ErrNotFound: "not found", ErrInvalid: "invalid argument", ErrNotKeyed: "operator is not keyed",
	ErrKeyNotLocal: "key not owned by this task", ErrNotAllowed: "not allowed now",
	ErrOutputLimit: "output limit exceeded", ErrStateLimit: "state limit exceeded",
	ErrInternal: "internal host error",
}

func (e Errno) Error() string {
	if s, ok := errnoNames[e]; ok {
		return "weir: " + s
	}
	return "weir: unknown errno"
}

// StateKind is the kind of a registered state.
type StateKind int32

const (
	StateValue StateKind = 1 // one value per key (sub key empty)
	StateMap   StateKind = 2 // sub key -> value per key
	StateList  StateKind = 3 // appended values per key, scanned in order
)

func (k StateKind) String() string {
	switch k {
	case StateValue:
		return "value"
	case StateMap:
		return "map"
	case StateList:
		return "list"
	}
	return "unknown"
}

// TimeDomain of a timer.
type TimeDomain uint8

const (
	EventTime      TimeDomain = 0
	ProcessingTime TimeDomain = 1
)

func (d TimeDomain) String() string {
	if d == ProcessingTime {
		return "processing-time"
	}
	return "event-time"
}

// LogLevel of ImportLog.
type LogLevel int32

const (
	LogDebug LogLevel = 0
	LogInfo  LogLevel = 1
	LogWarn  LogLevel = 2
	LogError LogLevel = 3
)

// Output tags of emitted records.
const (
	TagMain uint8 = 0 // the operator's main output
	TagLate uint8 = 1 // the late-data side output
)

// Timestamps are int64 milliseconds since the Unix epoch.
const (
	// NoTimestamp marks a record without event time.
	NoTimestamp int64 = -1 << 63
	// MinWatermark is the watermark before any was seen.
	MinWatermark int64 = -1 << 63
	// MaxWatermark is the final watermark of a bounded input: every
	// event-time timer fires on it.
	MaxWatermark int64 = 1<<63 - 1
)

// Operator flags in the operator table.
const (
	// FlagKeyed: the operator reads the record key and uses keyed state and
	// timers; its inputs must be key-partitioned.
	FlagKeyed uint32 = 1 << 0
)

// OperatorInfo describes one operator a module exports.
type OperatorInfo struct {
	Name  string
	Flags uint32
}

// Keyed reports whether FlagKeyed is set.
func (o OperatorInfo) Keyed() bool { return o.Flags&FlagKeyed != 0 }

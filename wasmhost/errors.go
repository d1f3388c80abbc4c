package wasmhost

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/weirstream/weir/abi"
)

// ModuleErrorCode says why Compile rejected a module. The String form is
// stable: the platform uses it as the error `type` of its REST API.
type ModuleErrorCode uint8

// Reasons a module is rejected.
const (
	// ModuleNotWasm: the bytes are not a WebAssembly 1.0 binary (empty, bad
	// magic or version).
	ModuleNotWasm ModuleErrorCode = iota + 1
	// ModuleMalformed: wazero could not decode, validate or compile it
	// (truncated, invalid code, unsupported feature).
	ModuleMalformed
	// ModuleMissingExport: a required export (section 2 of ABI.md, or the
	// memory) is missing.
	ModuleMissingExport
	// ModuleBadSignature: an export or an import of module weir has the
	// wrong type.
	ModuleBadSignature
	// ModuleUnknownImport: the module imports something the host does not
	// provide (another module, an unknown function, a memory or table).
	ModuleUnknownImport
	// ModuleABIVersion: weir_abi_version returned another version.
	ModuleABIVersion
	// ModuleBadOperatorTable: weir_operators returned an out-of-bounds or
	// malformed table, an empty one, or duplicate names.
	ModuleBadOperatorTable
	// ModuleMemoryLimit: the module declares more initial memory than the
	// limits allow.
	ModuleMemoryLimit
	// ModuleInitFailed: instantiating the module, its start function or
	// _initialize, or the weir_abi_version/weir_operators calls failed
	// (trap, deadline, proc_exit).
	ModuleInitFailed
)

var moduleErrorCodeNames = [...]string{
	ModuleNotWasm:          "not_wasm",
	ModuleMalformed:        "malformed",
	ModuleMissingExport:    "missing_export",
	ModuleBadSignature:     "bad_signature",
	ModuleUnknownImport:    "unknown_import",
	ModuleABIVersion:       "abi_version",
	ModuleBadOperatorTable: "bad_operator_table",
	ModuleMemoryLimit:      "memory_limit",
	ModuleInitFailed:       "init_failed",
}

func (c ModuleErrorCode) String() string {
	if int(c) < len(moduleErrorCodeNames) && moduleErrorCodeNames[c] != "" {
		return moduleErrorCodeNames[c]
	}
	return fmt.Sprintf("module_error(%d)", uint8(c))
}

// ModuleError is returned by Runtime.Compile for a module that is not a
// valid Weir module. Its message is meant for the tenant who uploaded it.
type ModuleError struct {
	code   ModuleErrorCode
	digest string
	msg    string
	err    error
}

func moduleErrorf(code ModuleErrorCode, digest string, cause error, format string, args ...any) *ModuleError {
	return &ModuleError{code: code, digest: digest, msg: fmt.Sprintf(format, args...), err: cause}
}

// Code is the reason of the rejection.
func (e *ModuleError) Code() ModuleErrorCode { return e.code }

// Digest is the sha256 (hex) of the rejected bytes.
func (e *ModuleError) Digest() string { return e.digest }

// Message is the explanation without the "wasmhost: module ..." prefix,
// e.g. "missing export weir_process".
func (e *ModuleError) Message() string { return e.msg }

func (e *ModuleError) Error() string {
	d := e.digest
	if len(d) > 12 {
		d = d[:12]
	}
	return "wasmhost: module sha256:" + d + ": " + e.msg
}

// Unwrap returns the underlying cause (a wazero error, a *CallError of the
// validation instance, an abi decoding error), if any.
func (e *ModuleError) Unwrap() error { return e.err }

// FailureKind classifies a *CallError.
type FailureKind uint8

// Kinds of call failures.
const (
	// FailureTrap: the guest trapped (unreachable, out-of-bounds memory
	// access, division by zero, stack overflow, ...). Cause: *TrapError.
	FailureTrap FailureKind = iota + 1
	// FailureDeadline: the call ran longer than Limits.CallTimeout and was
	// stopped. Cause: *DeadlineError.
	FailureDeadline
	// FailureCanceled: the caller's context was canceled or hit its own
	// deadline. Cause: the context's error.
	FailureCanceled
	// FailureExit: the guest called proc_exit. Cause: *ExitError.
	FailureExit
	// FailureStatus: the guest returned a non-zero status. Cause:
	// *StatusError.
	FailureStatus
	// FailureABI: the guest broke the ABI: an out-of-bounds pointer or
	// length (*BoundsError), too much output (*OutputLimitError), malformed
	// output (*MalformedOutputError), or no input buffer
	// (ErrGuestOutOfMemory).
	FailureABI
	// FailureHost: a host service the guest called failed (e.g. the state
	// backend); the guest got abi.ErrInternal. Cause: that error.
	FailureHost
	// FailureClosed: the instance is closed or failed earlier. Cause wraps
	// ErrClosed.
	FailureClosed
)

var failureKindNames = [...]string{
	FailureTrap:     "trap",
	FailureDeadline: "deadline",
	FailureCanceled: "canceled",
	FailureExit:     "exit",
	FailureStatus:   "status",
	FailureABI:      "abi_violation",
	FailureHost:     "host",
	FailureClosed:   "closed",
}

func (k FailureKind) String() string {
	if int(k) < len(failureKindNames) && failureKindNames[k] != "" {
		return failureKindNames[k]
	}
	return fmt.Sprintf("failure(%d)", uint8(k))
}

// CallError is the error of every failed call into an instance
// (Instantiate, Open, Process, Close). After a CallError the instance is
// dead: every further call fails with FailureClosed. Use Kind to decide
// what to do, errors.As on the cause for details.
type CallError struct {
	instance string
	function string
	kind     FailureKind
	err      error
}

// Instance is the InstanceConfig.Name of the failed instance.
func (e *CallError) Instance() string { return e.instance }

// Function is the guest export (weir_process, _initialize, ...) whose call
// failed, or "instantiate".
func (e *CallError) Function() string { return e.function }

// Kind classifies the failure.
func (e *CallError) Kind() FailureKind { return e.kind }

func (e *CallError) Error() string {
	if e.instance == "" {
		return "wasmhost: " + e.function + ": " + e.err.Error()
	}
	return fmt.Sprintf("wasmhost: instance %q: %s: %v", e.instance, e.function, e.err)
}

// Unwrap returns the cause.
func (e *CallError) Unwrap() error { return e.err }

// ErrClosed is wrapped by errors of calls on a closed or failed instance.
var ErrClosed = errors.New("instance is closed")

// ErrGuestOutOfMemory is wrapped when weir_buffer returned 0.
var ErrGuestOutOfMemory = errors.New("guest could not allocate the buffer")

// ErrMemoryLimit is wrapped when a module's declared initial memory exceeds
// the instance's Limits.MemoryPages.
var ErrMemoryLimit = errors.New("memory limit exceeded")

// TrapError is a WebAssembly trap. Go guests trap (unreachable) on an
// unrecovered panic or a fatal runtime error such as running out of memory,
// after printing the reason to stderr, which Stderr reports.
type TrapError struct {
	msg    string
	stack  string
	stderr string
	err    error
}

func newTrapError(err error, stderr string) *TrapError {
	s := err.Error()
	msg, stack, _ := strings.Cut(s, "\n")
	msg = strings.TrimPrefix(msg, "wasm error: ")
	return &TrapError{msg: msg, stack: strings.TrimPrefix(stack, "wasm stack trace:\n"), stderr: stderr, err: err}
}

// Message is wazero's description of the trap, e.g. "unreachable" or
// "out of bounds memory access".
func (e *TrapError) Message() string { return e.msg }

// Stack is the guest's stack trace as wazero printed it.
func (e *TrapError) Stack() string { return e.stack }

// Stderr summarises what the guest wrote to stderr during the failing call
// (see ExitError.Stderr).
func (e *TrapError) Stderr() string { return e.stderr }

func (e *TrapError) Error() string {
	if e.stderr == "" {
		return "wasm trap: " + e.msg
	}
	return fmt.Sprintf("wasm trap: %s; stderr: %q", e.msg, e.stderr)
}

// Unwrap returns wazero's error.
func (e *TrapError) Unwrap() error { return e.err }

// DeadlineError is a call stopped at Limits.CallTimeout. It matches
// context.DeadlineExceeded with errors.Is.
type DeadlineError struct{ timeout time.Duration }

// Timeout is the limit the call exceeded.
func (e *DeadlineError) Timeout() time.Duration { return e.timeout }

func (e *DeadlineError) Error() string {
	return fmt.Sprintf("deadline exceeded after %v", e.timeout)
}

// Is makes errors.Is(err, context.DeadlineExceeded) true.
func (e *DeadlineError) Is(target error) bool { return target == context.DeadlineExceeded }

// ExitError is a guest that called WASI proc_exit.
type ExitError struct {
	code   uint32
	stderr string
}

// ExitCode is the code passed to proc_exit.
func (e *ExitError) ExitCode() uint32 { return e.code }

// Stderr summarises what the guest wrote to stderr during the failing call:
// its first "panic:" or "fatal error:" line, else its last line. Empty if
// nothing was written.
func (e *ExitError) Stderr() string { return e.stderr }

func (e *ExitError) Error() string {
	if e.stderr == "" {
		return fmt.Sprintf("guest exited with code %d", e.code)
	}
	return fmt.Sprintf("guest exited with code %d; stderr: %q", e.code, e.stderr)
}

// StatusError is a non-zero status returned by weir_open, weir_process or
// weir_close, with the message the guest passed to fail.
type StatusError struct {
	status abi.Status
	msg    string
}

// Status is the status code.
func (e *StatusError) Status() abi.Status { return e.status }

// Message is the message the guest passed to fail (possibly empty).
func (e *StatusError) Message() string { return e.msg }

func (e *StatusError) Error() string {
	what := e.status.String()
	if e.msg == "" {
		return what
	}
	return what + ": " + e.msg
}

// BoundsError is a pointer/length pair outside the guest's memory: passed
// to a host import, or returned by weir_buffer or weir_operators.
type BoundsError struct {
	function string
	what     string
	ptr, len uint32
	memSize  uint64
}

// Function names the import ("weir.emit") or export ("weir_buffer").
func (e *BoundsError) Function() string { return e.function }

// Ptr is the start of the bad range.
func (e *BoundsError) Ptr() uint32 { return e.ptr }

// Len is the length of the bad range.
func (e *BoundsError) Len() uint32 { return e.len }

// MemorySize is the guest memory size in bytes at the time.
func (e *BoundsError) MemorySize() uint64 { return e.memSize }

func (e *BoundsError) Error() string {
	return fmt.Sprintf("%s: %s [%d, %d+%d) is outside the %d-byte guest memory",
		e.function, e.what, e.ptr, e.ptr, e.len, e.memSize)
}

// OutputLimitError is an emit that would take the output of one input batch
// over Limits.MaxOutputBytes.
type OutputLimitError struct {
	limit, emitted, attempted int
}

// Limit is Limits.MaxOutputBytes.
func (e *OutputLimitError) Limit() int { return e.limit }

// Emitted is the number of bytes already emitted for the batch.
func (e *OutputLimitError) Emitted() int { return e.emitted }

func (e *OutputLimitError) Error() string {
	return fmt.Sprintf("weir.emit: %d more bytes would exceed the output limit of %d bytes per input batch (%d emitted)",
		e.attempted, e.limit, e.emitted)
}

// MalformedOutputError is an emit of bytes that are not a batch of records.
// It matches abi.ErrCorrupt with errors.Is.
type MalformedOutputError struct {
	offset int
	reason string
}

// Offset is the position of the bad event within the emitted bytes.
func (e *MalformedOutputError) Offset() int { return e.offset }

func (e *MalformedOutputError) Error() string {
	return fmt.Sprintf("weir.emit: malformed output at byte %d: %s", e.offset, e.reason)
}

// Is makes errors.Is(err, abi.ErrCorrupt) true.
func (e *MalformedOutputError) Is(target error) bool { return target == abi.ErrCorrupt }

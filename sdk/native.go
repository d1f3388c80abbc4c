package sdk

import (
	"errors"
	"fmt"

	"github.com/weirstream/weir/abi"
)

// NativeState is the keyed state Native gives its operator. It has the
// method set of wasmhost.StateAccess, so the runtime passes the same value to
// a Wasm instance and to a native one. Slices passed in are not retained;
// slices returned are valid until the next call. An error that is an
// abi.Errno reaches the operator as that code; any other error reaches it as
// abi.ErrInternal and fails the call (Native returns it).
type NativeState interface {
	Register(name string, kind abi.StateKind) (int32, error)
	Get(id int32, key, sub []byte) (value []byte, ok bool, err error)
	Put(id int32, key, sub, value []byte) error
	Delete(id int32, key, sub []byte) error
	Append(id int32, key, value []byte) error
	Scan(id int32, key []byte, fn func(sub, value []byte) error) error
	Clear(id int32, key []byte) error
}

// NativeTimers is the timer service and clocks Native gives its operator,
// with the method set of wasmhost.Timers.
type NativeTimers interface {
	RegisterTimer(d abi.TimeDomain, key []byte, ts int64) error
	DeleteTimer(d abi.TimeDomain, key []byte, ts int64) error
	Watermark() int64
	ProcessingTime() int64
}

// NativeLogger receives the operator's log lines, with the method set of
// wasmhost.Logger.
type NativeLogger interface {
	GuestLog(level abi.LogLevel, msg string)
}

// Native runs an operator of this program without WebAssembly, with the
// same contract as a Wasm instance of a module built from the same code:
// the same Open/Process/Close sequence, the same batch encoding in and out,
// the same state and timer semantics and error mapping. The runtime uses it
// to measure the cost of the Wasm sandbox (same operator code, with and
// without Wasm), and tests use it to run operators natively.
//
// A Native is used by one goroutine at a time.
type Native struct {
	in   *instance
	h    nativeHost
	open []byte // encoding buffer of the OpenInfo
}

// NewNative returns an instance that can run any operator exported (with
// Export) by this program. state and timers may be nil for operators that
// are not keyed; log may be nil to discard log lines.
func NewNative(state NativeState, timers NativeTimers, log NativeLogger) *Native {
	n := &Native{}
	n.h.state, n.h.timers, n.h.logger = state, timers, log
	n.h.scanFn = n.h.appendScanEntry // made once: a method value passed per call would allocate
	n.in = newInstance(&n.h)
	return n
}

// Operators returns the operator table of the program (every Export).
func (n *Native) Operators() []abi.OperatorInfo { return exports.infos() }

// Open creates the operator info.Operator and calls its Open.
func (n *Native) Open(info abi.OpenInfo) error {
	n.open = abi.AppendOpenInfo(n.open[:0], &info)
	n.h.begin()
	return n.h.result("open", n.in.open(n.open))
}

// Process handles a batch of events that arrived on input number input. out
// holds the records the operator emitted (abi encoding, records only); it
// is valid until the next call. Process does not retain batch.
func (n *Native) Process(input int, batch []byte) (out []byte, err error) {
	n.h.begin()
	n.h.out = n.h.out[:0]
	if err := n.h.result("process", n.in.process(input, batch)); err != nil {
		return nil, err
	}
	return n.h.out, nil
}

// Close calls the operator's Close.
func (n *Native) Close() error {
	n.h.begin()
	return n.h.result("close", n.in.close())
}

// CallError is the error of a guest call that ended with a status other than
// OK: the operator returned an error (StatusError), panicked (StatusPanic),
// or the host named an unknown operator or sent undecodable input. Message
// is what the guest passed to `fail`.
type CallError struct {
	Call    string // "open", "process" or "close"
	Status  abi.Status
	Message string
}

func (e *CallError) Error() string {
	return "sdk: " + e.Call + ": " + e.Status.String() + ": " + e.Message
}

// nativeHost implements host on the runtime's interfaces, with the same
// semantics as the Wasm host functions.
type nativeHost struct {
	state   NativeState
	timers  NativeTimers
	logger  NativeLogger
	out     []byte // records emitted during the current call
	failMsg string
	hostErr error // first non-Errno failure of the state or timers
	scan    []byte
	scanFn  func(sub, value []byte) error
}

func (h *nativeHost) begin() {
	h.failMsg, h.hostErr = "", nil
}

// result maps a call's status to an error. A failure of the host itself
// takes precedence: it is why the operator failed.
func (h *nativeHost) result(call string, st abi.Status) error {
	if h.hostErr != nil {
		return fmt.Errorf("sdk: %s: host failure: %w", call, h.hostErr)
	}
	if st == abi.StatusOK {
		return nil
	}
	return &CallError{Call: call, Status: st, Message: h.failMsg}
}

// code maps an error of the runtime's interfaces to the result the guest
// sees.
func (h *nativeHost) code(err error) int32 {
	if err == nil {
		return 0
	}
	if e, ok := err.(abi.Errno); ok {
		return int32(e)
	}
	var e abi.Errno
	if errors.As(err, &e) {
		return int32(e)
	}
	if h.hostErr == nil {
		h.hostErr = err
	}
	return int32(abi.ErrInternal)
}

func (h *nativeHost) log(level abi.LogLevel, msg string) {
	if h.logger != nil {
		h.logger.GuestLog(level, msg)
	}
}

func (h *nativeHost) fail(msg string) { h.failMsg = msg }

func (h *nativeHost) emit(batch []byte) int32 {
	h.out = append(h.out, batch...)
	return 0
}

func (h *nativeHost) stateRegister(name string, kind abi.StateKind) int32 {
	if h.state == nil {
		return int32(abi.ErrNotKeyed)
	}
	id, err := h.state.Register(name, kind)
	if err != nil {
		return h.code(err)
	}
	return id
}

func (h *nativeHost) stateGet(id int32, key, sub, out []byte) int32 {
	if h.state == nil {
		return int32(abi.ErrNotKeyed)
	}
	v, ok, err := h.state.Get(id, key, sub)
	if err != nil {
		return h.code(err)
	}
	if !ok {
		return int32(abi.ErrNotFound)
	}
	if len(v) <= len(out) {
		copy(out, v)
	}
	return int32(len(v))
}

func (h *nativeHost) statePut(id int32, key, sub, value []byte) int32 {
	if h.state == nil {
		return int32(abi.ErrNotKeyed)
	}
	return h.code(h.state.Put(id, key, sub, value))
}

func (h *nativeHost) stateDelete(id int32, key, sub []byte) int32 {
	if h.state == nil {
		return int32(abi.ErrNotKeyed)
	}
	return h.code(h.state.Delete(id, key, sub))
}

func (h *nativeHost) stateAppend(id int32, key, value []byte) int32 {
	if h.state == nil {
		return int32(abi.ErrNotKeyed)
	}
	return h.code(h.state.Append(id, key, value))
}

func (h *nativeHost) appendScanEntry(sub, value []byte) error {
	h.scan = abi.AppendScanEntry(h.scan, sub, value)
	return nil
}

func (h *nativeHost) stateScan(id int32, key, out []byte) int32 {
	if h.state == nil {
		return int32(abi.ErrNotKeyed)
	}
	h.scan = h.scan[:0]
	if err := h.state.Scan(id, key, h.scanFn); err != nil {
		return h.code(err)
	}
	n := len(h.scan)
	if n <= len(out) {
		copy(out, h.scan)
	}
	if cap(h.scan) > maxKeptBuffer {
		h.scan = nil
	}
	return int32(n)
}

func (h *nativeHost) stateClear(id int32, key []byte) int32 {
	if h.state == nil {
		return int32(abi.ErrNotKeyed)
	}
	return h.code(h.state.Clear(id, key))
}

func (h *nativeHost) timerRegister(d abi.TimeDomain, key []byte, ts int64) int32 {
	if h.timers == nil {
		return int32(abi.ErrNotKeyed)
	}
	return h.code(h.timers.RegisterTimer(d, key, ts))
}

func (h *nativeHost) timerDelete(d abi.TimeDomain, key []byte, ts int64) int32 {
	if h.timers == nil {
		return int32(abi.ErrNotKeyed)
	}
	return h.code(h.timers.DeleteTimer(d, key, ts))
}

func (h *nativeHost) watermark() int64 {
	if h.timers == nil {
		return abi.MinWatermark
	}
	return h.timers.Watermark()
}

func (h *nativeHost) processingTime() int64 {
	if h.timers == nil {
		return 0
	}
	return h.timers.ProcessingTime()
}

package wasmhost

import (
	"context"
	"errors"
	"fmt"
	"github.com/weirstream/weir/wasmhost/internal/interrupt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"

	"github.com/weirstream/weir/abi"
)

// phase is what the instance is doing; host imports check it (emit only in
// weir_process, state_register only in weir_open, ...).
type phase uint8

const (
	phaseIdle    phase = iota // between calls, and in weir_buffer, weir_abi_version, weir_operators
	phaseInit                 // instantiation: start function and _initialize
	phaseOpen                 // weir_open
	phaseProcess              // weir_process
	phaseClose                // weir_close
)

// outputShrinkCap: an output buffer that grew past this for one unusual
// batch is released when the next batches are much smaller, so one spike
// does not pin memory for the life of the task.
const outputShrinkCap = 8 << 20

// Instance is one instantiated module running one operator of one task. It
// has its own linear memory and is not safe for concurrent use: the task
// goroutine makes every call. After any error from Open, Process or Close
// the instance is dead (ABI.md: instances are disposable); create a new one.
type Instance struct {
	m      *Module
	name   string
	limits Limits
	state  StateAccess
	timers Timers
	logger Logger

	mod                                                       api.Module
	fnVersion, fnOperators, fnBuffer, fnOpen, fnProc, fnClose api.Function

	phase  phase
	opened bool
	keyed  bool
	closed bool
	dead   error // the failure that killed the instance

	stack   [3]uint64
	out     []byte // records emitted during the current weir_process
	scratch []byte // encoded OpenInfo, state_scan results
	scanFn  func(sub, value []byte) error

	// Per call: set by host imports, read when the call returns.
	failMsg   string
	violation error // ABI violation that trapped the call
	hostErr   error // host service failure reported to the guest as ErrInternal

	// Interruption of instrumented modules: the flag the guest's loops
	// check, the per-call deadline timer, and why the flag was set.
	flag      api.MutableGlobal
	timer     *time.Timer
	intMu     sync.Mutex
	armed     bool
	interrupt interruptReason

	memory         linearMemory
	stdout, stderr lineWriter
	logs           logLimiter
	stderrPanic    string // first "panic:"/"fatal error:" stderr line of the call
	stderrLast     string // last non-empty stderr line of the call
}

// callContext is the context of one guest call. Host imports find their
// Instance by asserting the context wazero hands them to *callContext,
// which costs a type check instead of a map lookup or a context chain walk.
type callContext struct {
	context.Context
	inst *Instance
}

type instanceKey struct{}

// Value makes the instance reachable with ctx.Value too, in case wazero
// ever wraps the context it passes to host functions.
func (c *callContext) Value(key any) any {
	if key == (instanceKey{}) {
		return c.inst
	}
	return c.Context.Value(key)
}

var errNoInstance = errors.New("wasmhost: host function called outside an instance call")

// callerOf returns the instance whose call is running on ctx.
func callerOf(ctx context.Context) *Instance {
	if c, ok := ctx.(*callContext); ok {
		return c.inst
	}
	if i, ok := ctx.Value(instanceKey{}).(*Instance); ok {
		return i
	}
	panic(errNoInstance)
}

// Instantiate creates an instance: its own memory, WASI context with
// captured stdout/stderr, and the guest's _initialize run. The start
// function and _initialize run under Limits.CallTimeout.
func (m *Module) Instantiate(ctx context.Context, ic InstanceConfig) (*Instance, error) {
	if m.closed.Load() || m.rt.closed.Load() {
		return nil, fmt.Errorf("wasmhost: instance %q: %w: the module or runtime is closed", ic.Name, ErrClosed)
	}
	limits := ic.Limits.withFallback(m.rt.cfg.DefaultLimits)
	if err := limits.Validate(); err != nil {
		return nil, fmt.Errorf("wasmhost: instance %q: %w", ic.Name, err)
	}
	if limits.MemoryPages > m.rt.cfg.MemoryLimitPages {
		return nil, fmt.Errorf("wasmhost: instance %q: limits.MemoryPages %d exceeds the runtime's MemoryLimitPages %d",
			ic.Name, limits.MemoryPages, m.rt.cfg.MemoryLimitPages)
	}
	if m.minPages > limits.MemoryPages {
		return nil, fmt.Errorf("wasmhost: instance %q: module declares %d initial memory pages, more than the limit of %d: %w",
			ic.Name, m.minPages, limits.MemoryPages, ErrMemoryLimit)
	}
	now := ic.Now
	if now == nil {
		now = time.Now
	}
	i := &Instance{
		m:      m,
		name:   ic.Name,
		limits: limits,
		state:  ic.State,
		timers: ic.Timers,
		logger: ic.Logger,
		memory: linearMemory{max: uint64(limits.MemoryPages) * pageSize},
		logs:   newLogLimiter(limits.MaxLogBytesPerSecond, now),
	}
	i.stdout = lineWriter{inst: i, level: abi.LogInfo}
	i.stderr = lineWriter{inst: i, level: abi.LogWarn, stderr: true}
	i.scanFn = i.appendScanEntry

	cfg := m.modCfg.WithStdout(&i.stdout).WithStderr(&i.stderr)
	actx := experimental.WithMemoryAllocator(ctx, &i.memory)
	i.phase = phaseInit
	cc, cancel := i.begin(actx)
	mod, err := m.engine.InstantiateModule(cc, m.compiled, cfg)
	i.finish(cancel)
	i.mod = mod
	if err = i.end(ctx, cc, "instantiate", err); err != nil {
		// wazero does not free the memory of a failed instantiation.
		i.memory.Free()
		return nil, err
	}
	if m.interruptible {
		if i.flag, err = interrupt.Flag(mod); err != nil {
			_ = mod.Close(ctx)
			return nil, err
		}
		i.timer = time.AfterFunc(time.Hour, i.interruptDeadline)
		i.timer.Stop()
		m.rt.track(i)
	}
	i.fnVersion = mod.ExportedFunction(abi.ExportABIVersion)
	i.fnOperators = mod.ExportedFunction(abi.ExportOperators)
	i.fnBuffer = mod.ExportedFunction(abi.ExportBuffer)
	i.fnOpen = mod.ExportedFunction(abi.ExportOpen)
	i.fnProc = mod.ExportedFunction(abi.ExportProcess)
	i.fnClose = mod.ExportedFunction(abi.ExportClose)
	if m.hasInit {
		if err := i.call(ctx, abi.ExportInitialize, mod.ExportedFunction(abi.ExportInitialize), i.stack[:0]); err != nil {
			return nil, err
		}
	}
	i.phase = phaseIdle
	return i, nil
}

// begin prepares a guest call: the deadline, and the context through which
// host imports find this instance. The context is allocated per call
// because wazero's deadline watcher goroutine may still read it after the
// call returned.
func (i *Instance) begin(ctx context.Context) (*callContext, context.CancelFunc) {
	i.failMsg, i.violation, i.hostErr = "", nil, nil
	i.stderrPanic, i.stderrLast = "", ""
	i.memory.enter()
	if i.flag != nil {
		return i.beginInterruptible(ctx)
	}
	dctx, cancel := context.WithTimeout(ctx, i.limits.CallTimeout)
	return &callContext{Context: dctx, inst: i}, cancel
}

// interruptReason is why the host set an instance's interrupt flag.
type interruptReason uint8

const (
	notInterrupted interruptReason = iota
	interruptedDeadline
	interruptedCanceled
	interruptedClosed // the runtime was closed
)

// beginInterruptible arms the deadline timer and, when ctx can be
// cancelled, a cancellation hook; both set the guest's interrupt flag. The
// mutex makes sure a timer that fires as a call ends never leaks into the
// next call.
func (i *Instance) beginInterruptible(ctx context.Context) (*callContext, context.CancelFunc) {
	i.intMu.Lock()
	i.flag.Set(0)
	i.interrupt, i.armed = notInterrupted, true
	i.intMu.Unlock()
	i.timer.Reset(i.limits.CallTimeout)
	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() { i.setInterrupt(interruptedCanceled) })
	}
	return &callContext{Context: ctx, inst: i}, func() {
		i.timer.Stop()
		if stop != nil {
			stop()
		}
		i.intMu.Lock()
		i.armed = false
		i.intMu.Unlock()
	}
}

// release stops interruption of a dead or closed instance.
func (i *Instance) release() {
	if i.timer != nil {
		i.timer.Stop()
		i.m.rt.untrack(i)
	}
}

func (i *Instance) interruptDeadline() { i.setInterrupt(interruptedDeadline) }

func (i *Instance) setInterrupt(r interruptReason) {
	i.intMu.Lock()
	defer i.intMu.Unlock()
	if i.armed && i.interrupt == notInterrupted {
		i.interrupt = r
		i.flag.Set(1)
	}
}

// interruption returns why the current call was interrupted, if it was.
func (i *Instance) interruption() interruptReason {
	if i.flag == nil {
		return notInterrupted
	}
	i.intMu.Lock()
	defer i.intMu.Unlock()
	return i.interrupt
}

// finish ends what begin started.
func (i *Instance) finish(cancel context.CancelFunc) {
	cancel()
	i.memory.leave()
}

// end classifies the outcome of a guest call; any failure kills the
// instance.
func (i *Instance) end(parent context.Context, cc *callContext, fn string, err error) error {
	i.stdout.flush()
	i.stderr.flush()
	var kind FailureKind
	var cause error
	var exit *sys.ExitError
	switch {
	case i.violation != nil:
		kind, cause = FailureABI, i.violation
	case i.hostErr != nil:
		kind, cause = FailureHost, i.hostErr
	case err == nil:
		return nil
	case i.m.rt.closed.Load():
		kind, cause = FailureClosed, fmt.Errorf("%w: the runtime was closed (%v)", ErrClosed, err)
	case i.interruption() == interruptedCanceled:
		kind, cause = FailureCanceled, context.Cause(parent)
	case i.interruption() == interruptedDeadline:
		kind, cause = FailureDeadline, &DeadlineError{timeout: i.limits.CallTimeout}
	case errors.As(err, &exit):
		code := exit.ExitCode()
		interrupted := code == sys.ExitCodeDeadlineExceeded || code == sys.ExitCodeContextCanceled
		switch {
		case interrupted && parent.Err() != nil:
			kind, cause = FailureCanceled, context.Cause(parent)
		case code == sys.ExitCodeDeadlineExceeded && errors.Is(cc.Err(), context.DeadlineExceeded):
			kind, cause = FailureDeadline, &DeadlineError{timeout: i.limits.CallTimeout}
		default:
			kind, cause = FailureExit, &ExitError{code: code, stderr: i.stderrSummary()}
		}
	default:
		kind, cause = FailureTrap, newTrapError(err, i.stderrSummary())
	}
	ce := &CallError{instance: i.name, function: fn, kind: kind, err: cause}
	i.kill(ce)
	return ce
}

// call runs fn with stack (params in, results out) under the deadline.
func (i *Instance) call(ctx context.Context, name string, fn api.Function, stack []uint64) error {
	if err := i.usable(name); err != nil {
		return err
	}
	cc, cancel := i.begin(ctx)
	err := fn.CallWithStack(cc, stack)
	i.finish(cancel)
	return i.end(ctx, cc, name, err)
}

// usable fails calls on a closed or dead instance.
func (i *Instance) usable(fn string) error {
	switch {
	case i.dead != nil:
		cause := i.dead
		var ce *CallError
		if errors.As(cause, &ce) {
			cause = fmt.Errorf("%s: %w", ce.function, ce.err)
		}
		return &CallError{instance: i.name, function: fn, kind: FailureClosed,
			err: fmt.Errorf("%w: it failed earlier in %v", ErrClosed, cause)}
	case i.closed:
		return &CallError{instance: i.name, function: fn, kind: FailureClosed, err: ErrClosed}
	}
	return nil
}

// kill records the first failure and frees the guest's memory now rather
// than when the task gets around to Close.
func (i *Instance) kill(err error) {
	if i.dead == nil {
		i.dead = err
	}
	i.release()
	if i.mod != nil {
		_ = i.mod.Close(context.Background())
	}
}

// checkStatus turns the status a guest export returned into an error.
func (i *Instance) checkStatus(fn string) error {
	st := abi.Status(int32(uint32(i.stack[0])))
	if st == abi.StatusOK {
		return nil
	}
	ce := &CallError{instance: i.name, function: fn, kind: FailureStatus, err: &StatusError{status: st, msg: i.failMsg}}
	i.kill(ce)
	return ce
}

// invoke runs an export that takes an argument (weir_open, weir_process):
// weir_buffer, the copy of arg into the guest, then the export itself, all
// under one deadline. An empty argument needs no buffer: it is passed as
// (0, 0) without calling weir_buffer.
func (i *Instance) invoke(ctx context.Context, name string, fn api.Function, ph phase, arg []byte, input int) error {
	if err := i.usable(name); err != nil {
		return err
	}
	if uint64(len(arg)) > math.MaxUint32 {
		return fmt.Errorf("wasmhost: instance %q: argument of %d bytes does not fit a 32-bit guest", i.name, len(arg))
	}
	cc, cancel := i.begin(ctx)
	defer i.finish(cancel)
	var ptr uint32
	if len(arg) > 0 {
		var err error
		if ptr, err = i.deliver(ctx, cc, arg); err != nil {
			return err
		}
	}
	stack := i.stack[:2]
	if ph == phaseProcess {
		i.stack[0], i.stack[1], i.stack[2] = uint64(input), uint64(ptr), uint64(len(arg))
		stack = i.stack[:3]
	} else {
		i.stack[0], i.stack[1] = uint64(ptr), uint64(len(arg))
	}
	i.phase = ph
	err := fn.CallWithStack(cc, stack)
	i.phase = phaseIdle
	if err := i.end(ctx, cc, name, err); err != nil {
		return err
	}
	return i.checkStatus(name)
}

// deliver asks the guest for a buffer (weir_buffer), checks it and copies
// arg into it.
func (i *Instance) deliver(ctx context.Context, cc *callContext, arg []byte) (uint32, error) {
	i.stack[0] = uint64(len(arg))
	err := i.fnBuffer.CallWithStack(cc, i.stack[:1])
	if err := i.end(ctx, cc, abi.ExportBuffer, err); err != nil {
		return 0, err
	}
	ptr := uint32(i.stack[0])
	var cause error
	if ptr == 0 {
		cause = fmt.Errorf("weir_buffer(%d) returned 0: %w", len(arg), ErrGuestOutOfMemory)
	} else if mem := i.mod.Memory(); !mem.Write(ptr, arg) {
		cause = &BoundsError{function: abi.ExportBuffer, what: "returned buffer", ptr: ptr, len: uint32(len(arg)),
			memSize: uint64(mem.Size())}
	}
	if cause != nil {
		ce := &CallError{instance: i.name, function: abi.ExportBuffer, kind: FailureABI, err: cause}
		i.kill(ce)
		return 0, ce
	}
	return ptr, nil
}

// Open creates the operator the instance runs (weir_open). The operator
// must be in the module's operator table; its KEYED flag decides whether
// the guest may use state and timers.
func (i *Instance) Open(ctx context.Context, info abi.OpenInfo) error {
	if err := i.usable(abi.ExportOpen); err != nil {
		return err
	}
	if i.opened {
		return fmt.Errorf("wasmhost: instance %q: Open called twice", i.name)
	}
	op, ok := i.m.Operator(info.Operator)
	if !ok {
		names := make([]string, len(i.m.ops))
		for j, o := range i.m.ops {
			names[j] = o.Name
		}
		ce := &CallError{instance: i.name, function: abi.ExportOpen, kind: FailureStatus, err: &StatusError{
			status: abi.StatusUnknownOperator,
			msg:    fmt.Sprintf("the module exports no operator %q (it has: %s)", info.Operator, strings.Join(names, ", ")),
		}}
		i.kill(ce)
		return ce
	}
	if op.Keyed() && (i.state == nil || i.timers == nil) {
		return fmt.Errorf("wasmhost: instance %q: operator %q: %w", i.name, op.Name, errNilConfig)
	}
	i.opened, i.keyed = true, op.Keyed()
	i.scratch = abi.AppendOpenInfo(i.scratch[:0], &info)
	return i.invoke(ctx, abi.ExportOpen, i.fnOpen, phaseOpen, i.scratch, 0)
}

// Process hands the guest one event batch that arrived on input number
// input (weir_process) and returns the records it emitted, concatenated in
// emit order. out is valid until the next call on the instance.
func (i *Instance) Process(ctx context.Context, input int, batch []byte) (out []byte, err error) {
	if !i.opened && i.dead == nil && !i.closed {
		return nil, fmt.Errorf("wasmhost: instance %q: Process before Open", i.name)
	}
	if input < 0 || input > math.MaxInt32 {
		return nil, fmt.Errorf("wasmhost: instance %q: input number %d out of range", i.name, input)
	}
	if cap(i.out) > outputShrinkCap && len(i.out) < cap(i.out)/4 {
		i.out = nil
	}
	i.out = i.out[:0]
	if err := i.invoke(ctx, abi.ExportProcess, i.fnProc, phaseProcess, batch, input); err != nil {
		return nil, err
	}
	return i.out, nil
}

// Close ends the instance. If the operator was opened and the instance has
// not failed, it calls weir_close (the operator's end of life) and returns
// its error. It always releases the instance's memory; later calls fail.
// Closing twice is a no-op.
func (i *Instance) Close(ctx context.Context) error {
	if i.closed {
		return nil
	}
	var err error
	if i.opened && i.dead == nil {
		i.phase = phaseClose
		err = i.call(ctx, abi.ExportClose, i.fnClose, i.stack[:1])
		i.phase = phaseIdle
		if err == nil {
			err = i.checkStatus(abi.ExportClose)
		}
	}
	i.logs.reportDropped(i.logger)
	i.closed = true
	i.release()
	if i.mod != nil {
		_ = i.mod.Close(ctx)
	}
	i.out, i.scratch = nil, nil
	return err
}

// MemoryBytes is the current size of the guest's linear memory.
func (i *Instance) MemoryBytes() uint64 {
	if i.mod == nil || i.closed || i.dead != nil {
		return 0
	}
	return uint64(i.mod.Memory().Size())
}

// abiVersion calls weir_abi_version.
func (i *Instance) abiVersion(ctx context.Context) (int32, error) {
	if err := i.call(ctx, abi.ExportABIVersion, i.fnVersion, i.stack[:1]); err != nil {
		return 0, err
	}
	return int32(uint32(i.stack[0])), nil
}

// operatorTable calls weir_operators and returns a copy of the table bytes.
func (i *Instance) operatorTable(ctx context.Context) ([]byte, error) {
	if err := i.call(ctx, abi.ExportOperators, i.fnOperators, i.stack[:1]); err != nil {
		return nil, err
	}
	ptr, n := uint32(i.stack[0]>>32), uint32(i.stack[0])
	mem := i.mod.Memory()
	b, ok := mem.Read(ptr, n)
	if !ok {
		ce := &CallError{instance: i.name, function: abi.ExportOperators, kind: FailureABI,
			err: &BoundsError{function: abi.ExportOperators, what: "returned table", ptr: ptr, len: n, memSize: uint64(mem.Size())}}
		i.kill(ce)
		return nil, ce
	}
	return append([]byte(nil), b...), nil
}

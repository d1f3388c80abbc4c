package wasmhost

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/tetratelabs/wazero/api"

	"github.com/weirstream/weir/abi"
)

// hostFunc is one import of module weir (ABI.md section 3). The table below
// is the single source of truth: NewRuntime registers it, Compile checks
// guest imports against it.
type hostFunc struct {
	name            string
	params, results []api.ValueType
	paramNames      []string
	fn              api.GoModuleFunc
}

// Host functions use wazero's stack-based GoModuleFunc path: parameters and
// results are raw uint64 slots, so a call costs no reflection and no
// allocation.
var hostFuncs = []hostFunc{
	{abi.ImportLog, []api.ValueType{i32, i32, i32}, nil,
		[]string{"level", "ptr", "len"}, hostLog},
	{abi.ImportFail, []api.ValueType{i32, i32}, nil,
		[]string{"ptr", "len"}, hostFail},
	{abi.ImportEmit, []api.ValueType{i32, i32}, []api.ValueType{i32},
		[]string{"ptr", "len"}, hostEmit},
	{abi.ImportStateRegister, []api.ValueType{i32, i32, i32}, []api.ValueType{i32},
		[]string{"name_ptr", "name_len", "kind"}, hostStateRegister},
	{abi.ImportStateGet, []api.ValueType{i32, i32, i32, i32, i32, i32, i32}, []api.ValueType{i32},
		[]string{"state", "kptr", "klen", "sptr", "slen", "out_ptr", "out_cap"}, hostStateGet},
	{abi.ImportStatePut, []api.ValueType{i32, i32, i32, i32, i32, i32, i32}, []api.ValueType{i32},
		[]string{"state", "kptr", "klen", "sptr", "slen", "vptr", "vlen"}, hostStatePut},
	{abi.ImportStateDelete, []api.ValueType{i32, i32, i32, i32, i32}, []api.ValueType{i32},
		[]string{"state", "kptr", "klen", "sptr", "slen"}, hostStateDelete},
	{abi.ImportStateAppend, []api.ValueType{i32, i32, i32, i32, i32}, []api.ValueType{i32},
		[]string{"state", "kptr", "klen", "vptr", "vlen"}, hostStateAppend},
	{abi.ImportStateScan, []api.ValueType{i32, i32, i32, i32, i32}, []api.ValueType{i32},
		[]string{"state", "kptr", "klen", "out_ptr", "out_cap"}, hostStateScan},
	{abi.ImportStateClear, []api.ValueType{i32, i32, i32}, []api.ValueType{i32},
		[]string{"state", "kptr", "klen"}, hostStateClear},
	{abi.ImportTimerRegister, []api.ValueType{i32, i32, i32, i64}, []api.ValueType{i32},
		[]string{"domain", "kptr", "klen", "ts"}, hostTimerRegister},
	{abi.ImportTimerDelete, []api.ValueType{i32, i32, i32, i64}, []api.ValueType{i32},
		[]string{"domain", "kptr", "klen", "ts"}, hostTimerDelete},
	{abi.ImportWatermark, nil, []api.ValueType{i64}, nil, hostWatermark},
	{abi.ImportProcessingTime, nil, []api.ValueType{i64}, nil, hostProcessingTime},
}

func hostFuncByName(name string) (hostFunc, bool) {
	for _, hf := range hostFuncs {
		if hf.name == name {
			return hf, true
		}
	}
	return hostFunc{}, false
}

// Qualified import names, for errors.
const (
	fnLog           = abi.HostModule + "." + abi.ImportLog
	fnFail          = abi.HostModule + "." + abi.ImportFail
	fnEmit          = abi.HostModule + "." + abi.ImportEmit
	fnStateRegister = abi.HostModule + "." + abi.ImportStateRegister
	fnStateGet      = abi.HostModule + "." + abi.ImportStateGet
	fnStatePut      = abi.HostModule + "." + abi.ImportStatePut
	fnStateDelete   = abi.HostModule + "." + abi.ImportStateDelete
	fnStateAppend   = abi.HostModule + "." + abi.ImportStateAppend
	fnStateScan     = abi.HostModule + "." + abi.ImportStateScan
	fnStateClear    = abi.HostModule + "." + abi.ImportStateClear
	fnTimerRegister = abi.HostModule + "." + abi.ImportTimerRegister
	fnTimerDelete   = abi.HostModule + "." + abi.ImportTimerDelete
)

const (
	// maxResultLen is the largest length an import can return in an i32.
	maxResultLen = math.MaxInt32
	// maxFailMessage bounds the message of the fail import.
	maxFailMessage = MaxLogLine
	resultOK       = uint64(0)
)

// Errno results as stack slots: the i32 zero-extended to 64 bits.
const (
	errnoNotFound   = uint64(1<<32 + int64(abi.ErrNotFound))
	errnoInvalid    = uint64(1<<32 + int64(abi.ErrInvalid))
	errnoNotKeyed   = uint64(1<<32 + int64(abi.ErrNotKeyed))
	errnoNotAllowed = uint64(1<<32 + int64(abi.ErrNotAllowed))
	errnoInternal   = uint64(1<<32 + int64(abi.ErrInternal))
)

func errnoSlot(e abi.Errno) uint64 { return uint64(uint32(int32(e))) }

// trap fails the current call with err: wazero recovers the panic, unwinds
// the guest and returns an error from the export call, which end() turns
// into a *CallError of kind FailureABI.
func (i *Instance) trap(err error) {
	if i.violation == nil {
		i.violation = err
	}
	panic(err)
}

// span returns guest memory [ptr, ptr+n) without copying, or traps. The
// check is done in 64 bits by wazero, so ptr+n cannot wrap around.
func (i *Instance) span(mem api.Memory, fn, what string, ptr, n uint64) []byte {
	if mem != nil {
		if b, ok := mem.Read(uint32(ptr), uint32(n)); ok {
			return b
		}
	}
	var size uint64
	if mem != nil {
		size = uint64(mem.Size())
	}
	i.trap(&BoundsError{function: fn, what: what, ptr: uint32(ptr), len: uint32(n), memSize: size})
	return nil
}

// errno converts an error of a host service to the guest's return value.
// An abi.Errno goes to the guest as is; anything else is a host failure:
// the guest gets ErrInternal and the call fails when it returns.
func (i *Instance) errno(fn string, err error) uint64 {
	if err == nil {
		return resultOK
	}
	var e abi.Errno
	if errors.As(err, &e) && e < 0 {
		if e == abi.ErrInternal && i.hostErr == nil {
			i.hostErr = fmt.Errorf("%s: %w", fn, err)
		}
		return errnoSlot(e)
	}
	if i.hostErr == nil {
		i.hostErr = fmt.Errorf("%s: %w", fn, err)
	}
	return errnoInternal
}

// stateCheck returns a non-zero errno when the current call may not use
// state or timers.
func (i *Instance) stateCheck() uint64 {
	switch {
	case i.phase == phaseIdle || i.phase == phaseInit:
		return errnoNotAllowed
	case !i.keyed:
		return errnoNotKeyed
	}
	return 0
}

func hostLog(ctx context.Context, mod api.Module, stack []uint64) {
	i := callerOf(ctx)
	b := i.span(mod.Memory(), fnLog, "message", stack[1], stack[2])
	level := abi.LogLevel(int32(uint32(stack[0])))
	level = max(abi.LogDebug, min(level, abi.LogError))
	i.guestLog(level, b)
}

func hostFail(ctx context.Context, mod api.Module, stack []uint64) {
	i := callerOf(ctx)
	b := i.span(mod.Memory(), fnFail, "message", stack[0], stack[1])
	if len(b) > maxFailMessage {
		b = cutLine(b)
	}
	i.failMsg = string(b)
}

func hostEmit(ctx context.Context, mod api.Module, stack []uint64) {
	i := callerOf(ctx)
	b := i.span(mod.Memory(), fnEmit, "records", stack[0], stack[1])
	if i.phase != phaseProcess {
		stack[0] = errnoNotAllowed
		return
	}
	if len(b) > i.limits.MaxOutputBytes-len(i.out) {
		i.trap(&OutputLimitError{limit: i.limits.MaxOutputBytes, emitted: len(i.out), attempted: len(b)})
	}
	if err := checkRecords(b); err != nil {
		i.trap(err)
	}
	i.out = append(i.out, b...)
	stack[0] = resultOK
}

// checkRecords verifies that b is a sequence of well-formed Record events
// with a known tag. It only reads headers: a few ns per record.
func checkRecords(b []byte) error {
	off := 0
	for off < len(b) {
		r := b[off:]
		if k := abi.Kind(r[0]); k != abi.KindRecord {
			return &MalformedOutputError{offset: off, reason: fmt.Sprintf("event kind %v (only records may be emitted)", k)}
		}
		if len(r) < abi.RecordHeaderSize {
			return &MalformedOutputError{offset: off, reason: "truncated record header"}
		}
		if tag := r[1]; tag > abi.TagLate {
			return &MalformedOutputError{offset: off, reason: fmt.Sprintf("unknown output tag %d", tag)}
		}
		kl := uint64(binary.LittleEndian.Uint32(r[2:]))
		vl := uint64(binary.LittleEndian.Uint32(r[6:]))
		if kl > abi.MaxFieldLen || vl > abi.MaxFieldLen || kl+vl > uint64(len(r)-abi.RecordHeaderSize) {
			return &MalformedOutputError{offset: off, reason: fmt.Sprintf("key length %d and value length %d run past the end", kl, vl)}
		}
		off += abi.RecordHeaderSize + int(kl+vl)
	}
	return nil
}

func hostStateRegister(ctx context.Context, mod api.Module, stack []uint64) {
	i := callerOf(ctx)
	name := i.span(mod.Memory(), fnStateRegister, "name", stack[0], stack[1])
	kind := abi.StateKind(int32(uint32(stack[2])))
	if e := i.stateCheck(); e != 0 {
		stack[0] = e
		return
	}
	if i.phase != phaseOpen {
		stack[0] = errnoNotAllowed
		return
	}
	if kind < abi.StateValue || kind > abi.StateList || len(name) == 0 {
		stack[0] = errnoInvalid
		return
	}
	id, err := i.state.Register(string(name), kind)
	if err != nil {
		stack[0] = i.errno(fnStateRegister, err)
		return
	}
	if id < 0 {
		stack[0] = i.errno(fnStateRegister, fmt.Errorf("state backend returned negative id %d", id))
		return
	}
	stack[0] = uint64(uint32(id))
}

func hostStateGet(ctx context.Context, mod api.Module, stack []uint64) {
	i := callerOf(ctx)
	mem := mod.Memory()
	key := i.span(mem, fnStateGet, "key", stack[1], stack[2])
	sub := i.span(mem, fnStateGet, "sub key", stack[3], stack[4])
	out := i.span(mem, fnStateGet, "output buffer", stack[5], stack[6])
	if e := i.stateCheck(); e != 0 {
		stack[0] = e
		return
	}
	v, ok, err := i.state.Get(int32(uint32(stack[0])), key, sub)
	switch {
	case err != nil:
		stack[0] = i.errno(fnStateGet, err)
	case !ok:
		stack[0] = errnoNotFound
	case len(v) > maxResultLen:
		stack[0] = i.errno(fnStateGet, fmt.Errorf("value of %d bytes does not fit an i32 length", len(v)))
	default:
		if len(v) <= len(out) {
			copy(out, v)
		}
		stack[0] = uint64(uint32(len(v)))
	}
}

func hostStatePut(ctx context.Context, mod api.Module, stack []uint64) {
	i := callerOf(ctx)
	mem := mod.Memory()
	key := i.span(mem, fnStatePut, "key", stack[1], stack[2])
	sub := i.span(mem, fnStatePut, "sub key", stack[3], stack[4])
	val := i.span(mem, fnStatePut, "value", stack[5], stack[6])
	if e := i.stateCheck(); e != 0 {
		stack[0] = e
		return
	}
	stack[0] = i.errno(fnStatePut, i.state.Put(int32(uint32(stack[0])), key, sub, val))
}

func hostStateDelete(ctx context.Context, mod api.Module, stack []uint64) {
	i := callerOf(ctx)
	mem := mod.Memory()
	key := i.span(mem, fnStateDelete, "key", stack[1], stack[2])
	sub := i.span(mem, fnStateDelete, "sub key", stack[3], stack[4])
	if e := i.stateCheck(); e != 0 {
		stack[0] = e
		return
	}
	stack[0] = i.errno(fnStateDelete, i.state.Delete(int32(uint32(stack[0])), key, sub))
}

func hostStateAppend(ctx context.Context, mod api.Module, stack []uint64) {
	i := callerOf(ctx)
	mem := mod.Memory()
	key := i.span(mem, fnStateAppend, "key", stack[1], stack[2])
	val := i.span(mem, fnStateAppend, "value", stack[3], stack[4])
	if e := i.stateCheck(); e != 0 {
		stack[0] = e
		return
	}
	stack[0] = i.errno(fnStateAppend, i.state.Append(int32(uint32(stack[0])), key, val))
}

// errScanTooLarge stops a scan whose encoding no longer fits an i32 length.
var errScanTooLarge = errors.New("scan result does not fit an i32 length")

// appendScanEntry is the Scan callback; bound once per instance so a scan
// allocates no closure.
func (i *Instance) appendScanEntry(sub, value []byte) error {
	i.scratch = abi.AppendScanEntry(i.scratch, sub, value)
	if len(i.scratch) > maxResultLen {
		return errScanTooLarge
	}
	return nil
}

// scratchShrinkCap: the scan buffer is dropped after a scan that made it
// larger than this, so one huge key does not pin memory.
const scratchShrinkCap = 4 << 20

func hostStateScan(ctx context.Context, mod api.Module, stack []uint64) {
	i := callerOf(ctx)
	mem := mod.Memory()
	key := i.span(mem, fnStateScan, "key", stack[1], stack[2])
	out := i.span(mem, fnStateScan, "output buffer", stack[3], stack[4])
	if e := i.stateCheck(); e != 0 {
		stack[0] = e
		return
	}
	i.scratch = i.scratch[:0]
	if err := i.state.Scan(int32(uint32(stack[0])), key, i.scanFn); err != nil {
		stack[0] = i.errno(fnStateScan, err)
	} else {
		if len(i.scratch) <= len(out) {
			copy(out, i.scratch)
		}
		stack[0] = uint64(uint32(len(i.scratch)))
	}
	if cap(i.scratch) > scratchShrinkCap {
		i.scratch = nil
	}
}

func hostStateClear(ctx context.Context, mod api.Module, stack []uint64) {
	i := callerOf(ctx)
	key := i.span(mod.Memory(), fnStateClear, "key", stack[1], stack[2])
	if e := i.stateCheck(); e != 0 {
		stack[0] = e
		return
	}
	stack[0] = i.errno(fnStateClear, i.state.Clear(int32(uint32(stack[0])), key))
}

// timerArgs decodes and checks the arguments of timer_register and
// timer_delete; errno is non-zero when the call must return it.
func (i *Instance) timerArgs(mod api.Module, fn string, stack []uint64) (d abi.TimeDomain, key []byte, ts int64, errno uint64) {
	key = i.span(mod.Memory(), fn, "key", stack[1], stack[2])
	if e := i.stateCheck(); e != 0 {
		return 0, nil, 0, e
	}
	dom := int32(uint32(stack[0]))
	if dom != int32(abi.EventTime) && dom != int32(abi.ProcessingTime) {
		return 0, nil, 0, errnoInvalid
	}
	return abi.TimeDomain(dom), key, int64(stack[3]), 0
}

func hostTimerRegister(ctx context.Context, mod api.Module, stack []uint64) {
	i := callerOf(ctx)
	d, key, ts, e := i.timerArgs(mod, fnTimerRegister, stack)
	if e != 0 {
		stack[0] = e
		return
	}
	stack[0] = i.errno(fnTimerRegister, i.timers.RegisterTimer(d, key, ts))
}

func hostTimerDelete(ctx context.Context, mod api.Module, stack []uint64) {
	i := callerOf(ctx)
	d, key, ts, e := i.timerArgs(mod, fnTimerDelete, stack)
	if e != 0 {
		stack[0] = e
		return
	}
	stack[0] = i.errno(fnTimerDelete, i.timers.DeleteTimer(d, key, ts))
}

func hostWatermark(ctx context.Context, _ api.Module, stack []uint64) {
	i := callerOf(ctx)
	w := abi.MinWatermark
	if i.timers != nil {
		w = i.timers.Watermark()
	}
	stack[0] = uint64(w)
}

func hostProcessingTime(ctx context.Context, _ api.Module, stack []uint64) {
	i := callerOf(ctx)
	var t int64
	if i.timers != nil {
		t = i.timers.ProcessingTime()
	}
	stack[0] = uint64(t)
}

package sdk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/sdk/codec"
)

// host is the guest's view of the host functions of ABI section 3, with
// slices instead of pointer/length pairs. An out slice's length is the
// capacity offered to the host. Results follow the ABI: a negative int32 is
// an abi.Errno. The Wasm build implements it with the `weir` imports; Native
// with the runtime's StateAccess, Timers and Logger.
type host interface {
	log(level abi.LogLevel, msg string)
	fail(msg string)
	emit(batch []byte) int32
	stateRegister(name string, kind abi.StateKind) int32
	stateGet(id int32, key, sub, out []byte) int32
	statePut(id int32, key, sub, value []byte) int32
	stateDelete(id int32, key, sub []byte) int32
	stateAppend(id int32, key, value []byte) int32
	stateScan(id int32, key, out []byte) int32
	stateClear(id int32, key []byte) int32
	timerRegister(d abi.TimeDomain, key []byte, ts int64) int32
	timerDelete(d abi.TimeDomain, key []byte, ts int64) int32
	watermark() int64
	processingTime() int64
}

// Buffer sizes. Output is handed to the host when the next record would
// take the buffer past flushThreshold, so the host sees batches of about
// that size and the guest's buffer stays bounded. Scratch buffers that grew
// past maxKeptBuffer for one huge value are dropped after use.
const (
	flushThreshold = 64 << 10
	initialGetBuf  = 1 << 10
	initialScanBuf = 4 << 10
	maxKeptBuffer  = 1 << 20
	maxStackLines  = 24
	maxFailMessage = 4 << 10
)

type phase uint8

const (
	phaseNew     phase = iota // before weir_open
	phaseOpen                 // inside weir_open
	phaseReady                // open, between calls
	phaseProcess              // inside weir_process
	phaseClose                // inside weir_close
	phaseClosed               // after weir_close
	phaseFailed               // weir_open failed
)

func (p phase) String() string {
	return [...]string{"before open", "in Open", "between calls", "in Process", "in Close", "after Close", "after a failed Open"}[p]
}

// instance is one operator instance: it decodes the host's arguments,
// dispatches events to the operator, buffers its output, and turns state and
// timer calls into host calls. Both the Wasm exports and Native drive it.
type instance struct {
	h     host
	phase phase
	// direct is set on the Wasm build's instance: the hot state calls go
	// straight to the imports rather than through h (two calls fewer).
	direct bool

	reg  registration
	op   Operator
	onT  TimerHandler
	onWM WatermarkHandler
	onEO EndOfInputHandler
	cls  Closer
	info abi.OpenInfo

	ctx Context
	dec abi.Decoder
	ev  abi.Event

	// callErr is the first misuse or host failure of the current call that
	// could not be returned where it happened (Emit returns no error); the
	// call fails with it.
	callErr error

	// Output. out[:outN] holds the records not yet handed to the host;
	// len(out) == cap(out). Emit writes in place while the record ends at
	// or before outLimit, which is flushThreshold during weir_process once
	// out is allocated, and 0 otherwise, so that one comparison sends every
	// other case (misuse, a full buffer, the first record, huge records)
	// to the slow path.
	out      []byte
	outN     int
	outLimit int

	wm      int64 // watermark, cached for the current call
	wmKnown bool

	getBuf   []byte       // state_get destination; len(getBuf) == cap(getBuf) >= 8 once a state is registered
	num      [8]byte      // encoding of a fixed-width state value
	knum     [8]byte      // encoding of a fixed-width map key
	scanBufs [][]byte     // free state_scan destinations (Range calls may nest)
	w, kw    codec.Writer // value and sub-key encoders
	r        codec.Reader // value and sub-key decoder
	wbuf     []byte       // backing array of w between uses
	kwbuf    []byte       // backing array of kw between uses
}

func newInstance(h host) *instance {
	in := &instance{h: h}
	in.ctx.in = in
	in.ctx.ts = NoTimestamp
	return in
}

// open handles weir_open.
func (in *instance) open(arg []byte) (st abi.Status) {
	if in.phase != phaseNew {
		return in.failf(abi.StatusError, "sdk: weir_open called %s", in.phase)
	}
	info, err := abi.DecodeOpenInfo(arg)
	if err != nil {
		return in.failf(abi.StatusBadInput, "sdk: weir_open: %v", err)
	}
	// The argument buffer is reused for the next batch: keep a copy.
	info.Config = append([]byte(nil), info.Config...)
	reg, ok := exports.lookup(info.Operator)
	if !ok {
		return in.failf(abi.StatusUnknownOperator, "sdk: module exports no operator %q", info.Operator)
	}
	in.info, in.reg = info, reg
	in.beginCall(phaseOpen)
	defer in.endCall(&st, phaseReady, phaseFailed)

	op := reg.factory()
	if op == nil {
		return in.failf(abi.StatusError, "sdk: factory of operator %q returned nil", reg.info.Name)
	}
	in.op = op
	in.onT, _ = op.(TimerHandler)
	in.onWM, _ = op.(WatermarkHandler)
	in.onEO, _ = op.(EndOfInputHandler)
	in.cls, _ = op.(Closer)
	if o, ok := op.(Opener); ok {
		if err := o.Open(&in.ctx); err != nil {
			return in.failf(abi.StatusError, "%s", err.Error())
		}
	}
	if in.callErr != nil {
		return in.failf(abi.StatusError, "%s", in.callErr.Error())
	}
	return abi.StatusOK
}

// process handles weir_process: it dispatches every event of batch.
//
// The record branch of the loop is the per-record path of every operator:
// it decodes the header inline, sets the current key and time, and calls
// Process, with no other call. See "The hot path" in doc.go.
func (in *instance) process(input int, batch []byte) (st abi.Status) {
	if in.phase != phaseReady {
		return in.failf(abi.StatusError, "sdk: weir_process called %s", in.phase)
	}
	in.beginCall(phaseProcess)
	defer in.endCall(&st, phaseReady, phaseReady)

	c := &in.ctx
	op := in.op
	for off := 0; off < len(batch); {
		b := batch[off:]
		if b[0] == byte(abi.KindRecord) && len(b) >= abi.RecordHeaderSize {
			kl := binary.LittleEndian.Uint32(b[2:])
			vl := binary.LittleEndian.Uint32(b[6:])
			if kl > abi.MaxFieldLen || vl > abi.MaxFieldLen || uint64(len(b)-abi.RecordHeaderSize) < uint64(kl)+uint64(vl) {
				return in.failf(abi.StatusBadInput, "sdk: weir_process: %v: record key/value length out of range at offset %d of %d", abi.ErrCorrupt, off, len(batch))
			}
			k := abi.RecordHeaderSize + int(kl)
			v := k + int(vl)
			ts := int64(binary.LittleEndian.Uint64(b[10:]))
			key := b[abi.RecordHeaderSize:k:k]
			off += v
			c.key, c.hasKey, c.ts = key, true, ts
			if err := op.Process(c, Record{Key: key, Value: b[k:v:v], Timestamp: ts, Input: input}); err != nil || in.callErr != nil {
				return in.callFailed(err)
			}
			continue
		}
		in.dec.Reset(b)
		ev := &in.ev
		if err := in.dec.Next(ev); err != nil {
			return in.failf(abi.StatusBadInput, "sdk: weir_process: %v (event at offset %d of %d)", err, off, len(batch))
		}
		off += in.dec.Offset()
		if err := in.dispatch(input, ev); err != nil || in.callErr != nil {
			return in.callFailed(err)
		}
	}
	in.flush()
	if in.callErr != nil {
		return in.failf(abi.StatusError, "%s", in.callErr.Error())
	}
	return abi.StatusOK
}

// callFailed reports the failure of an operator method: its error, or else
// the misuse or host failure recorded during the call.
func (in *instance) callFailed(err error) abi.Status {
	if err == nil {
		err = in.callErr
	}
	return in.failf(abi.StatusError, "%s", err.Error())
}

// dispatch hands an event other than a well-formed record to the operator.
func (in *instance) dispatch(input int, ev *abi.Event) error {
	c := &in.ctx
	switch ev.Kind {
	case abi.KindRecord:
		c.key, c.hasKey, c.ts = ev.Key, true, ev.Timestamp
		return in.op.Process(c, Record{Key: ev.Key, Value: ev.Value, Timestamp: ev.Timestamp, Input: input})
	case abi.KindTimer:
		c.key, c.hasKey, c.ts = ev.Key, true, ev.Timestamp
		if ev.Domain == abi.ProcessingTime {
			// As in Flink: output of a processing-time timer carries no
			// event time.
			c.ts = NoTimestamp
		}
		if in.onT == nil {
			return fmt.Errorf("sdk: operator %q received a %s timer but does not implement OnTimer", in.reg.info.Name, ev.Domain)
		}
		return in.onT.OnTimer(c, Timer{Domain: ev.Domain, Timestamp: ev.Timestamp, Key: ev.Key})
	case abi.KindWatermark:
		in.wm, in.wmKnown = ev.Timestamp, true
		c.key, c.hasKey, c.ts = nil, false, NoTimestamp
		if in.onWM != nil {
			return in.onWM.OnWatermark(c, ev.Timestamp)
		}
	case abi.KindEndOfInput:
		c.key, c.hasKey, c.ts = nil, false, NoTimestamp
		if in.onEO != nil {
			return in.onEO.OnEndOfInput(c, input)
		}
	}
	// Barriers and idleness markers are the host's business (ABI 4.1).
	return nil
}

// putRecord writes a record with a valueLen-byte value at b[0:], which is
// exactly the record's size, and returns the value's bytes (not written).
// It is emitRecord's and reserveRecord's slow path; their fast paths have
// the same code inline.
func putRecord(b []byte, tag uint8, key []byte, valueLen int, ts int64) []byte {
	h := (*[abi.RecordHeaderSize]byte)(b)
	h[0], h[1] = byte(abi.KindRecord), tag
	binary.LittleEndian.PutUint32(h[2:], uint32(len(key)))
	binary.LittleEndian.PutUint32(h[6:], uint32(valueLen))
	binary.LittleEndian.PutUint64(h[10:], uint64(ts))
	copy(b[abi.RecordHeaderSize:], key)
	return b[abi.RecordHeaderSize+len(key):]
}

// close handles weir_close.
func (in *instance) close() (st abi.Status) {
	switch in.phase {
	case phaseNew, phaseClosed, phaseFailed:
		in.phase = phaseClosed
		return abi.StatusOK
	case phaseReady:
	default:
		return in.failf(abi.StatusError, "sdk: weir_close called %s", in.phase)
	}
	in.beginCall(phaseClose)
	defer in.endCall(&st, phaseClosed, phaseClosed)
	if in.cls != nil {
		if err := in.cls.Close(&in.ctx); err != nil {
			return in.failf(abi.StatusError, "%s", err.Error())
		}
	}
	if in.callErr != nil {
		return in.failf(abi.StatusError, "%s", in.callErr.Error())
	}
	return abi.StatusOK
}

func (in *instance) beginCall(p phase) {
	in.phase = p
	in.callErr = nil
	in.wmKnown = false
	in.outN, in.outLimit = 0, 0
	if p == phaseProcess && len(in.out) >= flushThreshold {
		in.outLimit = flushThreshold
	}
	c := &in.ctx
	c.key, c.hasKey, c.ts = nil, false, NoTimestamp
}

// endCall ends a call: it recovers a panic of the operator into StatusPanic
// and leaves the instance in phase next, or onFailure if the call failed. It
// must be deferred directly (it calls recover).
func (in *instance) endCall(st *abi.Status, next, onFailure phase) {
	if v := recover(); v != nil {
		*st = in.failf(abi.StatusPanic, "%v\n%s", v, stackExcerpt(debug.Stack()))
	}
	in.phase = next
	in.outLimit = 0
	if *st != abi.StatusOK {
		in.phase = onFailure
		in.outN = 0
	}
	if len(in.out) > maxKeptBuffer {
		in.out = nil // grown for a huge record
	}
	// Keep no references into the host's batch between calls.
	in.ctx.key = nil
	in.ev = abi.Event{}
	in.dec.Reset(nil)
}

// failf reports a failure message to the host and returns st.
func (in *instance) failf(st abi.Status, format string, args ...any) abi.Status {
	msg := fmt.Sprintf(format, args...)
	if len(msg) > maxFailMessage {
		msg = msg[:maxFailMessage]
	}
	in.h.fail(msg)
	return st
}

// misuse records err as the failure of the current call.
func (in *instance) misuse(err error) {
	if in.callErr == nil {
		in.callErr = err
	}
}

// stackExcerpt keeps the frames of a debug.Stack taken in a deferred
// recover that follow the panic call: the operator's frames, innermost first.
func stackExcerpt(stack []byte) string {
	lines := strings.Split(strings.TrimRight(string(stack), "\n"), "\n")
	start := 1 // skip "goroutine N [running]:"
	for i, l := range lines {
		if strings.HasPrefix(l, "panic(") {
			start = i + 2 // the panic frame and its file line
			break
		}
	}
	if start > len(lines) {
		start = len(lines)
	}
	lines = lines[start:]
	if len(lines) > maxStackLines {
		lines = append(lines[:maxStackLines:maxStackLines], "\t...")
	}
	return strings.Join(lines, "\n")
}

// emitRecord appends a record to the output. The common case (during
// weir_process, the record fits before the flush threshold) is one
// comparison, five stores for the header and the two copies, written out
// here rather than in a helper because in Wasm the call would cost as much
// as the rest; makeRoom and putRecord handle everything else.
func (in *instance) emitRecord(tag uint8, key, value []byte, ts int64) {
	n := in.outN
	end := n + abi.RecordHeaderSize + len(key) + len(value)
	if end <= in.outLimit {
		b := in.out[n:end]
		h := (*[abi.RecordHeaderSize]byte)(b)
		h[0], h[1] = byte(abi.KindRecord), tag
		binary.LittleEndian.PutUint32(h[2:], uint32(len(key)))
		binary.LittleEndian.PutUint32(h[6:], uint32(len(value)))
		binary.LittleEndian.PutUint64(h[10:], uint64(ts))
		copy(b[abi.RecordHeaderSize:], key)
		copy(b[abi.RecordHeaderSize+len(key):], value)
		in.outN = end
		return
	}
	if n = in.makeRoom(len(key), len(value)); n >= 0 {
		end = n + abi.RecordHeaderSize + len(key) + len(value)
		copy(putRecord(in.out[n:end], tag, key, len(value), ts), value)
		in.outN = end
	}
}

// reserveRecord appends a record with an n-byte value to the output and
// returns the value's bytes, zeroed, for the caller to fill. They stay valid
// until the next emit, which may hand the buffer to the host. Its fast path
// is emitRecord's.
func (in *instance) reserveRecord(tag uint8, key []byte, n int, ts int64) []byte {
	at := in.outN
	end := at + abi.RecordHeaderSize + len(key) + n
	if end <= in.outLimit && n >= 0 {
		b := in.out[at:end:end]
		h := (*[abi.RecordHeaderSize]byte)(b)
		h[0], h[1] = byte(abi.KindRecord), tag
		binary.LittleEndian.PutUint32(h[2:], uint32(len(key)))
		binary.LittleEndian.PutUint32(h[6:], uint32(n))
		binary.LittleEndian.PutUint64(h[10:], uint64(ts))
		copy(b[abi.RecordHeaderSize:], key)
		v := b[abi.RecordHeaderSize+len(key):]
		clear(v)
		in.outN = end
		return v
	}
	if n < 0 {
		in.misuse(fmt.Errorf("sdk: EmitReserve: negative value length %d", n))
		return nil
	}
	if at = in.makeRoom(len(key), n); at < 0 {
		return nil
	}
	end = at + abi.RecordHeaderSize + len(key) + n
	v := putRecord(in.out[at:end:end], tag, key, n, ts)
	clear(v)
	in.outN = end
	return v
}

// makeRoom is the slow path of emitting a record with the given key and
// value lengths: it checks that a record may be emitted now, hands the
// buffered output to the host first if the record would take it past
// flushThreshold, makes the buffer big enough, and returns the offset at
// which to write the record (-1 if it may not be emitted: the call fails).
func (in *instance) makeRoom(keyLen, valueLen int) int {
	if in.phase != phaseProcess {
		in.misuse(fmt.Errorf("sdk: records can only be emitted while processing events (Process, OnTimer, OnWatermark, OnEndOfInput), not %s", in.phase))
		return -1
	}
	if keyLen > abi.MaxFieldLen || valueLen > abi.MaxFieldLen {
		in.misuse(fmt.Errorf("sdk: emitted record too large (key %d bytes, value %d bytes; at most %d each)", keyLen, valueLen, abi.MaxFieldLen))
		return -1
	}
	size := abi.EncodedSize(keyLen, valueLen)
	if in.outN > 0 && in.outN+size > flushThreshold {
		in.flush()
	}
	if need := in.outN + size; need > len(in.out) {
		// The first record, or one larger than the threshold (it goes to
		// the host alone: the next record flushes it).
		b := make([]byte, max(need, flushThreshold))
		copy(b, in.out[:in.outN])
		in.out = b
	}
	in.outLimit = flushThreshold
	return in.outN
}

// flush hands the buffered output to the host.
func (in *instance) flush() {
	if in.outN == 0 {
		return
	}
	if e := in.h.emit(in.out[:in.outN]); e != 0 {
		in.misuse(fmt.Errorf("sdk: emit: %w", abi.Errno(e)))
	}
	in.outN = 0
}

// watermark returns the operator's watermark, asking the host once per call
// (it does not change during a call, ABI 4.2).
func (in *instance) watermark() int64 {
	if !in.wmKnown {
		in.wm, in.wmKnown = in.h.watermark(), true
	}
	return in.wm
}

// stateGet, statePut and stateDelete are the host calls of state handles,
// made directly on the imports in the Wasm build.
func (in *instance) stateGet(id int32, key, sub, out []byte) int32 {
	if wasmBuild && in.direct {
		return importStateGet(id, key, sub, out)
	}
	return in.h.stateGet(id, key, sub, out)
}

func (in *instance) statePut(id int32, key, sub, value []byte) int32 {
	if wasmBuild && in.direct {
		return importStatePut(id, key, sub, value)
	}
	return in.h.statePut(id, key, sub, value)
}

func (in *instance) stateDelete(id int32, key, sub []byte) int32 {
	if wasmBuild && in.direct {
		return importStateDelete(id, key, sub)
	}
	return in.h.stateDelete(id, key, sub)
}

// ErrNoKey is returned by keyed state and timer calls made where there is no
// current key: in Open, Close, OnWatermark and OnEndOfInput.
var ErrNoKey = errors.New("sdk: no current key (keyed state and timers are available in Process and OnTimer)")

// checkKeyed returns an error unless keyed state or timers may be used now.
func (in *instance) checkKeyed(what string) error {
	if !in.reg.info.Keyed() {
		return fmt.Errorf("sdk: %s: operator %q is not keyed (export it with sdk.Keyed()): %w", what, in.reg.info.Name, abi.ErrNotKeyed)
	}
	if !in.ctx.hasKey {
		return fmt.Errorf("sdk: %s: %w", what, ErrNoKey)
	}
	return nil
}

package sdk

import (
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
	out     []byte // output records not yet handed to the host

	wm      int64 // watermark, cached for the current call
	wmKnown bool

	getBuf   []byte       // state_get destination
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
func (in *instance) process(input int, batch []byte) (st abi.Status) {
	if in.phase != phaseReady {
		return in.failf(abi.StatusError, "sdk: weir_process called %s", in.phase)
	}
	in.beginCall(phaseProcess)
	defer in.endCall(&st, phaseReady, phaseReady)

	c := &in.ctx
	for off := 0; off < len(batch); {
		var err error
		if b := batch[off:]; b[0] == byte(abi.KindRecord) && len(b) >= abi.RecordHeaderSize {
			// Records are decoded inline: this is the per-record path, and
			// in Wasm every function call and copied Event costs.
			kl, vl := le32(b[2:]), le32(b[6:])
			if kl > abi.MaxFieldLen || vl > abi.MaxFieldLen || uint64(len(b)-abi.RecordHeaderSize) < uint64(kl)+uint64(vl) {
				return in.failf(abi.StatusBadInput, "sdk: weir_process: %v: record key/value length out of range at offset %d of %d", abi.ErrCorrupt, off, len(batch))
			}
			k := abi.RecordHeaderSize + int(kl)
			v := k + int(vl)
			r := Record{Key: b[abi.RecordHeaderSize:k:k], Value: b[k:v:v], Timestamp: int64(le64(b[10:])), Input: input}
			off += v
			c.key, c.hasKey, c.ts = r.Key, true, r.Timestamp
			err = in.op.Process(c, r)
		} else {
			in.dec.Reset(b)
			ev := &in.ev
			if err := in.dec.Next(ev); err != nil {
				return in.failf(abi.StatusBadInput, "sdk: weir_process: %v (event at offset %d of %d)", err, off, len(batch))
			}
			off += in.dec.Offset()
			err = in.dispatch(input, ev)
		}
		if err == nil {
			err = in.callErr
		}
		if err != nil {
			return in.failf(abi.StatusError, "%s", err.Error())
		}
	}
	in.flush()
	if in.callErr != nil {
		return in.failf(abi.StatusError, "%s", in.callErr.Error())
	}
	return abi.StatusOK
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

// appendRecord appends the header and key of a record whose value is
// valueLen bytes long, and room for the value; it returns the buffer and the
// offset of the value, which the caller fills. It is abi.AppendRecord
// written out in one function body: in Wasm every call costs, and this is
// the per-record output path.
func appendRecord(b []byte, tag uint8, key []byte, valueLen int, ts int64) ([]byte, int) {
	n := len(b)
	size := abi.RecordHeaderSize + len(key) + valueLen
	if cap(b)-n < size {
		b = append(b, make([]byte, size)...)
	} else {
		b = b[:n+size]
	}
	h := b[n : n+abi.RecordHeaderSize]
	kl, vl, u := uint32(len(key)), uint32(valueLen), uint64(ts)
	h[0], h[1] = byte(abi.KindRecord), tag
	h[2], h[3], h[4], h[5] = byte(kl), byte(kl>>8), byte(kl>>16), byte(kl>>24)
	h[6], h[7], h[8], h[9] = byte(vl), byte(vl>>8), byte(vl>>16), byte(vl>>24)
	h[10], h[11], h[12], h[13] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
	h[14], h[15], h[16], h[17] = byte(u>>32), byte(u>>40), byte(u>>48), byte(u>>56)
	at := n + abi.RecordHeaderSize + copy(b[n+abi.RecordHeaderSize:], key)
	return b, at
}

func le32(b []byte) uint32 {
	_ = b[3]
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func le64(b []byte) uint64 {
	_ = b[7]
	return uint64(le32(b)) | uint64(le32(b[4:]))<<32
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
	in.out = in.out[:0]
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
	if *st != abi.StatusOK {
		in.phase = onFailure
		in.out = in.out[:0]
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

// emitRecord appends a record to the output.
func (in *instance) emitRecord(tag uint8, key, value []byte, ts int64) {
	if in.prepareEmit(len(key), len(value)) {
		var at int
		in.out, at = appendRecord(in.out, tag, key, len(value), ts)
		copy(in.out[at:], value)
	}
}

// reserveRecord appends a record with an n-byte value to the output and
// returns the value's bytes, zeroed, for the caller to fill. They stay valid
// until the next emit, which may hand the buffer to the host.
func (in *instance) reserveRecord(tag uint8, key []byte, n int, ts int64) []byte {
	if n < 0 {
		in.misuse(fmt.Errorf("sdk: EmitReserve: negative value length %d", n))
		return nil
	}
	if !in.prepareEmit(len(key), n) {
		return nil
	}
	var at int
	in.out, at = appendRecord(in.out, tag, key, n, ts)
	v := in.out[at : at+n : at+n]
	clear(v)
	return v
}

// prepareEmit checks that a record may be emitted now and makes room for it,
// handing the buffered output to the host first if the record would take it
// past flushThreshold.
func (in *instance) prepareEmit(keyLen, valueLen int) bool {
	if in.phase != phaseProcess {
		in.misuse(fmt.Errorf("sdk: records can only be emitted while processing events (Process, OnTimer, OnWatermark, OnEndOfInput), not %s", in.phase))
		return false
	}
	if keyLen > abi.MaxFieldLen || valueLen > abi.MaxFieldLen {
		in.misuse(fmt.Errorf("sdk: emitted record too large (key %d bytes, value %d bytes; at most %d each)", keyLen, valueLen, abi.MaxFieldLen))
		return false
	}
	if len(in.out) > 0 && len(in.out)+abi.EncodedSize(keyLen, valueLen) > flushThreshold {
		in.flush()
	}
	if in.out == nil {
		in.out = make([]byte, 0, flushThreshold+flushThreshold/4)
	}
	return true
}

// flush hands the buffered output to the host.
func (in *instance) flush() {
	if len(in.out) == 0 {
		return
	}
	if e := in.h.emit(in.out); e != 0 {
		in.misuse(fmt.Errorf("sdk: emit: %w", abi.Errno(e)))
	}
	in.out = in.out[:0]
}

// watermark returns the operator's watermark, asking the host once per call
// (it does not change during a call, ABI 4.2).
func (in *instance) watermark() int64 {
	if !in.wmKnown {
		in.wm, in.wmKnown = in.h.watermark(), true
	}
	return in.wm
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

package runtime

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/runtime/clock"
	"github.com/weirstream/weir/state"
	"github.com/weirstream/weir/wasmhost"
)

// OperatorInstance is one running operator: a Wasm instance (wasmhost) or
// the same SDK code compiled natively (benchmarks, tests).
type OperatorInstance interface {
	Open(ctx context.Context, info abi.OpenInfo) error
	// Process handles an event batch (records of one input; or fired timers
	// followed by at most one watermark; or end of input) and returns the
	// records-only output batch, valid until the next call.
	Process(ctx context.Context, input int, batch []byte) ([]byte, error)
	Close(ctx context.Context) error
}

// Module is a compiled module operators are instantiated from.
type Module interface {
	Operators() []abi.OperatorInfo
	NewInstance(ctx context.Context, env InstanceEnv) (OperatorInstance, error)
}

// InstanceEnv is what the runtime gives an operator instance.
type InstanceEnv struct {
	Name   string // job/node[subtask], for errors and logs
	Keyed  bool
	State  wasmhost.StateAccess
	Timers wasmhost.Timers
	Logger wasmhost.Logger
	Limits LimitsSpec
}

// element is one step of a task's chain. Every call happens on the task
// goroutine.
type element interface {
	// records handles a records-only batch that arrived on input `input`.
	records(input int, batch []byte) error
	// watermark: the element's input watermark advanced to wm.
	watermark(wm int64) error
	// idle: the element's inputs all became idle (or active again).
	idle(idle bool) error
	// endInput: input `input` ended (every channel of it).
	endInput(input int) error
	// finish: every input ended and the final watermark was handled.
	finish() error
	// processingTime fires processing-time timers due at now (epoch ms).
	processingTime(now int64) error
	close() error
}

// operatorElem runs one operator instance.
type operatorElem struct {
	t        *task
	node     *NodeSpec
	inst     OperatorInstance
	access   *stateAccess
	next     element
	filter   bool // next is chained: pass on only main-output records
	enc      abi.Encoder
	filtered []byte
}

func (o *operatorElem) process(input int, batch []byte) error {
	out, err := o.inst.Process(o.t.ctx, input, batch)
	if err != nil {
		return fmt.Errorf("operator %s: %w", o.node.ID, err)
	}
	if len(out) == 0 {
		return nil
	}
	if o.filter {
		var dropped int64
		out, dropped = keepTag(o.filtered[:0], out, abi.TagMain)
		if dropped > 0 {
			o.t.metrics.lateDropped.Add(dropped)
			o.filtered = out
		}
	}
	if len(out) == 0 {
		return nil
	}
	return o.next.records(0, out)
}

func (o *operatorElem) records(input int, batch []byte) error { return o.process(input, batch) }

// fireTimers hands the guest the due timers of domain in as few calls as
// ABI.md 4.2 allows: first call with every timer <= upTo and (event time)
// the watermark last; then calls for timers registered meanwhile.
func (o *operatorElem) fireTimers(domain abi.TimeDomain, upTo int64, withWatermark bool) error {
	for first := true; ; first = false {
		o.enc.Reset()
		err := o.t.backend.FireTimers(o.access.owner, domain, upTo, func(tm state.Timer) error {
			o.enc.Timer(domain, tm.Key, tm.Timestamp)
			return nil
		})
		if err != nil {
			return fmt.Errorf("operator %s: timers: %w", o.node.ID, err)
		}
		if first && withWatermark {
			o.enc.Watermark(upTo)
		}
		if o.enc.Len() == 0 {
			return nil
		}
		if err := o.process(0, o.enc.B); err != nil {
			return err
		}
		if !o.access.keyed {
			return nil
		}
	}
}

func (o *operatorElem) watermark(wm int64) error {
	if wm <= o.access.wm {
		return nil
	}
	o.access.wm = wm
	if err := o.fireTimers(abi.EventTime, wm, true); err != nil {
		return err
	}
	return o.next.watermark(wm)
}

func (o *operatorElem) processingTime(now int64) error {
	if o.access.keyed {
		if err := o.fireTimers(abi.ProcessingTime, now, false); err != nil {
			return err
		}
	}
	return o.next.processingTime(now)
}

func (o *operatorElem) idle(idle bool) error { return o.next.idle(idle) }

func (o *operatorElem) endInput(input int) error {
	return o.process(input, []byte{byte(abi.KindEndOfInput)})
}

func (o *operatorElem) finish() error {
	if err := o.next.endInput(0); err != nil {
		return err
	}
	return o.next.finish()
}

func (o *operatorElem) close() error {
	if o.inst == nil {
		return nil
	}
	return o.inst.Close(context.WithoutCancel(o.t.ctx))
}

// keepTag returns the records of batch with the given tag and how many
// others it dropped. When every record has the tag (the common case) it
// returns batch itself without copying; otherwise it copies the kept records
// into dst.
func keepTag(dst, batch []byte, tag uint8) ([]byte, int64) {
	d := abi.NewDecoder(batch)
	var e abi.Event
	mixed := false
	for d.More() {
		if d.Next(&e) != nil {
			break
		}
		if e.Tag != tag {
			mixed = true
			break
		}
	}
	if !mixed {
		return batch, 0
	}
	var dropped int64
	d.Reset(batch)
	for d.More() {
		off := d.Offset()
		if d.Next(&e) != nil {
			break
		}
		if e.Tag == tag {
			dst = append(dst, batch[off:d.Offset()]...)
		} else {
			dropped++
		}
	}
	return dst, dropped
}

// sinkElem feeds a sink connector.
type sinkElem struct {
	t      *task
	node   *NodeSpec
	sink   Sink
	tx     TwoPhaseSink // sink, when it commits by checkpoints
	filter bool
	buf    []byte
}

func (s *sinkElem) records(_ int, batch []byte) error {
	if s.filter {
		var dropped int64
		batch, dropped = keepTag(s.buf[:0], batch, abi.TagMain)
		if dropped > 0 {
			s.t.metrics.lateDropped.Add(dropped)
			s.buf = batch
		}
	}
	n := countRecords(batch)
	s.t.metrics.recordsOut.Add(n)
	s.t.metrics.bytesOut.Add(int64(len(batch)))
	if err := s.sink.Write(s.t.ctx, batch); err != nil {
		return fmt.Errorf("sink %s: %w", s.node.ID, err)
	}
	return nil
}
func (s *sinkElem) watermark(int64) error      { return nil }
func (s *sinkElem) idle(bool) error            { return nil }
func (s *sinkElem) endInput(int) error         { return nil }
func (s *sinkElem) processingTime(int64) error { return nil }
func (s *sinkElem) finish() error {
	if err := s.sink.Finish(s.t.ctx); err != nil {
		return fmt.Errorf("sink %s: finish: %w", s.node.ID, err)
	}
	if s.tx != nil {
		if _, err := s.tx.PreCommit(s.t.ctx, FinalCheckpoint); err != nil {
			return fmt.Errorf("sink %s: pre-commit at end of input: %w", s.node.ID, err)
		}
	}
	return nil
}

// close closes the sink, except a two-phase-commit sink: the job commits
// its final transaction once every task finished, then closes it.
func (s *sinkElem) close() error {
	if s.tx != nil {
		return nil
	}
	return s.sink.Close()
}

// outputWriter as the chain's last element.
func (o *outputWriter) watermark(wm int64) error {
	o.metrics.watermark.Store(wm)
	return o.control(&abi.Event{Kind: abi.KindWatermark, Timestamp: wm}, false)
}
func (o *outputWriter) idle(idle bool) error {
	return o.control(&abi.Event{Kind: abi.KindIdle, Idle: idle}, true)
}
func (o *outputWriter) endInput(int) error         { return nil }
func (o *outputWriter) processingTime(int64) error { return nil }
func (o *outputWriter) finish() error {
	return o.control(&abi.Event{Kind: abi.KindEndOfInput}, true)
}
func (o *outputWriter) close() error { return nil }
func (o *outputWriter) records(_ int, batch []byte) error {
	o.metrics.bytesOut.Add(int64(len(batch)))
	return o.route(batch)
}

// stateAccess implements wasmhost.StateAccess and wasmhost.Timers for one
// operator of a task: it maps keys to key groups, refuses keys the task does
// not own, and namespaces state and timers by node.
type stateAccess struct {
	t       *task
	node    string
	owner   uint32
	keyed   bool
	maxP    int
	kgRange abi.KeyGroupRange
	clock   clock.Clock
	wm      int64
	lastKey []byte
	lastKG  int
	hasLast bool
	// registered records the state names the operator registered (for
	// the restore check that no restored state is left unmapped).
	registered map[string]bool
	regErr     error // the last refused registration, for Open's error
}

func (s *stateAccess) keyGroup(key []byte) (int, error) {
	if !s.keyed {
		return 0, abi.ErrNotKeyed
	}
	if s.hasLast && bytes.Equal(key, s.lastKey) {
		return s.lastKG, nil
	}
	kg := abi.KeyGroup(key, s.maxP)
	if !s.kgRange.Contains(kg) {
		return 0, abi.ErrKeyNotLocal
	}
	s.lastKey = append(s.lastKey[:0], key...)
	s.lastKG, s.hasLast = kg, true
	return kg, nil
}

func (s *stateAccess) Register(name string, kind abi.StateKind) (int32, error) {
	if !s.keyed {
		return 0, abi.ErrNotKeyed
	}
	id, err := s.t.backend.Register(s.node, name, kind)
	if err != nil {
		s.regErr = err
		return 0, abi.ErrInvalid
	}
	if s.registered != nil {
		s.registered[name] = true
	}
	return int32(id), nil
}

func (s *stateAccess) Get(id int32, key, sub []byte) ([]byte, bool, error) {
	kg, err := s.keyGroup(key)
	if err != nil {
		return nil, false, err
	}
	return s.t.backend.Get(state.ID(id), kg, key, sub)
}

func (s *stateAccess) Put(id int32, key, sub, value []byte) error {
	kg, err := s.keyGroup(key)
	if err != nil {
		return err
	}
	return s.t.backend.Put(state.ID(id), kg, key, sub, value)
}

func (s *stateAccess) Delete(id int32, key, sub []byte) error {
	kg, err := s.keyGroup(key)
	if err != nil {
		return err
	}
	return s.t.backend.Delete(state.ID(id), kg, key, sub)
}

func (s *stateAccess) Append(id int32, key, value []byte) error {
	kg, err := s.keyGroup(key)
	if err != nil {
		return err
	}
	return s.t.backend.Append(state.ID(id), kg, key, value)
}

func (s *stateAccess) Scan(id int32, key []byte, fn func(sub, value []byte) error) error {
	kg, err := s.keyGroup(key)
	if err != nil {
		return err
	}
	return s.t.backend.Scan(state.ID(id), kg, key, fn)
}

func (s *stateAccess) Clear(id int32, key []byte) error {
	kg, err := s.keyGroup(key)
	if err != nil {
		return err
	}
	return s.t.backend.Clear(state.ID(id), kg, key)
}

func (s *stateAccess) timer(d abi.TimeDomain, key []byte, ts int64) (state.Timer, error) {
	if d > abi.ProcessingTime {
		return state.Timer{}, abi.ErrInvalid
	}
	kg, err := s.keyGroup(key)
	if err != nil {
		return state.Timer{}, err
	}
	return state.Timer{Owner: s.owner, Domain: d, Timestamp: ts, KeyGroup: kg, Key: key}, nil
}

func (s *stateAccess) RegisterTimer(d abi.TimeDomain, key []byte, ts int64) error {
	tm, err := s.timer(d, key, ts)
	if err != nil {
		return err
	}
	if d == abi.ProcessingTime {
		s.t.ptDirty = true
	}
	return s.t.backend.RegisterTimer(tm)
}

func (s *stateAccess) DeleteTimer(d abi.TimeDomain, key []byte, ts int64) error {
	tm, err := s.timer(d, key, ts)
	if err != nil {
		return err
	}
	if d == abi.ProcessingTime {
		s.t.ptDirty = true
	}
	return s.t.backend.DeleteTimer(tm)
}

func (s *stateAccess) Watermark() int64      { return s.wm }
func (s *stateAccess) ProcessingTime() int64 { return s.clock.Now().UnixMilli() }

// guestLogger forwards guest log lines to the job logger.
type guestLogger struct {
	log *slog.Logger
}

func (g guestLogger) GuestLog(level abi.LogLevel, msg string) {
	l := slog.LevelInfo
	switch level {
	case abi.LogDebug:
		l = slog.LevelDebug
	case abi.LogWarn:
		l = slog.LevelWarn
	case abi.LogError:
		l = slog.LevelError
	}
	g.log.Log(context.Background(), l, msg, "source", "guest")
}

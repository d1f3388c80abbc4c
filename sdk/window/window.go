package window

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/weirstream/weir/sdk"
	"github.com/weirstream/weir/sdk/codec"
)

// Window is the interval [Start, End) of event time in epoch milliseconds.
type Window struct {
	Start, End int64
}

// MaxTimestamp is the largest timestamp in the window, End-1: the window
// fires when the watermark reaches it, and its results carry it.
func (w Window) MaxTimestamp() int64 { return w.End - 1 }

// Contains reports whether ts falls in the window.
func (w Window) Contains(ts int64) bool { return ts >= w.Start && ts < w.End }

// Intersects reports whether w and o overlap or touch (session windows that
// do are merged).
func (w Window) Intersects(o Window) bool { return w.Start <= o.End && w.End >= o.Start }

// Cover is the smallest window holding w and o.
func (w Window) Cover(o Window) Window { return Window{min(w.Start, o.Start), max(w.End, o.End)} }

func (w Window) String() string { return fmt.Sprintf("[%d,%d)", w.Start, w.End) }

// windowCodec encodes a window as its start and end, order-preserving, so
// that a key's windows are scanned in order of start.
var windowCodec = codec.Struct(
	func(w *codec.Writer, v Window) { w.Int64(v.Start); w.Int64(v.End) },
	func(r *codec.Reader) Window { return Window{Start: r.Int64(), End: r.Int64()} },
)

type assignerKind uint8

const (
	tumbling assignerKind = iota + 1
	sliding
	session
)

// Assigner decides which windows a record belongs to. Build one with
// Tumbling, Sliding or Session.
type Assigner struct {
	kind   assignerKind
	size   int64 // ms; tumbling and sliding
	slide  int64 // ms; equals size for tumbling
	offset int64 // ms
	gap    int64 // ms; session
	err    error
}

func millis(what string, d time.Duration) (int64, error) {
	if d%time.Millisecond != 0 {
		return 0, fmt.Errorf("window: %s %v is not a whole number of milliseconds", what, d)
	}
	return d.Milliseconds(), nil
}

// Tumbling assigns each record to one window of the given size; windows
// start at multiples of size since the epoch.
func Tumbling(size time.Duration) Assigner {
	ms, err := millis("size", size)
	if err == nil && ms <= 0 {
		err = fmt.Errorf("window: tumbling size %v must be positive", size)
	}
	return Assigner{kind: tumbling, size: ms, slide: ms, err: err}
}

// Sliding assigns each record to the windows of the given size that start
// every slide (size/slide windows when slide divides size).
func Sliding(size, slide time.Duration) Assigner {
	ms, err := millis("size", size)
	sl, err2 := millis("slide", slide)
	err = errors.Join(err, err2)
	if err == nil && (ms <= 0 || sl <= 0) {
		err = fmt.Errorf("window: sliding size %v and slide %v must be positive", size, slide)
	}
	return Assigner{kind: sliding, size: ms, slide: sl, err: err}
}

// Session assigns each record to a window [t, t+gap) and merges the windows
// of a key that intersect: a session ends after gap without records.
func Session(gap time.Duration) Assigner {
	ms, err := millis("gap", gap)
	if err == nil && ms <= 0 {
		err = fmt.Errorf("window: session gap %v must be positive", gap)
	}
	return Assigner{kind: session, gap: ms, err: err}
}

// WithOffset shifts the window starts of a tumbling or sliding assigner by
// offset (e.g. daily windows that start at midnight in UTC+2 need -2h). The
// offset must be smaller than the slide in absolute value.
func (a Assigner) WithOffset(offset time.Duration) Assigner {
	ms, err := millis("offset", offset)
	switch {
	case a.err != nil:
		return a
	case err != nil:
		a.err = err
	case a.kind == session:
		a.err = errors.New("window: session windows have no offset")
	case ms <= -a.slide || ms >= a.slide:
		a.err = fmt.Errorf("window: offset %v must be smaller than the slide %dms", offset, a.slide)
	default:
		a.offset = ms
	}
	return a
}

// String describes the assigner.
func (a Assigner) String() string {
	switch a.kind {
	case tumbling:
		return fmt.Sprintf("tumbling(%dms, offset %dms)", a.size, a.offset)
	case sliding:
		return fmt.Sprintf("sliding(%dms every %dms, offset %dms)", a.size, a.slide, a.offset)
	case session:
		return fmt.Sprintf("session(gap %dms)", a.gap)
	}
	return "no assigner"
}

// startWithOffset is the start of the aligned window of length size that
// holds ts (Flink's TimeWindow.getWindowStartWithOffset, correct for
// negative timestamps).
func startWithOffset(ts, offset, size int64) int64 {
	rem := (ts - offset) % size
	if rem < 0 {
		return ts - (rem + size)
	}
	return ts - rem
}

// aligned reports whether w is a window this (non-session) assigner makes.
func (a Assigner) aligned(w Window) bool {
	return w.End-w.Start == a.size && startWithOffset(w.Start, a.offset, a.slide) == w.Start
}

// Aggregator is an incremental aggregation (Flink's AggregateFunction): an
// accumulator of type A per window and key, and a result of type R.
type Aggregator[A, R any] interface {
	// CreateAccumulator returns the accumulator of an empty window.
	CreateAccumulator() A
	// Add folds a record into acc and returns the new accumulator. An error
	// fails the task.
	Add(acc A, r sdk.Record) (A, error)
	// Merge combines the accumulators of two windows that merge. Only
	// session windows merge: an aggregator used with tumbling or sliding
	// windows is never asked to.
	Merge(a, b A) A
	// Result is the window's result.
	Result(acc A) R
}

// EmitFunc emits the result of a window that fires. ctx.CurrentKey() is the
// window's key and Emit attaches w.MaxTimestamp().
type EmitFunc[R any] func(ctx *sdk.Context, w Window, result R) error

// Option configures an Operator.
type Option func(*options)

type options struct {
	lateness  time.Duration
	stateName string
	onLate    func(ctx *sdk.Context, r sdk.Record) error
}

// AllowedLateness keeps windows for d after they fire, so that late records
// update and re-fire them (default 0).
func AllowedLateness(d time.Duration) Option { return func(o *options) { o.lateness = d } }

// StateName names the operator's map state (default "window"); it must be
// unique among the states of the operator and stable across versions.
func StateName(name string) Option { return func(o *options) { o.stateName = name } }

// OnLate replaces the default handling of records that are too late for
// every window they belong to (sdk.Context.EmitLate of the record).
func OnLate(fn func(ctx *sdk.Context, r sdk.Record) error) Option {
	return func(o *options) { o.onLate = fn }
}

// Operator is a keyed sdk.Operator that aggregates records into windows.
// Export it with sdk.Keyed().
type Operator[A, R any] struct {
	assigner Assigner
	agg      Aggregator[A, R]
	acc      codec.Codec[A]
	emit     EmitFunc[R]
	lateness int64
	name     string
	onLate   func(ctx *sdk.Context, r sdk.Record) error
	err      error // configuration error, reported by Open

	windows *sdk.MapState[Window, A]
	// session merging scratch, reused so that merging allocates only when a
	// key has more windows than ever before
	sess    []entry[A]
	collect func(w Window, acc A) error
}

type entry[A any] struct {
	w        Window
	acc      A
	absorbed bool
}

// New returns a window operator. acc encodes accumulators in keyed state.
// Configuration errors are reported when the operator opens.
func New[A, R any](assigner Assigner, agg Aggregator[A, R], acc codec.Codec[A], emit EmitFunc[R], opts ...Option) *Operator[A, R] {
	o := options{stateName: "window"}
	for _, opt := range opts {
		opt(&o)
	}
	op := &Operator[A, R]{assigner: assigner, agg: agg, acc: acc, emit: emit, name: o.stateName, onLate: o.onLate}
	var err error
	op.lateness, err = millis("allowed lateness", o.lateness)
	switch {
	case assigner.kind == 0:
		err = errors.New("window: no assigner (use Tumbling, Sliding or Session)")
	case assigner.err != nil:
		err = assigner.err
	case err != nil:
	case op.lateness < 0:
		err = fmt.Errorf("window: allowed lateness %v is negative", o.lateness)
	case agg == nil || acc == nil || emit == nil:
		err = errors.New("window: New needs an aggregator, an accumulator codec and an emit function")
	case o.stateName == "":
		err = errors.New("window: empty state name")
	}
	op.err = err
	op.collect = func(w Window, acc A) error {
		op.sess = append(op.sess, entry[A]{w: w, acc: acc})
		return nil
	}
	return op
}

// Open declares the window state.
func (o *Operator[A, R]) Open(ctx *sdk.Context) error {
	if o.err != nil {
		return o.err
	}
	if !ctx.Keyed() {
		return fmt.Errorf("window: operator %q must be exported with sdk.Keyed()", ctx.Operator())
	}
	var err error
	o.windows, err = sdk.NewMapState(ctx, o.name, windowCodec, o.acc)
	return err
}

// cleanupTime is when a window's state goes: the watermark can no longer
// bring it records.
func (o *Operator[A, R]) cleanupTime(w Window) int64 {
	t := w.MaxTimestamp() + o.lateness
	if t < w.MaxTimestamp() { // overflow
		return math.MaxInt64
	}
	return t
}

func (o *Operator[A, R]) isLate(w Window, wm int64) bool { return o.cleanupTime(w) <= wm }

// Process adds the record to its windows.
func (o *Operator[A, R]) Process(ctx *sdk.Context, r sdk.Record) error {
	ts := r.Timestamp
	if ts == sdk.NoTimestamp {
		return fmt.Errorf("window: record without timestamp (event-time windows need the source to assign timestamps)")
	}
	span := max(o.assigner.size, o.assigner.gap)
	if ts < math.MinInt64/2 || ts > math.MaxInt64/2-span {
		return fmt.Errorf("window: timestamp %d out of range", ts)
	}
	if o.assigner.kind == session {
		return o.processSession(ctx, r)
	}
	wm := ctx.Watermark()
	a := o.assigner
	last := startWithOffset(ts, a.offset, a.slide)
	first := last - (last-(ts-a.size)-1)/a.slide*a.slide
	skipped := true
	for start := first; start <= last; start += a.slide {
		w := Window{Start: start, End: start + a.size}
		if o.isLate(w, wm) {
			continue
		}
		skipped = false
		acc, ok, err := o.windows.Get(w)
		if err != nil {
			return err
		}
		if !ok {
			acc = o.agg.CreateAccumulator()
		}
		if acc, err = o.agg.Add(acc, r); err != nil {
			return err
		}
		if err := o.windows.Put(w, acc); err != nil {
			return err
		}
		if !ok {
			// A new window: its timers. A window that exists has them.
			if err := o.registerTimers(ctx, w, wm); err != nil {
				return err
			}
		}
		if w.MaxTimestamp() <= wm {
			// Late but within the allowed lateness: fire now with the
			// updated contents.
			if err := o.fire(ctx, w, acc); err != nil {
				return err
			}
		}
	}
	if skipped {
		return o.late(ctx, r)
	}
	return nil
}

// registerTimers registers the timers of a new window: firing (unless the
// watermark passed it already: the caller fires at once) and cleanup.
func (o *Operator[A, R]) registerTimers(ctx *sdk.Context, w Window, wm int64) error {
	if w.MaxTimestamp() > wm {
		if err := ctx.RegisterEventTimeTimer(w.MaxTimestamp()); err != nil {
			return err
		}
	}
	if c := o.cleanupTime(w); c != w.MaxTimestamp() {
		return ctx.RegisterEventTimeTimer(c)
	}
	return nil
}

func (o *Operator[A, R]) late(ctx *sdk.Context, r sdk.Record) error {
	if o.onLate != nil {
		return o.onLate(ctx, r)
	}
	ctx.EmitLate(r.Key, r.Value)
	return nil
}

func (o *Operator[A, R]) fire(ctx *sdk.Context, w Window, acc A) error {
	saved := ctx.Timestamp()
	ctx.SetTimestamp(w.MaxTimestamp())
	err := o.emit(ctx, w, o.agg.Result(acc))
	ctx.SetTimestamp(saved)
	return err
}

// processSession merges the record's window [ts, ts+gap) with the key's
// windows it intersects.
func (o *Operator[A, R]) processSession(ctx *sdk.Context, r sdk.Record) error {
	wm := ctx.Watermark()
	merged := Window{Start: r.Timestamp, End: r.Timestamp + o.assigner.gap}
	o.sess = o.sess[:0]
	if err := o.windows.Range(o.collect); err != nil {
		return err
	}
	// The key's windows are disjoint and do not touch (they would have
	// merged), and come sorted by start: one pass finds every window the
	// growing merged window reaches.
	var acc A
	n, same := 0, false
	for i := range o.sess {
		e := &o.sess[i]
		if !e.w.Intersects(merged) {
			continue
		}
		e.absorbed = true
		if n == 0 {
			acc = e.acc
		} else {
			acc = o.agg.Merge(acc, e.acc)
		}
		n++
		merged = merged.Cover(e.w)
	}
	if n == 0 {
		if o.isLate(merged, wm) {
			return o.late(ctx, r)
		}
		acc = o.agg.CreateAccumulator()
	}
	acc, err := o.agg.Add(acc, r)
	if err != nil {
		return err
	}
	for _, e := range o.sess {
		if e.absorbed && e.w == merged {
			same = true // the record fell into an existing window: its timers stand
		} else if e.absorbed {
			if err := o.windows.Delete(e.w); err != nil {
				return err
			}
		}
	}
	if err := o.windows.Put(merged, acc); err != nil {
		return err
	}
	if !same {
		if err := o.registerTimers(ctx, merged, wm); err != nil {
			return err
		}
		if err := o.deleteStaleTimers(ctx, merged, wm); err != nil {
			return err
		}
	}
	if merged.MaxTimestamp() <= wm {
		return o.fire(ctx, merged, acc)
	}
	return nil
}

// deleteStaleTimers deletes the timers of the windows that merged into
// merged, unless a remaining window still needs the same timestamp (timers
// are per key and timestamp, not per window).
func (o *Operator[A, R]) deleteStaleTimers(ctx *sdk.Context, merged Window, wm int64) error {
	needed := func(t int64) bool {
		if (t == merged.MaxTimestamp() && t > wm) || t == o.cleanupTime(merged) {
			return true
		}
		for _, e := range o.sess {
			if !e.absorbed && (t == e.w.MaxTimestamp() || t == o.cleanupTime(e.w)) {
				return true
			}
		}
		return false
	}
	for _, e := range o.sess {
		if !e.absorbed {
			continue
		}
		for _, t := range [2]int64{e.w.MaxTimestamp(), o.cleanupTime(e.w)} {
			if t > wm && !needed(t) {
				if err := ctx.DeleteEventTimeTimer(t); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// OnTimer fires the key's window whose max timestamp is the timer's, and
// deletes the windows whose cleanup time has come.
func (o *Operator[A, R]) OnTimer(ctx *sdk.Context, t sdk.Timer) error {
	if t.Domain != sdk.EventTime {
		return nil
	}
	T := t.Timestamp
	if o.assigner.kind == session {
		o.sess = o.sess[:0]
		if err := o.windows.Range(o.collect); err != nil {
			return err
		}
		for _, e := range o.sess {
			if e.w.MaxTimestamp() == T {
				if err := o.fire(ctx, e.w, e.acc); err != nil {
					return err
				}
			}
			if o.cleanupTime(e.w) <= T {
				if err := o.windows.Delete(e.w); err != nil {
					return err
				}
			}
		}
		return nil
	}
	// Aligned windows: the window to fire and the window to clean up are
	// determined by T; no scan needed.
	if T < math.MaxInt64 {
		w := Window{Start: T + 1 - o.assigner.size, End: T + 1}
		if o.assigner.aligned(w) {
			acc, ok, err := o.windows.Get(w)
			if err != nil {
				return err
			}
			if ok {
				if err := o.fire(ctx, w, acc); err != nil {
					return err
				}
			}
		}
	}
	if end := T - o.lateness + 1; T-o.lateness < math.MaxInt64 && T-o.lateness > math.MinInt64 {
		w := Window{Start: end - o.assigner.size, End: end}
		if o.assigner.aligned(w) {
			return o.windows.Delete(w)
		}
	}
	return nil
}

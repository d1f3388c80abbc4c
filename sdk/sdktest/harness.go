package sdktest

import (
	"fmt"
	"strings"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/sdk"
)

// Options configure a Harness. The zero value runs subtask 0 of 1 with one
// input and abi.DefaultMaxParallelism key groups.
type Options struct {
	NodeID         string // default "node"
	Config         string // the node's config as JSON; empty for none
	Subtask        int
	Parallelism    int // default 1; above 1, state and timers reject keys of other subtasks
	MaxParallelism int // default abi.DefaultMaxParallelism
	Inputs         int // default 1
}

// Output is a record the operator emitted.
type Output struct {
	Tag       uint8 // abi.TagMain or abi.TagLate
	Key       string
	Value     string
	Timestamp int64
}

func (o Output) String() string {
	tag := "main"
	if o.Tag == abi.TagLate {
		tag = "late"
	}
	ts := fmt.Sprint(o.Timestamp)
	if o.Timestamp == abi.NoTimestamp {
		ts = "none"
	}
	return fmt.Sprintf("%s %q=%q @%s", tag, o.Key, o.Value, ts)
}

// LogLine is a line the operator logged.
type LogLine struct {
	Level abi.LogLevel
	Msg   string
}

// Harness runs one operator instance natively over in-memory state and
// timers, delivering events as the runtime does (abi/ABI.md section 4).
type Harness struct {
	Native *sdk.Native
	State  *State
	Timers *Timers

	out   []Output
	logs  []LogLine
	batch abi.Encoder
}

type logSink struct{ h *Harness }

func (l logSink) GuestLog(level abi.LogLevel, msg string) {
	l.h.logs = append(l.h.logs, LogLine{Level: level, Msg: msg})
}

// New opens operator (exported by this program with sdk.Export).
func New(operator string, opts Options) (*Harness, error) {
	if opts.NodeID == "" {
		opts.NodeID = "node"
	}
	if opts.Parallelism == 0 {
		opts.Parallelism = 1
	}
	if opts.MaxParallelism == 0 {
		opts.MaxParallelism = abi.DefaultMaxParallelism
	}
	if opts.Inputs == 0 {
		opts.Inputs = 1
	}
	if opts.Subtask < 0 || opts.Subtask >= opts.Parallelism || opts.Parallelism > opts.MaxParallelism {
		return nil, fmt.Errorf("sdktest: subtask %d of parallelism %d with %d key groups", opts.Subtask, opts.Parallelism, opts.MaxParallelism)
	}
	h := &Harness{State: NewState(), Timers: NewTimers()}
	if opts.Parallelism > 1 {
		r := abi.KeyGroupRangeForSubtask(opts.Subtask, opts.Parallelism, opts.MaxParallelism)
		owns := func(key []byte) bool { return r.Contains(abi.KeyGroup(key, opts.MaxParallelism)) }
		h.State.Owns, h.Timers.Owns = owns, owns
	}
	h.Native = sdk.NewNative(h.State, h.Timers, logSink{h})
	err := h.Native.Open(abi.OpenInfo{
		Operator: operator, NodeID: opts.NodeID, Config: []byte(opts.Config),
		Subtask: uint32(opts.Subtask), Parallelism: uint32(opts.Parallelism),
		MaxParallelism: uint32(opts.MaxParallelism), Inputs: uint32(opts.Inputs),
	})
	if err != nil {
		return nil, err
	}
	return h, nil
}

// Batch hands an encoded event batch to the operator as input number input
// and collects its output.
func (h *Harness) Batch(input int, batch []byte) error {
	out, err := h.Native.Process(input, batch)
	if err != nil {
		return err
	}
	d := abi.NewDecoder(out)
	var ev abi.Event
	for d.More() {
		if err := d.Next(&ev); err != nil {
			return fmt.Errorf("sdktest: operator output: %w", err)
		}
		if ev.Kind != abi.KindRecord {
			return fmt.Errorf("sdktest: operator output holds a %v event", ev.Kind)
		}
		h.out = append(h.out, Output{Tag: ev.Tag, Key: string(ev.Key), Value: string(ev.Value), Timestamp: ev.Timestamp})
	}
	return nil
}

// Record sends one record on input 0.
func (h *Harness) Record(key, value string, ts int64) error { return h.RecordOn(0, key, value, ts) }

// RecordOn sends one record on input number input.
func (h *Harness) RecordOn(input int, key, value string, ts int64) error {
	h.batch.Reset()
	h.batch.Record(abi.TagMain, []byte(key), []byte(value), ts)
	return h.Batch(input, h.batch.B)
}

// Watermark advances the watermark to wm, as the runtime does: one call
// with every event-time timer at or before wm in order, then the watermark
// event; then, while the operator registered more timers at or before wm,
// further calls with those timers. A watermark that does not advance is
// ignored.
func (h *Harness) Watermark(wm int64) error {
	if wm <= h.Timers.Watermark() {
		return nil
	}
	h.Timers.SetWatermark(wm)
	h.batch.Reset()
	h.appendTimers(abi.EventTime, wm)
	h.batch.Watermark(wm)
	if err := h.Batch(0, h.batch.B); err != nil {
		return err
	}
	return h.fireRest(abi.EventTime, wm)
}

// ProcessingTime advances the processing-time clock to now and fires the
// processing-time timers at or before it.
func (h *Harness) ProcessingTime(now int64) error {
	h.Timers.SetProcessingTime(now)
	return h.fireRest(abi.ProcessingTime, now)
}

func (h *Harness) fireRest(d abi.TimeDomain, upTo int64) error {
	for {
		h.batch.Reset()
		if h.appendTimers(d, upTo) == 0 {
			return nil
		}
		if err := h.Batch(0, h.batch.B); err != nil {
			return err
		}
	}
}

func (h *Harness) appendTimers(d abi.TimeDomain, upTo int64) int {
	due := h.Timers.PopDue(d, upTo)
	for _, t := range due {
		h.batch.Timer(d, []byte(t.Key), t.Timestamp)
	}
	return len(due)
}

// EndOfInput signals that input number input ended. (The runtime sends
// Watermark(MaxWatermark) before the end of a bounded input; call Watermark
// first to do the same.)
func (h *Harness) EndOfInput(input int) error {
	h.batch.Reset()
	h.batch.EndOfInput()
	return h.Batch(input, h.batch.B)
}

// Close closes the operator.
func (h *Harness) Close() error { return h.Native.Close() }

// Output returns every record emitted since the last TakeOutput.
func (h *Harness) Output() []Output { return h.out }

// TakeOutput returns every record emitted since the last TakeOutput and
// forgets them.
func (h *Harness) TakeOutput() []Output {
	out := h.out
	h.out = nil
	return out
}

// Logs returns the lines the operator logged.
func (h *Harness) Logs() []LogLine { return h.logs }

// Format renders outputs one per line, for readable test failures.
func Format(out []Output) string {
	var b strings.Builder
	for _, o := range out {
		b.WriteString(o.String())
		b.WriteByte('\n')
	}
	return b.String()
}

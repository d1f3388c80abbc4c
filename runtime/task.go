package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/runtime/clock"
	"github.com/weirstream/weir/state"
)

// task is one parallel instance of a chain of nodes. It runs on one
// goroutine that owns its Wasm instances, state backend and inputs; nothing
// on its hot path takes a lock.
type task struct {
	name    string
	nodes   []*NodeSpec
	subtask int
	ctx     context.Context
	log     *slog.Logger
	clock   clock.Clock
	metrics *taskMetrics

	head    element   // receives what the source or the gate delivers
	elems   []element // the whole chain, in order, for close
	out     *outputWriter
	backend state.Backend

	// source tasks
	source   Source
	srcInfo  TaskInfo
	srcWM    WatermarkSpec
	srcBatch int

	// tasks with inputs
	gate       *gate
	tracker    *watermarkTracker
	inputsLeft []int // channels not yet finished, per input

	// processing-time timers: the earliest pending, recomputed when dirty
	ptDirty bool
	ptNext  int64
	ptOK    bool
	ptOwner []uint32 // owners that are keyed operators
}

// errFinished ends a task loop normally.
var errFinished = errors.New("finished")

func (t *task) run() (err error) {
	defer func() {
		for _, e := range t.elems {
			if cerr := e.close(); cerr != nil && err == nil && t.ctx.Err() == nil {
				err = cerr
			}
		}
		if t.source != nil {
			if cerr := t.source.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("source %s: close: %w", t.nodes[0].ID, cerr)
			}
		}
		if t.backend != nil {
			if cerr := t.backend.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("state: %w", cerr)
			}
		}
	}()
	if t.source != nil {
		err = t.runSource()
	} else {
		err = t.runInputs()
	}
	if errors.Is(err, errFinished) {
		return nil
	}
	return err
}

// deliver hands an event batch to the head element: runs of records go as
// one records-only slice (no copy), control events one by one. Used for the
// events a source produced (src >= 0 is not a channel then).
func (t *task) deliverSourceEvents(batch []byte) error {
	d := abi.NewDecoder(batch)
	var e abi.Event
	runStart, runEnd := -1, -1
	flushRun := func() error {
		if runStart < 0 {
			return nil
		}
		s, en := runStart, runEnd
		runStart = -1
		return t.head.records(0, batch[s:en])
	}
	for d.More() {
		off := d.Offset()
		if err := d.Next(&e); err != nil {
			return err
		}
		if e.Kind == abi.KindRecord {
			if runStart < 0 {
				runStart = off
			}
			runEnd = d.Offset()
			continue
		}
		if err := flushRun(); err != nil {
			return err
		}
		if e.Kind == abi.KindWatermark {
			t.metrics.watermark.Store(e.Timestamp)
			if err := t.head.watermark(e.Timestamp); err != nil {
				return err
			}
		}
	}
	return flushRun()
}

// sourceWriter builds the source's event batch: records, and with
// punctuated watermarks, a watermark after every record that advances it.
type sourceWriter struct {
	enc        abi.Encoder
	n          int
	maxTs      int64
	lag        int64 // outOfOrderness + 1ms
	wm         int64 // last watermark emitted
	punctuated bool
}

func (w *sourceWriter) Write(key, value []byte, ts int64) {
	w.enc.Record(abi.TagMain, key, value, ts)
	w.n++
	if ts == abi.NoTimestamp || ts <= w.maxTs {
		return
	}
	w.maxTs = ts
	if w.punctuated {
		if wm := w.current(); wm > w.wm {
			w.wm = wm
			w.enc.Watermark(wm)
		}
	}
}

// current is the watermark the records so far allow.
func (w *sourceWriter) current() int64 {
	if w.maxTs == abi.NoTimestamp || w.maxTs < abi.MinWatermark+w.lag {
		return abi.MinWatermark
	}
	return w.maxTs - w.lag
}

func (t *task) runSource() error {
	if err := t.source.Open(t.ctx, t.srcInfo); err != nil {
		return fmt.Errorf("source %s: open: %w", t.nodes[0].ID, err)
	}
	interval := 200 * time.Millisecond
	if t.srcWM.Interval != nil {
		interval = time.Duration(*t.srcWM.Interval)
	}
	w := &sourceWriter{
		maxTs:      abi.NoTimestamp,
		lag:        int64(time.Duration(t.srcWM.OutOfOrderness)/time.Millisecond) + 1,
		wm:         abi.MinWatermark,
		punctuated: interval == 0,
	}
	idleTimeout := time.Duration(t.srcWM.IdleTimeout)
	lastWM := t.clock.Now()
	lastRecord := lastWM
	idle := false
	pollTimeout := 10 * time.Millisecond
	for {
		if err := t.ctx.Err(); err != nil {
			return context.Cause(t.ctx)
		}
		if t.out != nil {
			t.out.flushIfLingered()
			if d, ok := t.out.lingerLeft(); ok && d < pollTimeout {
				pollTimeout = max(d, 100*time.Microsecond)
			}
		}
		pctx, cancel := context.WithTimeout(t.ctx, pollTimeout)
		w.enc.Reset()
		w.n = 0
		done, err := t.source.Poll(pctx, w, t.srcBatch)
		cancel()
		pollTimeout = 10 * time.Millisecond
		if err != nil {
			if t.ctx.Err() != nil {
				return context.Cause(t.ctx)
			}
			return fmt.Errorf("source %s: %w", t.nodes[0].ID, err)
		}
		now := t.clock.Now()
		if w.n > 0 {
			lastRecord = now
			if idle {
				idle = false
				if err := t.head.idle(false); err != nil {
					return err
				}
			}
			t.metrics.recordsIn.Add(int64(w.n))
			t.metrics.bytesIn.Add(int64(w.enc.Len()))
			if err := t.deliverSourceEvents(w.enc.B); err != nil {
				return err
			}
		}
		if done {
			t.metrics.watermark.Store(abi.MaxWatermark)
			if err := t.head.watermark(abi.MaxWatermark); err != nil {
				return err
			}
			if err := t.head.endInput(0); err != nil {
				return err
			}
			if err := t.head.finish(); err != nil {
				return err
			}
			return errFinished
		}
		if !w.punctuated && now.Sub(lastWM) >= interval {
			lastWM = now
			if wm := w.current(); wm > w.wm {
				w.wm = wm
				t.metrics.watermark.Store(wm)
				if err := t.head.watermark(wm); err != nil {
					return err
				}
			}
		}
		if idleTimeout > 0 && !idle && w.n == 0 && now.Sub(lastRecord) >= idleTimeout {
			idle = true
			if err := t.head.idle(true); err != nil {
				return err
			}
		}
		if err := t.checkProcessingTime(); err != nil {
			return err
		}
	}
}

// checkProcessingTime fires due processing-time timers of the chain.
func (t *task) checkProcessingTime() error {
	if len(t.ptOwner) == 0 {
		return nil
	}
	if t.ptDirty {
		t.ptDirty = false
		t.ptOK = false
		for _, owner := range t.ptOwner {
			ts, ok, err := t.backend.NextTimer(owner, abi.ProcessingTime)
			if err != nil {
				return err
			}
			if ok && (!t.ptOK || ts < t.ptNext) {
				t.ptNext, t.ptOK = ts, true
			}
		}
	}
	if !t.ptOK {
		return nil
	}
	now := t.clock.Now().UnixMilli()
	if now < t.ptNext {
		return nil
	}
	t.ptDirty = true
	return t.head.processingTime(now)
}

func (t *task) runInputs() error {
	for {
		var env envelope
		select {
		case env = <-t.gate.inbox:
		default:
			// About to wait: send lingering output, then wait for input,
			// the linger deadline, a processing-time timer or cancellation.
			var lingerC, ptC <-chan time.Time
			if t.out != nil {
				t.out.flushIfLingered()
				if d, ok := t.out.lingerLeft(); ok {
					lingerC = time.After(d)
				}
			}
			if err := t.checkProcessingTime(); err != nil {
				return err
			}
			if t.ptOK {
				ptC = t.clock.After(time.Duration(t.ptNext-t.clock.Now().UnixMilli()) * time.Millisecond)
			}
			select {
			case env = <-t.gate.inbox:
			case <-lingerC:
				continue
			case <-ptC:
				if err := t.checkProcessingTime(); err != nil {
					return err
				}
				continue
			case <-t.ctx.Done():
				return context.Cause(t.ctx)
			}
		}
		err := t.handle(env)
		t.gate.recycle(env)
		if err != nil {
			return err
		}
		if t.out != nil {
			t.out.flushIfLingered()
		}
		if t.ptOK || t.ptDirty {
			if err := t.checkProcessingTime(); err != nil {
				return err
			}
		}
	}
}

// handle processes one batch from channel env.ch.
func (t *task) handle(env envelope) error {
	input := t.gate.input[env.ch]
	b := env.buf
	d := abi.NewDecoder(b)
	var e abi.Event
	runStart, runEnd := -1, -1
	var records int64
	flushRun := func() error {
		if runStart < 0 {
			return nil
		}
		s, en := runStart, runEnd
		runStart = -1
		wasIdle := t.tracker.isIdle
		t.tracker.activity(env.ch) // re-includes the channel; never advances
		if wasIdle && !t.tracker.isIdle {
			if err := t.head.idle(false); err != nil {
				return err
			}
		}
		return t.head.records(input, b[s:en])
	}
	for d.More() {
		off := d.Offset()
		if err := d.Next(&e); err != nil {
			return fmt.Errorf("channel %d: %w", env.ch, err)
		}
		if e.Kind == abi.KindRecord {
			records++
			if runStart < 0 {
				runStart = off
			}
			runEnd = d.Offset()
			continue
		}
		if err := flushRun(); err != nil {
			return err
		}
		wasIdle := t.tracker.isIdle
		var wm int64
		var adv bool
		switch e.Kind {
		case abi.KindWatermark:
			wm, adv = t.tracker.watermark(env.ch, e.Timestamp)
		case abi.KindIdle:
			wm, adv = t.tracker.setIdle(env.ch, e.Idle)
		case abi.KindEndOfInput:
			wm, adv = t.tracker.finish(env.ch)
		default:
			continue // barriers: the checkpoint issue
		}
		if t.tracker.isIdle != wasIdle && !adv {
			if err := t.head.idle(t.tracker.isIdle); err != nil {
				return err
			}
		}
		if adv {
			t.metrics.watermark.Store(wm)
			if err := t.head.watermark(wm); err != nil {
				return err
			}
		}
		if e.Kind == abi.KindEndOfInput {
			t.inputsLeft[input]--
			if t.inputsLeft[input] == 0 {
				if err := t.head.endInput(input); err != nil {
					return err
				}
			}
			if t.tracker.liveLeft == 0 {
				if err := t.head.finish(); err != nil {
					return err
				}
				t.metrics.recordsIn.Add(records)
				t.metrics.bytesIn.Add(int64(len(b)))
				return errFinished
			}
		}
	}
	t.metrics.recordsIn.Add(records)
	t.metrics.bytesIn.Add(int64(len(b)))
	return flushRun()
}

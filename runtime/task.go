package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
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
	remote  bool // placed on another worker: not built here
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
	srcW     *sourceWriter
	srcDone  bool       // the source reached its end: no more barriers (under trigMu)
	trigMu   sync.Mutex // orders srcDone against barrier triggers

	// tasks with inputs
	gate       *gate
	tracker    *watermarkTracker
	inputsLeft []int // channels not yet finished, per input

	// processing-time timers: the earliest pending, recomputed when dirty
	ptDirty bool
	ptNext  int64
	ptOK    bool
	ptOwner []uint32 // owners that are keyed operators

	injectFault func(string) error
	cp          *taskCP // checkpointing; nil when the job has no checkpoint storage
}

// errFinished ends a task loop normally; errStopped ends it after a
// stop-with-savepoint completed.
var (
	errFinished = errors.New("finished")
	errStopped  = errors.New("stopped with a savepoint")
)

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
	if errors.Is(err, errFinished) || errors.Is(err, errStopped) {
		return nil
	}
	return err
}

// fault runs the test hook that injects failures.
func (t *task) fault() error {
	if t.injectFault == nil {
		return nil
	}
	if err := t.injectFault(t.name); err != nil {
		return fmt.Errorf("injected fault: %w", err)
	}
	return nil
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
	w := t.srcW
	w.lag = int64(time.Duration(t.srcWM.OutOfOrderness)/time.Millisecond) + 1
	w.punctuated = interval == 0
	// A restored generator resumes where it was: downstream sees the
	// watermark again before any replayed record.
	if wm := w.current(); wm > w.wm {
		w.wm = wm
		t.metrics.watermark.Store(wm)
		if err := t.head.watermark(wm); err != nil {
			return err
		}
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
		if t.cp != nil {
			if err := t.sourceCheckpointing(); err != nil {
				return err
			}
		}
		if err := t.fault(); err != nil {
			return err
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
			t.sourceFinished()
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

// sourceCheckpointing injects triggered barriers, commits completed
// checkpoints, and keeps a source suspended after a stop-with-savepoint
// barrier until the savepoint completes (the task stops) or fails (the
// source resumes).
func (t *task) sourceCheckpointing() error {
	cp := t.cp
	if err := t.injectBarriers(); err != nil {
		return err
	}
	for {
		select {
		case <-cp.signal:
			if err := t.onSignal(); err != nil {
				return err
			}
		default:
		}
		if cp.suspended == 0 {
			return nil
		}
		if cp.a.stopID.Load() != cp.suspended {
			cp.suspended = 0 // the savepoint failed: go on
			return nil
		}
		if t.out != nil {
			t.out.flushAll()
		}
		select {
		case <-cp.signal:
			if err := t.onSignal(); err != nil {
				return err
			}
		case <-t.ctx.Done():
			return context.Cause(t.ctx)
		}
	}
}

// sourceFinished stops barrier injection at this source: barriers
// triggered but not injected are declined, and the coordinator triggers no
// more checkpoints (Flink before FLIP-147: a job whose sources are
// finishing takes no new checkpoints; its sinks commit at the end).
func (t *task) sourceFinished() {
	t.trigMu.Lock()
	t.srcDone = true
	t.trigMu.Unlock()
	if t.cp != nil {
		t.cp.a.acks.Pause()
		t.declineTriggers() // those queued before srcDone was set
	}
}

func (t *task) runInputs() error {
	var signal chan struct{}
	if t.cp != nil {
		signal = t.cp.signal
	}
	for {
		var env envelope
		if t.cp != nil {
			if h, ok := t.cp.nextReady(); ok {
				if err := t.handleAt(h.env, h.off); err != nil {
					return err
				}
				continue
			}
		}
		select {
		case env = <-t.gate.inbox:
		case <-signal:
			if err := t.onSignal(); err != nil {
				return err
			}
			continue
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
			case <-signal:
				if err := t.onSignal(); err != nil {
					return err
				}
				continue
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
		if t.cp != nil && t.cp.blocked[env.ch] {
			t.cp.held[env.ch] = append(t.cp.held[env.ch], heldEnv{env, 0})
			continue
		}
		if err := t.handleAt(env, 0); err != nil {
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

// handleAt processes env's batch from offset off, and recycles the buffer
// unless a barrier blocked the channel midway: then the rest is held until
// the alignment completes.
func (t *task) handleAt(env envelope, off int) error {
	if err := t.fault(); err != nil {
		return err
	}
	stop, err := t.handle(env, off)
	if err != nil {
		t.gate.recycle(env)
		return err
	}
	if stop >= 0 && stop < len(env.buf) {
		t.cp.held[env.ch] = append(t.cp.held[env.ch], heldEnv{env, stop})
		return nil
	}
	t.gate.recycle(env)
	return nil
}

// handle processes one batch from channel env.ch, starting at offset
// start. It returns the offset after a barrier that blocked the channel,
// or -1 when it processed the whole batch.
func (t *task) handle(env envelope, start int) (int, error) {
	input := t.gate.input[env.ch]
	b := env.buf[start:]
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
	account := func(n int) {
		t.metrics.recordsIn.Add(records)
		t.metrics.bytesIn.Add(int64(n))
	}
	for d.More() {
		off := d.Offset()
		if err := d.Next(&e); err != nil {
			return -1, fmt.Errorf("channel %d: %w", env.ch, err)
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
			return -1, err
		}
		if e.Kind == abi.KindBarrier {
			block, err := t.onBarrier(env.ch, &e)
			if err != nil {
				return -1, err
			}
			if block {
				account(d.Offset())
				return start + d.Offset(), nil
			}
			continue
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
			continue
		}
		if t.tracker.isIdle != wasIdle && !adv {
			if err := t.head.idle(t.tracker.isIdle); err != nil {
				return -1, err
			}
		}
		if adv {
			t.metrics.watermark.Store(wm)
			if err := t.head.watermark(wm); err != nil {
				return -1, err
			}
		}
		if e.Kind == abi.KindEndOfInput {
			// An alignment waiting only for ended channels completes.
			if err := t.channelEnded(env.ch); err != nil {
				return -1, err
			}
			t.inputsLeft[input]--
			if t.inputsLeft[input] == 0 {
				if err := t.head.endInput(input); err != nil {
					return -1, err
				}
			}
			if t.tracker.liveLeft == 0 {
				if err := t.head.finish(); err != nil {
					return -1, err
				}
				account(len(b))
				return -1, errFinished
			}
		}
	}
	account(len(b))
	return -1, flushRun()
}

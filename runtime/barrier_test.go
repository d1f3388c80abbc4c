package runtime

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/runtime/clock"
)

// recorder is a chain head that records what reaches it.
type recorder struct{ got []string }

func (r *recorder) records(_ int, batch []byte) error {
	d := abi.NewDecoder(batch)
	var e abi.Event
	for d.More() {
		if err := d.Next(&e); err != nil {
			return err
		}
		r.got = append(r.got, string(e.Value))
	}
	return nil
}
func (r *recorder) watermark(int64) error      { return nil }
func (r *recorder) idle(bool) error            { return nil }
func (r *recorder) endInput(int) error         { return nil }
func (r *recorder) finish() error              { r.got = append(r.got, "end"); return nil }
func (r *recorder) processingTime(int64) error { return nil }
func (r *recorder) close() error               { return nil }

// alignmentTask is a task with two input channels whose checkpoints only
// forward barriers (no barrier is registered with its attempt).
func alignmentTask(exactlyOnce bool) (*task, *recorder) {
	rec := &recorder{}
	t := &task{name: "t[0]", ctx: context.Background(), clock: clock.Real{}, metrics: newTaskMetrics(), head: rec,
		nodes: []*NodeSpec{{ID: "t", Parallelism: 1}}}
	t.gate = newGate(2, 4)
	t.gate.addChannel(0, 4, 1024)
	t.gate.addChannel(0, 4, 1024)
	t.tracker = newWatermarkTracker(2)
	t.inputsLeft = []int{2}
	t.cp = newTaskCP(&attempt{exactlyOnce: exactlyOnce}, t, 2)
	return t, rec
}

func send(t *task, ch int, build func(e *abi.Encoder)) {
	var e abi.Encoder
	build(&e)
	buf := <-t.gate.channels[ch].free
	buf = append(buf, e.B...)
	t.gate.inbox <- envelope{ch: ch, buf: buf}
}

func value(e *abi.Encoder, v string) { e.Record(abi.TagMain, nil, []byte(v), 1) }

func TestBarrierAlignment(t *testing.T) {
	cases := []struct {
		exactlyOnce bool
		want        string
	}{
		// Exactly once: r2 follows barrier 1 on channel 0, so it waits
		// until channel 1 delivered barrier 1 too; r4 (after the barrier
		// on channel 1, in the same batch) goes first.
		{true, "r1 r3 r4 r2 r5 end"},
		// At least once: nothing waits.
		{false, "r1 r2 r3 r4 r5 end"},
	}
	for _, c := range cases {
		tk, out := alignmentTask(c.exactlyOnce)
		send(tk, 0, func(e *abi.Encoder) { value(e, "r1"); e.Barrier(1, 0, 0); value(e, "r2") })
		send(tk, 1, func(e *abi.Encoder) { value(e, "r3") })
		send(tk, 1, func(e *abi.Encoder) { e.Barrier(1, 0, 0); value(e, "r4") })
		send(tk, 0, func(e *abi.Encoder) { value(e, "r5"); e.EndOfInput() })
		send(tk, 1, func(e *abi.Encoder) { e.EndOfInput() })
		if err := tk.runInputs(); !errors.Is(err, errFinished) {
			t.Fatalf("run: %v", err)
		}
		if got := strings.Join(out.got, " "); got != c.want {
			t.Errorf("exactlyOnce=%v: order %q, want %q", c.exactlyOnce, got, c.want)
		}
		if tk.cp.lastID != 1 {
			t.Errorf("exactlyOnce=%v: snapshotted barrier %d, want 1", c.exactlyOnce, tk.cp.lastID)
		}
		if tk.cp.alignments.Load() <= 0 {
			t.Errorf("exactlyOnce=%v: no alignment time measured", c.exactlyOnce)
		}
		// Every buffer went back to its channel (credits are not lost
		// while a channel is blocked).
		for i, ch := range tk.gate.channels {
			if n := len(ch.free); n != 4 {
				t.Errorf("exactlyOnce=%v: channel %d has %d of 4 buffers back", c.exactlyOnce, i, n)
			}
		}
	}
}

// TestNewerBarrierCancelsAlignment: barrier 2 arriving while barrier 1 is
// aligned (1 was aborted at a source) releases the blocked channel.
func TestNewerBarrierCancelsAlignment(t *testing.T) {
	tk, out := alignmentTask(true)
	send(tk, 0, func(e *abi.Encoder) { e.Barrier(1, 0, 0); value(e, "a") })
	send(tk, 1, func(e *abi.Encoder) { value(e, "b"); e.Barrier(2, 0, 0); value(e, "c") })
	send(tk, 0, func(e *abi.Encoder) { e.Barrier(2, 0, 0); value(e, "d"); e.EndOfInput() })
	send(tk, 1, func(e *abi.Encoder) { e.EndOfInput() })
	if err := tk.runInputs(); !errors.Is(err, errFinished) {
		t.Fatal(err)
	}
	// b, then barrier 2 on channel 1 cancels 1's alignment (a is released)
	// and blocks channel 1 (c waits for channel 0's barrier 2).
	if got := strings.Join(out.got, " "); got != "b a d c end" {
		t.Fatalf("order %q", got)
	}
	if tk.cp.lastID != 2 {
		t.Fatalf("snapshotted %d, want 2", tk.cp.lastID)
	}
}

// TestEndedChannelCompletesAlignment: a channel that ends while the other
// is blocked on a barrier counts as aligned.
func TestEndedChannelCompletesAlignment(t *testing.T) {
	tk, out := alignmentTask(true)
	send(tk, 0, func(e *abi.Encoder) { e.Barrier(1, 0, 0); value(e, "x") })
	send(tk, 1, func(e *abi.Encoder) { value(e, "y"); e.EndOfInput() })
	send(tk, 0, func(e *abi.Encoder) { e.EndOfInput() })
	done := make(chan error, 1)
	go func() { done <- tk.runInputs() }()
	select {
	case err := <-done:
		if !errors.Is(err, errFinished) {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("alignment never completed after the other channel ended")
	}
	if got := strings.Join(out.got, " "); got != "y x end" {
		t.Fatalf("order %q", got)
	}
}

func TestRestartStrategy(t *testing.T) {
	t0 := time.Unix(0, 0)
	cases := []struct {
		name   string
		spec   RestartSpec
		at     []time.Duration // failure times
		delays []time.Duration // expected delays; -1 = give up
		reason string
	}{
		{"none", RestartSpec{Strategy: RestartNone}, []time.Duration{0}, []time.Duration{-1}, "none"},
		{"fixed", RestartSpec{Strategy: RestartFixed, Attempts: 2, Delay: Duration(time.Second)},
			[]time.Duration{0, 1, 2}, []time.Duration{time.Second, time.Second, -1}, "2 restarts in a row"},
		{"exponential", RestartSpec{Strategy: RestartExponential, Delay: Duration(time.Second), MaxDelay: Duration(5 * time.Second), Multiplier: 2},
			[]time.Duration{0, 1, 2, 3, 4}, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}, ""},
		{"failure rate", RestartSpec{Strategy: RestartFixed, Attempts: 100, Delay: 0, MaxFailures: 2, FailureInterval: Duration(time.Minute)},
			[]time.Duration{0, 10 * time.Second, 2 * time.Minute, 2*time.Minute + time.Second, 2*time.Minute + 2*time.Second},
			[]time.Duration{0, 0, 0, 0, -1}, "3 failures within 1m0s"},
	}
	for _, c := range cases {
		r := newRestartStrategy(c.spec)
		for i, at := range c.at {
			d, ok, why := r.next(t0.Add(at))
			want := c.delays[i]
			if (want < 0) != !ok || (ok && d != want) {
				t.Fatalf("%s: failure %d: delay %v ok %v (%s), want %v", c.name, i, d, ok, why, want)
			}
			if !ok && !strings.Contains(why, c.reason) {
				t.Fatalf("%s: reason %q, want %q", c.name, why, c.reason)
			}
		}
	}
	// Progress (a completed checkpoint) resets the consecutive count.
	r := newRestartStrategy(RestartSpec{Strategy: RestartFixed, Attempts: 1})
	for i := range 5 {
		if _, ok, _ := r.next(t0); !ok {
			t.Fatalf("restart %d refused although every attempt made progress", i)
		}
		r.progress()
	}
}

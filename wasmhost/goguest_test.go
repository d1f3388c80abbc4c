package wasmhost

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weirstream/weir/abi"
)

func TestGoGuestEcho(t *testing.T) {
	m := goGuestModule(t)
	i := open(t, m, "echo", InstanceConfig{Name: "go-echo"})
	var in abi.Encoder
	in.Record(abi.TagMain, []byte("a"), []byte("1"), 10)
	in.Timer(abi.EventTime, []byte("a"), 5)
	in.Record(abi.TagMain, nil, []byte("no key"), abi.NoTimestamp)
	in.Watermark(11)
	in.EndOfInput()
	out, err := i.Process(context.Background(), 0, in.B)
	if err != nil {
		t.Fatal(err)
	}
	var want abi.Encoder
	want.Record(abi.TagMain, []byte("a"), []byte("1"), 10)
	want.Record(abi.TagMain, nil, []byte("no key"), abi.NoTimestamp)
	if !bytes.Equal(out, want.B) {
		t.Errorf("output %q, want %q", out, want.B)
	}
	// Many batches through one instance, including a large one.
	for _, n := range []int{1, 1000, 20000} {
		in := records(n)
		out, err := i.Process(context.Background(), 0, in)
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("batch of %d records: %v (%d bytes out)", n, err, len(out))
		}
	}
	if err := i.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestGoGuestKeyedState(t *testing.T) {
	m := goGuestModule(t)
	st, tm := newMemState(), newFakeTimers()
	i := open(t, m, "count", InstanceConfig{State: st, Timers: tm})
	ctx := context.Background()
	if got, want := st.ids, map[string]int32{"count": 0, "seen": 1}; len(got) != 2 || got["count"] != want["count"] || got["seen"] != want["seen"] {
		t.Fatalf("registered states %v, want %v", got, want)
	}

	var in abi.Encoder
	in.Record(abi.TagMain, []byte("a"), []byte("x"), 1)
	in.Record(abi.TagMain, []byte("b"), []byte("y"), 2)
	in.Record(abi.TagMain, []byte("a"), []byte("z"), 3)
	out, err := i.Process(ctx, 0, in.B)
	if err != nil {
		t.Fatal(err)
	}
	var want abi.Encoder
	want.Record(abi.TagMain, []byte("a"), []byte("1"), 1)
	want.Record(abi.TagMain, []byte("b"), []byte("1"), 2)
	want.Record(abi.TagMain, []byte("a"), []byte("2"), 3)
	if !bytes.Equal(out, want.B) {
		t.Errorf("output\n got %q\nwant %q", out, want.B)
	}
	wantTimers := []timer{{abi.EventTime, "a", 101}, {abi.EventTime, "a", 103}, {abi.EventTime, "b", 102}}
	if got := tm.list(); !slices.Equal(got, wantTimers) {
		t.Errorf("timers %v, want %v", got, wantTimers)
	}
	if v, ok, _ := st.Get(0, []byte("a"), nil); !ok || string(v) != "2" {
		t.Errorf("count of a = %q, %v", v, ok)
	}

	// The timer batch of watermark 150: timers of a then b, then the
	// watermark; during it watermark() returns 150.
	tm.mu.Lock()
	tm.wm = 150
	tm.mu.Unlock()
	in.Reset()
	in.Timer(abi.EventTime, []byte("a"), 101)
	in.Timer(abi.EventTime, []byte("b"), 102)
	in.Timer(abi.EventTime, []byte("a"), 103)
	in.Watermark(150)
	out, err = i.Process(ctx, 0, in.B)
	if err != nil {
		t.Fatal(err)
	}
	want.Reset()
	want.Record(abi.TagMain, []byte("a"), []byte("fired@101 count=2 seen=x,z"), 101)
	want.Record(abi.TagMain, []byte("b"), []byte("fired@102 count=1 seen=y"), 102)
	want.Record(abi.TagMain, []byte("a"), []byte("fired@103 count=0 seen="), 103)
	want.Record(abi.TagMain, []byte("wm"), []byte("150"), 150)
	if !bytes.Equal(out, want.B) {
		t.Errorf("output\n got %q\nwant %q", out, want.B)
	}
	if _, ok, _ := st.Get(0, []byte("a"), nil); ok {
		t.Error("count of a survived its timer")
	}

	// A value larger than the guest's 16-byte get buffer: it asks again
	// with a bigger one.
	st.Put(0, []byte("c"), nil, []byte("00000000000000000041"))
	in.Reset()
	in.Record(abi.TagMain, []byte("c"), []byte("v"), abi.NoTimestamp)
	out, err = i.Process(ctx, 0, in.B)
	if err != nil {
		t.Fatal(err)
	}
	want.Reset()
	want.Record(abi.TagMain, []byte("c"), []byte("42"), abi.NoTimestamp)
	if !bytes.Equal(out, want.B) {
		t.Errorf("output\n got %q\nwant %q", out, want.B)
	}
}

func TestGoGuestFailures(t *testing.T) {
	m := goGuestModule(t)
	tests := []struct {
		op     string
		limits Limits
		kind   FailureKind
		check  func(t *testing.T, err error)
	}{
		{"panic", Limits{}, FailureStatus, func(t *testing.T, err error) {
			var se *StatusError
			if !errors.As(err, &se) || se.Status() != abi.StatusPanic || se.Message() != "recovered: boom" {
				t.Errorf("StatusError: %v", err)
			}
		}},
		// A Go guest prints the panic to stderr, then traps (unreachable).
		{"crash", Limits{}, FailureTrap, func(t *testing.T, err error) {
			var te *TrapError
			if !errors.As(err, &te) || te.Message() != "unreachable" || te.Stderr() != "panic: crash!" ||
				!strings.HasSuffix(err.Error(), `weir_process: wasm trap: unreachable; stderr: "panic: crash!"`) {
				t.Errorf("TrapError: %v", err)
			}
		}},
		{"oom", Limits{MemoryPages: 256}, FailureTrap, func(t *testing.T, err error) {
			var te *TrapError
			if !errors.As(err, &te) || te.Stderr() != "fatal error: out of memory" {
				t.Errorf("TrapError: %v", err)
			}
		}},
		{"loop", Limits{CallTimeout: 200 * time.Millisecond}, FailureDeadline, func(t *testing.T, err error) {
			if !errors.Is(err, context.DeadlineExceeded) || !strings.HasSuffix(err.Error(), "weir_process: deadline exceeded after 200ms") {
				t.Errorf("deadline error: %v", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.op, func(t *testing.T) {
			lg := &recLogger{}
			i := open(t, m, tc.op, InstanceConfig{Name: "go-" + tc.op, Limits: tc.limits, Logger: lg})
			_, err := i.Process(context.Background(), 0, records(3))
			if err == nil {
				t.Fatal("Process succeeded")
			}
			callError(t, err, tc.kind)
			tc.check(t, err)
			if _, err := i.Process(context.Background(), 0, records(1)); !errors.Is(err, ErrClosed) {
				t.Errorf("instance alive after %v", err)
			}
		})
	}
}

func TestGoGuestLogs(t *testing.T) {
	m := goGuestModule(t)
	lg := &recLogger{}
	i := open(t, m, "logger", InstanceConfig{Logger: lg})
	if _, err := i.Process(context.Background(), 0, records(3)); err != nil {
		t.Fatal(err)
	}
	want := []logLine{{abi.LogInfo, "value0"}, {abi.LogInfo, "value1"}, {abi.LogInfo, "value2"}}
	if got := lg.all(); !slices.Equal(got, want) {
		t.Errorf("log lines %v, want %v", got, want)
	}
}

// TestGoGuestInstancesIndependent checks that two instances of one module
// share nothing: each has its own memory and Go runtime, so a crash in one
// leaves the other's state (here: its registered operator) intact.
func TestGoGuestInstancesIndependent(t *testing.T) {
	m := goGuestModule(t)
	a := open(t, m, "echo", InstanceConfig{})
	b := open(t, m, "crash", InstanceConfig{})
	if _, err := b.Process(context.Background(), 0, records(1)); err == nil {
		t.Fatal("crash did not crash")
	}
	in := records(100)
	if out, err := a.Process(context.Background(), 0, in); err != nil || !bytes.Equal(out, in) {
		t.Fatalf("echo after a crash of another instance: %v", err)
	}
	if a.MemoryBytes() == 0 {
		t.Error("echo instance has no memory")
	}
}

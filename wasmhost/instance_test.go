package wasmhost

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weirstream/weir/abi"
)

func TestEcho(t *testing.T) {
	r := newTestRuntime(t, Config{})
	m := compile(t, r, "echo")
	i := open(t, m, "echo", InstanceConfig{Name: "echo#0"})
	for _, n := range []int{0, 1, 10, 5000} {
		in := records(n)
		out, err := i.Process(context.Background(), 0, in)
		if err != nil {
			t.Fatalf("Process(%d records): %v", n, err)
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("Process(%d records) returned %d bytes, want the %d input bytes", n, len(out), len(in))
		}
	}
	// 5000 records need about 120 KiB: the guest grew its memory.
	if got := i.MemoryBytes(); got <= pageSize {
		t.Errorf("MemoryBytes() = %d, want more than one page after a large batch", got)
	}
	if err := i.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := i.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_, err := i.Process(context.Background(), 0, records(1))
	ce := callError(t, err, FailureClosed)
	if !errors.Is(err, ErrClosed) || ce.Function() != abi.ExportProcess {
		t.Errorf("Process after Close: %v", err)
	}
}

func TestInstanceUsage(t *testing.T) {
	r := newTestRuntime(t, Config{})
	m := compile(t, r, "calls")
	ctx := context.Background()

	i := instantiate(t, m, InstanceConfig{Name: "u"})
	if _, err := i.Process(ctx, 0, nil); err == nil || !strings.Contains(err.Error(), "Process before Open") {
		t.Errorf("Process before Open: %v", err)
	}
	if err := i.Open(ctx, abi.OpenInfo{Operator: "calls"}); !errors.Is(err, errNilConfig) {
		t.Errorf("Open of a keyed operator without State/Timers: %v, want errNilConfig", err)
	}
	if err := i.Open(ctx, abi.OpenInfo{Operator: "plain"}); err != nil {
		t.Fatal(err)
	}
	if err := i.Open(ctx, abi.OpenInfo{Operator: "plain"}); err == nil || !strings.Contains(err.Error(), "Open called twice") {
		t.Errorf("second Open: %v", err)
	}
	if _, err := i.Process(ctx, -1, nil); err == nil || !strings.Contains(err.Error(), "input number -1 out of range") {
		t.Errorf("Process(-1): %v", err)
	}

	j := instantiate(t, m, InstanceConfig{Name: "v"})
	err := j.Open(ctx, abi.OpenInfo{Operator: "nope"})
	ce := callError(t, err, FailureStatus)
	var se *StatusError
	if !errors.As(err, &se) || se.Status() != abi.StatusUnknownOperator ||
		se.Message() != `the module exports no operator "nope" (it has: calls, plain)` {
		t.Errorf("Open(nope) = %v", err)
	}
	if ce.Instance() != "v" || ce.Function() != abi.ExportOpen {
		t.Errorf("CallError names instance %q function %q", ce.Instance(), ce.Function())
	}
}

func TestInstantiateMemoryLimit(t *testing.T) {
	r := newTestRuntime(t, Config{DefaultLimits: Limits{MemoryPages: 4096}})
	m := compile(t, r, "big_memory")
	ctx := context.Background()
	_, err := m.Instantiate(ctx, InstanceConfig{Name: "small", Limits: Limits{MemoryPages: 1024}})
	if !errors.Is(err, ErrMemoryLimit) || !strings.Contains(err.Error(), "declares 2000 initial memory pages, more than the limit of 1024") {
		t.Errorf("Instantiate under 1024 pages: %v", err)
	}
	i := instantiate(t, m, InstanceConfig{Limits: Limits{MemoryPages: 2000}})
	if got := i.MemoryBytes(); got != 2000*pageSize {
		t.Errorf("MemoryBytes() = %d, want %d", got, 2000*pageSize)
	}
	if j, err := m.Instantiate(ctx, InstanceConfig{Limits: Limits{MemoryPages: 65535}}); err != nil {
		t.Errorf("Instantiate at the ceiling: %v", err)
	} else {
		j.Close(ctx)
	}
	r2 := newTestRuntime(t, Config{MemoryLimitPages: 2048})
	m2 := compile(t, r2, "echo")
	if _, err := m2.Instantiate(ctx, InstanceConfig{Limits: Limits{MemoryPages: 4096}}); err == nil ||
		!strings.Contains(err.Error(), "limits.MemoryPages 4096 exceeds the runtime's MemoryLimitPages 2048") {
		t.Errorf("Instantiate over the ceiling: %v", err)
	}
}

// hostileCase is one misbehaviour of testdata/hostile.wat (selected by the
// input number) and what the host must make of it.
type hostileCase struct {
	name  string
	input int
	kind  FailureKind
	msg   string // the CallError's message after the instance/function prefix
	check func(t *testing.T, err error)
}

// hostileLimits: 1s is long enough for infinite recursion to reach the
// stack limit (about 350ms here) before the deadline.
var hostileLimits = Limits{CallTimeout: time.Second, MaxOutputBytes: 64 << 10, MemoryPages: 16}

var hostileCases = []hostileCase{
	{"infinite loop", 1, FailureDeadline, "deadline exceeded after 1s", func(t *testing.T, err error) {
		var de *DeadlineError
		if !errors.As(err, &de) || de.Timeout() != time.Second || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("not a 1s DeadlineError matching context.DeadlineExceeded: %v", err)
		}
	}},
	{"unreachable", 2, FailureTrap, "wasm trap: unreachable", func(t *testing.T, err error) {
		var te *TrapError
		if !errors.As(err, &te) || te.Message() != "unreachable" || !strings.Contains(te.Stack(), "(i32,i32,i32) i32") {
			t.Errorf("TrapError message/stack: %v / %q", err, te.Stack())
		}
	}},
	{"out-of-bounds load", 3, FailureTrap, "wasm trap: out of bounds memory access", nil},
	{"emit flood", 5, FailureABI, "weir.emit: 1024 more bytes would exceed the output limit of 65536 bytes per input batch (65536 emitted)",
		func(t *testing.T, err error) {
			var oe *OutputLimitError
			if !errors.As(err, &oe) || oe.Limit() != 64<<10 || oe.Emitted() != 64<<10 {
				t.Errorf("OutputLimitError: %v", err)
			}
		}},
	{"proc_exit", 6, FailureExit, "guest exited with code 3", func(t *testing.T, err error) {
		var ee *ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 3 || ee.Stderr() != "" {
			t.Errorf("ExitError: %v", err)
		}
	}},
	{"status error", 7, FailureStatus, "operator error: boom", func(t *testing.T, err error) {
		var se *StatusError
		if !errors.As(err, &se) || se.Status() != abi.StatusError || se.Message() != "boom" {
			t.Errorf("StatusError: %v", err)
		}
	}},
	{"status panic", 8, FailureStatus, "operator panic: kaboom", nil},
	{"status bad input", 9, FailureStatus, "guest could not decode its input", nil},
	{"unknown status", 10, FailureStatus, "unknown status 77", nil},
	{"divide by zero", 11, FailureTrap, "wasm trap: integer divide by zero", nil},
	{"infinite recursion", 12, FailureTrap, "wasm trap: stack overflow", nil},
	{"loop calling the host", 13, FailureDeadline, "deadline exceeded after 1s", nil},
	{"Go-like panic", 15, FailureExit, `guest exited with code 2; stderr: "panic: boom"`, func(t *testing.T, err error) {
		var ee *ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || ee.Stderr() != "panic: boom" {
			t.Errorf("ExitError: %v", err)
		}
	}},
}

func TestHostile(t *testing.T) {
	r := newTestRuntime(t, Config{})
	m := compile(t, r, "hostile")
	ctx := context.Background()
	for _, tc := range hostileCases {
		t.Run(tc.name, func(t *testing.T) {
			limits := hostileLimits
			if tc.input == 12 {
				// Runaway recursion ends when wazero's host-side stack
				// reaches its limit; under -race growing it is slow.
				limits.CallTimeout = 20 * time.Second
			}
			i := open(t, m, "hostile", InstanceConfig{Name: "h", Limits: limits})
			start := time.Now()
			out, err := i.Process(ctx, tc.input, records(2))
			elapsed := time.Since(start)
			if err == nil {
				t.Fatalf("Process succeeded with %d bytes, want a %v failure", len(out), tc.kind)
			}
			ce := callError(t, err, tc.kind)
			want := `wasmhost: instance "h": weir_process: ` + tc.msg
			if err.Error() != want {
				t.Errorf("error\n got %q\nwant %q", err.Error(), want)
			}
			if ce.Function() != abi.ExportProcess || ce.Instance() != "h" {
				t.Errorf("CallError function %q instance %q", ce.Function(), ce.Instance())
			}
			if tc.check != nil {
				tc.check(t, err)
			}
			if tc.kind == FailureDeadline && (elapsed < time.Second || elapsed > 5*time.Second) {
				t.Errorf("deadline hit after %v, want about 1s", elapsed)
			}
			// The instance is dead, and says why.
			_, err = i.Process(ctx, 0, records(1))
			callError(t, err, FailureClosed)
			if !errors.Is(err, ErrClosed) || !strings.Contains(err.Error(), "failed earlier") {
				t.Errorf("Process on a dead instance: %v", err)
			}
			if i.MemoryBytes() != 0 {
				t.Errorf("a dead instance still reports %d bytes of memory", i.MemoryBytes())
			}
			if err := i.Close(ctx); err != nil {
				t.Errorf("Close of a dead instance: %v", err)
			}
		})
	}
}

func TestMemoryGrowStopsAtLimit(t *testing.T) {
	r := newTestRuntime(t, Config{})
	m := compile(t, r, "hostile")
	for _, pages := range []uint32{1, 3, 64, 1024} {
		i := open(t, m, "hostile", InstanceConfig{Limits: Limits{MemoryPages: pages}})
		out, err := i.Process(context.Background(), 4, nil)
		if err != nil {
			t.Fatalf("MemoryPages %d: %v", pages, err)
		}
		evs := decodeAll(t, out)
		if len(evs) != 1 || len(evs[0].Value) != 4 {
			t.Fatalf("MemoryPages %d: output %v", pages, evs)
		}
		if got := binary.LittleEndian.Uint32(evs[0].Value); got != pages {
			t.Errorf("MemoryPages %d: memory.grow stopped at %d pages", pages, got)
		}
		if got := i.MemoryBytes(); got != uint64(pages)*pageSize {
			t.Errorf("MemoryPages %d: MemoryBytes() = %d", pages, got)
		}
	}
}

func TestCanceledCall(t *testing.T) {
	r := newTestRuntime(t, Config{})
	m := compile(t, r, "hostile")

	// The caller's own deadline, shorter than CallTimeout.
	i := open(t, m, "hostile", InstanceConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := i.Process(ctx, 1, nil)
	callError(t, err, FailureCanceled)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
	}

	// An explicit cancel while the guest loops calling watermark(): the
	// Timers fake tells the test when the guest is running.
	running := make(chan struct{})
	var once sync.Once
	tm := &signalTimers{fakeTimers: newFakeTimers(), onWatermark: func() { once.Do(func() { close(running) }) }}
	j := open(t, m, "hostile", InstanceConfig{Timers: tm})
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() {
		<-running
		cancel2()
	}()
	_, err = j.Process(ctx2, 13, nil)
	callError(t, err, FailureCanceled)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not wrap context.Canceled", err)
	}
}

type signalTimers struct {
	*fakeTimers
	onWatermark func()
}

func (s *signalTimers) Watermark() int64 {
	s.onWatermark()
	return s.fakeTimers.Watermark()
}

func TestCapturedOutput(t *testing.T) {
	r := newTestRuntime(t, Config{})
	m := compile(t, r, "hostile")
	lg := &recLogger{}
	i := open(t, m, "hostile", InstanceConfig{Logger: lg})
	ctx := context.Background()
	for _, input := range []int{14, 18, 17} {
		if _, err := i.Process(ctx, input, nil); err != nil {
			t.Fatalf("input %d: %v", input, err)
		}
	}
	want := []logLine{
		{abi.LogInfo, "hello stdout"},
		{abi.LogWarn, "oops stderr"},
		{abi.LogInfo, "partial"}, // flushed when the call returned
		{abi.LogWarn, strings.Repeat("x", MaxLogLine)},
	}
	if got := lg.all(); !slices.Equal(got, want) {
		t.Errorf("log lines:\n got %.200q\nwant %.200q", got, want)
	}
}

func TestLineWriter(t *testing.T) {
	lg := &recLogger{}
	i := &Instance{logger: lg, logs: newLogLimiter(1<<30, time.Now)}
	w := lineWriter{inst: i, level: abi.LogWarn, stderr: true}
	long := strings.Repeat("y", MaxLogLine+10)
	for _, s := range []string{"a", "b\nc\n", "\n", "panic: p", "\nlast line\n", long[:3000], long[3000:] + "\nz"} {
		if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	w.flush()
	want := []logLine{{abi.LogWarn, "ab"}, {abi.LogWarn, "c"}, {abi.LogWarn, ""}, {abi.LogWarn, "panic: p"},
		{abi.LogWarn, "last line"}, {abi.LogWarn, long[:MaxLogLine]}, {abi.LogWarn, "z"}}
	if got := lg.all(); !slices.Equal(got, want) {
		t.Errorf("lines:\n got %.300q\nwant %.300q", got, want)
	}
	if got := i.stderrSummary(); got != "panic: p" {
		t.Errorf("stderr summary = %q", got)
	}
}

func TestLogRateLimit(t *testing.T) {
	r := newTestRuntime(t, Config{})
	m := compile(t, r, "hostile")
	lg := &recLogger{}
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	i := open(t, m, "hostile", InstanceConfig{Logger: lg, Now: clock, Limits: Limits{MaxLogBytesPerSecond: 1000}})
	ctx := context.Background()

	// 1000 lines of 100 bytes against a bucket of 1000 bytes: 10 pass.
	if _, err := i.Process(ctx, 16, nil); err != nil {
		t.Fatal(err)
	}
	if got := len(lg.all()); got != 10 {
		t.Fatalf("%d lines logged, want 10", got)
	}
	// One second later the bucket is full again; the drop report comes first.
	now = now.Add(time.Second)
	if _, err := i.Process(ctx, 16, nil); err != nil {
		t.Fatal(err)
	}
	lines := lg.all()
	if len(lines) != 21 {
		t.Fatalf("%d lines logged, want 21", len(lines))
	}
	report := logLine{abi.LogWarn, "wasmhost: dropped 990 guest log lines (99000 bytes) over the limit of 1000 bytes/s"}
	if lines[10] != report {
		t.Errorf("line 10 = %q, want the drop report", lines[10])
	}
	// Close reports the drops since.
	if err := i.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if last := lg.all()[21]; last != report {
		t.Errorf("last line = %q, want the drop report", last)
	}
}

func TestBufferBad(t *testing.T) {
	r := newTestRuntime(t, Config{})
	m := compile(t, r, "buffer_bad")
	ctx := context.Background()

	i := open(t, m, "stub", InstanceConfig{Name: "b"})
	_, err := i.Process(ctx, 0, make([]byte, 10))
	callError(t, err, FailureABI)
	var be *BoundsError
	if !errors.As(err, &be) || be.Function() != abi.ExportBuffer || be.Ptr() != 65536-10+1 || be.Len() != 10 || be.MemorySize() != 65536 {
		t.Errorf("BoundsError: %v", err)
	}
	if want := `wasmhost: instance "b": weir_buffer: weir_buffer: returned buffer [65527, 65527+10) is outside the 65536-byte guest memory`; err.Error() != want {
		t.Errorf("error\n got %q\nwant %q", err, want)
	}

	j := open(t, m, "stub", InstanceConfig{})
	_, err = j.Process(ctx, 0, make([]byte, 7))
	callError(t, err, FailureABI)
	if !errors.Is(err, ErrGuestOutOfMemory) {
		t.Errorf("error %v does not wrap ErrGuestOutOfMemory", err)
	}
}

// callArgs encodes an input for testdata/calls.wat: selector, 7 i64
// arguments, then payload, which lands at payloadAddr in guest memory.
func callArgs(sel uint32, args [7]int64, payload []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, sel)
	for _, a := range args {
		b = binary.LittleEndian.AppendUint64(b, uint64(a))
	}
	return append(b, payload...)
}

// Addresses in calls.wat: the input buffer is at 1024; the payload after the
// 60-byte argument header; the import's result is stored at 8.
const (
	payloadAddr = 1024 + 60
	resultAddr  = 8
)

// Selectors of calls.wat.
const (
	selLog = iota
	selFail
	selEmit
	selStateRegister
	selStateGet
	selStatePut
	selStateDelete
	selStateAppend
	selStateScan
	selStateClear
	selTimerRegister
	selTimerDelete
	selWatermark
	selProcessingTime
)

// result reads the value calls.wat stored for the last call.
func result(t testing.TB, i *Instance) int64 {
	t.Helper()
	v, ok := i.mod.Memory().ReadUint64Le(resultAddr)
	if !ok {
		t.Fatal("cannot read the result slot")
	}
	return int64(v)
}

// do runs one import call through calls.wat and returns its result.
func do(t testing.TB, i *Instance, sel uint32, args [7]int64, payload []byte) int64 {
	t.Helper()
	if _, err := i.Process(context.Background(), 0, callArgs(sel, args, payload)); err != nil {
		t.Fatalf("selector %d %v: %v", sel, args, err)
	}
	return result(t, i)
}

func TestStateImports(t *testing.T) {
	r := newTestRuntime(t, Config{})
	m := compile(t, r, "calls")
	ctx := context.Background()
	st, tm := newMemState(), newFakeTimers()
	i := instantiate(t, m, InstanceConfig{State: st, Timers: tm})
	// state_register("map1", map) from weir_open, through the config: the
	// config's payload follows the OpenInfo header and the 60-byte arguments.
	namePtr := int64(1024 + 4 + len("calls") + 4 + len("node") + 4 + 60)
	err := i.Open(ctx, abi.OpenInfo{Operator: "calls", NodeID: "node",
		Config: callArgs(selStateRegister, [7]int64{namePtr, 4, int64(abi.StateMap)}, []byte("map1"))})
	if err != nil {
		t.Fatal(err)
	}
	if got := result(t, i); got != 0 {
		t.Errorf("state_register in weir_open = %d, want id 0", got)
	}
	if id, ok := st.ids["map1"]; !ok || id != 0 || st.kinds[0] != abi.StateMap {
		t.Errorf("registered states: %v %v", st.ids, st.kinds)
	}
	const p = payloadAddr
	if got := do(t, i, selStateRegister, [7]int64{p, 4, int64(abi.StateMap)}, []byte("map1")); got != int64(abi.ErrNotAllowed) {
		t.Errorf("state_register in weir_process = %d, want NotAllowed", got)
	}
	if len(st.kinds) != 1 {
		t.Fatalf("weir_open registered %d states, want 1", len(st.kinds))
	}

	// put (k, s1) = v1; payload: "k" "s1" "v1"
	if got := do(t, i, selStatePut, [7]int64{0, p, 1, p + 1, 2, p + 3, 2}, []byte("ks1v1")); got != 0 {
		t.Fatalf("state_put = %d", got)
	}
	if got := do(t, i, selStatePut, [7]int64{0, p, 1, p + 1, 2, p + 3, 3}, []byte("ks0v00")); got != 0 {
		t.Fatalf("state_put = %d", got)
	}
	// get with a big enough buffer copies; with a small one only reports.
	if got := do(t, i, selStateGet, [7]int64{0, p, 1, p + 1, 2, 4000, 16}, []byte("ks1")); got != 2 {
		t.Fatalf("state_get = %d, want 2", got)
	}
	if b, _ := i.mod.Memory().Read(4000, 2); string(b) != "v1" {
		t.Errorf("state_get copied %q", b)
	}
	i.mod.Memory().Write(4100, []byte("----"))
	if got := do(t, i, selStateGet, [7]int64{0, p, 1, p + 1, 2, 4100, 1}, []byte("ks1")); got != 2 {
		t.Fatalf("state_get with a 1-byte buffer = %d, want 2", got)
	}
	if b, _ := i.mod.Memory().Read(4100, 4); string(b) != "----" {
		t.Errorf("state_get wrote %q into a buffer too small for the value", b)
	}
	if got := do(t, i, selStateGet, [7]int64{0, p, 1, p + 1, 2, 4000, 16}, []byte("kzz")); got != int64(abi.ErrNotFound) {
		t.Errorf("state_get of a missing cell = %d, want NotFound", got)
	}
	if got := do(t, i, selStateGet, [7]int64{7, p, 1, p + 1, 2, 4000, 16}, []byte("ks1")); got != int64(abi.ErrInvalid) {
		t.Errorf("state_get of an unknown state = %d, want Invalid (from the StateAccess)", got)
	}
	// scan: entries in sub key order, encoded as abi.AppendScanEntry does.
	want := abi.AppendScanEntry(abi.AppendScanEntry(nil, []byte("s0"), []byte("v00")), []byte("s1"), []byte("v1"))
	if got := do(t, i, selStateScan, [7]int64{0, p, 1, 4000, 100}, []byte("k")); got != int64(len(want)) {
		t.Fatalf("state_scan = %d, want %d", got, len(want))
	}
	if b, _ := i.mod.Memory().Read(4000, uint32(len(want))); !bytes.Equal(b, want) {
		t.Errorf("state_scan wrote %q, want %q", b, want)
	}
	if got := do(t, i, selStateScan, [7]int64{0, p, 1, 4000, 3}, []byte("k")); got != int64(len(want)) {
		t.Errorf("state_scan with a small buffer = %d, want %d", got, len(want))
	}
	if got := do(t, i, selStateDelete, [7]int64{0, p, 1, p + 1, 2}, []byte("ks1")); got != 0 {
		t.Errorf("state_delete = %d", got)
	}
	if got := do(t, i, selStateGet, [7]int64{0, p, 1, p + 1, 2, 4000, 16}, []byte("ks1")); got != int64(abi.ErrNotFound) {
		t.Errorf("state_get after delete = %d", got)
	}
	if got := do(t, i, selStateClear, [7]int64{0, p, 1}, []byte("k")); got != 0 {
		t.Errorf("state_clear = %d", got)
	}
	if got := do(t, i, selStateScan, [7]int64{0, p, 1, 4000, 100}, []byte("k")); got != 0 {
		t.Errorf("state_scan after clear = %d, want 0", got)
	}
	if got := do(t, i, selStateAppend, [7]int64{0, p, 1, p + 1, 1}, []byte("kx")); got != 0 {
		t.Errorf("state_append = %d", got)
	}

	// timers and clocks
	if got := do(t, i, selTimerRegister, [7]int64{0, p, 2, 1234}, []byte("tk")); got != 0 {
		t.Errorf("timer_register = %d", got)
	}
	if got := do(t, i, selTimerRegister, [7]int64{1, p, 2, -5}, []byte("tk")); got != 0 {
		t.Errorf("timer_register = %d", got)
	}
	if got := do(t, i, selTimerRegister, [7]int64{2, p, 2, 1}, []byte("tk")); got != int64(abi.ErrInvalid) {
		t.Errorf("timer_register in domain 2 = %d, want Invalid", got)
	}
	if got, want := tm.list(), []timer{{abi.ProcessingTime, "tk", -5}, {abi.EventTime, "tk", 1234}}; !slices.Equal(got, want) {
		t.Errorf("timers = %v, want %v", got, want)
	}
	if got := do(t, i, selTimerDelete, [7]int64{0, p, 2, 1234}, []byte("tk")); got != 0 {
		t.Errorf("timer_delete = %d", got)
	}
	if got := len(tm.list()); got != 1 {
		t.Errorf("%d timers after delete, want 1", got)
	}
	tm.mu.Lock()
	tm.wm, tm.now = 77, 1_700_000_000_000
	tm.mu.Unlock()
	if got := do(t, i, selWatermark, [7]int64{}, nil); got != 77 {
		t.Errorf("watermark() = %d", got)
	}
	if got := do(t, i, selProcessingTime, [7]int64{}, nil); got != 1_700_000_000_000 {
		t.Errorf("processing_time() = %d", got)
	}
	// log and emit
	if got := do(t, i, selEmit, [7]int64{p, abi.RecordHeaderSize + 2}, abi.AppendRecord(nil, abi.TagLate, []byte("k"), []byte("v"), 9)); got != 0 {
		t.Errorf("emit = %d", got)
	}
}

func TestKeyErrnos(t *testing.T) {
	r := newTestRuntime(t, Config{})
	m := compile(t, r, "calls")
	const p = payloadAddr

	// An unkeyed operator gets NotKeyed from every state and timer import,
	// but may read the clocks.
	plain := open(t, m, "plain", InstanceConfig{})
	for _, sel := range []uint32{selStateGet, selStatePut, selStateDelete, selStateAppend, selStateScan,
		selStateClear, selTimerRegister, selTimerDelete} {
		if got := do(t, plain, sel, [7]int64{0, p, 1, p, 1, p, 1}, []byte("k")); got != int64(abi.ErrNotKeyed) {
			t.Errorf("selector %d in an unkeyed operator = %d, want NotKeyed", sel, got)
		}
	}
	if got := do(t, plain, selWatermark, [7]int64{}, nil); got != abi.MinWatermark {
		t.Errorf("watermark() without Timers = %d", got)
	}

	// Errnos from the StateAccess reach the guest unchanged.
	st := newMemState()
	st.fail = abi.ErrKeyNotLocal
	i := open(t, m, "calls", InstanceConfig{State: st, Timers: newFakeTimers()})
	if got := do(t, i, selStatePut, [7]int64{0, p, 1, p, 1, p, 1}, []byte("k")); got != int64(abi.ErrKeyNotLocal) {
		t.Errorf("state_put = %d, want KeyNotLocal", got)
	}
	st.fail = abi.ErrStateLimit
	if got := do(t, i, selStateAppend, [7]int64{0, p, 1, p, 1}, []byte("k")); got != int64(abi.ErrStateLimit) {
		t.Errorf("state_append = %d, want StateLimit", got)
	}
}

func TestHostFailure(t *testing.T) {
	r := newTestRuntime(t, Config{})
	m := compile(t, r, "calls")
	const p = payloadAddr
	diskErr := errors.New("disk on fire")
	for _, sel := range []uint32{selStateGet, selStatePut, selTimerRegister} {
		st, tm := newMemState(), newFakeTimers()
		st.fail, tm.fail = diskErr, diskErr
		i := open(t, m, "calls", InstanceConfig{Name: "hf", State: st, Timers: tm})
		_, err := i.Process(context.Background(), 0, callArgs(sel, [7]int64{0, p, 1, p, 1, p, 1}, []byte("k")))
		callError(t, err, FailureHost)
		if !errors.Is(err, diskErr) {
			t.Errorf("selector %d: error %v does not wrap the host's", sel, err)
		}
		if !strings.Contains(err.Error(), `wasmhost: instance "hf": weir_process: weir.`) {
			t.Errorf("error %q does not name the import", err)
		}
	}
}

func TestMalformedEmit(t *testing.T) {
	r := newTestRuntime(t, Config{})
	m := compile(t, r, "calls")
	const p = payloadAddr
	rec := abi.AppendRecord(nil, abi.TagMain, []byte("k"), []byte("v"), 1)
	tests := []struct {
		name    string
		payload []byte
		msg     string
	}{
		{"watermark", abi.AppendWatermark(nil, 5), "at byte 0: event kind watermark (only records may be emitted)"},
		{"record then timer", abi.AppendTimer(slices.Clone(rec), abi.EventTime, []byte("k"), 3), "at byte 20: event kind timer"},
		{"unknown kind", []byte{9}, "at byte 0: event kind kind(9)"},
		{"truncated header", rec[:10], "at byte 0: truncated record header"},
		{"truncated value", rec[:len(rec)-1], "at byte 0: key length 1 and value length 1 run past the end"},
		{"huge key length", append(append([]byte{1, 0}, 0xff, 0xff, 0xff, 0xff), make([]byte, 12)...), "key length 4294967295"},
		{"late tag is fine but tag 2 is not", append(abi.AppendRecord(nil, abi.TagLate, nil, nil, 0), abi.AppendRecord(nil, 2, nil, nil, 0)...),
			"at byte 18: unknown output tag 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			i := open(t, m, "plain", InstanceConfig{})
			_, err := i.Process(context.Background(), 0, callArgs(selEmit, [7]int64{p, int64(len(tc.payload))}, tc.payload))
			callError(t, err, FailureABI)
			var me *MalformedOutputError
			if !errors.As(err, &me) || !errors.Is(err, abi.ErrCorrupt) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %v, want a MalformedOutputError containing %q", err, tc.msg)
			}
		})
	}
}

func TestEmitOnlyInProcess(t *testing.T) {
	r := newTestRuntime(t, Config{})
	m := compile(t, r, "calls")
	lg := &recLogger{}
	i := instantiate(t, m, InstanceConfig{Logger: lg})
	// weir_open runs the dispatcher on its config: emit there is NotAllowed,
	// and calls.wat stores the result.
	rec := abi.AppendRecord(nil, abi.TagMain, nil, nil, 0)
	cfg := callArgs(selEmit, [7]int64{0, 0}, rec)
	if err := i.Open(context.Background(), abi.OpenInfo{Operator: "plain", Config: cfg}); err != nil {
		t.Fatal(err)
	}
	if got := result(t, i); got != int64(abi.ErrNotAllowed) {
		t.Errorf("emit in weir_open = %d, want NotAllowed", got)
	}
}

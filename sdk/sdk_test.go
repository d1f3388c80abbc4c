package sdk_test

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/sdk"
	"github.com/weirstream/weir/sdk/codec"
	"github.com/weirstream/weir/sdk/sdktest"
)

// cmdOp interprets each record's value as a command, so that tests read as
// scripts: "set 5", "get", "put 3 x", "range", "timer 100", "panic boom"...
type cmdOp struct {
	val  *sdk.ValueState[int64]
	blob *sdk.ValueState[[]byte]
	m    *sdk.MapState[int64, string]
	list *sdk.ListState[string]
}

func (o *cmdOp) Open(ctx *sdk.Context) (err error) {
	if o.val, err = sdk.NewValueState(ctx, "val", codec.Int64); err != nil {
		return err
	}
	if o.blob, err = sdk.NewValueState(ctx, "blob", codec.Raw); err != nil {
		return err
	}
	if o.m, err = sdk.NewMapState(ctx, "map", codec.Int64, codec.String); err != nil {
		return err
	}
	o.list, err = sdk.NewListState(ctx, "list", codec.String)
	ctx.Logf(sdk.LevelInfo, "open %s %s %d/%d", ctx.Operator(), ctx.NodeID(), ctx.Subtask(), ctx.Parallelism())
	return err
}

func (o *cmdOp) Process(ctx *sdk.Context, r sdk.Record) error {
	f := strings.Fields(string(r.Value))
	arg := func(i int) int64 {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			panic(err)
		}
		return n
	}
	emit := func(format string, args ...any) { ctx.Emit(r.Key, fmt.Appendf(nil, format, args...)) }
	var err error
	switch f[0] {
	case "set":
		err = o.val.Set(arg(1))
	case "get":
		v, ok, e := o.val.Get()
		emit("get %d %t", v, ok)
		err = e
	case "exists":
		ok, e := o.val.Exists()
		emit("exists %t", ok)
		err = e
	case "clear":
		err = o.val.Clear()
	case "blob":
		err = o.blob.Set([]byte(strings.Repeat("x", int(arg(1)))))
	case "getblob":
		v, ok, e := o.blob.Get()
		emit("blob %d %t %t", len(v), ok, strings.Count(string(v), "x") == len(v))
		err = e
	case "put":
		err = o.m.Put(arg(1), f[2])
	case "mget":
		v, ok, e := o.m.Get(arg(1))
		emit("mget %q %t", v, ok)
		err = e
	case "contains":
		ok, e := o.m.Contains(arg(1))
		emit("contains %t", ok)
		err = e
	case "del":
		err = o.m.Delete(arg(1))
	case "range":
		var b strings.Builder
		err = o.m.Range(func(k int64, v string) error {
			fmt.Fprintf(&b, "%d=%s,", k, v)
			return nil
		})
		emit("range %s", b.String())
	case "rangedel": // delete every entry while ranging over a snapshot
		err = o.m.Range(func(k int64, v string) error { return o.m.Delete(k) })
	case "rangestop":
		stop := errors.New("stop")
		n := 0
		err = o.m.Range(func(k int64, v string) error {
			n++
			return stop
		})
		if errors.Is(err, stop) {
			emit("stopped after %d", n)
			err = nil
		}
	case "mclear":
		err = o.m.Clear()
	case "append":
		err = o.list.Append(f[1])
	case "list":
		vs, e := o.list.Values()
		emit("list %s", strings.Join(vs, ","))
		err = e
	case "update":
		err = o.list.Update(f[1:])
	case "lclear":
		err = o.list.Clear()
	case "timer":
		err = ctx.RegisterEventTimeTimer(arg(1))
	case "untimer":
		err = ctx.DeleteEventTimeTimer(arg(1))
	case "ptimer":
		err = ctx.RegisterProcessingTimeTimer(arg(1))
	case "unptimer":
		err = ctx.DeleteProcessingTimeTimer(arg(1))
	case "now":
		emit("now %d wm %d", ctx.ProcessingTime(), ctx.Watermark())
	case "late":
		ctx.EmitLate(r.Key, r.Value)
	case "at":
		ctx.EmitWithTimestamp(r.Key, []byte("at"), arg(1))
	case "reserve":
		copy(ctx.EmitReserve(r.Key, len(f[1])), f[1])
	case "error":
		return errors.New(strings.Join(f[1:], " "))
	case "panic":
		panic(strings.Join(f[1:], " "))
	case "nilmap":
		var m map[string]int
		//lint:ignore SA5000 the test needs a runtime panic
		m["x"] = 1
	default:
		return fmt.Errorf("unknown command %q", f[0])
	}
	return err
}

func (o *cmdOp) OnTimer(ctx *sdk.Context, t sdk.Timer) error {
	if string(ctx.CurrentKey()) != string(t.Key) {
		return fmt.Errorf("current key %q, timer key %q", ctx.CurrentKey(), t.Key)
	}
	ctx.Emit(t.Key, fmt.Appendf(nil, "fired %s %d", t.Domain, t.Timestamp))
	return nil
}

func (o *cmdOp) OnWatermark(ctx *sdk.Context, wm int64) error {
	ctx.Emit(nil, fmt.Appendf(nil, "wm %d %d", wm, ctx.Watermark()))
	return nil
}

func (o *cmdOp) OnEndOfInput(ctx *sdk.Context, input int) error {
	ctx.Emit(nil, fmt.Appendf(nil, "eoi %d", input))
	return nil
}

func (o *cmdOp) Close(ctx *sdk.Context) error {
	ctx.Log(sdk.LevelInfo, "close")
	return nil
}

// misuseOp breaks a rule of the SDK, chosen by its config.
type misuseOp struct {
	mode string
	v    *sdk.ValueState[int64]
}

func (o *misuseOp) Open(ctx *sdk.Context) error {
	var cfg struct {
		Mode string `json:"mode"`
	}
	if err := ctx.ConfigJSON(&cfg); err != nil {
		return err
	}
	o.mode = cfg.Mode
	switch o.mode {
	case "emit-in-open":
		ctx.Emit([]byte("k"), []byte("v"))
	case "state-without-key":
		v, err := sdk.NewValueState(ctx, "v", codec.Int64)
		if err != nil {
			return err
		}
		o.v = v
	case "open-error":
		return errors.New("cannot open")
	case "open-panic":
		panic("open panic")
	case "empty-state-name":
		_, err := sdk.NewValueState(ctx, "", codec.Int64)
		return err
	}
	return nil
}

func (o *misuseOp) Process(ctx *sdk.Context, r sdk.Record) error {
	switch o.mode {
	case "state-in-process":
		_, err := sdk.NewValueState(ctx, "late", codec.Int64)
		return err
	case "state-without-key":
		return nil // uses it in OnEndOfInput
	case "negative-reserve":
		ctx.EmitReserve(nil, -1)
	}
	return nil
}

func (o *misuseOp) OnEndOfInput(ctx *sdk.Context, input int) error {
	if o.v != nil {
		_, _, err := o.v.Get()
		return err
	}
	return ctx.RegisterEventTimeTimer(1)
}

// plainOp is not keyed.
type plainOp struct{}

func (o *plainOp) Open(ctx *sdk.Context) error {
	if string(ctx.Config()) == `"state"` {
		_, err := sdk.NewMapState(ctx, "m", codec.String, codec.String)
		return err
	}
	return nil
}

func (o *plainOp) Process(ctx *sdk.Context, r sdk.Record) error {
	if string(r.Value) == "timer" {
		return ctx.RegisterProcessingTimeTimer(5)
	}
	ctx.Emit(r.Key, r.Value)
	return nil
}

func init() {
	sdk.Export("cmd", func() sdk.Operator { return &cmdOp{} }, sdk.Keyed())
	sdk.Export("misuse", func() sdk.Operator { return &misuseOp{} }, sdk.Keyed())
	sdk.Export("plain", func() sdk.Operator { return &plainOp{} })
	sdk.Export("nil-factory-result", func() sdk.Operator { return nil })
	sdk.Export("factory-panic", func() sdk.Operator { panic("factory panic") })
}

func newHarness(t testing.TB, op string, opts sdktest.Options) *sdktest.Harness {
	t.Helper()
	h, err := sdktest.New(op, opts)
	if err != nil {
		t.Fatalf("sdktest.New(%q): %v", op, err)
	}
	return h
}

// step is one line of a test script: a record on key with value at ts.
type step struct {
	key, value string
	ts         int64
}

func run(t *testing.T, h *sdktest.Harness, steps ...step) []sdktest.Output {
	t.Helper()
	for _, s := range steps {
		if err := h.Record(s.key, s.value, s.ts); err != nil {
			t.Fatalf("record %q=%q: %v", s.key, s.value, err)
		}
	}
	return h.TakeOutput()
}

func outputs(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

func expect(t *testing.T, got []sdktest.Output, want string) {
	t.Helper()
	if g := sdktest.Format(got); g != want {
		t.Errorf("output:\n%s\nwant:\n%s", g, want)
	}
}

func TestOperatorsTable(t *testing.T) {
	ops := sdk.NewNative(nil, nil, nil).Operators()
	flags := map[string]uint32{}
	for _, o := range ops {
		flags[o.Name] = o.Flags
	}
	if flags["cmd"] != abi.FlagKeyed || flags["plain"] != 0 {
		t.Errorf("flags = %v", flags)
	}
}

func TestExportRejects(t *testing.T) {
	cases := map[string]func(){
		"empty name": func() { sdk.Export("", func() sdk.Operator { return &plainOp{} }) },
		"duplicate":  func() { sdk.Export("cmd", func() sdk.Operator { return &plainOp{} }) },
		"nil":        func() { sdk.Export("nil", nil) },
		"not utf-8":  func() { sdk.Export("\xff", func() sdk.Operator { return &plainOp{} }) },
	}
	for name, fn := range cases {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: Export did not panic", name)
				}
			}()
			fn()
		}()
	}
}

func TestDispatch(t *testing.T) {
	h := newHarness(t, "cmd", sdktest.Options{Inputs: 2, NodeID: "n1"})
	var b abi.Encoder
	b.Record(0, []byte("k1"), []byte("get"), 100)
	b.Timer(abi.EventTime, []byte("k2"), 50)
	b.Timer(abi.ProcessingTime, []byte("k3"), 60)
	b.Barrier(7, 1, 0)
	b.Idle(true)
	b.Watermark(70)
	b.EndOfInput()
	h.Timers.SetWatermark(70) // the host reports W during the call that delivers it
	if err := h.Batch(1, b.B); err != nil {
		t.Fatal(err)
	}
	expect(t, h.TakeOutput(), outputs(
		`main "k1"="get 0 false" @100`,
		`main "k2"="fired event-time 50" @50`,
		`main "k3"="fired processing-time 60" @none`,
		`main ""="wm 70 70" @none`,
		`main ""="eoi 1" @none`,
	))
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	logs := fmt.Sprint(h.Logs())
	if logs != "[{1 open cmd n1 0/1} {1 close}]" {
		t.Errorf("logs = %s", logs)
	}
}

func TestRecordInputAndTimestamps(t *testing.T) {
	h := newHarness(t, "cmd", sdktest.Options{Inputs: 2})
	if err := h.RecordOn(1, "k", "at 5", abi.NoTimestamp); err != nil {
		t.Fatal(err)
	}
	if err := h.Record("k", "late", 3); err != nil {
		t.Fatal(err)
	}
	if err := h.Record("k", "reserve abc", 4); err != nil {
		t.Fatal(err)
	}
	if err := h.ProcessingTime(42); err != nil {
		t.Fatal(err)
	}
	if err := h.Watermark(9); err != nil {
		t.Fatal(err)
	}
	if err := h.Record("k", "now", 11); err != nil {
		t.Fatal(err)
	}
	expect(t, h.TakeOutput(), outputs(
		`main "k"="at" @5`,
		`late "k"="late" @3`,
		`main "k"="abc" @4`,
		`main ""="wm 9 9" @none`,
		`main "k"="now 42 wm 9" @11`,
	))
}

func TestValueState(t *testing.T) {
	h := newHarness(t, "cmd", sdktest.Options{})
	got := run(t, h,
		step{"a", "get", 1},
		step{"a", "exists", 1},
		step{"a", "set 5", 1},
		step{"b", "set -7", 1},
		step{"a", "get", 2},
		step{"a", "exists", 1},
		step{"b", "get", 3},
		step{"a", "clear", 4},
		step{"a", "get", 5},
		step{"b", "get", 6},
	)
	expect(t, got, outputs(
		`main "a"="get 0 false" @1`,
		`main "a"="exists false" @1`,
		`main "a"="get 5 true" @2`,
		`main "a"="exists true" @1`,
		`main "b"="get -7 true" @3`,
		`main "a"="get 0 false" @5`,
		`main "b"="get -7 true" @6`,
	))
}

func TestMapState(t *testing.T) {
	h := newHarness(t, "cmd", sdktest.Options{})
	got := run(t, h,
		step{"a", "put 10 ten", 1},
		step{"a", "put -3 minus-three", 1},
		step{"a", "put 2 two", 1},
		step{"b", "put 1 other", 1},
		step{"a", "put 2 TWO", 1},
		step{"a", "range", 1},
		step{"a", "mget 2", 1},
		step{"a", "mget 3", 1},
		step{"a", "contains 10", 1},
		step{"a", "contains 11", 1},
		step{"a", "del 10", 1},
		step{"a", "range", 1},
		step{"a", "rangestop", 1},
		step{"a", "rangedel", 1},
		step{"a", "range", 1},
		step{"b", "range", 1},
		step{"b", "mclear", 1},
		step{"b", "range", 1},
	)
	// Numeric order, negative keys first: the Int64 codec preserves order.
	expect(t, got, outputs(
		`main "a"="range -3=minus-three,2=TWO,10=ten," @1`,
		`main "a"="mget \"TWO\" true" @1`,
		`main "a"="mget \"\" false" @1`,
		`main "a"="contains true" @1`,
		`main "a"="contains false" @1`,
		`main "a"="range -3=minus-three,2=TWO," @1`,
		`main "a"="stopped after 1" @1`,
		`main "a"="range " @1`,
		`main "b"="range 1=other," @1`,
		`main "b"="range " @1`,
	))
	if d := h.State.Dump(); len(d) != 0 {
		t.Errorf("state left: %v", d)
	}
}

func TestListState(t *testing.T) {
	h := newHarness(t, "cmd", sdktest.Options{})
	got := run(t, h,
		step{"a", "list", 1},
		step{"a", "append x", 1},
		step{"a", "append y", 1},
		step{"b", "append z", 1},
		step{"a", "append x", 1},
		step{"a", "list", 1},
		step{"b", "list", 1},
		step{"a", "update p q", 1},
		step{"a", "list", 1},
		step{"a", "lclear", 1},
		step{"a", "list", 1},
	)
	expect(t, got, outputs(
		`main "a"="list " @1`,
		`main "a"="list x,y,x" @1`,
		`main "b"="list z" @1`,
		`main "a"="list p,q" @1`,
		`main "a"="list " @1`,
	))
}

// countingState counts host calls and can fail them.
type countingState struct {
	*sdktest.State
	gets, scans int
	failPut     error
}

func (c *countingState) Get(id int32, key, sub []byte) ([]byte, bool, error) {
	c.gets++
	return c.State.Get(id, key, sub)
}

func (c *countingState) Scan(id int32, key []byte, fn func(sub, value []byte) error) error {
	c.scans++
	return c.State.Scan(id, key, fn)
}

func (c *countingState) Put(id int32, key, sub, value []byte) error {
	if c.failPut != nil {
		return c.failPut
	}
	return c.State.Put(id, key, sub, value)
}

func openNative(t testing.TB, st sdk.NativeState, op string, config string) *sdk.Native {
	t.Helper()
	n := sdk.NewNative(st, sdktest.NewTimers(), nil)
	if err := n.Open(abi.OpenInfo{Operator: op, Config: []byte(config), Parallelism: 1, MaxParallelism: 128, Inputs: 1}); err != nil {
		t.Fatalf("open %s: %v", op, err)
	}
	return n
}

func process(t testing.TB, n *sdk.Native, key, value string) []string {
	t.Helper()
	var b abi.Encoder
	b.Record(0, []byte(key), []byte(value), 1)
	out, err := n.Process(0, b.B)
	if err != nil {
		t.Fatalf("process %q: %v", value, err)
	}
	var vals []string
	d := abi.NewDecoder(out)
	var ev abi.Event
	for d.More() {
		if err := d.Next(&ev); err != nil {
			t.Fatal(err)
		}
		vals = append(vals, string(ev.Value))
	}
	return vals
}

func TestTwoPhaseGet(t *testing.T) {
	st := &countingState{State: sdktest.NewState()}
	n := openNative(t, st, "cmd", "")
	// The SDK's get buffer starts at 1 KiB: a small value takes one host
	// call, a bigger one two (length first, then the copy), and the grown
	// buffer is kept so that the next big read takes one.
	cases := []struct {
		size, calls int
	}{{10, 1}, {1024, 1}, {1025, 2}, {1025, 1}, {100 << 10, 2}, {2 << 20, 2}, {2 << 20, 2}, {50, 1}}
	for _, c := range cases {
		process(t, n, "k", fmt.Sprintf("blob %d", c.size))
		st.gets = 0
		got := process(t, n, "k", "getblob")
		if want := fmt.Sprintf("blob %d true true", c.size); len(got) != 1 || got[0] != want {
			t.Errorf("size %d: got %q, want %q", c.size, got, want)
		}
		if st.gets != c.calls {
			t.Errorf("size %d: %d host gets, want %d", c.size, st.gets, c.calls)
		}
	}
}

func TestTwoPhaseScan(t *testing.T) {
	st := &countingState{State: sdktest.NewState()}
	n := openNative(t, st, "cmd", "")
	long := strings.Repeat("v", 1000)
	var wantOut strings.Builder
	wantOut.WriteString("range ")
	for i := range 10 { // 10 entries of ~1 KiB: more than the 4 KiB scan buffer
		process(t, n, "k", fmt.Sprintf("put %d %s", i, long))
		fmt.Fprintf(&wantOut, "%d=%s,", i, long)
	}
	// The first scan learns the size (two calls); the grown buffer is kept,
	// so the next scan takes one.
	for round, want := range []int{2, 1} {
		st.scans = 0
		got := process(t, n, "k", "range")
		if len(got) != 1 || got[0] != wantOut.String() {
			t.Fatalf("round %d: range gave %.60q...", round, got)
		}
		if st.scans != want {
			t.Errorf("round %d: %d host scans, want %d", round, st.scans, want)
		}
	}
}

func TestTimers(t *testing.T) {
	h := newHarness(t, "cmd", sdktest.Options{})
	got := run(t, h,
		step{"b", "timer 20", 1},
		step{"a", "timer 20", 1},
		step{"a", "timer 20", 1}, // a set: fires once
		step{"a", "timer 10", 1},
		step{"a", "timer 30", 1},
		step{"a", "untimer 30", 1},
		step{"a", "untimer 99", 1}, // absent: no error
		step{"c", "ptimer 5", 1},
		step{"c", "ptimer 7", 1},
		step{"c", "unptimer 7", 1},
	)
	expect(t, got, "")
	if err := h.Watermark(15); err != nil {
		t.Fatal(err)
	}
	if err := h.Watermark(40); err != nil {
		t.Fatal(err)
	}
	if err := h.ProcessingTime(100); err != nil {
		t.Fatal(err)
	}
	expect(t, h.TakeOutput(), outputs(
		`main "a"="fired event-time 10" @10`,
		`main ""="wm 15 15" @none`,
		`main "a"="fired event-time 20" @20`,
		`main "b"="fired event-time 20" @20`,
		`main ""="wm 40 40" @none`,
		`main "c"="fired processing-time 5" @none`,
	))
	if p := h.Timers.Pending(abi.EventTime); len(p) != 0 {
		t.Errorf("pending event-time timers: %v", p)
	}
}

func callError(t *testing.T, err error, status abi.Status) *sdk.CallError {
	t.Helper()
	var ce *sdk.CallError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *sdk.CallError", err, err)
	}
	if ce.Status != status {
		t.Fatalf("status %d, want %d: %v", ce.Status, status, err)
	}
	return ce
}

func TestOperatorErrorsAndPanics(t *testing.T) {
	h := newHarness(t, "cmd", sdktest.Options{})
	ce := callError(t, h.Record("k", "error disk on fire", 1), abi.StatusError)
	if ce.Message != "disk on fire" || ce.Call != "process" {
		t.Errorf("error = %+v", ce)
	}
	if !strings.Contains(ce.Error(), "operator error: disk on fire") {
		t.Errorf("Error() = %q", ce.Error())
	}

	ce = callError(t, h.Record("k", "panic boom", 1), abi.StatusPanic)
	if !strings.HasPrefix(ce.Message, "boom\n") || !strings.Contains(ce.Message, "sdk_test.(*cmdOp).Process") {
		t.Errorf("panic message lacks the value or the operator frame:\n%s", ce.Message)
	}
	// A runtime error is a panic like any other.
	ce = callError(t, h.Record("k", "nilmap", 1), abi.StatusPanic)
	if !strings.Contains(ce.Message, "assignment to entry in nil map") {
		t.Errorf("nil map panic message: %s", ce.Message)
	}
	// The instance still works after a failed call (the runtime decides
	// what to do with it).
	if err := h.Record("k", "get", 2); err != nil {
		t.Fatal(err)
	}
	// Output of a failed call is dropped.
	h.TakeOutput()
	err := h.Batch(0, append(abi.AppendRecord(nil, 0, []byte("k"), []byte("late"), 1), abi.AppendRecord(nil, 0, []byte("k"), []byte("error x"), 1)...))
	callError(t, err, abi.StatusError)
	if out := h.TakeOutput(); len(out) != 0 {
		t.Errorf("failed call produced output %v", out)
	}
}

func TestOpenFailures(t *testing.T) {
	cases := []struct {
		op, config string
		status     abi.Status
		message    string
	}{
		{"nope", "", abi.StatusUnknownOperator, `module exports no operator "nope"`},
		{"misuse", `{"mode":"open-error"}`, abi.StatusError, "cannot open"},
		{"misuse", `{"mode":"open-panic"}`, abi.StatusPanic, "open panic"},
		{"misuse", `{"mode":"emit-in-open"}`, abi.StatusError, "records can only be emitted while processing events"},
		{"misuse", `{"mode":"empty-state-name"}`, abi.StatusError, "empty name"},
		{"misuse", `{"mode":1}`, abi.StatusError, `config of node "node"`},
		{"misuse", `{"mood":"x"}`, abi.StatusError, `unknown field "mood"`},
		{"plain", `"state"`, abi.StatusError, `operator "plain" is not keyed`},
		{"nil-factory-result", "", abi.StatusError, "returned nil"},
		{"factory-panic", "", abi.StatusPanic, "factory panic"},
	}
	for _, c := range cases {
		_, err := sdktest.New(c.op, sdktest.Options{Config: c.config})
		ce := callError(t, err, c.status)
		if !strings.Contains(ce.Message, c.message) {
			t.Errorf("%s %s: message %q does not contain %q", c.op, c.config, ce.Message, c.message)
		}
	}
}

func TestMisuse(t *testing.T) {
	cases := []struct {
		mode    string
		eoi     bool
		wantErr error
		message string
	}{
		{"state-in-process", false, abi.ErrNotAllowed, "state is declared in Open"},
		{"state-without-key", true, sdk.ErrNoKey, "no current key"},
		{"timer-without-key", true, sdk.ErrNoKey, "register timer"},
		{"negative-reserve", false, nil, "negative value length"},
	}
	for _, c := range cases {
		h := newHarness(t, "misuse", sdktest.Options{Config: fmt.Sprintf(`{"mode":%q}`, c.mode)})
		err := h.Record("k", "x", 1)
		if c.eoi {
			if err != nil {
				t.Fatalf("%s: %v", c.mode, err)
			}
			err = h.EndOfInput(0)
		}
		ce := callError(t, err, abi.StatusError)
		if !strings.Contains(ce.Message, c.message) {
			t.Errorf("%s: message %q does not contain %q", c.mode, ce.Message, c.message)
		}
	}
}

func TestNotKeyedTimers(t *testing.T) {
	h := newHarness(t, "plain", sdktest.Options{})
	ce := callError(t, h.Record("k", "timer", 1), abi.StatusError)
	if !strings.Contains(ce.Message, "not keyed") {
		t.Errorf("message %q", ce.Message)
	}
}

func TestCallOrder(t *testing.T) {
	n := sdk.NewNative(nil, nil, nil)
	if _, err := n.Process(0, nil); err == nil || !strings.Contains(err.Error(), "before open") {
		t.Errorf("process before open: %v", err)
	}
	if err := n.Open(abi.OpenInfo{Operator: "plain"}); err != nil {
		t.Fatal(err)
	}
	if err := n.Open(abi.OpenInfo{Operator: "plain"}); err == nil {
		t.Error("second open succeeded")
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Process(0, nil); err == nil || !strings.Contains(err.Error(), "after Close") {
		t.Errorf("process after close: %v", err)
	}
	if err := n.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}

func TestBadInput(t *testing.T) {
	h := newHarness(t, "plain", sdktest.Options{})
	for _, batch := range [][]byte{{9}, {byte(abi.KindRecord), 0, 1}, {byte(abi.KindTimer), 5}} {
		ce := callError(t, h.Batch(0, batch), abi.StatusBadInput)
		if !strings.Contains(ce.Message, "corrupt batch") {
			t.Errorf("%x: message %q", batch, ce.Message)
		}
	}
}

func TestStateErrors(t *testing.T) {
	// A key of another subtask: the host says KeyNotLocal, the operator's
	// error wraps it.
	h := newHarness(t, "cmd", sdktest.Options{Subtask: 0, Parallelism: 2})
	var foreign string
	for i := 0; ; i++ {
		k := fmt.Sprint("key", i)
		if abi.OperatorIndexForKeyGroup(abi.KeyGroup([]byte(k), 128), 2, 128) == 1 {
			foreign = k
			break
		}
	}
	ce := callError(t, h.Record(foreign, "set 1", 1), abi.StatusError)
	if !strings.Contains(ce.Message, abi.ErrKeyNotLocal.Error()) || !strings.Contains(ce.Message, `value state "val"`) {
		t.Errorf("message %q", ce.Message)
	}

	// A failure of the host itself: Native returns it, wrapped.
	disk := errors.New("disk full")
	st := &countingState{State: sdktest.NewState()}
	n := openNative(t, st, "cmd", "")
	st.failPut = disk
	var b abi.Encoder
	b.Record(0, []byte("k"), []byte("set 1"), 1)
	_, err := n.Process(0, b.B)
	if !errors.Is(err, disk) {
		t.Errorf("host failure: err = %v, want it to wrap %v", err, disk)
	}
	// An Errno from the host reaches the operator as that code.
	st.failPut = fmt.Errorf("quota: %w", abi.ErrStateLimit)
	_, err = n.Process(0, b.B)
	ce = callError(t, err, abi.StatusError)
	if !strings.Contains(ce.Message, abi.ErrStateLimit.Error()) {
		t.Errorf("message %q", ce.Message)
	}
}

// counter is the smallest keyed operator with state: the hot path of
// Process, ValueState and EmitReserve.
type counter struct{ n *sdk.ValueState[int64] }

func (c *counter) Open(ctx *sdk.Context) (err error) {
	c.n, err = sdk.NewValueState(ctx, "n", codec.Int64)
	return err
}

func (c *counter) Process(ctx *sdk.Context, r sdk.Record) error {
	n, _, err := c.n.Get()
	if err != nil {
		return err
	}
	n++
	if err := c.n.Set(n); err != nil {
		return err
	}
	v := ctx.EmitReserve(r.Key, 8)
	for i := range v {
		v[i] = byte(n >> (56 - 8*i))
	}
	return nil
}

func init() {
	sdk.Export("counter", func() sdk.Operator { return &counter{} }, sdk.Keyed())
}

func TestNoAllocationsOnHotPath(t *testing.T) {
	var b abi.Encoder
	for i := range 64 {
		b.Record(0, fmt.Appendf(nil, "a-longer-key-%d", i), []byte("0123456789"), int64(i))
	}
	for _, op := range []string{"plain", "counter"} {
		n := openNative(t, sdktest.NewState(), op, "")
		if _, err := n.Process(0, b.B); err != nil { // first sight of the keys allocates in the fake store
			t.Fatal(err)
		}
		if allocs := testing.AllocsPerRun(100, func() {
			if _, err := n.Process(0, b.B); err != nil {
				t.Fatal(err)
			}
		}); allocs != 0 {
			t.Errorf("%s: %v allocations per batch of 64 records, want 0", op, allocs)
		}
	}
}

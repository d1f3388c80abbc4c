package window_test

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/sdk"
	"github.com/weirstream/weir/sdk/codec"
	"github.com/weirstream/weir/sdk/sdktest"
	"github.com/weirstream/weir/sdk/window"
)

// collect keeps every value of a window, so that golden outputs show
// exactly which records each firing saw.
type collect struct{}

func (collect) CreateAccumulator() []int64 { return nil }

func (collect) Add(acc []int64, r sdk.Record) ([]int64, error) {
	v, err := strconv.ParseInt(string(r.Value), 10, 64)
	if err != nil {
		return nil, err
	}
	return append(acc, v), nil
}

func (collect) Merge(a, b []int64) []int64 { return append(a, b...) }

func (collect) Result(acc []int64) string {
	slices.Sort(acc)
	var b strings.Builder
	for _, v := range acc {
		fmt.Fprintf(&b, " %d", v)
	}
	return b.String()
}

func emit(ctx *sdk.Context, w window.Window, result string) error {
	ctx.Emit(ctx.CurrentKey(), []byte(w.String()+result))
	return nil
}

const ms = time.Millisecond

func export(name string, a window.Assigner, opts ...window.Option) {
	sdk.Export(name, func() sdk.Operator {
		return window.New(a, collect{}, codec.SliceOf(codec.Int64), emit, opts...)
	}, sdk.Keyed())
}

func init() {
	export("tumbling", window.Tumbling(10*ms))
	export("tumbling-late5", window.Tumbling(10*ms), window.AllowedLateness(5*ms))
	export("tumbling-offset3", window.Tumbling(10*ms).WithOffset(3*ms))
	export("sliding", window.Sliding(10*ms, 5*ms))
	export("sliding-late5", window.Sliding(10*ms, 5*ms), window.AllowedLateness(5*ms))
	export("session", window.Session(5*ms))
	export("session-late10", window.Session(5*ms), window.AllowedLateness(10*ms))
	export("bad-size", window.Tumbling(0))
	export("bad-slide", window.Sliding(10*ms, 0))
	export("bad-gap", window.Session(-ms))
	export("bad-offset", window.Tumbling(10*ms).WithOffset(10*ms))
	export("bad-session-offset", window.Session(10*ms).WithOffset(ms))
	export("bad-micros", window.Tumbling(1500*time.Microsecond))
	export("bad-lateness", window.Tumbling(10*ms), window.AllowedLateness(-ms))
	export("bad-name", window.Tumbling(10*ms), window.StateName(""))
	export("bad-assigner", window.Assigner{})
	sdk.Export("not-keyed", func() sdk.Operator {
		return window.New(window.Tumbling(10*ms), collect{}, codec.SliceOf(codec.Int64), emit)
	})
	sdk.Export("drop-late", func() sdk.Operator {
		return window.New(window.Tumbling(10*ms), collect{}, codec.SliceOf(codec.Int64), emit,
			window.OnLate(func(ctx *sdk.Context, r sdk.Record) error {
				ctx.Log(sdk.LevelWarn, "dropped "+string(r.Value))
				return nil
			}))
	}, sdk.Keyed())
}

// The scripts below are run line by line:
//
//	rec KEY VALUE TS   a record
//	wm TS              advance the watermark ("wm max": MaxWatermark)
//	timers K@T ...     the pending event-time timers must be exactly these
//
// and every emitted record must match the next line of want, in order.
// After the script, a final Watermark(MaxWatermark) must leave neither state
// nor timers.
var cases = []struct {
	name, op string
	script   string
	want     string
}{{
	name: "tumbling: out of order within the bound, fires once, too late goes to the side output",
	op:   "tumbling",
	script: `
		rec a 1 3
		rec a 2 7
		rec b 10 5
		rec a 3 12
		rec a 4 1
		timers a@9 b@9 a@19
		wm 5
		wm 9
		wm 9
		rec a 5 9
		rec a 6 10
		wm 19
		wm max`,
	want: `
		main "a"="[0,10) 1 2 4" @9
		main "b"="[0,10) 10" @9
		late "a"="5" @9
		main "a"="[10,20) 3 6" @19`,
}, {
	name: "tumbling: allowed lateness updates and re-fires, cleanup at end-1+lateness",
	op:   "tumbling-late5",
	script: `
		rec a 1 3
		timers a@9 a@14
		wm 9
		rec a 2 8
		wm 12
		rec a 3 5
		rec b 7 2
		timers a@14 b@14
		wm 14
		rec a 4 6
		rec a 5 15
		wm 30`,
	want: `
		main "a"="[0,10) 1" @9
		main "a"="[0,10) 1 2" @9
		main "a"="[0,10) 1 2 3" @9
		main "b"="[0,10) 7" @9
		late "a"="4" @6
		main "a"="[10,20) 5" @19`,
}, {
	name: "tumbling with offset and negative timestamps",
	op:   "tumbling-offset3",
	script: `
		rec a 1 2
		rec a 2 3
		rec a 3 12
		rec a 4 13
		rec a 5 -8`,
	want: `
		main "a"="[-17,-7) 5" @-8
		main "a"="[-7,3) 1" @2
		main "a"="[3,13) 2 3" @12
		main "a"="[13,23) 4" @22`,
}, {
	name: "sliding: overlapping windows, a record late for some windows only",
	op:   "sliding",
	script: `
		rec a 1 7
		rec a 2 12
		rec a 3 3
		wm 9
		wm 14
		rec a 4 14
		rec a 5 9`,
	want: `
		main "a"="[-5,5) 3" @4
		main "a"="[0,10) 1 3" @9
		main "a"="[5,15) 1 2" @14
		late "a"="5" @9
		main "a"="[10,20) 2 4" @19`,
}, {
	name: "sliding with allowed lateness",
	op:   "sliding-late5",
	script: `
		rec a 1 7
		wm 10
		rec a 2 8
		wm 14
		timers a@19`,
	want: `
		main "a"="[0,10) 1" @9
		main "a"="[0,10) 1 2" @9
		main "a"="[5,15) 1 2" @14`,
}, {
	name: "session: merging, bridging two sessions, touching windows merge, stale timers deleted",
	op:   "session",
	script: `
		rec a 1 1
		rec a 2 4
		timers a@8
		rec a 3 20
		rec a 4 12
		timers a@8 a@16 a@24
		rec a 5 16
		timers a@8 a@24
		rec b 9 3
		wm 8
		rec a 6 2
		rec a 7 6
		timers a@10 a@24
		rec a 8 11
		timers a@24
		wm 30`,
	want: `
		main "b"="[3,8) 9" @7
		main "a"="[1,9) 1 2" @8
		late "a"="6" @2
		main "a"="[6,25) 3 4 5 7 8" @24`,
}, {
	name: "session with allowed lateness: late extension, late new session, merge into a fired session",
	op:   "session-late10",
	script: `
		rec a 1 1
		timers a@5 a@15
		wm 6
		rec a 2 3
		timers a@7 a@17
		wm 7
		rec a 3 2
		wm 17
		rec a 4 5
		rec a 5 0
		timers a@19
		wm 19
		rec a 6 4`,
	want: `
		main "a"="[1,6) 1" @5
		main "a"="[1,8) 1 2" @7
		main "a"="[1,8) 1 2 3" @7
		main "a"="[5,10) 4" @9
		main "a"="[0,10) 4 5" @9
		late "a"="6" @4`,
}, {
	name: "records of one window fire once, however many watermarks follow",
	op:   "tumbling",
	script: `
		rec a 1 1
		rec a 2 2
		rec a 3 3
		wm 5
		wm 9
		wm 15
		wm 25`,
	want: `
		main "a"="[0,10) 1 2 3" @9`,
}, {
	name: "OnLate replaces the side output",
	op:   "drop-late",
	script: `
		wm 20
		rec a 1 3`,
	want: ``,
}}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func TestWindows(t *testing.T) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, err := sdktest.New(c.op, sdktest.Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range lines(c.script) {
				f := strings.Fields(l)
				switch f[0] {
				case "rec":
					ts, _ := strconv.ParseInt(f[3], 10, 64)
					err = h.Record(f[1], f[2], ts)
				case "wm":
					wm := int64(math.MaxInt64)
					if f[1] != "max" {
						wm, _ = strconv.ParseInt(f[1], 10, 64)
					}
					err = h.Watermark(wm)
				case "timers":
					var got []string
					for _, p := range h.Timers.Pending(abi.EventTime) {
						got = append(got, fmt.Sprintf("%s@%d", p.Key, p.Timestamp))
					}
					if strings.Join(got, " ") != strings.Join(f[1:], " ") {
						t.Errorf("after %d outputs: pending timers %v, want %v", len(h.Output()), got, f[1:])
					}
				default:
					t.Fatalf("bad script line %q", l)
				}
				if err != nil {
					t.Fatalf("%s: %v", l, err)
				}
			}
			if err := h.Watermark(math.MaxInt64); err != nil {
				t.Fatal(err)
			}
			got := lines(sdktest.Format(h.TakeOutput()))
			want := lines(c.want)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("output:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if d := h.State.Dump(); len(d) != 0 {
				t.Errorf("state left after the final watermark: %v", d)
			}
			if p := h.Timers.Pending(abi.EventTime); len(p) != 0 {
				t.Errorf("timers left after the final watermark: %v", p)
			}
		})
	}
}

func TestOnLateLogs(t *testing.T) {
	h, err := sdktest.New("drop-late", sdktest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Watermark(20); err != nil {
		t.Fatal(err)
	}
	if err := h.Record("a", "7", 3); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(h.Logs()) != "[{2 dropped 7}]" {
		t.Errorf("logs %v", h.Logs())
	}
}

func TestConfigErrors(t *testing.T) {
	cases := map[string]string{
		"bad-size":           "tumbling size 0s must be positive",
		"bad-slide":          "must be positive",
		"bad-gap":            "session gap -1ms must be positive",
		"bad-offset":         "offset 10ms must be smaller than the slide 10ms",
		"bad-session-offset": "session windows have no offset",
		"bad-micros":         "not a whole number of milliseconds",
		"bad-lateness":       "allowed lateness -1ms is negative",
		"bad-name":           "empty state name",
		"bad-assigner":       "no assigner",
		"not-keyed":          "must be exported with sdk.Keyed()",
	}
	for op, msg := range cases {
		_, err := sdktest.New(op, sdktest.Options{})
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: error %v, want it to contain %q", op, err, msg)
		}
	}
}

func TestRecordErrors(t *testing.T) {
	h, err := sdktest.New("tumbling", sdktest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		value string
		ts    int64
		msg   string
	}{
		{"1", abi.NoTimestamp, "record without timestamp"},
		{"1", math.MaxInt64 - 3, "out of range"},
		{"x", 5, `parsing "x"`},
	} {
		err := h.Record("a", c.value, c.ts)
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("record %q @%d: error %v, want %q", c.value, c.ts, err, c.msg)
		}
	}
}

func TestWindowMethods(t *testing.T) {
	w := window.Window{Start: 10, End: 20}
	if w.MaxTimestamp() != 19 || !w.Contains(10) || w.Contains(20) || w.String() != "[10,20)" {
		t.Errorf("window methods of %v", w)
	}
	if !w.Intersects(window.Window{Start: 20, End: 25}) || w.Intersects(window.Window{Start: 21, End: 25}) {
		t.Error("Intersects: touching windows intersect, disjoint ones do not")
	}
	if got := w.Cover(window.Window{Start: 5, End: 12}); got != (window.Window{Start: 5, End: 20}) {
		t.Errorf("Cover = %v", got)
	}
	for a, want := range map[window.Assigner]string{
		window.Tumbling(time.Second):                             "tumbling(1000ms, offset 0ms)",
		window.Sliding(time.Minute, time.Second).WithOffset(-ms): "sliding(60000ms every 1000ms, offset -1ms)",
		window.Session(time.Second):                              "session(gap 1000ms)",
	} {
		if a.String() != want {
			t.Errorf("String() = %q, want %q", a.String(), want)
		}
	}
}

// BenchmarkTumblingProcess measures adding records to tumbling windows
// (state get and put of the accumulator per record, over the in-memory
// store): the hot path of a window operator.
func BenchmarkTumblingProcess(b *testing.B) {
	const records = 1024
	var e abi.Encoder
	for i := range records {
		e.Record(0, fmt.Appendf(nil, "key-%d", i%100), []byte("7"), int64(i))
	}
	n := sdk.NewNative(sdktest.NewState(), sdktest.NewTimers(), nil)
	if err := n.Open(abi.OpenInfo{Operator: "example-sum", Parallelism: 1, MaxParallelism: 128, Inputs: 1}); err != nil {
		b.Fatal(err)
	}
	if _, err := n.Process(0, e.B); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := n.Process(0, e.B); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*records), "ns/record")
}

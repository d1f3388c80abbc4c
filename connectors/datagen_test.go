package connectors

import (
	"context"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/runtime"
	"github.com/weirstream/weir/runtime/clock"
)

func TestDatagenConfigErrors(t *testing.T) {
	c := registry(t, RegisterOptions{})
	for _, tc := range []struct{ config, want string }{
		{`{"count": -1}`, `config.count: must be >= 0`},
		{`{"count": "x"}`, `config.count: cannot use`},
		{`{"rate": -2}`, `config.rate: must be a finite number >= 0`},
		{`{"speed": 1}`, `config.speed: unknown field`},
		{`{"valueSize": 10, "value": {"kind": "uuid"}}`, `config.valueSize: cannot be combined with config.value`},
		{`{"valueSize": -1}`, `config.valueSize: must be between 0 and`},
		{`{"valueSize": 67108865}`, `config.valueSize: must be between 0 and`},
		{`{"key": {"kind": "gaussian"}}`, `config.key.kind: must be one of sequence, random, string, constant, uuid, oneOf, got "gaussian"`},
		{`{"key": {}}`, `config.key.kind: must be one of`},
		{`{"key": {"kind": "sequence", "length": 3}}`, `config.key.length: not used by kind sequence`},
		{`{"value": {"kind": "uuid", "values": ["a"]}}`, `config.value.values: not used by kind uuid`},
		{`{"value": {"kind": "sequence", "start": 5, "end": 4}}`, `config.value.end: must be >= start (5), got 4`},
		{`{"value": {"kind": "random", "min": 5, "max": 4}}`, `config.value.max: must be >= min (5), got 4`},
		{`{"value": {"kind": "random", "max": -1}}`, `config.value.max: must be >= min (0), got -1`},
		{`{"value": {"kind": "string", "length": -1}}`, `config.value.length: must be between 0 and`},
		{`{"value": {"kind": "string", "charset": ""}}`, `config.value.charset: must not be empty`},
		{`{"value": {"kind": "string", "charset": "aba"}}`, `config.value.charset: character 'a' appears twice`},
		{`{"value": {"kind": "constant"}}`, `config.value.value: required for kind constant`},
		{`{"value": {"kind": "oneOf", "values": []}}`, `config.value.values: required and non-empty`},
		{`{"value": {"kind": "oneOf", "value": "a"}}`, `config.value.value: not used by kind oneOf`},
		{`{"value": {"kind": "random", "min": "a"}}`, `config.value.min: cannot use`},
		{`{"timestamp": "event"}`, `config.timestamp: must be one of none, sequence, processing, got "event"`},
		{`{"timestampStart": 5}`, `config.timestampStart: only used with timestamp "sequence"`},
		{`{"timestamp": "processing", "timestampInterval": "1s"}`, `config.timestampInterval: only used with timestamp "sequence"`},
		{`{"timestamp": "sequence", "timestampInterval": "-1s"}`, `config.timestampInterval: must be >= 0`},
		{`{"timestamp": "sequence", "timestampJitter": "-1s"}`, `config.timestampJitter: must be >= 0`},
		{`{"timestamp": "sequence", "timestampInterval": "soon"}`, `invalid duration "soon"`},
		// Valid configs.
		{``, ``},
		{`null`, ``},
		{`{"count": 10, "rate": 0.5, "seed": -3, "key": {"kind": "random"}, "valueSize": 0}`, ``},
		{`{"timestamp": "sequence", "timestampStart": 1, "timestampInterval": 250, "timestampJitter": "1s"}`, ``},
	} {
		t.Run(tc.config, func(t *testing.T) {
			_, err := c.Sources["datagen"]([]byte(tc.config))
			wantErr(t, err, tc.want)
		})
	}
}

func TestDatagenSequences(t *testing.T) {
	c := registry(t, RegisterOptions{})
	for _, tc := range []struct {
		name   string
		config string
		want   []rec
	}{
		{
			name:   "default value is the index",
			config: `{"count": 3}`,
			want:   []rec{{"", "0", abi.NoTimestamp}, {"", "1", abi.NoTimestamp}, {"", "2", abi.NoTimestamp}},
		},
		{
			name:   "sequence key cycles, constant value, sequence time",
			config: `{"count": 5, "key": {"kind": "sequence", "start": -1, "end": 1}, "value": {"kind": "constant", "value": "v"}, "timestamp": "sequence", "timestampStart": 1000, "timestampInterval": "10ms"}`,
			want:   []rec{{"-1", "v", 1000}, {"0", "v", 1010}, {"1", "v", 1020}, {"-1", "v", 1030}, {"0", "v", 1040}},
		},
		{
			name:   "interval below a millisecond",
			config: `{"count": 6, "value": {"kind": "sequence", "start": 100}, "timestamp": "sequence", "timestampInterval": "400us"}`,
			// idx*0.4 ms truncated: 0, 0.4, 0.8, 1.2, 1.6, 2.0
			want: []rec{{"", "100", 0}, {"", "101", 0}, {"", "102", 0}, {"", "103", 1}, {"", "104", 1}, {"", "105", 2}},
		},
		{
			name:   "interval as milliseconds number, default start",
			config: `{"count": 2, "value": {"kind": "constant", "value": ""}, "timestamp": "sequence", "timestampInterval": 1500}`,
			want:   []rec{{"", "", 0}, {"", "", 1500}},
		},
		{
			name:   "oneOf with a single value",
			config: `{"count": 2, "key": {"kind": "oneOf", "values": ["only"]}, "value": {"kind": "string", "length": 4, "charset": "z"}}`,
			want:   []rec{{"only", "zzzz", abi.NoTimestamp}, {"only", "zzzz", abi.NoTimestamp}},
		},
		{
			name:   "random with min == max",
			config: `{"count": 2, "value": {"kind": "random", "min": 7, "max": 7}}`,
			want:   []rec{{"", "7", abi.NoTimestamp}, {"", "7", abi.NoTimestamp}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := drain(t, newSource(t, c, "datagen", tc.config)(), 0, 1, 2)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestDatagenPollBatchesAndDone(t *testing.T) {
	c := registry(t, RegisterOptions{})
	src := newSource(t, c, "datagen", `{"count": 5}`)()
	ctx := context.Background()
	if err := src.Open(ctx, taskInfo(0, 1, clock.NewFake(time.Unix(0, 0)))); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, want := range []struct {
		n    int
		done bool
	}{{2, false}, {2, false}, {1, true}, {0, true}} {
		var col collector
		done, err := src.Poll(ctx, &col, 2)
		if err != nil || done != want.done || len(col.recs) != want.n {
			t.Fatalf("Poll: %d records, done=%v, err=%v; want %d, done=%v", len(col.recs), done, err, want.n, want.done)
		}
		for _, r := range col.recs {
			got = append(got, r.Value)
		}
	}
	if !slices.Equal(got, []string{"0", "1", "2", "3", "4"}) {
		t.Fatalf("values %v", got)
	}
}

// TestDatagenParallelSplit checks that subtask i of p generates exactly the
// indices i, i+p, ... below count, so the union over subtasks is the
// parallelism-1 output, each record once.
func TestDatagenParallelSplit(t *testing.T) {
	c := registry(t, RegisterOptions{})
	for _, count := range []int{1, 2, 7, 10, 100} {
		for _, p := range []int{1, 2, 3, 4, 13} {
			config := fmt.Sprintf(`{"count": %d, "seed": 42, "key": {"kind": "uuid"}, "value": {"kind": "sequence"}, "timestamp": "sequence", "timestampJitter": "5s"}`, count)
			mk := newSource(t, c, "datagen", config)
			whole := drain(t, mk(), 0, 1, 3)
			if len(whole) != count {
				t.Fatalf("count %d: parallelism 1 generated %d", count, len(whole))
			}
			var union []rec
			for i := 0; i < p; i++ {
				part := drain(t, mk(), i, p, 3)
				for j, r := range part {
					idx := i + j*p
					if r.Value != strconv.Itoa(idx) {
						t.Fatalf("count %d p %d subtask %d: record %d has index %s, want %d", count, p, i, j, r.Value, idx)
					}
					// Same record as at parallelism 1: random fields
					// depend on the index only.
					if r != whole[idx] {
						t.Fatalf("count %d p %d: index %d is %v, at parallelism 1 %v", count, p, idx, r, whole[idx])
					}
				}
				union = append(union, part...)
			}
			if len(union) != count {
				t.Fatalf("count %d p %d: subtasks generated %d records together", count, p, len(union))
			}
		}
	}
}

func TestDatagenDeterminism(t *testing.T) {
	c := registry(t, RegisterOptions{})
	config := func(seed int) string {
		return fmt.Sprintf(`{"count": 50, "seed": %d, "key": {"kind": "random", "min": 0, "max": 1000000}, "value": {"kind": "string", "length": 12}}`, seed)
	}
	a := drain(t, newSource(t, c, "datagen", config(1))(), 0, 1, 7)
	b := drain(t, newSource(t, c, "datagen", config(1))(), 0, 1, 50)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed, different output")
	}
	other := drain(t, newSource(t, c, "datagen", config(2))(), 0, 1, 50)
	same := 0
	for i := range a {
		if a[i] == other[i] {
			same++
		}
	}
	if same > 0 {
		t.Fatalf("seeds 1 and 2 agree on %d of 50 records", same)
	}
	// Key and value draw from separate streams: equal configs differ.
	kv := drain(t, newSource(t, c, "datagen", `{"count": 20, "key": {"kind": "uuid"}, "value": {"kind": "uuid"}}`)(), 0, 1, 20)
	for _, r := range kv {
		if r.Key == r.Value {
			t.Fatalf("key and value uuid equal: %v", r)
		}
	}
}

func TestDatagenRandomFields(t *testing.T) {
	c := registry(t, RegisterOptions{})
	const n = 20000
	t.Run("random int range and coverage", func(t *testing.T) {
		recs := drain(t, newSource(t, c, "datagen", fmt.Sprintf(`{"count": %d, "value": {"kind": "random", "min": -3, "max": 3}}`, n))(), 0, 1, 1000)
		hist := map[int]int{}
		for _, r := range recs {
			v, err := strconv.Atoi(r.Value)
			if err != nil || v < -3 || v > 3 {
				t.Fatalf("value %q outside [-3, 3]", r.Value)
			}
			hist[v]++
		}
		for v := -3; v <= 3; v++ {
			// Expected n/7 ≈ 2857; a fair generator stays far within ±15%.
			if hist[v] < n/7*85/100 || hist[v] > n/7*115/100 {
				t.Fatalf("value %d drawn %d times of %d: %v", v, hist[v], n, hist)
			}
		}
	})
	t.Run("full int64 range", func(t *testing.T) {
		recs := drain(t, newSource(t, c, "datagen", `{"count": 100, "value": {"kind": "random", "min": -9223372036854775808, "max": 9223372036854775807}}`)(), 0, 1, 100)
		neg := 0
		for _, r := range recs {
			v, err := strconv.ParseInt(r.Value, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			if v < 0 {
				neg++
			}
		}
		if neg < 25 || neg > 75 {
			t.Fatalf("%d of 100 negative", neg)
		}
	})
	t.Run("string length and charset", func(t *testing.T) {
		recs := drain(t, newSource(t, c, "datagen", fmt.Sprintf(`{"count": %d, "value": {"kind": "string", "length": 5, "charset": "xyé"}}`, n/10))(), 0, 1, 1000)
		re := regexp.MustCompile(`^[xyé]{5}$`)
		seen := map[rune]int{}
		for _, r := range recs {
			if !re.MatchString(r.Value) {
				t.Fatalf("value %q", r.Value)
			}
			for _, c := range r.Value {
				seen[c]++
			}
		}
		if len(seen) != 3 {
			t.Fatalf("characters drawn: %v", seen)
		}
		def := drain(t, newSource(t, c, "datagen", `{"count": 100, "value": {"kind": "string"}}`)(), 0, 1, 100)
		re = regexp.MustCompile(`^[a-zA-Z0-9]{10}$`)
		for _, r := range def {
			if !re.MatchString(r.Value) {
				t.Fatalf("default string %q", r.Value)
			}
		}
	})
	t.Run("uuid", func(t *testing.T) {
		recs := drain(t, newSource(t, c, "datagen", `{"count": 1000, "key": {"kind": "uuid"}}`)(), 0, 1, 1000)
		re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
		seen := map[string]bool{}
		for _, r := range recs {
			if !re.MatchString(r.Key) {
				t.Fatalf("uuid %q", r.Key)
			}
			if seen[r.Key] {
				t.Fatalf("uuid %q twice", r.Key)
			}
			seen[r.Key] = true
		}
	})
	t.Run("oneOf", func(t *testing.T) {
		recs := drain(t, newSource(t, c, "datagen", `{"count": 1000, "key": {"kind": "oneOf", "values": ["a", "b", "c"]}}`)(), 0, 1, 1000)
		hist := map[string]int{}
		for _, r := range recs {
			hist[r.Key]++
		}
		if len(hist) != 3 || hist["a"] < 250 || hist["b"] < 250 || hist["c"] < 250 {
			t.Fatalf("histogram %v", hist)
		}
	})
}

func TestDatagenFixedSizeValues(t *testing.T) {
	c := registry(t, RegisterOptions{})
	recs := drain(t, newSource(t, c, "datagen", `{"count": 10, "valueSize": 100, "key": {"kind": "sequence"}}`)(), 0, 1, 4)
	re := regexp.MustCompile(`^[a-z]{100}$`)
	for i, r := range recs {
		if !re.MatchString(r.Value) || r.Value != recs[0].Value || r.Key != strconv.Itoa(i) {
			t.Fatalf("record %d: %v", i, r)
		}
	}
	empty := drain(t, newSource(t, c, "datagen", `{"count": 2, "valueSize": 0}`)(), 0, 1, 4)
	if len(empty) != 2 || empty[0].Value != "" {
		t.Fatalf("valueSize 0: %v", empty)
	}
}

func TestDatagenTimestampJitter(t *testing.T) {
	c := registry(t, RegisterOptions{})
	recs := drain(t, newSource(t, c, "datagen", `{"count": 2000, "timestamp": "sequence", "timestampStart": 10000, "timestampInterval": "1s", "timestampJitter": "3s"}`)(), 0, 1, 500)
	late := 0
	for i, r := range recs {
		base := int64(10000 + 1000*i)
		if r.TS > base || r.TS < base-3000 {
			t.Fatalf("record %d: ts %d outside [%d, %d]", i, r.TS, base-3000, base)
		}
		if r.TS < base {
			late++
		}
	}
	if late < 1000 {
		t.Fatalf("only %d of 2000 timestamps jittered", late)
	}
}

func TestDatagenTimestampOverflowSafe(t *testing.T) {
	plan, err := newDatagenPlan([]byte(`{"timestamp": "sequence", "timestampInterval": "1h"}`))
	if err != nil {
		t.Fatal(err)
	}
	// 1e10 records of an hour each: 3.6e16 ms, fine in int64 although
	// idx*interval in nanoseconds (3.6e22) is not.
	if got, want := plan.sequenceTimestamp(1e10), int64(1e10)*3_600_000; got != want {
		t.Fatalf("ts %d, want %d", got, want)
	}
	plan, err = newDatagenPlan([]byte(`{"timestamp": "sequence", "timestampInterval": "1500us"}`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := plan.sequenceTimestamp(1e16), int64(1.5e16); got != want {
		t.Fatalf("ts %d, want %d", got, want)
	}
}

func TestDatagenProcessingTime(t *testing.T) {
	c := registry(t, RegisterOptions{})
	fake := clock.NewFake(time.UnixMilli(1_700_000_000_123))
	src := newSource(t, c, "datagen", `{"timestamp": "processing"}`)()
	ctx := context.Background()
	if err := src.Open(ctx, taskInfo(0, 1, fake)); err != nil {
		t.Fatal(err)
	}
	var col collector
	if _, err := src.Poll(ctx, &col, 3); err != nil {
		t.Fatal(err)
	}
	fake.Advance(5 * time.Millisecond)
	if _, err := src.Poll(ctx, &col, 1); err != nil {
		t.Fatal(err)
	}
	want := []int64{1_700_000_000_123, 1_700_000_000_123, 1_700_000_000_123, 1_700_000_000_128}
	for i, r := range col.recs {
		if r.TS != want[i] {
			t.Fatalf("record %d: ts %d, want %d", i, r.TS, want[i])
		}
	}
}

// waitForClockWaiter blocks until something waits on fake (a Poll blocked
// on the rate limiter), with a deadline.
func waitForClockWaiter(t *testing.T, fake *clock.Fake, n int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		got, changed := fake.Waiters()
		if got >= n {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no Poll blocked on the clock (%d waiters, want %d)", got, n)
		}
	}
}

type pollResult struct {
	n    int
	done bool
	err  error
}

func pollAsync(ctx context.Context, src runtime.Source, max int) <-chan pollResult {
	ch := make(chan pollResult, 1)
	go func() {
		var col collector
		done, err := src.Poll(ctx, &col, max)
		ch <- pollResult{len(col.recs), done, err}
	}()
	return ch
}

func TestDatagenRateLimit(t *testing.T) {
	c := registry(t, RegisterOptions{})
	fake := clock.NewFake(time.Unix(1000, 0))
	src := newSource(t, c, "datagen", `{"rate": 10, "count": 25}`)()
	ctx := context.Background()
	if err := src.Open(ctx, taskInfo(0, 1, fake)); err != nil {
		t.Fatal(err)
	}
	check := func(step string, res pollResult, n int, done bool) {
		t.Helper()
		if res.err != nil || res.n != n || res.done != done {
			t.Fatalf("%s: %d records, done=%v, err=%v; want %d, done=%v", step, res.n, res.done, res.err, n, done)
		}
	}
	// One record is due at once.
	check("first poll", <-pollAsync(ctx, src, 100), 1, false)
	// The next is due 100 ms later: Poll waits on the clock for it.
	ch := pollAsync(ctx, src, 100)
	waitForClockWaiter(t, fake, 1)
	fake.Advance(60 * time.Millisecond)
	select {
	case res := <-ch:
		t.Fatalf("Poll returned %+v before the record was due", res)
	default:
	}
	fake.Advance(40 * time.Millisecond)
	check("after 100ms", <-ch, 1, false)
	// After a second without polling, ten more are due at t=1.1s
	// (records 2..11 are due at 0.2s..1.1s).
	fake.Advance(time.Second)
	check("after 1.1s", <-pollAsync(ctx, src, 100), 10, false)
	// maxRecords still bounds a Poll.
	fake.Advance(time.Second)
	check("capped by maxRecords", <-pollAsync(ctx, src, 4), 4, false)
	// count bounds the rest: 25 - 16 = 9 remain, 6 are due at t=2.1s.
	check("rest due", <-pollAsync(ctx, src, 100), 6, false)
	fake.Advance(time.Second)
	check("last", <-pollAsync(ctx, src, 100), 3, true)
}

func TestDatagenFractionalRate(t *testing.T) {
	c := registry(t, RegisterOptions{})
	fake := clock.NewFake(time.Unix(0, 0))
	src := newSource(t, c, "datagen", `{"rate": 0.5}`)()
	ctx := context.Background()
	if err := src.Open(ctx, taskInfo(0, 1, fake)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		ch := pollAsync(ctx, src, 10)
		if i > 0 {
			waitForClockWaiter(t, fake, 1) // fired waiters are removed
			fake.Advance(1999 * time.Millisecond)
			select {
			case res := <-ch:
				t.Fatalf("poll %d returned %+v after 1.999s", i, res)
			default:
			}
			fake.Advance(time.Millisecond)
		}
		if res := <-ch; res.n != 1 || res.err != nil {
			t.Fatalf("poll %d: %+v", i, res)
		}
	}
}

func TestDatagenRateWaitEndsWithContext(t *testing.T) {
	c := registry(t, RegisterOptions{})
	fake := clock.NewFake(time.Unix(0, 0))
	src := newSource(t, c, "datagen", `{"rate": 1}`)()
	if err := src.Open(context.Background(), taskInfo(0, 1, fake)); err != nil {
		t.Fatal(err)
	}
	var col collector
	if _, err := src.Poll(context.Background(), &col, 10); err != nil || len(col.recs) != 1 {
		t.Fatalf("first poll: %d, %v", len(col.recs), err)
	}
	// A deadline is Poll's normal way back to the task loop: no error.
	expired, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel()
	if done, err := src.Poll(expired, &col, 10); done || err != nil || len(col.recs) != 1 {
		t.Fatalf("poll at deadline: done=%v err=%v records=%d", done, err, len(col.recs))
	}
	cancelled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if _, err := src.Poll(cancelled, &col, 10); err != context.Canceled {
		t.Fatalf("poll when cancelled: %v, want context.Canceled", err)
	}
}

func TestDatagenBadTaskInfo(t *testing.T) {
	c := registry(t, RegisterOptions{})
	src := newSource(t, c, "datagen", `{}`)()
	err := src.Open(context.Background(), taskInfo(3, 3, nil))
	wantErr(t, err, "subtask 3 out of range for parallelism 3")
}

// BenchmarkDatagenPoll measures Poll into a batch encoder, the path that
// feeds the throughput benchmarks.
func BenchmarkDatagenPoll(b *testing.B) {
	for _, bc := range []struct{ name, config string }{
		{"valueSize100", `{"valueSize": 100}`},
		{"valueSize100_seqKey_seqTime", `{"valueSize": 100, "key": {"kind": "sequence", "end": 9999}, "timestamp": "sequence"}`},
		{"randomKey_string100", `{"key": {"kind": "random", "max": 9999}, "value": {"kind": "string", "length": 100}}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			plan, err := newDatagenPlan([]byte(bc.config))
			if err != nil {
				b.Fatal(err)
			}
			benchPoll(b, newDatagenSource(plan), "records")
		})
	}
}

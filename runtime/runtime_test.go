package runtime

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/runtime/clock"
)

var wordModule = goModule{
	"split": {process: func(c *opCtx, _ int, r rec) error {
		for _, w := range strings.Fields(r.value) {
			c.emit(w, w)
		}
		return nil
	}},
	"count": {keyed: true, process: func(c *opCtx, _ int, r rec) error {
		v, _ := c.get("n", r.key)
		n, _ := strconv.Atoi(v)
		n++
		c.put("n", r.key, strconv.Itoa(n))
		c.emit(r.key, strconv.Itoa(n))
		return nil
	}},
	"fail": {process: func(c *opCtx, _ int, r rec) error {
		if r.value == "boom" {
			return errors.New("operator says boom")
		}
		c.emit(r.key, r.value)
		return nil
	}},
}

func wordInput(lines int) []rec {
	words := []string{"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta"}
	var recs []rec
	for i := 0; i < lines; i++ {
		var b strings.Builder
		for j := 0; j <= i%5; j++ {
			b.WriteString(words[(i*7+j*3)%len(words)])
			b.WriteByte(' ')
		}
		recs = append(recs, rec{value: b.String(), ts: abi.NoTimestamp})
	}
	return recs
}

// wantWordCounts is the reference: every word w with n occurrences yields
// w=1 ... w=n.
func wantWordCounts(recs []rec) []string {
	counts := map[string]int{}
	for _, r := range recs {
		for _, w := range strings.Fields(r.value) {
			counts[w]++
		}
	}
	var out []string
	for w, n := range counts {
		for i := 1; i <= n; i++ {
			out = append(out, fmt.Sprintf("%s=%d@%d", w, i, abi.NoTimestamp))
		}
	}
	sort.Strings(out)
	return out
}

func TestWordCount(t *testing.T) {
	input := wordInput(500)
	for _, backend := range []string{"memory", "pebble"} {
		for _, p := range []int{1, 4} {
			t.Run(fmt.Sprintf("%s/p%d", backend, p), func(t *testing.T) {
				env := &testEnv{sources: map[string][]rec{"lines": input}, col: newCollector(), mod: wordModule}
				job := runSpec(t, env, fmt.Sprintf(`
name: wc
parallelism: %d
state: {backend: %s}
exchange: {batchBytes: 512}
modules: {go: {path: unused}}
nodes:
  - {id: src, source: lines}
  - {id: split, module: go, operator: split, inputs: [src]}
  - {id: count, module: go, operator: count, inputs: [split]}
  - {id: out, sink: collect, inputs: [count]}
`, p, backend))
				equalLines(t, env.col.sorted("out"), wantWordCounts(input))
				if env.col.fin["out"] != p {
					t.Fatalf("Finish called %d times, want %d", env.col.fin["out"], p)
				}
				var srcIn, sinkOut, splitOut int64
				for _, s := range job.Stats() {
					if s.Nodes[len(s.Nodes)-1] == "split" {
						splitOut += s.RecordsOut // counted by the output partitioner
					}
					if !s.Finished {
						t.Errorf("task %s not finished", s.Task)
					}
					if s.Nodes[0] == "src" {
						srcIn += s.RecordsIn
					}
					if s.Nodes[len(s.Nodes)-1] == "out" {
						sinkOut += s.RecordsOut
					}
				}
				words := int64(len(wantWordCounts(input)))
				if srcIn != int64(len(input)) || sinkOut != words || splitOut != words {
					t.Fatalf("metrics: source in %d, split out %d, sink out %d (want %d, %d, %d)", srcIn, splitOut, sinkOut, len(input), words, words)
				}
			})
		}
	}
}

func TestChaining(t *testing.T) {
	env := &testEnv{sources: map[string][]rec{"lines": nil}, col: newCollector(), mod: wordModule}
	spec, err := ParseSpec([]byte(`
parallelism: 2
modules: {go: {path: x}}
nodes:
  - {id: src, source: lines}
  - {id: split, module: go, operator: split, inputs: [src]}
  - {id: count, module: go, operator: count, inputs: [split]}
  - {id: out, sink: collect, inputs: [count]}
  - {id: raw, sink: collect, parallelism: 1, inputs: [{from: count, partition: rebalance}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	job, err := Compile(context.Background(), spec, env.options())
	if err != nil {
		t.Fatal(err)
	}
	// count has two consumers, so out and raw do not chain onto it.
	want := "src+split x2, count x2, out x2, raw x1"
	if got := strings.Join(job.Graph(), ", "); got != want {
		t.Fatalf("graph %q, want %q", got, want)
	}
}

// tagModule emits, for every record, key=record key and value=its subtask.
var tagModule = goModule{
	"tag": {process: func(c *opCtx, _ int, r rec) error {
		c.emit(r.key, strconv.Itoa(int(c.info.Subtask)))
		return nil
	}},
	"ktag": {keyed: true, process: func(c *opCtx, _ int, r rec) error {
		c.emit(r.key, strconv.Itoa(int(c.info.Subtask)))
		return nil
	}},
}

func TestPartitioners(t *testing.T) {
	var input []rec
	for i := 0; i < 300; i++ {
		input = append(input, rec{key: fmt.Sprintf("k%d", i), value: "v", ts: abi.NoTimestamp})
	}
	run := func(t *testing.T, op, partition string) map[string][]string {
		env := &testEnv{sources: map[string][]rec{"src": input}, col: newCollector(), mod: tagModule}
		runSpec(t, env, fmt.Sprintf(`
maxParallelism: 64
modules: {go: {path: x}}
nodes:
  - {id: src, source: src}
  - {id: op, module: go, operator: %s, parallelism: 3, inputs: [{from: src, partition: %s}]}
  - {id: out, sink: collect, parallelism: 3, inputs: [op]}
`, op, partition))
		bySub := map[string][]string{}
		for _, r := range env.col.recs["out"] {
			bySub[r.value] = append(bySub[r.value], r.key)
		}
		return bySub
	}
	t.Run("broadcast", func(t *testing.T) {
		got := run(t, "tag", "broadcast")
		for s := 0; s < 3; s++ {
			if n := len(got[strconv.Itoa(s)]); n != 300 {
				t.Errorf("subtask %d got %d records, want all 300", s, n)
			}
		}
	})
	t.Run("rebalance", func(t *testing.T) {
		got := run(t, "tag", "rebalance")
		for s := 0; s < 3; s++ {
			if n := len(got[strconv.Itoa(s)]); n != 100 {
				t.Errorf("subtask %d got %d records, want 100 (round robin)", s, n)
			}
		}
	})
	t.Run("key", func(t *testing.T) {
		got := run(t, "ktag", "key")
		total := 0
		for s, keys := range got {
			for _, k := range keys {
				total++
				want := abi.OperatorIndexForKeyGroup(abi.KeyGroup([]byte(k), 64), 3, 64)
				if strconv.Itoa(want) != s {
					t.Fatalf("key %s went to subtask %s, its key group belongs to %d", k, s, want)
				}
			}
		}
		if total != 300 {
			t.Fatalf("got %d records, want 300", total)
		}
	})
}

// timerModule: "timers" registers an event-time timer at ts+10 for every
// record and emits "fired" when it fires, checking it never fires before the
// watermark passed it; records at or behind the current watermark go to the
// late output.
var timerModule = goModule{
	"timers": {keyed: true,
		process: func(c *opCtx, _ int, r rec) error {
			if r.ts <= c.env.Timers.Watermark() {
				c.emitTag(abi.TagLate, r.key, strconv.FormatInt(r.ts, 10))
				return nil
			}
			return c.env.Timers.RegisterTimer(abi.EventTime, []byte(r.key), r.ts+10)
		},
		timer: func(c *opCtx, d abi.TimeDomain, key string, ts int64) error {
			if wm := c.env.Timers.Watermark(); ts > wm {
				return fmt.Errorf("timer %d fired at watermark %d", ts, wm)
			}
			c.emit(key, "fired")
			return nil
		},
	},
}

func TestEventTimeTimersAndLateRecords(t *testing.T) {
	// Out-of-order input; bound 3ms: watermark = max ts - 4.
	tss := []int64{100, 102, 101, 99, 107, 103, 104, 96, 110, 106, 120, 115, 119, 116, 130, 100}
	var input []rec
	for i, ts := range tss {
		input = append(input, rec{key: fmt.Sprintf("k%d", i%3), value: "x", ts: ts})
	}
	// Reference: a record is late when ts <= the watermark generated by the
	// records before it (punctuated watermarks).
	var wantFired, wantLate []string
	maxTs := int64(abi.MinWatermark)
	wm := int64(abi.MinWatermark)
	timers := map[string]bool{}
	for _, r := range input {
		if r.ts <= wm {
			wantLate = append(wantLate, fmt.Sprintf("%s=%d@%d", r.key, r.ts, r.ts))
		} else if !timers[fmt.Sprint(r.key, r.ts+10)] {
			timers[fmt.Sprint(r.key, r.ts+10)] = true
			wantFired = append(wantFired, fmt.Sprintf("%s=fired@%d", r.key, r.ts+10))
		}
		if r.ts > maxTs {
			maxTs = r.ts
			wm = maxTs - 4
		}
	}
	sort.Strings(wantFired)
	sort.Strings(wantLate)
	if len(wantLate) == 0 {
		t.Fatal("test input has no late records")
	}
	for _, p := range []int{1, 2} {
		t.Run(fmt.Sprintf("p%d", p), func(t *testing.T) {
			env := &testEnv{sources: map[string][]rec{"src": input}, col: newCollector(), mod: timerModule}
			runSpec(t, env, fmt.Sprintf(`
modules: {go: {path: x}}
nodes:
  - {id: src, source: src, watermarks: {outOfOrderness: 3ms, interval: 0}}
  - {id: op, module: go, operator: timers, parallelism: %d, inputs: [src]}
  - {id: out, sink: collect, inputs: [{from: op, partition: rebalance}]}
  - {id: late, sink: collect, inputs: [{from: op, output: late, partition: rebalance}]}
`, p))
			equalLines(t, env.col.sorted("out"), wantFired)
			equalLines(t, env.col.sorted("late"), wantLate)
		})
	}
}

func TestMultipleInputs(t *testing.T) {
	left := []rec{{"a", "l1", 1}, {"b", "l2", 2}}
	right := []rec{{"a", "r1", 1}, {"c", "r2", 3}, {"b", "r3", 4}}
	mod := goModule{"join": {keyed: true, process: func(c *opCtx, input int, r rec) error {
		c.emit(r.key, fmt.Sprintf("%d:%s", input, r.value))
		return nil
	}, end: func(c *opCtx, input int) error {
		c.ts = 0
		c.emit("end", strconv.Itoa(input))
		return nil
	}}}
	env := &testEnv{sources: map[string][]rec{"left": left, "right": right}, col: newCollector(), mod: mod}
	runSpec(t, env, `
modules: {go: {path: x}}
nodes:
  - {id: l, source: left}
  - {id: r, source: right, parallelism: 2}
  - {id: j, module: go, operator: join, inputs: [l, r]}
  - {id: out, sink: collect, inputs: [j]}
`)
	equalLines(t, env.col.sorted("out"), []string{
		"a=0:l1@1", "a=1:r1@1", "b=0:l2@2", "b=1:r3@4", "c=1:r2@3", "end=0@0", "end=1@0",
	})
}

func TestOperatorFailureFailsOnlyItsJob(t *testing.T) {
	bad := &testEnv{sources: map[string][]rec{"src": {{"k", "ok", 1}, {"k", "boom", 2}}}, col: newCollector(), mod: wordModule}
	good := &testEnv{sources: map[string][]rec{"src": wordInput(2000)}, col: newCollector(), mod: wordModule}
	compile := func(env *testEnv, spec string) *Job {
		s, err := ParseSpec([]byte(spec))
		if err != nil {
			t.Fatal(err)
		}
		j, err := Compile(context.Background(), s, env.options())
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	badJob := compile(bad, `
name: bad
modules: {go: {path: x}}
nodes:
  - {id: src, source: src}
  - {id: f, module: go, operator: fail, parallelism: 2, inputs: [{from: src, partition: rebalance}]}
  - {id: out, sink: collect, inputs: [{from: f, partition: rebalance}]}
`)
	goodJob := compile(good, `
name: good
parallelism: 2
modules: {go: {path: x}}
nodes:
  - {id: src, source: src}
  - {id: split, module: go, operator: split, inputs: [src]}
  - {id: count, module: go, operator: count, inputs: [split]}
  - {id: out, sink: collect, inputs: [count]}
`)
	var wg sync.WaitGroup
	var badErr, goodErr error
	wg.Add(2)
	go func() { defer wg.Done(); badErr = badJob.Run(context.Background()) }()
	go func() { defer wg.Done(); goodErr = goodJob.Run(context.Background()) }()
	wg.Wait()
	if badErr == nil || !strings.Contains(badErr.Error(), "operator says boom") || !strings.Contains(badErr.Error(), "task f[") {
		t.Fatalf("bad job error = %v, want the operator's error naming the task", badErr)
	}
	if goodErr != nil {
		t.Fatalf("good job failed: %v", goodErr)
	}
	equalLines(t, good.col.sorted("out"), wantWordCounts(wordInput(2000)))
}

func TestBackpressureBoundsInFlightRecords(t *testing.T) {
	const total = 50000
	var input []rec
	for i := 0; i < total; i++ {
		input = append(input, rec{key: "k", value: "0123456789", ts: abi.NoTimestamp})
	}
	release := make(chan struct{})
	env := &testEnv{sources: map[string][]rec{"src": input}, col: newCollector(), mod: wordModule}
	env.hook = func(ctx context.Context) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	spec, err := ParseSpec([]byte(`
exchange: {batchBytes: 1024, buffers: 2}
nodes:
  - {id: src, source: src}
  - {id: out, sink: collect, inputs: [{from: src, partition: rebalance}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	job, err := Compile(context.Background(), spec, env.options())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- job.Run(context.Background()) }()
	// Wait (bounded) until the source reports time blocked on output.
	deadline := time.Now().Add(10 * time.Second)
	var srcIn int64
	for {
		var bp time.Duration
		for _, s := range job.Stats() {
			if s.Nodes[0] == "src" {
				bp, srcIn = s.Backpressure, s.RecordsIn
			}
		}
		if bp > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("source never blocked on a stalled sink")
		}
		runtimeGosched()
	}
	// In flight at most: 2 buffers of ~1 KiB (~36 records each) in the
	// channel, one batch in the blocked sink, plus one source poll (1024).
	if srcIn > 1024*2 {
		t.Fatalf("source read %d records while the sink was stalled; backpressure should stop it near 1100", srcIn)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := len(env.col.recs["out"]); n != total {
		t.Fatalf("sink got %d records, want %d", n, total)
	}
}

// gatedSource emits its records, then nothing (without ending) until gate
// is closed.
type gatedSource struct {
	sliceSource
	gate <-chan struct{}
}

func (g *gatedSource) Poll(ctx context.Context, w RecordWriter, max int) (bool, error) {
	if g.next < len(g.recs) {
		g.sliceSource.Poll(ctx, w, max)
		return false, nil
	}
	select {
	case <-g.gate:
		return true, nil
	case <-ctx.Done():
		return false, nil
	}
}

func TestProcessingTimeTimers(t *testing.T) {
	fake := clock.NewFake(time.UnixMilli(1_000_000))
	mod := goModule{"pt": {keyed: true,
		process: func(c *opCtx, _ int, r rec) error {
			return c.env.Timers.RegisterTimer(abi.ProcessingTime, []byte(r.key), c.env.Timers.ProcessingTime()+5000)
		},
		timer: func(c *opCtx, d abi.TimeDomain, key string, ts int64) error {
			if d != abi.ProcessingTime {
				return fmt.Errorf("domain %v", d)
			}
			c.emit(key, fmt.Sprintf("pt-%d", ts))
			return nil
		},
	}}
	gate := make(chan struct{})
	col := newCollector()
	opts := (&testEnv{col: col, mod: mod}).options()
	opts.Clock = fake
	opts.Connectors.Sources["gated"] = func([]byte) (func() Source, error) {
		return func() Source {
			return &gatedSource{sliceSource: sliceSource{recs: []rec{{"a", "", 1}, {"b", "", 2}}}, gate: gate}
		}, nil
	}
	spec, err := ParseSpec([]byte(`
modules: {go: {path: x}}
nodes:
  - {id: src, source: gated}
  - {id: op, module: go, operator: pt, inputs: [src]}
  - {id: out, sink: collect, inputs: [{from: op, partition: rebalance}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	job, err := Compile(context.Background(), spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- job.Run(context.Background()) }()
	deadline := time.Now().Add(10 * time.Second)
	waitFor := func(what string, cond func() bool) {
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			runtimeGosched()
		}
	}
	// The operator task waits on the fake clock once both timers exist.
	waitFor("timers registered", func() bool {
		for _, s := range job.Stats() {
			if s.Nodes[0] == "op" && s.RecordsIn == 2 {
				n, _ := fake.Waiters()
				return n > 0
			}
		}
		return false
	})
	if len(col.sorted("out")) != 0 {
		t.Fatal("processing-time timers fired before the clock reached them")
	}
	fake.Advance(5 * time.Second)
	waitFor("timers fired", func() bool { return len(col.sorted("out")) == 2 })
	close(gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	equalLines(t, col.sorted("out"), []string{"a=pt-1005000@1005000", "b=pt-1005000@1005000"})
}

// An idle source must not hold back the watermark of a node that also reads
// an active source: once the idle timeout passes on the task clock, the
// node's watermark follows the active source alone and its timers fire.
func TestIdleSourceDoesNotHoldBackWatermark(t *testing.T) {
	fake := clock.NewFake(time.UnixMilli(0))
	col := newCollector()
	opts := (&testEnv{col: col, mod: timerModule}).options()
	opts.Clock = fake
	gateA, gateB := make(chan struct{}), make(chan struct{})
	opts.Connectors.Sources["active"] = func([]byte) (func() Source, error) {
		return func() Source {
			return &gatedSource{sliceSource: sliceSource{recs: []rec{{"k", "x", 100}, {"k", "x", 200}}}, gate: gateA}
		}, nil
	}
	opts.Connectors.Sources["quiet"] = func([]byte) (func() Source, error) {
		return func() Source { return &gatedSource{gate: gateB} }, nil
	}
	spec, err := ParseSpec([]byte(`
modules: {go: {path: x}}
nodes:
  - {id: a, source: active, watermarks: {outOfOrderness: 0ms, interval: 0}}
  - {id: b, source: quiet, watermarks: {idleTimeout: 1s}}
  - {id: op, module: go, operator: timers, inputs: [a, b]}
  - {id: out, sink: collect, inputs: [{from: op, partition: rebalance}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	job, err := Compile(context.Background(), spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- job.Run(context.Background()) }()
	deadline := time.Now().Add(10 * time.Second)
	opWatermark := func() int64 {
		for _, s := range job.Stats() {
			if s.Nodes[0] == "op" {
				return s.Watermark
			}
		}
		return 0
	}
	// Both records are in; b has produced nothing, so op's watermark waits.
	for {
		var in int64
		for _, s := range job.Stats() {
			if s.Nodes[0] == "op" {
				in = s.RecordsIn
			}
		}
		if in == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("records never reached op")
		}
		runtimeGosched()
	}
	if wm := opWatermark(); wm != abi.MinWatermark {
		t.Fatalf("op watermark %d before b went idle, want none", wm)
	}
	// a's own timer (110) is due at a's watermark 199, but b holds it back
	// until b is idle.
	fake.Advance(2 * time.Second)
	for opWatermark() != 199 {
		if time.Now().After(deadline) {
			t.Fatalf("op watermark %d, want 199 once b is idle", opWatermark())
		}
		runtimeGosched()
	}
	close(gateA)
	close(gateB)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	equalLines(t, col.sorted("out"), []string{"k=fired@110", "k=fired@210"})
}

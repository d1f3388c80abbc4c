//go:build !wasip1

package main

// Tests of the benchmark harness itself: the bigstate-gen source produces
// what the benchmarks assume, and a small large-state job checkpoints,
// fails and recovers as the benchmarks measure it.

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/weirstream/weir/checkpoint"
	"github.com/weirstream/weir/runtime"
	"github.com/weirstream/weir/runtime/clock"
)

// collect is a RecordWriter that keeps copies of what it is given.
type collect struct{ keys, values [][]byte }

func (c *collect) Write(key, value []byte, ts int64) {
	c.keys = append(c.keys, bytes.Clone(key))
	c.values = append(c.values, bytes.Clone(value))
}

func newGen(t *testing.T, cfg string, p *genProgress) runtime.CheckpointedSource {
	t.Helper()
	mk, err := newBigGenFactory(p)([]byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	return mk().(runtime.CheckpointedSource)
}

// pollAll polls src until it reports done (bounded config), at most max
// records per poll.
func pollAll(t *testing.T, src runtime.Source, w *collect, max int) {
	t.Helper()
	for range 10000 {
		done, err := src.Poll(context.Background(), w, max)
		if err != nil {
			t.Fatal(err)
		}
		if done {
			return
		}
	}
	t.Fatal("the bounded source never finished")
}

// TestBigGenLoad: the load writes every key exactly once over the subtasks,
// including across a snapshot and restore, with distinct incompressible
// values of the configured size.
func TestBigGenLoad(t *testing.T) {
	const keys, p = 101, 2
	cfg := `{"keys": 101, "valueSize": 40, "seed": 7}`
	progress := &genProgress{}
	seen := map[string]int{}
	values := map[string]bool{}
	for s := range p {
		info := runtime.TaskInfo{Subtask: s, Parallelism: p}
		w := &collect{}
		first := newGen(t, cfg, progress)
		if err := first.Open(context.Background(), info); err != nil {
			t.Fatal(err)
		}
		if _, err := first.Poll(context.Background(), w, 7); err != nil {
			t.Fatal(err)
		}
		pos, err := first.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		// A restored subtask continues after the snapshot: the records it
		// writes plus those before the snapshot are the subtask's share.
		second := newGen(t, cfg, progress)
		states := make([][]byte, p)
		states[s] = pos
		if err := second.Restore(info, states); err != nil {
			t.Fatal(err)
		}
		if err := second.Open(context.Background(), info); err != nil {
			t.Fatal(err)
		}
		pollAll(t, second, w, 5)
		for i, k := range w.keys {
			seen[string(k)]++
			if len(w.values[i]) != 40 {
				t.Fatalf("value of %d bytes, want 40", len(w.values[i]))
			}
			values[string(w.values[i])] = true
		}
	}
	for k := range keys {
		if n := seen[strconv.Itoa(k)]; n != 1 {
			t.Errorf("key %d written %d times, want once", k, n)
		}
	}
	if len(seen) != keys {
		t.Errorf("%d distinct keys, want %d", len(seen), keys)
	}
	if len(values) != keys {
		t.Errorf("%d distinct values for %d records", len(values), keys)
	}
	if got := progress.loaded.Load(); got != keys {
		t.Errorf("progress counts %d load records, want %d", got, keys)
	}
	if _, ok := progress.loadTime(); !ok {
		t.Error("the load is not reported complete")
	}
}

// TestBigGenChurn: after the load the source writes churnPerSec records
// per second over its subtasks, to keys of the key space.
func TestBigGenChurn(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	progress := &genProgress{}
	src := newGen(t, `{"keys": 50, "valueSize": 8, "churnPerSec": 1000}`, progress)
	if err := src.Open(context.Background(), runtime.TaskInfo{Subtask: 1, Parallelism: 2, Clock: clk}); err != nil {
		t.Fatal(err)
	}
	w := &collect{}
	for { // the load: subtask 1 has the 25 odd keys
		n := len(w.keys)
		if _, err := src.Poll(context.Background(), w, 1000); err != nil {
			t.Fatal(err)
		}
		if len(w.keys) == n || len(w.keys) >= 25 {
			break
		}
	}
	if len(w.keys) != 25 {
		t.Fatalf("load of subtask 1 wrote %d records, want 25", len(w.keys))
	}
	expired, cancel := context.WithCancel(context.Background())
	cancel()
	poll := func() int {
		n := len(w.keys)
		if _, err := src.Poll(expired, w, 1000); err != nil {
			t.Fatal(err)
		}
		return len(w.keys) - n
	}
	if n := poll(); n != 1 {
		t.Fatalf("first churn poll wrote %d records, want 1 (due at once)", n)
	}
	if n := poll(); n != 0 {
		t.Fatalf("a poll at the same instant wrote %d more records, want 0", n)
	}
	clk.Advance(time.Second)
	// 1000/s over 2 subtasks: 500 in the second, the first one included.
	if n := poll(); n != 500 {
		t.Fatalf("one second later the poll wrote %d records, want 500", n)
	}
	for _, k := range w.keys[25:] {
		n, err := strconv.Atoi(string(k))
		if err != nil || n < 0 || n >= 50 {
			t.Fatalf("churn key %q outside 0..49", k)
		}
	}
	if got := progress.churned.Load(); got != 501 {
		t.Fatalf("progress counts %d churn records, want 501", got)
	}
}

// TestFillValue: values are a pure function of the index and do not
// compress (no byte dominates).
func TestFillValue(t *testing.T) {
	a, b := make([]byte, 1027), make([]byte, 1027)
	fillValue(a, 1, 42)
	fillValue(b, 1, 42)
	if !bytes.Equal(a, b) {
		t.Fatal("the same index gave different values")
	}
	fillValue(b, 1, 43)
	if bytes.Equal(a[:8], b[:8]) {
		t.Fatal("indices 42 and 43 share a prefix")
	}
	var counts [256]int
	for _, c := range a {
		counts[c]++
	}
	for c, n := range counts {
		if n > 20 { // expected 4 per byte value
			t.Fatalf("byte %#x appears %d times in 1027 random bytes", c, n)
		}
	}
	if a[1026] == 0 && a[1025] == 0 && a[1024] == 0 {
		t.Fatal("the tail was not filled")
	}
}

// TestBigStateJob runs a small large-state job as the benchmarks do: the
// checkpoint after the load holds every key's value, and an injected
// failure is recovered from with the timeline the recovery benchmark
// reports.
func TestBigStateJob(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Wasm module")
	}
	wasm := buildModule(t)
	load := newLoader(t)
	store, err := checkpoint.OpenLocal(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := bigParams{stateBytes: 2000 * 1024, valueSize: 1024, interval: 100 * time.Millisecond, storage: store}
	j := startBig(t, load, wasm, p)
	loaded := j.waitLoaded(t)
	waitFor(t, j.running, "a checkpoint after the load", time.Minute, func() bool {
		return len(j.rec.completedSince(loaded)) > 0
	})
	full := j.rec.completedSince(loaded)[0]
	raw := p.keys() * int64(p.valueSize)
	if full.Size < raw || full.Size > raw*3/2+(1<<20) {
		t.Fatalf("checkpoint %d after the load holds %d bytes; the state is %d bytes of incompressible values", full.ID, full.Size, raw)
	}
	if full.Uploaded <= 0 || full.Uploaded > full.Size {
		t.Fatalf("checkpoint %d: uploaded %d of %d bytes", full.ID, full.Uploaded, full.Size)
	}
	j.rec.arm()
	waitFor(t, j.running, "the restored attempt's first batch", time.Minute, func() bool {
		r, ok := j.rec.recoveryOf(0)
		return ok && !r.first.IsZero()
	})
	r, _ := j.rec.recoveryOf(0)
	if !(r.fault.Before(r.failed) && r.failed.Before(r.restored) && r.restored.Before(r.first)) {
		t.Fatalf("recovery timeline out of order: %+v", r)
	}
	if r.from < full.ID {
		t.Fatalf("restored checkpoint %d, older than %d which completed before the failure", r.from, full.ID)
	}
	waitFor(t, j.running, "a checkpoint of the restored attempt", time.Minute, func() bool {
		return len(j.rec.completedSince(r.restored)) > 0
	})
	if err := j.stop(); err != nil {
		t.Fatalf("job failed: %v", err)
	}
	if f := j.job.Failures(); len(f) != 1 {
		t.Fatalf("%d failures in the job's history, want the 1 injected", len(f))
	}
}

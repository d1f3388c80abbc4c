//go:build !wasip1

package main

// Benchmarks of exactly-once checkpointing (issue 3), through the real
// runtime, Wasm operators and checkpoint storage:
//
//   - BenchmarkCheckpointOverhead: keyed-count throughput with a checkpoint
//     every second vs. without checkpoints, in the same run.
//   - BenchmarkIncrementalCheckpoint: Pebble state of keys × 1 KiB, 1 % of
//     the keys changed between checkpoints: bytes uploaded per checkpoint
//     against the full state, checkpoint duration and alignment.
//   - BenchmarkRecovery: time from a task failure to the restored job
//     processing again, with that state, on local storage and on MinIO.
//
// The large-state benchmarks default to 64 MiB so that a plain run stays
// short; WEIR_BENCH_LARGE=1 makes it 1 GiB (WEIR_BENCH_STATE_MB sets any
// size, WEIR_BENCH_CHECKPOINTS the number of measured checkpoints,
// WEIR_BENCH_FAILURES the number of injected failures):
//
//	go test -run '^$' -bench . -benchtime 3x ./examples/bench/ckpt/
//	WEIR_BENCH_LARGE=1 go test -run '^$' -bench 'Incremental|Recovery' -timeout 60m -v ./examples/bench/ckpt/

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/weirstream/weir/checkpoint"
	"github.com/weirstream/weir/connectors"
	"github.com/weirstream/weir/runtime"
)

// overheadSpec: datagen (100-byte values, 100,000 keys) → keyedcount
// (keyed) → blackhole, every node at parallelism 2, so that each counting
// task has two input channels and aligns barriers.
const overheadSpec = `
name: ckpt-overhead
parallelism: 2
state: {backend: %[1]s, dir: %[2]q}
modules: {m: {path: %[3]q}}
nodes:
  - id: gen
    source: datagen
    config: {count: %[4]d, valueSize: 100, key: {kind: sequence, start: 0, end: 99999}}
  - {id: op, module: m, operator: keyedcount, inputs: [{from: gen, partition: key}]}
  - {id: sink, sink: blackhole, inputs: [op]}
`

// runCount runs the keyed-count job once over records records, with a
// checkpoint every second when withCheckpoints, and returns its wall time,
// the CPU time the process used meanwhile, and the completed checkpoints.
func runCount(b *testing.B, load runtime.ModuleLoader, wasm, backend string, records int, withCheckpoints bool) (wall, cpu time.Duration, _ []checkpoint.Stats) {
	b.Helper()
	stateDir := b.TempDir()
	spec, err := runtime.ParseSpec([]byte(fmt.Sprintf(overheadSpec, backend, stateDir, wasm, records)))
	if err != nil {
		b.Fatal(err)
	}
	var conns runtime.Connectors
	var counters connectors.BlackholeCounters
	connectors.RegisterWithOptions(&conns, connectors.RegisterOptions{Blackhole: &counters})
	opts := runtime.Options{Connectors: conns, LoadModule: load}
	rec := newRecorder("op")
	if withCheckpoints {
		store, err := checkpoint.OpenLocal(b.TempDir(), nil)
		if err != nil {
			b.Fatal(err)
		}
		spec.Checkpoints.Interval = runtime.Duration(time.Second)
		opts.Checkpoint = &runtime.CheckpointOptions{Storage: store}
		opts.OnEvent = rec.onEvent
	}
	job, err := runtime.Compile(context.Background(), spec, opts)
	if err != nil {
		b.Fatal(err)
	}
	rec.job.Store(job)
	start, cpu0 := time.Now(), cpuTime()
	if err := job.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	wall, cpu = time.Since(start), cpuTime()-cpu0
	if counters.Records() != int64(records) {
		b.Fatalf("blackhole got %d records, want %d", counters.Records(), records)
	}
	return wall, cpu, rec.completedSince(time.Time{})
}

// BenchmarkCheckpointOverhead compares keyed-count throughput with a
// checkpoint every second (local storage) and without checkpoints. Each
// iteration runs the job both ways, in alternating order, so that both
// see the same machine load; the drop is 1 - with/without, of wall-clock
// throughput (rec/s) and of throughput per CPU-second the process used
// (rec/cpu-s: less sensitive to other processes on a shared machine; the
// checkpoints' background work counts).
func BenchmarkCheckpointOverhead(b *testing.B) {
	wasm := buildModule(b)
	load := newLoader(b)
	for _, c := range []struct {
		backend string
		records int
	}{
		{"memory", 24_000_000},
		{"pebble", 16_000_000},
	} {
		b.Run(c.backend, func(b *testing.B) {
			runCount(b, load, wasm, c.backend, 10_000, false) // compile, warm up
			var off, on, offCPU, onCPU time.Duration
			var stats []checkpoint.Stats
			runs := 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for _, ckpt := range [][]bool{{false, true}, {true, false}}[i%2] {
					d, cpu, st := runCount(b, load, wasm, c.backend, c.records, ckpt)
					if ckpt {
						on, onCPU = on+d, onCPU+cpu
						stats = append(stats, st...)
						runs++
						b.Logf("%s with checkpoints: %v (cpu %v), %d checkpoints", c.backend, d.Round(time.Millisecond), cpu.Round(time.Millisecond), len(st))
					} else {
						off, offCPU = off+d, offCPU+cpu
						b.Logf("%s without checkpoints: %v (cpu %v)", c.backend, d.Round(time.Millisecond), cpu.Round(time.Millisecond))
					}
				}
			}
			b.StopTimer()
			total := float64(c.records) * float64(b.N)
			var dur, align, sync []float64
			for _, s := range stats {
				dur = append(dur, ms(s.Duration))
				align = append(align, s.AlignmentMs)
				sync = append(sync, s.SyncMs)
			}
			b.ReportMetric(total/off.Seconds(), "rec/s-none")
			b.ReportMetric(total/on.Seconds(), "rec/s-1s")
			b.ReportMetric(100*(1-off.Seconds()/on.Seconds()), "drop-%")
			b.ReportMetric(total/offCPU.Seconds(), "rec/cpu-s-none")
			b.ReportMetric(total/onCPU.Seconds(), "rec/cpu-s-1s")
			b.ReportMetric(100*(1-offCPU.Seconds()/onCPU.Seconds()), "drop-cpu-%")
			b.ReportMetric(float64(len(stats))/float64(runs), "ckpts/run")
			b.ReportMetric(percentile(dur, 50), "ckpt-p50-ms")
			b.ReportMetric(percentile(dur, 100), "ckpt-max-ms")
			b.ReportMetric(percentile(align, 100), "align-max-ms")
			b.ReportMetric(percentile(sync, 100), "sync-max-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// bigSpec: bigstate-gen (parallelism 2) → bigstate (keyed, parallelism 2,
// Pebble) → blackhole, a checkpoint every second, restarts at once.
const bigSpec = `
name: %[1]s
parallelism: 2
state: {backend: pebble, dir: %[2]q}
modules: {m: {path: %[3]q}}
nodes:
  - id: gen
    source: bigstate-gen
    config: {keys: %[4]d, valueSize: %[5]d, churnPerSec: %[6]d, seed: 1}
  - {id: op, module: m, operator: bigstate, inputs: [{from: gen, partition: key}]}
  - {id: sink, sink: blackhole, inputs: [op]}
checkpoints: {interval: %[7]s}
restart: {strategy: fixed, attempts: 1000, delay: 1ms}
`

// bigJob is a running large-state job.
type bigJob struct {
	*running
	rec      *recorder
	progress *genProgress
	keys     int64
}

// bigParams sizes a large-state job.
type bigParams struct {
	stateBytes int64
	valueSize  int
	interval   time.Duration
	storage    checkpoint.Storage
}

func (p bigParams) keys() int64 { return p.stateBytes / int64(p.valueSize) }

// largeParams reads the state size from the environment: 64 MiB, 1 GiB
// with WEIR_BENCH_LARGE=1, or WEIR_BENCH_STATE_MB.
func largeParams(tb testing.TB) bigParams {
	mb := int64(64)
	if os.Getenv("WEIR_BENCH_LARGE") == "1" {
		mb = 1024
	}
	mb = envInt(tb, "WEIR_BENCH_STATE_MB", mb)
	return bigParams{stateBytes: mb << 20, valueSize: 1024, interval: time.Second}
}

// large reports whether WEIR_BENCH_LARGE=1 asks for the 1 GiB runs.
func large(tb testing.TB) bool {
	return os.Getenv("WEIR_BENCH_LARGE") == "1"
}

// startBig starts the large-state job: it loads every key, then changes 1 %
// of the keys per checkpoint interval.
func startBig(tb testing.TB, load runtime.ModuleLoader, wasm string, p bigParams) *bigJob {
	tb.Helper()
	keys := p.keys()
	churn := max(1, int64(float64(keys)/100/p.interval.Seconds()))
	stateDir := tb.TempDir()
	spec, err := runtime.ParseSpec([]byte(fmt.Sprintf(bigSpec, "bigstate", stateDir, wasm, keys, p.valueSize, churn, p.interval)))
	if err != nil {
		tb.Fatal(err)
	}
	progress := &genProgress{}
	var conns runtime.Connectors
	connectors.Register(&conns)
	conns.Sources[bigGenName] = newBigGenFactory(progress)
	rec := newRecorder("op")
	job, err := runtime.Compile(context.Background(), spec, runtime.Options{
		Connectors:  conns,
		LoadModule:  load,
		Checkpoint:  &runtime.CheckpointOptions{Storage: p.storage},
		OnEvent:     rec.onEvent,
		InjectFault: rec.fault,
	})
	if err != nil {
		tb.Fatal(err)
	}
	rec.job.Store(job)
	return &bigJob{running: start(tb, job), rec: rec, progress: progress, keys: keys}
}

// waitLoaded waits until every key was written and returns when.
func (j *bigJob) waitLoaded(tb testing.TB) time.Time {
	tb.Helper()
	waitFor(tb, j.running, "the load of every key", 30*time.Minute, func() bool {
		_, ok := j.progress.loadTime()
		return ok
	})
	t, _ := j.progress.loadTime()
	return t
}

// BenchmarkIncrementalCheckpoint measures incremental Pebble checkpoints
// of a large state (keys × 1 KiB of incompressible values, in two tasks)
// with 1 % of the keys changed per checkpoint interval: bytes uploaded per
// checkpoint against the whole state (upload-% against the checkpoint's
// size, upload-%live against the live state, keys × value size: Pebble
// keeps obsolete versions until compactions drop them, so a checkpoint is
// larger than the live state), checkpoint duration, alignment.
// The two checkpoints after the load are warm-up (they upload the load's
// last SSTs); the next WEIR_BENCH_CHECKPOINTS (default 10, 60 with
// WEIR_BENCH_LARGE=1) are measured. On local storage (SSTs are hard-linked
// into it, so an "upload" is a checksum read and an fsync) and on MinIO.
func BenchmarkIncrementalCheckpoint(b *testing.B) {
	wasm := buildModule(b)
	load := newLoader(b)
	measured := envInt(b, "WEIR_BENCH_CHECKPOINTS", map[bool]int64{false: 10, true: 60}[large(b)])
	const warmup = 2
	for _, where := range []string{"local", "s3"} {
		b.Run(where, func(b *testing.B) {
			p := largeParams(b)
			var uploadedPct, uploadedLive, sizeMiB, dur, align, syncMs, loadS []float64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p.storage = openStorage(b, where)
				j := startBig(b, load, wasm, p)
				started := time.Now()
				loaded := j.waitLoaded(b)
				loadS = append(loadS, loaded.Sub(started).Seconds())
				b.Logf("loaded %d keys × %d B in %v", j.keys, p.valueSize, loaded.Sub(started).Round(time.Millisecond))
				waitFor(b, j.running, fmt.Sprintf("%d checkpoints after the load", warmup+measured), 30*time.Minute, func() bool {
					return int64(len(j.rec.completedSince(loaded))) >= warmup+measured
				})
				churned := j.progress.churned.Load()
				if err := j.stop(); err != nil {
					b.Fatalf("job failed: %v", err)
				}
				if f := j.job.Failures(); len(f) > 0 {
					b.Fatalf("the job restarted %d times (first: %v): the measurements include recoveries", len(f), f[0].Err)
				}
				all := j.rec.completedSince(loaded)
				for k, s := range all {
					b.Logf("checkpoint %d: %v, size %.1f MiB, uploaded %.2f MiB (%.2f %%), alignment %.1f ms, sync %.1f ms%s",
						s.ID, s.Duration.Round(time.Millisecond), float64(s.Size)/(1<<20), float64(s.Uploaded)/(1<<20),
						100*float64(s.Uploaded)/float64(s.Size), s.AlignmentMs, s.SyncMs, map[bool]string{true: " (warm-up)"}[k < warmup])
					if k < warmup || int64(k) >= warmup+measured {
						continue
					}
					uploadedPct = append(uploadedPct, 100*float64(s.Uploaded)/float64(s.Size))
					uploadedLive = append(uploadedLive, 100*float64(s.Uploaded)/float64(j.keys*int64(p.valueSize)))
					sizeMiB = append(sizeMiB, float64(s.Size)/(1<<20))
					dur = append(dur, ms(s.Duration))
					align = append(align, s.AlignmentMs)
					syncMs = append(syncMs, s.SyncMs)
				}
				b.Logf("%d churn records over %d checkpoints since the load (%.2f %% of the keys per checkpoint)",
					churned, len(all), 100*float64(churned)/float64(len(all))/float64(j.keys))
			}
			b.StopTimer()
			b.ReportMetric(mean(sizeMiB), "state-MiB")
			b.ReportMetric(mean(loadS), "load-s")
			b.ReportMetric(percentile(uploadedPct, 50), "upload-%-p50")
			b.ReportMetric(mean(uploadedPct), "upload-%-mean")
			b.ReportMetric(percentile(uploadedPct, 100), "upload-%-max")
			b.ReportMetric(mean(uploadedLive), "upload-%live-mean")
			b.ReportMetric(percentile(dur, 50), "ckpt-p50-ms")
			b.ReportMetric(percentile(dur, 99), "ckpt-p99-ms")
			b.ReportMetric(percentile(align, 50), "align-p50-ms")
			b.ReportMetric(percentile(align, 99), "align-p99-ms")
			b.ReportMetric(percentile(syncMs, 99), "sync-p99-ms")
			b.ReportMetric(float64(len(dur)), "ckpts")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// openStorage returns empty checkpoint storage of tb: a local folder, or
// a bucket of a MinIO server started for tb ("s3").
func openStorage(tb testing.TB, where string) checkpoint.Storage {
	tb.Helper()
	if where == "s3" {
		return startMinIO(tb)
	}
	s, err := checkpoint.OpenLocal(tb.TempDir(), nil)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// BenchmarkRecovery measures the time from a task failure to the restored
// job processing again, with the large state, on local storage and on
// MinIO: the job loads its keys, takes a checkpoint of all of them, then
// fails WEIR_BENCH_FAILURES times (default 3, 5 with WEIR_BENCH_LARGE=1),
// each failure at a random point up to one interval after a checkpoint of
// the current attempt completed. The restart delay is 1 ms (the
// configurable back-off is not part of the engine's recovery time).
//
// Reported: recovery = failure → first batch the restored operator task
// takes; its parts: stop (failure → every task stopped, in-flight uploads
// waited for), restore (→ state downloaded, Pebble opened, operators
// open) and first (→ that first batch).
func BenchmarkRecovery(b *testing.B) {
	wasm := buildModule(b)
	load := newLoader(b)
	failures := envInt(b, "WEIR_BENCH_FAILURES", map[bool]int64{false: 3, true: 5}[large(b)])
	for _, where := range []string{"local", "s3"} {
		b.Run(where, func(b *testing.B) {
			p := largeParams(b)
			rng := rand.New(rand.NewPCG(1, 2))
			var total, stop, restore, first, restoredMiB []float64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p.storage = openStorage(b, where)
				j := startBig(b, load, wasm, p)
				loaded := j.waitLoaded(b)
				since := loaded
				for f := int64(0); f < failures; f++ {
					// A checkpoint of this attempt that holds every key.
					waitFor(b, j.running, "a checkpoint after the load or restore", 30*time.Minute, func() bool {
						return len(j.rec.completedSince(since)) > 0
					})
					delay := time.Duration(rng.Int64N(int64(p.interval)))
					<-time.After(delay) // the failure point, not a wait for a condition
					j.rec.arm()
					waitFor(b, j.running, "the restored attempt's first batch", 10*time.Minute, func() bool {
						r, ok := j.rec.recoveryOf(int(f))
						return ok && !r.first.IsZero()
					})
					r, _ := j.rec.recoveryOf(int(f))
					st, _ := j.rec.statsOf(r.from)
					// Processing observed from outside too: the restored
					// operator tasks count records.
					waitFor(b, j.running, "records counted by the restored attempt", time.Minute, func() bool {
						for _, ts := range j.job.Stats() {
							if len(ts.Nodes) > 0 && ts.Nodes[0] == "op" && ts.RecordsIn > 0 {
								return true
							}
						}
						return false
					})
					b.Logf("%s failure %d (after %v): recovery %v = stop %v + restore %v + first batch %v; restored checkpoint %d of %.1f MiB",
						where, f+1, delay.Round(time.Millisecond), r.first.Sub(r.fault).Round(time.Millisecond),
						r.failed.Sub(r.fault).Round(time.Millisecond), r.restored.Sub(r.failed).Round(time.Millisecond),
						r.first.Sub(r.restored).Round(time.Millisecond), r.from, float64(st.Size)/(1<<20))
					total = append(total, ms(r.first.Sub(r.fault)))
					stop = append(stop, ms(r.failed.Sub(r.fault)))
					restore = append(restore, ms(r.restored.Sub(r.failed)))
					first = append(first, ms(r.first.Sub(r.restored)))
					restoredMiB = append(restoredMiB, float64(st.Size)/(1<<20))
					since = r.restored
				}
				if err := j.stop(); err != nil {
					b.Fatalf("job failed: %v", err)
				}
				// Every failure the timelines describe was an injected one.
				if f := j.job.Failures(); int64(len(f)) != failures {
					b.Fatalf("the job failed %d times, %d injected: %v", len(f), failures, f)
				}
			}
			b.StopTimer()
			b.ReportMetric(mean(restoredMiB), "state-MiB")
			b.ReportMetric(percentile(total, 50), "recovery-p50-ms")
			b.ReportMetric(percentile(total, 100), "recovery-max-ms")
			b.ReportMetric(percentile(stop, 50), "stop-p50-ms")
			b.ReportMetric(percentile(restore, 50), "restore-p50-ms")
			b.ReportMetric(percentile(first, 50), "first-p50-ms")
			b.ReportMetric(float64(len(total)), "failures")
			b.ReportMetric(0, "ns/op")
		})
	}
}

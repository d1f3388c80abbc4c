//go:build !wasip1

package main

import (
	"context"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/weirstream/weir/checkpoint"
	"github.com/weirstream/weir/checkpoint/miniotest"
	"github.com/weirstream/weir/runtime"
	"github.com/weirstream/weir/wasmhost"
)

// buildModule builds this folder's module into a temporary folder of tb.
func buildModule(tb testing.TB) string {
	tb.Helper()
	out := filepath.Join(tb.TempDir(), "ckpt.wasm")
	cmd := exec.Command("go", "build", "-trimpath", "-buildmode=c-shared", "-o", out, ".")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if o, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("building the ckpt module for wasip1: %v\n%s", err, o)
	}
	return out
}

// newLoader returns a module loader on a fresh Wasm runtime, closed when
// tb ends.
func newLoader(tb testing.TB) runtime.ModuleLoader {
	tb.Helper()
	rt, err := wasmhost.NewRuntime(context.Background(), wasmhost.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { rt.Close(context.Background()) })
	return runtime.WasmLoader(rt)
}

// errBenchDone is the cause a benchmark cancels a running job with.
var errBenchDone = errors.New("benchmark done")

// running is a job running in the background.
type running struct {
	job    *runtime.Job
	cancel context.CancelCauseFunc
	done   chan struct{} // closed when Run returned; err is then set
	err    error
}

// start runs job in the background; it is stopped when tb ends (create
// tb's temporary folders before, so that the job stops before they go).
func start(tb testing.TB, job *runtime.Job) *running {
	ctx, cancel := context.WithCancelCause(context.Background())
	r := &running{job: job, cancel: cancel, done: make(chan struct{})}
	go func() {
		r.err = job.Run(ctx)
		close(r.done)
	}()
	tb.Cleanup(func() { _ = r.stop() })
	return r
}

// stop cancels the job and waits for it; an error is a failure of the job
// itself, not the cancellation.
func (r *running) stop() error {
	r.cancel(errBenchDone)
	<-r.done
	if errors.Is(r.err, errBenchDone) {
		return nil
	}
	return r.err
}

// waitFor waits until cond holds, failing tb if the job ends first or
// timeout passes. cond is polled (every 2 ms): some conditions are
// counters with no notification.
func waitFor(tb testing.TB, r *running, what string, timeout time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-r.done:
			if cond() {
				return
			}
			tb.Fatalf("the job ended (%v) while waiting for %s", r.err, what)
		case <-deadline.C:
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		case <-tick.C:
		}
	}
}

// recorder collects a job's checkpoint stats and events and injects the
// failures of the recovery benchmark. Its methods are called from the
// job's goroutines.
type recorder struct {
	job atomic.Pointer[runtime.Job]

	mu      sync.Mutex
	stats   map[int64]checkpoint.Stats // completed checkpoints (not savepoints), by id
	faults  []recovery
	armed   bool   // fail the next batch of a task of faultOp
	faultOp string // node id whose tasks fail
}

// recovery is the timeline of one injected failure.
type recovery struct {
	fault    time.Time // the task returned the injected error
	failed   time.Time // EventFailed: every task of the attempt stopped
	restored time.Time // EventRestored: state restored, operators open
	first    time.Time // the restored attempt's first batch into faultOp
	from     int64     // the checkpoint restored
}

func newRecorder(faultOp string) *recorder {
	return &recorder{stats: map[int64]checkpoint.Stats{}, faultOp: faultOp}
}

var errInjected = errors.New("benchmark: injected task failure")

func (r *recorder) onEvent(e runtime.Event) {
	now := time.Now()
	var st checkpoint.Stats
	found := false
	if e.Kind == runtime.EventCheckpoint {
		if j := r.job.Load(); j != nil {
			for _, s := range j.History() {
				if s.ID == e.Checkpoint && s.Status == "completed" {
					st, found = s, true
				}
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if found {
		r.stats[st.ID] = st
	}
	if n := len(r.faults); n > 0 {
		f := &r.faults[n-1]
		switch e.Kind {
		case runtime.EventFailed:
			if f.failed.IsZero() {
				f.failed = now
			}
		case runtime.EventRestored:
			if f.restored.IsZero() {
				f.restored, f.from = now, e.Checkpoint
			}
		}
	}
}

// fault is Options.InjectFault: it fails the next batch of a faultOp task
// when armed, and notes the first batch of a restored attempt.
func (r *recorder) fault(task string) error {
	if !strings.HasPrefix(task, r.faultOp+"+") && !strings.HasPrefix(task, r.faultOp+"[") {
		return nil
	}
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.armed {
		r.armed = false
		r.faults = append(r.faults, recovery{fault: now})
		return errInjected
	}
	if n := len(r.faults); n > 0 {
		if f := &r.faults[n-1]; !f.restored.IsZero() && f.first.IsZero() {
			f.first = now
		}
	}
	return nil
}

func (r *recorder) arm() {
	r.mu.Lock()
	r.armed = true
	r.mu.Unlock()
}

// recoveryOf returns the timeline of failure n (0-based), once it was
// injected.
func (r *recorder) recoveryOf(n int) (recovery, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n >= len(r.faults) {
		return recovery{}, false
	}
	return r.faults[n], true
}

// completedSince returns the completed checkpoints triggered at or after
// t, in id order.
func (r *recorder) completedSince(t time.Time) []checkpoint.Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []checkpoint.Stats
	for _, s := range r.stats {
		if !s.TriggeredAt.Before(t) {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b checkpoint.Stats) int { return int(a.ID - b.ID) })
	return out
}

// statsOf returns checkpoint id's stats.
func (r *recorder) statsOf(id int64) (checkpoint.Stats, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.stats[id]
	return s, ok
}

// percentile is the nearest-rank p-th percentile of xs (p in (0, 100]):
// with fewer than 100 samples, p99 is the maximum.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	sum := 0.0
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// cpuTime is the CPU time (user + system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// envInt reads a positive integer from the environment, def if unset.
func envInt(tb testing.TB, name string, def int64) int64 {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		tb.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// startMinIO starts a MinIO server for tb (checkpoint/miniotest: the
// binary scripts/minio.sh builds, on 127.0.0.1, stopped when tb ends) and
// returns S3 storage in a fresh bucket. WEIR_SKIP_S3=1 skips tb.
func startMinIO(tb testing.TB) *checkpoint.S3Storage {
	tb.Helper()
	srv := miniotest.Start(tb)
	s, err := checkpoint.OpenS3(checkpoint.S3Config{Endpoint: srv.Endpoint, Bucket: srv.Bucket, Prefix: "bench",
		AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

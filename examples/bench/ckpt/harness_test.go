//go:build !wasip1

package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
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

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/weirstream/weir/checkpoint"
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

	mu       sync.Mutex
	stats    map[int64]checkpoint.Stats // completed checkpoints (not savepoints), by id
	events   []timedEvent
	faults   []recovery
	armed    bool   // fail the next batch of a task of faultTask
	faultOp  string // node id whose tasks fail
	failures int
}

type timedEvent struct {
	at time.Time
	e  runtime.Event
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
	r.events = append(r.events, timedEvent{now, e})
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
		r.failures++
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

// completedCount returns how many checkpoints completed.
func (r *recorder) completedCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.stats)
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

// MinIO credentials of the server startMinIO runs.
const (
	minioUser   = "weirbench"
	minioSecret = "weirbench-secret"
)

// startMinIO starts a MinIO server (the binary scripts/minio.sh builds)
// on 127.0.0.1 for tb, with a data folder in tb's temporary folder, and
// returns S3 storage in a fresh bucket. The server is stopped when tb
// ends. It fails without the binary (saying how to build it) unless
// WEIR_SKIP_S3=1, which skips.
func startMinIO(tb testing.TB) *checkpoint.S3Storage {
	tb.Helper()
	if os.Getenv("WEIR_SKIP_S3") == "1" {
		tb.Skip("WEIR_SKIP_S3=1: skipping the S3 benchmark")
	}
	bin := os.Getenv("WEIR_MINIO_BIN")
	if bin == "" {
		out, err := exec.Command("../../../scripts/minio.sh", "path").Output()
		if err != nil {
			tb.Fatalf("scripts/minio.sh path: %v", err)
		}
		bin = strings.TrimSpace(string(out))
	}
	if st, err := os.Stat(bin); err != nil || st.IsDir() {
		tb.Fatalf("MinIO server binary not found at %s: run scripts/minio.sh to build it, set WEIR_MINIO_BIN, or WEIR_SKIP_S3=1 to skip", bin)
	}
	root := tb.TempDir()
	port, err := freePort()
	if err != nil {
		tb.Fatal(err)
	}
	console, err := freePort()
	if err != nil {
		tb.Fatal(err)
	}
	endpoint := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	logPath := filepath.Join(root, "minio.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, "server", "--quiet", "--address", endpoint,
		"--console-address", net.JoinHostPort("127.0.0.1", strconv.Itoa(console)),
		"--certs-dir", filepath.Join(root, "certs"), filepath.Join(root, "data"))
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+minioUser, "MINIO_ROOT_PASSWORD="+minioSecret,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		tb.Fatalf("starting MinIO: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := sync.OnceFunc(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		t := time.NewTimer(10 * time.Second)
		defer t.Stop()
		select {
		case <-exited:
		case <-t.C:
			_ = cmd.Process.Kill()
			<-exited
		}
		logFile.Close()
		if ps := cmd.ProcessState; ps != nil {
			// The server shares the machine's cores with the job: say how
			// much of them it took.
			tb.Logf("MinIO used %v of CPU", (ps.UserTime() + ps.SystemTime()).Round(time.Millisecond))
		}
	})
	tb.Cleanup(stop) // after TempDir's, so it runs before the folder goes
	if err := waitReady(endpoint, exited); err != nil {
		stop()
		out, _ := os.ReadFile(logPath)
		tb.Fatalf("MinIO at %s: %v\n%s", endpoint, err, out)
	}
	client, err := minio.New(endpoint, &minio.Options{Creds: credentials.NewStaticV4(minioUser, minioSecret, "")})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const bucket = "weir-bench"
	if err := client.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
		tb.Fatalf("creating bucket %s: %v", bucket, err)
	}
	s, err := checkpoint.OpenS3(checkpoint.S3Config{Endpoint: endpoint, Bucket: bucket, Prefix: "bench",
		AccessKeyID: minioUser, SecretAccessKey: minioSecret})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// waitReady polls MinIO's readiness endpoint until it answers 200, the
// process exits, or a minute passes.
func waitReady(endpoint string, exited <-chan error) error {
	url := "http://" + endpoint + "/minio/health/ready"
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.NewTimer(time.Minute)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-exited:
			return fmt.Errorf("server exited before becoming ready: %v", err)
		case <-deadline.C:
			return fmt.Errorf("not ready at %s after a minute", url)
		case <-tick.C:
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

package examples_test

// Exactly-once fault tolerance end to end: real Wasm operators (windows,
// timers, keyed state), real connectors (file source, exactly-once file
// sink), real checkpoint storage, and failures injected at random points.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weirstream/weir/checkpoint"
	"github.com/weirstream/weir/checkpoint/miniotest"
	"github.com/weirstream/weir/connectors"
	"github.com/weirstream/weir/runtime"
	"github.com/weirstream/weir/runtime/runtimetest"
	"github.com/weirstream/weir/state"
)

// connectorsWithThrottle registers the standard connectors plus
// "throttled-file": the file source limited to per records per millisecond.
func connectorsWithThrottle(per int) runtime.Connectors {
	var c runtime.Connectors
	connectors.Register(&c)
	c.Sources["throttled-file"] = runtimetest.Throttle(c.Sources["file"], per, time.Millisecond)
	return c
}

// writeEvents writes n windowed-sum events over keys keys, in event-time
// order up to a jitter smaller than the job's out-of-orderness, so no
// record is late and the output does not depend on timing.
func writeEvents(t *testing.T, n, keys int) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 11))
	var b strings.Builder
	const start = 1_700_000_000_000
	for i := range n {
		ts := int64(start + i*5 - rng.IntN(1500))
		fmt.Fprintf(&b, `{"key":"k%d","amount":%d,"ts":%d}`+"\n", rng.IntN(keys), rng.IntN(1000), ts)
	}
	p := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

type crashRun struct {
	storageOpts       checkpoint.StorageOptions
	input, module     string
	parallelism       int
	backend           string
	mode              string
	chaos             *runtimetest.Chaos
	perMs             int
	storage, stateDir string
	out               string
}

const crashSpec = `
name: crash
modules: {ws: {path: %q}}
nodes:
  - id: events
    source: throttled-file
    parallelism: %d
    config: {path: %q, format: jsonl, timestampField: ts}
    watermarks: {outOfOrderness: 2s, interval: 0}
  - id: parse
    module: ws
    operator: parse
    parallelism: %d
    inputs: [events]
  - id: sum
    module: ws
    operator: sum
    parallelism: %d
    inputs: [{from: parse, partition: key}]
  - id: out
    sink: file
    parallelism: %d
    config: {path: %q, format: kv}
    inputs: [sum]
state: {backend: %s, dir: %q}
checkpoints: {interval: 25ms, mode: %s}
restart: {strategy: fixed, attempts: 1000, delay: 1ms}
`

// run runs the crash job and returns its committed output, sorted.
func (r crashRun) run(t *testing.T) []string {
	t.Helper()
	// Two source subtasks when the job is parallel: every sum task then
	// has two input channels and aligns barriers.
	srcP := min(r.parallelism, 2)
	spec, err := runtime.ParseSpec([]byte(fmt.Sprintf(crashSpec, r.module, srcP, r.input, srcP, r.parallelism, r.parallelism,
		r.out, r.backend, r.stateDir, r.mode)))
	if err != nil {
		t.Fatal(err)
	}
	job, _ := compileCheckpointed(t, spec, r.storage, r.storageOpts, r.perMs, r.chaos, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := job.Run(ctx); err != nil {
		t.Fatalf("job failed: %v", err)
	}
	return committed(t, r.out)
}

func committed(t *testing.T, dir string) []string {
	t.Helper()
	lines, err := connectors.ReadCommitted(dir)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return lines
}

func diffLines(got, want []string) string {
	count := map[string]int{}
	for _, l := range want {
		count[l]++
	}
	for _, l := range got {
		count[l]--
	}
	var missing, extra []string
	for l, n := range count {
		for ; n > 0; n-- {
			missing = append(missing, l)
		}
		for ; n < 0; n++ {
			extra = append(extra, l)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 5 {
		missing = append(missing[:5], "...")
	}
	if len(extra) > 5 {
		extra = append(extra[:5], "...")
	}
	return fmt.Sprintf("missing %v, extra %v", missing, extra)
}

// TestCrashRecoveryExactlyOnce kills tasks at random points at least 20
// times while a windowed job runs; the committed output of the
// exactly-once file sink must equal a failure-free run's, record for record.
func TestCrashRecoveryExactlyOnce(t *testing.T) {
	module := buildModule(t, "windowed-sum")
	input := writeEvents(t, 30000, 50)
	for _, backend := range []string{"memory", "pebble"} {
		for _, p := range []int{1, 4} {
			t.Run(fmt.Sprintf("%s/p%d", backend, p), func(t *testing.T) {
				base := crashRun{input: input, module: module, parallelism: p, backend: backend, mode: runtime.ModeExactlyOnce, perMs: 1 << 20}
				golden := base
				golden.storage, golden.stateDir, golden.out = t.TempDir(), t.TempDir(), t.TempDir()
				want := golden.run(t)
				if len(want) < 100 {
					t.Fatalf("the failure-free run produced only %d windows", len(want))
				}
				crashed := base
				crashed.perMs = 30
				crashed.chaos = runtimetest.NewChaos(uint64(p)*31+uint64(len(backend)), 25)
				crashed.storage, crashed.stateDir, crashed.out = t.TempDir(), t.TempDir(), t.TempDir()
				got := crashed.run(t)
				if crashed.chaos.Failures() < 20 {
					t.Fatalf("only %d failures were injected (want >= 20): the input ended too early", crashed.chaos.Failures())
				}
				if strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Fatalf("after %d failures the committed output differs from the failure-free run: %d vs %d lines; %s",
						crashed.chaos.Failures(), len(got), len(want), diffLines(got, want))
				}
				t.Logf("%d failures, %d restarts, %d windows identical", crashed.chaos.Failures(), crashed.chaos.Restarts(), len(got))
			})
		}
	}
}

// counterJob is the job of the at-least-once, rescaling and upgrade tests:
// file source (keyed by "key") -> counter (per-key count in value state,
// emits "key=n") -> exactly-once file sink.
const counterSpec = `
name: counter
modules: {c: {path: %q}}
nodes:
  - id: events
    source: throttled-file
    parallelism: %d
    config: {path: %q, format: jsonl, keyField: key}
  - id: count
    module: c
    operator: count
    inputs: [{from: events, partition: key}]
  - id: out
    sink: file
    config: {path: %q, format: value}
    inputs: [count]
parallelism: %d
state: {backend: %s, dir: %q}
checkpoints: {interval: %s, mode: %s}
restart: {strategy: fixed, attempts: 1000, delay: 1ms}
`

type counterRun struct {
	module, input, out, storage, stateDir string
	srcP, p                               int
	backend, interval, mode               string
	perMs                                 int
	chaos                                 *runtimetest.Chaos
	from                                  *runtime.RestoreFrom
	// stopAfter > 0: stop with a savepoint once the sources have read
	// that many records; the savepoint folder is returned.
	stopAfter int64
}

func (r counterRun) job(t *testing.T) (*runtime.Job, checkpoint.Storage) {
	t.Helper()
	spec, err := runtime.ParseSpec([]byte(fmt.Sprintf(counterSpec, r.module, r.srcP, r.input, r.out, r.p,
		r.backend, r.stateDir, r.interval, r.mode)))
	if err != nil {
		t.Fatal(err)
	}
	return compileCheckpointed(t, spec, r.storage, checkpoint.StorageOptions{}, r.perMs, r.chaos, r.from)
}

// compileCheckpointed compiles spec with checkpoint storage at uri, the
// throttled connectors, and chaos (if any) injecting failures.
func compileCheckpointed(t *testing.T, spec *runtime.JobSpec, uri string, so checkpoint.StorageOptions, perMs int,
	c *runtimetest.Chaos, from *runtime.RestoreFrom) (*runtime.Job, checkpoint.Storage) {
	t.Helper()
	store, err := checkpoint.OpenStorage(uri, so)
	if err != nil {
		t.Fatal(err)
	}
	opts := runtime.Options{
		Connectors: connectorsWithThrottle(perMs),
		LoadModule: runtime.WasmLoader(wasmRuntime(t)),
		Checkpoint: &runtime.CheckpointOptions{Storage: store, From: from},
	}
	if c != nil {
		opts.OnEvent = c.Event
		opts.InjectFault = c.Fault
	}
	job, err := runtime.Compile(context.Background(), spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	return job, store
}

// run runs the job (to its end, or until stopAfter) and returns the
// savepoint folder when it stopped with one.
func (r counterRun) run(t *testing.T) (runErr error, savepoint *runtime.RestoreFrom) {
	t.Helper()
	job, store := r.job(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- job.Run(ctx) }()
	if r.stopAfter == 0 {
		return <-done, nil
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var read int64
		for _, s := range job.Stats() {
			if s.Nodes[0] == "events" {
				read += s.RecordsIn
			}
		}
		if read >= r.stopAfter {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the job ended (%v) before reading %d records", err, r.stopAfter)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job did not read %d records in time", r.stopAfter)
		}
		runtimeGosched()
	}
	m, dir, err := job.StopWithSavepoint(ctx, "")
	if err != nil {
		t.Fatalf("stop with savepoint: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the job did not stop cleanly after its savepoint: %v", err)
	}
	if !m.Savepoint {
		t.Fatal("metadata does not say savepoint")
	}
	// The savepoint is self-contained: copy it elsewhere and restore
	// from the copy.
	local := store.(*checkpoint.LocalStorage)
	copyDir := filepath.Join(t.TempDir(), "savepoint-copy")
	if err := os.CopyFS(copyDir, os.DirFS(filepath.Join(local.Root(), filepath.FromSlash(dir)))); err != nil {
		t.Fatal(err)
	}
	sp, err := checkpoint.OpenStorage(copyDir, checkpoint.StorageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return nil, &runtime.RestoreFrom{Storage: sp}
}

func runtimeGosched() { time.Sleep(2 * time.Millisecond) }

// writeKeyed writes n records {"key": "k<i % keys>"} and returns the path
// and the expected output of the counter: every "k=n" once.
func writeKeyed(t *testing.T, n, keys int) (string, []string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 5))
	var b strings.Builder
	counts := map[string]int{}
	var want []string
	for range n {
		k := fmt.Sprintf("k%d", rng.IntN(keys))
		counts[k]++
		fmt.Fprintf(&b, `{"key":%q}`+"\n", k)
		want = append(want, fmt.Sprintf("%s=%d", k, counts[k]))
	}
	p := filepath.Join(t.TempDir(), "keys.jsonl")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	sort.Strings(want)
	return p, want
}

// TestCrashRecoveryAtLeastOnce: without alignment, failures lose nothing;
// records after a barrier on a fast channel may be counted twice.
func TestCrashRecoveryAtLeastOnce(t *testing.T) {
	input, want := writeKeyed(t, 30000, 40)
	r := counterRun{module: buildModule(t, "testdata/counter"), input: input, out: t.TempDir(), storage: t.TempDir(),
		stateDir: t.TempDir(), srcP: 2, p: 3, backend: "memory", interval: "25ms", mode: runtime.ModeAtLeastOnce,
		perMs: 30, chaos: runtimetest.NewChaos(99, 25)}
	if err, _ := r.run(t); err != nil {
		t.Fatal(err)
	}
	got := committed(t, r.out)
	if r.chaos.Failures() < 20 {
		t.Fatalf("only %d failures injected", r.chaos.Failures())
	}
	have := map[string]int{}
	for _, l := range got {
		have[l]++
	}
	for _, l := range want {
		if have[l] == 0 {
			t.Fatalf("record %s lost after %d failures", l, r.chaos.Failures())
		}
	}
	t.Logf("%d failures; %d output records for %d inputs: %d duplicates (allowed at least once)",
		r.chaos.Failures(), len(got), len(want), len(got)-len(want))
}

// TestRescaleThroughSavepoints runs 2 -> 3 -> 1 through stop-with-savepoint
// (restoring each time from a copy of the savepoint) and must produce the
// output of a run without rescaling: every key's count continues.
func TestRescaleThroughSavepoints(t *testing.T) {
	const n = 24000
	input, want := writeKeyed(t, n, 60)
	module := buildModule(t, "testdata/counter")
	for _, backend := range []string{"memory", "pebble"} {
		t.Run(backend, func(t *testing.T) {
			out := t.TempDir()
			base := counterRun{module: module, input: input, out: out, storage: t.TempDir(), stateDir: t.TempDir(),
				srcP: 2, backend: backend, interval: "0s", mode: runtime.ModeExactlyOnce, perMs: 20}
			var from *runtime.RestoreFrom
			for i, p := range []int{2, 3, 1} {
				r := base
				r.p, r.from = p, from
				if i < 2 {
					r.stopAfter = n / 3 // records read by this run
				}
				err, sp := r.run(t)
				if err != nil {
					t.Fatalf("run at parallelism %d: %v", p, err)
				}
				from = sp
			}
			got := committed(t, out)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("rescaled output differs: %d vs %d lines; %s", len(got), len(want), diffLines(got, want))
			}
		})
	}
}

// TestModuleUpgradeThroughSavepoint: a compatible new version keeps every
// key's state; an incompatible one fails with a clear error naming the
// state; dropping state needs allowNonRestoredState.
func TestModuleUpgradeThroughSavepoint(t *testing.T) {
	const n = 12000
	input, want := writeKeyed(t, n, 30)
	out := t.TempDir()
	base := counterRun{input: input, out: out, storage: t.TempDir(), stateDir: t.TempDir(),
		srcP: 1, p: 2, backend: "pebble", interval: "0s", mode: runtime.ModeExactlyOnce, perMs: 20}
	v1 := base
	v1.module, v1.stopAfter = buildModuleTags(t, "testdata/counter", ""), n/2
	_, sp := v1.run(t)

	bad := []struct {
		tags, want string
	}{
		{"mapkind", `"count"`},
		{"renamed", `"count" of node "count"`},
	}
	for _, b := range bad {
		r := base
		r.module, r.from, r.out = buildModuleTags(t, "testdata/counter", b.tags), sp, t.TempDir()
		err, _ := r.run(t)
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Fatalf("upgrade to %s: got %v, want an error naming %s", b.tags, err, b.want)
		}
		var failed *runtime.JobFailedError
		if errors.As(err, &failed) {
			t.Fatalf("upgrade to %s restarted %d times: an incompatible savepoint must fail at once", b.tags, len(failed.History))
		}
	}
	// Dropping is allowed on request.
	r := base
	r.module, r.out = buildModuleTags(t, "testdata/counter", "renamed"), t.TempDir()
	r.from = &runtime.RestoreFrom{Storage: sp.Storage, Dir: sp.Dir, AllowNonRestoredState: true}
	if err, _ := r.run(t); err != nil {
		t.Fatalf("renamed with allowNonRestoredState: %v", err)
	}

	v2 := base
	v2.module, v2.from = buildModuleTags(t, "testdata/counter", "v2"), sp
	if err, _ := v2.run(t); err != nil {
		t.Fatal(err)
	}
	got := committed(t, out)
	var plain []string
	upgraded := 0
	for _, l := range got {
		if s, ok := strings.CutSuffix(l, " (v2)"); ok {
			upgraded++
			l = s
		}
		plain = append(plain, l)
	}
	sort.Strings(plain)
	if strings.Join(plain, "\n") != strings.Join(want, "\n") {
		t.Fatalf("upgraded output differs from a single v1 run: %s", diffLines(plain, want))
	}
	if upgraded == 0 || upgraded == len(got) {
		t.Fatalf("%d of %d records came from v2", upgraded, len(got))
	}
}

// TestCrashRecoveryOnS3 checkpoints to a real MinIO server (incremental
// Pebble checkpoints, shared files) and recovers from it.
func TestCrashRecoveryOnS3(t *testing.T) {
	srv := miniotest.Start(t)
	module := buildModule(t, "windowed-sum")
	input := writeEvents(t, 15000, 50)
	base := crashRun{input: input, module: module, parallelism: 2, backend: "pebble", mode: runtime.ModeExactlyOnce, perMs: 1 << 20}
	golden := base
	golden.storage, golden.stateDir, golden.out = t.TempDir(), t.TempDir(), t.TempDir()
	want := golden.run(t)
	crashed := base
	crashed.perMs = 30
	crashed.chaos = runtimetest.NewChaos(5, 8)
	crashed.storage = "s3://" + srv.Bucket + "/weir?endpoint=" + srv.Endpoint + "&secure=false"
	crashed.storageOpts = checkpoint.StorageOptions{AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey}
	crashed.stateDir, crashed.out = t.TempDir(), t.TempDir()
	got := crashed.run(t)
	if crashed.chaos.Failures() < 5 {
		t.Fatalf("only %d failures injected", crashed.chaos.Failures())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("output after recovering from S3 differs: %s", diffLines(got, want))
	}
	// Checkpoints and shared files are under the tenant and job prefix.
	store, err := checkpoint.OpenStorage(crashed.storage, crashed.storageOpts)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := store.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	shared := 0
	for _, o := range objs {
		if !strings.HasPrefix(o.Name, "tenants/default/jobs/crash/") {
			t.Fatalf("object %s outside the job's prefix", o.Name)
		}
		if strings.Contains(o.Name, "/shared/") {
			shared++
		}
	}
	if shared == 0 {
		t.Fatal("no shared (incremental) files in storage")
	}
}

// TestDamagedCheckpointFallsBack: a process dies; on resume its newest
// checkpoint is damaged (a state file corrupted, another one's file
// missing): recovery says so and starts from the newest intact one.
func TestDamagedCheckpointFallsBack(t *testing.T) {
	input, want := writeKeyed(t, 20000, 40)
	for _, damage := range []string{"corrupt", "missing", "all", "pebble-manifest"} {
		t.Run(damage, func(t *testing.T) {
			backend := "memory"
			if damage == "pebble-manifest" {
				backend = "pebble"
			}
			r := counterRun{module: buildModule(t, "testdata/counter"), input: input, out: t.TempDir(), storage: t.TempDir(),
				stateDir: t.TempDir(), srcP: 1, p: 2, backend: backend, interval: "20ms", mode: runtime.ModeExactlyOnce, perMs: 10}
			job, store := r.job(t)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- job.Run(ctx) }()
			deadline := time.Now().Add(time.Minute)
			for completed(job) < 4 {
				if time.Now().After(deadline) {
					t.Fatal("no checkpoints")
				}
				runtimeGosched()
			}
			cancel() // the process dies
			<-done
			root := store.(*checkpoint.LocalStorage).Root()
			chk, _ := filepath.Glob(filepath.Join(root, "tenants/default/jobs/counter/checkpoints/chk-*/_metadata"))
			sort.Slice(chk, func(i, j int) bool { return ckID(chk[i]) < ckID(chk[j]) })
			if len(chk) < 2 {
				t.Fatalf("retained checkpoints: %v", chk)
			}
			newest := filepath.Dir(chk[len(chk)-1])
			pattern := "state"
			if backend == "pebble" {
				pattern = "MANIFEST-*" // a private file of the native snapshot
			}
			files, _ := filepath.Glob(filepath.Join(newest, "*", pattern))
			if len(files) == 0 {
				t.Fatalf("no state files in %s", newest)
			}
			if damage == "all" {
				// Every retained checkpoint damaged: starting afresh would
				// repeat committed output, so the job must fail and say why.
				all, _ := filepath.Glob(filepath.Join(root, "tenants/default/jobs/counter/checkpoints/chk-*/*/state"))
				for _, f := range all {
					if err := os.Remove(f); err != nil {
						t.Fatal(err)
					}
				}
				spec, _ := runtime.ParseSpec([]byte(fmt.Sprintf(counterSpec, r.module, r.srcP, r.input, r.out, r.p, r.backend, r.stateDir, r.interval, r.mode)))
				job, err := runtime.Compile(context.Background(), spec, runtime.Options{
					Connectors: connectorsWithThrottle(1 << 20), LoadModule: runtime.WasmLoader(wasmRuntime(t)),
					Checkpoint: &runtime.CheckpointOptions{Storage: store, Resume: true},
				})
				if err != nil {
					t.Fatal(err)
				}
				err = job.Run(context.Background())
				if err == nil || !strings.Contains(err.Error(), "every retained checkpoint is damaged") {
					t.Fatalf("resume with every checkpoint damaged: %v", err)
				}
				return
			}
			switch damage {
			case "corrupt", "pebble-manifest":
				b, err := os.ReadFile(files[0])
				if err != nil {
					t.Fatal(err)
				}
				b[len(b)/2] ^= 0x40
				if err := os.WriteFile(files[0], b, 0o644); err != nil {
					t.Fatal(err)
				}
			case "missing":
				if err := os.Remove(files[0]); err != nil {
					t.Fatal(err)
				}
			}
			var mu sync.Mutex
			var skipped, restored []runtime.Event
			spec, _ := runtime.ParseSpec([]byte(fmt.Sprintf(counterSpec, r.module, r.srcP, r.input, r.out, r.p, r.backend, r.stateDir, r.interval, r.mode)))
			job3, err := runtime.Compile(context.Background(), spec, runtime.Options{
				Connectors: connectorsWithThrottle(1 << 20),
				LoadModule: runtime.WasmLoader(wasmRuntime(t)),
				Checkpoint: &runtime.CheckpointOptions{Storage: store, Resume: true},
				OnEvent: func(e runtime.Event) {
					mu.Lock()
					defer mu.Unlock()
					switch e.Kind {
					case runtime.EventCheckpointSkipped:
						skipped = append(skipped, e)
					case runtime.EventRestored:
						restored = append(restored, e)
					}
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := job3.Run(context.Background()); err != nil {
				t.Fatalf("resume: %v", err)
			}
			if len(skipped) == 0 || skipped[0].Checkpoint != ckID(chk[len(chk)-1]) || !errors.Is(skipped[0].Err, checkpoint.ErrCorrupt) && !errors.Is(skipped[0].Err, checkpoint.ErrNotFound) && !errors.Is(skipped[0].Err, state.ErrCorrupt) {
				t.Fatalf("damaged checkpoint %s not reported: skipped %+v", newest, skipped)
			}
			if !strings.Contains(skipped[0].Err.Error(), filepath.Base(files[0])) && !strings.Contains(skipped[0].Err.Error(), "state") {
				t.Fatalf("the error does not name the damaged file: %v", skipped[0].Err)
			}
			if len(restored) == 0 || restored[0].Checkpoint >= skipped[0].Checkpoint {
				t.Fatalf("restored from %+v, want an older checkpoint than %d", restored, skipped[0].Checkpoint)
			}
			// Output committed after the restored checkpoint by the dead
			// process is replayed (the price of falling back): nothing is
			// lost.
			have := map[string]bool{}
			for _, l := range committed(t, r.out) {
				have[l] = true
			}
			for _, l := range want {
				if !have[l] {
					t.Fatalf("record %s lost", l)
				}
			}
		})
	}
}

func completed(j *runtime.Job) int {
	n := 0
	for _, s := range j.History() {
		if s.Status == "completed" {
			n++
		}
	}
	return n
}

func ckID(metadataPath string) int64 {
	var id int64
	fmt.Sscanf(filepath.Base(filepath.Dir(metadataPath)), "chk-%d", &id)
	return id
}

// TestStartFromRetainedCheckpoint: a process dies; a new job starts from its
// newest retained (incremental, native Pebble) checkpoint at another
// parallelism and on the memory backend, which re-exports the Pebble files
// through the canonical stream. Nothing committed is repeated or lost.
func TestStartFromRetainedCheckpoint(t *testing.T) {
	input, want := writeKeyed(t, 20000, 40)
	r := counterRun{module: buildModule(t, "testdata/counter"), input: input, out: t.TempDir(), storage: t.TempDir(),
		stateDir: t.TempDir(), srcP: 1, p: 2, backend: "pebble", interval: "20ms", mode: runtime.ModeExactlyOnce, perMs: 10}
	job, store := r.job(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- job.Run(ctx) }()
	deadline := time.Now().Add(time.Minute)
	for completed(job) < 3 {
		if time.Now().After(deadline) {
			t.Fatal("no checkpoints")
		}
		runtimeGosched()
	}
	cancel() // the process dies
	<-done
	newest := job.History()
	var id int64
	for _, s := range newest {
		if s.Status == "completed" && s.ID > id {
			id = s.ID
		}
	}
	jobRoot := filepath.Join(store.(*checkpoint.LocalStorage).Root(), "tenants/default/jobs/counter")
	from, err := checkpoint.OpenStorage(jobRoot, checkpoint.StorageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r2 := r
	r2.p, r2.backend, r2.perMs, r2.storage = 3, "memory", 1<<20, t.TempDir()
	r2.from = &runtime.RestoreFrom{Storage: from, Dir: fmt.Sprintf("checkpoints/chk-%d", id)}
	if err, _ := r2.run(t); err != nil {
		t.Fatalf("start from checkpoint %d: %v", id, err)
	}
	got := committed(t, r.out)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("output differs: %s", diffLines(got, want))
	}
}

// savepointThenFail fails one task right after the first savepoint that
// does not stop the job has completed, before a later checkpoint can.
type savepointThenFail struct {
	mu         sync.Mutex
	checkpoint bool // a checkpoint completed: there is something to restore
	armed      bool
	failed     bool
}

func (s *savepointThenFail) event(e runtime.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch e.Kind {
	case runtime.EventCheckpoint:
		s.checkpoint = true
	case runtime.EventSavepoint:
		if !s.failed {
			s.armed = true
		}
	}
}

func (s *savepointThenFail) fault(string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.armed {
		s.armed, s.failed = false, true
		return runtimetest.ErrKilled
	}
	return nil
}

// TestIntermediateSavepointCommitsNothing: a savepoint that does not stop
// the job must not commit the exactly-once sink's output, because a failure
// after it restores from the checkpoint before it and replays that output
// (Flink does not commit on such savepoints either). The output must still
// be every record's count exactly once.
func TestIntermediateSavepointCommitsNothing(t *testing.T) {
	const n = 12000
	input, want := writeKeyed(t, n, 40)
	module := buildModule(t, "testdata/counter")
	r := counterRun{module: module, input: input, out: t.TempDir(), storage: t.TempDir(), stateDir: t.TempDir(),
		srcP: 1, p: 2, backend: "memory", interval: "200ms", mode: runtime.ModeExactlyOnce, perMs: 4}
	spec, err := runtime.ParseSpec([]byte(fmt.Sprintf(counterSpec, r.module, r.srcP, r.input, r.out, r.p,
		r.backend, r.stateDir, r.interval, r.mode)))
	if err != nil {
		t.Fatal(err)
	}
	sf := &savepointThenFail{}
	store, err := checkpoint.OpenStorage(r.storage, checkpoint.StorageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	job, err := runtime.Compile(context.Background(), spec, runtime.Options{
		Connectors:  connectorsWithThrottle(r.perMs),
		LoadModule:  runtime.WasmLoader(wasmRuntime(t)),
		Checkpoint:  &runtime.CheckpointOptions{Storage: store},
		OnEvent:     sf.event,
		InjectFault: sf.fault,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- job.Run(ctx) }()
	// Wait for a completed checkpoint, then take a savepoint.
	deadline := time.Now().Add(time.Minute)
	for {
		sf.mu.Lock()
		ok := sf.checkpoint
		sf.mu.Unlock()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint completed within a minute")
		}
		runtimeGosched()
	}
	if _, _, err := job.Savepoint(ctx, ""); err != nil {
		t.Fatalf("savepoint: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("job: %v", err)
	}
	sf.mu.Lock()
	failed := sf.failed
	sf.mu.Unlock()
	if !failed {
		t.Fatal("the injected failure after the savepoint never fired")
	}
	got := committed(t, r.out)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("output after a savepoint and a failure differs: %d vs %d lines; %s", len(got), len(want), diffLines(got, want))
	}
}

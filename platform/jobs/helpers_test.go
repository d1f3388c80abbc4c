package jobs

// Test wiring: a real metadata store, real local checkpoint storage, a real
// module registry and wazero runtime, and real Wasm modules built from
// examples/testdata with the Go toolchain.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weirstream/weir/checkpoint"
	"github.com/weirstream/weir/connectors"
	"github.com/weirstream/weir/platform/meta"
	"github.com/weirstream/weir/platform/registry"
	"github.com/weirstream/weir/tenants"
	"github.com/weirstream/weir/wasmhost"
	"github.com/weirstream/weir/wasmhost/wasmtest"
)

// The modules of the tests: name -> example package and build tags.
var moduleSources = map[string]wasmtest.Source{
	"counter-v1":      {Pkg: "testdata/counter"},
	"counter-v2":      {Pkg: "testdata/counter", Tags: "v2"},
	"counter-mapkind": {Pkg: "testdata/counter", Tags: "mapkind"},
	"hostile":         {Pkg: "testdata/hostile"},
	"windowed-sum":    {Pkg: "windowed-sum"},
}

// Built modules and the wazero runtime are shared by every test of the
// binary: building and compiling them once keeps the suite fast.
var (
	setupOnce sync.Once
	builtWasm map[string][]byte
	sharedRT  *wasmhost.Runtime
	warm      []*wasmhost.Module // compiled once, kept for the binary's life
	setupErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	ctx := context.Background()
	for _, w := range warm {
		w.Close(ctx)
	}
	if sharedRT != nil {
		sharedRT.Close(ctx)
	}
	os.Exit(code)
}

// setup builds the test modules and compiles each once in the shared
// runtime. Under the race detector wazero takes some 10 s of CPU for one
// of these modules; compiled once up front, every registry of the tests
// finds it in the runtime's compilation cache (tests compiling it at the
// same time would each compile it).
func setup(t testing.TB) {
	t.Helper()
	setupOnce.Do(func() {
		if builtWasm, setupErr = wasmtest.Modules(moduleSources); setupErr != nil {
			return
		}
		ctx := context.Background()
		if sharedRT, setupErr = wasmhost.NewRuntime(ctx, wasmhost.Config{}); setupErr != nil {
			return
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for name, b := range builtWasm {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m, err := sharedRT.Compile(ctx, b)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					setupErr = fmt.Errorf("compiling test module %s: %w", name, err)
					return
				}
				warm = append(warm, m)
			}()
		}
		wg.Wait()
	})
	if setupErr != nil {
		t.Fatal(setupErr)
	}
}

// wasm returns the bytes of a test module.
func wasm(t testing.TB, name string) []byte {
	t.Helper()
	setup(t)
	b, ok := builtWasm[name]
	if !ok {
		t.Fatalf("no test module %q", name)
	}
	return b
}

func wasmRuntime(t testing.TB) *wasmhost.Runtime {
	t.Helper()
	setup(t)
	return sharedRT
}

// env is a Manager with everything it runs on.
type env struct {
	t     *testing.T
	dir   string
	meta  *meta.Store
	store *checkpoint.LocalStorage
	reg   *registry.Registry
	cfg   Config
	m     *Manager

	qmu    sync.Mutex
	quotas map[string]tenants.Quotas
}

// newEnv starts a Manager on a fresh store; tweak adjusts its Config.
func newEnv(t *testing.T, tweak func(*Config)) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), quotas: map[string]tenants.Quotas{}}
	var err error
	if e.meta, err = meta.Open(filepath.Join(e.dir, "meta")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.meta.Close() })
	if e.store, err = checkpoint.OpenLocal(filepath.Join(e.dir, "storage"), nil); err != nil {
		t.Fatal(err)
	}
	e.reg = registry.New(e.meta, e.store, wasmRuntime(t), nil, nil)
	t.Cleanup(func() { e.reg.Close(context.Background()) })
	e.cfg = Config{
		DataDir: filepath.Join(e.dir, "data"),
		Storage: e.store,
		Meta:    e.meta,
		Resolve: func(tenant, ref string) (PinnedModule, error) {
			v, err := e.reg.Resolve(tenant, ref)
			if err != nil {
				return PinnedModule{}, err
			}
			return PinnedModule{Ref: ref, Pinned: v.Ref(), Digest: v.Digest}, nil
		},
		Loader:       e.reg.Loader,
		Quotas:       e.quotasOf,
		UpgradeGrace: 300 * time.Millisecond,
	}
	if tweak != nil {
		tweak(&e.cfg)
	}
	e.start()
	return e
}

func (e *env) start() {
	e.t.Helper()
	m, err := New(e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.m = m
	e.t.Cleanup(m.Close) // Close twice is harmless
}

// restart closes the Manager and opens a new one on the same store.
func (e *env) restart() {
	e.t.Helper()
	e.m.Close()
	e.start()
}

func (e *env) quotasOf(tenant string) (tenants.Quotas, error) {
	e.qmu.Lock()
	defer e.qmu.Unlock()
	if q, ok := e.quotas[tenant]; ok {
		return q, nil
	}
	return tenants.DefaultQuotas(), nil
}

// setQuotas changes a tenant's quotas from the defaults.
func (e *env) setQuotas(tenant string, change func(*tenants.Quotas)) {
	q := tenants.DefaultQuotas()
	change(&q)
	e.qmu.Lock()
	e.quotas[tenant] = q
	e.qmu.Unlock()
}

// upload stores a test module as the next version of name.
func (e *env) upload(tenant, name, module string) registry.Version {
	e.t.Helper()
	v, _, err := e.reg.Upload(context.Background(), tenant, name, wasm(e.t, module), registry.Limits{})
	if err != nil {
		e.t.Fatalf("uploading %s as %s: %v", module, name, err)
	}
	return v
}

// counters uploads counter v1, v2 and mapkind as counter@1, @2, @3.
func (e *env) counters(tenant string) (v1, v2, mapkind registry.Version) {
	return e.upload(tenant, "counter", "counter-v1"), e.upload(tenant, "counter", "counter-v2"),
		e.upload(tenant, "counter", "counter-mapkind")
}

func (e *env) deploy(tenant, spec string) Job {
	e.t.Helper()
	j, err := e.m.Deploy(tenant, DeployRequest{Spec: []byte(spec)})
	if err != nil {
		e.t.Fatalf("deploy: %v", err)
	}
	return j
}

// waitTimeout bounds every wait of the tests.
const waitTimeout = 30 * time.Second

// waitFor polls cond until it holds, failing the test after waitTimeout.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
		}
		time.Sleep(5 * time.Millisecond) // a poll interval, not a wait for an event
	}
}

// waitState waits until the job is in one of states.
func (e *env) waitState(tenant, id string, states ...State) Detail {
	e.t.Helper()
	var d Detail
	waitFor(e.t, fmt.Sprintf("job %s to be %v", id, states), func() bool {
		var err error
		if d, err = e.m.Get(tenant, id); err != nil {
			e.t.Fatal(err)
		}
		for _, s := range states {
			if d.State == s {
				return true
			}
		}
		if d.State.terminal() {
			e.t.Fatalf("job %s is %s (error %q), want %v", id, d.State, d.Error, states)
		}
		return false
	})
	return d
}

// waitOp waits until an operation is done.
func (e *env) waitOp(tenant, id string) Operation {
	e.t.Helper()
	var op Operation
	waitFor(e.t, "operation "+id, func() bool {
		var err error
		if op, err = e.m.Operation(tenant, id); err != nil {
			e.t.Fatal(err)
		}
		return op.Done
	})
	return op
}

// waitOutput waits until the job's records reached its sink (records out
// of the last vertex), so that an operation acts on a job with state.
func (e *env) waitRecords(tenant, id string, n int64) {
	e.t.Helper()
	waitFor(e.t, fmt.Sprintf("%d records through job %s", n, id), func() bool {
		d, err := e.m.Get(tenant, id)
		if err != nil {
			e.t.Fatal(err)
		}
		var in int64
		for _, v := range d.Vertices {
			for _, node := range v.Nodes {
				if node == "count" || node == "op" {
					in += v.RecordsIn
				}
			}
		}
		return in >= n
	})
}

// committed reads a file sink's committed output in the tenant's area.
func (e *env) committed(tenant, path string) []string {
	e.t.Helper()
	lines, err := connectors.ReadCommitted(filepath.Join(e.m.FilesDir(tenant), path))
	if err != nil {
		e.t.Fatal(err)
	}
	return lines
}

// metaKeys lists the metadata keys with a prefix.
func (e *env) metaKeys(prefix string) []string {
	e.t.Helper()
	var keys []string
	if err := e.meta.Scan(prefix, func(k string, _ []byte) error { keys = append(keys, k); return nil }); err != nil {
		e.t.Fatal(err)
	}
	return keys
}

// counts checks the counter module's output: for every key the counts
// 1..n appear exactly once (in any order, a rescale moves keys between
// subtasks), and the keys' totals are those of a datagen prefix of
// sum(n) records over keys "0".."keys-1" (record i has key i % keys): no
// record was lost or counted twice. It returns the total and the lines
// written by v2.
func counts(t testing.TB, lines []string, keys int) (total, v2 int) {
	t.Helper()
	seen := map[string][]int{}
	for _, l := range lines {
		if s, ok := strings.CutSuffix(l, " (v2)"); ok {
			v2++
			l = s
		}
		k, n, ok := strings.Cut(l, "=")
		c, err := strconv.Atoi(n)
		if !ok || err != nil {
			t.Fatalf("output line %q is not key=count", l)
		}
		seen[k] = append(seen[k], c)
	}
	for k, ns := range seen {
		sort.Ints(ns)
		for i, n := range ns {
			if n != i+1 {
				t.Fatalf("key %s: counts %v are not 1..%d exactly once", k, abbreviate(ns), len(ns))
			}
		}
		total += len(ns)
	}
	for k := range keys {
		want := total / keys
		if k < total%keys {
			want++
		}
		if got := len(seen[strconv.Itoa(k)]); got != want {
			t.Fatalf("key %d counted %d records, want %d of %d (records lost or repeated)", k, got, want, total)
		}
	}
	return total, v2
}

func abbreviate(ns []int) string {
	if len(ns) <= 20 {
		return fmt.Sprint(ns)
	}
	return fmt.Sprint(ns[:10], "...", ns[len(ns)-10:])
}

// isQuota reports whether err is a *tenants.QuotaError of the quota.
func isQuota(err error, quota string) bool {
	var qe *tenants.QuotaError
	return errors.As(err, &qe) && qe.Quota == quota
}

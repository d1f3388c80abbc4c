package registry

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weirstream/weir/checkpoint"
	"github.com/weirstream/weir/platform/meta"
	"github.com/weirstream/weir/wasmhost"
)

// Real modules: the examples, built with the Go toolchain once per test
// binary, and one wazero runtime for every test, as in a coordinator.
var (
	buildMu  sync.Mutex
	built    = map[string][]byte{}
	buildDir string

	rtOnce sync.Once
	rt     *wasmhost.Runtime
	rtErr  error
)

// exampleWasm returns the bytes of examples/<name> built for wasip1.
func exampleWasm(t testing.TB, name string) []byte {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if b, ok := built[name]; ok {
		return b
	}
	if buildDir == "" {
		d, err := os.MkdirTemp("", "weir-registry-")
		if err != nil {
			t.Fatal(err)
		}
		buildDir = d
	}
	out := filepath.Join(buildDir, name+".wasm")
	cmd := exec.Command("go", "build", "-trimpath", "-buildmode=c-shared", "-o", out, "./examples/"+name)
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building examples/%s for wasip1: %v\n%s", name, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	built[name] = b
	return b
}

func wordcount(t testing.TB) []byte   { return exampleWasm(t, "wordcount") }
func windowedSum(t testing.TB) []byte { return exampleWasm(t, "windowed-sum") }

// variant returns wasm with a custom section appended: other bytes (another
// digest), the same valid module.
func variant(wasm []byte, i int) []byte {
	payload := fmt.Appendf(nil, "%d", i)
	name := "weir-test"
	body := append([]byte{byte(len(name))}, name...)
	body = append(body, payload...)
	out := append([]byte(nil), wasm...)
	out = append(out, 0, byte(len(body))) // custom section; len < 128
	return append(out, body...)
}

func wasmRuntime(t testing.TB) *wasmhost.Runtime {
	t.Helper()
	rtOnce.Do(func() {
		rt, rtErr = wasmhost.NewRuntime(context.Background(), wasmhost.Config{CacheDir: testCacheDir()})
	})
	if rtErr != nil {
		t.Fatal(rtErr)
	}
	return rt
}

// testCacheDir is an on-disk compilation cache shared by test runs (as in
// wasmhost's tests), so that only the first run pays for compiling the Go
// guests, which takes seconds under -race. Keyed by the wazero version of
// go.mod, because a test binary's wazero cannot tell its own version.
func testCacheDir() string {
	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(gomod), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "github.com/tetratelabs/wazero" {
			dir, err := os.UserCacheDir()
			if err != nil {
				return ""
			}
			return filepath.Join(dir, "weir-test", "wazero-"+f[1])
		}
	}
	return ""
}

func TestMain(m *testing.M) {
	code := m.Run()
	if rt != nil {
		if err := rt.Close(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "closing the runtime:", err)
			code = 1
		}
	}
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// fixture is a registry over a real Pebble metadata store and real local
// storage, in temporary directories.
type fixture struct {
	t       testing.TB
	metaDir string
	store   *meta.Store
	objects *checkpoint.LocalStorage
	reg     *Registry
	now     time.Time
}

var epoch = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{t: t, metaDir: t.TempDir(), now: epoch}
	objects, err := checkpoint.OpenLocal(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	f.objects = objects
	f.open()
	t.Cleanup(func() {
		if err := f.reg.Close(context.Background()); err != nil {
			t.Errorf("Registry.Close: %v", err)
		}
		if err := f.store.Close(); err != nil {
			t.Errorf("meta.Store.Close: %v", err)
		}
	})
	return f
}

func (f *fixture) open() {
	store, err := meta.Open(f.metaDir)
	if err != nil {
		f.t.Fatal(err)
	}
	f.store = store
	f.reg = New(store, f.objects, wasmRuntime(f.t), func() time.Time { return f.now }, nil)
}

// reopen closes the registry and the store and opens both again, as a
// restarted process would.
func (f *fixture) reopen() {
	f.t.Helper()
	if err := f.reg.Close(context.Background()); err != nil {
		f.t.Fatal(err)
	}
	if err := f.store.Close(); err != nil {
		f.t.Fatal(err)
	}
	f.open()
}

func (f *fixture) upload(tenant, name string, wasm []byte) Version {
	f.t.Helper()
	v, created, err := f.reg.Upload(context.Background(), tenant, name, wasm, Limits{})
	if err != nil {
		f.t.Fatalf("Upload(%s, %s): %v", tenant, name, err)
	}
	if !created {
		f.t.Fatalf("Upload(%s, %s): created = false for new bytes", tenant, name)
	}
	return v
}

// metaKeys lists every key of the metadata store the registry could have
// written (all of them start with keyRoot). Not Scan(""): meta gives
// Pebble an empty, non-nil lower bound then, which Pebble's invariant
// checks (on under -race) index out of range.
func (f *fixture) metaKeys() []string {
	f.t.Helper()
	var keys []string
	if err := f.store.Scan(keyRoot, func(k string, _ []byte) error {
		keys = append(keys, k)
		return nil
	}); err != nil {
		f.t.Fatal(err)
	}
	return keys
}

// objectNames lists every object of the storage.
func (f *fixture) objectNames() []string {
	f.t.Helper()
	infos, err := f.objects.List(context.Background(), "")
	if err != nil {
		f.t.Fatal(err)
	}
	var names []string
	for _, i := range infos {
		names = append(names, i.Name)
	}
	sort.Strings(names)
	return names
}

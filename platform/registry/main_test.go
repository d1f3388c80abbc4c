package registry

import (
	"context"
	"fmt"
	"github.com/weirstream/weir/wasmhost/wasmtest"
	"os"
	"sort"
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
	buildMu sync.Mutex
	built   = map[string][]byte{}

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
	m, err := wasmtest.Modules(map[string]wasmtest.Source{name: {Pkg: name}})
	if err != nil {
		t.Fatal(err)
	}
	built[name] = m[name]
	return m[name]
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
		rt, rtErr = wasmhost.NewRuntime(context.Background(), wasmhost.Config{CacheDir: wasmtest.CacheDir()})
	})
	if rtErr != nil {
		t.Fatal(rtErr)
	}
	return rt
}

func TestMain(m *testing.M) {
	code := m.Run()
	if rt != nil {
		if err := rt.Close(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "closing the runtime:", err)
			code = 1
		}
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

package interrupt

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// features are those of the Weir host (ABI.md section 1) plus tail calls,
// which testdata/tailcall.wat needs.
const features = api.CoreFeaturesV2 | experimental.CoreFeaturesTailCall

// engine selects wazero's compiler (wazevo, what Weir runs on amd64 and
// arm64) or its interpreter.
type engine int

const (
	compiler engine = iota
	interpreter
)

func (e engine) String() string {
	if e == interpreter {
		return "interpreter"
	}
	return "compiler"
}

// engines lists the engines the interrupt tests run on. The interpreter is
// left out under the race detector: it reads the flag in Go code while the
// test's goroutine writes it, which is the design (a plain load, see
// doc.go) but which the detector rightly reports as a race. The compiler's
// loads are in machine code the detector does not see.
func engines() []engine {
	if raceEnabled {
		return []engine{compiler}
	}
	return []engine{compiler, interpreter}
}

// newRuntime returns a wazero runtime WITHOUT CloseOnContextDone (unless
// closeOnDone), closed at the end of the test. Compiled Go guests are
// cached on disk (see testCacheDir).
func newRuntime(t testing.TB, e engine, closeOnDone bool) wazero.Runtime {
	t.Helper()
	cfg := wazero.NewRuntimeConfigCompiler()
	if e == interpreter {
		cfg = wazero.NewRuntimeConfigInterpreter()
	}
	cfg = cfg.WithCoreFeatures(features).WithCloseOnContextDone(closeOnDone)
	if dir := testCacheDir(); dir != "" && e == compiler {
		cache, err := wazero.NewCompilationCacheWithDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cache.Close(context.Background()) })
		cfg = cfg.WithCompilationCache(cache)
	}
	rt := wazero.NewRuntimeWithConfig(context.Background(), cfg)
	t.Cleanup(func() { rt.Close(context.Background()) })
	return rt
}

// testCacheDir is an on-disk compilation cache shared by test runs, so that
// only the first run pays for compiling the Go guests (seconds under
// -race), as in package wasmhost. The wazero version from go.mod is part of
// the path: a test binary carries no dependency versions, so wazero keys
// its entries as "dev". Empty (in-memory cache) when unknown.
func testCacheDir() string {
	gomod, err := os.ReadFile("../../../go.mod")
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

// testWasm reads testdata/name.wasm (generated from name.wat by gen.sh).
func testWasm(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".wasm"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mustInstrument instruments wasm and fails the test on error.
func mustInstrument(t testing.TB, wasm []byte) []byte {
	t.Helper()
	out, err := Instrument(wasm)
	if err != nil {
		t.Fatalf("Instrument: %v", err)
	}
	return out
}

// goBuilds builds each Go guest once per test binary.
var goBuilds sync.Map // package dir -> *goBuild

type goBuild struct {
	once sync.Once
	wasm []byte
	err  error
}

// buildGo builds the Go package in dir as a Wasm reactor (GOOS=wasip1
// GOARCH=wasm -buildmode=c-shared), as Weir's users do.
func buildGo(t testing.TB, dir string) []byte {
	t.Helper()
	v, _ := goBuilds.LoadOrStore(dir, &goBuild{})
	gb := v.(*goBuild)
	gb.once.Do(func() {
		tmp, err := os.MkdirTemp("", "interrupt-guest-")
		if err != nil {
			gb.err = err
			return
		}
		defer os.RemoveAll(tmp)
		gotool := filepath.Join(goruntime.GOROOT(), "bin", "go")
		if p, err := exec.LookPath("go"); err == nil {
			gotool = p
		}
		out := filepath.Join(tmp, "guest.wasm")
		cmd := exec.Command(gotool, "build", "-trimpath", "-buildmode=c-shared", "-o", out, ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if o, err := cmd.CombinedOutput(); err != nil {
			gb.err = fmt.Errorf("GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared in %s: %v\n%s", dir, err, o)
			return
		}
		gb.wasm, gb.err = os.ReadFile(out)
	})
	if gb.err != nil {
		t.Fatal(gb.err)
	}
	return gb.wasm
}

// stubHost is the host side of the imports a guest needs besides WASI:
// every function of the host module returns zeros, except env.started
// (closes started, once) and weir.emit (appends the emitted bytes to
// emitted). It is instantiated in one runtime under each module name the
// guest imports from.
type stubHost struct {
	startedOnce sync.Once
	started     chan struct{}
	emitted     []byte
}

func newStubHost() *stubHost { return &stubHost{started: make(chan struct{})} }

// instantiate instantiates WASI and, for every other module cm imports
// functions from, a host module exporting them. A module the runtime
// already has is kept: tests that need h's callbacks use a fresh runtime.
func (h *stubHost) instantiate(t testing.TB, rt wazero.Runtime, cm wazero.CompiledModule) {
	t.Helper()
	ctx := context.Background()
	builders := map[string]wazero.HostModuleBuilder{}
	for _, fn := range cm.ImportedFunctions() {
		mod, name, _ := fn.Import()
		if mod == wasi_snapshot_preview1.ModuleName || rt.Module(mod) != nil {
			continue
		}
		b, ok := builders[mod]
		if !ok {
			b = rt.NewHostModuleBuilder(mod)
			builders[mod] = b
		}
		results := fn.ResultTypes()
		var gf api.GoModuleFunc
		switch name {
		case "started":
			gf = func(context.Context, api.Module, []uint64) {
				h.startedOnce.Do(func() { close(h.started) })
			}
		case "emit":
			gf = func(_ context.Context, m api.Module, stack []uint64) {
				b, ok := m.Memory().Read(uint32(stack[0]), uint32(stack[1]))
				if !ok {
					panic("emit out of bounds")
				}
				h.emitted = append(h.emitted, b...)
				stack[0] = 0
			}
		case "inc":
			gf = func(_ context.Context, _ api.Module, stack []uint64) { stack[0] = uint64(uint32(stack[0]) + 1) }
		default:
			gf = func(_ context.Context, _ api.Module, stack []uint64) {
				for i := range results {
					stack[i] = 0
				}
			}
		}
		b.NewFunctionBuilder().WithGoModuleFunction(gf, fn.ParamTypes(), results).Export(name)
	}
	if rt.Module(wasi_snapshot_preview1.ModuleName) == nil {
		if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
			t.Fatal(err)
		}
	}
	for name, b := range builders {
		if _, err := b.Instantiate(ctx); err != nil {
			t.Fatalf("host module %s: %v", name, err)
		}
	}
}

// instantiateGuest compiles wasm, instantiates its imports with a stub host
// and then the module itself (anonymous, so that a runtime can hold several
// instances), and calls _initialize when the module exports it.
func instantiateGuest(t testing.TB, rt wazero.Runtime, wasm []byte) (api.Module, *stubHost) {
	t.Helper()
	ctx := context.Background()
	cm, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	h := newStubHost()
	h.instantiate(t, rt, cm)
	mod, err := rt.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithName(""))
	if err != nil {
		t.Fatalf("instantiate: %v", err)
	}
	if init := mod.ExportedFunction("_initialize"); init != nil {
		if _, err := init.Call(ctx); err != nil {
			t.Fatalf("_initialize: %v", err)
		}
	}
	return mod, h
}

// call calls export name of mod and fails the test on error.
func call(t testing.TB, mod api.Module, name string, args ...uint64) []uint64 {
	t.Helper()
	fn := mod.ExportedFunction(name)
	if fn == nil {
		t.Fatalf("no export %q", name)
	}
	res, err := fn.Call(context.Background(), args...)
	if err != nil {
		t.Fatalf("%s%v: %v", name, args, err)
	}
	return res
}

// isUnreachable reports whether err is the trap of an `unreachable`.
func isUnreachable(err error) bool {
	return err != nil && strings.Contains(err.Error(), "wasm error: unreachable")
}

package wasmhost

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// shared holds the runtime and compiled Go guest that many tests use:
// compiling the Go guest takes over a second, so it is done once per test
// binary. Tests that need their own Config create their own Runtime.
var shared struct {
	once sync.Once
	rt   *Runtime
	gm   *Module
	err  error
}

// goGuestModule returns the compiled Go guest on the shared runtime.
func goGuestModule(t testing.TB) *Module {
	t.Helper()
	wasm := goGuestWasm(t)
	shared.once.Do(func() {
		shared.rt, shared.err = NewRuntime(context.Background(), Config{CacheDir: testCacheDir()})
		if shared.err != nil {
			return
		}
		shared.gm, shared.err = shared.rt.Compile(context.Background(), wasm)
	})
	if shared.err != nil {
		t.Fatalf("compiling the Go guest: %v", shared.err)
	}
	return shared.gm
}

// testCacheDir is an on-disk compilation cache shared by test runs, so
// that only the first run (per wazero version) pays for compiling the Go
// guest, which takes seconds under -race. The wazero version (from go.mod:
// test binaries carry no dependency versions) is part of the path because
// in a test binary wazero cannot tell its own version and keys its cache
// entries as "dev". Empty (in-memory cache) when unknown.
func testCacheDir() string {
	gomod, err := os.ReadFile("../go.mod")
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
	if shared.rt != nil {
		if err := shared.rt.Close(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "closing the shared runtime:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// Package wasmtest builds Weir Wasm modules from the repository's Go
// sources for tests (GOOS=wasip1 GOARCH=wasm, -buildmode=c-shared), and
// names the on-disk wazero compilation cache tests share, so that only the
// first run pays for compiling Go guests (seconds each, ten times more
// under -race).
//
// It is for tests only and knows nothing of the platform.
package wasmtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// CacheDir is the wazero compilation cache tests share, in the
// user's cache directory ("" when there is none: compile in memory).
// Compiling a Go-SDK module takes seconds, ten times more under -race; the
// cache is keyed by the module's bytes, so test binaries and runs reuse
// each other's work. Its folder names wazero's version from go.mod: in a
// test binary wazero cannot read its own version (it says "dev"), and code
// compiled by another wazero must never be loaded.
func CacheDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	root, err := RepoRoot()
	if err != nil {
		return ""
	}
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(mod), "\n") {
		f := strings.Fields(line)
		if f = slices.DeleteFunc(f, func(s string) bool { return s == "require" }); len(f) >= 2 && f[0] == "github.com/tetratelabs/wazero" {
			return filepath.Join(d, "weir", "test-wasm", "wazero-"+f[1])
		}
	}
	return ""
}

// Source is a module to build: a package under examples/ and build tags.
type Source struct {
	Pkg, Tags string
}

// Modules builds Wasm modules from the examples, concurrently: name ->
// bytes. Builds are slow; call it once per test binary (a sync.Once in the
// test package).
func Modules(sources map[string]Source) (map[string][]byte, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "weir-wasmtest-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := make(map[string][]byte, len(sources))
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []error
	)
	for name, src := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			file := filepath.Join(dir, name+".wasm")
			cmd := exec.Command("go", "build", "-trimpath", "-buildmode=c-shared", "-tags", src.Tags, "-o", file, "./"+src.Pkg)
			cmd.Dir = filepath.Join(root, "examples")
			cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
			b, err := cmd.CombinedOutput()
			if err == nil {
				b, err = os.ReadFile(file)
			} else {
				err = fmt.Errorf("building module %s (examples/%s, tags %q): %v\n%s", name, src.Pkg, src.Tags, err, b)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			out[name] = b
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// RepoRoot finds the repository root (the folder of go.mod) above the
// working directory, which is the test's package folder.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

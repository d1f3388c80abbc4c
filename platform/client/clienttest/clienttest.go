// Package clienttest runs a real Weir server for the tests of REST clients
// (platform/client and the `weir` client commands): the whole platform on
// a temporary data directory behind an httptest server on 127.0.0.1, with
// a bootstrap admin key, and Wasm modules built from the repository's
// examples with the Go toolchain.
//
// It is for tests only. It knows how a platform is assembled (through
// platform.Open) but nothing of the server's internals.
package clienttest

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weirstream/weir/platform"
)

// Server is a running platform with its API on 127.0.0.1.
type Server struct {
	// URL is the API's base address ("http://127.0.0.1:port").
	URL string
	// AdminToken is the bootstrap admin key.
	AdminToken string
	// DataDir is the platform's data directory.
	DataDir  string
	Platform *platform.Platform
}

// Start opens a platform on o and serves its API until the test ends.
// DataDir defaults to a temporary directory, UpgradeGrace to 300ms so
// upgrade tests are quick, and CacheDir to CacheDir().
func Start(t testing.TB, o platform.Options) *Server {
	t.Helper()
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	if o.CacheDir == "" {
		o.CacheDir = CacheDir()
	}
	if o.UpgradeGrace == 0 {
		o.UpgradeGrace = 300 * time.Millisecond
	}
	p, err := platform.Open(context.Background(), o)
	if err != nil {
		t.Fatalf("opening the platform: %v", err)
	}
	token, err := p.Bootstrap()
	if err != nil {
		p.Close()
		t.Fatalf("bootstrap: %v", err)
	}
	srv := httptest.NewServer(p.API)
	t.Cleanup(func() {
		srv.Close()
		p.Close()
	})
	return &Server{URL: srv.URL, AdminToken: token, DataDir: o.DataDir, Platform: p}
}

// CacheDir is the wazero compilation cache the test servers share, in the
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
	root, err := moduleRoot()
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

// FilesDir is a tenant's file area: file connectors' paths are relative to
// it.
func (s *Server) FilesDir(tenant string) string { return s.Platform.Jobs.FilesDir(tenant) }

// WriteFile writes a file into a tenant's file area, creating folders.
func (s *Server) WriteFile(t testing.TB, tenant, path, content string) {
	t.Helper()
	full := filepath.Join(s.FilesDir(tenant), filepath.FromSlash(path))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Source is a module to build: a package under examples/ and build tags.
type Source struct {
	Pkg, Tags string
}

// Modules builds Wasm modules from the examples, concurrently: name ->
// bytes. Builds are slow; call it once per test binary (a sync.Once in the
// test package).
func Modules(sources map[string]Source) (map[string][]byte, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "weir-clienttest-")
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

// moduleRoot finds the repository root (the folder of go.mod) above the
// working directory, which is the test's package folder.
func moduleRoot() (string, error) {
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

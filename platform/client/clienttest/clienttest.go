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
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/weirstream/weir/platform"
	"github.com/weirstream/weir/wasmhost/wasmtest"
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

// CacheDir is the wazero compilation cache tests share (wasmtest.CacheDir).
func CacheDir() string { return wasmtest.CacheDir() }

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
type Source = wasmtest.Source

// Modules builds Wasm modules from the examples (wasmtest.Modules).
func Modules(sources map[string]Source) (map[string][]byte, error) { return wasmtest.Modules(sources) }

// WordcountSpec is a bounded job over the tenant's file in/input.txt:
// wordcount@1's split and count, written to the file sink folder out.
const WordcountSpec = `
name: wc
parallelism: 2
modules: {wc: wordcount@1}
nodes:
  - {id: lines, source: file, parallelism: 1, config: {path: in/input.txt, format: lines}}
  - {id: split, module: wc, operator: split, inputs: [{from: lines, partition: rebalance}]}
  - {id: count, module: wc, operator: count, inputs: [{from: split, partition: key}]}
  - {id: out, sink: file, config: {path: out, format: kv}, inputs: [count]}
`

// CounterSpec is an unbounded keyed job with checkpoints: datagen over
// keys 0..9 into counter@1's count.
const CounterSpec = `
name: counter
parallelism: 1
modules: {counter: counter@1}
checkpoints: {interval: 200ms}
nodes:
  - {id: gen, source: datagen, config: {rate: 500, key: {kind: sequence, end: 9}}}
  - {id: count, module: counter, operator: count, inputs: [{from: gen, partition: key}]}
  - {id: out, sink: blackhole, inputs: [count]}
`

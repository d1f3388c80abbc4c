// Package examples_test runs every example job end to end (real Wasm modules
// built from the example sources, real connectors) and compares its output
// with the expected output computed independently (expected.py).
package examples_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/weirstream/weir/connectors"
	"github.com/weirstream/weir/runtime"
	"github.com/weirstream/weir/wasmhost"
)

// buildModule compiles an example to Wasm once per test binary.
var (
	buildMu  sync.Mutex
	built    = map[string]string{}
	buildDir string
)

func buildModule(t testing.TB, example string) string {
	t.Helper()
	return buildModuleTags(t, example, "")
}

// buildModuleTags builds an example with Go build tags (module variants).
func buildModuleTags(t testing.TB, example, tags string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[example+"#"+tags]; ok {
		return p
	}
	if buildDir == "" {
		d, err := os.MkdirTemp("", "weir-examples-")
		if err != nil {
			t.Fatal(err)
		}
		buildDir = d
	}
	out := filepath.Join(buildDir, strings.NewReplacer("/", "_", ",", "_").Replace(example+"-"+tags)+".wasm")
	cmd := exec.Command("go", "build", "-trimpath", "-buildmode=c-shared", "-tags", tags, "-o", out, "./"+example)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s for wasip1: %v\n%s", example, err, b)
	}
	built[example+"#"+tags] = out
	return out
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// sharedRuntime is one wazero runtime for every job of the test binary, as
// in a worker.
var (
	rtOnce sync.Once
	rt     *wasmhost.Runtime
	rtErr  error
)

func wasmRuntime(t testing.TB) *wasmhost.Runtime {
	rtOnce.Do(func() { rt, rtErr = wasmhost.NewRuntime(context.Background(), wasmhost.Config{}) })
	if rtErr != nil {
		t.Fatal(rtErr)
	}
	return rt
}

// runExample runs examples/NAME/job.yaml with the module built fresh, the
// given parallelism and state backend, writing output under a temp dir, and
// returns the sorted lines of every file sink, by sink node id.
func runExample(t *testing.T, name string, parallelism int, backend string) map[string][]string {
	t.Helper()
	spec, err := runtime.LoadSpec(filepath.Join(name, "job.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for m := range spec.Modules {
		spec.Modules[m] = runtime.ModuleSpec{Path: buildModule(t, name)}
	}
	spec.Parallelism = parallelism
	spec.State.Backend = backend
	spec.State.Dir = t.TempDir()
	outDir := t.TempDir()
	sinks := map[string]string{}
	for i := range spec.Nodes {
		n := &spec.Nodes[i]
		if n.Sink == "file" {
			cfg := n.Config.(map[string]any)
			dir := filepath.Join(outDir, n.ID)
			cfg["path"] = dir
			sinks[n.ID] = dir
		}
	}
	var conns runtime.Connectors
	connectors.RegisterWithBase(&conns, name)
	job, err := runtime.Compile(context.Background(), spec, runtime.Options{Connectors: conns, LoadModule: runtime.WasmLoader(wasmRuntime(t))})
	if err != nil {
		t.Fatal(err)
	}
	if err := job.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for id, dir := range sinks {
		files, _ := filepath.Glob(filepath.Join(dir, "part-*"))
		if len(files) == 0 {
			t.Fatalf("sink %s wrote no part files in %s", id, dir)
		}
		var lines []string
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range strings.Split(string(b), "\n") {
				if l != "" {
					lines = append(lines, l)
				}
			}
		}
		sort.Strings(lines)
		out[id] = lines
	}
	return out
}

func readExpected(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(bytes.TrimSpace(b)), "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	sort.Strings(lines)
	return lines
}

func TestExamples(t *testing.T) {
	cases := []struct {
		example string
		want    map[string]string // sink node id -> expected file
	}{
		{"wordcount", map[string]string{"out": "expected.txt"}},
		{"windowed-sum", map[string]string{"out": "expected.txt", "late": "expected-late.txt"}},
		{"fraud", map[string]string{"alerts": "expected.txt"}},
	}
	for _, c := range cases {
		for _, backend := range []string{"memory", "pebble"} {
			for _, p := range []int{1, 4} {
				t.Run(fmt.Sprintf("%s/%s/p%d", c.example, backend, p), func(t *testing.T) {
					got := runExample(t, c.example, p, backend)
					for sink, file := range c.want {
						want := readExpected(t, filepath.Join(c.example, file))
						if strings.Join(got[sink], "\n") != strings.Join(want, "\n") {
							t.Fatalf("sink %s: got %d lines:\n%s\nwant %d lines (%s):\n%s", sink, len(got[sink]),
								strings.Join(got[sink], "\n"), len(want), file, strings.Join(want, "\n"))
						}
					}
				})
			}
		}
	}
}

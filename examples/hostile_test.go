package examples_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/weirstream/weir/connectors"
	"github.com/weirstream/weir/runtime"
)

// TestHostileModuleFailsOnlyItsJob runs a job whose Go operator misbehaves
// (examples/testdata/hostile, chosen by the record's value) next to a healthy
// word-count job in the same process and wazero runtime: the hostile job
// fails with a clear error naming its task, the healthy job's output is
// exactly right, and the process goes on to the next case.
func TestHostileModuleFailsOnlyItsJob(t *testing.T) {
	hostile := buildModule(t, "testdata/hostile")
	cases := []struct{ mode, want string }{
		{"loop", "deadline exceeded"},
		{"panic", "assignment to entry in nil map"},
		{"oom", "out of memory"},
		{"flood", "output limit"},
		{"badptr", "weir.emit"},
		{"exit", "exit"},
		{"error", "operator refuses this record"},
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.mode, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(dir, c.mode+".txt"), []byte("ok\n"+c.mode+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			spec, err := runtime.ParseSpec([]byte(fmt.Sprintf(`
name: hostile
limits: {callTimeout: 2s, maxOutputBytes: 1048576, memoryPages: 512}
modules: {h: {path: %s}}
nodes:
  - {id: src, source: file, config: {path: %s.txt}}
  - {id: op, module: h, operator: hostile, inputs: [src]}
  - {id: out, sink: blackhole, inputs: [op]}
`, hostile, c.mode)))
			if err != nil {
				t.Fatal(err)
			}
			var conns runtime.Connectors
			connectors.RegisterWithBase(&conns, dir)
			job, err := runtime.Compile(context.Background(), spec, runtime.Options{Connectors: conns, LoadModule: runtime.WasmLoader(wasmRuntime(t))})
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			var healthy map[string][]string
			wg.Add(1)
			go func() {
				defer wg.Done()
				healthy = runExample(t, "wordcount", 2, "memory")
			}()
			err = job.Run(context.Background())
			wg.Wait()
			if err == nil {
				t.Fatal("hostile job succeeded")
			}
			if !strings.Contains(err.Error(), "task src+op+out[0]") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not name the task and %q", err, c.want)
			}
			want := readExpected(t, filepath.Join("wordcount", "expected.txt"))
			if strings.Join(healthy["out"], "\n") != strings.Join(want, "\n") {
				t.Fatalf("the healthy job next to the hostile one produced wrong output")
			}
		})
	}
}

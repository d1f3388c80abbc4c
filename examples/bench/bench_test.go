//go:build !wasip1

package main

// End-to-end benchmarks: datagen -> operator -> blackhole through the real
// runtime, with the operator in Wasm (the bench module built from this
// folder) and the very same operator code compiled natively (sdk.Native), in
// the same run, so their ratio is measured under the same machine load.
//
//	go test -run '^$' -bench . -benchtime 3x ./examples/bench/
//
// Each benchmark iteration runs a job over Records records; the reported
// records/s is wall-clock throughput and records/cpu-s divides by the CPU
// time the process used (user+sys), i.e. throughput per busy core.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"syscall"
	"testing"
	"time"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/connectors"
	"github.com/weirstream/weir/examples/internal/native"
	"github.com/weirstream/weir/runtime"
	"github.com/weirstream/weir/wasmhost"
)

// benchWasm builds this folder's module once.
func benchWasm(b *testing.B) string {
	b.Helper()
	out := filepath.Join(b.TempDir(), "bench.wasm")
	cmd := exec.Command("go", "build", "-trimpath", "-buildmode=c-shared", "-o", out, ".")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if o, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build bench module: %v\n%s", err, o)
	}
	return out
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

const pipelineSpec = `
name: bench-%[1]s
state: {backend: %[3]s}
modules: {bench: {path: %[4]s}}
nodes:
  - id: gen
    source: datagen
    config: {count: %[2]d, valueSize: 100, key: {kind: sequence, start: 0, end: 99999}}
  - {id: op, module: bench, operator: %[1]s, inputs: [{from: gen, partition: %[5]s}]}
  - {id: sink, sink: blackhole, inputs: [op]}
`

func runPipeline(b *testing.B, op, backend, partition string, records int, load runtime.ModuleLoader, wasmPath string) {
	spec, err := runtime.ParseSpec([]byte(fmt.Sprintf(pipelineSpec, op, records, backend, wasmPath, partition)))
	if err != nil {
		b.Fatal(err)
	}
	spec.State.Dir = b.TempDir()
	var conns runtime.Connectors
	var counters connectors.BlackholeCounters
	connectors.RegisterWithOptions(&conns, connectors.RegisterOptions{Blackhole: &counters})
	job, err := runtime.Compile(context.Background(), spec, runtime.Options{Connectors: conns, LoadModule: load})
	if err != nil {
		b.Fatal(err)
	}
	if err := job.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	if counters.Records() != int64(records) {
		b.Fatalf("blackhole got %d records, want %d", counters.Records(), records)
	}
}

func BenchmarkPipeline(b *testing.B) {
	wasmPath := benchWasm(b)
	rt, err := wasmhost.NewRuntime(context.Background(), wasmhost.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer rt.Close(context.Background())
	wasm := runtime.WasmLoader(rt)
	native := native.Loader
	cases := []struct {
		name, op, backend, partition string
		records                      int
	}{
		{"rekey", "rekey", "memory", "forward", 4_000_000},
		{"map-upper", "map", "memory", "forward", 2_000_000},
		{"keyedcount-memory", "keyedcount", "memory", "key", 2_000_000},
		{"keyedcount-pebble", "keyedcount", "pebble", "key", 500_000},
	}
	for _, c := range cases {
		for _, mode := range []struct {
			name string
			load runtime.ModuleLoader
		}{{"wasm", wasm}, {"native", native}} {
			b.Run(c.name+"/"+mode.name, func(b *testing.B) {
				// Warm up: compile (cached) and first instantiation outside the timer.
				runPipeline(b, c.op, c.backend, c.partition, 1000, mode.load, wasmPath)
				cpu0 := cpuTime()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					runPipeline(b, c.op, c.backend, c.partition, c.records, mode.load, wasmPath)
				}
				b.StopTimer()
				total := float64(c.records) * float64(b.N)
				b.ReportMetric(total/b.Elapsed().Seconds(), "records/s")
				b.ReportMetric(total/(cpuTime()-cpu0).Seconds(), "records/cpu-s")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}

// BenchmarkInstance measures the per-instance cost of a Go-SDK operator:
// instantiate (+ _initialize + weir_open) time, the guest's linear memory,
// and the host heap each live instance holds.
func BenchmarkInstance(b *testing.B) {
	ctx := context.Background()
	wasmPath := benchWasm(b)
	rt, err := wasmhost.NewRuntime(ctx, wasmhost.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer rt.Close(ctx)
	bin, err := os.ReadFile(wasmPath)
	if err != nil {
		b.Fatal(err)
	}
	mod, err := rt.Compile(ctx, bin)
	if err != nil {
		b.Fatal(err)
	}
	open := abi.OpenInfo{Operator: "rekey", Parallelism: 1, MaxParallelism: 128, Inputs: 1}
	var ms0, ms1 goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&ms0)
	insts := make([]*wasmhost.Instance, 0, b.N)
	var linear uint64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		inst, err := mod.Instantiate(ctx, wasmhost.InstanceConfig{Name: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		if err := inst.Open(ctx, open); err != nil {
			b.Fatal(err)
		}
		linear += inst.MemoryBytes()
		insts = append(insts, inst)
	}
	b.StopTimer()
	goruntime.GC()
	goruntime.ReadMemStats(&ms1)
	b.ReportMetric(float64(linear)/float64(b.N)/(1<<20), "MiB-linear/instance")
	b.ReportMetric(float64(ms1.HeapAlloc-ms0.HeapAlloc)/float64(b.N)/(1<<20), "MiB-heap/instance")
	for _, inst := range insts {
		_ = inst.Close(ctx)
	}
}

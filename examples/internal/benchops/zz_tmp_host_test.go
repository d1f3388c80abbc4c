package benchops

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/sdk/sdktest"
	"github.com/weirstream/weir/wasmhost"
)

func BenchmarkTmpWasm(b *testing.B) {
	wasm := filepath.Join(os.TempDir(), "benchops-tmp.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", wasm, "../../bench")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatal(string(out))
	}
	ctx := context.Background()
	rt, err := wasmhost.NewRuntime(ctx, wasmhost.Config{})
	if err != nil {
		b.Fatal(err)
	}
	bin, _ := os.ReadFile(wasm)
	m, err := rt.Compile(ctx, bin)
	if err != nil {
		b.Fatal(err)
	}
	for _, op := range []string{Map, KeyedCount} {
		b.Run(op, func(b *testing.B) {
			inst, err := m.Instantiate(ctx, wasmhost.InstanceConfig{State: sdktest.NewState(), Timers: sdktest.NewTimers()})
			if err != nil {
				b.Fatal(err)
			}
			if err := inst.Open(ctx, abi.OpenInfo{Operator: op, Parallelism: 1, MaxParallelism: 128, Inputs: 1}); err != nil {
				b.Fatal(err)
			}
			batch := SampleBatch(1024, 1000)
			if _, err := inst.Process(ctx, 0, batch); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := inst.Process(ctx, 0, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1024), "ns/record")
		})
	}
}

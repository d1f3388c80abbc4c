//go:build !wasip1

package main

// Benchmarks: every query's job spec with its file sink swapped for the
// blackhole sink, generator -> query -> blackhole through the real runtime
// at parallelism 1, once with the operators in Wasm (the module built from
// this folder) and once natively (sdk.Native running the same package
// queries), in the same run so that their ratio is measured under the same
// load.
//
//	go test -run '^$' -bench Nexmark -benchtime 3x ./examples/nexmark/
//
// events/s is wall-clock throughput; events/cpu-s divides by the CPU time
// the process used (user+sys, getrusage), i.e. throughput per busy core,
// the figure the Nexmark targets are stated in. x-target is the Wasm run's
// events/cpu-s over the target (3x Flink 2.0's published per-core
// throughput), wasm/native the ratio of the two runs' events/cpu-s.

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weirstream/weir/examples/internal/native"
	"github.com/weirstream/weir/runtime"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchTargets are 3x Flink 2.0's per-core events/s (issue 7).
var benchTargets = map[string]float64{
	"q0": 1_137_000, "q1": 1_185_000, "q2": 1_242_000, "q3": 657_000,
	"q4": 84_000, "q5": 225_000, "q7": 69_000, "q8": 486_000,
}

// benchEvents is the number of events of one benchmark iteration.
const benchEvents = 1_000_000

func BenchmarkNexmark(b *testing.B) {
	type result struct{ perSecond, perCPUSecond float64 }
	results := map[string]result{}
	modes := []struct {
		name string
		load runtime.ModuleLoader
	}{{"wasm", wasmLoader(b)}, {"native", native.Loader}}
	for _, q := range queryNames {
		for _, mode := range modes {
			b.Run(q+"/"+mode.name, func(b *testing.B) {
				r := queryRun{query: q, events: benchEvents, parallelism: 1, load: mode.load}
				// Warm up (compilation is cached, first instantiation) outside the timer.
				queryRun{query: q, events: 10_000, parallelism: 1, load: mode.load}.run(b)
				cpu0 := cpuTime()
				b.ResetTimer()
				for range b.N {
					if out := r.run(b); out == 0 {
						b.Fatalf("%s wrote nothing", q)
					}
				}
				b.StopTimer()
				total := float64(benchEvents) * float64(b.N)
				res := result{total / b.Elapsed().Seconds(), total / (cpuTime() - cpu0).Seconds()}
				results[q+"/"+mode.name] = res
				b.ReportMetric(res.perSecond, "events/s")
				b.ReportMetric(res.perCPUSecond, "events/cpu-s")
				if mode.name == "wasm" {
					b.ReportMetric(res.perCPUSecond/benchTargets[q], "x-target")
				} else if w, ok := results[q+"/wasm"]; ok {
					b.ReportMetric(w.perCPUSecond/res.perCPUSecond, "wasm/native")
				}
				b.ReportMetric(0, "ns/op")
			})
		}
	}
	// The table of docs/BENCHMARKS.md.
	var t strings.Builder
	t.WriteString("\n| query | Wasm events/s | Wasm events/cpu-s | native events/cpu-s | Wasm/native | target/core | Wasm x target |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, q := range queryNames {
		w, okw := results[q+"/wasm"]
		n, okn := results[q+"/native"]
		if !okw || !okn {
			continue
		}
		fmt.Fprintf(&t, "| %s | %s | %s | %s | %.2f | %s | %.2f |\n", q, human(w.perSecond), human(w.perCPUSecond),
			human(n.perCPUSecond), w.perCPUSecond/n.perCPUSecond, human(benchTargets[q]), w.perCPUSecond/benchTargets[q])
	}
	b.Log(t.String())
}

func human(v float64) string {
	if v >= 1e6 {
		return fmt.Sprintf("%.2f M", v/1e6)
	}
	return fmt.Sprintf("%.0f k", v/1e3)
}

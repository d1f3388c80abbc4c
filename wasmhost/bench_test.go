package wasmhost

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/weirstream/weir/abi"
)

// BenchmarkProcess measures the fixed cost of one Process call into the
// echo.wat guest: an empty batch (no weir_buffer call, no copy) and a
// batch of one record (weir_buffer + copy + emit).
func BenchmarkProcess(b *testing.B) {
	r := newTestRuntime(b, Config{})
	m := compile(b, r, "echo")
	for _, bc := range []struct {
		name  string
		batch []byte
	}{{"empty", nil}, {"one-record", records(1)}} {
		b.Run(bc.name, func(b *testing.B) {
			i := open(b, m, "echo", InstanceConfig{})
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := i.Process(ctx, 0, bc.batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// hundredByteRecords returns n records of exactly 100 encoded bytes
// (18-byte header, 10-byte key, 72-byte value).
func hundredByteRecords(n int) []byte {
	var e abi.Encoder
	value := []byte(strings.Repeat("v", 72))
	for k := range n {
		e.Record(abi.TagMain, fmt.Appendf(nil, "key-%06d", k), value, int64(k))
	}
	return e.B
}

// BenchmarkEchoThroughput pushes batches of 1024 records of 100 bytes
// through an echo operator: the WAT guest (host cost only: copy in, emit,
// validate, copy out) and the Go guest (which also decodes and re-encodes
// every record).
func BenchmarkEchoThroughput(b *testing.B) {
	batch := hundredByteRecords(1024)
	if len(batch) != 1024*100 {
		b.Fatalf("batch is %d bytes", len(batch))
	}
	r := newTestRuntime(b, Config{})
	for _, guest := range []string{"wat", "go"} {
		b.Run(guest, func(b *testing.B) {
			var m *Module
			if guest == "go" {
				m = goGuestModule(b)
			} else {
				m = compile(b, r, "echo")
			}
			i := open(b, m, "echo", InstanceConfig{})
			ctx := context.Background()
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			for b.Loop() {
				out, err := i.Process(ctx, 0, batch)
				if err != nil || len(out) != len(batch) {
					b.Fatalf("%v, %d bytes", err, len(out))
				}
			}
			b.ReportMetric(float64(b.N)*1024/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// benchState answers every Get with the same 8-byte value without
// allocating, so that BenchmarkHostCall measures the host path.
type benchState struct{ v []byte }

func (s benchState) Register(string, abi.StateKind) (int32, error)   { return 0, nil }
func (s benchState) Get(int32, []byte, []byte) ([]byte, bool, error) { return s.v, true, nil }
func (s benchState) Put(int32, []byte, []byte, []byte) error         { return nil }
func (s benchState) Delete(int32, []byte, []byte) error              { return nil }
func (s benchState) Append(int32, []byte, []byte) error              { return nil }
func (s benchState) Scan(int32, []byte, func(sub, value []byte) error) error {
	return nil
}
func (s benchState) Clear(int32, []byte) error { return nil }

// BenchmarkHostCall measures guest->host calls: bench.wat calls the import
// 1000 times per Process; the metric ns/call subtracts nothing (the loop
// itself costs about 1 ns per iteration, see "loop-only").
func BenchmarkHostCall(b *testing.B) {
	r := newTestRuntime(b, Config{})
	m := compile(b, r, "bench")
	const calls = 1000
	batch := binary.LittleEndian.AppendUint32(nil, calls)
	for _, bc := range []struct {
		name  string
		input int
	}{{"state_get", 0}, {"watermark", 1}, {"loop-only", 2}} {
		b.Run(bc.name, func(b *testing.B) {
			i := open(b, m, "bench", InstanceConfig{State: benchState{v: []byte("12345678")}, Timers: newFakeTimers()})
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := i.Process(ctx, bc.input, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*calls), "ns/call")
		})
	}
}

// BenchmarkInstantiate measures Instantiate+Close (including _initialize
// for the Go guest), and the memory a live instance holds: Go heap and
// resident set growth over 20 (Go) or 200 (WAT) live instances, per
// instance.
func BenchmarkInstantiate(b *testing.B) {
	r := newTestRuntime(b, Config{})
	for _, guest := range []string{"wat", "go"} {
		b.Run(guest, func(b *testing.B) {
			var m *Module
			if guest == "go" {
				m = goGuestModule(b)
			} else {
				m = compile(b, r, "echo")
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				i, err := m.Instantiate(ctx, InstanceConfig{})
				if err != nil {
					b.Fatal(err)
				}
				if err := i.Open(ctx, abi.OpenInfo{Operator: "echo"}); err != nil {
					b.Fatal(err)
				}
				i.Close(ctx)
			}
			n := 200
			if guest == "go" {
				n = 20
			}
			heap, rss := memoryPerInstance(b, m, n)
			b.ReportMetric(heap, "heap-B/instance")
			b.ReportMetric(rss, "rss-B/instance")
		})
	}
}

func memoryPerInstance(b *testing.B, m *Module, n int) (heap, rss float64) {
	ctx := context.Background()
	var before, after runtime.MemStats
	debug.FreeOSMemory()
	runtime.ReadMemStats(&before)
	rssBefore := residentBytes()
	insts := make([]*Instance, n)
	for k := range insts {
		i, err := m.Instantiate(ctx, InstanceConfig{})
		if err != nil {
			b.Fatal(err)
		}
		if err := i.Open(ctx, abi.OpenInfo{Operator: "echo"}); err != nil {
			b.Fatal(err)
		}
		if _, err := i.Process(ctx, 0, records(10)); err != nil {
			b.Fatal(err)
		}
		insts[k] = i
	}
	debug.FreeOSMemory()
	runtime.ReadMemStats(&after)
	rssAfter := residentBytes()
	for _, i := range insts {
		i.Close(ctx)
	}
	return float64(after.HeapInuse-before.HeapInuse) / float64(n), float64(rssAfter-rssBefore) / float64(n)
}

// residentBytes reads the resident set size from /proc (0 elsewhere).
func residentBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// BenchmarkCallerLookup compares ways a host function can find its
// Instance: the type assertion callerOf uses, a ctx.Value lookup through a
// context.WithValue chain, and a sync.Map keyed by the module.
func BenchmarkCallerLookup(b *testing.B) {
	inst := &Instance{}
	base, cancel := context.WithTimeout(context.Background(), 1<<40)
	defer cancel()
	cc := context.Context(&callContext{Context: base, inst: inst})
	b.Run("type-assertion", func(b *testing.B) {
		for b.Loop() {
			if callerOf(cc) != inst {
				b.Fatal("wrong instance")
			}
		}
	})
	vc := context.WithValue(base, instanceKey{}, inst)
	b.Run("context-value", func(b *testing.B) {
		for b.Loop() {
			if vc.Value(instanceKey{}).(*Instance) != inst {
				b.Fatal("wrong instance")
			}
		}
	})
	var mm sync.Map
	key := new(int)
	mm.Store(key, inst)
	b.Run("sync-map", func(b *testing.B) {
		for b.Loop() {
			v, _ := mm.Load(key)
			if v.(*Instance) != inst {
				b.Fatal("wrong instance")
			}
		}
	})
}

// TestHostCallsDoNotAllocate: a guest->host call costs no allocation;
// Process allocates a fixed amount per call (context, deadline), not per
// host call made inside it.
func TestHostCallsDoNotAllocate(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts")
	}
	r := newTestRuntime(t, Config{})
	m := compile(t, r, "bench")
	i := open(t, m, "bench", InstanceConfig{State: benchState{v: []byte("12345678")}, Timers: newFakeTimers()})
	ctx := context.Background()
	allocs := func(input int, calls uint32) float64 {
		batch := binary.LittleEndian.AppendUint32(nil, calls)
		return testing.AllocsPerRun(50, func() {
			if _, err := i.Process(ctx, input, batch); err != nil {
				t.Fatal(err)
			}
		})
	}
	for _, input := range []int{0, 1} {
		base, many := allocs(input, 0), allocs(input, 1000)
		if many > base+0.5 {
			t.Errorf("input %d: %.1f allocations per Process with 1000 host calls, %.1f with none", input, many, base)
		}
	}
}

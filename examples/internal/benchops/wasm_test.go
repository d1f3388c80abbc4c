//go:build !wasip1

package benchops

// The Wasm side of the benchmarks: the bench module (examples/bench, which
// imports this package) built for wasip1 and run through wasmhost, called
// batch by batch without the runtime around it, so that what is measured is
// the guest's per-record cost plus the host functions it calls.
//
//	go test -run '^$' -bench Guest ./examples/internal/benchops/

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/sdk"
	"github.com/weirstream/weir/sdk/sdktest"
	"github.com/weirstream/weir/wasmhost"
)

// benchModule is the bench module, built and compiled once per test binary
// (compiling a Go guest takes seconds; benchmarks ramping b.N would
// otherwise compile it on every round).
var benchModule struct {
	once sync.Once
	rt   *wasmhost.Runtime
	mod  *wasmhost.Module
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchModule.rt != nil {
		benchModule.rt.Close(context.Background())
	}
	os.Exit(code)
}

func compiledBenchModule(tb testing.TB) *wasmhost.Module {
	tb.Helper()
	benchModule.once.Do(func() { benchModule.mod, benchModule.err = buildBenchModule() })
	if benchModule.err != nil {
		tb.Fatal(benchModule.err)
	}
	return benchModule.mod
}

func buildBenchModule() (*wasmhost.Module, error) {
	dir, err := os.MkdirTemp("", "weir-benchops-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "bench.wasm")
	cmd := exec.Command("go", "build", "-trimpath", "-buildmode=c-shared", "-o", path,
		"github.com/weirstream/weir/examples/bench")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building the bench module for wasip1: %w\n%s", err, out)
	}
	bin, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	if benchModule.rt, err = wasmhost.NewRuntime(ctx, wasmhost.Config{}); err != nil {
		return nil, err
	}
	mod, err := benchModule.rt.Compile(ctx, bin)
	if err != nil {
		return nil, fmt.Errorf("compiling the bench module: %w", err)
	}
	return mod, nil
}

// openWasm instantiates the bench module and opens operator op in it.
func openWasm(tb testing.TB, op string, state wasmhost.StateAccess) *wasmhost.Instance {
	tb.Helper()
	ctx := context.Background()
	inst, err := compiledBenchModule(tb).Instantiate(ctx, wasmhost.InstanceConfig{Name: "bench-" + op, State: state, Timers: sdktest.NewTimers()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { inst.Close(ctx) })
	if err := inst.Open(ctx, abi.OpenInfo{Operator: op, Parallelism: 1, MaxParallelism: abi.DefaultMaxParallelism, Inputs: 1}); err != nil {
		tb.Fatal(err)
	}
	return inst
}

// TestWasmMatchesNative runs every bench operator on the same batches in
// Wasm and natively and requires byte-identical output: the guest's hand
// written hot path and the native one are the same code, and must stay so.
func TestWasmMatchesNative(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Wasm module")
	}
	ctx := context.Background()
	for _, op := range []string{Map, Rekey, KeyedCount} {
		t.Run(op, func(t *testing.T) {
			w := openWasm(t, op, sdktest.NewState())
			n := open(t, op)
			for round := range 3 {
				// Batches of growing size, over few keys so that counts grow.
				batch := SampleBatch(1+round*700, 7)
				want, err := n.Process(0, batch)
				if err != nil {
					t.Fatal(err)
				}
				got, err := w.Process(ctx, 0, batch)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("round %d: Wasm output (%d bytes) differs from native (%d bytes)", round, len(got), len(want))
				}
				if len(got) == 0 {
					t.Fatalf("round %d: no output", round)
				}
			}
		})
	}
}

// fixedState is a StateAccess whose cost is close to nothing: one value
// slot per state id, whatever the key. The benchmarks use it to see the
// guest's cost of state calls rather than the cost of a store.
type fixedState struct{ v [][]byte }

func (s *fixedState) Register(string, abi.StateKind) (int32, error) {
	s.v = append(s.v, nil)
	return int32(len(s.v) - 1), nil
}

func (s *fixedState) Get(id int32, _, _ []byte) ([]byte, bool, error) {
	return s.v[id], s.v[id] != nil, nil
}

func (s *fixedState) Put(id int32, _, _, value []byte) error {
	s.v[id] = append(s.v[id][:0], value...)
	return nil
}

func (s *fixedState) Delete(id int32, _, _ []byte) error                { s.v[id] = nil; return nil }
func (s *fixedState) Append(int32, []byte, []byte) error                { return abi.ErrInvalid }
func (s *fixedState) Clear(id int32, _ []byte) error                    { s.v[id] = nil; return nil }
func (s *fixedState) Scan(int32, []byte, func(_, _ []byte) error) error { return abi.ErrInvalid }

// benchState is a keyed state both sides accept.
type benchState interface {
	wasmhost.StateAccess
	sdk.NativeState
}

const guestBatchRecords = 1024

// benchmarkBatches calls process on a batch of 1024 records (100-byte
// values, 1000 keys) per iteration and reports ns/record.
func benchmarkBatches(b *testing.B, process func(batch []byte) ([]byte, error)) {
	batch := SampleBatch(guestBatchRecords, 1000)
	if _, err := process(batch); err != nil { // first sight of the keys
		b.Fatal(err)
	}
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := process(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*guestBatchRecords), "ns/record")
}

// BenchmarkGuest measures each bench operator in Wasm (the bench module
// through wasmhost, without the runtime) and natively (sdk.Native): the
// Wasm figure is the guest's per-record cost plus the host's work for the
// batch (copying it in, checking and copying the output, state calls).
// keyedcount runs over "fixedstate", a state whose lookups cost next to
// nothing, so that its figure is the guest's cost plus the two host-call
// crossings per record, and over "memstate", sdktest's map.
//
// Expect map in Wasm to be bimodal across runs (about 600 or 1800
// ns/record): wazero 1.12 packs 4- and 8-byte spill slots without
// aligning them, and whether a slot its per-byte loop reloads every
// iteration straddles a cache line depends on where the instance's native
// stack lies.
func BenchmarkGuest(b *testing.B) {
	for _, c := range []struct {
		name, op string
		state    func() benchState
	}{
		{"rekey", Rekey, nil},
		{"map", Map, nil},
		{"keyedcount-fixedstate", KeyedCount, func() benchState { return &fixedState{} }},
		{"keyedcount-memstate", KeyedCount, func() benchState { return sdktest.NewState() }},
	} {
		newState := func() benchState {
			if c.state == nil {
				return nil
			}
			return c.state()
		}
		b.Run(c.name+"/wasm", func(b *testing.B) {
			inst := openWasm(b, c.op, newState())
			ctx := context.Background()
			benchmarkBatches(b, func(batch []byte) ([]byte, error) { return inst.Process(ctx, 0, batch) })
		})
		b.Run(c.name+"/native", func(b *testing.B) {
			n := sdk.NewNative(newState(), sdktest.NewTimers(), nil)
			if err := n.Open(abi.OpenInfo{Operator: c.op, Parallelism: 1, MaxParallelism: abi.DefaultMaxParallelism, Inputs: 1}); err != nil {
				b.Fatal(err)
			}
			benchmarkBatches(b, func(batch []byte) ([]byte, error) { return n.Process(0, batch) })
		})
	}
}

//go:build !wasip1

package main

// The operators without the runtime: the Wasm module through wasmhost and
// the same code natively (sdk.Native), batch by batch, on the same events.
// TestWasmMatchesNative requires byte-identical output from both builds;
// BenchmarkGuest measures each stateless operator's cost per event, which
// is where Wasm's overhead shows (the profile of a whole job does not see
// inside compiled guest code).
//
//	go test -run '^$' -bench Guest ./examples/nexmark/

import (
	"bytes"
	"context"
	"os"
	"sync"
	"testing"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/examples/nexmark/queries"
	"github.com/weirstream/weir/sdk"
	"github.com/weirstream/weir/sdk/sdktest"
	"github.com/weirstream/weir/wasmhost"
)

// compiled is the module compiled by the shared runtime, once.
var compiled struct {
	once sync.Once
	mod  *wasmhost.Module
	err  error
}

func compiledModule(tb testing.TB) *wasmhost.Module {
	tb.Helper()
	wasmLoader(tb) // makes rt
	path := module(tb)
	compiled.once.Do(func() {
		bin, err := os.ReadFile(path)
		if err != nil {
			compiled.err = err
			return
		}
		compiled.mod, compiled.err = rt.Compile(context.Background(), bin)
	})
	if compiled.err != nil {
		tb.Fatal(compiled.err)
	}
	return compiled.mod
}

func openInfo(op, config string) abi.OpenInfo {
	return abi.OpenInfo{Operator: op, NodeID: op, Config: []byte(config), Parallelism: 1,
		MaxParallelism: abi.DefaultMaxParallelism, Inputs: 1}
}

func openWasm(tb testing.TB, op, config string) *wasmhost.Instance {
	tb.Helper()
	ctx := context.Background()
	inst, err := compiledModule(tb).Instantiate(ctx, wasmhost.InstanceConfig{Name: op, State: sdktest.NewState(), Timers: sdktest.NewTimers()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { inst.Close(ctx) })
	if err := inst.Open(ctx, openInfo(op, config)); err != nil {
		tb.Fatal(err)
	}
	return inst
}

func openNative(tb testing.TB, op, config string) *sdk.Native {
	tb.Helper()
	n := sdk.NewNative(sdktest.NewState(), sdktest.NewTimers(), nil)
	if err := n.Open(openInfo(op, config)); err != nil {
		tb.Fatal(err)
	}
	return n
}

// eventBatch encodes events first..first+n-1 as the source writes them.
func eventBatch(tb testing.TB, first, n int64) []byte {
	g := generator(tb)
	var e abi.Encoder
	var row []byte
	for i := first; i < first+n; i++ {
		row = g.AppendRow(row[:0], i)
		e.Record(abi.TagMain, nil, row, g.Timestamp(i))
	}
	return e.B
}

// statelessOps are the operators that take the source's events: the
// stateless queries and the prep stages.
var statelessOps = []struct{ op, config string }{
	{queries.Q0, ""}, {queries.Q1, ""}, {queries.Q2, ""},
	{queries.Q3Prep, ""}, {queries.Q4Prep, ""}, {queries.Q5Prep, ""},
	{queries.Q7Prep, `{"shards": 32}`}, {queries.Q8Prep, ""},
}

func TestWasmMatchesNative(t *testing.T) {
	ctx := context.Background()
	for _, o := range statelessOps {
		t.Run(o.op, func(t *testing.T) {
			w, n := openWasm(t, o.op, o.config), openNative(t, o.op, o.config)
			for round := range int64(3) {
				batch := eventBatch(t, round*5000, 1+round*2000)
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
			}
		})
	}
}

const guestBatch = 1024

func BenchmarkGuest(b *testing.B) {
	ctx := context.Background()
	batch := eventBatch(b, 0, guestBatch)
	for _, o := range statelessOps {
		run := func(b *testing.B, process func([]byte) ([]byte, error)) {
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := process(batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*guestBatch), "ns/event")
		}
		b.Run(o.op+"/wasm", func(b *testing.B) {
			w := openWasm(b, o.op, o.config)
			run(b, func(batch []byte) ([]byte, error) { return w.Process(ctx, 0, batch) })
		})
		b.Run(o.op+"/native", func(b *testing.B) {
			n := openNative(b, o.op, o.config)
			run(b, func(batch []byte) ([]byte, error) { return n.Process(0, batch) })
		})
	}
}

// BenchmarkGuestKeyed measures the keyed operators that take every bid
// (q4-max, q5-count, q7-local) on the output of their prep operator over
// the first 64 Ki events, a batch of 1024 events' output per call, with
// sdktest's in-memory state on both sides (no watermarks: nothing fires).
func BenchmarkGuestKeyed(b *testing.B) {
	ctx := context.Background()
	const batches = 64
	for _, o := range []struct{ prep, prepConfig, op string }{
		{queries.Q4Prep, "", queries.Q4Max},
		{queries.Q5Prep, "", queries.Q5Count},
		{queries.Q7Prep, `{"shards": 32}`, queries.Q7Local},
	} {
		prep := openNative(b, o.prep, o.prepConfig)
		var in [][]byte
		records := 0
		for i := range int64(batches) {
			out, err := prep.Process(0, eventBatch(b, i*guestBatch, guestBatch))
			if err != nil {
				b.Fatal(err)
			}
			for d := abi.NewDecoder(out); d.More(); records++ {
				var ev abi.Event
				if err := d.Next(&ev); err != nil {
					b.Fatal(err)
				}
			}
			in = append(in, bytes.Clone(out))
		}
		run := func(b *testing.B, process func([]byte) ([]byte, error)) {
			b.ReportAllocs()
			calls := 0
			for b.Loop() {
				if _, err := process(in[calls%batches]); err != nil {
					b.Fatal(err)
				}
				calls++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())*batches/float64(calls*records), "ns/record")
		}
		b.Run(o.op+"/wasm", func(b *testing.B) {
			w := openWasm(b, o.op, "")
			run(b, func(batch []byte) ([]byte, error) { return w.Process(ctx, 0, batch) })
		})
		b.Run(o.op+"/native", func(b *testing.B) {
			n := openNative(b, o.op, "")
			run(b, func(batch []byte) ([]byte, error) { return n.Process(0, batch) })
		})
	}
}

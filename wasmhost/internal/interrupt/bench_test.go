package interrupt

import (
	"context"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// The cost of interruptibility, three ways, on wazero's compiler:
//
//   - none: the original module on a runtime without CloseOnContextDone
//     (the guest cannot be stopped: the baseline);
//   - wazero: the original module on a runtime WithCloseOnContextDone(true)
//     (a call into Go at every loop header);
//   - instrumented: the instrumented module on a runtime without
//     CloseOnContextDone.
//
// All calls use context.Background(), so only the code inside the guest
// differs; the per-call deadline machinery of the host is the same
// whichever way the guest is stopped.
//
//	go test -run '^$' -bench . -benchtime 2s ./wasmhost/internal/interrupt

type variant struct {
	name        string
	closeOnDone bool
	instrument  bool
}

var variants = []variant{{"none", false, false}, {"wazero", true, false}, {"instrumented", false, true}}

func (v variant) wasm(b *testing.B, orig []byte) []byte {
	if v.instrument {
		return mustInstrument(b, orig)
	}
	return orig
}

// BenchmarkProcess runs the bench module's map operator (a Go guest that
// upper-cases 100-byte values) on batches of 1024 records through the ABI,
// as the host does: weir_buffer, write the batch, weir_process.
func BenchmarkProcess(b *testing.B) {
	orig := buildGo(b, benchDir)
	const records = 1024
	batch := sampleBatch(records, 100)
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			g := openMap(b, newRuntime(b, compiler, v.closeOnDone), v.wasm(b, orig))
			ctx := context.Background()
			if err := g.processCtx(ctx, batch); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := g.processCtx(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/records, "ns/record")
		})
	}
}

// BenchmarkLoop runs control.wat's nested(1000): 499,500 iterations of a
// tight inner loop (a compare, a multiply-add, an increment), 1000 of an
// outer one.
func BenchmarkLoop(b *testing.B) {
	orig := testWasm(b, "control")
	const n, iterations = 1000, 1000*999/2 + 1000
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			rt := newRuntime(b, compiler, v.closeOnDone)
			if _, err := rt.NewHostModuleBuilder("env").NewFunctionBuilder().
				WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, _ api.Module, s []uint64) { s[0]++ }),
					[]api.ValueType{api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}).
				Export("inc").Instantiate(context.Background()); err != nil {
				b.Fatal(err)
			}
			mod, err := rt.InstantiateWithConfig(context.Background(), v.wasm(b, orig), wazero.NewModuleConfig())
			if err != nil {
				b.Fatal(err)
			}
			fn := mod.ExportedFunction("nested")
			stack := []uint64{n}
			ctx := context.Background()
			for b.Loop() {
				stack[0] = n
				if err := fn.CallWithStack(ctx, stack); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/iterations, "ns/iteration")
		})
	}
}

// BenchmarkInstrument instruments the bench module (a Go guest of about
// 3 MB).
func BenchmarkInstrument(b *testing.B) {
	wasm := buildGo(b, benchDir)
	b.SetBytes(int64(len(wasm)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Instrument(wasm); err != nil {
			b.Fatal(err)
		}
	}
}

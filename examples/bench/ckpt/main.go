// Command ckpt is the module of the checkpointing benchmarks
// (checkpoint_bench_test.go in this folder): the operators of
// examples/internal/benchops (keyedcount for the throughput cost of
// checkpoints) plus "bigstate", which keeps a large value per key so that a
// job can hold a gigabyte of keyed state for the incremental-checkpoint and
// recovery benchmarks.
//
// It knows only the SDK: jobs, sources, checkpoint storage and what is
// measured belong to the benchmarks (the _test.go files of this folder).
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o ckpt.wasm .
// (the benchmarks build it themselves).
package main

import (
	_ "github.com/weirstream/weir/examples/internal/benchops"
	"github.com/weirstream/weir/sdk"
	"github.com/weirstream/weir/sdk/codec"
)

// BigState is the name of the large-state operator.
const BigState = "bigstate"

// bigState (keyed) stores each record's value as its key's state,
// overwriting the previous one, and emits nothing: the state, not the
// output, is what the benchmarks measure. A blind write (no read first)
// keeps the per-record cost to one state call.
type bigState struct{ v *sdk.ValueState[[]byte] }

func (b *bigState) Open(ctx *sdk.Context) (err error) {
	b.v, err = sdk.NewValueState(ctx, "value", codec.Raw)
	return err
}

func (b *bigState) Process(_ *sdk.Context, r sdk.Record) error {
	return b.v.Set(r.Value)
}

func init() {
	sdk.Export(BigState, func() sdk.Operator { return &bigState{} }, sdk.Keyed())
}

func main() {}

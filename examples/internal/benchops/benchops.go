// Package benchops holds the operators of the Weir benchmarks, registered
// with the SDK when the package is imported: the bench module
// (examples/bench) imports it for the Wasm build, and the runtime's
// benchmarks import it to run the very same code natively (sdk.Native), so
// that the two can be compared.
//
//   - map (not keyed): a stateless transform; emits the record with its value
//     upper-cased (ASCII), written in place into the output buffer: per-byte
//     work on every record.
//   - rekey (not keyed): a stateless map that re-keys each record by the first
//     8 bytes of its value and emits the value unchanged: the framework's cost
//     per record (decode, dispatch, encode, copy) with almost no user work.
//   - keyedcount (keyed): counts records per key in ValueState[int64] with the
//     binary codec and emits key and the count as 8 bytes, big endian.
//
// Neither allocates per record.
//
// BenchmarkGuest (wasm_test.go) runs them in Wasm through wasmhost and
// natively, batch by batch, and reports the per-record cost of each;
// TestWasmMatchesNative checks that both give the same bytes.
package benchops

import (
	"encoding/binary"
	"strconv"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/sdk"
	"github.com/weirstream/weir/sdk/codec"
)

// Operator names.
const (
	Map        = "map"
	Rekey      = "rekey"
	KeyedCount = "keyedcount"
)

// ValueSize is the size of the record values of SampleBatch.
const ValueSize = 100

type upper struct{}

func (*upper) Process(ctx *sdk.Context, r sdk.Record) error {
	out := ctx.EmitReserve(r.Key, len(r.Value))
	for i, c := range r.Value {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		out[i] = c
	}
	return nil
}

type rekey struct{}

func (*rekey) Process(ctx *sdk.Context, r sdk.Record) error {
	k := r.Value
	if len(k) > 8 {
		k = k[:8]
	}
	ctx.Emit(k, r.Value)
	return nil
}

type keyedCount struct{ n *sdk.ValueState[int64] }

func (k *keyedCount) Open(ctx *sdk.Context) (err error) {
	k.n, err = sdk.NewValueState(ctx, "count", codec.Int64)
	return err
}

func (k *keyedCount) Process(ctx *sdk.Context, r sdk.Record) error {
	n, _, err := k.n.Get()
	if err != nil {
		return err
	}
	n++
	if err := k.n.Set(n); err != nil {
		return err
	}
	binary.BigEndian.PutUint64(ctx.EmitReserve(r.Key, 8), uint64(n))
	return nil
}

func init() {
	sdk.Export(Map, func() sdk.Operator { return &upper{} })
	sdk.Export(Rekey, func() sdk.Operator { return &rekey{} })
	sdk.Export(KeyedCount, func() sdk.Operator { return &keyedCount{} }, sdk.Keyed())
}

// SampleBatch returns an input batch of records records with keys "key-0"
// to "key-<keys-1>" in turn, ValueSize-byte lower-case values and timestamps
// 0, 1, 2...: the input of the benchmarks, so that native and Wasm runs see
// the same bytes.
func SampleBatch(records, keys int) []byte {
	var e abi.Encoder
	value := make([]byte, ValueSize)
	for i := range value {
		value[i] = 'a' + byte(i%26)
	}
	var key []byte
	for i := range records {
		key = strconv.AppendInt(append(key[:0], "key-"...), int64(i%keys), 10)
		e.Record(abi.TagMain, key, value, int64(i))
	}
	return e.B
}

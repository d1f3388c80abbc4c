package sdk_test

import (
	"fmt"
	"testing"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/sdk"
	"github.com/weirstream/weir/sdk/sdktest"
)

// benchBatch is a batch of n records with keys from a set of keys distinct
// keys and 100-byte values.
func benchBatch(n, keys int) []byte {
	var e abi.Encoder
	value := make([]byte, 100)
	for i := range value {
		value[i] = 'a' + byte(i%26)
	}
	for i := range n {
		e.Record(0, fmt.Appendf(nil, "key-%d", i%keys), value, int64(i))
	}
	return e.B
}

func benchmarkNative(b *testing.B, op string, st sdk.NativeState) {
	const records = 1024
	batch := benchBatch(records, 1000)
	n := sdk.NewNative(st, sdktest.NewTimers(), nil)
	if err := n.Open(abi.OpenInfo{Operator: op, Parallelism: 1, MaxParallelism: 128, Inputs: 1}); err != nil {
		b.Fatal(err)
	}
	if _, err := n.Process(0, batch); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := n.Process(0, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*records), "ns/record")
}

// BenchmarkNativeProcess measures the SDK's per-record cost natively: decode,
// dispatch, output (plain: the record copied to the output), and keyed state
// over the in-memory store (counter: get, set, 8-byte output).
func BenchmarkNativeProcess(b *testing.B) {
	b.Run("plain", func(b *testing.B) { benchmarkNative(b, "plain", nil) })
	b.Run("counter", func(b *testing.B) { benchmarkNative(b, "counter", sdktest.NewState()) })
}

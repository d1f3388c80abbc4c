package state_test

import (
	"encoding/binary"
	"testing"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/state"
)

func BenchmarkZZCopyPass(b *testing.B) {
	const n = 100_000
	keys, kgs := benchKeys(n)
	m := state.NewMemory()
	id, _ := m.Register("count", "n", abi.StateValue)
	var buf [8]byte
	step := func(j int) {
		v, ok, _ := m.Get(id, kgs[j], keys[j], nil)
		var c uint64
		if ok {
			c = binary.LittleEndian.Uint64(v)
		}
		binary.LittleEndian.PutUint64(buf[:], c+1)
		_ = m.Put(id, kgs[j], keys[j], nil, buf[:])
	}
	for j := 0; j < n; j++ {
		step(j)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, _ := m.Snapshot(state.FormCanonical, "")
		for j := 0; j < n; j++ {
			step(j)
		}
		b.StopTimer()
		s.Release()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/key")
}

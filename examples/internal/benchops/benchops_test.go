package benchops

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/sdk"
	"github.com/weirstream/weir/sdk/sdktest"
)

func open(t testing.TB, op string) *sdk.Native {
	t.Helper()
	n := sdk.NewNative(sdktest.NewState(), sdktest.NewTimers(), nil)
	if err := n.Open(abi.OpenInfo{Operator: op, Parallelism: 1, MaxParallelism: abi.DefaultMaxParallelism, Inputs: 1}); err != nil {
		t.Fatal(err)
	}
	return n
}

func decode(t testing.TB, out []byte) []abi.Event {
	t.Helper()
	var evs []abi.Event
	d := abi.NewDecoder(out)
	for d.More() {
		var ev abi.Event
		if err := d.Next(&ev); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	return evs
}

func TestMap(t *testing.T) {
	out, err := open(t, Map).Process(0, SampleBatch(3, 2))
	if err != nil {
		t.Fatal(err)
	}
	evs := decode(t, out)
	want := bytes.ToUpper(bytes.Repeat([]byte("abcdefghijklmnopqrstuvwxyz"), 4)[:ValueSize])
	if len(evs) != 3 {
		t.Fatalf("%d records out", len(evs))
	}
	for i, ev := range evs {
		if !bytes.Equal(ev.Value, want) || string(ev.Key) != []string{"key-0", "key-1", "key-0"}[i] || ev.Timestamp != int64(i) {
			t.Errorf("record %d: %q=%q @%d", i, ev.Key, ev.Value, ev.Timestamp)
		}
	}
}

func TestKeyedCount(t *testing.T) {
	n := open(t, KeyedCount)
	for round := range 2 {
		out, err := n.Process(0, SampleBatch(5, 2))
		if err != nil {
			t.Fatal(err)
		}
		// keys 0,1,0,1,0 per round: counts continue across batches.
		want := []uint64{1, 1, 2, 2, 3}
		if round == 1 {
			want = []uint64{4, 3, 5, 4, 6}
		}
		for i, ev := range decode(t, out) {
			if got := binary.BigEndian.Uint64(ev.Value); got != want[i] {
				t.Errorf("round %d record %d (%s): count %d, want %d", round, i, ev.Key, got, want[i])
			}
		}
	}
}

func benchmark(b *testing.B, op string) {
	const records = 1024
	batch := SampleBatch(records, 1000)
	n := open(b, op)
	if _, err := n.Process(0, batch); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(batch)))
	b.ResetTimer()
	for range b.N {
		if _, err := n.Process(0, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*records), "ns/record")
}

// BenchmarkNative is the native side of the Wasm/native ratio: batches of
// 1024 records of 100 bytes over 1000 keys; keyedcount uses the in-memory
// state of sdktest (the runtime's benchmark uses its own backends).
func BenchmarkNative(b *testing.B) {
	b.Run(Map, func(b *testing.B) { benchmark(b, Map) })
	b.Run(KeyedCount, func(b *testing.B) { benchmark(b, KeyedCount) })
}

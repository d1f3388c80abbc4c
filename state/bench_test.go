package state_test

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/state"
)

// benchBackends are the backends every benchmark runs on. pebble-cold has
// a cell cache far smaller than the benchmark's working set, so it measures
// the read-through and write-back path rather than the cache.
var benchBackends = []struct {
	name string
	open func(b *testing.B) state.Backend
}{
	{"memory", func(*testing.B) state.Backend { return state.NewMemory() }},
	{"pebble", func(b *testing.B) state.Backend { return openPebble(b, b.TempDir(), state.PebbleOptions{}) }},
	{"pebble-cold", func(b *testing.B) state.Backend {
		return openPebble(b, b.TempDir(), state.PebbleOptions{CacheBytes: 1 << 20})
	}},
}

// benchKeys returns n 8-byte keys with their key groups (of 128), in a
// shuffled access order.
func benchKeys(n int) (keys [][]byte, kgs []int) {
	keys, kgs = make([][]byte, n), make([]int, n)
	for i := range keys {
		keys[i] = binary.BigEndian.AppendUint64(nil, uint64(i))
		kgs[i] = abi.KeyGroup(keys[i], abi.DefaultMaxParallelism)
	}
	r := rand.New(rand.NewPCG(1, 1))
	r.Shuffle(n, func(i, j int) {
		keys[i], keys[j] = keys[j], keys[i]
		kgs[i], kgs[j] = kgs[j], kgs[i]
	})
	return keys, kgs
}

// counterStep returns the keyed count's per-record work: Get key j's
// 8-byte count and Put it back incremented.
func counterStep(b *testing.B, be state.Backend, id state.ID, keys [][]byte, kgs []int) func(j int) {
	var buf [8]byte
	return func(j int) {
		v, ok, err := be.Get(id, kgs[j], keys[j], nil)
		if err != nil {
			b.Fatal(err)
		}
		var c uint64
		if ok {
			c = binary.LittleEndian.Uint64(v)
		}
		binary.LittleEndian.PutUint64(buf[:], c+1)
		if err := be.Put(id, kgs[j], keys[j], nil, buf[:]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetPut is the keyed count: per record, Get a key's 8-byte count
// and Put it back incremented, over 100k distinct keys that all exist.
func BenchmarkGetPut(b *testing.B) {
	const n = 100_000
	keys, kgs := benchKeys(n)
	for _, bb := range benchBackends {
		b.Run(bb.name, func(b *testing.B) {
			be := bb.open(b)
			id, err := be.Register("count", "n", abi.StateValue)
			if err != nil {
				b.Fatal(err)
			}
			step := counterStep(b, be, id, keys, kgs)
			for j := 0; j < n; j++ { // steady state: every key exists
				step(j)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				step(i % n)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkAppendScan is a window buffer: per op, Append a 16-byte value to
// one of 1000 keys' lists; every 16th append to a key Scans and Clears it.
func BenchmarkAppendScan(b *testing.B) {
	const n, window = 1000, 16
	keys, kgs := benchKeys(n)
	value := make([]byte, 16)
	for _, bb := range benchBackends[:2] {
		b.Run(bb.name, func(b *testing.B) {
			be := bb.open(b)
			id, err := be.Register("window", "buffer", abi.StateList)
			if err != nil {
				b.Fatal(err)
			}
			scanned := 0
			count := func(_, v []byte) error { scanned += len(v); return nil }
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				j := i % n
				binary.LittleEndian.PutUint64(value, uint64(i))
				if err := be.Append(id, kgs[j], keys[j], value); err != nil {
					b.Fatal(err)
				}
				if (i/n)%window == window-1 {
					if err := be.Scan(id, kgs[j], keys[j], count); err != nil {
						b.Fatal(err)
					}
					if err := be.Clear(id, kgs[j], keys[j]); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkTimers registers one event-time timer per op (10k keys,
// timestamps advancing by 1 every 10 ops) and fires every 1000 ops up to
// the current timestamp: ns/op is one register plus one fire.
func BenchmarkTimers(b *testing.B) {
	const n = 10_000
	keys, kgs := benchKeys(n)
	for _, bb := range benchBackends[:2] {
		b.Run(bb.name, func(b *testing.B) {
			be := bb.open(b)
			fired := 0
			onTimer := func(state.Timer) error { fired++; return nil }
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				j := i % n
				ts := int64(i / 10)
				if err := be.RegisterTimer(state.Timer{Timestamp: ts + 50, KeyGroup: kgs[j], Key: keys[j]}); err != nil {
					b.Fatal(err)
				}
				if i%1000 == 999 {
					if err := be.FireTimers(0, abi.EventTime, ts, onTimer); err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := be.FireTimers(0, abi.EventTime, int64(b.N), onTimer); err != nil {
				b.Fatal(err)
			}
			if fired > b.N {
				b.Fatalf("%d timers fired for %d registered", fired, b.N)
			}
		})
	}
}

// TestGetPutAllocs guards the hot path: a read-modify-write of an existing
// value allocates nothing, on either backend.
func TestGetPutAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	keys, kgs := benchKeys(1000)
	for _, c := range []struct {
		name string
		b    state.Backend
	}{
		{"memory", state.NewMemory()},
		{"pebble", openPebble(t, t.TempDir(), state.PebbleOptions{})},
	} {
		id, err := c.b.Register("count", "n", abi.StateValue)
		if err != nil {
			t.Fatal(err)
		}
		var buf [8]byte
		i := 0
		step := func() {
			j := i % len(keys)
			i++
			v, ok, err := c.b.Get(id, kgs[j], keys[j], nil)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				copy(buf[:], v)
			}
			buf[0]++
			if err := c.b.Put(id, kgs[j], keys[j], nil, buf[:]); err != nil {
				t.Fatal(err)
			}
		}
		for range keys {
			step()
		}
		if n := testing.AllocsPerRun(5000, step); n != 0 {
			t.Errorf("%s: Get+Put of an existing value allocates %.2f times", c.name, n)
		}
		if err := c.b.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

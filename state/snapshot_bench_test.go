package state_test

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/state"
)

// benchStateMB sizes the state of the export, import and Pebble snapshot
// benchmarks (the measurements in the report used 1024 and 200).
var benchStateMB = flag.Int("state.bench-mb", 64, "approximate state size of the snapshot benchmarks, in MiB")

// fillBench writes about mb MiB of mixed state: per key a 100-byte value,
// every 4th key a map of 4 entries and a timer, every 8th a list of 8
// items. Keys are 8 bytes, spread over 128 key groups.
func fillBench(b testing.TB, be state.Backend, mb int) {
	b.Helper()
	ids := make([]state.ID, 3)
	for i, s := range snapStates[:3] {
		id, err := be.Register(s.Operator, s.Name, s.Kind)
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = id
	}
	// Per key about 100+8 + (4*(32+8))/4 + (8*50)/8 bytes of payload.
	n := mb << 20 / 200
	val := bytes.Repeat([]byte("v"), 100)
	entry := bytes.Repeat([]byte("m"), 32)
	item := bytes.Repeat([]byte("l"), 50)
	var key [8]byte
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		binary.BigEndian.PutUint64(key[:], uint64(i)*0x9E3779B97F4A7C15)
		kg := abi.KeyGroup(key[:], abi.DefaultMaxParallelism)
		binary.LittleEndian.PutUint32(val, uint32(i))
		must(be.Put(ids[0], kg, key[:], nil, val))
		if i%4 == 0 {
			for j := byte(0); j < 4; j++ {
				must(be.Put(ids[1], kg, key[:], []byte{'s', j}, entry))
			}
			must(be.RegisterTimer(state.Timer{Owner: 0, Timestamp: int64(i), KeyGroup: kg, Key: key[:]}))
		}
		if i%8 == 0 {
			for j := 0; j < 8; j++ {
				must(be.Append(ids[2], kg, key[:], item))
			}
		}
	}
}

// benchSnapshotBackends are the backends of the export and import
// benchmarks; Pebble with caches smaller than the state, as it would be.
var benchSnapshotBackends = []struct {
	name string
	open func(b *testing.B) state.Backend
}{
	{"memory", func(*testing.B) state.Backend { return state.NewMemory() }},
	{"pebble", func(b *testing.B) state.Backend { return openPebble(b, b.TempDir(), state.PebbleOptions{}) }},
}

// BenchmarkExport measures Export of the whole state to io.Discard; MB/s
// counts stream bytes.
func BenchmarkExport(b *testing.B) {
	for _, bk := range benchSnapshotBackends {
		b.Run(bk.name, func(b *testing.B) {
			be := bk.open(b)
			fillBench(b, be, *benchStateMB)
			snap, err := be.(state.Snapshotter).Snapshot(state.FormCanonical, "")
			if err != nil {
				b.Fatal(err)
			}
			defer snap.Release()
			var cw countWriter
			if err := snap.Export(&cw, fullRange, ownerName); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(cw.n)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := snap.Export(io.Discard, fullRange, ownerName); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// BenchmarkImport measures Import of a stream of the whole state into an
// empty backend (for Pebble up to the ingested sstables); MB/s counts
// stream bytes.
func BenchmarkImport(b *testing.B) {
	src := state.NewMemory()
	fillBench(b, src, *benchStateMB)
	data := export(b, src, fullRange)
	_ = src.Close()
	for _, bk := range benchSnapshotBackends {
		b.Run(bk.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				be := bk.open(b)
				b.StartTimer()
				if err := state.Import(be, bytes.NewReader(data), fullRange, allOwners); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				_ = be.Close()
				b.StartTimer()
			}
		})
	}
}

// BenchmarkSnapshotSync measures the synchronous part of a snapshot (the
// Snapshot call; Release is not timed). The Pebble cases report the
// median (p50-ms) and worst (max-ms) snapshot as well as the first, which
// flushes the whole fill.
//
//   - memory-1M: 1M value cells and 250k timers in 128 key groups.
//   - pebble-native / pebble-canonical: the state of fillBench, with 1% of
//     the keys changed before each snapshot (so each flushes what a
//     checkpoint interval would have written).
func BenchmarkSnapshotSync(b *testing.B) {
	b.Run("memory-1M", func(b *testing.B) {
		m := state.NewMemory()
		id, err := m.Register("count", "n", abi.StateValue)
		if err != nil {
			b.Fatal(err)
		}
		keys, kgs := benchKeys(1_000_000)
		for i, k := range keys {
			if err := m.Put(id, kgs[i], k, nil, k); err != nil {
				b.Fatal(err)
			}
			if i%4 == 0 {
				if err := m.RegisterTimer(state.Timer{Timestamp: int64(i), KeyGroup: kgs[i], Key: k}); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			s, err := m.Snapshot(state.FormCanonical, "")
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			_ = s.Release()
			b.StartTimer()
		}
	})
	for _, form := range []struct {
		name string
		form state.SnapshotForm
	}{{"native", state.FormNative}, {"canonical", state.FormCanonical}} {
		b.Run("pebble-"+form.name, func(b *testing.B) {
			p := openPebble(b, b.TempDir(), state.PebbleOptions{})
			fillBench(b, p, *benchStateMB)
			id, err := p.Register(snapStates[0].Operator, snapStates[0].Name, snapStates[0].Kind)
			if err != nil {
				b.Fatal(err)
			}
			n := *benchStateMB << 20 / 200
			val := bytes.Repeat([]byte("w"), 100)
			var key [8]byte
			snapshot := func() time.Duration {
				dir := b.TempDir()
				start := time.Now()
				s, err := p.Snapshot(form.form, dir)
				if err != nil {
					b.Fatal(err)
				}
				d := time.Since(start)
				if err := s.Release(); err != nil {
					b.Fatal(err)
				}
				return d
			}
			// The first snapshot flushes what the fill left in the caches
			// and memtables: not a checkpoint interval's worth.
			first := snapshot()
			var times []time.Duration
			var total time.Duration
			b.StopTimer()
			for i := 0; i < b.N; i++ {
				for j := 0; j < n/100; j++ {
					binary.BigEndian.PutUint64(key[:], uint64((i*n/100+j*97)%n)*0x9E3779B97F4A7C15)
					if err := p.Put(id, abi.KeyGroup(key[:], abi.DefaultMaxParallelism), key[:], nil, val); err != nil {
						b.Fatal(err)
					}
				}
				d := snapshot()
				times = append(times, d)
				total += d
			}
			slices.Sort(times)
			b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/op")
			b.ReportMetric(float64(first.Microseconds())/1000, "first-ms")
			b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(times[len(times)-1].Microseconds())/1000, "max-ms")
		})
	}
}

// BenchmarkGetPutUnderSnapshot is BenchmarkGetPut (memory) while
// snapshots are alive: a snapshot every 1M or 10M records (0.1 s or 1 s at
// 10M records/s), each released only when the next is taken (an export
// that lasts the whole interval, the worst case), so every one of the 100k
// keys' cells is copied once per snapshot.
func BenchmarkGetPutUnderSnapshot(b *testing.B) {
	const n = 100_000
	keys, kgs := benchKeys(n)
	for _, every := range []int{1_000_000, 10_000_000} {
		b.Run(fmt.Sprintf("every-%dM", every/1_000_000), func(b *testing.B) {
			m := state.NewMemory()
			id, err := m.Register("count", "n", abi.StateValue)
			if err != nil {
				b.Fatal(err)
			}
			step := counterStep(b, m, id, keys, kgs)
			for j := 0; j < n; j++ {
				step(j)
			}
			var live state.Snapshot
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if i%every == 0 {
					if live != nil {
						_ = live.Release()
					}
					if live, err = m.Snapshot(state.FormCanonical, ""); err != nil {
						b.Fatal(err)
					}
				}
				step(i % n)
			}
			b.StopTimer()
			if live != nil {
				_ = live.Release()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

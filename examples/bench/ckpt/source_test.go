//go:build !wasip1

package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/runtime"
	"github.com/weirstream/weir/runtime/clock"
)

// bigGenName is the source kind of the large-state benchmarks.
const bigGenName = "bigstate-gen"

// bigGenConfig is the config of a bigstate-gen source node.
//
// The source has two phases. The load writes every key 0..keys-1 once, as
// fast as the job takes it. The churn then writes churnPerSec records per
// second (over all subtasks) to keys drawn uniformly from 0..keys-1: with
// one checkpoint per second, churnPerSec = keys/100 changes 1 % of the keys
// between two checkpoints (a little less: a key can be drawn twice).
// churnPerSec = 0 ends the input after the load.
//
// Values are valueSize pseudo-random bytes, a pure function of the
// record's index: incompressible, so that the state's size on disk is what
// the benchmark says it is (Pebble compresses blocks).
type bigGenConfig struct {
	Keys        int64  `json:"keys"`
	ValueSize   int    `json:"valueSize"`
	ChurnPerSec int64  `json:"churnPerSec"`
	Seed        uint64 `json:"seed"`
}

// genProgress is what the benchmarks observe of the sources of one job.
type genProgress struct {
	loaded   atomic.Int64 // load records emitted, over subtasks and attempts
	loadedAt atomic.Int64 // unix nanos when loaded first reached keys; 0 before
	churned  atomic.Int64 // churn records emitted
}

// loadTime returns when the load completed, if it has.
func (p *genProgress) loadTime() (time.Time, bool) {
	ns := p.loadedAt.Load()
	return time.Unix(0, ns), ns != 0
}

// newBigGenFactory returns the bigstate-gen factory; the sources it makes
// report to p.
func newBigGenFactory(p *genProgress) runtime.SourceFactory {
	return func(config []byte) (func() runtime.Source, error) {
		var c bigGenConfig
		if err := runtime.DecodeConfig(config, &c); err != nil {
			return nil, err
		}
		if c.Keys <= 0 {
			return nil, fmt.Errorf("config.keys: must be > 0, got %d", c.Keys)
		}
		if c.ValueSize < 0 || c.ValueSize > abi.MaxFieldLen {
			return nil, fmt.Errorf("config.valueSize: must be between 0 and %d, got %d", abi.MaxFieldLen, c.ValueSize)
		}
		if c.ChurnPerSec < 0 {
			return nil, fmt.Errorf("config.churnPerSec: must be >= 0, got %d", c.ChurnPerSec)
		}
		return func() runtime.Source { return &bigGen{cfg: c, progress: p} }, nil
	}
}

// bigGen is one subtask of a bigstate-gen node. Subtask s of P produces
// the global indices s, s+P, s+2P, ...; index i < keys is the load record
// of key i, index i >= keys a churn record of a random key. Its checkpoint
// position is how many indices it has produced.
type bigGen struct {
	cfg      bigGenConfig
	progress *genProgress

	clock                clock.Clock
	subtask, parallelism uint64
	next                 uint64 // this subtask's next sequence number
	restoredP            uint64 // parallelism of the restored position, 0 if none

	// churn rate, on the task clock, from the first churn Poll of this run
	churnStart time.Time
	churned    int64

	kbuf, vbuf []byte
}

var _ runtime.CheckpointedSource = (*bigGen)(nil)

func (g *bigGen) Open(_ context.Context, info runtime.TaskInfo) error {
	g.clock = info.Clock
	if g.clock == nil {
		g.clock = clock.Real{}
	}
	g.subtask, g.parallelism = uint64(info.Subtask), uint64(info.Parallelism)
	if g.restoredP != 0 && g.restoredP != g.parallelism {
		return fmt.Errorf("%s: restored at parallelism %d from a checkpoint taken at %d: this benchmark source cannot rescale",
			bigGenName, g.parallelism, g.restoredP)
	}
	g.vbuf = make([]byte, g.cfg.ValueSize)
	return nil
}

func (g *bigGen) index() uint64 { return g.next*g.parallelism + g.subtask }

func (g *bigGen) Poll(ctx context.Context, w runtime.RecordWriter, maxRecords int) (bool, error) {
	keys := uint64(g.cfg.Keys)
	n := 0
	for ; n < maxRecords; n++ {
		i := g.index()
		if i >= keys {
			break
		}
		g.write(w, i, i)
	}
	if n > 0 {
		if g.progress.loaded.Add(int64(n)) >= g.cfg.Keys {
			g.progress.loadedAt.CompareAndSwap(0, time.Now().UnixNano())
		}
		return false, nil
	}
	if g.cfg.ChurnPerSec == 0 {
		return true, nil
	}
	now := g.clock.Now()
	if g.churnStart.IsZero() {
		g.churnStart = now
	}
	rate := float64(g.cfg.ChurnPerSec) / float64(g.parallelism) // per second, this subtask
	// The first record is due at once, then one every 1/rate seconds.
	due := int64(now.Sub(g.churnStart).Seconds()*rate) + 1 - g.churned
	if due <= 0 {
		wait := g.churnStart.Add(time.Duration(float64(g.churned) / rate * float64(time.Second))).Sub(now)
		select {
		case <-g.clock.After(wait):
		case <-ctx.Done(): // the task's poll deadline: it has control events to handle
		}
		return false, nil
	}
	k := min(due, int64(maxRecords))
	for range k {
		i := g.index()
		g.write(w, i, mix64(g.cfg.Seed^i)%keys)
	}
	g.churned += k
	g.progress.churned.Add(k)
	return false, nil
}

// write emits index i as a record of key.
func (g *bigGen) write(w runtime.RecordWriter, i, key uint64) {
	g.kbuf = strconv.AppendUint(g.kbuf[:0], key, 10)
	fillValue(g.vbuf, g.cfg.Seed, i)
	w.Write(g.kbuf, g.vbuf, abi.NoTimestamp)
	g.next++
}

// Snapshot returns (next, parallelism).
func (g *bigGen) Snapshot() ([]byte, error) {
	b := binary.BigEndian.AppendUint64(nil, g.next)
	return binary.BigEndian.AppendUint64(b, g.parallelism), nil
}

// Restore takes this subtask's position back; the parallelism must not
// have changed (checked in Open, which knows the parallelism).
func (g *bigGen) Restore(info runtime.TaskInfo, states [][]byte) error {
	if len(states) != info.Parallelism {
		return fmt.Errorf("%s: %d positions for parallelism %d: this benchmark source cannot rescale", bigGenName, len(states), info.Parallelism)
	}
	st := states[info.Subtask]
	if st == nil {
		return nil
	}
	if len(st) != 16 {
		return errors.New(bigGenName + ": position is not 16 bytes")
	}
	g.next = binary.BigEndian.Uint64(st)
	g.restoredP = binary.BigEndian.Uint64(st[8:])
	return nil
}

func (g *bigGen) Close() error { return nil }

// fillValue fills dst with the pseudo-random bytes of index i (splitmix64).
func fillValue(dst []byte, seed, i uint64) {
	x := mix64(seed ^ (i * 0x9e3779b97f4a7c15))
	for len(dst) >= 8 {
		x += 0x9e3779b97f4a7c15
		binary.LittleEndian.PutUint64(dst, mix64(x))
		dst = dst[8:]
	}
	var tail [8]byte
	binary.LittleEndian.PutUint64(tail[:], mix64(x+0x9e3779b97f4a7c15))
	copy(dst, tail[:])
}

// mix64 is splitmix64's finalizer: a bijection that scatters bits.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

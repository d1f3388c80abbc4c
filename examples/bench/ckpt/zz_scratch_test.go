//go:build !wasip1

package main

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/state"
)

func TestScratchSnapshot(t *testing.T) {
	dir := t.TempDir()
	p, err := state.OpenPebble(filepath.Join(dir, "db"), state.PebbleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	id, _ := p.Register("op", "count", abi.StateValue)
	var v [8]byte
	for round := 0; round < 6; round++ {
		t0 := time.Now()
		for i := 0; i < 500000; i++ {
			k := strconv.AppendInt(nil, int64(i%50000), 10)
			kg := abi.KeyGroup(k, 128)
			old, _, _ := p.Get(id, kg, k, nil)
			n := uint64(0)
			if len(old) == 8 {
				n = binary.BigEndian.Uint64(old)
			}
			binary.BigEndian.PutUint64(v[:], n+1)
			p.Put(id, kg, k, nil, v[:])
		}
		t1 := time.Now()
		err := p.Flush()
		t2 := time.Now()
		sd := filepath.Join(dir, "snap"+strconv.Itoa(round))
		os.MkdirAll(sd, 0o755)
		s, err := p.Snapshot(state.FormNative, sd)
		if err != nil {
			t.Fatal(err)
		}
		t3 := time.Now()
		var sz int64
		for _, f := range s.NativeFiles() {
			sz += f.Size
		}
		s.Release()
		t.Logf("round %d: updates %v, Flush %v, Snapshot %v, files %d bytes", round, t1.Sub(t0), t2.Sub(t1), t3.Sub(t2), sz)
	}
	_ = pebble.ErrNotFound
}

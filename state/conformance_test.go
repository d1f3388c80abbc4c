package state_test

import (
	"testing"

	"github.com/weirstream/weir/state"
	"github.com/weirstream/weir/state/statetest"
)

func TestMemoryConformance(t *testing.T) {
	statetest.RunConformance(t, func(*testing.T) state.Backend { return state.NewMemory() })
}

// The Pebble backend runs the suite with its default options and with tiny
// caches and batches, so that every read and write also goes through
// eviction, write-back, batch commits and timer-cache refills.
func TestPebbleConformance(t *testing.T) {
	for _, c := range []struct {
		name string
		opts state.PebbleOptions
	}{
		{"default", state.PebbleOptions{}},
		{"tiny", tinyPebbleOptions},
	} {
		t.Run(c.name, func(t *testing.T) {
			statetest.RunConformance(t, func(t *testing.T) state.Backend { return openPebble(t, t.TempDir(), c.opts) })
		})
	}
}

// tinyPebbleOptions make every cache and batch as small as allowed.
var tinyPebbleOptions = state.PebbleOptions{CacheBytes: 1, BatchBytes: 1, TimerCacheSize: 1, MemTableBytes: 1 << 20, BlockCacheBytes: 1 << 20}

func openPebble(t testing.TB, dir string, opts state.PebbleOptions) *state.Pebble {
	t.Helper()
	p, err := state.OpenPebble(dir, opts)
	if err != nil {
		t.Fatalf("OpenPebble(%s): %v", dir, err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

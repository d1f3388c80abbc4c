package state_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/state"
)

// snapBackends are the backends the snapshot tests run on, as sources and
// as targets of imports.
var snapBackends = []struct {
	name string
	open func(t testing.TB) state.Backend
}{
	{"memory", func(testing.TB) state.Backend { return state.NewMemory() }},
	{"pebble", func(t testing.TB) state.Backend { return openPebble(t, t.TempDir(), state.PebbleOptions{}) }},
	{"pebble-tiny", func(t testing.TB) state.Backend { return openPebble(t, t.TempDir(), tinyPebbleOptions) }},
}

func importStream(t testing.TB, b state.Backend, data []byte, kr abi.KeyGroupRange, m state.ImportMapping) {
	t.Helper()
	if err := state.Import(b, bytes.NewReader(data), kr, m); err != nil {
		t.Fatalf("Import: %v", err)
	}
}

// TestSnapshotRoundTrip exports a random state from every backend, checks
// the stream against the workload's model, imports it into every backend
// and checks the target by export and by reads (Get, Scan, FireTimers).
func TestSnapshotRoundTrip(t *testing.T) {
	ops := 6000
	if testing.Short() {
		ops = 1500
	}
	for _, src := range snapBackends {
		for _, dst := range snapBackends {
			t.Run(src.name+"->"+dst.name, func(t *testing.T) {
				b := src.open(t)
				w := newWorkload(t, 7, b, 300)
				w.run(ops)
				if len(w.d.cells) == 0 || len(w.d.lists) == 0 || len(w.d.timers) == 0 {
					t.Fatalf("degenerate workload: %v", w.d)
				}
				data := export(t, b, fullRange)
				got, kr, err := decodeStream(data)
				if err != nil {
					t.Fatal(err)
				}
				if kr != [2]int{0, 128} {
					t.Fatalf("header range %v", kr)
				}
				if diff := got.diff(w.d); diff != "" {
					t.Fatalf("export differs from the model (%v):\n%s", w.d, diff)
				}

				target := dst.open(t)
				// Reads before the import cache absent cells (Pebble): the
				// import must not be hidden behind them.
				id, err := target.Register("opA", "count", abi.StateValue)
				if err != nil {
					t.Fatal(err)
				}
				for c := range w.d.cells {
					if c.st == (stateName{"opA", "count"}) {
						if _, ok, err := target.Get(id, c.kg, []byte(c.key), nil); err != nil || ok {
							t.Fatalf("fresh target: Get = %v, %v", ok, err)
						}
					}
				}
				importStream(t, target, data, fullRange, allOwners)
				if diff := exportDump(t, target).diff(w.d); diff != "" {
					t.Fatalf("re-export after import differs:\n%s", diff)
				}
				checkReads(t, target, w.d)
			})
		}
	}
}

// TestSnapshotRescale splits a stream of key groups [0, 128) into two
// imports with different ranges (scale-out) and merges two exports back
// into one backend (scale-in); and an import whose mapping lacks an
// operator skips its states and timers.
func TestSnapshotRescale(t *testing.T) {
	for _, bk := range snapBackends[:2] {
		t.Run(bk.name, func(t *testing.T) {
			b := bk.open(t)
			w := newWorkload(t, 11, b, 400)
			w.run(5000)
			data := export(t, b, fullRange)

			parts := []abi.KeyGroupRange{{Start: 0, End: 43}, {Start: 43, End: 128}}
			union := newDump()
			var streams [][]byte
			for _, kr := range parts {
				nb := bk.open(t)
				importStream(t, nb, data, kr, allOwners)
				got := exportDump(t, nb)
				if diff := got.diff(w.d.restrict(kr.Start, kr.End, nil)); diff != "" {
					t.Fatalf("part %v:\n%s", kr, diff)
				}
				union.merge(got)
				streams = append(streams, export(t, nb, kr))
			}
			if diff := union.diff(w.d); diff != "" {
				t.Fatalf("union of the parts differs from the whole:\n%s", diff)
			}

			// Scale back in: both parts' streams into one backend.
			one := bk.open(t)
			for i, s := range streams {
				importStream(t, one, s, fullRange, allOwners)
				if _, kr, _ := decodeStream(s); kr != [2]int{parts[i].Start, parts[i].End} {
					t.Fatalf("part stream header range %v, want %v", kr, parts[i])
				}
			}
			if diff := exportDump(t, one).diff(w.d); diff != "" {
				t.Fatalf("scale-in differs:\n%s", diff)
			}
			checkReads(t, one, w.d)

			// Only opB is in this task, as owner 5.
			onlyB := state.ImportMapping{Owner: func(op string) (uint32, bool) { return 5, op == "opB" }}
			nb := bk.open(t)
			importStream(t, nb, data, fullRange, onlyB)
			want := w.d.restrict(0, 128, func(op string) bool { return op == "opB" })
			if len(want.timers) == 0 || len(want.cells) == 0 {
				t.Fatalf("degenerate: %v", want)
			}
			snap, err := nb.(state.Snapshotter).Snapshot(state.FormCanonical, "")
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := snap.Export(&buf, fullRange, func(o uint32) string { return map[uint32]string{5: "opB"}[o] }); err != nil {
				t.Fatal(err)
			}
			_ = snap.Release()
			got, _, err := decodeStream(buf.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if diff := got.diff(want); diff != "" {
				t.Fatalf("import of opB only:\n%s", diff)
			}
		})
	}
}

// TestSnapshotIsolation is the copy-on-write test: the task goroutine
// keeps writing (values, maps, lists, timers, clears, fires) while other
// goroutines export several overlapping snapshots; each export must equal
// the model as it was when its snapshot was taken. Run it with -race.
func TestSnapshotIsolation(t *testing.T) {
	for _, bk := range snapBackends[:2] {
		t.Run(bk.name, func(t *testing.T) {
			b := bk.open(t)
			w := newWorkload(t, 3, b, 2000)
			w.run(20000)
			type result struct {
				i    int
				data []byte
				err  error
			}
			const nsnap = 4
			results := make(chan result, nsnap)
			wants := make([]*dump, nsnap)
			var wg sync.WaitGroup
			for i := 0; i < nsnap; i++ {
				snap, err := b.(state.Snapshotter).Snapshot(state.FormCanonical, "")
				if err != nil {
					t.Fatal(err)
				}
				wants[i] = w.d.clone()
				done := make(chan struct{})
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer close(done)
					var buf bytes.Buffer
					err := snap.Export(&buf, fullRange, ownerName)
					if rerr := snap.Release(); err == nil {
						err = rerr
					}
					results <- result{i, buf.Bytes(), err}
				}()
				// Write while that export (and the earlier ones) run, at
				// least 3000 operations and until it is done.
				for n := 0; ; n++ {
					w.step()
					if n < 3000 {
						continue
					}
					select {
					case <-done:
					default:
						continue
					}
					break
				}
			}
			wg.Wait()
			close(results)
			for r := range results {
				if r.err != nil {
					t.Fatalf("export %d: %v", r.i, r.err)
				}
				got, _, err := decodeStream(r.data)
				if err != nil {
					t.Fatalf("export %d: %v", r.i, err)
				}
				if diff := got.diff(wants[r.i]); diff != "" {
					t.Fatalf("snapshot %d does not show the state at its time:\n%s", r.i, diff)
				}
			}
			// And the live backend has every write.
			if diff := exportDump(t, b).diff(w.d); diff != "" {
				t.Fatalf("backend after the snapshots:\n%s", diff)
			}
		})
	}
}

// TestSnapshotInterleaved checks isolation deterministically: the export's
// writer hands control to the task after every block, which then changes
// the state before the export reads on. Snapshots overlap and are released
// out of order.
func TestSnapshotInterleaved(t *testing.T) {
	for _, bk := range snapBackends[:2] {
		t.Run(bk.name, func(t *testing.T) {
			b := bk.open(t)
			w := newWorkload(t, 5, b, 3000)
			w.run(10000)
			s1, err := b.(state.Snapshotter).Snapshot(state.FormCanonical, "")
			if err != nil {
				t.Fatal(err)
			}
			want1 := w.d.clone()
			w.run(2000)
			s2, err := b.(state.Snapshotter).Snapshot(state.FormCanonical, "")
			if err != nil {
				t.Fatal(err)
			}
			want2 := w.d.clone()
			for i, c := range []struct {
				s    state.Snapshot
				want *dump
			}{{s2, want2}, {s1, want1}} {
				blocks := make(chan struct{})
				resume := make(chan struct{})
				var buf bytes.Buffer
				errc := make(chan error, 1)
				go func() {
					errc <- c.s.Export(&handoff{w: &buf, blocks: blocks, resume: resume}, fullRange, ownerName)
					close(blocks)
				}()
				n := 0
				for range blocks {
					w.run(40)
					n++
					resume <- struct{}{}
				}
				if err := <-errc; err != nil {
					t.Fatal(err)
				}
				if n < 3 {
					t.Fatalf("export wrote %d blocks: too few to interleave", n)
				}
				got, _, err := decodeStream(buf.Bytes())
				if err != nil {
					t.Fatal(err)
				}
				if diff := got.diff(c.want); diff != "" {
					t.Fatalf("snapshot %d:\n%s", i, diff)
				}
				if err := c.s.Release(); err != nil {
					t.Fatal(err)
				}
				if err := c.s.Export(io.Discard, fullRange, ownerName); !errors.Is(err, state.ErrReleased) {
					t.Fatalf("Export after Release: %v", err)
				}
			}
			if diff := exportDump(t, b).diff(w.d); diff != "" {
				t.Fatalf("backend after the snapshots:\n%s", diff)
			}
		})
	}
}

// handoff is a writer that, after each write, lets the task run (blocks)
// and waits until it is done (resume).
type handoff struct {
	w              io.Writer
	blocks, resume chan struct{}
}

func (h *handoff) Write(p []byte) (int, error) {
	n, err := h.w.Write(p)
	h.blocks <- struct{}{}
	<-h.resume
	return n, err
}

// TestMemorySnapshotHotPath: once snapshots are released, a read-modify-
// write of existing values allocates nothing again (cells are adopted into
// the new generation, not copied).
func TestMemorySnapshotHotPath(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	m := state.NewMemory()
	id, err := m.Register("count", "n", abi.StateValue)
	if err != nil {
		t.Fatal(err)
	}
	keys, kgs := benchKeys(1000)
	var buf [8]byte
	i := 0
	step := func() {
		j := i % len(keys)
		i++
		v, _, err := m.Get(id, kgs[j], keys[j], nil)
		if err != nil {
			t.Fatal(err)
		}
		copy(buf[:], v)
		buf[0]++
		if err := m.Put(id, kgs[j], keys[j], nil, buf[:]); err != nil {
			t.Fatal(err)
		}
	}
	for range keys {
		step()
	}
	snap, err := m.Snapshot(state.FormCanonical, "")
	if err != nil {
		t.Fatal(err)
	}
	// With the snapshot alive, the first write of each cell copies it.
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range keys {
		step()
	}
	runtime.ReadMemStats(&after)
	if n := after.Mallocs - before.Mallocs; n < uint64(len(keys)) {
		t.Errorf("writes under a live snapshot allocated %d times for %d cells: not copying?", n, len(keys))
	}
	if err := snap.Release(); err != nil {
		t.Fatal(err)
	}
	// A snapshot released at once: the generation moved on, nothing shares.
	snap2, err := m.Snapshot(state.FormCanonical, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := snap2.Release(); err != nil {
		t.Fatal(err)
	}
	for range keys {
		step()
	}
	if n := testing.AllocsPerRun(2000, step); n != 0 {
		t.Errorf("Get+Put after release allocates %.2f times", n)
	}
}

// TestPebbleNativeRestore places the native files of a snapshot in a new
// directory, opens it and compares it with the model at snapshot time,
// registry ids included; the files must not change while the task goes
// on, and Release removes them.
func TestPebbleNativeRestore(t *testing.T) {
	for _, c := range []struct {
		name string
		opts state.PebbleOptions
	}{
		{"default", state.PebbleOptions{}},
		{"tiny", tinyPebbleOptions},
		{"wal", state.PebbleOptions{EnableWAL: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := openPebble(t, t.TempDir(), c.opts)
			w := newWorkload(t, 9, p, 500)
			w.run(8000)
			scratch := t.TempDir()
			snap, err := p.Snapshot(state.FormNative, scratch)
			if err != nil {
				t.Fatal(err)
			}
			want := w.d.clone()
			w.run(3000) // the task goes on
			files := snap.NativeFiles()
			var ssts int
			for _, f := range files {
				isSST := strings.HasSuffix(f.Name, ".sst")
				if f.Shared != (isSST || strings.HasSuffix(f.Name, ".blob")) {
					t.Errorf("%s: Shared = %v", f.Name, f.Shared)
				}
				if isSST {
					ssts++
				}
				if strings.HasSuffix(f.Name, ".log") && f.Size > 4096 {
					// Memtables are flushed: the WAL must not carry data.
					t.Errorf("%s: WAL of %d bytes in a native snapshot", f.Name, f.Size)
				}
				if st, err := os.Stat(f.Path); err != nil || st.Size() != f.Size {
					t.Errorf("%s: stat %v, size %d", f.Path, err, f.Size)
				}
			}
			if ssts == 0 {
				t.Fatalf("no sstables in %v", files)
			}
			// The canonical export of a native snapshot is the same state.
			var buf bytes.Buffer
			if err := snap.Export(&buf, fullRange, ownerName); err != nil {
				t.Fatal(err)
			}
			if got, _, err := decodeStream(buf.Bytes()); err != nil || got.diff(want) != "" {
				t.Fatalf("export of the native snapshot: %v\n%s", err, got.diff(want))
			}

			restored := t.TempDir()
			for _, f := range files {
				copyFile(t, f.Path, filepath.Join(restored, f.Name))
			}
			if err := snap.Release(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(scratch, "pebble")); !os.IsNotExist(err) {
				t.Fatalf("Release left the checkpoint: %v", err)
			}
			r := openPebble(t, restored, c.opts)
			for i, s := range snapStates {
				id, err := r.Register(s.Operator, s.Name, s.Kind)
				if err != nil {
					t.Fatal(err)
				}
				if id != w.ids[i] {
					t.Fatalf("restored %s/%s has id %d, want %d", s.Operator, s.Name, id, w.ids[i])
				}
			}
			if diff := exportDump(t, r).diff(want); diff != "" {
				t.Fatalf("restored store differs from the snapshot:\n%s", diff)
			}
			checkReads(t, r, want)
		})
	}
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestPebbleCloseWithLiveSnapshot: Close returns while a snapshot is
// alive, the snapshot stays usable, and its Release closes the store.
func TestPebbleCloseWithLiveSnapshot(t *testing.T) {
	dir := t.TempDir()
	p, err := state.OpenPebble(dir, state.PebbleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w := newWorkload(t, 1, p, 100)
	w.run(2000)
	snap, err := p.Snapshot(state.FormNative, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Snapshot(state.FormCanonical, ""); !errors.Is(err, state.ErrClosed) {
		t.Fatalf("Snapshot after Close: %v", err)
	}
	var buf bytes.Buffer
	if err := snap.Export(&buf, fullRange, ownerName); err != nil {
		t.Fatal(err)
	}
	if got, _, err := decodeStream(buf.Bytes()); err != nil || got.diff(w.d) != "" {
		t.Fatalf("export after Close: %v %s", err, got.diff(w.d))
	}
	if err := snap.Release(); err != nil {
		t.Fatal(err)
	}
	if err := snap.Release(); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	// The store is closed (its lock released): it reopens.
	p2 := openPebble(t, dir, state.PebbleOptions{})
	if diff := exportDump(t, p2).diff(w.d); diff != "" {
		t.Fatal(diff)
	}
}

// TestImportKindMismatch: a state imported with another kind than the
// target registered fails with ErrKindMismatch naming the state.
func TestImportKindMismatch(t *testing.T) {
	src := state.NewMemory()
	w := newWorkload(t, 2, src, 50)
	w.run(500)
	data := export(t, src, fullRange)
	for _, bk := range snapBackends {
		t.Run(bk.name, func(t *testing.T) {
			b := bk.open(t)
			if _, err := b.Register("opB", "m", abi.StateList); err != nil {
				t.Fatal(err)
			}
			err := state.Import(b, bytes.NewReader(data), fullRange, allOwners)
			if !errors.Is(err, state.ErrKindMismatch) || !strings.Contains(err.Error(), `"m"`) || !strings.Contains(err.Error(), `"opB"`) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

// TestExportLargeList: a list bigger than a block is split across records
// and comes back whole and in order; an empty export range gives a valid
// empty stream.
func TestExportLargeList(t *testing.T) {
	for _, bk := range snapBackends[:2] {
		t.Run(bk.name, func(t *testing.T) {
			b := bk.open(t)
			id, err := b.Register("opA", "buffer", abi.StateList)
			if err != nil {
				t.Fatal(err)
			}
			want := newDump()
			want.states[stateName{"opA", "buffer"}] = abi.StateList
			c := dumpCell{stateName{"opA", "buffer"}, 3, "big", ""}
			for i := 0; i < 3000; i++ {
				v := strings.Repeat(fmt.Sprint(i%10), 100+i%7)
				if err := b.Append(id, 3, []byte("big"), []byte(v)); err != nil {
					t.Fatal(err)
				}
				want.lists[c] = append(want.lists[c], v)
			}
			big := strings.Repeat("x", 300<<10) // one item larger than a block
			if err := b.Append(id, 3, []byte("big"), []byte(big)); err != nil {
				t.Fatal(err)
			}
			want.lists[c] = append(want.lists[c], big)
			data := export(t, b, fullRange)
			got, _, err := decodeStream(data)
			if err != nil {
				t.Fatal(err)
			}
			if diff := got.diff(want); diff != "" {
				t.Fatal(diff)
			}
			for _, dst := range snapBackends {
				nb := dst.open(t)
				importStream(t, nb, data, fullRange, allOwners)
				if diff := exportDump(t, nb).diff(want); diff != "" {
					t.Fatalf("%s: %s", dst.name, diff)
				}
			}
			empty := export(t, b, abi.KeyGroupRange{Start: 4, End: 4})
			got, _, err = decodeStream(empty)
			if err != nil || len(got.lists) != 0 {
				t.Fatalf("empty range: %v, %v", err, got)
			}
		})
	}
}

// TestSnapshotArguments: bad forms, ranges and owner names are errors.
func TestSnapshotArguments(t *testing.T) {
	for _, bk := range snapBackends[:2] {
		t.Run(bk.name, func(t *testing.T) {
			b := bk.open(t)
			w := newWorkload(t, 4, b, 50)
			w.run(300)
			sn := b.(state.Snapshotter)
			if _, err := sn.Snapshot(state.SnapshotForm(7), ""); !errors.Is(err, abi.ErrInvalid) {
				t.Fatalf("bad form: %v", err)
			}
			snap, err := sn.Snapshot(state.FormCanonical, "")
			if err != nil {
				t.Fatal(err)
			}
			defer snap.Release()
			for _, kr := range []abi.KeyGroupRange{{Start: -1, End: 3}, {Start: 5, End: 4}, {Start: 0, End: state.MaxKeyGroups + 1}} {
				if err := snap.Export(io.Discard, kr, ownerName); !errors.Is(err, abi.ErrInvalid) {
					t.Fatalf("range %v: %v", kr, err)
				}
			}
			if err := snap.Export(io.Discard, fullRange, func(uint32) string { return "same" }); err == nil {
				t.Fatal("two owners with one name: no error")
			}
			if err := snap.Export(io.Discard, fullRange, func(uint32) string { return "" }); err == nil {
				t.Fatal("unnamed owner: no error")
			}
			if len(snap.States()) != len(snapStates) {
				t.Fatalf("States() = %v", snap.States())
			}
			if snap.NativeFiles() != nil {
				t.Fatal("canonical snapshot lists native files")
			}
		})
	}
}

// TestPebbleNativeRestoreLargeValues: values of 256 bytes and more live in
// blob files (value separation); a native snapshot must carry them, marked
// shared, and restore every value.
func TestPebbleNativeRestoreLargeValues(t *testing.T) {
	p := openPebble(t, t.TempDir(), state.PebbleOptions{})
	id, err := p.Register("op", "big", abi.StateValue)
	if err != nil {
		t.Fatal(err)
	}
	value := func(i, gen int) []byte {
		return bytes.Repeat([]byte{byte(i), byte(gen)}, 300+i%700)
	}
	const keys = 3000
	for gen := range 3 {
		for i := range keys {
			if gen > 0 && i%7 != 0 {
				continue
			}
			if err := p.Put(id, i%128, []byte(fmt.Sprint(i)), nil, value(i, gen)); err != nil {
				t.Fatal(err)
			}
		}
		// Each generation reaches Pebble (and its compactions).
		snap, err := p.Snapshot(state.FormNative, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if err := snap.Release(); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := p.Snapshot(state.FormNative, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	restored := t.TempDir()
	blobs := 0
	for _, f := range snap.NativeFiles() {
		if strings.HasSuffix(f.Name, ".blob") {
			blobs++
			if !f.Shared {
				t.Errorf("blob file %s not shared", f.Name)
			}
		}
		copyFile(t, f.Path, filepath.Join(restored, f.Name))
	}
	if blobs == 0 {
		t.Fatal("no blob files: values are not separated")
	}
	r := openPebble(t, restored, state.PebbleOptions{})
	rid, err := r.Register("op", "big", abi.StateValue)
	if err != nil {
		t.Fatal(err)
	}
	for i := range keys {
		gen := 0
		if i%7 == 0 {
			gen = 2
		}
		got, ok, err := r.Get(rid, i%128, []byte(fmt.Sprint(i)), nil)
		if err != nil || !ok || !bytes.Equal(got, value(i, gen)) {
			t.Fatalf("key %d: ok=%v err=%v, %d bytes, want generation %d", i, ok, err, len(got), gen)
		}
	}
}

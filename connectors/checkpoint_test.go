package connectors

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weirstream/weir/runtime"
	"github.com/weirstream/weir/runtime/clock"
)

// openRestored makes subtask `subtask` of p from mk, restores it from
// states when there are any, and opens it.
func openRestored(t testing.TB, mk func() runtime.Source, subtask, p int, states [][]byte, clk clock.Clock) runtime.CheckpointedSource {
	t.Helper()
	src, ok := mk().(runtime.CheckpointedSource)
	if !ok {
		t.Fatalf("%T is not a CheckpointedSource", mk())
	}
	info := taskInfo(subtask, p, clk)
	if states != nil {
		if err := src.Restore(info, states); err != nil {
			t.Fatal(err)
		}
	}
	if err := src.Open(context.Background(), info); err != nil {
		t.Fatal(err)
	}
	return src
}

// pollN polls src n times (or until done) with batches of 1..7 records.
func pollN(t testing.TB, rng *rand.Rand, src runtime.Source, n int, c *collector) (done bool) {
	t.Helper()
	for ; n > 0; n-- {
		done, err := src.Poll(context.Background(), c, 1+rng.IntN(7))
		if err != nil {
			t.Fatal(err)
		}
		if done {
			return true
		}
	}
	return false
}

// rescaleRun simulates a job whose source node is checkpointed and
// restored at random parallelisms (2 → 3 → 1 → 4 ...) with random progress
// per subtask between checkpoints, and records produced after the last
// checkpoint lost in a failure; the last attempt runs to the end. It
// returns how often each index was produced before a checkpoint (or in
// the final run), and the largest snapshot.
func rescaleRun(t testing.TB, rng *rand.Rand, mk func() runtime.Source, index func(rec) int, total int) (counts []int, maxSnap int, trace []int) {
	t.Helper()
	counts = make([]int, total)
	clk := clock.NewFake(time.Unix(0, 0))
	var states [][]byte
	gens := 1 + rng.IntN(5)
	for g := 0; g <= gens; g++ {
		p := 1 + rng.IntN(5)
		trace = append(trace, p)
		srcs := make([]runtime.CheckpointedSource, p)
		cols := make([]collector, p)
		for s := range srcs {
			srcs[s] = openRestored(t, mk, s, p, states, clk)
		}
		if g == gens {
			for s, src := range srcs {
				for !pollN(t, rng, src, 1, &cols[s]) {
				}
			}
		} else {
			// Uneven progress: some subtasks poll much more than others.
			for s, src := range srcs {
				pollN(t, rng, src, rng.IntN(1+rng.IntN(total/2+1)), &cols[s])
			}
			states = make([][]byte, p)
			for s, src := range srcs {
				b, err := src.Snapshot()
				if err != nil {
					t.Fatal(err)
				}
				states[s] = b
				maxSnap = max(maxSnap, len(b))
			}
			// Produced after the checkpoint: lost with the failure.
			for _, src := range srcs {
				pollN(t, rng, src, rng.IntN(3), &collector{})
			}
		}
		for s, src := range srcs {
			for _, r := range cols[s].recs {
				i := index(r)
				if i < 0 || i >= total {
					t.Fatalf("generation %d subtask %d/%d produced index %d outside [0, %d)", g, s, p, i, total)
				}
				if i%p != s {
					t.Fatalf("generation %d subtask %d/%d produced index %d of another subtask", g, s, p, i)
				}
				counts[i]++
			}
			if err := src.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	return counts, maxSnap, trace
}

func checkExactlyOnce(t *testing.T, counts []int, trace []int) {
	t.Helper()
	for i, n := range counts {
		if n != 1 {
			t.Fatalf("parallelisms %v: index %d produced %d times, want once", trace, i, n)
		}
	}
}

func atoiRec(t testing.TB, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("record %q: %v", s, err)
	}
	return n
}

// TestDatagenRescaleExactlyOnce is the property: over random rescale
// sequences with random progress, the union of what was produced before
// each checkpoint (and in the last run) is exactly [0, count), each index
// once, and snapshots stay small.
func TestDatagenRescaleExactlyOnce(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	c := registry(t, RegisterOptions{})
	for iter := 0; iter < 2000; iter++ {
		total := 1 + rng.IntN(300) // count 0 would be unbounded
		mk := newSource(t, c, "datagen", fmt.Sprintf(`{"count": %d}`, total))
		counts, maxSnap, trace := rescaleRun(t, rng, mk, func(r rec) int { return atoiRec(t, r.Value) }, total)
		checkExactlyOnce(t, counts, trace)
		if maxSnap > 256 {
			t.Fatalf("parallelisms %v: a snapshot of %d bytes", trace, maxSnap)
		}
	}
}

// fileRescaleInput writes total records split over 1..4 files in format
// and returns the directory; the record of index i carries i in field "i"
// (the key) or, for lines, as its value. The csv rows also hold a quoted
// multi-line field, so that cursors must count lines right.
func fileRescaleInput(t testing.TB, rng *rand.Rand, format string, total int) string {
	files := map[string]string{}
	nfiles := 1 + rng.IntN(4)
	var b strings.Builder
	f := 0
	flush := func() {
		content := b.String()
		if format == "csv" {
			content = "i,note\n" + content
		}
		if f == 0 && rng.IntN(2) == 0 {
			content = utf8BOM + content
		}
		files[fmt.Sprintf("in-%d.%s", f, format)] = content
		b.Reset()
		f++
	}
	for i := 0; i < total; i++ {
		if f < nfiles-1 && rng.IntN(total/nfiles+1) == 0 {
			flush()
		}
		switch format {
		case "lines":
			fmt.Fprintf(&b, "%d\n", i)
		case "jsonl":
			fmt.Fprintf(&b, "{\"i\": \"%d\"}\n", i)
			if rng.IntN(4) == 0 {
				b.WriteString("\n") // a blank line, not a record
			}
		case "csv":
			fmt.Fprintf(&b, "%d,\"line\r\nbreak %d\"\r\n", i, i)
		}
	}
	for f < nfiles {
		flush()
	}
	return writeFiles(t, files)
}

func TestFileSourceRescaleExactlyOnce(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, format := range []string{"lines", "jsonl", "csv"} {
		t.Run(format, func(t *testing.T) {
			index := func(r rec) int { return atoiRec(t, r.Key) }
			config := fmt.Sprintf(`{"path": "in-*", "format": %q, "keyField": "i"}`, format)
			if format == "lines" {
				index = func(r rec) int { return atoiRec(t, r.Value) }
				config = `{"path": "in-*"}`
			}
			for iter := 0; iter < 60; iter++ {
				total := rng.IntN(120)
				dir := fileRescaleInput(t, rng, format, total)
				mk := newSource(t, registry(t, RegisterOptions{BaseDir: dir}), "file", config)
				counts, maxSnap, trace := rescaleRun(t, rng, mk, index, total)
				checkExactlyOnce(t, counts, trace)
				if maxSnap > 512 {
					t.Fatalf("parallelisms %v: a snapshot of %d bytes", trace, maxSnap)
				}
			}
		})
	}
}

// TestSourceSnapshotRoundTrip: at equal parallelism each subtask goes on
// exactly where it was.
func TestSourceSnapshotRoundTrip(t *testing.T) {
	dir := writeFiles(t, map[string]string{"in": "a\nb\nc\nd\ne\nf\ng\n"})
	c := registry(t, RegisterOptions{BaseDir: dir})
	for _, tc := range []struct {
		kind, config string
		want         [2][]string // per subtask of 2: records before / after the checkpoint
	}{
		{"datagen", `{"count": 9}`, [2][]string{{"0", "2", "4", "6", "8"}, {"1", "3", "5", "7"}}},
		{"file", `{"path": "in"}`, [2][]string{{"a", "c", "e", "g"}, {"b", "d", "f"}}},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			mk := newSource(t, c, tc.kind, tc.config)
			rng := rand.New(rand.NewPCG(1, 1))
			clk := clock.NewFake(time.Unix(0, 0))
			states := make([][]byte, 2)
			var before [2]collector
			for s := 0; s < 2; s++ {
				src := openRestored(t, mk, s, 2, nil, clk)
				for len(before[s].recs) < 2 {
					pollN(t, rng, src, 1, &before[s])
				}
				var err error
				if states[s], err = src.Snapshot(); err != nil {
					t.Fatal(err)
				}
				src.Close()
			}
			for s := 0; s < 2; s++ {
				src := openRestored(t, mk, s, 2, states, clk)
				var after collector
				for !pollN(t, rng, src, 1, &after) {
				}
				var got []string
				for _, r := range append(before[s].recs, after.recs...) {
					got = append(got, r.Value)
				}
				if strings.Join(got, ",") != strings.Join(tc.want[s], ",") {
					t.Errorf("subtask %d: got %q, want %q", s, got, tc.want[s])
				}
			}
		})
	}
}

// TestDatagenRestoreSkipsInBulk: after 4 → 2 with subtasks 0 and 2 far
// ahead, new subtask 0's whole class is done up to there; its first Poll
// gets past it at once and produces from there.
func TestDatagenRestoreSkipsInBulk(t *testing.T) {
	const ahead = 40_000_000
	c := registry(t, RegisterOptions{})
	mk := newSource(t, c, "datagen", `{"count": 50000000}`)
	states := make([][]byte, 4)
	for s := 0; s < 4; s++ {
		sh := newShare(indexSet{}, uint64(s), 4)
		next := uint64(s)
		if s%2 == 0 {
			next = ahead + uint64(s)
		}
		w := sourceSnapshot(snapKindDatagen, &sh)
		w.uvarint(50_000_000)
		set := sh.produced(next)
		set.encode(w)
		states[s] = w.finish()
	}
	clk := clock.NewFake(time.Unix(0, 0))
	src := openRestored(t, mk, 0, 2, states, clk)
	var col collector
	if done, err := src.Poll(context.Background(), &col, 3); err != nil || done {
		t.Fatalf("Poll: done %v, err %v", done, err)
	}
	if len(col.recs) != 3 || col.recs[0].Value != "40000000" || col.recs[2].Value != "40000004" {
		t.Fatalf("first records %v, want 40000000, 40000002, 40000004", col.recs)
	}
	// New subtask 1 owns the odd indices, none produced yet.
	src = openRestored(t, mk, 1, 2, states, clk)
	col = collector{}
	if _, err := src.Poll(context.Background(), &col, 2); err != nil || len(col.recs) != 2 || col.recs[0].Value != "1" || col.recs[1].Value != "3" {
		t.Fatalf("subtask 1: %v, %v", col.recs, err)
	}
}

// TestDatagenRestoredRateNoBurst: the rate restarts at Open after a
// restore; records due while the job was down are not made up.
func TestDatagenRestoredRateNoBurst(t *testing.T) {
	c := registry(t, RegisterOptions{})
	mk := newSource(t, c, "datagen", `{"rate": 10}`)
	fake := clock.NewFake(time.Unix(0, 0))
	src := openRestored(t, mk, 0, 1, nil, fake)
	var col collector
	ctx := context.Background()
	if _, err := src.Poll(ctx, &col, 100); err != nil || len(col.recs) != 1 {
		t.Fatalf("first poll: %d records, %v", len(col.recs), err)
	}
	state, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// An hour passes before the restore.
	fake.Advance(time.Hour)
	src = openRestored(t, mk, 0, 1, [][]byte{state}, fake)
	col = collector{}
	if _, err := src.Poll(ctx, &col, 100); err != nil || len(col.recs) != 1 || col.recs[0].Value != "1" {
		t.Fatalf("after restore: %v, %v; want just record 1", col.recs, err)
	}
	fake.Advance(250 * time.Millisecond)
	if _, err := src.Poll(ctx, &col, 100); err != nil || len(col.recs) != 3 || col.recs[2].Value != "3" {
		t.Fatalf("250ms later: %v, %v; want records 1..3", col.recs, err)
	}
}

// TestFileSourceResumesAtOffset: a restore continues from the checkpointed
// byte offset. The test overwrites everything before it with bytes that
// hold no line break (same size, so the input still matches): a rescan
// from the start would count records wrong.
func TestFileSourceResumesAtOffset(t *testing.T) {
	for _, tc := range []struct{ format, content, config string }{
		{"lines", "l0\nl1\nl2\nl3\nl4\nl5\n", `{"path": "in"}`},
		{"jsonl", "{\"v\":0}\n\n{\"v\":1}\n{\"v\":2}\n{\"v\":3}\n\n{\"v\":4}\n{\"v\":5}\n", `{"path": "in", "format": "jsonl", "keyField": "v"}`},
		{"csv", "v,w\n0,\"a\nb\"\n1,x\n2,y\n3,\"c\r\nd\"\n4,z\n5,z\n", `{"path": "in", "format": "csv", "keyField": "v"}`},
	} {
		t.Run(tc.format, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"in": tc.content})
			mk := newSource(t, registry(t, RegisterOptions{BaseDir: dir}), "file", tc.config)
			clk := clock.NewFake(time.Unix(0, 0))
			src := openRestored(t, mk, 0, 1, nil, clk)
			var col collector
			if _, err := src.Poll(context.Background(), &col, 3); err != nil || len(col.recs) != 3 {
				t.Fatalf("first poll: %v, %v", col.recs, err)
			}
			state, err := src.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			cur := src.(*fileSource).position()
			src.Close()
			if cur.offset == 0 {
				t.Fatal("cursor at offset 0 after three records")
			}
			path := filepath.Join(dir, "in")
			b := []byte(tc.content)
			for i := range b[:cur.offset] {
				b[i] = '#'
			}
			if tc.format == "csv" {
				copy(b, "v,w\n") // the header is reread for the columns
			}
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			got := drainRestored(t, mk, 0, 1, [][]byte{state})
			var vals []string
			for _, r := range got {
				v := r.Value
				if tc.format != "lines" {
					v = r.Key
				}
				vals = append(vals, v)
			}
			want := "3,4,5"
			if tc.format == "lines" {
				want = "l3,l4,l5"
			}
			if strings.Join(vals, ",") != want {
				t.Fatalf("after restore got %q, want %s", vals, want)
			}
		})
	}
}

// drainRestored restores and opens a source and polls it to the end.
func drainRestored(t testing.TB, mk func() runtime.Source, subtask, p int, states [][]byte) []rec {
	t.Helper()
	src := openRestored(t, mk, subtask, p, states, clock.NewFake(time.Unix(0, 0)))
	defer src.Close()
	var c collector
	for polls := 0; ; polls++ {
		if polls > 1_000_000 {
			t.Fatal("source does not end")
		}
		done, err := src.Poll(context.Background(), &c, 2)
		if err != nil {
			t.Fatal(err)
		}
		if done {
			return c.recs
		}
	}
}

// TestFileSourceResumedLineNumbers: errors after a restore name the line
// in the whole file, also after multi-line csv fields.
func TestFileSourceResumedLineNumbers(t *testing.T) {
	for _, tc := range []struct{ format, content, config, want string }{
		{"jsonl", "{\"v\":0}\n\n{\"v\":1}\nnot json\n", `{"path": "in", "format": "jsonl"}`, "in:4: not a JSON object"},
		{"csv", "v,w\n0,\"a\nb\nc\"\n1,x\n2\n", `{"path": "in", "format": "csv"}`, "in:6: 1 fields, but the header has 2"},
		{"csv-noheader", "0,\"a\nb\"\n1,x\n2\n", `{"path": "in", "format": "csv", "header": false}`, "in:4: 1 fields, but the first record has 2"},
	} {
		t.Run(tc.format, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"in": tc.content})
			mk := newSource(t, registry(t, RegisterOptions{BaseDir: dir}), "file", tc.config)
			src := openRestored(t, mk, 0, 1, nil, nil)
			var col collector
			if _, err := src.Poll(context.Background(), &col, 2); err != nil || len(col.recs) != 2 {
				t.Fatalf("first poll: %v, %v", col.recs, err)
			}
			state, err := src.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			src.Close()
			src = openRestored(t, mk, 0, 1, [][]byte{state}, nil)
			_, err = src.Poll(context.Background(), &col, 10)
			wantErr(t, err, filepath.Join(dir, tc.want))
		})
	}
}

// TestSourceRestoreErrors: garbage, another kind's snapshot, another
// config, misplaced snapshots, a changed input: each a clear error naming
// the node and what differs.
func TestSourceRestoreErrors(t *testing.T) {
	dir := writeFiles(t, map[string]string{"a.txt": "1\n2\n3\n", "b.txt": "4\n", "c.jsonl": "{}\n"})
	c := registry(t, RegisterOptions{BaseDir: dir})
	snap := func(kind, config string, subtask, p int) []byte {
		src := openRestored(t, newSource(t, c, kind, config), subtask, p, nil, clock.NewFake(time.Unix(0, 0)))
		pollN(t, rand.New(rand.NewPCG(1, 1)), src, 1, &collector{})
		b, err := src.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		src.Close()
		return b
	}
	datagen := snap("datagen", `{"count": 10}`, 0, 1)
	files := snap("file", `{"path": "*.txt"}`, 0, 1)
	flipped := bytes.Clone(files)
	flipped[len(flipped)/2] ^= 1
	// A valid envelope of a later version: the version byte changed and
	// the checksum recomputed.
	future := bytes.Clone(datagen[:len(datagen)-4])
	future[len(snapMagic)+1] = 9
	future = (&snapWriter{b: future}).finish()
	for _, tc := range []struct {
		name, kind, config string
		states             [][]byte
		want               string
	}{
		{"garbage", "datagen", `{"count": 10}`, [][]byte{[]byte("hello, world")}, `datagen source node "node" subtask 0: restore: snapshot of old subtask 0: not a Weir connector snapshot (bad magic)`},
		{"truncated", "datagen", `{"count": 10}`, [][]byte{datagen[:len(datagen)-1]}, `checksum mismatch`},
		{"bit flip", "file", `{"path": "*.txt"}`, [][]byte{flipped}, `file source node "node" subtask 0: restore: snapshot of old subtask 0: corrupt snapshot (checksum mismatch)`},
		{"future version", "datagen", `{"count": 10}`, [][]byte{future}, `datagen source snapshot version 9 not supported (this build reads version 1)`},
		{"other kind", "datagen", `{"count": 10}`, [][]byte{files}, `snapshot of a file source, want a datagen source`},
		{"other count", "datagen", `{"count": 20}`, [][]byte{datagen}, `count differs: the checkpoint was taken with count 10, the config has 20`},
		{"misplaced", "datagen", `{"count": 10}`, [][]byte{nil, datagen}, `snapshot of old subtask 1: taken by subtask 0 of 1, but it is entry 1 of a checkpoint with 2 subtasks`},
		{"other format", "file", `{"path": "*.txt", "format": "jsonl"}`, [][]byte{files}, `format differs: the checkpoint read lines, the config has jsonl`},
		{"file gone", "file", `{"path": "a.txt"}`, [][]byte{files}, `file list differs: the checkpoint read 2 files, "` + filepath.Join(dir, "a.txt") + `" now matches 1 (b.txt is gone)`},
		{"other files", "file", `{"path": "[ac].*"}`, [][]byte{files}, `file list differs: file 2 was b.txt in the checkpoint, it is c.jsonl now`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := newSource(t, c, tc.kind, tc.config)().(runtime.CheckpointedSource)
			wantErr(t, src.Restore(taskInfo(0, 1, nil), tc.states), tc.want)
		})
	}
	t.Run("file changed", func(t *testing.T) {
		if err := os.WriteFile(filepath.Join(dir, "b.txt"), []byte("4\n5\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		src := newSource(t, c, "file", `{"path": "*.txt"}`)().(runtime.CheckpointedSource)
		wantErr(t, src.Restore(taskInfo(0, 1, nil), [][]byte{files}), "file "+filepath.Join(dir, "b.txt")+" changed since the checkpoint: 2 bytes then, 4 now")
	})
}

// TestSourceRestoreNilStates: a nil entry is an old subtask that had
// snapshotted nothing, so its share is produced again; all nil is a fresh
// start.
func TestSourceRestoreNilStates(t *testing.T) {
	c := registry(t, RegisterOptions{})
	mk := newSource(t, c, "datagen", `{"count": 6}`)
	clk := clock.NewFake(time.Unix(0, 0))
	src := openRestored(t, mk, 1, 2, nil, clk)
	pollN(t, rand.New(rand.NewPCG(1, 1)), src, 1, &collector{})
	one, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range drainRestored(t, mk, 0, 1, [][]byte{nil, one}) {
		got = append(got, r.Value)
	}
	// Subtask 1 produced at least record 1; everything else comes again.
	if !strings.HasPrefix(strings.Join(got, ","), "0,2,") || strings.Contains(strings.Join(got, ","), ",1,") {
		t.Fatalf("got %q", got)
	}
	if got := drainRestored(t, mk, 0, 1, [][]byte{nil, nil}); len(got) != 6 {
		t.Fatalf("all nil: %d records, want 6", len(got))
	}
}

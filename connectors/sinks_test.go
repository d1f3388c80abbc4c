package connectors

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/runtime"
	"github.com/weirstream/weir/runtime/clock"
)

// sampleRecords exercise every escaping rule of the output formats.
var sampleRecords = []rec{
	{"k", "plain value", 1700000000000},
	{"", "", abi.NoTimestamp},
	{"a\tb", "line1\nline2\r\tend\\n", -1},
	{"\x00\xff", `{"json": "va\"lue"}`, 0},
	{"é", "\x01\x1f\u2028<&>", 5},
}

// Golden renderings, written by hand from the documented rules.
var goldenFormats = map[string]string{
	"value": "plain value\n" +
		"\n" +
		"line1\\nline2\\r\tend\\n\n" +
		`{"json": "va\"lue"}` + "\n" +
		"\x01\x1f\u2028<&>\n",
	"kv": "k\tplain value\n" +
		"\t\n" +
		"a\\tb\tline1\\nline2\\r\tend\\n\n" +
		"\x00\xff\t" + `{"json": "va\"lue"}` + "\n" +
		"é\t\x01\x1f\u2028<&>\n",
	"json": `{"key":"k","value":"plain value","timestamp":1700000000000}` + "\n" +
		`{"key":"","value":"","timestamp":null}` + "\n" +
		`{"key":"a\tb","value":"line1\nline2\r\tend\\n","timestamp":-1}` + "\n" +
		`{"keyBase64":"AP8=","value":"{\"json\": \"va\\\"lue\"}","timestamp":0}` + "\n" +
		`{"key":"é","value":"\u0001\u001f` + "\u2028" + `<&>","timestamp":5}` + "\n",
}

func TestOutputFormatsGolden(t *testing.T) {
	for format, want := range goldenFormats {
		f, err := parseOutputFormat(format)
		if err != nil {
			t.Fatal(err)
		}
		var got []byte
		for _, r := range sampleRecords {
			got = appendRecordLine(got, f, []byte(r.Key), []byte(r.Value), r.TS)
		}
		if string(got) != want {
			t.Errorf("format %s:\ngot  %q\nwant %q", format, got, want)
		}
	}
}

func TestJSONStringInvalidUTF8(t *testing.T) {
	got := appendJSONString(nil, []byte("a\xffb\xe2\x82"))
	if want := `"a\ufffdb\ufffd\ufffd"`; string(got) != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestSinkConfigErrors(t *testing.T) {
	c := registry(t, RegisterOptions{Stdout: io.Discard})
	for _, tc := range []struct{ kind, config, want string }{
		{"print", `{"format": "xml"}`, `config.format: must be one of value, kv, json, got "xml"`},
		{"print", `{"prefix": true}`, `config.prefix: unknown field`},
		{"print", `{"subtaskPrefix": "no"}`, `config.subtaskPrefix: cannot use`},
		{"print", `{"format": "json", "identifier": "out", "subtaskPrefix": false}`, ``},
		{"print", ``, ``},
		{"blackhole", `{"format": "value"}`, `config.format: unknown field`},
		{"blackhole", `{}`, ``},
		{"file", `{}`, `config.path: required`},
		{"file", `{"path": "out", "format": "csv"}`, `config.format: must be one of value, kv, json, got "csv"`},
		{"file", `{"path": "out", "format": "kv"}`, ``},
	} {
		t.Run(tc.kind+" "+tc.config, func(t *testing.T) {
			_, err := c.Sinks[tc.kind]([]byte(tc.config))
			wantErr(t, err, tc.want)
		})
	}
}

func TestPrintSinkFormatsGolden(t *testing.T) {
	for format, want := range goldenFormats {
		var out bytes.Buffer
		c := registry(t, RegisterOptions{Stdout: &out})
		sink := newSink(t, c, "print", fmt.Sprintf(`{"format": %q}`, format))()
		ctx := context.Background()
		if err := sink.Open(ctx, taskInfo(0, 1, nil)); err != nil {
			t.Fatal(err)
		}
		// Two batches: the output is their concatenation.
		for _, b := range [][]rec{sampleRecords[:2], sampleRecords[2:]} {
			if err := sink.Write(ctx, encode(b...)); err != nil {
				t.Fatal(err)
			}
		}
		if err := sink.Write(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if err := sink.Finish(ctx); err != nil {
			t.Fatal(err)
		}
		if err := sink.Close(); err != nil {
			t.Fatal(err)
		}
		if out.String() != want {
			t.Errorf("format %s:\ngot  %q\nwant %q", format, out.String(), want)
		}
	}
}

func TestPrintSinkPrefix(t *testing.T) {
	for _, tc := range []struct {
		config               string
		subtask, parallelism int
		want                 string
	}{
		{`{}`, 0, 1, "v\n"},
		{`{}`, 0, 0, "v\n"},
		{`{}`, 1, 3, "2> v\n"},
		{`{"identifier": "out"}`, 0, 1, "out> v\n"},
		{`{"identifier": "out"}`, 2, 3, "out:3> v\n"},
		{`{"subtaskPrefix": false}`, 2, 3, "v\n"},
		{`{"subtaskPrefix": false, "identifier": "o"}`, 2, 3, "o> v\n"},
		{`{"format": "kv"}`, 0, 2, "1> k\tv\n"},
	} {
		t.Run(fmt.Sprintf("%s %d/%d", tc.config, tc.subtask, tc.parallelism), func(t *testing.T) {
			var out bytes.Buffer
			c := registry(t, RegisterOptions{Stdout: &out})
			sink := newSink(t, c, "print", tc.config)()
			ctx := context.Background()
			if err := sink.Open(ctx, taskInfo(tc.subtask, tc.parallelism, nil)); err != nil {
				t.Fatal(err)
			}
			if err := sink.Write(ctx, encode(rec{"k", "v", 1})); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Fatalf("got %q, want %q", out.String(), tc.want)
			}
		})
	}
}

// TestPrintSinkConcurrentSubtasks writes from several subtasks at once into
// one registration's writer (a plain bytes.Buffer, not safe by itself): the
// registration's lock must keep every line whole. Run with -race.
func TestPrintSinkConcurrentSubtasks(t *testing.T) {
	var out bytes.Buffer
	c := registry(t, RegisterOptions{Stdout: &out})
	mk := newSink(t, c, "print", `{}`)
	const p, batches, perBatch = 4, 50, 20
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, p)
	for i := 0; i < p; i++ {
		sink := mk()
		if err := sink.Open(ctx, taskInfo(i, p, nil)); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := 0; b < batches; b++ {
				var recs []rec
				for r := 0; r < perBatch; r++ {
					recs = append(recs, rec{Value: fmt.Sprintf("s%d-b%d-r%d", i, b, r)})
				}
				if err := sink.Write(ctx, encode(recs...)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != p*batches*perBatch {
		t.Fatalf("%d lines, want %d", len(lines), p*batches*perBatch)
	}
	next := make([]int, p) // per subtask: arrival order is kept
	for _, l := range lines {
		var n, s, b, r int
		if _, err := fmt.Sscanf(l, "%d> s%d-b%d-r%d", &n, &s, &b, &r); err != nil || n != s+1 {
			t.Fatalf("mangled line %q", l)
		}
		if b*perBatch+r != next[s] {
			t.Fatalf("subtask %d: line %q out of order", s, l)
		}
		next[s]++
	}
}

// failingWriter fails every write.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, os.ErrClosed }

func TestSinkInputErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c := registry(t, RegisterOptions{Stdout: io.Discard, BaseDir: dir})
	var watermark abi.Encoder
	watermark.Record(0, nil, []byte("x"), 1)
	watermark.Watermark(5)
	for _, kind := range []string{"print", "blackhole", "file"} {
		config := `{}`
		if kind == "file" {
			config = `{"path": "out"}`
		}
		sink := newSink(t, c, kind, config)()
		if err := sink.Open(ctx, taskInfo(0, 1, nil)); err != nil {
			t.Fatal(err)
		}
		wantErr(t, sink.Write(ctx, watermark.B), "watermark event at offset 19, want records only")
		wantErr(t, sink.Write(ctx, []byte{1, 0, 9}), "truncated record header")
		if err := sink.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// A failing writer is reported.
	mk, err := NewPrintFactory(failingWriter{})(nil)
	if err != nil {
		t.Fatal(err)
	}
	sink := mk()
	if err := sink.Open(ctx, taskInfo(0, 1, nil)); err != nil {
		t.Fatal(err)
	}
	wantErr(t, sink.Write(ctx, encode(rec{"k", "v", 1})), "print sink: write: file already closed")
}

func TestBlackholeCounts(t *testing.T) {
	counters := new(BlackholeCounters)
	c := registry(t, RegisterOptions{Blackhole: counters})
	mk := newSink(t, c, "blackhole", ``)
	ctx := context.Background()
	a, b := mk(), mk()
	for i, s := range []runtime.Sink{a, b} {
		if err := s.Open(ctx, taskInfo(i, 2, nil)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Write(ctx, encode(rec{"ab", "cde", 1}, rec{"", "", 2})); err != nil {
		t.Fatal(err)
	}
	if err := b.Write(ctx, encode(rec{"k", "0123456789", 3})); err != nil {
		t.Fatal(err)
	}
	if err := b.Write(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if counters.Records() != 3 || counters.Bytes() != 16 || counters.Batches() != 2 {
		t.Fatalf("records %d bytes %d batches %d, want 3 16 2", counters.Records(), counters.Bytes(), counters.Batches())
	}
	counters.Reset()
	if counters.Records() != 0 || counters.Bytes() != 0 || counters.Batches() != 0 {
		t.Fatal("Reset left counts")
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// commitAll ends a file sink as the runtime does at the end of bounded
// input: Finish, PreCommit and Commit of FinalCheckpoint, Close.
func commitAll(t testing.TB, sink runtime.Sink) {
	t.Helper()
	ctx := context.Background()
	tp := sink.(runtime.TwoPhaseSink)
	if err := tp.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := tp.PreCommit(ctx, runtime.FinalCheckpoint); err != nil {
		t.Fatal(err)
	}
	if err := tp.Close(); err != nil {
		t.Fatal(err)
	}
	// After Close, as a runtime may commit once the whole job finished.
	if err := tp.Commit(ctx, runtime.FinalCheckpoint); err != nil {
		t.Fatal(err)
	}
}

// listDir returns the names in dir, sorted ("" entries for none).
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestFileSinkFormatsGolden(t *testing.T) {
	for format, want := range goldenFormats {
		t.Run(format, func(t *testing.T) {
			base := t.TempDir()
			c := registry(t, RegisterOptions{BaseDir: base})
			mk := newSink(t, c, "file", fmt.Sprintf(`{"path": "out/nested", "format": %q}`, format))
			ctx := context.Background()
			sinks := []runtime.Sink{mk(), mk()}
			for i, s := range sinks {
				if err := s.Open(ctx, taskInfo(i, 2, nil)); err != nil {
					t.Fatal(err)
				}
			}
			for _, b := range [][]rec{sampleRecords[:1], sampleRecords[1:3], sampleRecords[3:]} {
				if err := sinks[1].Write(ctx, encode(b...)); err != nil {
					t.Fatal(err)
				}
			}
			dir := filepath.Join(base, "out", "nested")
			if err := sinks[1].Finish(ctx); err != nil {
				t.Fatal(err)
			}
			// Invisible until committed.
			if got := listDir(t, dir); !reflect.DeepEqual(got, []string{PendingDir}) {
				t.Fatalf("before commit the directory holds %q", got)
			}
			for _, s := range sinks {
				commitAll(t, s)
			}
			if got := readFile(t, filepath.Join(dir, "part-1-final")); got != want {
				t.Fatalf("part-1-final:\ngot  %q\nwant %q", got, want)
			}
			// The idle subtask's transaction was empty: no file at all.
			if got := listDir(t, dir); !reflect.DeepEqual(got, []string{PendingDir, "part-1-final"}) {
				t.Fatalf("directory holds %q", got)
			}
			if got := listDir(t, filepath.Join(dir, PendingDir)); len(got) != 0 {
				t.Fatalf("pending files left: %q", got)
			}
		})
	}
}

func TestFileSinkFreshStartRemovesLeftovers(t *testing.T) {
	dir := t.TempDir()
	// Leftovers of earlier runs at other parallelisms, and unrelated files.
	files := map[string]string{
		"part-0":                     "legacy name\n",
		"part-0-0000000000000000005": "committed by subtask 0 of an earlier run\n",
		"part-2-final":               "subtask 2 of a run at parallelism 3: 2 % 2 == 0\n",
		"part-1-0000000000000000005": "subtask 1's to remove, not 0's\n",
		"part-x":                     "not a part name\n",
		"README":                     "not ours\n",
		".pending/part-0-abc-3":      "pending of an aborted attempt\n",
		".pending/part-4-abc-3":      "pending of subtask 4 of an earlier run\n",
		".pending/part-3-abc-3":      "subtask 1's\n",
	}
	for name, content := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := registry(t, RegisterOptions{})
	sink := newSink(t, c, "file", fmt.Sprintf(`{"path": %q, "format": "kv"}`, dir))()
	ctx := context.Background()
	if err := sink.Open(ctx, taskInfo(0, 2, nil)); err != nil {
		t.Fatal(err)
	}
	want := []string{".pending", "README", "part-1-0000000000000000005", "part-x"}
	if got := listDir(t, dir); !reflect.DeepEqual(got, want) {
		t.Fatalf("after a fresh Open the directory holds %q, want %q", got, want)
	}
	if got := listDir(t, filepath.Join(dir, PendingDir)); !reflect.DeepEqual(got, []string{"part-3-abc-3"}) {
		t.Fatalf("pending holds %q", got)
	}
	if err := sink.Write(ctx, encode(rec{"a", "1", 0}, rec{"b", "2", 0})); err != nil {
		t.Fatal(err)
	}
	// No PreCommit (a cancelled or failed job): the records are no
	// transaction's, and Close discards them.
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	if got := listDir(t, filepath.Join(dir, PendingDir)); !reflect.DeepEqual(got, []string{"part-3-abc-3"}) {
		t.Fatalf("pending after Close holds %q", got)
	}
	if got := listDir(t, dir); !reflect.DeepEqual(got, want) {
		t.Fatalf("after Close the directory holds %q, want %q", got, want)
	}
	if err := sink.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestFileSinkLargeOutput(t *testing.T) {
	// More than the buffer, with records bigger than it, in arrival order.
	dir := t.TempDir()
	c := registry(t, RegisterOptions{})
	sink := newSink(t, c, "file", fmt.Sprintf(`{"path": %q}`, dir))()
	ctx := context.Background()
	if err := sink.Open(ctx, taskInfo(0, 1, nil)); err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for i := 0; i < 2000; i++ {
		v := fmt.Sprintf("%d:%s", i, strings.Repeat("x", i%700))
		if i%500 == 0 {
			v += strings.Repeat("y", fileSinkBufferSize+13)
		}
		want.WriteString(v + "\n")
		if err := sink.Write(ctx, encode(rec{Value: v})); err != nil {
			t.Fatal(err)
		}
	}
	commitAll(t, sink)
	if got := readFile(t, filepath.Join(dir, PartFileName(0, runtime.FinalCheckpoint))); got != want.String() {
		t.Fatalf("output differs: %d bytes, want %d", len(got), want.Len())
	}
}

func TestFileSinkOpenError(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c := registry(t, RegisterOptions{BaseDir: dir})
	sink := newSink(t, c, "file", `{"path": "file/sub"}`)()
	wantErr(t, sink.Open(context.Background(), taskInfo(0, 1, nil)), "file sink: create directory: mkdir "+filepath.Join(dir, "file"))
}

func TestRegister(t *testing.T) {
	// Register keeps what the map already holds.
	c := &runtime.Connectors{Sources: map[string]runtime.SourceFactory{"custom": nil}}
	Register(c)
	for _, name := range []string{"datagen", "nexmark", "file", "kafka", "custom"} {
		if _, ok := c.Sources[name]; !ok {
			t.Errorf("source %q missing", name)
		}
	}
	for _, name := range []string{"print", "blackhole", "file", "kafka"} {
		if c.Sinks[name] == nil {
			t.Errorf("sink %q missing", name)
		}
	}
	if len(c.Sources) != 5 || len(c.Sinks) != 4 {
		t.Errorf("sources %d sinks %d", len(c.Sources), len(c.Sinks))
	}
}

// benchBatches encodes n records of a 100-byte value and 8-byte key into
// batches of about 64 KiB, as the runtime hands them to sinks, and returns
// them with the number of records in each.
func benchBatches(n int) (batches [][]byte, counts []int) {
	value := bytes.Repeat([]byte("v"), 100)
	var e abi.Encoder
	k := 0
	for i := 0; i < n; i++ {
		e.Record(0, []byte(fmt.Sprintf("key%05d", i%10000)), value, int64(i))
		k++
		if e.Len() >= 64<<10 || i == n-1 {
			batches = append(batches, bytes.Clone(e.B))
			counts = append(counts, k)
			e.Reset()
			k = 0
		}
	}
	return batches, counts
}

// writeRecords writes batches round robin until at least b.N records went
// to sink (one op is one record; the overshoot is under one batch).
func writeRecords(b *testing.B, sink runtime.Sink, batches [][]byte, counts []int) {
	ctx := context.Background()
	for n := 0; n < b.N; {
		for i, batch := range batches {
			if err := sink.Write(ctx, batch); err != nil {
				b.Fatal(err)
			}
			if n += counts[i]; n >= b.N {
				break
			}
		}
	}
}

// BenchmarkFileSink measures the file sink's write path per format:
// write_only stops the clock before the final transaction (the formatting
// and write(2) cost, into the page cache); final includes its PreCommit and
// Commit, whose fsync makes the whole output durable; commit_every_N runs a
// transaction (flush, file and directory fsyncs, rename, directory fsync)
// every N records, as checkpoints do.
func BenchmarkFileSink(b *testing.B) {
	batches, counts := benchBatches(100_000)
	for _, format := range []string{"value", "kv", "json"} {
		for _, every := range []int{-1, 0, 1_000_000, 100_000} {
			name := fmt.Sprintf("%s/commit_every_%d", format, every)
			switch every {
			case -1:
				name = format + "/write_only"
			case 0:
				name = format + "/final"
			}
			b.Run(name, func(b *testing.B) {
				benchFileSink(b, format, every, batches, counts)
			})
		}
	}
}

// benchFileSink writes b.N records to a file sink with a transaction every
// `every` records (0: only the final one, -1: the final one untimed).
func benchFileSink(b *testing.B, format string, every int, batches [][]byte, counts []int) {
	ctx := context.Background()
	c := registry(b, RegisterOptions{})
	sink := newSink(b, c, "file", fmt.Sprintf(`{"path": %q, "format": %q}`, b.TempDir(), format))().(runtime.TwoPhaseSink)
	if err := sink.Open(ctx, taskInfo(0, 1, nil)); err != nil {
		b.Fatal(err)
	}
	checkpoint := int64(0)
	commit := func(id int64) {
		if _, err := sink.PreCommit(ctx, id); err != nil {
			b.Fatal(err)
		}
		if err := sink.Commit(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(108) // key + value
	b.ReportAllocs()
	b.ResetTimer()
	// One op is one record; the overshoot is under one batch.
	sinceCommit := 0
	for n := 0; n < b.N; {
		for i, batch := range batches {
			if err := sink.Write(ctx, batch); err != nil {
				b.Fatal(err)
			}
			n += counts[i]
			if sinceCommit += counts[i]; every > 0 && sinceCommit >= every {
				checkpoint++
				commit(checkpoint)
				sinceCommit = 0
			}
			if n >= b.N {
				break
			}
		}
	}
	if every < 0 {
		b.StopTimer()
	}
	if err := sink.Finish(ctx); err != nil {
		b.Fatal(err)
	}
	commit(runtime.FinalCheckpoint)
	if err := sink.Close(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkBlackholeSink(b *testing.B) {
	batches, counts := benchBatches(100_000)
	sink := NewBlackholeSink(new(BlackholeCounters))
	b.ReportAllocs()
	b.ResetTimer()
	writeRecords(b, sink, batches, counts)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkPrintSink(b *testing.B) {
	batches, counts := benchBatches(100_000)
	mk, err := NewPrintFactory(io.Discard)([]byte(`{"format": "kv"}`))
	if err != nil {
		b.Fatal(err)
	}
	sink := mk()
	if err := sink.Open(context.Background(), taskInfo(1, 2, nil)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	writeRecords(b, sink, batches, counts)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// TestConfinedFilePaths: with Confine, file connectors accept only paths
// inside the base directory (the platform's per-tenant file area).
func TestConfinedFilePaths(t *testing.T) {
	base := t.TempDir()
	var c runtime.Connectors
	RegisterWithOptions(&c, RegisterOptions{BaseDir: base, Confine: true})
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"out", true}, {"a/b/c.txt", true}, {"a/../b", true},
		{"/etc/passwd", false}, {"../other-tenant/out", false}, {"a/../../x", false}, {"..", false},
	} {
		cfg := []byte(fmt.Sprintf(`{"path": %q}`, tc.path))
		_, errSrc := c.Sources["file"](cfg)
		_, errSink := c.Sinks["file"](cfg)
		for what, err := range map[string]error{"source": errSrc, "sink": errSink} {
			if tc.ok && err != nil && strings.Contains(err.Error(), "file area") {
				t.Errorf("%s %q refused: %v", what, tc.path, err)
			}
			if !tc.ok && (err == nil || !strings.Contains(err.Error(), "tenant's file area")) {
				t.Errorf("%s %q: err = %v, want a file-area error", what, tc.path, err)
			}
		}
	}
}

// TestBlackholeRate: a rate-limited blackhole returns from Write only once
// the task clock allows the records written so far.
func TestBlackholeRate(t *testing.T) {
	c := registry(t, RegisterOptions{})
	if _, err := c.Sinks["blackhole"]([]byte(`{"rate": -1}`)); err == nil || !strings.Contains(err.Error(), "config.rate") {
		t.Fatalf("negative rate: %v", err)
	}
	mk := newSink(t, c, "blackhole", `{"rate": 100}`)
	clk := clock.NewFake(time.Unix(0, 0))
	s := mk()
	ctx := context.Background()
	if err := s.Open(ctx, taskInfo(0, 1, clk)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Write(ctx, encode(rec{"a", "1", 1}, rec{"b", "2", 2})) }() // 2 records: due at 20 ms
	for {
		n, changed := clk.Waiters()
		if n > 0 {
			break
		}
		<-changed
	}
	clk.Advance(19 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("Write returned before its records were due: %v", err)
	default:
	}
	clk.Advance(time.Millisecond)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

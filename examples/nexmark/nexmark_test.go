//go:build !wasip1

package main

// End-to-end tests of the queries: each job spec (qN.yaml) runs through the
// real runtime (runtime.Compile and Job.Run) with the module built from this
// folder for Wasm, the real "nexmark" source and the real file sink, and its
// output must equal what the reference implementations of reference_test.go
// compute from the same events, generated in memory: as multisets of lines,
// or for q4's upsert changelog the last line of every category.
//
//	go test ./examples/nexmark/                      # 1,000,000 events
//	go test -short ./examples/nexmark/               # 100,000 events
//	go test ./examples/nexmark/ -events 300000       # any count
//
// A run of the 16 jobs takes about 20 s, about 120 s with -race (most of
// it in the host side of the runtime, the generator and the reference,
// which the race detector slows down 5 to 7 times; Wasm code is not
// instrumented).

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"hash/maphash"
	"iter"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weirstream/weir/connectors"
	"github.com/weirstream/weir/connectors/nexmark"
	"github.com/weirstream/weir/runtime"
	"github.com/weirstream/weir/wasmhost"
)

var eventsFlag = flag.Int64("events", 0, "events per query run of TestQueries (default 1,000,000, or 100,000 with -short)")

// The module and the wazero runtime, built once per test binary.
var (
	buildOnce sync.Once
	buildDir  string
	wasmPath  string
	buildErr  error

	rtOnce sync.Once
	rt     *wasmhost.Runtime
	rtErr  error
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	if rt != nil {
		rt.Close(context.Background())
	}
	os.Exit(code)
}

// module builds this folder's module for wasip1, once.
func module(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "weir-nexmark-"); buildErr != nil {
			return
		}
		wasmPath = filepath.Join(buildDir, "nexmark.wasm")
		cmd := exec.Command("go", "build", "-trimpath", "-buildmode=c-shared", "-o", wasmPath, ".")
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building the nexmark module for wasip1: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return wasmPath
}

// wasmLoader loads the module with one shared wazero runtime (compiled once,
// as in a worker).
func wasmLoader(tb testing.TB) runtime.ModuleLoader {
	tb.Helper()
	rtOnce.Do(func() { rt, rtErr = wasmhost.NewRuntime(context.Background(), wasmhost.Config{}) })
	if rtErr != nil {
		tb.Fatal(rtErr)
	}
	return runtime.WasmLoader(rt)
}

// queryRun is one run of a query's job spec.
type queryRun struct {
	query       string // "q0" ... "q8": the spec qN.yaml
	events      int64  // the source's count
	parallelism int
	load        runtime.ModuleLoader
	// outDir is the file sink's directory; empty swaps the file sink for
	// the blackhole sink.
	outDir string
}

// run runs the job and returns how many records reached the blackhole sink.
func (r queryRun) run(tb testing.TB) int64 {
	tb.Helper()
	spec, err := runtime.LoadSpec(r.query + ".yaml")
	if err != nil {
		tb.Fatal(err)
	}
	spec.Modules["nexmark"] = runtime.ModuleSpec{Path: module(tb)}
	spec.Parallelism = r.parallelism
	sinks := 0
	for i := range spec.Nodes {
		n := &spec.Nodes[i]
		switch {
		case n.Source == "nexmark":
			n.Config.(map[string]any)["count"] = r.events
		case n.Sink == "file" && r.outDir == "":
			n.Sink, n.Config = "blackhole", nil
			sinks++
		case n.Sink == "file":
			n.Config.(map[string]any)["path"] = r.outDir
			sinks++
		}
	}
	if sinks != 1 {
		tb.Fatalf("%s.yaml: %d file sinks, want 1", r.query, sinks)
	}
	var conns runtime.Connectors
	var counters connectors.BlackholeCounters
	connectors.RegisterWithOptions(&conns, connectors.RegisterOptions{Blackhole: &counters})
	job, err := runtime.Compile(context.Background(), spec, runtime.Options{Connectors: conns, LoadModule: r.load})
	if err != nil {
		tb.Fatal(err)
	}
	if err := job.Run(context.Background()); err != nil {
		tb.Fatalf("%s at parallelism %d: %v", r.query, r.parallelism, err)
	}
	return counters.Records()
}

// outputLines calls yield for every line the file sink committed in dir,
// file by file (a subtask's lines in order).
func outputLines(tb testing.TB, dir string) iter.Seq[string] {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "part-*"))
	if err != nil {
		tb.Fatal(err)
	}
	slices.Sort(files)
	return func(yield func(string) bool) {
		for _, name := range files {
			f, err := os.Open(name)
			if err != nil {
				tb.Fatal(err)
			}
			s := bufio.NewScanner(f)
			s.Buffer(nil, 1<<20)
			for s.Scan() {
				if !yield(s.Text()) {
					f.Close()
					return
				}
			}
			if err := s.Err(); err != nil {
				tb.Fatalf("%s: %v", name, err)
			}
			f.Close()
		}
	}
}

// The expected outputs, computed once per event count.
var (
	expectedMu sync.Mutex
	expected   = map[int64]*expectedOutputs{}
	lineSeed   = maphash.MakeSeed()
)

type lineCounts map[uint64]int32 // line hash -> occurrences

func (c lineCounts) add(line string) { c[maphash.String(lineSeed, line)]++ }

type expectedOutputs struct {
	q0, q1                 lineCounts // 92% of the events: hashes, not lines
	q2, q3, q5, q7, q8     []string
	q4                     map[int64]int64 // category -> final average
	generateTime, refsTime time.Duration
}

// generator is the event generator the nexmark source uses with the job
// specs' config (only count is set, which the generator does not see).
func generator(tb testing.TB) *nexmark.Generator {
	tb.Helper()
	g, err := nexmark.NewGenerator(nexmark.DefaultConfig())
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

// expectedFor runs the reference implementations over events 0..n-1.
func expectedFor(tb testing.TB, n int64) *expectedOutputs {
	tb.Helper()
	expectedMu.Lock()
	defer expectedMu.Unlock()
	if x := expected[n]; x != nil {
		return x
	}
	g := generator(tb)
	x := &expectedOutputs{q0: lineCounts{}, q1: lineCounts{}}
	ref := &reference{q0: x.q0.add, q1: x.q1.add, q2: func(l string) { x.q2 = append(x.q2, l) }}
	start := time.Now()
	var e nexmark.Event
	for i := range n {
		g.Event(i, &e)
		ref.add(i, &e)
	}
	x.generateTime = time.Since(start)
	start = time.Now()
	x.q3, x.q4, x.q5, x.q8 = ref.q3(), ref.q4(), ref.q5(), ref.q8()
	x.q7 = ref.q7(func(i int64) string {
		var e nexmark.Event
		g.Event(i, &e)
		return strings.Clone(e.Bid.Extra)
	})
	x.refsTime = time.Since(start)
	// An empty reference would let an empty output pass.
	if n >= 100_000 {
		for q, l := range map[string]int{"q0": len(x.q0), "q1": len(x.q1), "q2": len(x.q2), "q3": len(x.q3),
			"q4": len(x.q4), "q5": len(x.q5), "q7": len(x.q7), "q8": len(x.q8)} {
			if l == 0 {
				tb.Fatalf("the %s reference is empty over %d events", q, n)
			}
		}
	}
	tb.Logf("reference over %d events: generated in %v, queries in %v", n, x.generateTime.Round(time.Millisecond), x.refsTime.Round(time.Millisecond))
	expected[n] = x
	return x
}

// referenceLines iterates the expected lines of a query that has a line
// multiset; for q0 and q1 it generates them again (only needed to show
// which lines are missing).
func referenceLines(tb testing.TB, x *expectedOutputs, query string, n int64) iter.Seq[string] {
	var lines []string
	switch query {
	case "q0", "q1":
		return func(yield func(string) bool) {
			g := generator(tb)
			more := true
			emit := func(l string) { more = more && yield(l) }
			ref := &reference{}
			if query == "q0" {
				ref.q0 = emit
			} else {
				ref.q1 = emit
			}
			var e nexmark.Event
			for i := int64(0); i < n && more; i++ {
				g.Event(i, &e)
				ref.add(i, &e)
			}
		}
	case "q2":
		lines = x.q2
	case "q3":
		lines = x.q3
	case "q5":
		lines = x.q5
	case "q7":
		lines = x.q7
	case "q8":
		lines = x.q8
	default:
		tb.Fatalf("no line reference for %s", query)
	}
	return slices.Values(lines)
}

func wantCounts(tb testing.TB, x *expectedOutputs, query string, n int64) lineCounts {
	switch query {
	case "q0":
		return x.q0
	case "q1":
		return x.q1
	}
	c := lineCounts{}
	for l := range referenceLines(tb, x, query, n) {
		c.add(l)
	}
	return c
}

// checkLines compares the lines in dir with the reference's, as multisets.
func checkLines(t *testing.T, x *expectedOutputs, query string, n int64, dir string) {
	t.Helper()
	want := wantCounts(t, x, query, n)
	got := lineCounts{}
	lines := 0
	for l := range outputLines(t, dir) {
		got.add(l)
		lines++
	}
	if maps.Equal(got, want) {
		t.Logf("%s: %d lines, as the reference", query, lines)
		return
	}
	// Show a few lines each way.
	var extra, missing []string
	seen := lineCounts{}
	for l := range outputLines(t, dir) {
		h := maphash.String(lineSeed, l)
		if seen[h]++; seen[h] > want[h] && len(extra) < 5 {
			extra = append(extra, l)
		}
	}
	seen = lineCounts{}
	wantLines := 0
	for l := range referenceLines(t, x, query, n) {
		wantLines++
		h := maphash.String(lineSeed, l)
		if seen[h]++; seen[h] > got[h] && len(missing) < 5 {
			missing = append(missing, l)
		}
	}
	t.Errorf("%s: %d lines, the reference has %d\nnot in the reference (first 5):\n%s\nmissing (first 5):\n%s",
		query, lines, wantLines, strings.Join(extra, "\n"), strings.Join(missing, "\n"))
}

// checkUpserts compares the last category,avg line of every category with
// the reference's final averages.
func checkUpserts(t *testing.T, want map[int64]int64, dir string) {
	t.Helper()
	got := map[int64]int64{}
	lines := 0
	for l := range outputLines(t, dir) {
		lines++
		c, a, ok := strings.Cut(l, ",")
		category, err1 := strconv.ParseInt(c, 10, 64)
		avg, err2 := strconv.ParseInt(a, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			t.Fatalf("q4: line %q is not category,avg", l)
		}
		got[category] = avg
	}
	if !maps.Equal(got, want) {
		t.Errorf("q4: final averages %v, the reference's %v", got, want)
		return
	}
	t.Logf("q4: %d upserts, final averages %v as the reference", lines, got)
}

var queryNames = []string{"q0", "q1", "q2", "q3", "q4", "q5", "q7", "q8"}

func TestQueries(t *testing.T) {
	n := *eventsFlag
	if n == 0 {
		n = 1_000_000
		if testing.Short() {
			n = 100_000
		}
	}
	for _, q := range queryNames {
		for _, p := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/p%d", q, p), func(t *testing.T) {
				x := expectedFor(t, n)
				dir := t.TempDir()
				start := time.Now()
				queryRun{query: q, events: n, parallelism: p, load: wasmLoader(t), outDir: dir}.run(t)
				t.Logf("%s at parallelism %d: %d events in %v", q, p, n, time.Since(start).Round(time.Millisecond))
				if q == "q4" {
					checkUpserts(t, x.q4, dir)
				} else {
					checkLines(t, x, q, n, dir)
				}
			})
		}
	}
}

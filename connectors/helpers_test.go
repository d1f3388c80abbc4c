package connectors

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/runtime"
	"github.com/weirstream/weir/runtime/clock"
)

// rec is a collected record.
type rec struct {
	Key, Value string
	TS         int64
}

// collector is a RecordWriter that keeps copies of what it is given.
type collector struct{ recs []rec }

func (c *collector) Write(key, value []byte, ts int64) {
	c.recs = append(c.recs, rec{string(key), string(value), ts})
}

// batchWriter is a RecordWriter that encodes like the runtime does; the
// benchmarks use it so that the measured cost includes the copy into a batch.
type batchWriter struct {
	enc abi.Encoder
	n   int
}

func (b *batchWriter) Write(key, value []byte, ts int64) {
	b.enc.Record(abi.TagMain, key, value, ts)
	b.n++
}

func registry(t testing.TB, o RegisterOptions) *runtime.Connectors {
	t.Helper()
	c := &runtime.Connectors{}
	RegisterWithOptions(c, o)
	return c
}

func newSource(t testing.TB, c *runtime.Connectors, kind, config string) func() runtime.Source {
	t.Helper()
	f, ok := c.Sources[kind]
	if !ok {
		t.Fatalf("no source %q", kind)
	}
	mk, err := f([]byte(config))
	if err != nil {
		t.Fatalf("%s config %s: %v", kind, config, err)
	}
	return mk
}

func newSink(t testing.TB, c *runtime.Connectors, kind, config string) func() runtime.Sink {
	t.Helper()
	f, ok := c.Sinks[kind]
	if !ok {
		t.Fatalf("no sink %q", kind)
	}
	mk, err := f([]byte(config))
	if err != nil {
		t.Fatalf("%s config %s: %v", kind, config, err)
	}
	return mk
}

func taskInfo(subtask, parallelism int, clk clock.Clock) runtime.TaskInfo {
	return runtime.TaskInfo{Job: "job", NodeID: "node", Subtask: subtask, Parallelism: parallelism, Clock: clk}
}

// drain opens src as subtask/parallelism and polls it to the end, failing
// the test if it does not end within maxPolls.
func drain(t testing.TB, src runtime.Source, subtask, parallelism, batch int) []rec {
	t.Helper()
	recs, err := drainErr(src, subtask, parallelism, batch)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func drainErr(src runtime.Source, subtask, parallelism, batch int) ([]rec, error) {
	ctx := context.Background()
	if err := src.Open(ctx, taskInfo(subtask, parallelism, clock.NewFake(time.Unix(0, 0)))); err != nil {
		return nil, err
	}
	defer src.Close()
	var c collector
	for polls := 0; ; polls++ {
		if polls > 1_000_000 {
			panic("source does not end")
		}
		done, err := src.Poll(ctx, &c, batch)
		if err != nil {
			return c.recs, err
		}
		if done {
			return c.recs, nil
		}
	}
}

// encode builds a records-only batch.
func encode(recs ...rec) []byte {
	var e abi.Encoder
	for _, r := range recs {
		e.Record(abi.TagMain, []byte(r.Key), []byte(r.Value), r.TS)
	}
	return e.B
}

// wantErr checks err against a substring; "" means no error.
func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Fatalf("no error, want one containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("error %q does not contain %q", err, want)
	}
}

// benchPoll opens src as subtask 0 of 1 and polls it in batches of 1024
// records into a batch encoder, one op per record; it reports unit per
// second ("records/s", "events/s").
func benchPoll(b *testing.B, src runtime.Source, unit string) {
	ctx := context.Background()
	if err := src.Open(ctx, taskInfo(0, 1, clock.NewFake(time.Unix(0, 0)))); err != nil {
		b.Fatal(err)
	}
	const batch = 1024
	w := &batchWriter{}
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; {
		k := min(batch, b.N-n)
		w.enc.Reset()
		if _, err := src.Poll(ctx, w, k); err != nil {
			b.Fatal(err)
		}
		n += k
	}
	b.StopTimer()
	if w.n != b.N {
		b.Fatalf("generated %d %s, want %d", w.n, unit, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit+"/s")
}

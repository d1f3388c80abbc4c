package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/connectors"
	"github.com/weirstream/weir/runtime"
)

// latencySink records, for every record, the wall time since its
// timestamp (the datagen source stamps records with processing time when
// it generates them).
type latencySink struct {
	mu  *sync.Mutex
	out *[]time.Duration
}

func (s latencySink) Open(context.Context, runtime.TaskInfo) error { return nil }
func (s latencySink) Write(_ context.Context, batch []byte) error {
	now := time.Now().UnixMicro()
	d := abi.NewDecoder(batch)
	var e abi.Event
	s.mu.Lock()
	defer s.mu.Unlock()
	for d.More() {
		if err := d.Next(&e); err != nil {
			return err
		}
		if e.Kind == abi.KindRecord {
			*s.out = append(*s.out, time.Duration(now-e.Timestamp*1000)*time.Microsecond)
		}
	}
	return nil
}
func (s latencySink) Finish(context.Context) error { return nil }
func (s latencySink) Close() error                 { return nil }

// BenchmarkLatencyLowRate measures source-to-sink latency at a low rate
// (500 records/s per source subtask) with every record crossing from one
// worker to another, for several exchange lingers: a batch is sent when
// full or when its oldest record is linger old, so at low rates latency
// follows the linger, not the batch size. Timestamps have millisecond
// resolution (the source's clock), so latencies are ±1 ms.
//
//	go test -run '^$' -bench BenchmarkLatencyLowRate -benchtime 1x ./platform/cluster/
func BenchmarkLatencyLowRate(b *testing.B) {
	for _, linger := range []string{"1ms", "5ms", "50ms"} {
		b.Run("linger="+linger, func(b *testing.B) {
			var mu sync.Mutex
			var lat []time.Duration
			c := startInProcess(b, 2, 1)
			for _, w := range c.workers {
				w.cfg.Connectors = func(string, string, ConnectorPolicy) (runtime.Connectors, *slog.Logger) {
					var conns runtime.Connectors
					connectors.Register(&conns)
					conns.Sinks["latency"] = func([]byte) (func() runtime.Sink, error) {
						return func() runtime.Sink { return latencySink{mu: &mu, out: &lat} }, nil
					}
					return conns, nil
				}
			}
			spec := fmt.Sprintf(`
name: latency
parallelism: 2
exchange: {linger: %s}
nodes:
  - id: gen
    source: datagen
    config: {count: 2000, rate: 500, timestamp: processing, key: {kind: sequence, start: 0, end: 1}}
  - {id: out, sink: latency, inputs: [{from: gen, partition: key}]}
`, linger)
			s, err := runtime.ParseSpec([]byte(spec))
			if err != nil {
				b.Fatal(err)
			}
			var conns runtime.Connectors
			connectors.Register(&conns)
			conns.Sinks["latency"] = func([]byte) (func() runtime.Sink, error) {
				return func() runtime.Sink { return latencySink{mu: &mu, out: &lat} }, nil
			}
			b.ResetTimer()
			for range b.N {
				job, err := runtime.Compile(context.Background(), s, runtime.Options{Connectors: conns, Cluster: c.coord.ForJob("t", "latency", ConnectorPolicy{AnyBroker: true})})
				if err != nil {
					b.Fatal(err)
				}
				if err := job.Run(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			if len(lat) == 0 {
				b.Fatal("no latencies")
			}
			q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1e6 }
			b.ReportMetric(q(0.5), "p50-ms")
			b.ReportMetric(q(0.99), "p99-ms")
			b.ReportMetric(float64(len(lat))/float64(b.N), "records/op")
		})
	}
}

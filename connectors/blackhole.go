package connectors

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/runtime"
	"github.com/weirstream/weir/runtime/clock"
)

// BlackholeCounters accumulate what blackhole sinks consumed. They are safe
// for concurrent use: every subtask adds its batch totals once per batch.
type BlackholeCounters struct {
	records atomic.Int64
	bytes   atomic.Int64
	batches atomic.Int64
}

// Records is the number of records consumed.
func (c *BlackholeCounters) Records() int64 { return c.records.Load() }

// Bytes is the number of key and value bytes consumed (the payload, not the
// encoded batch size).
func (c *BlackholeCounters) Bytes() int64 { return c.bytes.Load() }

// Batches is the number of non-empty batches consumed.
func (c *BlackholeCounters) Batches() int64 { return c.batches.Load() }

// Reset sets every count to zero (between benchmark runs).
func (c *BlackholeCounters) Reset() {
	c.records.Store(0)
	c.bytes.Store(0)
	c.batches.Store(0)
}

// blackholeConfig is the config of the blackhole sink.
type blackholeConfig struct {
	// Rate, if positive, limits each subtask to that many records per
	// second on the task clock: a deliberately slow sink, to see
	// backpressure reach the sources.
	Rate float64 `json:"rate"`
}

// NewBlackholeFactory returns the blackhole sink factory; every sink it
// makes adds to c.
func NewBlackholeFactory(c *BlackholeCounters) runtime.SinkFactory {
	return func(config []byte) (func() runtime.Sink, error) {
		var cfg blackholeConfig
		if err := runtime.DecodeConfig(config, &cfg); err != nil {
			return nil, err
		}
		if cfg.Rate < 0 {
			return nil, fmt.Errorf("config.rate: must not be negative, got %v", cfg.Rate)
		}
		return func() runtime.Sink { return &BlackholeSink{counters: c, rate: cfg.Rate} }, nil
	}
}

// BlackholeSink discards records after counting them. It still decodes every
// batch, so a corrupt batch fails the task here as it would at a real sink.
type BlackholeSink struct {
	counters *BlackholeCounters
	dec      abi.Decoder
	ev       abi.Event

	rate  float64 // records/s, 0: unlimited
	clk   clock.Clock
	start time.Time
	seen  int64
}

// NewBlackholeSink returns a sink adding to c.
func NewBlackholeSink(c *BlackholeCounters) *BlackholeSink { return &BlackholeSink{counters: c} }

// Open implements runtime.Sink.
func (s *BlackholeSink) Open(_ context.Context, info runtime.TaskInfo) error {
	s.clk = info.Clock
	if s.clk == nil {
		s.clk = clock.Real{}
	}
	s.start = s.clk.Now()
	return nil
}

// Write counts the batch's records and payload bytes.
func (s *BlackholeSink) Write(ctx context.Context, batch []byte) error {
	var records, bytes int64
	s.dec.Reset(batch)
	for s.dec.More() {
		if err := nextRecord(&s.dec, &s.ev); err != nil {
			return fmt.Errorf("blackhole sink: %w", err)
		}
		records++
		bytes += int64(len(s.ev.Key) + len(s.ev.Value))
	}
	if records > 0 {
		s.counters.records.Add(records)
		s.counters.bytes.Add(bytes)
		s.counters.batches.Add(1)
	}
	if s.rate > 0 && records > 0 {
		s.seen += records
		due := s.start.Add(time.Duration(float64(s.seen) / s.rate * float64(time.Second)))
		if d := due.Sub(s.clk.Now()); d > 0 {
			select {
			case <-s.clk.After(d):
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
	}
	return nil
}

// Finish implements runtime.Sink.
func (s *BlackholeSink) Finish(context.Context) error { return nil }

// Close implements runtime.Sink.
func (s *BlackholeSink) Close() error { return nil }

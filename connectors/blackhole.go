package connectors

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/runtime"
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

// blackholeConfig is the (empty) config of the blackhole sink; decoding it
// still rejects unknown fields.
type blackholeConfig struct{}

// NewBlackholeFactory returns the blackhole sink factory; every sink it
// makes adds to c.
func NewBlackholeFactory(c *BlackholeCounters) runtime.SinkFactory {
	return func(config []byte) (func() runtime.Sink, error) {
		var cfg blackholeConfig
		if err := runtime.DecodeConfig(config, &cfg); err != nil {
			return nil, err
		}
		return func() runtime.Sink { return NewBlackholeSink(c) }, nil
	}
}

// BlackholeSink discards records after counting them. It still decodes every
// batch, so a corrupt batch fails the task here as it would at a real sink.
type BlackholeSink struct {
	counters *BlackholeCounters
	dec      abi.Decoder
	ev       abi.Event
}

// NewBlackholeSink returns a sink adding to c.
func NewBlackholeSink(c *BlackholeCounters) *BlackholeSink { return &BlackholeSink{counters: c} }

// Open implements runtime.Sink.
func (s *BlackholeSink) Open(context.Context, runtime.TaskInfo) error { return nil }

// Write counts the batch's records and payload bytes.
func (s *BlackholeSink) Write(_ context.Context, batch []byte) error {
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
	return nil
}

// Finish implements runtime.Sink.
func (s *BlackholeSink) Finish(context.Context) error { return nil }

// Close implements runtime.Sink.
func (s *BlackholeSink) Close() error { return nil }

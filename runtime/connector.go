package runtime

import (
	"context"
	"log/slog"

	"github.com/weirstream/weir/runtime/clock"
)

// TaskInfo tells a source or sink which parallel instance it is.
type TaskInfo struct {
	Job         string
	NodeID      string
	Subtask     int // 0-based
	Parallelism int
	Logger      *slog.Logger
	Clock       clock.Clock
}

// RecordWriter receives the records a source produces.
type RecordWriter interface {
	// Write appends a record; key and value are copied before Write returns.
	// ts is epoch milliseconds, or abi.NoTimestamp.
	Write(key, value []byte, ts int64)
}

// Source produces the records of one subtask of a source node. The task
// goroutine calls every method; a source needs no locking.
type Source interface {
	Open(ctx context.Context, info TaskInfo) error
	// Poll writes the next records to w: up to about a batch (maxRecords),
	// fewer when no more are available now. It returns done=true when a
	// bounded input is exhausted (no records will follow). When nothing is
	// available it waits, but returns no later than ctx's deadline, so that
	// the task can handle control events.
	Poll(ctx context.Context, w RecordWriter, maxRecords int) (done bool, err error)
	Close() error
}

// Sink consumes the records of one subtask of a sink node.
type Sink interface {
	Open(ctx context.Context, info TaskInfo) error
	// Write consumes a batch holding only records (abi encoding); the batch
	// is reused after Write returns.
	Write(ctx context.Context, batch []byte) error
	// Finish is called once at the end of bounded input, before Close.
	Finish(ctx context.Context) error
	// Close releases resources; called whether or not Finish was.
	Close() error
}

// SourceFactory validates a source node's config (JSON, decode it with
// DecodeConfig) and returns a constructor for its subtasks. Errors name the
// offending field, e.g. `config.path: required`.
type SourceFactory func(config []byte) (func() Source, error)

// SinkFactory is SourceFactory for sinks.
type SinkFactory func(config []byte) (func() Sink, error)

// Connectors is the set of source and sink kinds a job spec may name.
type Connectors struct {
	Sources map[string]SourceFactory
	Sinks   map[string]SinkFactory
}

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

// CheckpointedSource is a Source whose position is part of every checkpoint,
// so that after a failure (or from a savepoint) the job continues exactly
// after the records the checkpoint covers. The task goroutine calls
// Snapshot between two Polls when a barrier is due: the returned bytes
// describe the position after every record written so far.
//
// Restore is called before Open when the job starts from a checkpoint or
// savepoint. states holds the Snapshot of every subtask of the node in that
// checkpoint, indexed by the old subtask number; len(states) is the old
// parallelism and may differ from info.Parallelism (rescaling). Each new
// subtask picks its share so that together the new subtasks produce exactly
// the records the old ones had not produced yet, each once. A nil entry
// means the old subtask had not snapshotted anything (treat it as "nothing
// read").
type CheckpointedSource interface {
	Source
	Snapshot() ([]byte, error)
	Restore(info TaskInfo, states [][]byte) error
}

// FinalCheckpoint is the checkpoint id a TwoPhaseSink's last transaction is
// pre-committed under at the end of bounded input; it is committed when the
// whole job has finished.
const FinalCheckpoint int64 = 1<<63 - 1

// TwoPhaseSink is a Sink with exactly-once output: data becomes visible only
// once the checkpoint covering it has completed.
//
// PreCommit(n) is called on the task goroutine at checkpoint n's barrier
// (after every record before the barrier was written): the sink makes what
// it wrote since the previous PreCommit durable but still invisible, as the
// pending transaction of n, and returns a small description of it that goes
// into the checkpoint. At end of input the runtime calls Finish and then
// PreCommit(FinalCheckpoint).
//
// Commit(n) makes every pending transaction of this subtask with id <= n
// visible. It is called after checkpoint n completed (or a savepoint that
// stopped the job; a savepoint that does not stop it commits nothing, its
// transactions are committed with the next checkpoint) (possibly from another
// goroutine than the task's, but never concurrently with other calls on the
// sink) and must be idempotent.
//
// Restore is called before Open when the job restarts from checkpoint n:
// states are the PreCommit results of every old subtask in that checkpoint
// (len(states) is the old parallelism). The new subtask commits the
// transactions of the old subtasks i with i % info.Parallelism ==
// info.Subtask (idempotently: they may have been committed already), and
// discards every other pending transaction those old subtasks left behind
// (those of checkpoints after n, which never completed). A Restore error
// fails the job for good (the checkpoint cannot be used), so a sink whose
// commits need the network only decodes and checks its states in Restore
// and does the committing in Open, whose errors are retried like any task
// failure (the Kafka sink does so).
type TwoPhaseSink interface {
	Sink
	PreCommit(ctx context.Context, checkpoint int64) ([]byte, error)
	Commit(ctx context.Context, checkpoint int64) error
	Restore(ctx context.Context, info TaskInfo, checkpoint int64, states [][]byte) error
}

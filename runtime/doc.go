// Package runtime is Weir's execution engine: it turns a job spec into an
// execution graph and runs it.
//
// It owns job specs (YAML or JSON) and their validation, the execution graph
// (chains × subtasks = tasks), the task loop, local channels with
// credit-based flow control, partitioners, watermark tracking and the timer
// service. It talks to operators through OperatorInstance (wasmhost
// instances, or the same SDK code run natively), to keyed state through
// state.Backend, and to connectors through Source and Sink. It knows nothing
// of tenants, REST or the cluster.
//
// # Decisions
//
// Validation before anything runs. Compile loads and compiles every module,
// checks every node, edge and connector config, and returns SpecErrors, each
// naming its field ("nodes[2] (count).inputs[0].partition: ..."). Unknown
// YAML fields are errors with their line.
//
// Partitioning. An edge's default is key into a keyed operator, forward at
// equal parallelism, else rebalance. A keyed operator (FlagKeyed in its
// module's operator table) must have key-partitioned inputs, and key
// partitioning into an operator that reads no key is refused: keyed state is
// only correct when every record of a key reaches the subtask that owns the
// key's key group (abi.KeyGroup, Flink's assignment formula).
//
// Chaining. A node joins its upstream's task when its only input is the
// upstream's main output over a forward edge and the upstream has no other
// consumer; chained operators hand batches to each other without a channel.
// A chained operator's late-output records are dropped (and counted) unless a
// separate edge reads them; such an edge prevents chaining.
//
// Exchange. A channel connects one producer subtask to one consumer subtask.
// Its buffers are its credits: exchange.buffers per channel (default 4) of
// exchange.batchBytes (default 32 KiB). A producer that finds no free buffer
// blocks (time counted as backpressure), so memory is bounded by
// channels × buffers × batchBytes and a slow sink slows its sources. A batch
// is sent when full, when a control event must travel (idleness, end of
// input), or after exchange.linger (default 5 ms) on the wall clock — linger
// is a latency mechanism, not event semantics, so it never uses the injected
// clock.
//
// Watermarks. Sources generate them from record timestamps with bounded
// out-of-orderness (watermark = max timestamp - bound - 1 ms). By default
// every 200 ms of processing time (Flink's autoWatermarkInterval); with
// `interval: 0` after every record that advances it, which makes late-data
// decisions independent of timing and batch boundaries (the examples use
// it). A task's watermark is the minimum over its input channels that are
// neither idle nor finished; a source subtask without records for
// `idleTimeout` is marked idle. Bounded sources end with MaxWatermark, so
// every event-time timer fires before end of input.
//
// Timers and operators. When an operator's watermark advances to W, it gets
// one call with every event-time timer <= W (timestamp order) and then the
// Watermark(W) event (ABI.md 4.2), then W goes downstream; timers registered
// meanwhile with ts <= W fire in follow-up calls. Processing-time timers use
// the injected clock; like Flink, pending ones do not fire at end of input.
//
// Failure. A task error (trap, deadline, connector error, injected fault)
// cancels every task of the attempt; a failing Wasm instance fails only its
// job. Without checkpoint storage the error is returned. With it, the
// restart strategy (restart: none | fixed | exponential, with a failure-rate
// limit; default fixed when checkpoints are on) decides: the job restarts
// from the newest intact retained checkpoint (or the savepoint it started
// from, or afresh) with new tasks, instances and state, or fails with a
// JobFailedError carrying its failure history. Restore problems that no
// retry can fix (a savepoint whose state the job cannot map, a kind change,
// a sink that lost its transaction) fail at once. Options.OnEvent reports
// failures, restarts and checkpoints as they happen.
//
// Checkpoints (checkpoint.Coordinator; barriers.go, checkpointing.go,
// restore.go). The coordinator triggers checkpoint n by queueing it at every
// source task; between two polls the source snapshots its position and its
// watermark generator, and emits barrier n on every output channel. A task
// with several input channels aligns (exactly-once, the default): a channel
// that delivered barrier n is blocked — its batches, including the rest of
// the batch holding the barrier, are held without returning their buffers,
// so credit-based backpressure stops its producer — until every channel
// that has not ended delivered n. In at-least-once mode nothing is blocked.
// A newer barrier cancels an alignment in progress (its checkpoint was
// aborted). After alignment the task pre-commits its two-phase-commit sinks,
// takes the synchronous part of its state snapshot (copy-on-write for the
// memory backend, a hard-linked Pebble checkpoint for Pebble), forwards the
// barrier, and goes on processing while a goroutine uploads the snapshot and
// acks. Pebble checkpoints are incremental: an SST already referenced by the
// newest completed checkpoint is referenced again, not uploaded. When every
// task acked, the coordinator writes the metadata (last, atomically) and
// notifies the tasks, whose sinks commit.
//
// Decisions. Once any source has reached its end no new checkpoint is
// triggered (Flink before FLIP-147): a bounded job's last stretch is covered
// by its final transaction, which two-phase-commit sinks make visible only
// when every task has finished; a failure before that replays from the
// last checkpoint. Checkpoint ids keep increasing across attempts and
// savepoint starts, so transaction names never repeat. A fresh start (no
// --resume, no savepoint) deletes the job's earlier checkpoints, never its
// savepoints. Falling back past a damaged newest checkpoint replays output
// that the newer checkpoint had already committed: exactly-once holds only
// down to the newest intact checkpoint, which is why three are retained by
// default and every file is checksummed.
//
// Savepoints are canonical (backend-independent) snapshots written inside
// their own folder, so they can be copied elsewhere, restored at another
// parallelism (state is re-split by key-group range; source and sink
// positions are redistributed by the connectors) or with another module
// version: state is mapped by node id and state name, a kind change fails
// with the state's name, and state of removed nodes or states a new version
// no longer registers in Open fails unless allowNonRestoredState drops it.
// maxParallelism cannot change (key groups are the unit of redistribution).
// Stop-with-savepoint suspends the sources right after the savepoint
// barrier and ends the job once the savepoint completed and the sinks
// committed it.
//
// Placement. An attempt runs as TaskGroups: by default one TaskSet with
// every task in this process; with Options.Cluster the tasks are placed on
// workers, each running a TaskSet of the tasks placed there. A TaskSet
// builds the whole graph's channel numbering, local channels between its
// own tasks, and remote channel ends (Exchange) with the same credits
// toward tasks elsewhere. The master logic (restarts, the checkpoint
// coordinator, final commits) stays in the Job either way.
//
// Metrics. Counted per batch, never per record, in atomics any goroutine can
// read (Job.Stats): records and bytes in/out, watermark, late records
// dropped, time blocked on output.
package runtime

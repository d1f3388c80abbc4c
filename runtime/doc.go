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
// Failure. The first task error cancels the job and is returned with the
// task's name; a failing Wasm instance fails only its job (restart from
// checkpoints comes with the checkpoint issue).
//
// Metrics. Counted per batch, never per record, in atomics any goroutine can
// read (Job.Stats): records and bytes in/out, watermark, late records
// dropped, time blocked on output.
package runtime

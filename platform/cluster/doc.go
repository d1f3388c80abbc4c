// Package cluster is Weir's cluster mode: the coordinator's side of the
// workers (registration, heartbeats, placement, the checkpoint reports of
// remote tasks, module downloads) and the worker (it runs the tasks the
// coordinator deploys and exchanges records with other workers). The
// protocol is in clusterpb/cluster.proto (`make proto` regenerates the
// code). It knows nothing of tenants' keys, REST or the console; the
// platform package wires it to the job manager.
//
// # Decisions
//
// One engine. A job's master logic (attempts, restart strategy, the
// checkpoint coordinator, final commits) runs in the coordinator's
// runtime.Job exactly as in `weir run`; Coordinator.ForJob is the
// runtime.Cluster that places each attempt's tasks. On a worker the same
// spec is compiled again and a runtime.TaskSet runs the tasks placed there
// — the code that runs every task in a single process. `weir standalone`
// is a coordinator plus one worker in the same process, connected over
// loopback gRPC like any other worker.
//
// Slots and placement. Slot i of a job hosts subtask i of every node
// (Flink's default slot sharing), so a job needs as many slots as its
// largest parallelism. Spread (default) gives each slot to the worker with
// the most free slots; pack fills workers in turn. A new job that does not
// fit the registered slots is refused by the job manager (CapacityError);
// a restart or recovery waits up to SlotWait for slots to come back (a
// replacement worker), then fails with runtime.ErrNoSlots, which the
// restart strategy retries. CoordinatorConfig.SlotQuota is the per-tenant
// hook (the platform passes tenants' slot quotas).
//
// Control plane. The coordinator calls Deploy (build, restore, open the
// tasks; nothing runs), then Run on every worker of the attempt. Run lasts
// as long as the tasks: the first failure, or the coordinator cancelling
// the call, ends the attempt everywhere. Trigger and Notify carry
// checkpoint barriers and completions; tasks Ack, Decline and report
// finished sources to the coordinator. Finish commits final transactions
// and releases the tasks; it waits for a cancelled Run to end, so nothing
// runs guest code once it returns.
//
// Lost workers. A worker whose Run call breaks (the process died: the
// connection resets) is lost at once; one that stops heartbeating is lost
// after HeartbeatTimeout. Its attempts fail and the jobs restart from the
// latest completed checkpoint on the remaining workers. A worker that
// loses its coordinator drops its tasks and registers again; a restarted
// coordinator resumes its jobs from its metadata store and the checkpoint
// storage once the workers are back.
//
// Data plane. One gRPC stream per pair of workers (whoever sends first
// dials; if both dial at once both streams stay open and either carries
// frames) multiplexes every channel of every attempt between them. A data
// frame is one batch, byte for byte what a local channel carries (records,
// watermarks, barriers, end of input). Flow control is credit-based, as in
// Flink: a channel's producer starts with the consumer's number of
// buffers, spends one per batch, and gets one back when the consumer has
// processed a batch. So memory per channel is bounded on both sides and a
// slow consumer blocks its producers (time counted as backpressure). Tasks
// on the same worker use local channels.
//
// Security. Every call carries the cluster protocol version and the shared
// secret; a member with another version or a wrong secret is refused with
// a log line on both sides. The secret authenticates but does not encrypt:
// run the cluster on a private network. mTLS is not implemented yet.
//
// Metrics. Workers report their tasks' metrics in heartbeats (every
// second) and the final ones in Finish; WritePrometheus renders them.
package cluster

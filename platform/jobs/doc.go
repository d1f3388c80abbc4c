// Package jobs owns the job lifecycle of the platform: deploying a job spec
// for a tenant, running it, and the operations on a running job (cancel,
// savepoint, stop with a savepoint, upgrade to other module versions,
// rescale), with the records that outlive a restart of the process (job
// records, savepoints, operations in the metadata store) and the ones that
// do not (logs, live metrics).
//
// It must not know HTTP (platform/api maps its errors to problems), how keys
// authenticate (tenants), or where a module's bytes come from (the caller
// supplies a resolver and a loader, normally platform/registry).
//
// # Decisions
//
//   - A job is deployed synchronously: the spec is parsed, its module
//     references are pinned to versions ("wordcount" becomes "wordcount@2"
//     with its digest), quotas are applied, and the job is compiled before
//     the record is written. Every spec error therefore reaches the caller
//     as a 400 naming the field, and nothing is half-created.
//   - The platform owns placement: a spec may not set checkpoints.storage or
//     state.dir, file connector paths are confined to the tenant's file area,
//     and checkpoints live under tenants/<tenant>/jobs/<job id>. Job ids are
//     generated; two jobs with the same name never share a folder.
//   - A generation is one compiled runtime.Job. Upgrade and rescale take a
//     stop-with-savepoint, then start a new generation from the savepoint.
//     The new generation must survive UpgradeGrace after its tasks started
//     (Flink's "the job is RUNNING" is not enough: a state mapping error or a
//     trap in open shows up right after); otherwise it is cancelled and the
//     previous spec starts from the same savepoint (rolled back).
//   - Slots: a job needs as many slots as its largest node's parallelism
//     (Flink's slot sharing: one task of each node per slot). Deploys and
//     rescales that would exceed the tenant's slot quota or the free slots of
//     this process fail at once; waiting for slots belongs to the cluster
//     scheduler.
//   - state_bytes is checked when a checkpoint completes (its full size is
//     the job's state size): a job over its quota fails with the quota named,
//     instead of being restarted into the same wall.
//   - Logs and metrics are kept in memory (a ring of LogLines lines per job):
//     they are for watching a job, not an archive, and a restarted process
//     starts them afresh. Records, savepoints and operations are durable.
//   - A restarted process resumes every job that was running from its newest
//     retained checkpoint (or the savepoint its generation started from,
//     when that is newer: a process stopped in the middle of an upgrade
//     leaves the previous generation's checkpoints behind).
//   - Cancel is synchronous: it returns once the job is canceled and its
//     slots are free, also when an operation held the job (the operation
//     gives up and fails). A savepoint waits only as long as the generation
//     it was asked of runs: the engine aborts a pending savepoint when a
//     task fails, not when the job ends otherwise.
package jobs

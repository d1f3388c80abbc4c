// Package checkpoint owns what outlives a job's processes: checkpoint
// storage (a local directory, or S3 through minio-go, behind Storage), the
// object layout (LAYOUT.md; every path is tenant- and job-prefixed), the
// checkpoint metadata format (JSON, written last and atomically), and the
// checkpoint Coordinator: a clock-driven state machine that triggers
// periodic checkpoints (interval, timeout, max concurrent, min pause),
// collects the tasks' acknowledgements, completes or aborts checkpoints,
// keeps the newest N and deletes files no retained checkpoint references,
// and takes savepoints.
//
// It knows nothing about tasks, operators or state backends: tasks are
// names, state is a list of files (StateHandle). The runtime connects the
// coordinator to its tasks through Hooks and uploads the files itself.
//
// Integrity: every file a checkpoint references is recorded with its size
// and CRC-32C; restores verify both (GetFile), metadata decoding is strict,
// and paths in metadata cannot leave the job's prefix (Resolve). A damaged
// checkpoint is an ErrCorrupt error naming the object, and recovery falls
// back to an older one.
package checkpoint

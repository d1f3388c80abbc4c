// Package checkpoint will own checkpoint storage (local directory, S3), the
// checkpoint metadata format, the barrier checkpoint coordinator and
// savepoints (DESIGN.md, "Time, state and snapshots"). It is empty until the
// fault-tolerance issue; the runtime already carries barrier events in its
// batch encoding and the state backends key everything by key group so that
// snapshots can be split for rescaling.
package checkpoint

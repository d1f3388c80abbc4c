package state

import (
	"io"

	"github.com/weirstream/weir/abi"
)

// Snapshots. Both backends take a snapshot in two parts: Snapshot is the
// synchronous part, run on the task goroutine at a checkpoint barrier; it
// must be short (no copying of the whole state, no uploads). The returned
// Snapshot is a frozen view that another goroutine exports or uploads while
// the task goes on changing the backend.
//
// There are two forms:
//   - native files (Pebble only): the files of a Pebble checkpoint of the
//     database. SST files are immutable, so a file with the same Name
//     always holds the same bytes for this backend instance: the runtime
//     uploads each SST once and references it from later checkpoints
//     (incremental checkpoints). The runtime restores them by placing the
//     files in a directory and calling OpenPebble on it.
//   - the canonical stream (both backends): a self-describing, checksummed,
//     backend-independent encoding of the keyed state and timers of a
//     key-group range, naming states by (operator, name, kind) and timers
//     by operator, not by internal ids. Savepoints, the memory backend's
//     checkpoints, rescaling and module upgrades use it; Import reads it
//     into any backend.

// SnapshotForm selects what a Snapshot must be able to produce.
type SnapshotForm int

const (
	// FormCanonical: Export only.
	FormCanonical SnapshotForm = iota
	// FormNative: NativeFiles (Pebble) and Export. Memory treats it as
	// FormCanonical.
	FormNative
)

// Snapshotter is implemented by every Backend.
type Snapshotter interface {
	// Snapshot takes the synchronous part of a snapshot. dir is an empty
	// scratch directory the backend may use for native files (it stays
	// until Release).
	Snapshot(form SnapshotForm, dir string) (Snapshot, error)
}

// Snapshot is a frozen, consistent view of a backend. Its methods may be
// called from any goroutine (one at a time), concurrently with the task
// using the backend.
type Snapshot interface {
	// NativeFiles lists the native files; nil for the canonical form.
	NativeFiles() []NativeFile
	// States lists every registered state, for checkpoint metadata.
	States() []StateInfo
	// Export writes the canonical stream of key groups kr (see format.go)
	// to w. owner names the operator of a timer owner number.
	//
	// Export may be called several times (e.g. once per key-group range);
	// owner must give every owner with timers a distinct, non-empty name.
	// After Release it returns ErrReleased.
	Export(w io.Writer, kr abi.KeyGroupRange, owner func(uint32) string) error
	// Release frees what the snapshot holds (copy-on-write references,
	// Pebble snapshot, scratch files). The snapshot is unusable afterwards.
	// Release is idempotent. Pebble removes dir/pebble, the checkpoint it
	// made, but not dir itself.
	Release() error
}

// NativeFile is one file of a native snapshot.
type NativeFile struct {
	Path   string // local path, readable until Release
	Name   string // name inside the database directory
	Size   int64
	Shared bool // immutable for the backend's lifetime (SST): upload once
}

// StateInfo names one registered state.
type StateInfo struct {
	Operator string
	Name     string
	Kind     abi.StateKind
}

// ImportMapping says where the states and timers of a canonical stream go.
type ImportMapping struct {
	// Owner returns the timer owner number of operator in the importing
	// task, or ok=false when the operator is not in that task: its states
	// and timers are then skipped (they belong to another task; the runtime
	// checks separately that every operator is mapped somewhere).
	Owner func(operator string) (owner uint32, ok bool)
}

package checkpoint

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// MetadataName is the object every checkpoint and savepoint folder ends
// with: written last and atomically, so a folder without it is an
// incomplete checkpoint and is never restored from.
const MetadataName = "_metadata"

// MetadataFormat is the version of the metadata encoding written now.
const MetadataFormat = 1

// maxMetadataBytes bounds what ReadMetadata accepts: metadata lists files
// and small per-subtask blobs, never state itself.
const maxMetadataBytes = 64 << 20

// ErrCorrupt reports a checkpoint that cannot be used: metadata that does
// not decode, or files that are missing or differ from what the metadata
// recorded. Recovery skips such a checkpoint for an older intact one.
var ErrCorrupt = errors.New("checkpoint is corrupt")

// Metadata describes one completed checkpoint or savepoint: which tasks
// took part and where each task's snapshot is. It is JSON so that an
// operator of the platform can read it.
type Metadata struct {
	Format         int    `json:"format"`
	Job            string `json:"job"`
	ID             int64  `json:"id"`
	Savepoint      bool   `json:"savepoint,omitempty"`
	TriggeredAt    int64  `json:"triggeredAt"` // epoch ms
	CompletedAt    int64  `json:"completedAt"` // epoch ms
	MaxParallelism int    `json:"maxParallelism"`
	// Tasks holds one entry per task (chain × subtask), in task order.
	Tasks []TaskState `json:"tasks"`
}

// TaskState is what one task contributed to a checkpoint.
type TaskState struct {
	Task        string   `json:"task"`  // e.g. "source+map[2]"
	Nodes       []string `json:"nodes"` // the chain's node ids
	Subtask     int      `json:"subtask"`
	Parallelism int      `json:"parallelism"`
	// KeyGroups is the task's key-group range [start, end); empty for
	// tasks without keyed state.
	KeyGroups [2]int `json:"keyGroups"`
	// State is the keyed state and timers of the whole chain; nil when the
	// chain has none.
	State *StateHandle `json:"state,omitempty"`
	// States names every registered state (operator = node id).
	States []StateName `json:"states,omitempty"`
	// Sources holds the position of each source node of the chain.
	Sources map[string]SourceState `json:"sources,omitempty"`
	// Sinks holds the pending transaction of each two-phase-commit sink of
	// the chain.
	Sinks map[string][]byte `json:"sinks,omitempty"`
	// AlignmentMs and SyncMs are how long the task aligned barriers and
	// took the synchronous part of its snapshot; AsyncMs the upload.
	AlignmentMs float64 `json:"alignmentMs"`
	SyncMs      float64 `json:"syncMs"`
	AsyncMs     float64 `json:"asyncMs"`
}

// SourceState is a source subtask's position plus the event-time progress
// of its watermark generator.
type SourceState struct {
	Position []byte `json:"position,omitempty"`
	// MaxTimestamp is the largest record timestamp seen (watermark
	// generator state), or the minimum int64 when none.
	MaxTimestamp int64 `json:"maxTimestamp"`
	// Finished marks a source subtask that had reached its end.
	Finished bool `json:"finished,omitempty"`
}

// StateName names a registered state.
type StateName struct {
	Operator string `json:"operator"`
	Name     string `json:"name"`
	Kind     uint8  `json:"kind"`
}

// Snapshot formats of a StateHandle.
const (
	// FormatCanonical: one file holding the state package's canonical
	// stream (backend-independent; savepoints, memory backend).
	FormatCanonical = "canonical"
	// FormatPebble: the files of a Pebble checkpoint; SSTs may be shared
	// with earlier checkpoints (incremental).
	FormatPebble = "pebble"
)

// StateHandle locates a task's state snapshot.
type StateHandle struct {
	Format string    `json:"format"`
	Files  []FileRef `json:"files"`
}

// Size is the total size of the handle's files.
func (h *StateHandle) Size() int64 {
	var n int64
	if h != nil {
		for _, f := range h.Files {
			n += f.Size
		}
	}
	return n
}

// FileRef is one file of a snapshot.
type FileRef struct {
	// Name is the file's name where the task restores it (a Pebble file
	// name; "state" for a canonical stream).
	Name string `json:"name"`
	// Path is where the file is stored, relative to the folder holding
	// the metadata ("../../shared/..." for shared files of checkpoints;
	// always inside the folder for savepoints, so they are self-contained).
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	CRC32C uint32 `json:"crc32c"`
	// Shared files are referenced by several checkpoints of a job and
	// deleted when no retained checkpoint references them.
	Shared bool `json:"shared,omitempty"`
}

// Resolve returns the storage name of a file path recorded in metadata
// stored in folder dir, refusing paths that leave the prefix root (dir
// itself when root is empty: savepoints are self-contained).
func Resolve(dir, rel, root string) (string, error) {
	if rel == "" || path.IsAbs(rel) {
		return "", fmt.Errorf("file path %q in %s: %w", rel, dir, ErrCorrupt)
	}
	p := path.Clean(path.Join(dir, rel))
	if root == "" {
		root = dir
	}
	root = path.Clean(root)
	if root == "." {
		if p == "." || p == ".." || strings.HasPrefix(p, "../") {
			return "", fmt.Errorf("file path %q in %s leaves it: %w", rel, dir, ErrCorrupt)
		}
		return p, nil
	}
	if p == root || !strings.HasPrefix(p, root+"/") {
		return "", fmt.Errorf("file path %q in %s leaves %s: %w", rel, dir, root, ErrCorrupt)
	}
	return p, nil
}

// Relative returns the path of storage name target relative to folder dir.
func Relative(dir, target string) string {
	d := strings.Split(strings.Trim(dir, "/"), "/")
	t := strings.Split(strings.Trim(target, "/"), "/")
	i := 0
	for i < len(d) && i < len(t)-1 && d[i] == t[i] {
		i++
	}
	parts := make([]string, 0, len(d)-i+len(t)-i)
	for range d[i:] {
		parts = append(parts, "..")
	}
	parts = append(parts, t[i:]...)
	return strings.Join(parts, "/")
}

// Encode renders m as indented JSON.
func (m *Metadata) Encode() ([]byte, error) {
	return json.MarshalIndent(m, "", " ")
}

// DecodeMetadata parses metadata, checking its format and consistency.
func DecodeMetadata(b []byte, where string) (*Metadata, error) {
	var m Metadata
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%s: metadata does not decode: %v: %w", where, err, ErrCorrupt)
	}
	if m.Format != MetadataFormat {
		return nil, fmt.Errorf("%s: metadata format %d, this weir reads %d: %w", where, m.Format, MetadataFormat, ErrCorrupt)
	}
	if m.MaxParallelism <= 0 {
		return nil, fmt.Errorf("%s: metadata has maxParallelism %d: %w", where, m.MaxParallelism, ErrCorrupt)
	}
	for i, t := range m.Tasks {
		if t.Task == "" || len(t.Nodes) == 0 || t.Parallelism <= 0 || t.Subtask < 0 || t.Subtask >= t.Parallelism {
			return nil, fmt.Errorf("%s: task %d (%q) is incomplete: %w", where, i, t.Task, ErrCorrupt)
		}
		if t.State != nil {
			if t.State.Format != FormatCanonical && t.State.Format != FormatPebble {
				return nil, fmt.Errorf("%s: task %s: unknown state format %q: %w", where, t.Task, t.State.Format, ErrCorrupt)
			}
			if t.KeyGroups[0] < 0 || t.KeyGroups[1] > m.MaxParallelism || t.KeyGroups[0] > t.KeyGroups[1] {
				return nil, fmt.Errorf("%s: task %s: key groups %v outside [0,%d): %w", where, t.Task, t.KeyGroups, m.MaxParallelism, ErrCorrupt)
			}
		}
	}
	return &m, nil
}

// ReadMetadata reads and decodes the metadata in folder dir.
func ReadMetadata(ctx context.Context, s Storage, dir string) (*Metadata, error) {
	name := path.Join(dir, MetadataName)
	r, err := s.Open(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("checkpoint metadata %s: %w", name, err)
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, maxMetadataBytes+1))
	if err != nil {
		return nil, fmt.Errorf("checkpoint metadata %s: %w", name, err)
	}
	if len(b) > maxMetadataBytes {
		return nil, fmt.Errorf("checkpoint metadata %s: larger than %d bytes: %w", name, maxMetadataBytes, ErrCorrupt)
	}
	return DecodeMetadata(b, name)
}

// WriteMetadata writes m into folder dir, atomically.
func WriteMetadata(ctx context.Context, s Storage, dir string, m *Metadata) error {
	b, err := m.Encode()
	if err != nil {
		return err
	}
	_, err = s.Put(ctx, path.Join(dir, MetadataName), bytes.NewReader(b))
	return err
}

// Verify checks that every file m references exists in storage with the
// recorded size (a cheap check: contents are verified by checksum when
// they are read back).
func Verify(ctx context.Context, s Storage, dir, root string, m *Metadata) error {
	for _, t := range m.Tasks {
		if t.State == nil {
			continue
		}
		for _, f := range t.State.Files {
			name, err := Resolve(dir, f.Path, root)
			if err != nil {
				return err
			}
			info, err := s.Stat(ctx, name)
			if err != nil {
				return fmt.Errorf("checkpoint %s: task %s: file %s: %v: %w", dir, t.Task, name, err, ErrCorrupt)
			}
			if info.Size != f.Size {
				return fmt.Errorf("checkpoint %s: task %s: file %s is %d bytes, metadata says %d: %w", dir, t.Task, name, info.Size, f.Size, ErrCorrupt)
			}
		}
	}
	return nil
}

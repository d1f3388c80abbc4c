package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/checkpoint"
	"github.com/weirstream/weir/state"
)

// restorePoint is a checkpoint or savepoint an attempt starts from.
type restorePoint struct {
	storage checkpoint.Storage
	dir     string // folder holding _metadata
	root    string // prefix file paths may not leave ("" = dir)
	meta    *checkpoint.Metadata
	allow   bool // AllowNonRestoredState
	native  bool // a checkpoint of this job run: native Pebble files may be reused as they are
}

// restoreError is a failure to read a checkpoint's data (missing or
// corrupt files): recovery tries an older checkpoint.
type restoreError struct {
	dir string
	err error
}

func (e *restoreError) Error() string { return fmt.Sprintf("restoring %s: %v", e.dir, e.err) }
func (e *restoreError) Unwrap() error { return e.err }

// damaged reports whether err says the checkpoint's files are unusable.
func damaged(err error) bool {
	return errors.Is(err, checkpoint.ErrCorrupt) || errors.Is(err, checkpoint.ErrNotFound) || errors.Is(err, state.ErrCorrupt)
}

// checkMapping verifies that every node with state in the restore point
// exists in the job with a matching kind; with AllowNonRestoredState the
// others are dropped. It fails permanently: retrying cannot help.
func (j *Job) checkMapping(rp *restorePoint) error {
	if rp.meta.MaxParallelism != j.Spec.MaxParallelism {
		return permanent(fmt.Errorf("%s has maxParallelism %d, the job %d: keyed state is sharded by maxParallelism key groups and cannot be remapped; keep maxParallelism %d",
			rp.dir, rp.meta.MaxParallelism, j.Spec.MaxParallelism, rp.meta.MaxParallelism))
	}
	kinds := map[string]NodeKind{}
	for i := range j.Spec.Nodes {
		kinds[j.Spec.Nodes[i].ID] = j.Spec.Nodes[i].Kind()
	}
	var missing []string
	seen := map[string]bool{}
	note := func(node string, want NodeKind, what string) {
		if seen[node+what] {
			return
		}
		seen[node+what] = true
		k, ok := kinds[node]
		switch {
		case !ok:
			missing = append(missing, fmt.Sprintf("%s of node %q (no such node in the job)", what, node))
		case k != want:
			missing = append(missing, fmt.Sprintf("%s of node %q (it is now a %v)", what, node, k))
		}
	}
	for _, ts := range rp.meta.Tasks {
		for _, s := range ts.States {
			note(s.Operator, KindOperator, "state")
		}
		for n, s := range ts.Sources {
			if s.Position != nil {
				note(n, KindSource, "source position")
			}
		}
		for n := range ts.Sinks {
			note(n, KindSink, "pending sink transactions")
		}
	}
	if len(missing) > 0 && !rp.allow {
		sort.Strings(missing)
		return permanent(fmt.Errorf("%s holds state the job cannot take: %s; start with allowNonRestoredState to drop it",
			rp.dir, strings.Join(missing, "; ")))
	}
	return nil
}

// restoreTask restores one task's sources, sinks and keyed state before
// its operators open.
func (j *Job) restoreTask(ctx context.Context, a *attempt, t *task, rp *restorePoint, dbDir string) error {
	m := rp.meta
	if t.source != nil {
		node := t.nodes[0].ID
		states := oldSubtasks(m, func(ts checkpoint.TaskState) ([]byte, bool) {
			s, ok := ts.Sources[node]
			return s.Position, ok
		})
		// The watermark generator resumes at the same subtask's progress
		// when the parallelism is unchanged, else at the least progress of
		// the old subtasks: never ahead of a record still to come.
		least, first := int64(0), true
		same, haveSame := int64(0), false
		for _, ts := range m.Tasks {
			s, ok := ts.Sources[node]
			if !ok {
				continue
			}
			if first || s.MaxTimestamp < least {
				least, first = s.MaxTimestamp, false
			}
			if ts.Parallelism == t.nodes[0].Parallelism && ts.Subtask == t.subtask {
				same, haveSame = s.MaxTimestamp, true
			}
		}
		t.srcW.maxTs = least
		if haveSame {
			t.srcW.maxTs = same
		}
		if cs, ok := t.source.(CheckpointedSource); ok && states != nil {
			if err := cs.Restore(t.srcInfo, states); err != nil {
				return permanent(fmt.Errorf("source %s: restore: %w", node, err))
			}
		}
	}
	for _, e := range t.elems {
		s, ok := e.(*sinkElem)
		if !ok || s.tx == nil {
			continue
		}
		states := oldSubtasks(m, func(ts checkpoint.TaskState) ([]byte, bool) {
			h, ok := ts.Sinks[s.node.ID]
			return h, ok
		})
		info := TaskInfo{Job: j.Spec.Name, NodeID: s.node.ID, Subtask: t.subtask, Parallelism: s.node.Parallelism, Logger: t.log, Clock: j.opts.Clock}
		if err := s.tx.Restore(ctx, info, m.ID, states); err != nil {
			// A sink that cannot take its transactions back (lost data, a
			// snapshot of another sink) will not do better on a retry.
			return permanent(fmt.Errorf("sink %s: restore: %w", s.node.ID, err))
		}
	}
	if !t.keyed() {
		return nil
	}
	return j.restoreState(ctx, a, t, rp, dbDir)
}

// oldSubtasks collects, by old subtask number, what get finds in each old
// task of the checkpoint (nil for subtasks without it); nil when no old
// task has it. len is the old parallelism.
func oldSubtasks(m *checkpoint.Metadata, get func(checkpoint.TaskState) ([]byte, bool)) [][]byte {
	var out [][]byte
	for _, ts := range m.Tasks {
		b, ok := get(ts)
		if !ok {
			continue
		}
		if len(out) < ts.Parallelism {
			out = append(out, make([][]byte, ts.Parallelism-len(out))...)
		}
		out[ts.Subtask] = b
	}
	return out
}

// restoreState fills the task's (empty) backend. A Pebble task whose
// key groups are those of a task in the checkpoint reuses that task's
// native files as they are (the fast path of recovery); otherwise every
// old task whose key groups overlap is imported through the canonical
// stream (rescaling, savepoints, upgrades, backend changes).
func (j *Job) restoreState(ctx context.Context, a *attempt, t *task, rp *restorePoint, dbDir string) error {
	kr := t.keyGroups()
	owners := map[string]uint32{}
	for i, n := range t.nodes {
		owners[n.ID] = uint32(i)
	}
	mapping := state.ImportMapping{Owner: func(op string) (uint32, bool) {
		o, ok := owners[op]
		return o, ok
	}}
	for _, ts := range rp.meta.Tasks {
		if ts.State == nil || ts.State.Format != checkpoint.FormatPebble || !rp.native ||
			j.Spec.State.Backend != "pebble" || ts.Task != t.name || ts.KeyGroups != [2]int{kr.Start, kr.End} {
			continue
		}
		if err := t.backend.Close(); err != nil {
			return err
		}
		t.backend = nil
		if err := os.RemoveAll(dbDir); err != nil {
			return err
		}
		if err := rp.download(ctx, ts, dbDir); err != nil {
			return err
		}
		b, err := state.OpenPebble(dbDir, state.PebbleOptions{})
		if err != nil {
			return &restoreError{rp.dir, fmt.Errorf("task %s: opening restored state: %w", t.name, err)}
		}
		t.backend = b
		// The restored SSTs are in storage already: the next incremental
		// checkpoints reference them instead of uploading them again.
		t.cp.mu.Lock()
		for _, f := range ts.State.Files {
			if f.Shared {
				name, err := checkpoint.Resolve(rp.dir, f.Path, rp.root)
				if err == nil {
					f.Path = name
					t.cp.confirmed[f.Name] = f
				}
			}
		}
		t.cp.mu.Unlock()
		return nil
	}
	for _, ts := range rp.meta.Tasks {
		if ts.State == nil || ts.KeyGroups[0] >= kr.End || ts.KeyGroups[1] <= kr.Start {
			continue
		}
		mine := false
		for _, s := range ts.States {
			if _, ok := owners[s.Operator]; ok {
				mine = true
			}
		}
		if !mine {
			continue
		}
		if err := j.importTask(ctx, a, t, rp, ts, kr, mapping); err != nil {
			return err
		}
	}
	return nil
}

// importTask imports old task ts's state, restricted to kr, into t.
func (j *Job) importTask(ctx context.Context, a *attempt, t *task, rp *restorePoint, ts checkpoint.TaskState, kr abi.KeyGroupRange, mapping state.ImportMapping) error {
	wrap := func(err error) error {
		if errors.Is(err, state.ErrKindMismatch) {
			return permanent(fmt.Errorf("task %s: state of %s does not fit the job: %w", t.name, rp.dir, err))
		}
		return &restoreError{rp.dir, fmt.Errorf("task %s: state of old task %s: %w", t.name, ts.Task, err)}
	}
	switch ts.State.Format {
	case checkpoint.FormatCanonical:
		if len(ts.State.Files) != 1 {
			return &restoreError{rp.dir, fmt.Errorf("task %s: canonical state has %d files: %w", ts.Task, len(ts.State.Files), checkpoint.ErrCorrupt)}
		}
		f := ts.State.Files[0]
		name, err := checkpoint.Resolve(rp.dir, f.Path, rp.root)
		if err != nil {
			return &restoreError{rp.dir, err}
		}
		r, err := rp.storage.Open(ctx, name)
		if err != nil {
			return wrap(err)
		}
		defer r.Close()
		if err := state.Import(t.backend, r, kr, mapping); err != nil {
			return wrap(err)
		}
		return nil
	case checkpoint.FormatPebble:
		tmp, err := os.MkdirTemp(a.stateDir, "import-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir := filepath.Join(tmp, "db")
		if err := rp.download(ctx, ts, dir); err != nil {
			return err
		}
		src, err := state.OpenPebble(dir, state.PebbleOptions{})
		if err != nil {
			return wrap(err)
		}
		defer src.Close()
		snap, err := src.Snapshot(state.FormCanonical, "")
		if err != nil {
			return wrap(err)
		}
		defer snap.Release()
		err = exportTo(snap, kr, ts.Nodes, func(r io.Reader) error {
			return state.Import(t.backend, r, kr, mapping)
		})
		if err != nil {
			return wrap(err)
		}
		return nil
	}
	return &restoreError{rp.dir, fmt.Errorf("task %s: unknown state format %q: %w", ts.Task, ts.State.Format, checkpoint.ErrCorrupt)}
}

// download fetches the files of ts's state into dir, verifying sizes and
// checksums.
func (rp *restorePoint) download(ctx context.Context, ts checkpoint.TaskState, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range ts.State.Files {
		name, err := checkpoint.Resolve(rp.dir, f.Path, rp.root)
		if err != nil {
			return &restoreError{rp.dir, err}
		}
		if strings.Contains(f.Name, "/") || f.Name == "" || f.Name == "." || f.Name == ".." {
			return &restoreError{rp.dir, fmt.Errorf("task %s: bad file name %q: %w", ts.Task, f.Name, checkpoint.ErrCorrupt)}
		}
		want := checkpoint.ObjectInfo{Name: name, Size: f.Size, CRC32C: f.CRC32C, HasCRC32C: true}
		// SSTs are never written in place: they may share storage's copy
		// (hard link). MANIFEST and WAL files are appended to: copies.
		mode := checkpoint.MutableFile
		if strings.HasSuffix(f.Name, ".sst") {
			mode = checkpoint.ImmutableFile
		}
		if err := rp.storage.GetFile(ctx, name, filepath.Join(dir, f.Name), want, mode); err != nil {
			return &restoreError{rp.dir, fmt.Errorf("task %s: %w", ts.Task, err)}
		}
	}
	return nil
}

// checkRegistered fails when a restored operator does not register a state
// the restore point holds for it (a module version that dropped a state),
// unless dropping is allowed.
func (j *Job) checkRegistered(rp *restorePoint, tasks []*task) error {
	if rp == nil || rp.allow {
		return nil
	}
	// Only operators with a task here are checked (every subtask registers
	// the same states; a worker checks its own).
	registered := map[string]map[string]bool{}
	here := map[string]bool{}
	for _, t := range tasks {
		for _, e := range t.elems {
			if op, ok := e.(*operatorElem); ok {
				here[op.node.ID] = true
			}
			if op, ok := e.(*operatorElem); ok && op.access.registered != nil {
				if registered[op.node.ID] == nil {
					registered[op.node.ID] = map[string]bool{}
				}
				for n := range op.access.registered {
					registered[op.node.ID][n] = true
				}
			}
		}
	}
	var missing []string
	seen := map[string]bool{}
	for _, ts := range rp.meta.Tasks {
		for _, s := range ts.States {
			k := s.Operator + "\x00" + s.Name
			if seen[k] || registered[s.Operator][s.Name] {
				continue
			}
			seen[k] = true
			if j.hasOperator(s.Operator) && here[s.Operator] {
				missing = append(missing, fmt.Sprintf("%q of node %q", s.Name, s.Operator))
			}
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return permanent(fmt.Errorf("%s holds state the operators no longer register: %s; start with allowNonRestoredState to drop it",
			rp.dir, strings.Join(missing, ", ")))
	}
	return nil
}

func (j *Job) hasOperator(id string) bool {
	n := nodeByID(j.Spec, id)
	return n != nil && n.Kind() == KindOperator
}

package runtime

import (
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/checkpoint"
	"github.com/weirstream/weir/state"
)

// taskCP is a task's part in checkpointing: barrier injection (sources),
// alignment (tasks with inputs), snapshots and their upload, and commit
// notifications. Fields without a lock are the task goroutine's.
type taskCP struct {
	a      *attempt
	folder string // the task's folder inside a checkpoint

	triggers chan int64    // source tasks: barriers to inject
	signal   chan struct{} // a checkpoint completed, or a stop was called off
	done     atomic.Int64  // newest completed checkpoint (set by the coordinator hook)

	committed int64 // newest checkpoint the task's sinks committed
	suspended int64 // source tasks: the stop-with-savepoint barrier injected, 0 if none

	// alignment
	alignID    int64 // barrier being aligned, 0 if none
	lastID     int64 // newest barrier snapshotted
	seen       []bool
	ended      []bool
	blocked    []bool
	held       [][]heldEnv
	ready      []heldEnv
	alignStart time.Time
	alignments atomic.Int64 // nanoseconds spent aligning, total

	mu        sync.Mutex
	confirmed map[string]checkpoint.FileRef           // shared Pebble files of the newest completed checkpoint, by local name; Path is the storage name
	refs      map[int64]map[string]checkpoint.FileRef // shared files each pending checkpoint references
}

// heldEnv is (the rest of) a batch of a blocked channel, from off.
type heldEnv struct {
	env envelope
	off int
}

func newTaskCP(a *attempt, t *task, channels int) *taskCP {
	cp := &taskCP{
		a: a, folder: taskFolder(t), signal: make(chan struct{}, 1),
		confirmed: map[string]checkpoint.FileRef{}, refs: map[int64]map[string]checkpoint.FileRef{},
	}
	if t.source != nil {
		cp.triggers = make(chan int64, 16)
	}
	cp.seen = make([]bool, channels)
	cp.ended = make([]bool, channels)
	cp.blocked = make([]bool, channels)
	cp.held = make([][]heldEnv, channels)
	return cp
}

// taskFolder is a storage-safe folder name for a task: "a+b[2]" → "a_b-2".
func taskFolder(t *task) string {
	ids := make([]string, len(t.nodes))
	for i, n := range t.nodes {
		ids[i] = n.ID
	}
	return fmt.Sprintf("%s-%d", strings.Join(ids, "_"), t.subtask)
}

// notify wakes the task: a checkpoint completed or a stop was called off.
func (cp *taskCP) notify() {
	select {
	case cp.signal <- struct{}{}:
	default:
	}
}

// onSignal commits the sinks up to the newest completed checkpoint and
// says whether the task must stop (stop-with-savepoint completed).
func (t *task) onSignal() error {
	cp := t.cp
	id := cp.done.Load()
	if id > cp.committed {
		cp.committed = id
		cp.confirm(id)
		for _, e := range t.elems {
			if s, ok := e.(*sinkElem); ok && s.tx != nil {
				if err := s.tx.Commit(t.ctx, id); err != nil {
					return fmt.Errorf("sink %s: commit checkpoint %d: %w", s.node.ID, id, err)
				}
			}
		}
	}
	if stop := cp.a.stopID.Load(); stop != 0 && id >= stop && cp.lastID >= stop {
		return errStopped
	}
	return nil
}

// confirm makes the shared files of completed checkpoint id the base of
// the next incremental snapshots.
func (cp *taskCP) confirm(id int64) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if r, ok := cp.refs[id]; ok {
		cp.confirmed = r
	}
	for k := range cp.refs {
		if k <= id {
			delete(cp.refs, k)
		}
	}
}

// onBarrier handles barrier ev that arrived on channel ch and reports
// whether ch must now be blocked (exactly-once alignment).
func (t *task) onBarrier(ch int, ev *abi.Event) (bool, error) {
	cp := t.cp
	id := int64(ev.ID)
	if cp == nil || id <= cp.lastID {
		return false, nil // stale: an older barrier of an aborted checkpoint
	}
	if id < cp.alignID {
		return false, nil
	}
	if id > cp.alignID {
		// A newer barrier cancels an alignment in progress (its checkpoint
		// can no longer complete).
		cp.release()
		cp.alignID = id
		cp.alignStart = time.Now()
		clear(cp.seen)
	}
	if cp.seen[ch] {
		return false, nil
	}
	cp.seen[ch] = true
	if done, err := t.alignmentDone(ev); done || err != nil {
		return false, err
	}
	if cp.a.exactlyOnce {
		cp.blocked[ch] = true
		return true, nil
	}
	return false, nil
}

// alignmentDone snapshots once every live channel delivered the barrier
// being aligned.
func (t *task) alignmentDone(ev *abi.Event) (bool, error) {
	cp := t.cp
	if cp.alignID == 0 {
		return false, nil
	}
	for i := range cp.seen {
		if !cp.seen[i] && !cp.ended[i] {
			return false, nil
		}
	}
	id := cp.alignID
	align := time.Since(cp.alignStart)
	cp.alignments.Add(int64(align))
	cp.alignID = 0
	cp.release()
	return true, t.snapshot(id, ev.Timestamp, ev.Flags, align)
}

// release unblocks every channel: their held batches are processed next.
func (cp *taskCP) release() {
	for ch, h := range cp.held {
		cp.ready = append(cp.ready, h...)
		cp.held[ch] = nil
		cp.blocked[ch] = false
	}
}

// channelEnded notes the end of ch; an alignment waiting only for ended
// channels completes.
func (t *task) channelEnded(ch int) error {
	if t.cp == nil {
		return nil
	}
	t.cp.ended[ch] = true
	_, err := t.alignmentDone(&abi.Event{})
	return err
}

// snapshot takes checkpoint id's synchronous part, forwards the barrier,
// and hands the upload to a goroutine that acks when it is done.
func (t *task) snapshot(id, ts int64, flags uint8, align time.Duration) error {
	cp := t.cp
	cp.lastID = id
	start := time.Now()
	b, ok := cp.a.barrier(id)
	var st checkpoint.TaskState
	var snap state.Snapshot
	var scratch string
	if ok {
		kr := t.keyGroups()
		st = checkpoint.TaskState{
			Task: t.name, Nodes: nodeIDs(t.nodes), Subtask: t.subtask, Parallelism: t.nodes[0].Parallelism,
			KeyGroups: [2]int{kr.Start, kr.End}, AlignmentMs: ms(align),
		}
		if t.source != nil {
			pos, err := t.sourcePosition()
			if err != nil {
				return err
			}
			st.Sources = map[string]checkpoint.SourceState{t.nodes[0].ID: pos}
		}
		for _, e := range t.elems {
			s, ok := e.(*sinkElem)
			if !ok || s.tx == nil {
				continue
			}
			h, err := s.tx.PreCommit(t.ctx, id)
			if err != nil {
				return fmt.Errorf("sink %s: pre-commit checkpoint %d: %w", s.node.ID, id, err)
			}
			if st.Sinks == nil {
				st.Sinks = map[string][]byte{}
			}
			st.Sinks[s.node.ID] = h
		}
		if t.keyed() {
			form := state.FormCanonical
			if !b.Savepoint && cp.a.job.Spec.State.Backend == "pebble" {
				form = state.FormNative
				scratch = filepath.Join(cp.a.stateDir, fmt.Sprintf("snap-%s-%d", cp.folder, id))
				if err := os.MkdirAll(scratch, 0o755); err != nil {
					return fmt.Errorf("checkpoint %d: %w", id, err)
				}
			}
			sn, ok := t.backend.(state.Snapshotter)
			if !ok {
				return fmt.Errorf("checkpoint %d: state backend %T cannot snapshot", id, t.backend)
			}
			var err error
			if snap, err = sn.Snapshot(form, scratch); err != nil {
				return fmt.Errorf("checkpoint %d: state snapshot: %w", id, err)
			}
		}
	}
	if t.out != nil {
		if err := t.out.control(&abi.Event{Kind: abi.KindBarrier, ID: uint64(id), Timestamp: ts, Flags: flags}, true); err != nil {
			if snap != nil {
				_ = snap.Release()
			}
			return err
		}
	}
	if !ok {
		return nil // not a checkpoint of this attempt: only forwarded
	}
	st.SyncMs = ms(time.Since(start))
	cp.a.upload(t, b, st, snap, scratch)
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// exportTo streams snap's canonical export of kr into consume. A failing
// consumer stops the export at its next write; exportTo returns only once
// the exporter is done with the snapshot, so the caller may release it.
func exportTo(snap state.Snapshot, kr abi.KeyGroupRange, owners []string, consume func(io.Reader) error) error {
	pr, pw := io.Pipe()
	exported := make(chan error, 1)
	go func() {
		err := snap.Export(pw, kr, ownerNames(owners))
		pw.CloseWithError(err)
		exported <- err
	}()
	err := consume(pr)
	pr.CloseWithError(err)
	if xerr := <-exported; err == nil && xerr != nil {
		err = xerr
	}
	return err
}

// ownerNames names timer owners (chain positions) by the chain's node ids,
// as snapshots do.
func ownerNames(ids []string) func(uint32) string {
	return func(o uint32) string {
		if int(o) < len(ids) {
			return ids[o]
		}
		return fmt.Sprintf("owner-%d", o)
	}
}

func nodeIDs(ns []*NodeSpec) []string {
	ids := make([]string, len(ns))
	for i, n := range ns {
		ids[i] = n.ID
	}
	return ids
}

// keyed reports whether the chain has a keyed operator (and so state).
func (t *task) keyed() bool { return len(t.ptOwner) > 0 }

// keyGroups is the key-group range the task's keyed operators own.
func (t *task) keyGroups() abi.KeyGroupRange {
	if !t.keyed() {
		return abi.KeyGroupRange{}
	}
	maxP := t.cp.a.job.Spec.MaxParallelism
	return abi.KeyGroupRangeForSubtask(t.subtask, t.nodes[0].Parallelism, maxP)
}

// sourcePosition snapshots the source and its watermark generator.
func (t *task) sourcePosition() (checkpoint.SourceState, error) {
	st := checkpoint.SourceState{MaxTimestamp: t.srcW.maxTs}
	if cs, ok := t.source.(CheckpointedSource); ok {
		pos, err := cs.Snapshot()
		if err != nil {
			return st, fmt.Errorf("source %s: snapshot: %w", t.nodes[0].ID, err)
		}
		st.Position = pos
	}
	return st, nil
}

// injectBarriers is the source task's side: inject every barrier the
// coordinator triggered. A stop-with-savepoint barrier suspends the source.
func (t *task) injectBarriers() error {
	for {
		select {
		case id := <-t.cp.triggers:
			b, ok := t.cp.a.barrier(id)
			if !ok {
				continue
			}
			var flags uint8
			if b.Savepoint {
				flags |= abi.BarrierSavepoint
			}
			if t.out != nil {
				t.out.flushAll()
			}
			if err := t.snapshot(id, b.Timestamp, flags, 0); err != nil {
				return err
			}
			if stop := t.cp.a.stopID.Load(); stop != 0 && id == stop {
				t.cp.suspended = id
			}
		default:
			return nil
		}
	}
}

// declineTriggers declines the barriers a finished source can no longer
// inject.
func (t *task) declineTriggers() {
	if t.cp == nil || t.cp.triggers == nil {
		return
	}
	for {
		select {
		case id := <-t.cp.triggers:
			t.cp.a.acks.Decline(id, t.name, fmt.Errorf("source %s has finished", t.nodes[0].ID))
		default:
			return
		}
	}
}

// upload writes a snapshot to checkpoint storage and acks it.
func (a *attempt) upload(t *task, b checkpoint.Barrier, st checkpoint.TaskState, snap state.Snapshot, scratch string) {
	a.uploads.Add(1)
	go func() {
		defer a.uploads.Done()
		start := time.Now()
		if snap != nil {
			h, err := a.writeState(t, b, snap)
			_ = snap.Release()
			if scratch != "" {
				_ = os.RemoveAll(scratch)
			}
			if err != nil {
				a.acks.Decline(b.ID, t.name, fmt.Errorf("uploading state: %w", err))
				return
			}
			st.State = h
			for _, s := range snap.States() {
				st.States = append(st.States, checkpoint.StateName{Operator: s.Operator, Name: s.Name, Kind: uint8(s.Kind)})
			}
		}
		st.AsyncMs = ms(time.Since(start))
		a.acks.Ack(a.ctx, b.ID, st)
	}()
}

// writeState stores a snapshot's files: the canonical stream as one
// object, or the files of a Pebble checkpoint with SSTs uploaded once into
// the job's shared folder and referenced by later checkpoints.
func (a *attempt) writeState(t *task, b checkpoint.Barrier, snap state.Snapshot) (*checkpoint.StateHandle, error) {
	ctx := a.ctx
	cp := t.cp
	dir := path.Join(b.Dir, cp.folder)
	native := snap.NativeFiles()
	if native == nil {
		name := path.Join(dir, "state")
		var info checkpoint.ObjectInfo
		err := exportTo(snap, t.keyGroups(), nodeIDs(t.nodes), func(r io.Reader) (err error) {
			info, err = a.storage.Put(ctx, name, r)
			return err
		})
		if err != nil {
			return nil, err
		}
		return &checkpoint.StateHandle{Format: checkpoint.FormatCanonical, Files: []checkpoint.FileRef{{
			Name: "state", Path: checkpoint.Relative(b.Dir, name), Size: info.Size, CRC32C: info.CRC32C,
		}}}, nil
	}
	cp.mu.Lock()
	confirmed := maps.Clone(cp.confirmed)
	cp.mu.Unlock()
	h := &checkpoint.StateHandle{Format: checkpoint.FormatPebble}
	refs := map[string]checkpoint.FileRef{}
	for _, f := range native {
		if f.Shared {
			if ref, ok := confirmed[f.Name]; ok && ref.Size == f.Size {
				refs[f.Name] = ref
				ref.Path = checkpoint.Relative(b.Dir, ref.Path)
				h.Files = append(h.Files, ref)
				continue
			}
			name := path.Join(a.sharedDir, cp.folder, a.uid+"-"+f.Name)
			info, err := a.storage.PutFile(ctx, name, f.Path, checkpoint.ImmutableFile)
			if err != nil {
				return nil, err
			}
			ref := checkpoint.FileRef{Name: f.Name, Path: name, Size: info.Size, CRC32C: info.CRC32C, Shared: true}
			refs[f.Name] = ref
			ref.Path = checkpoint.Relative(b.Dir, name)
			h.Files = append(h.Files, ref)
			continue
		}
		name := path.Join(dir, f.Name)
		// The scratch copy is deleted after the upload, never changed.
		info, err := a.storage.PutFile(ctx, name, f.Path, checkpoint.ImmutableFile)
		if err != nil {
			return nil, err
		}
		h.Files = append(h.Files, checkpoint.FileRef{Name: f.Name, Path: checkpoint.Relative(b.Dir, name), Size: info.Size, CRC32C: info.CRC32C})
	}
	cp.mu.Lock()
	cp.refs[b.ID] = refs
	cp.mu.Unlock()
	return h, nil
}

// nextReady returns the next batch to process: held batches released by an
// alignment come before new input.
func (cp *taskCP) nextReady() (heldEnv, bool) {
	for len(cp.ready) > 0 {
		h := cp.ready[0]
		cp.ready = cp.ready[1:]
		if cp.blocked[h.env.ch] {
			cp.held[h.env.ch] = append(cp.held[h.env.ch], h)
			continue
		}
		return h, true
	}
	return heldEnv{}, false
}

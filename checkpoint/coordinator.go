package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Clock is the time source of the coordinator (runtime/clock satisfies it).
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// Config is the checkpointing policy of a job.
type Config struct {
	// Interval between periodic checkpoints; 0 disables them (savepoints
	// still work).
	Interval time.Duration
	// Timeout aborts a checkpoint that has not completed in time.
	Timeout time.Duration
	// MinPause is the least time between the completion of one checkpoint
	// and the trigger of the next.
	MinPause time.Duration
	// MaxConcurrent is how many periodic checkpoints may be in flight.
	MaxConcurrent int
	// Retain is how many completed checkpoints are kept; recovery falls
	// back to an older one when the newest is damaged.
	Retain int
}

// Defaults fills zero fields: timeout 10 min, 1 concurrent, retain 3.
func (c Config) Defaults() Config {
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Minute
	}
	if c.MaxConcurrent <= 0 {
		c.MaxConcurrent = 1
	}
	if c.Retain <= 0 {
		c.Retain = 3
	}
	return c
}

// Barrier is what the coordinator asks the sources to inject.
type Barrier struct {
	ID        int64
	Timestamp int64 // epoch ms of the trigger
	Savepoint bool
	// Stop: the job stops once this savepoint completed (sources suspend
	// after injecting it).
	Stop bool
	// Dir is the storage folder of this checkpoint or savepoint: tasks
	// write their private files under Dir/<task folder>.
	Dir string
}

// Hooks connect the coordinator to the running job.
type Hooks struct {
	// Trigger injects b at every source task. An error aborts b.
	Trigger func(b Barrier) error
	// Completed is called once b's metadata is written (savepoints too):
	// two-phase-commit sinks may commit. Never called with the
	// coordinator's lock held.
	Completed func(b Barrier)
	// Aborted is called when a checkpoint is given up.
	Aborted func(b Barrier, err error)
}

// Options are the coordinator's collaborators.
type Options struct {
	Clock   Clock
	Storage Storage
	// Root is the job's storage prefix (JobPrefix); checkpoints live in
	// Root/checkpoints/chk-<n>, shared files in Root/shared.
	Root           string
	Job            string
	MaxParallelism int
	Logger         *slog.Logger
	Hooks          Hooks
}

// Stats describes one checkpoint for monitoring.
type Stats struct {
	ID          int64
	Savepoint   bool
	Status      string // "in progress", "completed", "aborted"
	TriggeredAt time.Time
	Duration    time.Duration
	Size        int64   // bytes of state files the checkpoint references
	Uploaded    int64   // bytes of state files new in this checkpoint
	AlignmentMs float64 // the slowest task's alignment
	SyncMs      float64 // the slowest task's synchronous part
	Acked       int
	Tasks       int
	Err         string
}

// ErrAborted is wrapped by the errors of aborted checkpoints.
var ErrAborted = errors.New("checkpoint aborted")

// Coordinator triggers checkpoints, collects the tasks' acknowledgements,
// writes the metadata of complete checkpoints last and atomically, aborts
// checkpoints on timeout or task failure, and keeps the newest Retain
// checkpoints, deleting files no retained checkpoint references. It is a
// state machine driven by Run (its clock), the runtime's calls (Start,
// Ack, Decline, AbortAll) and savepoint requests; all methods are safe for
// concurrent use.
type Coordinator struct {
	cfg  Config
	opts Options
	log  *slog.Logger

	mu        sync.Mutex
	tasks     map[string]bool // tasks that must ack, per attempt
	running   bool            // tasks are running and sources can inject barriers
	nextID    int64
	pending   map[int64]*pending
	retained  []*completed // oldest first
	lastDone  time.Time
	history   []Stats // newest last, bounded
	wake      chan struct{}
	savepoint map[int64]chan result
}

type pending struct {
	b        Barrier
	deadline time.Time
	acks     map[string]TaskState
	stats    *Stats
}

type completed struct {
	id   int64
	dir  string
	meta *Metadata
}

type result struct {
	meta *Metadata
	err  error
}

const historyLen = 100

// NewCoordinator returns a coordinator; call Run to start periodic
// checkpoints.
func NewCoordinator(cfg Config, opts Options) *Coordinator {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Coordinator{
		cfg: cfg.Defaults(), opts: opts, log: opts.Logger,
		nextID: 1, pending: map[int64]*pending{}, wake: make(chan struct{}, 1),
		savepoint: map[int64]chan result{},
	}
}

// ContinueAfter makes the next checkpoint id greater than id (a job started
// from a savepoint continues its numbering, as in Flink, so ids stay
// unique for two-phase-commit sinks that name transactions by id).
func (c *Coordinator) ContinueAfter(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if id >= c.nextID {
		c.nextID = id + 1
	}
}

// CheckpointsDir is the folder of the job's checkpoints.
func (c *Coordinator) CheckpointsDir() string { return path.Join(c.opts.Root, "checkpoints") }

// SharedDir is the folder of the job's shared (incremental) files.
func (c *Coordinator) SharedDir() string { return path.Join(c.opts.Root, "shared") }

func (c *Coordinator) checkpointDir(id int64) string {
	return path.Join(c.CheckpointsDir(), "chk-"+strconv.FormatInt(id, 10))
}

// Start tells the coordinator which tasks must acknowledge each checkpoint
// from now on (a new attempt of the job): barriers may be injected.
func (c *Coordinator) Start(tasks []string) {
	c.mu.Lock()
	c.tasks = map[string]bool{}
	for _, t := range tasks {
		c.tasks[t] = true
	}
	c.running = true
	c.mu.Unlock()
	c.poke()
}

// Pause stops triggering new checkpoints without aborting pending ones (a
// source finished: it can inject no more barriers).
func (c *Coordinator) Pause() {
	c.mu.Lock()
	c.running = false
	c.mu.Unlock()
}

// Stop stops triggering (the job's sources finished, failed, or the job is
// stopping): pending checkpoints are aborted with err.
func (c *Coordinator) Stop(err error) {
	c.mu.Lock()
	c.running = false
	c.mu.Unlock()
	c.AbortAll(err)
}

func (c *Coordinator) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Run triggers periodic checkpoints and enforces timeouts until ctx ends.
func (c *Coordinator) Run(ctx context.Context) {
	next := c.opts.Clock.Now().Add(c.cfg.Interval)
	for {
		now := c.opts.Clock.Now()
		c.expire(now)
		if c.cfg.Interval > 0 && !now.Before(next) {
			if ok, wait := c.mayTrigger(now); ok {
				if _, err := c.TriggerCheckpoint(); err != nil {
					c.log.Debug("checkpoint not triggered", "err", err)
				}
				next = now.Add(c.cfg.Interval)
			} else {
				next = now.Add(wait)
			}
		}
		wait := time.Hour
		if c.cfg.Interval > 0 {
			wait = next.Sub(now)
		}
		if d, ok := c.nextDeadline(); ok && d.Sub(now) < wait {
			wait = d.Sub(now)
		}
		if wait <= 0 {
			wait = time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-c.opts.Clock.After(wait):
		case <-c.wake:
		}
	}
}

// mayTrigger says whether a periodic checkpoint may start now, or how long
// to wait.
func (c *Coordinator) mayTrigger(now time.Time) (bool, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running {
		return false, c.cfg.Interval
	}
	n := 0
	for _, p := range c.pending {
		if !p.b.Savepoint {
			n++
		}
	}
	if n >= c.cfg.MaxConcurrent {
		return false, time.Millisecond * 10
	}
	if c.cfg.MinPause > 0 && !c.lastDone.IsZero() {
		if d := c.lastDone.Add(c.cfg.MinPause).Sub(now); d > 0 {
			return false, d
		}
	}
	return true, 0
}

func (c *Coordinator) nextDeadline() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var d time.Time
	for _, p := range c.pending {
		if d.IsZero() || p.deadline.Before(d) {
			d = p.deadline
		}
	}
	return d, !d.IsZero()
}

func (c *Coordinator) expire(now time.Time) {
	c.mu.Lock()
	var expired []int64
	for id, p := range c.pending {
		if !now.Before(p.deadline) {
			expired = append(expired, id)
		}
	}
	c.mu.Unlock()
	for _, id := range expired {
		c.abort(id, fmt.Errorf("checkpoint %d: timed out after %v: %w", id, c.cfg.Timeout, ErrAborted))
	}
}

// TriggerCheckpoint starts a checkpoint now (periodic ones call it too).
func (c *Coordinator) TriggerCheckpoint() (int64, error) {
	return c.trigger(false, false, "")
}

// TriggerSavepoint takes a savepoint into folder dir and waits for it;
// stop marks it as the last one of the job (stop-with-savepoint).
func (c *Coordinator) TriggerSavepoint(ctx context.Context, dir string, stop bool) (*Metadata, error) {
	c.mu.Lock()
	id := c.nextID
	ch := make(chan result, 1)
	c.savepoint[id] = ch
	c.mu.Unlock()
	got, err := c.trigger(true, stop, dir)
	if err != nil {
		c.mu.Lock()
		delete(c.savepoint, id)
		c.mu.Unlock()
		return nil, err
	}
	if got != id {
		return nil, fmt.Errorf("savepoint: internal: id %d, expected %d", got, id)
	}
	select {
	case r := <-ch:
		return r.meta, r.err
	case <-ctx.Done():
		c.abort(id, fmt.Errorf("savepoint %d: %w: %w", id, context.Cause(ctx), ErrAborted))
		return nil, context.Cause(ctx)
	}
}

func (c *Coordinator) trigger(savepoint, stop bool, dir string) (int64, error) {
	now := c.opts.Clock.Now()
	c.mu.Lock()
	if !c.running {
		c.mu.Unlock()
		return 0, fmt.Errorf("checkpoint: the job is not running (or its sources finished): %w", ErrAborted)
	}
	id := c.nextID
	c.nextID++
	if !savepoint {
		dir = c.checkpointDir(id)
	}
	b := Barrier{ID: id, Timestamp: now.UnixMilli(), Savepoint: savepoint, Stop: stop, Dir: dir}
	st := &Stats{ID: id, Savepoint: savepoint, Status: "in progress", TriggeredAt: now, Tasks: len(c.tasks)}
	c.pending[id] = &pending{b: b, deadline: now.Add(c.cfg.Timeout), acks: map[string]TaskState{}, stats: st}
	c.addHistory(st)
	c.mu.Unlock()
	c.poke()
	if err := c.opts.Hooks.Trigger(b); err != nil {
		c.abort(id, fmt.Errorf("checkpoint %d: trigger: %w: %w", id, err, ErrAborted))
		return 0, err
	}
	return id, nil
}

func (c *Coordinator) addHistory(s *Stats) {
	c.history = append(c.history, Stats{})
	if len(c.history) > historyLen {
		c.history = c.history[1:]
	}
	c.history[len(c.history)-1] = *s
}

func (c *Coordinator) updateHistory(s *Stats) {
	for i := len(c.history) - 1; i >= 0; i-- {
		if c.history[i].ID == s.ID {
			c.history[i] = *s
			return
		}
	}
}

// History returns the stats of recent checkpoints, newest last.
func (c *Coordinator) History() []Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Stats(nil), c.history...)
}

// Ack records task's snapshot for checkpoint id. When every task has
// acked, the metadata is written and the checkpoint completes. An ack for
// a checkpoint that is no longer pending (aborted, timed out) has its
// files deleted.
func (c *Coordinator) Ack(ctx context.Context, id int64, ts TaskState) {
	c.mu.Lock()
	p, ok := c.pending[id]
	if !ok || !c.tasks[ts.Task] {
		refs := c.referencedLocked()
		c.mu.Unlock()
		c.discard(ctx, id, refs, ts)
		return
	}
	p.acks[ts.Task] = ts
	p.stats.Acked = len(p.acks)
	p.stats.AlignmentMs = max(p.stats.AlignmentMs, ts.AlignmentMs)
	p.stats.SyncMs = max(p.stats.SyncMs, ts.SyncMs)
	c.updateHistory(p.stats)
	done := len(p.acks) == len(c.tasks)
	if done {
		delete(c.pending, id)
	}
	c.mu.Unlock()
	if done {
		c.complete(ctx, p)
	}
}

// Decline aborts checkpoint id on behalf of a task that cannot take it
// (e.g. its source had already finished).
func (c *Coordinator) Decline(id int64, task string, err error) {
	c.abort(id, fmt.Errorf("checkpoint %d: declined by task %s: %w: %w", id, task, err, ErrAborted))
}

// AbortAll aborts every pending checkpoint (a task failed).
func (c *Coordinator) AbortAll(err error) {
	c.mu.Lock()
	ids := make([]int64, 0, len(c.pending))
	for id := range c.pending {
		ids = append(ids, id)
	}
	c.mu.Unlock()
	for _, id := range ids {
		c.abort(id, fmt.Errorf("checkpoint %d: %w: %w", id, err, ErrAborted))
	}
}

func (c *Coordinator) abort(id int64, err error) {
	c.mu.Lock()
	p, ok := c.pending[id]
	if ok {
		delete(c.pending, id)
		p.stats.Status = "aborted"
		p.stats.Err = err.Error()
		p.stats.Duration = c.opts.Clock.Now().Sub(p.stats.TriggeredAt)
		c.updateHistory(p.stats)
	}
	sp := c.savepoint[id]
	delete(c.savepoint, id)
	c.mu.Unlock()
	if !ok {
		return
	}
	c.log.Info("checkpoint aborted", "checkpoint", id, "err", err)
	if sp != nil {
		sp <- result{err: err}
	}
	ctx := context.Background()
	c.mu.Lock()
	refs := c.referencedLocked()
	c.mu.Unlock()
	for _, ts := range p.acks {
		c.discard(ctx, id, refs, ts)
	}
	if !p.b.Savepoint {
		if err := c.opts.Storage.DeletePrefix(ctx, p.b.Dir+"/"); err != nil {
			c.log.Warn("deleting files of an aborted checkpoint", "checkpoint", id, "err", err)
		}
	}
	if c.opts.Hooks.Aborted != nil {
		c.opts.Hooks.Aborted(p.b, err)
	}
}

// discard deletes the files of an ack that no checkpoint will use: its
// private files and the shared files not in refs (what retained and
// pending checkpoints reference).
func (c *Coordinator) discard(ctx context.Context, id int64, refs map[string]bool, ts TaskState) {
	if ts.State == nil {
		return
	}
	dir := c.checkpointDir(id)
	for _, f := range ts.State.Files {
		name, err := Resolve(dir, f.Path, c.opts.Root)
		if err != nil || refs[name] {
			continue
		}
		if f.Shared || strings.HasPrefix(name, dir+"/") {
			if err := c.opts.Storage.Delete(ctx, name); err != nil {
				c.log.Warn("deleting an unused checkpoint file", "file", name, "err", err)
			}
		}
	}
}

// referencedLocked returns the storage names of the files that retained
// or pending checkpoints reference.
func (c *Coordinator) referencedLocked() map[string]bool {
	refs := c.retainedRefsLocked()
	for _, p := range c.pending {
		for _, ts := range p.acks {
			c.addRefs(refs, p.b.Dir, ts)
		}
	}
	return refs
}

// retainedRefsLocked returns the storage names of the files that retained
// checkpoints reference.
func (c *Coordinator) retainedRefsLocked() map[string]bool {
	refs := map[string]bool{}
	for _, r := range c.retained {
		for _, ts := range r.meta.Tasks {
			c.addRefs(refs, r.dir, ts)
		}
	}
	return refs
}

func (c *Coordinator) addRefs(refs map[string]bool, dir string, ts TaskState) {
	if ts.State == nil {
		return
	}
	for _, f := range ts.State.Files {
		if name, err := Resolve(dir, f.Path, c.opts.Root); err == nil {
			refs[name] = true
		}
	}
}

func (c *Coordinator) complete(ctx context.Context, p *pending) {
	now := c.opts.Clock.Now()
	m := &Metadata{
		Format: MetadataFormat, Job: c.opts.Job, ID: p.b.ID, Savepoint: p.b.Savepoint,
		TriggeredAt: p.b.Timestamp, CompletedAt: now.UnixMilli(), MaxParallelism: c.opts.MaxParallelism,
	}
	for _, ts := range p.acks {
		m.Tasks = append(m.Tasks, ts)
	}
	sort.Slice(m.Tasks, func(i, j int) bool { return m.Tasks[i].Task < m.Tasks[j].Task })
	err := WriteMetadata(ctx, c.opts.Storage, p.b.Dir, m)
	c.mu.Lock()
	sp := c.savepoint[p.b.ID]
	delete(c.savepoint, p.b.ID)
	st := p.stats
	st.Duration = now.Sub(st.TriggeredAt)
	before := c.retainedRefsLocked()
	for _, ts := range m.Tasks {
		if ts.State == nil {
			continue
		}
		for _, f := range ts.State.Files {
			st.Size += f.Size
			if name, err := Resolve(p.b.Dir, f.Path, c.opts.Root); err == nil && !before[name] {
				st.Uploaded += f.Size
			}
		}
	}
	var dropped []*completed
	if err != nil {
		st.Status, st.Err = "aborted", err.Error()
	} else {
		st.Status = "completed"
		c.lastDone = now
		if !p.b.Savepoint {
			c.retained = append(c.retained, &completed{id: p.b.ID, dir: p.b.Dir, meta: m})
			if n := len(c.retained) - c.cfg.Retain; n > 0 {
				dropped = append(dropped, c.retained[:n]...)
				c.retained = append([]*completed(nil), c.retained[n:]...)
			}
		}
	}
	c.updateHistory(st)
	c.mu.Unlock()
	if err != nil {
		err = fmt.Errorf("checkpoint %d: writing metadata: %w: %w", p.b.ID, err, ErrAborted)
		c.log.Warn("checkpoint failed", "checkpoint", p.b.ID, "err", err)
		if sp != nil {
			sp <- result{err: err}
		}
		if c.opts.Hooks.Aborted != nil {
			c.opts.Hooks.Aborted(p.b, err)
		}
		return
	}
	c.log.Info("checkpoint completed", "checkpoint", p.b.ID, "savepoint", p.b.Savepoint,
		"duration", st.Duration, "bytes", st.Size, "uploaded", st.Uploaded)
	for _, d := range dropped {
		c.deleteCheckpoint(ctx, d)
	}
	if sp != nil {
		sp <- result{meta: m}
	}
	if c.opts.Hooks.Completed != nil {
		c.opts.Hooks.Completed(p.b)
	}
}

// deleteCheckpoint removes a checkpoint that is no longer retained: its
// folder, and its shared files that no retained or pending checkpoint
// references.
func (c *Coordinator) deleteCheckpoint(ctx context.Context, d *completed) {
	c.mu.Lock()
	refs := c.referencedLocked()
	c.mu.Unlock()
	// The metadata first: a folder without metadata is never restored.
	if err := c.opts.Storage.Delete(ctx, path.Join(d.dir, MetadataName)); err != nil {
		c.log.Warn("deleting checkpoint metadata", "checkpoint", d.id, "err", err)
		return
	}
	for _, ts := range d.meta.Tasks {
		if ts.State == nil {
			continue
		}
		for _, f := range ts.State.Files {
			name, err := Resolve(d.dir, f.Path, c.opts.Root)
			if err != nil || refs[name] {
				continue
			}
			if err := c.opts.Storage.Delete(ctx, name); err != nil {
				c.log.Warn("deleting checkpoint file", "file", name, "err", err)
			}
		}
	}
	if err := c.opts.Storage.DeletePrefix(ctx, d.dir+"/"); err != nil {
		c.log.Warn("deleting checkpoint folder", "checkpoint", d.id, "err", err)
	}
}

// Retained returns the metadata of the retained checkpoints, newest first.
func (c *Coordinator) Retained() []*Metadata {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*Metadata, 0, len(c.retained))
	for i := len(c.retained) - 1; i >= 0; i-- {
		out = append(out, c.retained[i].meta)
	}
	return out
}

// CheckpointDir returns the folder of checkpoint id.
func (c *Coordinator) CheckpointDir(id int64) string { return c.checkpointDir(id) }

// Sweep deletes shared files and checkpoint folders that no retained or
// pending checkpoint references: leftovers of attempts that failed while
// uploading. Call it when no task of an earlier attempt is running.
func (c *Coordinator) Sweep(ctx context.Context) error {
	c.mu.Lock()
	refs := c.referencedLocked()
	keep := map[string]bool{}
	for _, r := range c.retained {
		keep[r.dir] = true
	}
	for _, p := range c.pending {
		keep[p.b.Dir] = true
	}
	c.mu.Unlock()
	shared, err := c.opts.Storage.List(ctx, c.SharedDir()+"/")
	if err != nil {
		return err
	}
	for _, o := range shared {
		if !refs[o.Name] {
			if err := c.opts.Storage.Delete(ctx, o.Name); err != nil {
				return err
			}
		}
	}
	chk, err := c.opts.Storage.List(ctx, c.CheckpointsDir()+"/")
	if err != nil {
		return err
	}
	for _, o := range chk {
		dir := checkpointFolder(c.CheckpointsDir(), o.Name)
		if dir != "" && !keep[dir] && !refs[o.Name] {
			if err := c.opts.Storage.Delete(ctx, o.Name); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkpointFolder returns the "…/checkpoints/chk-<n>" folder of a
// storage name under base, or "".
func checkpointFolder(base, name string) string {
	rest, ok := strings.CutPrefix(name, base+"/")
	if !ok {
		return ""
	}
	first, _, _ := strings.Cut(rest, "/")
	if !strings.HasPrefix(first, "chk-") {
		return ""
	}
	return base + "/" + first
}

// Load reads the job's existing checkpoints (a restarted process resuming
// its job): intact ones are retained, newest last, and numbering continues
// after the highest id found. Damaged ones are logged and skipped.
func (c *Coordinator) Load(ctx context.Context) error {
	objs, err := c.opts.Storage.List(ctx, c.CheckpointsDir()+"/")
	if err != nil {
		return err
	}
	var ids []int64
	seen := map[int64]bool{}
	for _, o := range objs {
		dir := checkpointFolder(c.CheckpointsDir(), o.Name)
		if dir == "" {
			continue
		}
		id, err := strconv.ParseInt(strings.TrimPrefix(path.Base(dir), "chk-"), 10, 64)
		if err != nil || seen[id] {
			continue
		}
		seen[id] = true
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		if id >= c.nextID {
			c.nextID = id + 1
		}
		dir := c.checkpointDir(id)
		m, err := ReadMetadata(ctx, c.opts.Storage, dir)
		if err != nil {
			if !errors.Is(err, ErrNotFound) {
				c.log.Warn("skipping a damaged checkpoint", "checkpoint", id, "err", err)
			}
			continue
		}
		c.retained = append(c.retained, &completed{id: id, dir: dir, meta: m})
	}
	return nil
}

// DeleteAll removes every checkpoint and shared file of the job (a fresh
// start that must not mix with an earlier run's checkpoints). Savepoints
// are never touched.
func (c *Coordinator) DeleteAll(ctx context.Context) error {
	c.mu.Lock()
	c.retained = nil
	c.mu.Unlock()
	if err := c.opts.Storage.DeletePrefix(ctx, c.CheckpointsDir()+"/"); err != nil {
		return err
	}
	return c.opts.Storage.DeletePrefix(ctx, c.SharedDir()+"/")
}

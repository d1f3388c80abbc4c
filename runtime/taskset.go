package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/weirstream/weir/checkpoint"
)

// TaskSetConfig says which tasks of an attempt a TaskSet runs and how they
// reach the others.
type TaskSetConfig struct {
	Attempt int
	UID     string
	// Self is this worker's id in Placement.
	Self string
	// Placement maps every task name to the worker that runs it; nil runs
	// every task here.
	Placement map[string]string
	// Exchange carries the channels to tasks elsewhere (required when
	// Placement puts some task on another worker).
	Exchange Exchange
	// Acks receives checkpoint acknowledgements (default: the job's own
	// checkpoint coordinator).
	Acks Acker
	// Restore is where the tasks start from (nil: afresh).
	Restore *RestoreRef

	rp *restorePoint // the master's restore point, when it runs the set itself
}

// TaskSet is the part of an attempt that runs in this process: the tasks
// placed here, their local channels, and the ends of their remote ones.
// It is a TaskGroup.
type TaskSet struct {
	j   *Job
	cfg TaskSetConfig
	a   *attempt

	mu       sync.Mutex
	finished map[*task]bool
	ran      bool
	cancel   context.CancelCauseFunc
	runDone  chan struct{} // closed when Run returns
	closed   bool          // Finish has begun: Run must not start
}

// NewTaskSet prepares the tasks cfg places here; Open builds them.
func (j *Job) NewTaskSet(cfg TaskSetConfig) *TaskSet {
	return &TaskSet{j: j, cfg: cfg, finished: map[*task]bool{}}
}

func (s *TaskSet) local(name string) bool {
	return s.cfg.Placement == nil || s.cfg.Placement[name] == s.cfg.Self
}

// Open implements TaskGroup: it creates the attempt's state folder, builds
// the local tasks and channels, restores them and opens their instances
// and sinks. On error everything it created is released.
func (s *TaskSet) Open(ctx context.Context) (err error) {
	j := s.j
	a := &attempt{job: j, n: s.cfg.Attempt, uid: s.cfg.UID, exactlyOnce: j.Spec.Checkpoints.Mode != ModeAtLeastOnce, set: s}
	if j.cp != nil {
		a.acks, a.storage, a.sharedDir = j.cp.coord, j.cp.opts.Storage, j.cp.coord.SharedDir()
		if s.cfg.Acks != nil {
			a.acks = s.cfg.Acks
		}
	}
	a.stateDir, err = j.attemptDir(s.cfg.Attempt, s.cfg.UID)
	if err != nil {
		return err
	}
	s.a = a
	defer func() {
		if err != nil {
			os.RemoveAll(a.stateDir)
			s.a = nil // nothing for Finish to release
		}
	}()
	rp := s.cfg.rp
	if rp == nil && s.cfg.Restore != nil {
		if rp, err = j.resolveRestore(ctx, s.cfg.Restore); err != nil {
			return err
		}
	}
	tasks, err := j.buildTasks(a, s.local, s.cfg.Exchange, s.cfg.Placement)
	if err != nil {
		return err
	}
	a.tasks = tasks
	if err := j.open(ctx, a, rp); err != nil {
		j.closeTasks(tasks)
		return err
	}
	return nil
}

// attemptDir creates the folder of an attempt's Pebble stores, snapshot
// scratch and restore imports (whatever the backend: a memory job may
// import a Pebble checkpoint).
func (j *Job) attemptDir(n int, uid string) (string, error) {
	base := j.Spec.State.Dir
	j.mu.Lock()
	defer j.mu.Unlock()
	if base == "" {
		if j.tmpDir == "" {
			d, err := os.MkdirTemp("", "weir-state-")
			if err != nil {
				return "", err
			}
			j.tmpDir = d
		}
		base = j.tmpDir
	}
	dir := filepath.Join(base, j.Spec.Name, fmt.Sprintf("attempt-%d-%s", n, uid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return dir, nil
}

// resolveRestore reads the metadata of a restore point in the job's
// checkpoint storage.
func (j *Job) resolveRestore(ctx context.Context, r *RestoreRef) (*restorePoint, error) {
	if j.cp == nil {
		return nil, fmt.Errorf("restore from %s: the job has no checkpoint storage", r.Dir)
	}
	st := j.cp.opts.Storage
	if f := j.opts.Checkpoint.From; f != nil && !r.Native {
		st = f.Storage
	}
	m, err := checkpoint.ReadMetadata(ctx, st, r.Dir)
	if err != nil {
		return nil, &restoreError{dir: r.Dir, err: err}
	}
	return &restorePoint{storage: st, dir: r.Dir, root: r.Root, meta: m, native: r.Native, allow: r.AllowNonRestoredState}, nil
}

func (rp *restorePoint) ref() *RestoreRef {
	if rp == nil {
		return nil
	}
	return &RestoreRef{Dir: rp.dir, Root: rp.root, Native: rp.native, AllowNonRestoredState: rp.allow}
}

// Run implements TaskGroup: every local task on its goroutine; the first
// failure cancels the others. It returns once every task has ended and
// every snapshot upload has been acknowledged or declined.
func (s *TaskSet) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	a := s.a
	s.mu.Lock()
	if s.closed || a == nil {
		s.mu.Unlock()
		return errors.New("the tasks were released before they ran")
	}
	s.ran = true
	s.cancel = cancel
	s.runDone = make(chan struct{})
	defer close(s.runDone)
	s.mu.Unlock()
	a.ctx = ctx
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for _, t := range a.tasks {
		t.ctx = ctx
		if t.out != nil {
			t.out.ctx = ctx
		}
		wg.Add(1)
		go func(t *task) {
			defer wg.Done()
			err := t.run()
			s.mu.Lock()
			s.finished[t] = true
			s.mu.Unlock()
			if err != nil && ctx.Err() == nil {
				once.Do(func() { first = fmt.Errorf("task %s: %w", t.name, err) })
				cancel(first)
			}
		}(t)
	}
	wg.Wait()
	a.uploads.Wait()
	if first == nil && ctx.Err() != nil {
		first = context.Cause(ctx)
	}
	return first
}

// Fail fails the running set with err (a broken network link).
func (s *TaskSet) Fail(err error) {
	s.mu.Lock()
	cancel := s.cancel
	s.mu.Unlock()
	if cancel != nil {
		cancel(err)
	}
}

// Trigger implements TaskGroup.
func (s *TaskSet) Trigger(b checkpoint.Barrier) error {
	a := s.a
	a.barriers.Store(b.ID, b)
	if b.Stop {
		a.stopID.Store(b.ID)
	}
	for _, t := range a.tasks {
		if t.source == nil {
			continue
		}
		// Under trigMu: a source that finishes either sees this barrier
		// queued (and declines it) or is seen finished here.
		t.trigMu.Lock()
		var err error
		if t.srcDone {
			err = fmt.Errorf("source task %s has finished", t.name)
		} else {
			select {
			case t.cp.triggers <- b.ID:
			default:
				err = fmt.Errorf("source task %s has too many barriers queued", t.name)
			}
		}
		t.trigMu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// Notify implements TaskGroup. A savepoint that does not stop the job
// commits nothing (as in Flink since 1.15): recovery restores from
// checkpoints only, so output committed by such a savepoint would be
// written again by a restore from the checkpoint before it. Its
// transactions stay pending and are committed with the next checkpoint (a
// two-phase sink's pre-commit state lists every transaction not committed
// yet). A stop-with-savepoint is the job's last point and commits.
func (s *TaskSet) Notify(b checkpoint.Barrier, completed bool) {
	a := s.a
	if !completed {
		if a.stopID.CompareAndSwap(b.ID, 0) {
			for _, t := range a.tasks {
				t.cp.notify() // suspended sources resume
			}
		}
		return
	}
	if b.Savepoint && !b.Stop {
		return
	}
	for _, t := range a.tasks {
		for {
			old := t.cp.done.Load()
			if b.ID <= old || t.cp.done.CompareAndSwap(old, b.ID) {
				break
			}
		}
		t.cp.notify()
	}
}

// Finish implements TaskGroup. Two-phase-commit sinks: the final
// transaction becomes visible once every task of the attempt has finished;
// after a failure it is left pending and the next attempt discards it.
// Once one sink has committed its final transaction the attempt can no
// longer be replayed (that output would be written twice), so a failing
// commit is retried, and one that still fails fails the job for good
// rather than restarting it.
func (s *TaskSet) Finish(ctx context.Context, commit bool) (committed bool, first error) {
	a := s.a
	if a == nil {
		return false, nil
	}
	defer os.RemoveAll(a.stateDir)
	s.mu.Lock()
	ran, runDone := s.ran, s.runDone
	s.closed = true // a Run that has not started yet will not
	s.mu.Unlock()
	if ran {
		// A cancelled Run may still be ending its tasks (a worker's Run
		// call is cancelled from afar): they must be done before the
		// sinks close and the instances' modules may be released.
		<-runDone
	}
	if !ran {
		s.j.closeTasks(a.tasks)
		return false, nil
	}
	for _, t := range a.tasks {
		for _, e := range t.elems {
			sk, ok := e.(*sinkElem)
			if !ok || sk.tx == nil {
				continue
			}
			if commit && first == nil {
				if err := s.j.commitFinal(ctx, sk.tx); err != nil {
					first = fmt.Errorf("task %s: sink %s: commit: %w", t.name, sk.node.ID, err)
					if committed {
						first = permanent(fmt.Errorf("%w (other sinks have committed their final output, which a restart would write again)", first))
					}
				} else {
					committed = true
				}
			}
			if err := sk.sink.Close(); err != nil && first == nil {
				first = fmt.Errorf("task %s: sink %s: close: %w", t.name, sk.node.ID, err)
			}
		}
	}
	return committed, first
}

// Stats implements TaskGroup.
func (s *TaskSet) Stats() []TaskStats {
	if s.a == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]TaskStats, 0, len(s.a.tasks))
	for _, t := range s.a.tasks {
		st := t.metrics.snapshot()
		st.Task = t.name
		for _, n := range t.nodes {
			st.Nodes = append(st.Nodes, n.ID)
		}
		st.Subtask = t.subtask
		st.Finished = s.finished[t]
		if t.cp != nil {
			st.Alignment = time.Duration(t.cp.alignments.Load())
		}
		out = append(out, st)
	}
	return out
}

// Tasks returns every task of the execution graph.
func (j *Job) Tasks() []TaskRef {
	var out []TaskRef
	for _, c := range j.chains {
		for s := 0; s < c.nodes[0].Parallelism; s++ {
			out = append(out, TaskRef{Name: fmt.Sprintf("%s[%d]", c.name(), s), Subtask: s})
		}
	}
	return out
}

// firstOpenError picks the error an attempt whose groups could not open
// fails with: a damaged checkpoint first (recovery then falls back), else
// the first.
func firstOpenError(errs []error) error {
	var first error
	for _, err := range errs {
		var re *restoreError
		if err != nil && errors.As(err, &re) && damaged(err) {
			return err
		}
		if first == nil {
			first = err
		}
	}
	return first
}

package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weirstream/weir/checkpoint"
)

// CheckpointOptions connect a job to checkpoint storage. Without them a
// job takes no checkpoints, cannot take savepoints and does not restart.
type CheckpointOptions struct {
	Storage checkpoint.Storage
	// Tenant owns the job's checkpoints (default "default"): they live
	// under checkpoint.JobPrefix(Tenant, spec name).
	Tenant string
	// Job names the job's folder under the tenant (default: derived from
	// the spec's name). The platform passes its job id, so that two jobs
	// with one name never share checkpoints.
	Job string
	// Resume restarts from the newest intact retained checkpoint of the
	// job, if there is one (a restarted process). Without Resume, earlier
	// checkpoints of the job are deleted at start (savepoints never are).
	Resume bool
	// From starts the job from a savepoint or retained checkpoint.
	From *RestoreFrom
}

// RestoreFrom names a savepoint (or checkpoint) to start from.
type RestoreFrom struct {
	Storage checkpoint.Storage
	Dir     string // folder holding _metadata ("" for the storage root)
	// AllowNonRestoredState drops state of nodes the job no longer has,
	// and states the new module version no longer registers, instead of
	// failing.
	AllowNonRestoredState bool
}

// EventKind says what a job Event reports.
type EventKind string

// Job events.
const (
	EventStarted           EventKind = "started" // an attempt's tasks are running
	EventFailed            EventKind = "failed"  // a task failed
	EventRestarting        EventKind = "restarting"
	EventCheckpoint        EventKind = "checkpoint" // completed
	EventCheckpointAborted EventKind = "checkpoint-aborted"
	EventSavepoint         EventKind = "savepoint"
	EventRestored          EventKind = "restored"
	EventCheckpointSkipped EventKind = "checkpoint-skipped" // damaged, recovery fell back
)

// Event reports a failure, a restart or a checkpoint as it happens.
type Event struct {
	Time       time.Time
	Kind       EventKind
	Attempt    int
	Checkpoint int64
	Dir        string
	Delay      time.Duration
	Err        error
}

// attempt is one run of the job's tasks; after a failure the job starts a
// new attempt from the latest completed checkpoint.
type attempt struct {
	job         *Job
	n           int
	uid         string // makes shared file names unique per attempt
	ctx         context.Context
	set         *TaskSet
	acks        Acker // nil without checkpoint storage
	storage     checkpoint.Storage
	sharedDir   string
	stateDir    string
	exactlyOnce bool
	tasks       []*task
	uploads     sync.WaitGroup
	barriers    sync.Map // int64 -> checkpoint.Barrier
	stopID      atomic.Int64
}

func (a *attempt) barrier(id int64) (checkpoint.Barrier, bool) {
	v, ok := a.barriers.Load(id)
	if !ok {
		return checkpoint.Barrier{}, false
	}
	return v.(checkpoint.Barrier), true
}

func randomID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// checkpointing is the job-level state that outlives attempts.
type checkpointing struct {
	opts    CheckpointOptions
	root    string
	coord   *checkpoint.Coordinator
	current atomic.Pointer[running]
}

// running is the attempt whose tasks run now, as the job master sees it.
type running struct {
	groups []TaskGroup
}

// newCheckpointing builds the job's coordinator (at Compile, so that
// History and savepoint calls never race with Run).
func (j *Job) newCheckpointing() error {
	co := j.opts.Checkpoint
	if co == nil || co.Storage == nil {
		return nil
	}
	tenant := co.Tenant
	if tenant == "" {
		tenant = "default"
	}
	jobID := co.Job
	if jobID == "" {
		jobID = storageID(j.Spec.Name)
	}
	root, err := checkpoint.JobPrefix(tenant, jobID)
	if err != nil {
		return err
	}
	cs := j.Spec.Checkpoints
	c := &checkpointing{opts: *co, root: root}
	c.coord = checkpoint.NewCoordinator(checkpoint.Config{
		Interval: time.Duration(cs.Interval), Timeout: time.Duration(cs.Timeout), MinPause: time.Duration(cs.MinPause),
		MaxConcurrent: cs.MaxConcurrent, Retain: cs.Retain,
	}, checkpoint.Options{
		Clock: j.opts.Clock, Storage: co.Storage, Root: root, Job: j.Spec.Name,
		MaxParallelism: j.Spec.MaxParallelism, Logger: j.opts.Logger,
		Hooks: checkpoint.Hooks{Trigger: j.triggerBarrier, Completed: j.checkpointCompleted, Aborted: j.checkpointAborted},
	})
	j.cp = c
	return nil
}

// setupCheckpointing loads the job's earlier checkpoints (Resume) or
// deletes them (a fresh start).
func (j *Job) setupCheckpointing(ctx context.Context) error {
	if j.cp == nil {
		return nil
	}
	if j.cp.opts.Resume {
		if err := j.cp.coord.Load(ctx); err != nil {
			return fmt.Errorf("reading the job's checkpoints: %w", err)
		}
	} else if err := j.cp.coord.DeleteAll(ctx); err != nil {
		return fmt.Errorf("removing checkpoints of an earlier run: %w", err)
	}
	return nil
}

// storageID turns a job name into a storage id (lowercase a-z, 0-9, '-',
// '_'): names that need changing get a hash suffix so that two names never
// share a folder.
func storageID(name string) string {
	var b strings.Builder
	changed := false
	for i, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', i > 0 && (r == '-' || r == '_'):
			b.WriteRune(r)
		case r >= 'A' && r <= 'Z':
			b.WriteRune(r + 'a' - 'A')
			changed = true
		default:
			b.WriteByte('-')
			changed = true
		}
	}
	id := b.String()
	if len(id) > 40 {
		id, changed = id[:40], true
	}
	if changed {
		h := fnv.New32a()
		h.Write([]byte(name))
		id = fmt.Sprintf("%s-%08x", id, h.Sum32())
	}
	return id
}

func (j *Job) triggerBarrier(b checkpoint.Barrier) error {
	r := j.cp.current.Load()
	if r == nil {
		return errors.New("the job is restarting")
	}
	for _, g := range r.groups {
		if err := g.Trigger(b); err != nil {
			return err
		}
	}
	return nil
}

func (j *Job) checkpointCompleted(b checkpoint.Barrier) {
	if r := j.cp.current.Load(); r != nil {
		for _, g := range r.groups {
			g.Notify(b, true)
		}
	}
	j.mu.Lock()
	if j.restart != nil {
		j.restart.progress()
	}
	j.mu.Unlock()
	kind := EventCheckpoint
	if b.Savepoint {
		kind = EventSavepoint
	}
	j.event(Event{Kind: kind, Checkpoint: b.ID, Dir: b.Dir})
}

func (j *Job) checkpointAborted(b checkpoint.Barrier, err error) {
	if r := j.cp.current.Load(); r != nil {
		for _, g := range r.groups {
			g.Notify(b, false)
		}
	}
	j.event(Event{Kind: EventCheckpointAborted, Checkpoint: b.ID, Err: err})
}

func (j *Job) event(e Event) {
	if j.opts.OnEvent == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = j.opts.Clock.Now()
	}
	j.opts.OnEvent(e)
}

// ErrNoCheckpointing is returned by savepoint calls on a job without
// checkpoint storage.
var ErrNoCheckpointing = errors.New("the job has no checkpoint storage")

// SavepointDir returns the default folder of a new savepoint of the job.
func (j *Job) SavepointDir() string {
	if j.cp == nil {
		return ""
	}
	return path.Join(j.cp.root, "savepoints", fmt.Sprintf("savepoint-%s-%s", j.opts.Clock.Now().UTC().Format("20060102T150405.000"), randomID()[:6]))
}

// Savepoint takes a savepoint of the running job into storage folder dir
// (default: SavepointDir) and returns its metadata.
func (j *Job) Savepoint(ctx context.Context, dir string) (*checkpoint.Metadata, string, error) {
	if j.cp == nil {
		return nil, "", ErrNoCheckpointing
	}
	if dir == "" {
		dir = j.SavepointDir()
	}
	m, err := j.cp.coord.TriggerSavepoint(ctx, dir, false)
	return m, dir, err
}

// StopWithSavepoint takes a savepoint during which the sources stop, and
// ends the job once it completed and the sinks committed it: Run then
// returns nil. If the savepoint fails the job goes on.
func (j *Job) StopWithSavepoint(ctx context.Context, dir string) (*checkpoint.Metadata, string, error) {
	if j.cp == nil {
		return nil, "", ErrNoCheckpointing
	}
	if dir == "" {
		dir = j.SavepointDir()
	}
	m, err := j.cp.coord.TriggerSavepoint(ctx, dir, true)
	return m, dir, err
}

// History returns the stats of the job's recent checkpoints, newest last.
func (j *Job) History() []checkpoint.Stats {
	if j.cp == nil {
		return nil
	}
	return j.cp.coord.History()
}

// Failures returns the job's failure history.
func (j *Job) Failures() []Failure {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]Failure(nil), j.failures...)
}

package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"sync"
	"time"

	"github.com/weirstream/weir/checkpoint"
	"github.com/weirstream/weir/runtime"
	"github.com/weirstream/weir/tenants"
)

// entry is one job: its record and, while it runs, its generation. The
// record is guarded by the Manager's mutex.
type entry struct {
	rec  record
	gen  *generation
	logs *logRing
	// busy names the operation (upgrade, rescale, stop) that owns the job's
	// lifecycle until it ends; others are refused as conflicts.
	busy string
	// next are the modules an upgrade in progress moves to: in use from
	// the request on, so that they cannot be deleted under the upgrade.
	next map[string]PinnedModule
	// canceled is set by Cancel: a lifecycle operation in progress must not
	// start another generation.
	canceled bool
	// ended is closed when the job reaches a terminal state (Cancel waits
	// for it).
	ended chan struct{}
}

func newEntry(rec record, logs *logRing) *entry {
	e := &entry{rec: rec, logs: logs, ended: make(chan struct{})}
	if rec.State.terminal() {
		close(e.ended)
	}
	return e
}

// endLocked closes ended once the record is terminal (m.mu held).
func (e *entry) endLocked() {
	select {
	case <-e.ended:
	default:
		close(e.ended)
	}
}

// generation is one compiled runtime.Job of a job and its run.
type generation struct {
	n       int
	job     *runtime.Job
	cancel  context.CancelCauseFunc
	done    chan struct{} // closed when Run returned
	err     error         // Run's result, set before done closes
	metrics metrics

	mu sync.Mutex
	// started is closed when the first attempt's tasks run; failed
	// receives the first attempt failure (buffered, first one only).
	started     chan struct{}
	startedOnce sync.Once
	failed      chan error
	// stopping is set while a stop-with-savepoint is taken: Run returning
	// nil then means "stopped", not "finished".
	stopping bool
}

// errCanceled is the cause of a generation cancelled by the user.
var errCanceled = errors.New("canceled by the user")

// compile builds a generation of the job from spec. restore starts it from
// the record's savepoint; resume from the job's newest retained checkpoint
// (a restarted process).
func (m *Manager) compile(e *entry, spec *runtime.JobSpec, restore, resume bool) (*generation, error) {
	tenant, id := e.rec.Tenant, e.rec.ID
	gen := &generation{started: make(chan struct{}), failed: make(chan error, 1)}
	spec.State.Dir = m.stateDir(tenant, id)
	conns, logger := m.jobConnectors(e)
	cp := &runtime.CheckpointOptions{Storage: m.cfg.Storage, Tenant: tenant, Job: id, Resume: resume}
	if restore && e.rec.SavepointDir != "" {
		cp.From = &runtime.RestoreFrom{Storage: m.cfg.Storage, Dir: e.rec.SavepointDir, AllowNonRestoredState: e.rec.AllowNonRestored}
	}
	var cluster runtime.Cluster
	if m.cfg.Cluster != nil {
		cluster = m.cfg.Cluster(tenant, id)
	}
	job, err := runtime.Compile(m.ctx, spec, runtime.Options{
		Cluster:    cluster,
		Connectors: conns,
		LoadModule: m.cfg.Loader(tenant),
		Clock:      m.cfg.Clock,
		Logger:     logger,
		Checkpoint: cp,
		OnEvent:    func(ev runtime.Event) { m.onEvent(e, gen, ev) },
	})
	if err != nil {
		return nil, err
	}
	gen.job = job
	return gen, nil
}

// startLocked runs a generation (m.mu held).
func (m *Manager) startLocked(e *entry, gen *generation) {
	e.rec.Generation++
	gen.n = e.rec.Generation
	e.gen = gen
	ctx, cancel := context.WithCancelCause(m.ctx)
	gen.cancel = cancel
	gen.done = make(chan struct{})
	e.logs.system(slog.LevelInfo, fmt.Sprintf("generation %d starting (%s)", gen.n, joinGraph(gen.job.Graph())))
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		err := gen.job.Run(ctx)
		gen.err = err
		close(gen.done)
		m.generationEnded(e, gen, err)
	}()
}

// generationEnded records how a generation's Run ended, unless a
// lifecycle operation owns the job (it decides what comes next) or the
// manager is closing (the job stays running for the next process).
func (m *Manager) generationEnded(e *entry, gen *generation, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e.gen != gen {
		return
	}
	if err != nil && !errors.Is(err, errCanceled) && m.ctx.Err() != nil {
		return // stopped by Close: the job stays running in the store
	}
	e.gen = nil
	if e.busy != "" {
		return // the operation takes over (also after a cancel: it sees e.canceled)
	}
	m.finishLocked(e, gen, err)
}

// onEvent follows a generation's failures, restarts and checkpoints.
func (m *Manager) onEvent(e *entry, gen *generation, ev runtime.Event) {
	switch ev.Kind {
	case runtime.EventStarted, runtime.EventRestored:
		// An attempt that restores (from the savepoint a generation starts
		// from, or a checkpoint after a failure) reports Restored instead
		// of Started; its tasks run just the same.
		if ev.Kind == runtime.EventRestored {
			e.logs.system(slog.LevelInfo, fmt.Sprintf("attempt %d restored from %s (checkpoint %d)", ev.Attempt, ev.Dir, ev.Checkpoint))
		}
		gen.startedOnce.Do(func() { close(gen.started) })
		m.setState(e, gen, StateRestarting, StateRunning)
	case runtime.EventFailed:
		if ev.Attempt == 1 {
			select {
			case gen.failed <- ev.Err:
			default:
			}
		}
		e.logs.system(slog.LevelError, fmt.Sprintf("attempt %d failed: %v", ev.Attempt, ev.Err))
		m.mu.Lock()
		e.rec.Exceptions = append(e.rec.Exceptions, Exception{Time: ev.Time.UTC(), Generation: gen.n, Attempt: ev.Attempt,
			Task: failedTask(errString(ev.Err)), Error: errString(ev.Err)})
		if n := len(e.rec.Exceptions); n > maxExceptions {
			e.rec.Exceptions = append([]Exception(nil), e.rec.Exceptions[n-maxExceptions:]...)
		}
		m.saveLocked(e)
		m.mu.Unlock()
	case runtime.EventRestarting:
		e.logs.system(slog.LevelWarn, fmt.Sprintf("restarting (attempt %d) in %v", ev.Attempt, ev.Delay))
		m.mu.Lock()
		e.rec.Restarts++
		m.mu.Unlock()
		m.setState(e, gen, StateRunning, StateRestarting)
	case runtime.EventCheckpoint:
		m.checkStateQuota(e, gen, ev.Checkpoint)
	case runtime.EventCheckpointAborted:
		e.logs.system(slog.LevelWarn, fmt.Sprintf("checkpoint %d aborted: %v", ev.Checkpoint, ev.Err))
	case runtime.EventSavepoint:
		e.logs.system(slog.LevelInfo, fmt.Sprintf("savepoint %d completed", ev.Checkpoint))
	case runtime.EventCheckpointSkipped:
		e.logs.system(slog.LevelWarn, fmt.Sprintf("checkpoint %d is damaged, falling back to an older one: %v", ev.Checkpoint, ev.Err))
	}
}

// setState moves the job from one state to another if it is in the first
// and gen is still its generation.
func (m *Manager) setState(e *entry, gen *generation, from, to State) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e.gen == gen && e.rec.State == from {
		e.rec.State = to
		m.saveLocked(e)
	}
}

// checkStateQuota fails a job whose completed checkpoint is larger than
// the tenant's state_bytes quota.
func (m *Manager) checkStateQuota(e *entry, gen *generation, id int64) {
	q, err := m.cfg.Quotas(e.rec.Tenant)
	if err != nil {
		return
	}
	for _, s := range gen.job.History() {
		if s.ID == id && s.Status == "completed" {
			if err := tenants.Check("state_bytes", q.StateBytes, 0, s.Size); err != nil {
				e.logs.system(slog.LevelError, err.Error())
				gen.cancel(fmt.Errorf("checkpoint %d holds %d bytes of state: %w", id, s.Size, err))
			}
			return
		}
	}
}

// saveLocked writes the record (m.mu held). A failed write is logged: the
// in-memory state stays authoritative for this process.
func (m *Manager) saveLocked(e *entry) {
	e.rec.UpdatedAt = m.cfg.Clock.Now().UTC()
	if err := m.putRecord(&e.rec); err != nil {
		m.cfg.Logger.Error("saving job record", "tenant", e.rec.Tenant, "job", e.rec.ID, "err", err)
	}
}

func (m *Manager) putRecord(r *record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return m.cfg.Meta.Commit(map[string][]byte{recordKey(r.Tenant, r.ID): b}, nil)
}

// load reads every job record and resumes the jobs that were not over.
func (m *Manager) load() error {
	var recs []record
	err := m.cfg.Meta.Scan(recordsPrefix, func(k string, v []byte) error {
		var r record
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("job record %s: %w", k, err)
		}
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		return err
	}
	if err := m.loadOps(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range recs {
		e := newEntry(r, newLogRing(m.cfg.LogLines, m.cfg.Clock))
		m.jobs[key(r.Tenant, r.ID)] = e
		if r.State.terminal() {
			continue
		}
		e.rec.PrevModules = nil
		var spec runtime.JobSpec
		err := json.Unmarshal(r.Spec, &spec)
		var gen *generation
		if err == nil {
			gen, err = m.compile(e, &spec, true, !m.checkpointsBehindSavepoint(&r))
		}
		if err != nil {
			now := m.cfg.Clock.Now().UTC()
			e.rec.State, e.rec.Error, e.rec.FinishedAt = StateFailed, "resuming after a restart: "+err.Error(), &now
			m.saveLocked(e)
			e.endLocked()
			continue
		}
		e.rec.State = StateRunning
		e.logs.system(slog.LevelInfo, "resuming after a restart of the platform")
		m.startLocked(e, gen)
		m.saveLocked(e)
	}
	return nil
}

// checkpointsBehindSavepoint reports whether a job's retained checkpoints
// are older than the savepoint its generation starts from. A resumed job
// restores its newest retained checkpoint before that savepoint, which is
// right for checkpoints its generation took, but a process that stopped
// between an upgrade's stop-with-savepoint and the new generation's start
// (which deletes them) left the previous generation's behind: restoring
// one would repeat everything after it. Such a job starts from the
// savepoint instead, and the checkpoints are deleted as on any fresh start.
func (m *Manager) checkpointsBehindSavepoint(r *record) bool {
	if r.SavepointDir == "" {
		return false
	}
	md, err := checkpoint.ReadMetadata(m.ctx, m.cfg.Storage, r.SavepointDir)
	if err != nil {
		return false // the restore reports it
	}
	prefix, err := checkpoint.JobPrefix(r.Tenant, r.ID)
	if err != nil {
		return false
	}
	objs, err := m.cfg.Storage.List(m.ctx, prefix+"/checkpoints")
	if err != nil {
		return false
	}
	newest, found := int64(-1), false
	for _, o := range objs {
		dir, name := path.Split(o.Name)
		if name != checkpoint.MetadataName {
			continue
		}
		if id, ok := checkpoint.CheckpointID(path.Base(dir)); ok {
			newest, found = max(newest, id), true
		}
	}
	return found && newest < md.ID
}

// Metadata keys.
const (
	recordsPrefix = "jobs/"
)

func recordPrefix(tenant string) string    { return recordsPrefix + tenant + "/" }
func recordKey(tenant, id string) string   { return recordPrefix(tenant) + id }
func savepointPrefix(tenant string) string { return "savepoints/" + tenant + "/" }
func opPrefix(tenant string) string        { return "operations/" + tenant + "/" }
func opRequestPrefix(tenant string) string { return "operation-requests/" + tenant + "/" }

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func joinGraph(tasks []string) string {
	s := ""
	for i, t := range tasks {
		if i > 0 {
			s += ", "
		}
		s += t
	}
	return s
}

// savepointRecord is a savepoint of a tenant.
type savepointRecord struct {
	ID         string    `json:"id"`
	Job        string    `json:"job"`
	Checkpoint int64     `json:"checkpoint"`
	CreatedAt  time.Time `json:"created_at"`
	Size       int64     `json:"size"`
	Dir        string    `json:"path"` // storage folder
}

// Savepoint is a savepoint as the API shows it.
type Savepoint = savepointRecord

// recordSavepoint stores a completed savepoint.
func (m *Manager) recordSavepoint(ctx context.Context, tenant, job, id, dir string, md *checkpoint.Metadata) (Savepoint, error) {
	sp := Savepoint{ID: id, Job: job, Checkpoint: md.ID, CreatedAt: time.UnixMilli(md.CompletedAt).UTC(), Dir: dir}
	if objs, err := m.cfg.Storage.List(ctx, dir); err == nil {
		for _, o := range objs {
			sp.Size += o.Size
		}
	}
	b, err := json.Marshal(sp)
	if err != nil {
		return Savepoint{}, err
	}
	return sp, m.cfg.Meta.Commit(map[string][]byte{savepointPrefix(tenant) + id: b}, nil)
}

// savepoint returns a tenant's savepoint.
func (m *Manager) savepoint(tenant, id string) (Savepoint, error) {
	v, ok, err := m.cfg.Meta.Get(savepointPrefix(tenant) + id)
	if err != nil {
		return Savepoint{}, err
	}
	if !ok {
		return Savepoint{}, fmt.Errorf("savepoint %q: %w", id, ErrNotFound)
	}
	var sp Savepoint
	return sp, json.Unmarshal(v, &sp)
}

// Savepoint returns one savepoint of the tenant.
func (m *Manager) Savepoint(tenant, id string) (Savepoint, error) { return m.savepoint(tenant, id) }

// Savepoints lists a tenant's savepoints (of one job when job is not
// empty), newest first.
func (m *Manager) Savepoints(tenant, job string) ([]Savepoint, error) {
	var out []Savepoint
	err := m.cfg.Meta.Scan(savepointPrefix(tenant), func(k string, v []byte) error {
		var sp Savepoint
		if err := json.Unmarshal(v, &sp); err != nil {
			return fmt.Errorf("savepoint record %s: %w", k, err)
		}
		if job == "" || sp.Job == job {
			out = append(out, sp)
		}
		return nil
	})
	sortNewest(out, func(s Savepoint) (time.Time, string) { return s.CreatedAt, s.ID })
	return out, err
}

// DeleteSavepoint deletes a savepoint and its files. A savepoint the
// running generation of a job started from stays restorable: its files
// are what a restart before the first checkpoint falls back to, so that is
// refused.
func (m *Manager) DeleteSavepoint(ctx context.Context, tenant, id string) error {
	sp, err := m.savepoint(tenant, id)
	if err != nil {
		return err
	}
	m.mu.Lock()
	for _, e := range m.jobs {
		if e.rec.Tenant == tenant && !e.rec.State.terminal() && e.rec.Savepoint == id {
			m.mu.Unlock()
			return fmt.Errorf("savepoint %q: job %q started from it and is %s: %w", id, e.rec.ID, e.rec.State, ErrConflict)
		}
	}
	m.mu.Unlock()
	if err := m.cfg.Meta.Commit(nil, []string{savepointPrefix(tenant) + id}); err != nil {
		return err
	}
	return m.cfg.Storage.DeletePrefix(ctx, sp.Dir)
}

// Exceptions returns a job's failure history, newest first.
func (m *Manager) Exceptions(tenant, id string) ([]Exception, error) {
	e, err := m.entryOf(tenant, id)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	out := make([]Exception, len(e.rec.Exceptions))
	for i, x := range e.rec.Exceptions {
		out[len(out)-1-i] = x
	}
	m.mu.Unlock()
	return out, nil
}

// Checkpoints returns the stats of the current generation's recent
// checkpoints and savepoints, newest first.
func (m *Manager) Checkpoints(tenant, id string) ([]checkpoint.Stats, error) {
	e, err := m.entryOf(tenant, id)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	gen := e.gen
	m.mu.Unlock()
	if gen == nil {
		return nil, nil
	}
	h := gen.job.History()
	out := make([]checkpoint.Stats, len(h))
	for i := range h {
		out[len(h)-1-i] = h[i]
	}
	return out, nil
}

// Logs returns up to limit log lines (every kept line when limit <= 0) of
// a job after sequence number after (0: from the oldest kept), and the
// sequence number to continue from (0 when there are no more lines yet).
func (m *Manager) Logs(tenant, id string, after uint64, limit int) ([]LogLine, uint64, error) {
	e, err := m.entryOf(tenant, id)
	if err != nil {
		return nil, 0, err
	}
	lines, next := e.logs.page(after, limit)
	return lines, next, nil
}

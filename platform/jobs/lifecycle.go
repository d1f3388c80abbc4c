package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"time"

	"github.com/weirstream/weir/checkpoint"
	"github.com/weirstream/weir/runtime"
	"github.com/weirstream/weir/tenants"
)

// Operation is a long-running action on a job (savepoint, stop, upgrade,
// rescale). Clients poll it until Done.
type Operation struct {
	ID        string `json:"id"`
	Kind      string `json:"kind"`
	Job       string `json:"job"`
	Done      bool   `json:"done"`
	Error     string `json:"error,omitempty"`
	// RolledBack: an upgrade or rescale whose new generation failed to
	// start, and the previous one runs again.
	RolledBack bool            `json:"rolled_back,omitempty"`
	Result     json.RawMessage `json:"result,omitempty"`
	RequestID  string          `json:"request_id,omitempty"`
	CreatedAt  time.Time       `json:"created_at"`
	UpdatedAt  time.Time       `json:"updated_at"`
}

// Operation kinds.
const (
	OpSavepoint = "savepoint"
	OpStop      = "stop"
	OpUpgrade   = "upgrade"
	OpRescale   = "rescale"
)

type opEntry struct {
	tenant string
	op     Operation
}

// RequestIDError says a request id was used before for another operation.
type RequestIDError struct {
	RequestID string
	Existing  Operation
}

func (e *RequestIDError) Error() string {
	return fmt.Sprintf("request id %q was used for operation %s (%s of job %s)", e.RequestID, e.Existing.ID, e.Existing.Kind, e.Existing.Job)
}

// Cancel cancels a job and waits until its tasks stopped.
func (m *Manager) Cancel(tenant, id string) (Job, error) {
	e, err := m.entryOf(tenant, id)
	if err != nil {
		return Job{}, err
	}
	m.mu.Lock()
	if e.rec.State.terminal() {
		st := e.rec.State
		m.mu.Unlock()
		return Job{}, fmt.Errorf("job %q is already %s: %w", id, st, ErrConflict)
	}
	e.canceled = true
	gen := e.gen
	if gen == nil && e.busy == "" {
		m.finishLocked(e, nil, errCanceled)
	}
	m.mu.Unlock()
	if gen != nil {
		gen.cancel(errCanceled)
		<-gen.done
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return e.viewLocked(), nil
}

// finishLocked ends a job whose generation ended (or that has none): the
// state follows from how and why (m.mu held).
func (m *Manager) finishLocked(e *entry, gen *generation, err error) {
	stopping := false
	if gen != nil {
		gen.mu.Lock()
		stopping = gen.stopping
		gen.mu.Unlock()
	}
	switch {
	case e.canceled || errors.Is(err, errCanceled):
		e.rec.State = StateCanceled
	case err == nil && stopping:
		e.rec.State = StateStopped
	case err == nil:
		e.rec.State = StateFinished
	default:
		e.rec.State = StateFailed
		e.rec.Error = err.Error()
	}
	now := m.cfg.Clock.Now().UTC()
	e.rec.FinishedAt = &now
	e.rec.PrevModules = nil
	e.logs.system(slog.LevelInfo, fmt.Sprintf("job %s", e.rec.State))
	m.saveLocked(e)
}

// TriggerSavepoint starts a savepoint of a running job.
func (m *Manager) TriggerSavepoint(tenant, id, requestID string) (Operation, error) {
	return m.startOp(tenant, id, OpSavepoint, requestID, func(e *entry) error {
		if e.gen == nil || e.busy != "" {
			return m.notNowLocked(e)
		}
		return m.checkSavepointQuota(tenant)
	}, func(ctx context.Context, e *entry, op *Operation) error {
		m.mu.Lock()
		gen := e.gen
		m.mu.Unlock()
		if gen == nil {
			return fmt.Errorf("job %q is no longer running: %w", id, ErrConflict)
		}
		sp, err := m.takeSavepoint(ctx, e, gen, false)
		if err != nil {
			return err
		}
		op.Result, _ = json.Marshal(sp)
		return nil
	})
}

// Stop stops a job with a savepoint (Flink's stop-with-savepoint): sources
// stop, the savepoint completes, sinks commit, and the job ends "stopped".
func (m *Manager) Stop(tenant, id, requestID string) (Operation, error) {
	return m.startOp(tenant, id, OpStop, requestID, func(e *entry) error {
		if e.gen == nil || e.busy != "" {
			return m.notNowLocked(e)
		}
		if err := m.checkSavepointQuota(tenant); err != nil {
			return err
		}
		e.busy = OpStop
		return nil
	}, func(ctx context.Context, e *entry, op *Operation) error {
		m.mu.Lock()
		gen := e.gen
		m.mu.Unlock()
		sp, err := m.stopGeneration(ctx, e, gen)
		m.mu.Lock()
		defer m.mu.Unlock()
		e.busy = ""
		if err != nil {
			m.reconcileLocked(e, gen)
			return err
		}
		e.rec.StoppedWith = sp.ID
		m.finishLocked(e, gen, nil)
		op.Result, _ = json.Marshal(sp)
		return nil
	})
}

// UpgradeRequest names the new module versions of a job's modules.
type UpgradeRequest struct {
	Modules               map[string]string `json:"modules"` // alias -> reference
	AllowNonRestoredState bool              `json:"allow_non_restored_state"`
}

// Upgrade moves a job to other module versions through a savepoint, and
// rolls back if the new version fails to start.
func (m *Manager) Upgrade(tenant, id, requestID string, req UpgradeRequest) (Operation, error) {
	var next *runtime.JobSpec
	var modules map[string]PinnedModule
	return m.startOp(tenant, id, OpUpgrade, requestID, func(e *entry) error {
		if e.gen == nil || e.busy != "" {
			return m.notNowLocked(e)
		}
		if len(req.Modules) == 0 {
			return runtime.SpecErrors{{Field: "modules", Problem: "name at least one module alias to upgrade"}}
		}
		var spec runtime.JobSpec
		if err := json.Unmarshal(e.rec.Spec, &spec); err != nil {
			return err
		}
		modules = maps.Clone(e.rec.Modules)
		var errs runtime.SpecErrors
		for _, alias := range sortedKeys(req.Modules) {
			if _, ok := spec.Modules[alias]; !ok {
				errs = append(errs, &runtime.SpecError{Field: "modules." + alias, Problem: fmt.Sprintf("the job has no module %q (it has %v)", alias, sortedKeys(spec.Modules))})
				continue
			}
			p, err := m.cfg.Resolve(tenant, req.Modules[alias])
			if err != nil {
				errs = append(errs, &runtime.SpecError{Field: "modules." + alias, Problem: err.Error()})
				continue
			}
			modules[alias] = p
			spec.Modules[alias] = runtime.ModuleSpec{Ref: p.Pinned}
		}
		if len(errs) > 0 {
			return errs
		}
		if err := m.checkSavepointQuota(tenant); err != nil {
			return err
		}
		next = &spec
		e.busy = OpUpgrade
		e.rec.State = StateUpgrading
		m.saveLocked(e)
		return nil
	}, func(ctx context.Context, e *entry, op *Operation) error {
		return m.replace(ctx, e, op, next, modules, req.AllowNonRestoredState)
	})
}

// RescaleRequest sets a job's default parallelism and/or nodes'.
type RescaleRequest struct {
	Parallelism int            `json:"parallelism"`
	Nodes       map[string]int `json:"nodes"`
}

// Rescale restarts a job from a savepoint with other parallelism (state is
// redistributed by key group), rolling back if it fails to start.
func (m *Manager) Rescale(tenant, id, requestID string, req RescaleRequest) (Operation, error) {
	var next *runtime.JobSpec
	return m.startOp(tenant, id, OpRescale, requestID, func(e *entry) error {
		if e.gen == nil || e.busy != "" {
			return m.notNowLocked(e)
		}
		var spec runtime.JobSpec
		if err := json.Unmarshal(e.rec.Spec, &spec); err != nil {
			return err
		}
		var errs runtime.SpecErrors
		if req.Parallelism < 0 {
			errs = append(errs, &runtime.SpecError{Field: "parallelism", Problem: "must be positive"})
		}
		if req.Parallelism == 0 && len(req.Nodes) == 0 {
			errs = append(errs, &runtime.SpecError{Field: "parallelism", Problem: "give a parallelism or nodes' parallelism"})
		}
		if req.Parallelism > 0 {
			spec.Parallelism = req.Parallelism
		}
		for _, nid := range sortedKeys(req.Nodes) {
			found := false
			for i := range spec.Nodes {
				if spec.Nodes[i].ID == nid {
					spec.Nodes[i].Parallelism, found = req.Nodes[nid], true
				}
			}
			switch {
			case !found:
				errs = append(errs, &runtime.SpecError{Field: "nodes." + nid, Problem: "no such node"})
			case req.Nodes[nid] <= 0:
				errs = append(errs, &runtime.SpecError{Field: "nodes." + nid, Problem: "parallelism must be positive"})
			}
		}
		if len(errs) > 0 {
			return errs
		}
		q, err := m.cfg.Quotas(tenant)
		if err != nil {
			return err
		}
		if err := m.checkSlotsLocked(tenant, e.rec.ID, slotsOf(&spec), q); err != nil {
			return err
		}
		if err := m.checkSavepointQuota(tenant); err != nil {
			return err
		}
		next = &spec
		e.busy = OpRescale
		e.rec.State = StateRescaling
		e.rec.Slots = max(e.rec.Slots, slotsOf(&spec)) // hold the larger until it is settled
		m.saveLocked(e)
		return nil
	}, func(ctx context.Context, e *entry, op *Operation) error {
		return m.replace(ctx, e, op, next, nil, false)
	})
}

// replace stops the job's generation with a savepoint and starts next
// (with modules, when they change) from it; if next fails to start, the
// previous spec starts again from the same savepoint.
func (m *Manager) replace(ctx context.Context, e *entry, op *Operation, next *runtime.JobSpec, modules map[string]PinnedModule, allowNonRestored bool) error {
	m.mu.Lock()
	old := e.gen
	prev := e.rec
	m.mu.Unlock()
	sp, err := m.stopGeneration(ctx, e, old)
	if err != nil {
		m.mu.Lock()
		e.busy = ""
		e.rec.State, e.rec.Slots = StateRunning, prev.Slots
		m.reconcileLocked(e, old)
		m.mu.Unlock()
		return err
	}
	op.Result, _ = json.Marshal(map[string]string{"savepoint": sp.ID})

	m.mu.Lock()
	e.rec.Savepoint, e.rec.SavepointDir, e.rec.AllowNonRestored = sp.ID, sp.Dir, allowNonRestored
	if modules != nil {
		e.rec.PrevModules = prev.Modules
	}
	m.mu.Unlock()
	startErr := m.startFrom(ctx, e, next, modules)
	if startErr == nil {
		m.mu.Lock()
		e.busy = ""
		e.rec.PrevModules = nil
		e.rec.Slots = slotsOf(next)
		if e.gen == nil && !e.rec.State.terminal() {
			m.finishLocked(e, nil, nil) // a bounded job may finish within the grace period
		}
		m.saveLocked(e)
		m.mu.Unlock()
		return nil
	}
	// Roll back: the savepoint was taken from the previous spec, so it
	// restores into it.
	e.logs.system(slog.LevelWarn, fmt.Sprintf("%s failed, rolling back: %v", op.Kind, startErr))
	var prevSpec runtime.JobSpec
	_ = json.Unmarshal(prev.Spec, &prevSpec)
	m.mu.Lock()
	e.rec.AllowNonRestored = false
	m.mu.Unlock()
	rbErr := m.startFrom(ctx, e, &prevSpec, prev.Modules)
	m.mu.Lock()
	defer m.mu.Unlock()
	e.busy = ""
	e.rec.PrevModules = nil
	e.rec.Slots = prev.Slots
	if rbErr != nil {
		if e.gen == nil && !e.rec.State.terminal() {
			m.finishLocked(e, nil, fmt.Errorf("%s failed (%v) and rolling back failed: %w", op.Kind, startErr, rbErr))
		}
		return fmt.Errorf("the new %s failed to start: %v; rolling back failed too: %w", genWhat(op.Kind), startErr, rbErr)
	}
	if e.gen == nil && !e.rec.State.terminal() {
		m.finishLocked(e, nil, nil)
	}
	m.saveLocked(e)
	op.RolledBack = true
	return fmt.Errorf("the new %s failed to start and the job runs the previous one again: %w", genWhat(op.Kind), startErr)
}

func genWhat(kind string) string {
	if kind == OpRescale {
		return "parallelism"
	}
	return "module version"
}

// errNotStarted cancels a generation that failed to start.
var errNotStarted = errors.New("the generation failed to start")

// startFrom starts spec from the record's savepoint and waits until it
// has run UpgradeGrace without failing (or ended by itself without error).
func (m *Manager) startFrom(ctx context.Context, e *entry, spec *runtime.JobSpec, modules map[string]PinnedModule) error {
	m.mu.Lock()
	canceled := e.canceled
	m.mu.Unlock()
	if canceled {
		return errCanceled
	}
	gen, err := m.compile(e, spec, true, false)
	if err != nil {
		return err
	}
	m.mu.Lock()
	if e.canceled {
		m.mu.Unlock()
		return errCanceled
	}
	if e.rec.Spec, err = json.Marshal(spec); err != nil {
		m.mu.Unlock()
		return err
	}
	if modules != nil {
		e.rec.Modules = modules
	}
	m.startLocked(e, gen)
	m.saveLocked(e)
	m.mu.Unlock()

	fail := func(err error) error {
		gen.cancel(errNotStarted)
		<-gen.done
		m.mu.Lock()
		if e.gen == gen {
			e.gen = nil
		}
		m.mu.Unlock()
		return err
	}
	select {
	case err := <-gen.failed:
		return fail(err)
	case <-gen.done:
		if gen.err != nil {
			return fail(gen.err)
		}
		return nil
	case <-ctx.Done():
		return fail(ctx.Err())
	case <-gen.started:
	}
	grace := m.cfg.Clock.After(m.cfg.UpgradeGrace)
	select {
	case err := <-gen.failed:
		return fail(err)
	case <-gen.done:
		if gen.err != nil {
			return fail(gen.err)
		}
		return nil
	case <-ctx.Done():
		return fail(ctx.Err())
	case <-grace:
		return nil
	}
}

// stopGeneration takes a stop-with-savepoint of gen and waits until its
// run ended.
func (m *Manager) stopGeneration(ctx context.Context, e *entry, gen *generation) (Savepoint, error) {
	if gen == nil {
		return Savepoint{}, fmt.Errorf("job %q is not running: %w", e.rec.ID, ErrConflict)
	}
	sp, err := m.takeSavepoint(ctx, e, gen, true)
	if err != nil {
		return Savepoint{}, err
	}
	select {
	case <-gen.done:
	case <-ctx.Done():
		return Savepoint{}, ctx.Err()
	}
	if gen.err != nil {
		return Savepoint{}, fmt.Errorf("the job failed while stopping: %w", gen.err)
	}
	return sp, nil
}

// takeSavepoint takes a savepoint of gen (stopping it, for stop) and
// records it.
func (m *Manager) takeSavepoint(ctx context.Context, e *entry, gen *generation, stop bool) (Savepoint, error) {
	id := newID("sp")
	dir, err := checkpoint.SavepointDir(e.rec.Tenant, e.rec.ID, id)
	if err != nil {
		return Savepoint{}, err
	}
	take := gen.job.Savepoint
	if stop {
		gen.mu.Lock()
		gen.stopping = true
		gen.mu.Unlock()
		take = gen.job.StopWithSavepoint
	}
	md, _, err := take(ctx, dir)
	if err != nil {
		if stop {
			gen.mu.Lock()
			gen.stopping = false
			gen.mu.Unlock()
		}
		return Savepoint{}, fmt.Errorf("savepoint: %w", err)
	}
	return m.recordSavepoint(ctx, e.rec.Tenant, e.rec.ID, id, dir, md)
}

// reconcileLocked settles a job after a failed operation: if its
// generation ended meanwhile, the job ends as the generation did.
func (m *Manager) reconcileLocked(e *entry, gen *generation) {
	if e.rec.State == StateUpgrading || e.rec.State == StateRescaling {
		e.rec.State = StateRunning
	}
	if gen != nil {
		select {
		case <-gen.done:
			if e.gen == gen || e.gen == nil {
				e.gen = nil
				m.finishLocked(e, gen, gen.err)
				return
			}
		default:
		}
	}
	if e.canceled && e.gen == nil && !e.rec.State.terminal() {
		m.finishLocked(e, nil, errCanceled)
		return
	}
	m.saveLocked(e)
}

func (m *Manager) notNowLocked(e *entry) error {
	if e.busy != "" {
		return fmt.Errorf("job %q is busy with an %s: %w", e.rec.ID, e.busy, ErrConflict)
	}
	return fmt.Errorf("job %q is %s: %w", e.rec.ID, e.rec.State, ErrConflict)
}

func (m *Manager) checkSavepointQuota(tenant string) error {
	q, err := m.cfg.Quotas(tenant)
	if err != nil {
		return err
	}
	sps, err := m.Savepoints(tenant, "")
	if err != nil {
		return err
	}
	return tenants.Check("savepoints", int64(q.Savepoints), int64(len(sps)), 1)
}

// startOp returns the operation of an earlier request with the same id, or
// checks the job (check runs under m.mu and may claim it) and runs work in
// the background.
func (m *Manager) startOp(tenant, jobID, kind, requestID string, check func(*entry) error, work func(context.Context, *entry, *Operation) error) (Operation, error) {
	e, err := m.entryOf(tenant, jobID)
	if err != nil {
		return Operation{}, err
	}
	m.mu.Lock()
	if requestID != "" {
		if id, ok, err := m.cfg.Meta.Get(opRequestPrefix(tenant) + requestID); err != nil {
			m.mu.Unlock()
			return Operation{}, err
		} else if ok {
			o := m.ops[key(tenant, string(id))]
			m.mu.Unlock()
			if o == nil {
				return Operation{}, fmt.Errorf("operation %s of request %q: %w", id, requestID, ErrNotFound)
			}
			if o.op.Kind != kind || o.op.Job != jobID {
				return Operation{}, &RequestIDError{RequestID: requestID, Existing: o.op}
			}
			return o.op, nil
		}
	}
	if err := check(e); err != nil {
		m.mu.Unlock()
		return Operation{}, err
	}
	now := m.cfg.Clock.Now().UTC()
	o := &opEntry{tenant: tenant, op: Operation{ID: newID("op"), Kind: kind, Job: jobID, RequestID: requestID, CreatedAt: now, UpdatedAt: now}}
	if err := m.saveOpLocked(o, true); err != nil {
		e.busy = ""
		m.mu.Unlock()
		return Operation{}, err
	}
	m.ops[key(tenant, o.op.ID)] = o
	view := o.op
	m.mu.Unlock()
	e.logs.system(slog.LevelInfo, fmt.Sprintf("%s requested (operation %s)", kind, o.op.ID))
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		op := view
		err := work(m.ctx, e, &op)
		if m.ctx.Err() != nil {
			return // closing: the next process marks it interrupted
		}
		op.Done, op.UpdatedAt = true, m.cfg.Clock.Now().UTC()
		if err != nil {
			op.Error = err.Error()
			e.logs.system(slog.LevelError, fmt.Sprintf("%s failed: %v", kind, err))
		} else {
			e.logs.system(slog.LevelInfo, fmt.Sprintf("%s done", kind))
		}
		m.mu.Lock()
		o.op = op
		if err := m.saveOpLocked(o, false); err != nil {
			m.cfg.Logger.Error("saving operation", "operation", op.ID, "err", err)
		}
		m.mu.Unlock()
	}()
	return view, nil
}

func (m *Manager) saveOpLocked(o *opEntry, withRequest bool) error {
	b, err := json.Marshal(o.op)
	if err != nil {
		return err
	}
	puts := map[string][]byte{opPrefix(o.tenant) + o.op.ID: b}
	if withRequest && o.op.RequestID != "" {
		puts[opRequestPrefix(o.tenant)+o.op.RequestID] = []byte(o.op.ID)
	}
	return m.cfg.Meta.Commit(puts, nil)
}

// loadOps reads the operations; ones a previous process left unfinished
// are marked interrupted.
func (m *Manager) loadOps() error {
	return m.cfg.Meta.Scan("operations/", func(k string, v []byte) error {
		var op Operation
		if err := json.Unmarshal(v, &op); err != nil {
			return fmt.Errorf("operation record %s: %w", k, err)
		}
		tenant := k[len("operations/"):]
		tenant = tenant[:len(tenant)-len(op.ID)-1]
		o := &opEntry{tenant: tenant, op: op}
		if !op.Done {
			o.op.Done, o.op.Error = true, "interrupted by a restart of the platform"
			if err := m.saveOpLocked(o, false); err != nil {
				return err
			}
		}
		m.ops[key(tenant, op.ID)] = o
		return nil
	})
}

// Operation returns a tenant's operation.
func (m *Manager) Operation(tenant, id string) (Operation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o := m.ops[key(tenant, id)]
	if o == nil {
		return Operation{}, fmt.Errorf("operation %q: %w", id, ErrNotFound)
	}
	return o.op, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortNewest[T any](s []T, by func(T) (time.Time, string)) {
	sort.Slice(s, func(i, j int) bool {
		ti, ii := by(s[i])
		tj, ij := by(s[j])
		if !ti.Equal(tj) {
			return ti.After(tj)
		}
		return ii > ij
	})
}

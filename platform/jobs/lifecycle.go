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
	ID    string `json:"id"`
	Kind  string `json:"kind"`
	Job   string `json:"job"`
	Done  bool   `json:"done"`
	Error string `json:"error,omitempty"`
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

// Cancel cancels a job and waits until it is over: the Job it returns is
// canceled and holds no slots. A lifecycle operation in progress (stop,
// upgrade, rescale) gives up and fails.
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
	}
	// The generation's end, or the operation that owns the job, ends it.
	select {
	case <-e.ended:
	case <-m.ctx.Done():
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return e.viewLocked(), nil
}

// finishLocked ends a job whose generation ended (or that has none): the
// state follows from how and why (m.mu held). A job that is over already
// stays as it is.
func (m *Manager) finishLocked(e *entry, gen *generation, err error) {
	if e.rec.State.terminal() {
		return
	}
	if err != nil && !e.canceled && !errors.Is(err, errCanceled) && m.ctx.Err() != nil {
		// The failure is the manager's Close (an operation's generation
		// was cancelled by it): the next process resumes the job.
		return
	}
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
	if e.gen == gen {
		e.gen = nil
	}
	now := m.cfg.Clock.Now().UTC()
	e.rec.FinishedAt = &now
	e.rec.PrevModules = nil
	e.next = nil
	e.logs.system(slog.LevelInfo, fmt.Sprintf("job %s", e.rec.State))
	m.saveLocked(e)
	e.endLocked()
}

// TriggerSavepoint starts a savepoint of a running job.
func (m *Manager) TriggerSavepoint(tenant, id, requestID string) (Operation, error) {
	return m.startOp(tenant, id, OpSavepoint, requestID, func(e *entry) (func(), error) {
		if e.gen == nil || e.busy != "" {
			return nil, m.notNowLocked(e)
		}
		return nil, m.checkSavepointQuotaLocked(tenant)
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
	var gen *generation
	return m.startOp(tenant, id, OpStop, requestID, func(e *entry) (func(), error) {
		if e.gen == nil || e.busy != "" {
			return nil, m.notNowLocked(e)
		}
		if err := m.checkSavepointQuotaLocked(tenant); err != nil {
			return nil, err
		}
		// The generation is the one asked about: if it ends before the
		// work starts, the work must see that, not find none.
		gen = e.gen
		return func() { e.busy = OpStop }, nil
	}, func(ctx context.Context, e *entry, op *Operation) error {
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
	var gen *generation
	return m.startOp(tenant, id, OpUpgrade, requestID, func(e *entry) (func(), error) {
		if e.gen == nil || e.busy != "" {
			return nil, m.notNowLocked(e)
		}
		if len(req.Modules) == 0 {
			return nil, runtime.SpecErrors{{Field: "modules", Problem: "name at least one module alias to upgrade"}}
		}
		var spec runtime.JobSpec
		if err := json.Unmarshal(e.rec.Spec, &spec); err != nil {
			return nil, err
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
			return nil, errs
		}
		if err := m.checkSavepointQuotaLocked(tenant); err != nil {
			return nil, err
		}
		next, gen = &spec, e.gen
		return func() {
			e.busy, e.next = OpUpgrade, modules
			e.rec.State = StateUpgrading
			m.saveLocked(e)
		}, nil
	}, func(ctx context.Context, e *entry, op *Operation) error {
		return m.replace(ctx, e, op, gen, next, modules, req.AllowNonRestoredState)
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
	var gen *generation
	return m.startOp(tenant, id, OpRescale, requestID, func(e *entry) (func(), error) {
		if e.gen == nil || e.busy != "" {
			return nil, m.notNowLocked(e)
		}
		var spec runtime.JobSpec
		if err := json.Unmarshal(e.rec.Spec, &spec); err != nil {
			return nil, err
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
			return nil, errs
		}
		q, err := m.cfg.Quotas(tenant)
		if err != nil {
			return nil, err
		}
		if err := m.checkSlotsLocked(tenant, e.rec.ID, slotsOf(&spec), q); err != nil {
			return nil, err
		}
		if err := m.checkSavepointQuotaLocked(tenant); err != nil {
			return nil, err
		}
		next, gen = &spec, e.gen
		return func() {
			e.busy = OpRescale
			e.rec.State = StateRescaling
			e.rec.Slots = max(e.rec.Slots, slotsOf(&spec)) // hold the larger until it is settled
			m.saveLocked(e)
		}, nil
	}, func(ctx context.Context, e *entry, op *Operation) error {
		return m.replace(ctx, e, op, gen, next, nil, false)
	})
}

// replace stops the job's generation old with a savepoint and starts next
// (with modules, when they change) from it; if next fails to start, the
// previous spec starts again from the same savepoint.
func (m *Manager) replace(ctx context.Context, e *entry, op *Operation, old *generation, next *runtime.JobSpec, modules map[string]PinnedModule, allowNonRestored bool) error {
	// release ends the operation's hold on the job (m.mu held); handBack
	// also settles it: the job runs gen, or ended meanwhile as gen did.
	release := func(slots int) { e.busy, e.next, e.rec.PrevModules, e.rec.Slots = "", nil, nil, slots }
	handBack := func(gen *generation, slots int) {
		release(slots)
		m.reconcileLocked(e, gen)
	}
	m.mu.Lock()
	prev := e.rec
	var prevSpec runtime.JobSpec
	if err := json.Unmarshal(prev.Spec, &prevSpec); err != nil {
		handBack(old, prev.Slots)
		m.mu.Unlock()
		return fmt.Errorf("job %q: its spec: %w", prev.ID, err)
	}
	m.mu.Unlock()
	// The slots the previous spec needs: a rescale raised the record's to
	// the larger of both while it is in progress.
	prevSlots := slotsOf(&prevSpec)

	sp, err := m.stopGeneration(ctx, e, old)
	if err != nil {
		m.mu.Lock()
		handBack(old, prevSlots)
		m.mu.Unlock()
		return err
	}
	op.Result, _ = json.Marshal(map[string]string{"savepoint": sp.ID})

	m.mu.Lock()
	e.rec.Savepoint, e.rec.SavepointDir, e.rec.AllowNonRestored = sp.ID, sp.Dir, allowNonRestored
	if modules != nil {
		e.rec.PrevModules = prev.Modules
	}
	// Durable at once: a process that stops now resumes from the savepoint.
	m.saveLocked(e)
	m.mu.Unlock()
	gen, startErr := m.startFrom(ctx, e, next, modules)
	if startErr == nil {
		m.mu.Lock()
		defer m.mu.Unlock()
		handBack(gen, slotsOf(next))
		return nil
	}
	if errors.Is(startErr, errCanceled) {
		m.mu.Lock()
		defer m.mu.Unlock()
		handBack(nil, prevSlots)
		return fmt.Errorf("the job was canceled during the %s", op.Kind)
	}
	// Roll back: the savepoint was taken from the previous spec, so it
	// restores into it.
	e.logs.system(slog.LevelWarn, fmt.Sprintf("%s failed, rolling back: %v", op.Kind, startErr))
	m.mu.Lock()
	e.rec.AllowNonRestored = false
	m.mu.Unlock()
	gen, rbErr := m.startFrom(ctx, e, &prevSpec, prev.Modules)
	m.mu.Lock()
	defer m.mu.Unlock()
	if rbErr != nil {
		// Nothing runs: the job ends (canceled, when that is why).
		release(prevSlots)
		m.finishLocked(e, nil, fmt.Errorf("%s failed (%v) and rolling back failed: %w", op.Kind, startErr, rbErr))
		if errors.Is(rbErr, errCanceled) {
			return fmt.Errorf("the new %s failed to start (%v) and the job was canceled during the rollback", genWhat(op.Kind), startErr)
		}
		return fmt.Errorf("the new %s failed to start: %v; rolling back failed too: %w", genWhat(op.Kind), startErr, rbErr)
	}
	handBack(gen, prevSlots)
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
// It returns the generation it started; on an error none runs.
func (m *Manager) startFrom(ctx context.Context, e *entry, spec *runtime.JobSpec, modules map[string]PinnedModule) (*generation, error) {
	m.mu.Lock()
	canceled := e.canceled
	m.mu.Unlock()
	if canceled {
		return nil, errCanceled
	}
	// The record keeps the spec as given: Compile fills in defaults (the
	// nodes' parallelism, partitioning) and the state directory, which a
	// later rescale or upgrade must not find fixed.
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	gen, err := m.compile(e, spec, true, false)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	if e.canceled {
		m.mu.Unlock()
		return nil, errCanceled
	}
	e.rec.Spec = specJSON
	if modules != nil {
		e.rec.Modules = modules
	}
	m.startLocked(e, gen)
	m.saveLocked(e)
	m.mu.Unlock()

	fail := func(err error) (*generation, error) {
		gen.cancel(errNotStarted)
		<-gen.done
		m.mu.Lock()
		if e.gen == gen {
			e.gen = nil
		}
		m.mu.Unlock()
		if gen.err != nil && errors.Is(gen.err, errCanceled) {
			return nil, errCanceled
		}
		return nil, err
	}
	started := gen.started
	var grace <-chan time.Time // armed when the tasks run
	for {
		select {
		case err := <-gen.failed:
			return fail(err)
		case <-gen.done:
			if gen.err != nil {
				return fail(gen.err)
			}
			return gen, nil // a bounded job may finish within the grace period
		case <-ctx.Done():
			return fail(ctx.Err())
		case <-started:
			started = nil // seen: now the grace period
			grace = m.cfg.Clock.After(m.cfg.UpgradeGrace)
		case <-grace:
			return gen, nil
		}
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

// errGenerationEnded ends the wait for a savepoint of a generation that is
// over.
var errGenerationEnded = errors.New("the job ended before the savepoint completed")

// takeSavepoint takes a savepoint of gen (stopping it, for stop) and
// records it.
func (m *Manager) takeSavepoint(ctx context.Context, e *entry, gen *generation, stop bool) (Savepoint, error) {
	id := newID("sp")
	dir, err := checkpoint.SavepointDir(e.rec.Tenant, e.rec.ID, id)
	if err != nil {
		return Savepoint{}, err
	}
	// The coordinator aborts a pending savepoint when a task fails, but
	// not when the job ends otherwise (cancelled, or its bounded input
	// done): the wait ends with the generation.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-gen.done:
			cancel(errGenerationEnded)
		case <-ctx.Done():
		}
	}()
	// A savepoint needs running tasks: one asked for right after a deploy
	// waits for them instead of being aborted by the coordinator.
	select {
	case <-gen.started:
	case <-ctx.Done():
		return Savepoint{}, fmt.Errorf("savepoint: the job ended before its tasks started: %w", context.Cause(ctx))
	}
	take := gen.job.Savepoint
	if stop {
		gen.mu.Lock()
		gen.stopping = true
		gen.mu.Unlock()
		take = gen.job.StopWithSavepoint
	}
	md, _, err := take(ctx, dir)
	if err != nil && errors.Is(context.Cause(ctx), errGenerationEnded) {
		// A stop ends the generation as soon as its savepoint completed:
		// the wait may have seen the end first.
		if done, rerr := checkpoint.ReadMetadata(context.WithoutCancel(ctx), m.cfg.Storage, dir); rerr == nil {
			md, err = done, nil
		}
	}
	if err != nil {
		if stop {
			gen.mu.Lock()
			gen.stopping = false
			gen.mu.Unlock()
		}
		return Savepoint{}, fmt.Errorf("savepoint: %w", err)
	}
	return m.recordSavepoint(context.WithoutCancel(ctx), e.rec.Tenant, e.rec.ID, id, dir, md)
}

// reconcileLocked hands a job back after an operation: its state is
// running again, unless its generation ended meanwhile (then the job ends
// as the generation did) or it was cancelled.
func (m *Manager) reconcileLocked(e *entry, gen *generation) {
	if e.rec.State.terminal() {
		return
	}
	if e.rec.State == StateUpgrading || e.rec.State == StateRescaling {
		e.rec.State = StateRunning
	}
	if gen != nil {
		select {
		case <-gen.done:
			if e.gen == gen || e.gen == nil {
				m.finishLocked(e, gen, gen.err)
				return
			}
		default:
		}
	}
	if e.gen == nil {
		// No generation runs and none will: an operation that gave up
		// after its generation had ended.
		err := errCanceled
		if !e.canceled {
			err = errors.New("the job has no running generation after an operation")
		}
		m.finishLocked(e, nil, err)
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

// takesSavepoint: the operation kinds that end with a new savepoint.
func takesSavepoint(kind string) bool {
	switch kind {
	case OpSavepoint, OpStop, OpUpgrade, OpRescale:
		return true
	}
	return false
}

// checkSavepointQuotaLocked checks that the tenant may keep one more
// savepoint: the ones it has and the ones operations in progress will
// make (m.mu held).
func (m *Manager) checkSavepointQuotaLocked(tenant string) error {
	q, err := m.cfg.Quotas(tenant)
	if err != nil {
		return err
	}
	sps, err := m.Savepoints(tenant, "")
	if err != nil {
		return err
	}
	used := len(sps)
	for _, o := range m.ops {
		if o.tenant == tenant && !o.op.Done && takesSavepoint(o.op.Kind) {
			used++
		}
	}
	return tenants.Check(tenants.QuotaSavepoints, int64(q.Savepoints), int64(used), 1)
}

// startOp returns the operation of an earlier request with the same id, or
// checks the job and runs work in the background. check runs under m.mu;
// the claim it returns (if any) runs under m.mu once the operation is
// stored, so that a refused request changes nothing.
func (m *Manager) startOp(tenant, jobID, kind, requestID string, check func(*entry) (func(), error), work func(context.Context, *entry, *Operation) error) (Operation, error) {
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
	claim, err := check(e)
	if err != nil {
		m.mu.Unlock()
		return Operation{}, err
	}
	now := m.cfg.Clock.Now().UTC()
	o := &opEntry{tenant: tenant, op: Operation{ID: newID("op"), Kind: kind, Job: jobID, RequestID: requestID, CreatedAt: now, UpdatedAt: now}}
	if err := m.saveOpLocked(o, true); err != nil {
		m.mu.Unlock()
		return Operation{}, err
	}
	m.ops[key(tenant, o.op.ID)] = o
	if claim != nil {
		claim()
	}
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

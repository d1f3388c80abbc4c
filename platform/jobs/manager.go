package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/weirstream/weir/checkpoint"
	"github.com/weirstream/weir/connectors"
	"github.com/weirstream/weir/platform/meta"
	"github.com/weirstream/weir/runtime"
	"github.com/weirstream/weir/runtime/clock"
	"github.com/weirstream/weir/tenants"
)

// Errors the API maps to problems. They are wrapped with what was looked up.
var (
	// ErrNotFound: no such job, savepoint or operation in the tenant.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the operation does not fit the job's state (cancelling
	// a finished job, upgrading a job that is already upgrading).
	ErrConflict = errors.New("conflict")
)

// MinRestartDelay is the shortest restart delay a tenant's job may ask for
// (the engine's default, 1s, is also Flink's).
const MinRestartDelay = time.Second

// CapacityError says the platform lacks the free slots a job needs.
type CapacityError struct {
	Needed, Free int
}

func (e *CapacityError) Error() string {
	return fmt.Sprintf("the job needs %d slots and %d are free", e.Needed, e.Free)
}

// PinnedModule is a module reference resolved to one immutable version.
type PinnedModule struct {
	Ref    string `json:"ref"`    // as the spec gave it
	Pinned string `json:"pinned"` // name@version
	Digest string `json:"digest"` // sha256:<hex>
}

// Config configures a Manager.
type Config struct {
	// DataDir holds Pebble state (<DataDir>/state/<tenant>/<job>) and the
	// tenants' file areas (<DataDir>/files/<tenant>).
	DataDir string
	// Storage holds checkpoints and savepoints.
	Storage checkpoint.Storage
	Meta    *meta.Store
	// Resolve pins a module reference of a tenant.
	Resolve func(tenant, ref string) (PinnedModule, error)
	// Loader returns the module loader of a tenant's jobs (it loads
	// ModuleSpec.Ref).
	Loader func(tenant string) runtime.ModuleLoader
	// Quotas returns a tenant's quotas (an unknown tenant is an error).
	Quotas func(tenant string) (tenants.Quotas, error)
	// Slots this process offers (default 16).
	Slots int
	// Capacity, if set, returns the slots the cluster's live workers offer
	// now; it replaces Slots.
	Capacity func() int
	// Cluster, if set, returns where a job's tasks run (the coordinator's
	// workers); nil runs them in this process.
	Cluster func(tenant, job string) runtime.Cluster
	// UpgradeGrace is how long a new generation must run without a
	// failure for an upgrade or rescale to count as started (default 10s).
	UpgradeGrace time.Duration
	// KafkaBrokers are the Kafka bootstrap brokers (host:port) tenants'
	// jobs may name; none: the kafka connectors are refused, so that a
	// tenant's job cannot make this process connect to arbitrary hosts.
	KafkaBrokers []string
	// LogLines kept per job (default 10000).
	LogLines int
	Clock    clock.Clock
	Logger   *slog.Logger
}

// Manager runs the jobs of every tenant. It is safe for concurrent use.
type Manager struct {
	cfg Config
	ctx context.Context
	// stop cancels every generation when the manager closes; jobs stay
	// "running" in the store so that the next process resumes them.
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu   sync.Mutex
	jobs map[string]*entry // tenant + "/" + id
	// deleting marks tenants being deleted: deploys are refused until the
	// deletion ends (checked under mu, where deploys commit).
	deleting map[string]bool
	ops      map[string]*opEntry
}

// New opens the manager and resumes the jobs that were running when the
// previous process stopped.
func New(cfg Config) (*Manager, error) {
	if cfg.Storage == nil || cfg.Meta == nil || cfg.Resolve == nil || cfg.Loader == nil || cfg.Quotas == nil {
		return nil, errors.New("jobs: Config needs Storage, Meta, Resolve, Loader and Quotas")
	}
	if cfg.Slots <= 0 {
		cfg.Slots = 16
	}
	if cfg.UpgradeGrace <= 0 {
		cfg.UpgradeGrace = 10 * time.Second
	}
	if cfg.LogLines <= 0 {
		cfg.LogLines = 10000
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, stop := context.WithCancel(context.Background())
	m := &Manager{cfg: cfg, ctx: ctx, stop: stop, jobs: map[string]*entry{}, ops: map[string]*opEntry{}, deleting: map[string]bool{}}
	if err := m.load(); err != nil {
		stop()
		return nil, err
	}
	return m, nil
}

// Close stops every running generation without changing the jobs' records:
// a new Manager on the same store resumes them.
func (m *Manager) Close() {
	m.stop()
	m.wg.Wait()
}

// DeployRequest is a job to deploy.
type DeployRequest struct {
	// Spec is the job spec, YAML or JSON.
	Spec []byte
	// FromSavepoint starts the job from a savepoint of the tenant (its id).
	FromSavepoint         string
	AllowNonRestoredState bool
}

// Deploy validates, compiles and starts a job.
func (m *Manager) Deploy(tenant string, req DeployRequest) (Job, error) {
	q, err := m.cfg.Quotas(tenant)
	if err != nil {
		return Job{}, err
	}
	spec, err := runtime.ParseSpec(req.Spec)
	if err != nil {
		return Job{}, err
	}
	pinned, err := m.prepare(tenant, spec, q)
	if err != nil {
		return Job{}, err
	}
	var from *savepointRecord
	if req.FromSavepoint != "" {
		sp, err := m.savepoint(tenant, req.FromSavepoint)
		if err != nil {
			return Job{}, err
		}
		from = &sp
	}
	id := newID("j")
	now := m.cfg.Clock.Now().UTC()
	e := newEntry(record{
		ID: id, Tenant: tenant, Name: spec.Name, Modules: pinned, State: StateRunning,
		Slots: slotsOf(spec), CreatedAt: now, UpdatedAt: now, AllowNonRestored: req.AllowNonRestoredState,
	}, newLogRing(m.cfg.LogLines, m.cfg.Clock))
	if from != nil {
		e.rec.Savepoint = from.ID
		e.rec.SavepointDir = from.Dir
	}
	if e.rec.Spec, err = json.Marshal(spec); err != nil {
		return Job{}, err
	}
	m.mu.Lock()
	err = m.checkSlotsLocked(tenant, "", e.rec.Slots, q)
	m.mu.Unlock()
	if err != nil {
		return Job{}, err
	}
	// Compiling loads and instantiates-checks modules: not under the lock.
	gen, err := m.compile(e, spec, from != nil, false)
	if err != nil {
		return Job{}, err
	}
	e.rec.Name = spec.Name // with the engine's default
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.deleting[tenant] {
		return Job{}, fmt.Errorf("tenant %q is being deleted: %w", tenant, ErrConflict)
	}
	if err := m.checkSlotsLocked(tenant, "", e.rec.Slots, q); err != nil {
		return Job{}, err
	}
	// Stored as it will run (startLocked numbers the generation), before
	// it runs: nothing is half-created.
	rec := e.rec
	rec.Generation++
	if err := m.putRecord(&rec); err != nil {
		return Job{}, err
	}
	m.jobs[key(tenant, id)] = e
	m.startLocked(e, gen)
	return e.viewLocked(), nil
}

// prepare applies the platform's rules to a parsed spec: placement fields
// are the platform's, modules are pinned, sandbox limits and retention come
// from the quotas. Problems are SpecErrors or quota errors.
func (m *Manager) prepare(tenant string, spec *runtime.JobSpec, q tenants.Quotas) (map[string]PinnedModule, error) {
	var errs runtime.SpecErrors
	add := func(field, problem string) { errs = append(errs, &runtime.SpecError{Field: field, Problem: problem}) }
	if spec.Checkpoints.Storage != "" {
		add("checkpoints.storage", "is chosen by the platform; leave it empty")
	}
	if spec.State.Dir != "" {
		add("state.dir", "is chosen by the platform; leave it empty")
	}
	// A job that fails at once and restarts at once spins: its guest burns
	// a core for up to call_timeout per attempt, taken from other tenants.
	if d := time.Duration(spec.Restart.Delay); d != 0 && d < MinRestartDelay && spec.Restart.Strategy != runtime.RestartNone {
		add("restart.delay", fmt.Sprintf("must be at least %v on the platform, got %v", MinRestartDelay, d))
	}
	pinned := map[string]PinnedModule{}
	names := make([]string, 0, len(spec.Modules))
	for name := range spec.Modules {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		ms := spec.Modules[name]
		if ms.Path != "" {
			add("modules."+name+".path", "the platform runs uploaded modules only: upload the module and give its reference (name@version)")
			continue
		}
		if ms.Ref == "" {
			continue // the engine's validation names it
		}
		p, err := m.cfg.Resolve(tenant, ms.Ref)
		if err != nil {
			add("modules."+name+".ref", err.Error())
			continue
		}
		pinned[name] = p
		spec.Modules[name] = runtime.ModuleSpec{Ref: p.Pinned}
	}
	if len(errs) > 0 {
		// With the engine's structural problems, so that one answer names
		// every problem it can.
		seen := map[string]bool{}
		for _, e := range errs {
			seen[e.Field] = true
		}
		for _, e := range spec.Validate() {
			if !seen[e.Field] {
				errs = append(errs, e)
			}
		}
		return nil, errs
	}
	// Sandbox limits: the quota is the default and the ceiling.
	if spec.Limits.MemoryPages == 0 {
		spec.Limits.MemoryPages = q.MemoryPages
	} else if err := tenants.Check("memory_pages", int64(q.MemoryPages), 0, int64(spec.Limits.MemoryPages)); err != nil {
		return nil, err
	}
	if spec.Limits.CallTimeout == 0 {
		spec.Limits.CallTimeout = runtime.Duration(q.CallTimeout)
	} else if time.Duration(spec.Limits.CallTimeout) > time.Duration(q.CallTimeout) {
		return nil, &tenants.QuotaError{Quota: "call_timeout", Limit: int64(time.Duration(q.CallTimeout)), Requested: int64(spec.Limits.CallTimeout)}
	}
	if spec.Checkpoints.Retain == 0 {
		spec.Checkpoints.Retain = min(3, q.RetainedCheckpoints)
	} else if err := tenants.Check("retained_checkpoints", int64(q.RetainedCheckpoints), 0, int64(spec.Checkpoints.Retain)); err != nil {
		return nil, err
	}
	if err := tenants.Check("slots", int64(q.Slots), 0, int64(slotsOf(spec))); err != nil {
		return nil, err
	}
	return pinned, nil
}

// slotsOf is the slots a job needs: its largest parallelism (one task of
// every node shares a slot).
func slotsOf(spec *runtime.JobSpec) int {
	n := 1
	for _, node := range spec.Nodes {
		p := node.Parallelism
		if p == 0 {
			p = max(spec.Parallelism, 1)
		}
		n = max(n, p)
	}
	return n
}

// checkSlotsLocked checks that a job (except, when rescaling, its own
// current slots) fits the tenant's quota and the free slots.
func (m *Manager) checkSlotsLocked(tenant, except string, need int, q tenants.Quotas) error {
	var mine, all int
	for _, e := range m.jobs {
		if !e.rec.State.holdsSlots() || e.rec.ID == except && e.rec.Tenant == tenant {
			continue
		}
		all += e.rec.Slots
		if e.rec.Tenant == tenant {
			mine += e.rec.Slots
		}
	}
	if err := tenants.Check("slots", int64(q.Slots), int64(mine), int64(need)); err != nil {
		return err
	}
	total := m.cfg.Slots
	if m.cfg.Capacity != nil {
		total = m.cfg.Capacity()
	}
	if free := total - all; need > free {
		return &CapacityError{Needed: need, Free: max(free, 0)}
	}
	return nil
}

// entryOf returns a tenant's job.
func (m *Manager) entryOf(tenant, id string) (*entry, error) {
	m.mu.Lock()
	e := m.jobs[key(tenant, id)]
	m.mu.Unlock()
	if e == nil {
		return nil, fmt.Errorf("job %q: %w", id, ErrNotFound)
	}
	return e, nil
}

// List returns a tenant's jobs, newest first.
func (m *Manager) List(tenant string) []Job {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Job
	for _, e := range m.jobs {
		if e.rec.Tenant == tenant {
			out = append(out, e.viewLocked())
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.After(out[j].CreatedAt)
		}
		return out[i].ID > out[j].ID
	})
	return out
}

// Get returns a job with its graph, metrics and checkpoint summary.
func (m *Manager) Get(tenant, id string) (Detail, error) {
	e, err := m.entryOf(tenant, id)
	if err != nil {
		return Detail{}, err
	}
	m.mu.Lock()
	d := Detail{Job: e.viewLocked()}
	var spec runtime.JobSpec
	_ = json.Unmarshal(e.rec.Spec, &spec)
	d.Spec = e.rec.Spec
	gen := e.gen
	m.mu.Unlock()
	d.Graph = graphOf(&spec)
	if gen != nil {
		d.Vertices = gen.metrics.vertices(gen.job.Stats(), m.cfg.Clock.Now())
		d.Checkpoints = summarize(gen.job.History())
	}
	return d, nil
}

// Usage counts a tenant's slots, running jobs and savepoints.
func (m *Manager) Usage(tenant string) (slots, running, savepoints int) {
	m.mu.Lock()
	for _, e := range m.jobs {
		if e.rec.Tenant == tenant && e.rec.State.holdsSlots() {
			slots += e.rec.Slots
			running++
		}
	}
	m.mu.Unlock()
	sps, _ := m.Savepoints(tenant, "")
	return slots, running, len(sps)
}

// StateBytes is the largest full state size of a tenant's running jobs
// (their newest completed checkpoint).
func (m *Manager) StateBytes(tenant string) int64 {
	m.mu.Lock()
	var gens []*generation
	for _, e := range m.jobs {
		if e.rec.Tenant == tenant && e.gen != nil {
			gens = append(gens, e.gen)
		}
	}
	m.mu.Unlock()
	var most int64
	for _, g := range gens {
		h := g.job.History()
		for i := len(h) - 1; i >= 0; i-- {
			if h[i].Status == "completed" {
				most = max(most, h[i].Size)
				break
			}
		}
	}
	return most
}

// ModuleInUse reports whether a job of the tenant that is not over uses
// the module digest, counting the modules an upgrade in progress moves to
// and those it may roll back to.
func (m *Manager) ModuleInUse(tenant, digest string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.jobs {
		if e.rec.Tenant != tenant || e.rec.State.terminal() {
			continue
		}
		for _, p := range e.rec.Modules {
			if p.Digest == digest {
				return true
			}
		}
		for _, p := range e.rec.PrevModules {
			if p.Digest == digest {
				return true
			}
		}
		for _, p := range e.next {
			if p.Digest == digest {
				return true
			}
		}
	}
	return false
}

// Running reports whether the tenant has a job that is not over.
func (m *Manager) Running(tenant string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.jobs {
		if e.rec.Tenant == tenant && !e.rec.State.terminal() {
			return true
		}
	}
	return false
}

// Delete forgets a job that is over, with its checkpoints and state
// (savepoints stay: they are the tenant's).
func (m *Manager) Delete(ctx context.Context, tenant, id string) error {
	e, err := m.entryOf(tenant, id)
	if err != nil {
		return err
	}
	m.mu.Lock()
	if !e.rec.State.terminal() {
		st := e.rec.State
		m.mu.Unlock()
		return fmt.Errorf("job %q is %s; cancel or stop it first: %w", id, st, ErrConflict)
	}
	delete(m.jobs, key(tenant, id))
	m.mu.Unlock()
	if err := m.cfg.Meta.Commit(nil, []string{recordKey(tenant, id)}); err != nil {
		return err
	}
	prefix, err := checkpoint.JobPrefix(tenant, id)
	if err != nil {
		return err
	}
	if err := m.cfg.Storage.DeletePrefix(ctx, prefix+"/checkpoints"); err != nil {
		return err
	}
	if err := m.cfg.Storage.DeletePrefix(ctx, prefix+"/shared"); err != nil {
		return err
	}
	return os.RemoveAll(m.stateDir(tenant, id))
}

// DeleteTenant forgets every job of a tenant that has none running, and
// every savepoint and operation of it, then runs then (the rest of the
// tenant's deletion: its modules, keys and record). Deploys for the tenant
// are refused from the check for running jobs until then returns, so no
// job can slip in between the check and the tenant's removal.
func (m *Manager) DeleteTenant(ctx context.Context, tenant string, then func() error) error {
	m.mu.Lock()
	for _, e := range m.jobs {
		if e.rec.Tenant == tenant && !e.rec.State.terminal() {
			m.mu.Unlock()
			return fmt.Errorf("tenant %q has jobs that are not over: %w", tenant, ErrConflict)
		}
	}
	if m.deleting[tenant] {
		m.mu.Unlock()
		return fmt.Errorf("tenant %q is already being deleted: %w", tenant, ErrConflict)
	}
	m.deleting[tenant] = true
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.deleting, tenant)
		m.mu.Unlock()
	}()
	if err := m.deleteTenantJobs(ctx, tenant); err != nil {
		return err
	}
	if then != nil {
		return then()
	}
	return nil
}

func (m *Manager) deleteTenantJobs(ctx context.Context, tenant string) error {
	var dels []string
	for _, prefix := range []string{recordPrefix(tenant), savepointPrefix(tenant), opPrefix(tenant), opRequestPrefix(tenant)} {
		if err := m.cfg.Meta.Scan(prefix, func(k string, _ []byte) error { dels = append(dels, k); return nil }); err != nil {
			return err
		}
	}
	if err := m.cfg.Meta.Commit(nil, dels); err != nil {
		return err
	}
	m.mu.Lock()
	for k, e := range m.jobs {
		if e.rec.Tenant == tenant {
			delete(m.jobs, k)
		}
	}
	for k, o := range m.ops {
		if o.tenant == tenant {
			delete(m.ops, k)
		}
	}
	m.mu.Unlock()
	if err := m.cfg.Storage.DeletePrefix(ctx, "tenants/"+tenant+"/jobs"); err != nil {
		return err
	}
	return os.RemoveAll(filepath.Join(m.cfg.DataDir, "state", tenant))
}

func (m *Manager) stateDir(tenant, id string) string {
	return filepath.Join(m.cfg.DataDir, "state", tenant, id)
}

// FilesDir is a tenant's file area, where file connectors' paths resolve.
func (m *Manager) FilesDir(tenant string) string { return FilesDir(m.cfg.DataDir, tenant) }

// FilesDir is a tenant's file area under a data directory.
func FilesDir(dataDir, tenant string) string {
	return filepath.Join(dataDir, "files", tenant)
}

func key(tenant, id string) string { return tenant + "/" + id }

// newID returns a fresh id with a prefix: "j-3f9a1c0d2b7e".
func newID(prefix string) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return prefix + "-" + hex.EncodeToString(b[:])
}

// RunningJob is a running job's metrics, for /metrics.
type RunningJob struct {
	Tenant, ID string
	Tasks      []runtime.TaskStats
	History    []checkpoint.Stats
}

// RunningJobs returns the metrics of every job that runs now.
func (m *Manager) RunningJobs() []RunningJob {
	m.mu.Lock()
	var gens []*generation
	var recs []record
	for _, e := range m.jobs {
		if e.gen != nil {
			gens = append(gens, e.gen)
			recs = append(recs, e.rec)
		}
	}
	m.mu.Unlock()
	out := make([]RunningJob, len(gens))
	for i, g := range gens {
		out[i] = RunningJob{Tenant: recs[i].Tenant, ID: recs[i].ID, Tasks: g.job.Stats(), History: g.job.History()}
	}
	return out
}

// JobConnectors returns the connectors and the logger of a job's tasks
// (print sinks and guest logs go into the job's log): an in-process
// worker uses them.
func (m *Manager) JobConnectors(tenant, id string) (runtime.Connectors, *slog.Logger) {
	e, err := m.entryOf(tenant, id)
	if err != nil { // deleted meanwhile: its tasks are about to be cancelled
		e = &entry{rec: record{Tenant: tenant, ID: id}, logs: newLogRing(1, m.cfg.Clock)}
	}
	return m.jobConnectors(e)
}

// jobConnectors registers the connectors of e's tasks: confined to the
// tenant's file area, Kafka limited to the allowed brokers, print sinks
// writing into the job's log.
func (m *Manager) jobConnectors(e *entry) (runtime.Connectors, *slog.Logger) {
	var conns runtime.Connectors
	connectors.RegisterWithOptions(&conns, connectors.RegisterOptions{
		BaseDir: m.FilesDir(e.rec.Tenant), Confine: true, Stdout: e.logs.writer("print"),
		Kafka: &connectors.KafkaPolicy{Brokers: m.cfg.KafkaBrokers},
	})
	return conns, slog.New(e.logs.handler(slog.LevelInfo)).With("job", e.rec.ID)
}

package cluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/weirstream/weir/checkpoint"
	"github.com/weirstream/weir/connectors"
	"github.com/weirstream/weir/platform/cluster/clusterpb"
	"github.com/weirstream/weir/runtime"
	"github.com/weirstream/weir/wasmhost"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// WorkerConfig configures a worker.
type WorkerConfig struct {
	// ID names the worker in the cluster (default: its advertised address).
	ID string
	// Coordinator is the coordinator's cluster address (host:port).
	Coordinator string
	// Advertise is the address other members dial for this worker's
	// service (default: the listener's address).
	Advertise string
	// Slots offered (default 4).
	Slots int
	// Secret is the shared cluster secret (required).
	Secret []byte
	// DataDir holds the tasks' local state (disposable).
	DataDir string
	// Storage is the checkpoint storage; nil: the one the coordinator
	// announces, opened with OpenStorage.
	Storage     checkpoint.Storage
	OpenStorage func(ctx context.Context, url string) (checkpoint.Storage, error)
	// Runtime compiles modules (its compilation cache makes repeated
	// deployments cheap).
	Runtime *wasmhost.Runtime
	// Connectors, if set, registers the connectors of a job (standalone
	// routes print sinks into the job's log); default: every connector,
	// confined as the deployment's policy says, printing to the log.
	// (and the logger of the job's tasks, nil: the worker's).
	Connectors func(tenant, job string, p ConnectorPolicy) (runtime.Connectors, *slog.Logger)
	// LoadModule, if set, loads a tenant's module references (standalone
	// uses the registry's, so that a module is compiled once per process
	// and released by its owner); default: fetch from the coordinator.
	LoadModule func(tenant string) runtime.ModuleLoader
	// MetricsAddress is announced to the coordinator (informational).
	MetricsAddress string
	Logger         *slog.Logger
	// HeartbeatTimeout: without an answer from the coordinator for this
	// long, the worker drops its tasks and registers again (default 10 s).
	HeartbeatTimeout time.Duration

	protocol string // tests: the protocol version sent
}

// ConnectorPolicy is what a job's connectors may reach on a worker: the
// tenant's file area and the allowed Kafka brokers (the coordinator
// validated the spec against the same policy).
type ConnectorPolicy struct {
	BaseDir      string   `json:"base_dir,omitempty"`
	Confine      bool     `json:"confine,omitempty"`
	KafkaBrokers []string `json:"kafka_brokers,omitempty"`
	// AnyBroker: no broker restriction (weir run).
	AnyBroker bool `json:"any_broker,omitempty"`
}

// Worker offers slots to a coordinator and runs the tasks it deploys.
type Worker struct {
	clusterpb.UnimplementedWorkerServer
	cfg   WorkerConfig
	auth  *auth
	log   *slog.Logger
	srv   *grpc.Server
	coord clusterpb.CoordinatorClient
	cconn *grpc.ClientConn
	data  *dataPlane

	mu       sync.Mutex
	attempts map[string]*workerAttempt
	peers    map[string]*grpc.ClientConn // by address
	modules  map[string]runtime.Module   // by tenant + ref
	storage  checkpoint.Storage
	addrs    map[string]string // worker id -> address, from deployments
	// recent holds the final metrics of the newest ended attempts
	// (bounded by recentTasks), so that a scrape after a job ended still
	// sees its last counts.
	recent []JobStats
	// released are attempts finished before their deployment completed
	// here (the coordinator gave up on a slow Deploy): a late Deploy of
	// one is released at once.
	released map[string]bool
	// handlers counts the calls in progress (Exchange streams aside), so
	// that shutdown returns only when no call runs guest code any more.
	handlers sync.WaitGroup
}

// recentTasks bounds the final task metrics a worker keeps.
const recentTasks = 256

// workerAttempt is the part of one attempt this worker runs.
type workerAttempt struct {
	tenant, job string
	set         *runtime.TaskSet
}

// NewWorker creates a worker serving on ln; Serve registers it and keeps
// it registered.
func NewWorker(cfg WorkerConfig, ln net.Listener) (*Worker, error) {
	if len(cfg.Secret) == 0 {
		return nil, ErrNoSecret
	}
	if cfg.Slots <= 0 {
		cfg.Slots = 4
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.HeartbeatTimeout <= 0 {
		cfg.HeartbeatTimeout = 10 * time.Second
	}
	if cfg.Advertise == "" {
		cfg.Advertise = ln.Addr().String()
	}
	if cfg.ID == "" {
		cfg.ID = cfg.Advertise
	}
	if cfg.protocol == "" {
		cfg.protocol = ProtocolVersion
	}
	w := &Worker{cfg: cfg, log: cfg.Logger.With("worker", cfg.ID), attempts: map[string]*workerAttempt{},
		peers: map[string]*grpc.ClientConn{}, modules: map[string]runtime.Module{}, addrs: map[string]string{}, storage: cfg.Storage,
		released: map[string]bool{}}
	w.auth = &auth{secret: cfg.Secret, protocol: cfg.protocol, log: w.log}
	conn, err := w.dialAddr(cfg.Coordinator)
	if err != nil {
		return nil, err
	}
	w.cconn = conn
	w.coord = clusterpb.NewCoordinatorClient(conn)
	w.data = newDataPlane(cfg.ID, w.log, w.peer)
	w.srv = grpc.NewServer(w.auth.serverOptions()...)
	clusterpb.RegisterWorkerServer(w.srv, w)
	go func() { _ = w.srv.Serve(ln) }()
	return w, nil
}

// ID returns the worker's id.
func (w *Worker) ID() string { return w.cfg.ID }

func (w *Worker) dialAddr(addr string) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(perRPC{w.auth}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessage), grpc.MaxCallSendMsgSize(maxMessage)),
		grpc.WithInitialWindowSize(1<<20), grpc.WithInitialConnWindowSize(4<<20),
	)
}

// peer returns the client of another worker (one connection per peer).
func (w *Worker) peer(id string) (clusterpb.WorkerClient, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	addr, ok := w.addrs[id]
	if !ok {
		return nil, fmt.Errorf("worker %s: unknown address", id)
	}
	c := w.peers[addr]
	if c == nil {
		var err error
		if c, err = w.dialAddr(addr); err != nil {
			return nil, err
		}
		w.peers[addr] = c
	}
	return clusterpb.NewWorkerClient(c), nil
}

// Serve registers the worker and heartbeats until ctx ends. A refusal
// (wrong secret or protocol version) is returned at once; an unreachable
// coordinator is retried.
func (w *Worker) Serve(ctx context.Context) error {
	defer w.shutdown()
	for {
		err := w.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if refused(err) {
			w.log.Error("cluster: the coordinator refused this worker", "coordinator", w.cfg.Coordinator, "err", refusal(err))
			return refusal(err)
		}
		w.log.Warn("cluster: lost the coordinator; dropping tasks and registering again", "err", err)
		w.dropAll(fmt.Errorf("lost the coordinator: %w", err))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(500 * time.Millisecond): // reconnect pacing, not a wait for a condition
		}
	}
}

// session registers once and heartbeats until the coordinator forgets or
// loses the worker.
func (w *Worker) session(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, w.cfg.HeartbeatTimeout)
	resp, err := w.coord.Register(rctx, &clusterpb.RegisterRequest{
		WorkerId: w.cfg.ID, Address: w.cfg.Advertise, Slots: int32(w.cfg.Slots), MetricsAddress: w.cfg.MetricsAddress,
	}, grpc.WaitForReady(true))
	cancel()
	if err != nil {
		return err
	}
	if err := w.useStorage(ctx, resp.GetStorage()); err != nil {
		return err
	}
	w.log.Info("cluster: registered", "coordinator", w.cfg.Coordinator, "slots", w.cfg.Slots)
	interval := time.Duration(resp.GetHeartbeatIntervalMs()) * time.Millisecond
	if interval <= 0 {
		interval = time.Second
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		stats, _ := json.Marshal(w.Stats())
		hctx, cancel := context.WithTimeout(ctx, interval)
		r, err := w.coord.Heartbeat(hctx, &clusterpb.HeartbeatRequest{WorkerId: w.cfg.ID, StatsJson: stats})
		cancel()
		switch {
		case err == nil && !r.GetKnown():
			return errors.New("the coordinator does not know this worker")
		case err == nil:
			last = time.Now()
		case refused(err):
			return err
		case time.Since(last) > w.cfg.HeartbeatTimeout:
			return fmt.Errorf("no heartbeat answer for %s: %w", time.Since(last).Round(time.Millisecond), err)
		}
	}
}

func (w *Worker) useStorage(ctx context.Context, url string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.storage != nil || url == "" {
		return nil
	}
	if w.cfg.OpenStorage == nil {
		return fmt.Errorf("the coordinator announces storage %q and this worker cannot open storage", url)
	}
	st, err := w.cfg.OpenStorage(ctx, url)
	if err != nil {
		return fmt.Errorf("opening the coordinator's storage %q: %w", url, err)
	}
	w.storage = st
	return nil
}

// JobStats are the metrics of one task with the job and attempt it
// belongs to.
type JobStats struct {
	Tenant  string `json:"tenant"`
	Job     string `json:"job"`
	Attempt string `json:"attempt"`
	runtime.TaskStats
}

// Stats returns the metrics of every task running here.
func (w *Worker) Stats() []JobStats {
	w.mu.Lock()
	as := make(map[string]*workerAttempt, len(w.attempts))
	for k, a := range w.attempts {
		as[k] = a
	}
	w.mu.Unlock()
	var out []JobStats
	for uid, a := range as {
		for _, s := range a.set.Stats() {
			out = append(out, JobStats{Tenant: a.tenant, Job: a.job, Attempt: uid, TaskStats: s})
		}
	}
	return out
}

func (w *Worker) dropAll(err error) {
	w.mu.Lock()
	as := w.attempts
	w.attempts = map[string]*workerAttempt{}
	w.mu.Unlock()
	for uid, a := range as {
		a.set.Fail(err)
		_, _ = a.set.Finish(context.Background(), false)
		w.data.release(uid)
	}
}

func (w *Worker) shutdown() {
	// Stop cancels the calls in progress without waiting for them; the
	// handlers are waited for, then whatever a late Deploy registered is
	// dropped too: after this, no task or instance of this worker runs.
	w.srv.Stop()
	w.dropAll(errors.New("the worker is shutting down"))
	w.handlers.Wait()
	w.dropAll(errors.New("the worker is shutting down"))
	_ = w.cconn.Close()
	w.mu.Lock()
	for _, c := range w.peers {
		_ = c.Close()
	}
	w.mu.Unlock()
}

// Deploy implements clusterpb.WorkerServer.
func (w *Worker) Deploy(ctx context.Context, req *clusterpb.DeployRequest) (*clusterpb.Empty, error) {
	w.handlers.Add(1)
	defer w.handlers.Done()
	uid := req.GetAttempt()
	var spec runtime.JobSpec
	if err := json.Unmarshal(req.GetSpecJson(), &spec); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "job spec: %v", err)
	}
	var policy ConnectorPolicy
	if len(req.GetConnectorsJson()) > 0 {
		if err := json.Unmarshal(req.GetConnectorsJson(), &policy); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "connector policy: %v", err)
		}
	}
	tenant, jobID := req.GetTenant(), req.GetJobId()
	// Local state lives under this worker's data dir, whatever the
	// coordinator's paths are.
	spec.State.Dir = filepath.Join(w.cfg.DataDir, "state", tenant, jobID)
	w.mu.Lock()
	for id, addr := range req.GetWorkers() {
		w.addrs[id] = addr
	}
	storage := w.storage
	w.mu.Unlock()
	conns, logger := w.connectors(tenant, jobID, policy)
	if logger == nil {
		logger = w.log.With("tenant", tenant, "job", jobID)
	}
	opts := runtime.Options{
		Connectors: conns,
		LoadModule: w.loader(tenant),
		Logger:     logger,
	}
	if w.cfg.LoadModule != nil {
		opts.LoadModule = w.cfg.LoadModule(tenant)
	}
	if storage != nil {
		opts.Checkpoint = &runtime.CheckpointOptions{Storage: storage, Tenant: tenant, Job: jobID}
		if req.GetRestoreDir() != "" && !req.GetRestoreNative() {
			opts.Checkpoint.From = &runtime.RestoreFrom{Storage: storage, Dir: req.GetRestoreDir(), AllowNonRestoredState: req.GetAllowNonRestoredState()}
		}
	}
	job, err := runtime.Compile(ctx, &spec, opts)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "compiling the job: %v", err)
	}
	wa := &workerAttempt{tenant: tenant, job: jobID}
	cfg := runtime.TaskSetConfig{
		Attempt: int(req.GetAttemptNumber()), UID: uid, Self: w.cfg.ID, Placement: req.GetPlacement(),
		Acks: &remoteAcker{w: w, attempt: uid},
	}
	if req.GetRestoreDir() != "" {
		cfg.Restore = &runtime.RestoreRef{Dir: req.GetRestoreDir(), Root: req.GetRestoreRoot(), Native: req.GetRestoreNative(), AllowNonRestoredState: req.GetAllowNonRestoredState()}
	}
	var set *runtime.TaskSet
	cfg.Exchange = w.data.forAttempt(uid, func(err error) { set.Fail(err) })
	set = job.NewTaskSet(cfg)
	wa.set = set
	if err := set.Open(ctx); err != nil {
		w.data.release(uid)
		return nil, runtimeStatus("opening the tasks", err)
	}
	w.mu.Lock()
	if w.released[uid] {
		delete(w.released, uid)
		w.mu.Unlock()
		_, _ = set.Finish(context.Background(), false)
		w.data.release(uid)
		return nil, status.Errorf(codes.Aborted, "attempt %s was released while it deployed", uid)
	}
	w.attempts[uid] = wa
	w.mu.Unlock()
	w.log.Info("cluster: deployed", "job", jobID, "attempt", req.GetAttemptNumber())
	return &clusterpb.Empty{}, nil
}

// runtimeStatus keeps a permanent runtime error permanent across the wire.
func runtimeStatus(what string, err error) error {
	if runtime.IsPermanent(err) {
		return status.Errorf(codes.InvalidArgument, "%s: %v", what, err)
	}
	return status.Errorf(codes.Internal, "%s: %v", what, err)
}

func (w *Worker) connectors(tenant, job string, p ConnectorPolicy) (runtime.Connectors, *slog.Logger) {
	if w.cfg.Connectors != nil {
		return w.cfg.Connectors(tenant, job, p)
	}
	var c runtime.Connectors
	opts := connectors.RegisterOptions{BaseDir: p.BaseDir, Confine: p.Confine, Stdout: logWriter{w.log.With("tenant", tenant, "job", job)}}
	if !p.AnyBroker {
		opts.Kafka = &connectors.KafkaPolicy{Brokers: p.KafkaBrokers}
	}
	connectors.RegisterWithOptions(&c, opts)
	return c, nil
}

// logWriter turns print-sink lines into log records of the worker.
type logWriter struct{ log *slog.Logger }

func (l logWriter) Write(p []byte) (int, error) {
	l.log.Info("print", "line", string(bytes.TrimRight(p, "\r\n")))
	return len(p), nil
}

// loader fetches module bytes from the coordinator and compiles them once
// per tenant and reference (references are pinned to digests).
func (w *Worker) loader(tenant string) runtime.ModuleLoader {
	return func(ctx context.Context, name string, spec runtime.ModuleSpec) (runtime.Module, error) {
		if spec.Path != "" {
			return nil, fmt.Errorf("module %s: workers load uploaded modules only, not files (%q)", name, spec.Path)
		}
		key := tenant + "\x00" + spec.Ref
		w.mu.Lock()
		m := w.modules[key]
		w.mu.Unlock()
		if m != nil {
			return m, nil
		}
		r, err := w.coord.FetchModule(ctx, &clusterpb.FetchModuleRequest{Tenant: tenant, Ref: spec.Ref})
		if err != nil {
			return nil, fmt.Errorf("module %s (%s): fetching from the coordinator: %w", name, spec.Ref, err)
		}
		if w.cfg.Runtime == nil {
			return nil, fmt.Errorf("module %s: this worker has no Wasm runtime", name)
		}
		cm, err := w.cfg.Runtime.Compile(ctx, r.GetWasm())
		if err != nil {
			sum := sha256.Sum256(r.GetWasm())
			return nil, fmt.Errorf("module %s (sha256:%s): %w", name, hex.EncodeToString(sum[:]), err)
		}
		m = runtime.WasmModule(cm)
		w.mu.Lock()
		w.modules[key] = m
		w.mu.Unlock()
		return m, nil
	}
}

func (w *Worker) attempt(uid string) (*workerAttempt, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	a := w.attempts[uid]
	if a == nil {
		return nil, status.Errorf(codes.NotFound, "attempt %s is not deployed on worker %s", uid, w.cfg.ID)
	}
	return a, nil
}

// Run implements clusterpb.WorkerServer: the call lasts as long as the
// tasks; the coordinator cancelling it (or vanishing) cancels them.
func (w *Worker) Run(ctx context.Context, req *clusterpb.AttemptRef) (*clusterpb.Empty, error) {
	w.handlers.Add(1)
	defer w.handlers.Done()
	a, err := w.attempt(req.GetAttempt())
	if err != nil {
		return nil, err
	}
	if err := a.set.Run(ctx); err != nil {
		return nil, runtimeStatus("running", err)
	}
	return &clusterpb.Empty{}, nil
}

// barrier returns a deployed attempt and the barrier a call carries.
func (w *Worker) barrier(uid string, raw []byte) (*workerAttempt, checkpoint.Barrier, error) {
	var b checkpoint.Barrier
	a, err := w.attempt(uid)
	if err != nil {
		return nil, b, err
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, b, status.Errorf(codes.InvalidArgument, "barrier: %v", err)
	}
	return a, b, nil
}

// Trigger implements clusterpb.WorkerServer.
func (w *Worker) Trigger(_ context.Context, req *clusterpb.TriggerRequest) (*clusterpb.Empty, error) {
	w.handlers.Add(1)
	defer w.handlers.Done()
	a, b, err := w.barrier(req.GetAttempt(), req.GetBarrierJson())
	if err != nil {
		return nil, err
	}
	if err := a.set.Trigger(b); err != nil {
		return nil, status.Error(codes.Aborted, err.Error())
	}
	return &clusterpb.Empty{}, nil
}

// Notify implements clusterpb.WorkerServer.
func (w *Worker) Notify(_ context.Context, req *clusterpb.NotifyRequest) (*clusterpb.Empty, error) {
	w.handlers.Add(1)
	defer w.handlers.Done()
	a, b, err := w.barrier(req.GetAttempt(), req.GetBarrierJson())
	if err != nil {
		return nil, err
	}
	a.set.Notify(b, req.GetCompleted())
	return &clusterpb.Empty{}, nil
}

// Finish implements clusterpb.WorkerServer.
func (w *Worker) Finish(ctx context.Context, req *clusterpb.FinishRequest) (*clusterpb.FinishResponse, error) {
	w.handlers.Add(1)
	defer w.handlers.Done()
	uid := req.GetAttempt()
	w.mu.Lock()
	a := w.attempts[uid]
	delete(w.attempts, uid)
	w.mu.Unlock()
	if a == nil {
		w.mu.Lock()
		if len(w.released) > 1024 {
			clear(w.released)
		}
		w.released[uid] = true
		w.mu.Unlock()
		return &clusterpb.FinishResponse{}, nil // dropped, or still deploying
	}
	final := a.set.Stats()
	committed, err := a.set.Finish(ctx, req.GetCommit())
	w.mu.Lock()
	for _, st := range final {
		w.recent = append(w.recent, JobStats{Tenant: a.tenant, Job: a.job, Attempt: uid, TaskStats: st})
	}
	if n := len(w.recent) - recentTasks; n > 0 {
		w.recent = append(w.recent[:0], w.recent[n:]...)
	}
	w.mu.Unlock()
	w.data.release(uid)
	resp := &clusterpb.FinishResponse{Committed: committed}
	resp.StatsJson, _ = json.Marshal(final)
	if err != nil {
		if runtime.IsPermanent(err) {
			return nil, runtimeStatus("finishing", err)
		}
		resp.Error = err.Error()
	}
	return resp, nil
}

// Exchange implements clusterpb.WorkerServer.
func (w *Worker) Exchange(s clusterpb.Worker_ExchangeServer) error {
	err := w.data.accept(s)
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// remoteAcker forwards a task's checkpoint reports to the coordinator.
type remoteAcker struct {
	w       *Worker
	attempt string
}

func (r *remoteAcker) Ack(ctx context.Context, id int64, ts checkpoint.TaskState) {
	b, err := json.Marshal(ts)
	if err == nil {
		_, err = r.w.coord.Ack(context.WithoutCancel(ctx), &clusterpb.AckRequest{Attempt: r.attempt, Checkpoint: id, TaskStateJson: b})
	}
	if err != nil {
		r.w.log.Warn("cluster: acknowledging a checkpoint", "checkpoint", id, "task", ts.Task, "err", err)
	}
}

func (r *remoteAcker) Decline(id int64, task string, reason error) {
	_, err := r.w.coord.Decline(context.Background(), &clusterpb.DeclineRequest{Attempt: r.attempt, Checkpoint: id, Task: task, Reason: reason.Error()})
	if err != nil {
		r.w.log.Warn("cluster: declining a checkpoint", "checkpoint", id, "task", task, "err", err)
	}
}

func (r *remoteAcker) Pause() {
	if _, err := r.w.coord.SourceFinished(context.Background(), &clusterpb.AttemptRef{Attempt: r.attempt}); err != nil {
		r.w.log.Warn("cluster: reporting a finished source", "err", err)
	}
}

// SetProtocolForTesting makes a worker speak another protocol version, so
// that tests (and `weir worker --protocol-version`) can check that a
// mismatched member is refused.
func SetProtocolForTesting(cfg *WorkerConfig, v string) { cfg.protocol = v }

// MetricsHandler serves GET /metrics: this worker's tasks in the
// Prometheus text format, with those of recently ended attempts (labelled
// by attempt, finished) so that their final counts stay visible.
func (w *Worker) MetricsHandler() http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(rw, r)
			return
		}
		rw.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.mu.Lock()
		recent := append([]JobStats(nil), w.recent...)
		w.mu.Unlock()
		_ = WritePrometheus(rw, w.cfg.ID, append(recent, w.Stats()...), nil)
	})
}

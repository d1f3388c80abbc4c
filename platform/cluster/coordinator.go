package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/weirstream/weir/checkpoint"
	"github.com/weirstream/weir/platform/cluster/clusterpb"
	"github.com/weirstream/weir/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// Placement strategies.
const (
	// PlaceSpread puts each slot on the worker with the most free slots:
	// load spreads over the cluster (the default).
	PlaceSpread = "spread"
	// PlacePack fills workers one after the other: fewer workers are busy.
	PlacePack = "pack"
)

// CoordinatorConfig configures the coordinator's cluster side.
type CoordinatorConfig struct {
	// Secret is the shared cluster secret (required).
	Secret []byte
	// Storage is announced to workers started without --storage.
	Storage string
	// Placement is PlaceSpread (default) or PlacePack.
	Placement string
	// HeartbeatInterval is how often workers report (default 1 s);
	// HeartbeatTimeout how long a silent worker is kept (default 10 s).
	HeartbeatInterval, HeartbeatTimeout time.Duration
	// SlotWait is how long an attempt waits for free slots (a restart
	// after a lost worker, a recovery after a coordinator restart) before
	// it fails with runtime.ErrNoSlots (default 30 s). New jobs are
	// checked against Capacity before they are deployed.
	SlotWait time.Duration
	// Modules returns the bytes of a tenant's module reference (workers
	// fetch the modules of the jobs they run).
	Modules func(ctx context.Context, tenant, ref string) ([]byte, error)
	// SlotQuota, if set, is a tenant's slot limit (0: none), checked at
	// placement. The jobs manager checks tenants' quotas before deploying;
	// this hook keeps placement honest too.
	SlotQuota func(tenant string) int
	Logger    *slog.Logger

	protocol string // tests
}

// Coordinator is the control plane's cluster side: the workers, their
// slots and heartbeats, placement, and the checkpoint reports of the
// tasks it deployed. Jobs reach it through ForJob (a runtime.Cluster).
type Coordinator struct {
	clusterpb.UnimplementedCoordinatorServer
	cfg  CoordinatorConfig
	auth *auth
	log  *slog.Logger
	srv  *grpc.Server

	mu       sync.Mutex
	workers  map[string]*workerEntry
	attempts map[string]*attemptEntry
	changed  chan struct{} // closed and replaced when slots free up or workers join
}

type workerEntry struct {
	id, addr, metrics string
	slots, used       int
	last              time.Time
	conn              *grpc.ClientConn
	client            clusterpb.WorkerClient
	stats             []JobStats
}

type attemptEntry struct {
	tenant string
	acks   runtime.Acker
	slots  map[string]int // worker -> slots held
}

// NewCoordinator returns a coordinator; Serve serves it.
func NewCoordinator(cfg CoordinatorConfig) (*Coordinator, error) {
	if len(cfg.Secret) == 0 {
		return nil, ErrNoSecret
	}
	switch cfg.Placement {
	case "":
		cfg.Placement = PlaceSpread
	case PlaceSpread, PlacePack:
	default:
		return nil, fmt.Errorf("cluster: placement %q: want %s or %s", cfg.Placement, PlaceSpread, PlacePack)
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = time.Second
	}
	if cfg.HeartbeatTimeout <= 0 {
		cfg.HeartbeatTimeout = 10 * time.Second
	}
	if cfg.SlotWait <= 0 {
		cfg.SlotWait = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.protocol == "" {
		cfg.protocol = ProtocolVersion
	}
	c := &Coordinator{cfg: cfg, log: cfg.Logger, workers: map[string]*workerEntry{}, attempts: map[string]*attemptEntry{}, changed: make(chan struct{})}
	c.auth = &auth{secret: cfg.Secret, protocol: cfg.protocol, log: c.log}
	c.srv = grpc.NewServer(c.auth.serverOptions()...)
	clusterpb.RegisterCoordinatorServer(c.srv, c)
	return c, nil
}

// Serve serves workers on ln and watches their heartbeats until ctx ends.
func (c *Coordinator) Serve(ctx context.Context, ln net.Listener) error {
	go c.watch(ctx)
	go func() {
		<-ctx.Done()
		c.srv.Stop()
		c.mu.Lock()
		for _, w := range c.workers {
			_ = w.conn.Close()
		}
		c.mu.Unlock()
	}()
	err := c.srv.Serve(ln)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// watch declares workers lost when their heartbeats stop.
func (c *Coordinator) watch(ctx context.Context) {
	t := time.NewTicker(c.cfg.HeartbeatInterval / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		c.mu.Lock()
		var lost []string
		for id, w := range c.workers {
			if now.Sub(w.last) > c.cfg.HeartbeatTimeout {
				lost = append(lost, id)
			}
		}
		c.mu.Unlock()
		for _, id := range lost {
			c.lose(id, fmt.Sprintf("no heartbeat for %s", c.cfg.HeartbeatTimeout))
		}
	}
}

// lose forgets a worker: its connection closes, which fails the attempts
// running there (their jobs restart from the latest checkpoint on the
// remaining workers).
func (c *Coordinator) lose(id, why string) {
	c.mu.Lock()
	w := c.workers[id]
	if w != nil {
		delete(c.workers, id)
	}
	c.mu.Unlock()
	if w == nil {
		return
	}
	c.log.Warn("cluster: worker lost", "worker", id, "address", w.addr, "reason", why)
	_ = w.conn.Close()
}

func (c *Coordinator) signalLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// WorkerInfo describes a registered worker.
type WorkerInfo struct {
	ID             string `json:"id"`
	Address        string `json:"address"`
	MetricsAddress string `json:"metrics_address,omitempty"`
	Slots          int    `json:"slots"`
	Used           int    `json:"used"`
}

// Workers lists the live workers.
func (c *Coordinator) Workers() []WorkerInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]WorkerInfo, 0, len(c.workers))
	for _, w := range c.workers {
		out = append(out, WorkerInfo{ID: w.id, Address: w.addr, MetricsAddress: w.metrics, Slots: w.slots, Used: w.used})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Capacity returns the slots of the live workers.
func (c *Coordinator) Capacity() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, w := range c.workers {
		n += w.slots
	}
	return n
}

// WaitForSlots waits until the live workers offer at least n slots.
func (c *Coordinator) WaitForSlots(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		total := 0
		for _, w := range c.workers {
			total += w.slots
		}
		ch := c.changed
		c.mu.Unlock()
		if total >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d slots (%d registered): %w", n, total, context.Cause(ctx))
		case <-ch:
		}
	}
}

// TaskStats returns the metrics every worker last reported.
func (c *Coordinator) TaskStats() []JobStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []JobStats
	for _, w := range c.workers {
		out = append(out, w.stats...)
	}
	return out
}

// Register implements clusterpb.CoordinatorServer.
func (c *Coordinator) Register(_ context.Context, req *clusterpb.RegisterRequest) (*clusterpb.RegisterResponse, error) {
	id, addr := req.GetWorkerId(), req.GetAddress()
	if id == "" || addr == "" || req.GetSlots() <= 0 {
		return nil, status.Error(codes.InvalidArgument, "register: worker id, address and a positive number of slots are required")
	}
	c.mu.Lock()
	_, again := c.workers[id]
	c.mu.Unlock()
	if again { // the worker restarted: what ran on it is gone
		c.lose(id, "registered again")
	}
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(perRPC{c.auth}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessage), grpc.MaxCallSendMsgSize(maxMessage)),
	)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "register: worker address %q: %v", addr, err)
	}
	w := &workerEntry{id: id, addr: addr, metrics: req.GetMetricsAddress(), slots: int(req.GetSlots()), last: time.Now(),
		conn: conn, client: clusterpb.NewWorkerClient(conn)}
	c.mu.Lock()
	c.workers[id] = w
	c.signalLocked()
	c.mu.Unlock()
	c.log.Info("cluster: worker registered", "worker", id, "address", addr, "slots", w.slots)
	return &clusterpb.RegisterResponse{Storage: c.cfg.Storage, HeartbeatIntervalMs: c.cfg.HeartbeatInterval.Milliseconds()}, nil
}

// Heartbeat implements clusterpb.CoordinatorServer.
func (c *Coordinator) Heartbeat(_ context.Context, req *clusterpb.HeartbeatRequest) (*clusterpb.HeartbeatResponse, error) {
	var stats []JobStats
	if len(req.GetStatsJson()) > 0 {
		if err := json.Unmarshal(req.GetStatsJson(), &stats); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "heartbeat stats: %v", err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.workers[req.GetWorkerId()]
	if w == nil {
		return &clusterpb.HeartbeatResponse{Known: false}, nil
	}
	w.last = time.Now()
	w.stats = stats
	return &clusterpb.HeartbeatResponse{Known: true}, nil
}

func (c *Coordinator) acker(uid string) (runtime.Acker, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.attempts[uid]
	if a == nil || a.acks == nil {
		return nil, status.Errorf(codes.NotFound, "attempt %s is not running", uid)
	}
	return a.acks, nil
}

// Ack implements clusterpb.CoordinatorServer.
func (c *Coordinator) Ack(ctx context.Context, req *clusterpb.AckRequest) (*clusterpb.Empty, error) {
	var ts checkpoint.TaskState
	if err := json.Unmarshal(req.GetTaskStateJson(), &ts); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "task state: %v", err)
	}
	a, err := c.acker(req.GetAttempt())
	if err != nil {
		return nil, err
	}
	a.Ack(ctx, req.GetCheckpoint(), ts)
	return &clusterpb.Empty{}, nil
}

// Decline implements clusterpb.CoordinatorServer.
func (c *Coordinator) Decline(_ context.Context, req *clusterpb.DeclineRequest) (*clusterpb.Empty, error) {
	a, err := c.acker(req.GetAttempt())
	if err != nil {
		return nil, err
	}
	a.Decline(req.GetCheckpoint(), req.GetTask(), errors.New(req.GetReason()))
	return &clusterpb.Empty{}, nil
}

// SourceFinished implements clusterpb.CoordinatorServer.
func (c *Coordinator) SourceFinished(_ context.Context, req *clusterpb.AttemptRef) (*clusterpb.Empty, error) {
	a, err := c.acker(req.GetAttempt())
	if err != nil {
		return nil, err
	}
	a.Pause()
	return &clusterpb.Empty{}, nil
}

// FetchModule implements clusterpb.CoordinatorServer.
func (c *Coordinator) FetchModule(ctx context.Context, req *clusterpb.FetchModuleRequest) (*clusterpb.FetchModuleResponse, error) {
	if c.cfg.Modules == nil {
		return nil, status.Error(codes.Unimplemented, "this coordinator serves no modules")
	}
	b, err := c.cfg.Modules(ctx, req.GetTenant(), req.GetRef())
	if err != nil {
		return nil, status.Errorf(codes.NotFound, "module %s of tenant %s: %v", req.GetRef(), req.GetTenant(), err)
	}
	return &clusterpb.FetchModuleResponse{Wasm: b}, nil
}

// ForJob returns the runtime.Cluster a job of tenant runs on.
func (c *Coordinator) ForJob(tenant, job string, policy ConnectorPolicy) runtime.Cluster {
	return &jobCluster{c: c, tenant: tenant, job: job, policy: policy}
}

type jobCluster struct {
	c           *Coordinator
	tenant, job string
	policy      ConnectorPolicy
}

// Deploy implements runtime.Cluster: slot i hosts subtask i of every node
// (slot sharing); slots go to workers by the placement strategy. Without
// enough free slots it waits up to SlotWait.
func (jc *jobCluster) Deploy(ctx context.Context, d *runtime.Deployment) ([]runtime.TaskGroup, error) {
	c := jc.c
	need := 0
	for _, t := range d.Tasks {
		need = max(need, t.Subtask+1)
	}
	deadline := time.NewTimer(c.cfg.SlotWait)
	defer deadline.Stop()
	var slotWorker []*workerEntry
	for {
		c.mu.Lock()
		var err error
		slotWorker, err = c.placeLocked(jc.tenant, need)
		ch := c.changed
		if err == nil {
			a := &attemptEntry{tenant: jc.tenant, acks: d.Acks, slots: map[string]int{}}
			for _, w := range slotWorker {
				w.used++
				a.slots[w.id]++
			}
			c.attempts[d.UID] = a
		}
		c.mu.Unlock()
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-deadline.C:
			return nil, fmt.Errorf("job %s attempt %d: %w (waited %s)", jc.job, d.Attempt, err, c.cfg.SlotWait)
		case <-ch:
		}
	}
	spec, err := json.Marshal(d.Job.Spec)
	if err != nil {
		c.release(d.UID, "")
		return nil, err
	}
	policy, _ := json.Marshal(jc.policy)
	placement := map[string]string{}
	workers := map[string]string{}
	for _, t := range d.Tasks {
		w := slotWorker[t.Subtask]
		placement[t.Name] = w.id
		workers[w.id] = w.addr
	}
	var groups []runtime.TaskGroup
	seen := map[string]bool{}
	for _, w := range slotWorker {
		if seen[w.id] {
			continue
		}
		seen[w.id] = true
		req := &clusterpb.DeployRequest{
			Attempt: d.UID, Tenant: jc.tenant, JobId: jc.job, SpecJson: spec, AttemptNumber: int32(d.Attempt),
			Placement: placement, Workers: workers, ConnectorsJson: policy,
		}
		if r := d.Restore; r != nil {
			req.RestoreDir, req.RestoreRoot, req.RestoreNative, req.AllowNonRestoredState = r.Dir, r.Root, r.Native, r.AllowNonRestoredState
		}
		groups = append(groups, &remoteGroup{c: c, w: w, uid: d.UID, req: req})
	}
	c.log.Info("cluster: placed", "job", jc.job, "attempt", d.Attempt, "slots", need, "workers", len(groups))
	return groups, nil
}

// placeLocked picks a worker for each of need slots, or says why it
// cannot.
func (c *Coordinator) placeLocked(tenant string, need int) ([]*workerEntry, error) {
	if c.cfg.SlotQuota != nil {
		if q := c.cfg.SlotQuota(tenant); q > 0 {
			held := 0
			for _, a := range c.attempts {
				if a.tenant == tenant {
					for _, n := range a.slots {
						held += n
					}
				}
			}
			if held+need > q {
				return nil, fmt.Errorf("tenant %s: slot quota %d: %d held, %d needed: %w", tenant, q, held, need, runtime.ErrNoSlots)
			}
		}
	}
	ws := make([]*workerEntry, 0, len(c.workers))
	free := map[*workerEntry]int{}
	total := 0
	for _, w := range c.workers {
		if w.conn != nil {
			if st := w.conn.GetState(); st == connectivity.TransientFailure || st == connectivity.Shutdown {
				continue // unreachable now: the heartbeat timeout decides whether it is lost
			}
		}
		ws = append(ws, w)
		free[w] = w.slots - w.used
		total += free[w]
	}
	if total < need {
		return nil, fmt.Errorf("%d slots needed, %d free on %d workers: %w", need, total, len(ws), runtime.ErrNoSlots)
	}
	sort.Slice(ws, func(i, j int) bool { return ws[i].id < ws[j].id })
	out := make([]*workerEntry, 0, need)
	for range need {
		var best *workerEntry
		for _, w := range ws {
			if free[w] == 0 {
				continue
			}
			if best == nil || c.cfg.Placement == PlaceSpread && free[w] > free[best] {
				best = w
			}
			if c.cfg.Placement == PlacePack {
				break
			}
		}
		free[best]--
		out = append(out, best)
	}
	return out, nil
}

// release gives back the slots an attempt holds on a worker ("" = all).
func (c *Coordinator) release(uid, worker string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.attempts[uid]
	if a == nil {
		return
	}
	for id, n := range a.slots {
		if worker != "" && id != worker {
			continue
		}
		if w := c.workers[id]; w != nil {
			w.used -= n
		}
		delete(a.slots, id)
	}
	if len(a.slots) == 0 {
		delete(c.attempts, uid)
	}
	c.signalLocked()
}

// remoteGroup is the part of an attempt on one worker, driven over gRPC.
type remoteGroup struct {
	c   *Coordinator
	w   *workerEntry
	uid string
	req *clusterpb.DeployRequest

	final []runtime.TaskStats // reported by Finish; guarded by c.mu
}

// rpcTimeout bounds the short control calls.
const rpcTimeout = 30 * time.Second

func (g *remoteGroup) err(what string, err error) error {
	st := status.Convert(err)
	e := fmt.Errorf("worker %s: %s: %s", g.w.id, what, st.Message())
	switch st.Code() {
	case codes.InvalidArgument:
		return runtime.Permanent(e)
	case codes.Unavailable:
		g.c.lose(g.w.id, err.Error())
		return fmt.Errorf("worker %s lost: %s: %s", g.w.id, what, st.Message())
	}
	return e
}

func (g *remoteGroup) Open(ctx context.Context) error {
	if _, err := g.w.client.Deploy(ctx, g.req); err != nil {
		return g.err("deploy", err)
	}
	return nil
}

func (g *remoteGroup) Run(ctx context.Context) error {
	_, err := g.w.client.Run(ctx, &clusterpb.AttemptRef{Attempt: g.uid})
	if err != nil {
		if status.Code(err) == codes.Unavailable {
			g.c.lose(g.w.id, err.Error()) // before a restart places tasks there
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return g.err("run", err)
	}
	return nil
}

func (g *remoteGroup) Trigger(b checkpoint.Barrier) error {
	bj, _ := json.Marshal(b)
	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	defer cancel()
	if _, err := g.w.client.Trigger(ctx, &clusterpb.TriggerRequest{Attempt: g.uid, BarrierJson: bj}); err != nil {
		return fmt.Errorf("worker %s: %s", g.w.id, status.Convert(err).Message())
	}
	return nil
}

func (g *remoteGroup) Notify(b checkpoint.Barrier, completed bool) {
	bj, _ := json.Marshal(b)
	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	defer cancel()
	if _, err := g.w.client.Notify(ctx, &clusterpb.NotifyRequest{Attempt: g.uid, BarrierJson: bj, Completed: completed}); err != nil {
		g.c.log.Warn("cluster: notifying a checkpoint", "worker", g.w.id, "checkpoint", b.ID, "err", err)
	}
}

func (g *remoteGroup) Finish(ctx context.Context, commit bool) (bool, error) {
	defer g.c.release(g.uid, g.w.id)
	// Final commits retry for seconds; the call outlives a cancelled job.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	r, err := g.w.client.Finish(fctx, &clusterpb.FinishRequest{Attempt: g.uid, Commit: commit})
	if err != nil {
		if !commit {
			return false, nil // a lost worker's tasks are gone already
		}
		return false, g.err("finish", err)
	}
	if len(r.GetStatsJson()) > 0 {
		var final []runtime.TaskStats
		if json.Unmarshal(r.GetStatsJson(), &final) == nil {
			g.c.mu.Lock()
			g.final = final
			g.c.mu.Unlock()
		}
	}
	if r.GetError() != "" {
		return r.GetCommitted(), fmt.Errorf("worker %s: %s", g.w.id, r.GetError())
	}
	return r.GetCommitted(), nil
}

func (g *remoteGroup) Stats() []runtime.TaskStats {
	g.c.mu.Lock()
	defer g.c.mu.Unlock()
	if g.final != nil {
		return g.final
	}
	var out []runtime.TaskStats
	for _, s := range g.w.stats {
		if s.Attempt == g.uid {
			out = append(out, s.TaskStats)
		}
	}
	return out
}

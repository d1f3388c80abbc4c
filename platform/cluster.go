package platform

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/weirstream/weir/platform/api"
	"github.com/weirstream/weir/platform/cluster"
	"github.com/weirstream/weir/platform/jobs"
	"github.com/weirstream/weir/runtime"
	"github.com/weirstream/weir/tenants"
)

// startCluster starts the coordinator's cluster side (and, for
// standalone, a worker in this process) and points the job manager at it.
func (p *Platform) startCluster(jc *jobs.Config) error {
	o := p.Options
	co := o.Cluster
	storage := o.Storage
	if !strings.Contains(storage, "://") {
		if abs, err := filepath.Abs(storage); err == nil {
			storage = abs // workers elsewhere on this machine resolve it alike
		}
	}
	coord, err := cluster.NewCoordinator(cluster.CoordinatorConfig{
		Secret: co.Secret, Storage: storage, Placement: co.Placement,
		HeartbeatTimeout: co.HeartbeatTimeout, SlotWait: co.SlotWait, Logger: o.Logger,
		Modules: func(ctx context.Context, tenant, ref string) ([]byte, error) {
			v, err := p.Registry.Resolve(tenant, ref)
			if err != nil {
				return nil, err
			}
			return p.Registry.Bytes(ctx, tenant, v)
		},
		SlotQuota: func(tenant string) int {
			t, err := p.Tenants.Tenant(tenant)
			if err != nil {
				return 0
			}
			return t.Quotas.Slots
		},
	})
	if err != nil {
		return err
	}
	p.Coordinator = coord
	ctx, cancel := context.WithCancel(context.Background())
	p.stopCluster = cancel
	p.clusterDone.Add(1)
	go func() {
		defer p.clusterDone.Done()
		if err := coord.Serve(ctx, co.Listener); err != nil {
			o.Logger.Error("cluster: serving workers", "err", err)
		}
	}()
	jc.Capacity = coord.Capacity
	jc.Cluster = func(tenant, job string) runtime.Cluster {
		return coord.ForJob(tenant, job, cluster.ConnectorPolicy{BaseDir: jobs.FilesDir(o.DataDir, tenant), Confine: true, KafkaBrokers: o.KafkaBrokers})
	}
	if co.LocalWorkerSlots <= 0 {
		return nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("local worker: %w", err)
	}
	w, err := cluster.NewWorker(cluster.WorkerConfig{
		ID: "local", Coordinator: co.Listener.Addr().String(), Slots: co.LocalWorkerSlots, Secret: co.Secret,
		DataDir: filepath.Join(o.DataDir, "worker"), Storage: p.Storage, Runtime: p.Runtime, Logger: o.Logger,
		LoadModule: p.Registry.Loader,
		Connectors: func(tenant, job string, _ cluster.ConnectorPolicy) (runtime.Connectors, *slog.Logger) {
			<-p.jobsReady // jobs resumed by jobs.New deploy before it returns
			if p.Jobs == nil {
				return runtime.Connectors{}, nil
			}
			return p.Jobs.JobConnectors(tenant, job)
		},
	}, ln)
	if err != nil {
		return err
	}
	p.LocalWorker = w
	p.clusterDone.Add(1)
	go func() {
		defer p.clusterDone.Done()
		if err := w.Serve(ctx); err != nil {
			o.Logger.Error("cluster: local worker", "err", err)
		}
	}()
	// Deploys check the registered slots: wait for the local worker.
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	return coord.WaitForSlots(wctx, co.LocalWorkerSlots)
}

// serveMetrics is GET /metrics: the tasks of every running job and their
// checkpoints, in the Prometheus text format. It needs an admin key
// (Authorization: Bearer ...): the series name every tenant's jobs.
func (p *Platform) serveMetrics(c echo.Context) error {
	token, ok := api.BearerToken(c.Request())
	pr, err := p.Tenants.Authenticate(token)
	if !ok || err != nil || pr.Role != tenants.RoleAdmin {
		return c.String(http.StatusUnauthorized, "an admin key is required (Authorization: Bearer <key>)\n")
	}
	var tasks []cluster.JobStats
	var cps []cluster.JobCheckpoints
	for _, j := range p.Jobs.RunningJobs() {
		for _, s := range j.Tasks {
			tasks = append(tasks, cluster.JobStats{Tenant: j.Tenant, Job: j.ID, TaskStats: s})
		}
		jc := cluster.JobCheckpoints{Tenant: j.Tenant, Job: j.ID}
		for _, h := range j.History {
			switch h.Status {
			case "completed":
				jc.Completed++
				jc.LastAt, jc.LastTook, jc.LastSize = h.TriggeredAt.Add(h.Duration), h.Duration, h.Size
				jc.LastAlign = msDuration(h.AlignmentMs)
			case "aborted":
				jc.Failed++
			}
		}
		cps = append(cps, jc)
	}
	c.Response().Header().Set(echo.HeaderContentType, "text/plain; version=0.0.4; charset=utf-8")
	c.Response().WriteHeader(http.StatusOK)
	return cluster.WritePrometheus(c.Response(), "", tasks, cps)
}

func msDuration(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

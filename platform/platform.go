// Package platform assembles Weir's services into one process: the
// metadata store, tenants, the module registry, the job manager, the
// REST API and the web console, over one checkpoint/module storage and one
// Wasm runtime. `weir
// standalone` is this package plus an HTTP listener; the cluster issue adds
// the coordinator/worker split behind the same job manager.
//
// Layout of the data directory (--data-dir, default ./weir-data):
//
//	meta/                 the metadata store (Pebble): tenants, keys, modules, jobs, savepoints, operations
//	storage/              checkpoints, savepoints and module bytes, unless --storage names S3
//	state/<tenant>/<job>  Pebble keyed state of running jobs
//	files/<tenant>/       the tenant's file area: file sources read and file sinks write here
//	admin.token           the bootstrap admin key, written once (0600)
package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/weirstream/weir/checkpoint"
	"github.com/weirstream/weir/console"
	"github.com/weirstream/weir/platform/api"
	"github.com/weirstream/weir/platform/cluster"
	"github.com/weirstream/weir/platform/jobs"
	"github.com/weirstream/weir/platform/meta"
	"github.com/weirstream/weir/platform/registry"
	"github.com/weirstream/weir/runtime"
	"github.com/weirstream/weir/runtime/clock"
	"github.com/weirstream/weir/tenants"
	"github.com/weirstream/weir/wasmhost"
)

// Options configure a Platform. Zero fields take the documented defaults.
type Options struct {
	// DataDir holds everything local (default ./weir-data).
	DataDir string
	// Storage is the checkpoint and module storage URI (default
	// <DataDir>/storage): a directory, file://, or s3://bucket/prefix?endpoint=...
	Storage        string
	StorageOptions checkpoint.StorageOptions
	// Slots this process offers to jobs (default 16).
	Slots int
	// CacheDir is wazero's compilation cache ("" : in memory).
	CacheDir string
	// UpgradeGrace: see jobs.Config (default 10s).
	UpgradeGrace time.Duration
	// KafkaBrokers: see jobs.Config (none: no kafka connectors).
	KafkaBrokers []string
	Clock        clock.Clock
	Logger       *slog.Logger
	// Cluster makes the platform a coordinator: jobs run on the workers
	// that register with it. Nil runs them in this process without the
	// cluster protocol (tests, embedding).
	Cluster *ClusterOptions
}

// ClusterOptions configure the coordinator's cluster side.
type ClusterOptions struct {
	// Listener serves the workers (gRPC).
	Listener net.Listener
	// Secret is the shared cluster secret.
	Secret []byte
	// Placement: cluster.PlaceSpread (default) or cluster.PlacePack.
	Placement string
	// HeartbeatTimeout, SlotWait: see cluster.CoordinatorConfig.
	HeartbeatTimeout, SlotWait time.Duration
	// LocalWorkerSlots > 0 starts a worker with that many slots in this
	// process, connected to the coordinator over loopback like any other
	// (`weir standalone`).
	LocalWorkerSlots int
}

// Platform is the assembled services.
type Platform struct {
	Options  Options
	Meta     *meta.Store
	Storage  checkpoint.Storage
	Runtime  *wasmhost.Runtime
	Tenants  *tenants.Service
	Registry *registry.Registry
	Jobs     *jobs.Manager
	API      *api.Server
	// Coordinator and LocalWorker are set in cluster mode.
	Coordinator *cluster.Coordinator
	LocalWorker *cluster.Worker

	stopCluster context.CancelFunc
	clusterDone sync.WaitGroup
	jobsReady   chan struct{} // closed once Jobs is set
}

// Open opens (creating if needed) the platform's data and resumes its jobs.
func Open(ctx context.Context, o Options) (p *Platform, err error) {
	if o.DataDir == "" {
		o.DataDir = "weir-data"
	}
	if o.Storage == "" {
		o.Storage = filepath.Join(o.DataDir, "storage")
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.StorageOptions.Logger == nil {
		o.StorageOptions.Logger = o.Logger
	}
	if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	p = &Platform{Options: o, jobsReady: make(chan struct{})}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	if p.Meta, err = meta.Open(filepath.Join(o.DataDir, "meta")); err != nil {
		return nil, err
	}
	if p.Storage, err = checkpoint.OpenStorage(o.Storage, o.StorageOptions); err != nil {
		return nil, fmt.Errorf("storage %s: %w", o.Storage, err)
	}
	if p.Runtime, err = wasmhost.NewRuntime(ctx, wasmhost.Config{CacheDir: o.CacheDir}); err != nil {
		return nil, err
	}
	if p.Tenants, err = tenants.New(p.Meta, o.Clock.Now); err != nil {
		return nil, err
	}
	p.Registry = registry.New(p.Meta, p.Storage, p.Runtime, o.Clock.Now, o.Logger)
	jc := jobs.Config{
		DataDir: o.DataDir, Storage: p.Storage, Meta: p.Meta,
		Resolve: func(tenant, ref string) (jobs.PinnedModule, error) {
			v, err := p.Registry.Resolve(tenant, ref)
			if err != nil {
				return jobs.PinnedModule{}, err
			}
			return jobs.PinnedModule{Ref: ref, Pinned: v.Ref(), Digest: v.Digest}, nil
		},
		Loader:       func(tenant string) runtime.ModuleLoader { return p.Registry.Loader(tenant) },
		Quotas:       func(tenant string) (tenants.Quotas, error) { t, err := p.Tenants.Tenant(tenant); return t.Quotas, err },
		Slots:        o.Slots,
		UpgradeGrace: o.UpgradeGrace,
		KafkaBrokers: o.KafkaBrokers,
		Clock:        o.Clock,
		Logger:       o.Logger,
	}
	if o.Cluster != nil {
		if err := p.startCluster(&jc); err != nil {
			return nil, err
		}
	}
	p.Jobs, err = jobs.New(jc)
	close(p.jobsReady)
	if err != nil {
		return nil, err
	}
	p.API = api.New(api.Config{
		Tenants: p.Tenants, Registry: p.Registry, Jobs: p.Jobs, Logger: o.Logger,
		TenantCleanup: func(tenant string) error { return os.RemoveAll(p.Jobs.FilesDir(tenant)) },
	})
	console.New(console.Config{API: p.API, Logger: o.Logger, Now: o.Clock.Now}).Register(p.API.Echo())
	p.API.Echo().GET("/metrics", p.serveMetrics)
	return p, nil
}

// Close stops the jobs (they resume when the platform opens again) and
// releases everything.
func (p *Platform) Close() {
	ctx := context.Background()
	if p.Jobs != nil {
		p.Jobs.Close()
	}
	if p.stopCluster != nil {
		p.stopCluster()
		p.clusterDone.Wait()
	}
	if p.Registry != nil {
		_ = p.Registry.Close(ctx)
	}
	if p.Runtime != nil {
		_ = p.Runtime.Close(ctx)
	}
	if p.Meta != nil {
		_ = p.Meta.Close()
	}
}

// AdminTokenFile is where Bootstrap writes the first admin key.
func (p *Platform) AdminTokenFile() string { return filepath.Join(p.Options.DataDir, "admin.token") }

// Bootstrap creates an admin key when there is no usable one, writes its
// token to AdminTokenFile (mode 0600) and returns it; otherwise it returns
// "" (the token was shown when it was created and is not stored).
func (p *Platform) Bootstrap() (string, error) {
	if p.Tenants.HasAdminKey() {
		return "", nil
	}
	_, token, err := p.Tenants.CreateKey("", tenants.RoleAdmin, "bootstrap", nil)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(p.AdminTokenFile(), []byte(token+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("writing the admin token: %w", err)
	}
	return token, nil
}

// Serve serves the API (and whatever else is registered on it) on ln
// until ctx ends, then shuts the server down gracefully.
func (p *Platform) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: p.API, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if e := <-done; !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	return err
}

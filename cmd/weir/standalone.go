package main

import (
	"context"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/weirstream/weir/platform"
	"github.com/weirstream/weir/platform/cluster"
	"github.com/weirstream/weir/platform/jobs"
	"github.com/weirstream/weir/platform/registry"
	"github.com/weirstream/weir/tenants"
)

// demoSpecs are the jobs `weir standalone --demo` deploys.
//
//go:embed demo/*.yaml
var demoSpecs embed.FS

// demoModules are the example modules the demo uploads, by name; each is
// <examples>/<name>/<name>.wasm (built by `make wasm`).
var demoModules = []string{"wordcount", "windowed-sum", "fraud"}

// demoInputs are copied from <examples>/<dir>/<file> into the demo
// tenant's file area as <dir>/<file>.
var demoInputs = []string{"wordcount/input.txt", "windowed-sum/input.jsonl", "fraud/input.jsonl"}

const demoTenant = "demo"

func cmdStandalone(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runStandalone(ctx, args, stdout, stderr)
}

func cmdCoordinator(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runPlatform(ctx, "coordinator", args, stdout, stderr)
}

// runStandalone serves until ctx ends.
func runStandalone(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runPlatform(ctx, "standalone", args, stdout, stderr)
}

// runPlatform serves `weir standalone` (a coordinator with a worker in the
// same process, connected over loopback like any other worker) or `weir
// coordinator` (workers register over the network) until ctx ends.
func runPlatform(ctx context.Context, mode string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(mode, flag.ContinueOnError)
	fs.SetOutput(stderr)
	standalone := mode == "standalone"
	var slots *int
	var clusterListen, secretFile, placement *string
	var heartbeat, slotWait *time.Duration
	if standalone {
		slots = fs.Int("slots", 16, "task slots this process offers")
	} else {
		clusterListen = fs.String("cluster-listen", ":7070", "address workers connect to (gRPC)")
		secretFile = fs.String("cluster-secret-file", "", "file holding the shared cluster secret (default: $WEIR_CLUSTER_SECRET)")
		placement = fs.String("placement", cluster.PlaceSpread, "task placement: spread (even over workers) or pack (fill workers in turn)")
		heartbeat = fs.Duration("heartbeat-timeout", 10*time.Second, "a worker silent this long is lost (its jobs restart on the others)")
		slotWait = fs.Duration("slot-wait", 30*time.Second, "how long a restarting or recovering job waits for free slots")
	}
	listen := fs.String("listen", ":8080", "address of the REST API (and the console)")
	dataDir := fs.String("data-dir", "weir-data", "directory of the metadata store, local storage, state and tenants' files")
	storage := fs.String("storage", "", "checkpoint and module storage: a directory, file:// or s3://bucket/prefix?endpoint=HOST:PORT (default: DATA-DIR/storage)")
	cacheDir := fs.String("cache-dir", defaultCacheDir(), "wazero compilation cache directory (empty: in memory)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	kafka := fs.String("kafka-brokers", "", "comma-separated Kafka bootstrap brokers (host:port) tenants' jobs may use (default: none, the kafka connectors are refused)")
	demo := fs.String("demo", "", "create the demo tenant, upload the example modules from this examples directory and deploy the demo jobs")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: weir %s [flags]\n", mode)
		fs.PrintDefaults()
	}
	if err := fs.Parse(reorderFlags(args)); err != nil {
		return exitUsage
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return exitUsage
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "weir: --log-level: %v\n", err)
		return exitUsage
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "weir: --listen: %v\n", err)
		return exitUsage
	}
	var brokers []string
	for _, b := range strings.Split(*kafka, ",") {
		if b = strings.TrimSpace(b); b != "" {
			brokers = append(brokers, b)
		}
	}
	co := &platform.ClusterOptions{}
	var cln net.Listener
	if standalone {
		co.LocalWorkerSlots = *slots
		co.Secret = []byte(randomSecret())
		cln, err = net.Listen("tcp", "127.0.0.1:0")
	} else {
		if co.Secret, err = readSecret(*secretFile); err != nil {
			ln.Close()
			fmt.Fprintf(stderr, "weir: %v\n", err)
			return exitUsage
		}
		co.Placement, co.HeartbeatTimeout, co.SlotWait = *placement, *heartbeat, *slotWait
		cln, err = net.Listen("tcp", *clusterListen)
	}
	if err != nil {
		ln.Close()
		fmt.Fprintf(stderr, "weir: cluster listener: %v\n", err)
		return exitUsage
	}
	co.Listener = cln
	p, err := platform.Open(ctx, platform.Options{DataDir: *dataDir, Storage: *storage, CacheDir: *cacheDir,
		KafkaBrokers: brokers, Logger: logger, Cluster: co})
	if err != nil {
		ln.Close()
		cln.Close()
		fmt.Fprintf(stderr, "weir: %v\n", err)
		return exitFailed
	}
	defer p.Close()
	url := "http://" + displayAddr(ln.Addr())
	fmt.Fprintf(stdout, "weir %s %s: console %s/ · API %s/v1 (OpenAPI: %s/v1/openapi.json) · data in %s\n", mode, version, url, url, url, *dataDir)
	if !standalone {
		fmt.Fprintf(stdout, "workers: weir worker --coordinator %s --slots N (cluster protocol %s)\n", displayAddr(cln.Addr()), cluster.ProtocolVersion)
	}
	token, err := p.Bootstrap()
	if err != nil {
		fmt.Fprintf(stderr, "weir: %v\n", err)
		return exitFailed
	}
	if token != "" {
		fmt.Fprintf(stdout, "admin API key (shown once; also saved in %s):\n  %s\n", p.AdminTokenFile(), token)
	}
	if *demo != "" {
		if err := setUpDemo(p, *demo, url, stdout); err != nil {
			fmt.Fprintf(stderr, "weir: demo: %v\n", err)
			return exitFailed
		}
	}
	fmt.Fprintln(stdout, "serving; Ctrl-C stops (running jobs resume at the next start)")
	if err := p.Serve(ctx, ln); err != nil {
		fmt.Fprintf(stderr, "weir: %v\n", err)
		return exitFailed
	}
	return exitOK
}

// displayAddr turns ":8080" / "[::]:8080" into something a user can click.
func displayAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// setUpDemo creates the demo tenant (once), a fresh owner key, uploads the
// example modules and deploys the demo jobs that are not there yet.
func setUpDemo(p *platform.Platform, examples, url string, out io.Writer) error {
	if _, err := p.Tenants.Tenant(demoTenant); errors.Is(err, tenants.ErrNotFound) {
		if _, err := p.Tenants.CreateTenant(demoTenant, nil); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	_, token, err := p.Tenants.CreateKey(demoTenant, tenants.RoleOwner, "demo", nil)
	if err != nil {
		return err
	}
	t, _ := p.Tenants.Tenant(demoTenant)
	ctx := context.Background()
	for _, name := range demoModules {
		wasm, err := os.ReadFile(filepath.Join(examples, name, name+".wasm"))
		if err != nil {
			return fmt.Errorf("%w (build the examples with `make wasm`)", err)
		}
		v, _, err := p.Registry.Upload(ctx, demoTenant, name, wasm, registry.Limits{MaxModules: t.Quotas.Modules, MaxBytes: t.Quotas.ModuleBytes})
		if err != nil {
			return fmt.Errorf("uploading %s: %w", name, err)
		}
		fmt.Fprintf(out, "module %s (%s, %d operators)\n", v.Ref(), v.Digest[:19], len(v.Operators))
	}
	files := p.Jobs.FilesDir(demoTenant)
	for _, in := range demoInputs {
		b, err := os.ReadFile(filepath.Join(examples, in))
		if err != nil {
			return err
		}
		dst := filepath.Join(files, filepath.FromSlash(in))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			return err
		}
	}
	have := map[string]bool{}
	for _, j := range p.Jobs.List(demoTenant) {
		have[j.Name] = true
	}
	entries, err := demoSpecs.ReadDir("demo")
	if err != nil {
		return err
	}
	for _, e := range entries {
		spec, err := demoSpecs.ReadFile("demo/" + e.Name())
		if err != nil {
			return err
		}
		name := strings.TrimSuffix(e.Name(), ".yaml")
		if have[name] {
			continue
		}
		j, err := p.Jobs.Deploy(demoTenant, jobs.DeployRequest{Spec: spec})
		if err != nil {
			return fmt.Errorf("deploying %s: %w", name, err)
		}
		fmt.Fprintf(out, "job %s (%s) %s\n", j.ID, j.Name, j.State)
	}
	fmt.Fprintf(out, `
demo tenant %q: owner API key (shown once; sign in to the console at %s/ with it):
  %s
try:
  export WEIR_URL=%s WEIR_TOKEN=%s
  bin/weir job list
  curl -H "Authorization: Bearer $WEIR_TOKEN" $WEIR_URL/v1/jobs
output of the file sinks: %s
`, demoTenant, url, token, url, token, files)
	return nil
}

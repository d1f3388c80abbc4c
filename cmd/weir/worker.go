package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/weirstream/weir/checkpoint"
	"github.com/weirstream/weir/platform/cluster"
	"github.com/weirstream/weir/wasmhost"
)

func cmdWorker(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runWorker(ctx, args, stdout, stderr)
}

// runWorker serves `weir worker` until ctx ends.
func runWorker(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	coordinator := fs.String("coordinator", "", "the coordinator's cluster address (its --cluster-listen), host:port")
	slots := fs.Int("slots", 4, "task slots this worker offers")
	listen := fs.String("listen", ":7071", "address of this worker's service (control calls and the data plane)")
	advertise := fs.String("advertise", "", "address the coordinator and other workers dial (default: the listen address)")
	id := fs.String("id", "", "worker id (default: the advertised address)")
	metricsListen := fs.String("metrics-listen", ":9249", "address of the Prometheus /metrics of this worker's tasks (empty: off)")
	dataDir := fs.String("data-dir", "weir-worker-data", "local state of the tasks (disposable: rebuilt from checkpoints)")
	storage := fs.String("storage", "", "checkpoint storage, as the coordinator's --storage (default: the one the coordinator announces)")
	secretFile := fs.String("cluster-secret-file", "", "file holding the shared cluster secret (default: $WEIR_CLUSTER_SECRET)")
	cacheDir := fs.String("cache-dir", defaultCacheDir(), "wazero compilation cache directory (empty: in memory)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	protocol := fs.String("protocol-version", cluster.ProtocolVersion, "cluster protocol version to speak (for testing upgrades)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: weir worker --coordinator HOST:PORT [--slots N] [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(reorderFlags(args)); err != nil {
		return exitUsage
	}
	if fs.NArg() != 0 || *coordinator == "" {
		fs.Usage()
		return exitUsage
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "weir: --log-level: %v\n", err)
		return exitUsage
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	secret, err := readSecret(*secretFile)
	if err != nil {
		fmt.Fprintf(stderr, "weir: %v\n", err)
		return exitUsage
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "weir: --listen: %v\n", err)
		return exitUsage
	}
	adv := *advertise
	if adv == "" {
		adv = displayAddr(ln.Addr())
	}
	rt, err := wasmhost.NewRuntime(ctx, wasmhost.Config{CacheDir: *cacheDir})
	if err != nil {
		ln.Close()
		fmt.Fprintf(stderr, "weir: %v\n", err)
		return exitFailed
	}
	defer rt.Close(context.Background())
	cfg := cluster.WorkerConfig{
		ID: *id, Coordinator: *coordinator, Advertise: adv, Slots: *slots, Secret: secret,
		DataDir: *dataDir, Runtime: rt, Logger: logger,
		OpenStorage: func(_ context.Context, url string) (checkpoint.Storage, error) {
			return checkpoint.OpenStorage(url, checkpoint.StorageOptions{Logger: logger})
		},
	}
	cluster.SetProtocolForTesting(&cfg, *protocol)
	if *storage != "" {
		if cfg.Storage, err = checkpoint.OpenStorage(*storage, checkpoint.StorageOptions{Logger: logger}); err != nil {
			ln.Close()
			fmt.Fprintf(stderr, "weir: --storage: %v\n", err)
			return exitUsage
		}
	}
	var mln net.Listener
	if *metricsListen != "" {
		if mln, err = net.Listen("tcp", *metricsListen); err != nil {
			ln.Close()
			fmt.Fprintf(stderr, "weir: --metrics-listen: %v\n", err)
			return exitUsage
		}
		cfg.MetricsAddress = displayAddr(mln.Addr())
		if host, _, err := net.SplitHostPort(adv); err == nil {
			_, port, _ := net.SplitHostPort(mln.Addr().String())
			cfg.MetricsAddress = net.JoinHostPort(host, port) // reachable where the worker is
		}
	}
	w, err := cluster.NewWorker(cfg, ln)
	if err != nil {
		ln.Close()
		fmt.Fprintf(stderr, "weir: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "weir worker %s: id %s, %d slots, serving %s, coordinator %s\n", version, w.ID(), *slots, adv, *coordinator)
	if mln != nil {
		srv := &http.Server{Handler: w.MetricsHandler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(mln) }()
		defer srv.Close()
		fmt.Fprintf(stdout, "metrics: http://%s/metrics\n", displayAddr(mln.Addr()))
	}
	if err := w.Serve(ctx); err != nil {
		fmt.Fprintf(stderr, "weir: %v\n", err)
		return exitFailed
	}
	return exitOK
}

// readSecret reads the cluster secret from file, else $WEIR_CLUSTER_SECRET.
func readSecret(file string) ([]byte, error) {
	var s string
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--cluster-secret-file: %w", err)
		}
		s = string(b)
	} else {
		s = os.Getenv("WEIR_CLUSTER_SECRET")
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("a cluster secret is required: --cluster-secret-file FILE or WEIR_CLUSTER_SECRET")
	}
	return []byte(s), nil
}

// randomSecret is standalone's secret: only its own worker knows it.
func randomSecret() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

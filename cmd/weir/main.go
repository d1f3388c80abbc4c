// Command weir is Weir's single binary:
//
//	weir standalone      the platform in one process: REST API, tenants, modules, jobs
//	weir run JOB.yaml    run one job in this process and show progress
//	weir validate JOB.yaml
//	weir version
//	weir tenant|key|module|job|savepoint|operation|me|quotas ...
//	                     the REST API's client (WEIR_URL, WEIR_TOKEN)
//
// A running `weir run` takes a savepoint on SIGUSR1 and stops with a
// savepoint on SIGUSR2 (Flink's stop-with-savepoint); it prints where the
// savepoint is, and `weir run --from-savepoint PATH` starts from it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/checkpoint"
	"github.com/weirstream/weir/connectors"
	"github.com/weirstream/weir/runtime"
	"github.com/weirstream/weir/wasmhost"
)

// version is set by the build (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: weir <command> [flags]

commands:
  standalone         run the platform (REST API, tenants, modules, jobs) in one process
  coordinator        run the platform as a cluster coordinator: jobs run on workers
  worker             offer task slots to a coordinator (--coordinator ADDR --slots N)
  run JOB.yaml       run a job in this process until its bounded input is done
  validate JOB.yaml  check a job spec (modules, operators, connectors) without running it
  version            print the version
`)
	clientUsage(w)
}

// Exit codes.
const (
	exitOK      = 0
	exitFailed  = 1 // the job failed
	exitUsage   = 2 // bad command line or job spec
	exitStopped = 130
)

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stdout, stderr, true)
	case "validate":
		return cmdRun(args[1:], stdout, stderr, false)
	case "standalone":
		return cmdStandalone(args[1:], stdout, stderr)
	case "coordinator":
		return cmdCoordinator(args[1:], stdout, stderr)
	case "worker":
		return cmdWorker(args[1:], stdout, stderr)
	case "tenant", "key", "module", "job", "savepoint", "operation", "me", "quotas":
		return clientCommand(args, stdout, stderr, os.Getenv)
	case "version":
		fmt.Fprintf(stdout, "weir %s (ABI v%d)\n", version, abi.Version)
		return exitOK
	case "help", "-h", "--help":
		usage(stdout)
		return exitOK
	}
	fmt.Fprintf(stderr, "weir: unknown command %q\n", args[0])
	usage(stderr)
	return exitUsage
}

func cmdRun(args []string, stdout, stderr io.Writer, execute bool) int {
	name := "run"
	if !execute {
		name = "validate"
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	stateBackend := fs.String("state", "", "keyed-state backend: memory or pebble (overrides the spec)")
	stateDir := fs.String("state-dir", "", "directory for pebble state (default: a temporary directory)")
	parallelism := fs.Int("parallelism", 0, "default parallelism of nodes (overrides the spec's)")
	cacheDir := fs.String("cache-dir", defaultCacheDir(), "wazero compilation cache directory (empty: in memory)")
	progress := fs.Duration("progress", time.Second, "progress report interval (0: none)")
	logLevel := fs.String("log-level", "warn", "log level: debug, info, warn, error")
	cpDir := fs.String("checkpoint-dir", "", "checkpoint storage: a directory or file:// URI, or s3://bucket/prefix?endpoint=HOST:PORT (default: the spec's checkpoints.storage, else weir-data/checkpoints)")
	cpInterval := fs.Duration("checkpoint-interval", -1, "checkpoint interval (overrides the spec's; 0: no periodic checkpoints)")
	cpMode := fs.String("checkpoint-mode", "", "exactly-once or at-least-once (overrides the spec's)")
	fromSavepoint := fs.String("from-savepoint", "", "start from this savepoint (or retained checkpoint) folder: a directory or URI")
	allowNonRestored := fs.Bool("allow-non-restored-state", false, "with --from-savepoint: drop state the job cannot map instead of failing")
	resume := fs.Bool("resume", false, "restart from the newest intact checkpoint of an earlier run of this job (else its checkpoints are deleted at start)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: weir %s [flags] JOB.yaml\n", name)
		fs.PrintDefaults()
	}
	if err := fs.Parse(reorderFlags(args)); err != nil {
		return exitUsage
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitUsage
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "weir: --log-level: %v\n", err)
		return exitUsage
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	specPath := fs.Arg(0)
	spec, err := runtime.LoadSpec(specPath)
	if err != nil {
		fmt.Fprintf(stderr, "weir: %v\n", err)
		return exitUsage
	}
	if *stateBackend != "" {
		spec.State.Backend = *stateBackend
	}
	if *stateDir != "" {
		spec.State.Dir = *stateDir
	}
	if *parallelism != 0 {
		// The job default; nodes that pin their parallelism keep it.
		spec.Parallelism = *parallelism
	}
	if *cpInterval >= 0 {
		spec.Checkpoints.Interval = runtime.Duration(*cpInterval)
	}
	if *cpMode != "" {
		spec.Checkpoints.Mode = *cpMode
	}
	storageURI := *cpDir
	if storageURI == "" {
		storageURI = spec.Checkpoints.Storage
	}
	if storageURI == "" {
		storageURI = filepath.Join("weir-data", "checkpoints")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rt, err := wasmhost.NewRuntime(ctx, wasmhost.Config{CacheDir: *cacheDir})
	if err != nil {
		fmt.Fprintf(stderr, "weir: %v\n", err)
		return exitFailed
	}
	defer rt.Close(context.Background())
	var conns runtime.Connectors
	connectors.RegisterWithBase(&conns, filepath.Dir(specPath))
	var cpOpts *runtime.CheckpointOptions
	if execute {
		store, err := checkpoint.OpenStorage(storageURI, checkpoint.StorageOptions{Logger: logger})
		if err != nil {
			fmt.Fprintf(stderr, "weir: --checkpoint-dir: %v\n", err)
			return exitUsage
		}
		cpOpts = &runtime.CheckpointOptions{Storage: store, Resume: *resume}
		if *fromSavepoint != "" {
			// A retained checkpoint references shared files beside it:
			// open its job folder and restore from checkpoints/chk-N.
			root, dir := *fromSavepoint, ""
			if parent := filepath.Dir(filepath.Clean(root)); !strings.Contains(root, "://") &&
				strings.HasPrefix(filepath.Base(root), "chk-") && filepath.Base(parent) == "checkpoints" {
				root, dir = filepath.Dir(parent), "checkpoints/"+filepath.Base(root)
			}
			sp, err := checkpoint.OpenStorage(root, checkpoint.StorageOptions{Logger: logger})
			if err != nil {
				fmt.Fprintf(stderr, "weir: --from-savepoint: %v\n", err)
				return exitUsage
			}
			cpOpts.From = &runtime.RestoreFrom{Storage: sp, Dir: dir, AllowNonRestoredState: *allowNonRestored}
		}
	}
	ev := &eventPrinter{w: stderr}
	job, err := runtime.Compile(ctx, spec, runtime.Options{
		Connectors: conns,
		LoadModule: runtime.WasmLoader(rt),
		Logger:     logger,
		Checkpoint: cpOpts,
		OnEvent:    ev.print,
	})
	if err != nil {
		fmt.Fprintf(stderr, "weir: %s: %v\n", specPath, err)
		return exitUsage
	}
	if !execute {
		fmt.Fprintf(stdout, "%s: valid; tasks: %s\n", specPath, strings.Join(job.Graph(), ", "))
		return exitOK
	}
	fmt.Fprintf(stderr, "weir: running %s (%s)\n", spec.Name, strings.Join(job.Graph(), ", "))
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- job.Run(ctx) }()
	var ticker <-chan time.Time
	if *progress > 0 {
		t := time.NewTicker(*progress)
		defer t.Stop()
		ticker = t.C
	}
	rep := newReporter(stderr)
	savepointSig := make(chan os.Signal, 1)
	signal.Notify(savepointSig, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(savepointSig)
	for {
		select {
		case sig := <-savepointSig:
			stopJob := sig == syscall.SIGUSR2
			go func() {
				what := "savepoint"
				take := job.Savepoint
				if stopJob {
					what, take = "stop-with-savepoint", job.StopWithSavepoint
				}
				fmt.Fprintf(stderr, "weir: %s requested\n", what)
				_, dir, err := take(ctx, "")
				if err != nil {
					fmt.Fprintf(stderr, "weir: %s failed: %v\n", what, err)
					return
				}
				fmt.Fprintf(stderr, "weir: savepoint written to %s\n", storagePath(cpOpts.Storage, dir))
			}()
		case err := <-done:
			rep.report(job.Stats(), time.Since(start), true)
			switch {
			case err == nil:
				fmt.Fprintf(stderr, "weir: %s finished in %s\n", spec.Name, time.Since(start).Round(time.Millisecond))
				return exitOK
			case errors.Is(err, context.Canceled) && ctx.Err() != nil:
				fmt.Fprintf(stderr, "weir: %s stopped\n", spec.Name)
				return exitStopped
			default:
				fmt.Fprintf(stderr, "weir: %s failed: %v\n", spec.Name, err)
				return exitFailed
			}
		case <-ticker:
			rep.report(job.Stats(), time.Since(start), false)
			if h := job.History(); len(h) > 0 {
				rep.checkpoints(h)
			}
		}
	}
}

// storagePath names a storage folder for the user: a local path for
// directory storage (what --from-savepoint takes), else a URI.
func storagePath(s checkpoint.Storage, dir string) string {
	if l, ok := s.(*checkpoint.LocalStorage); ok {
		return filepath.Join(l.Root(), filepath.FromSlash(dir))
	}
	return fmt.Sprintf("%v/%s", s, dir)
}

// eventPrinter shows failures, restarts and savepoints as they happen.
type eventPrinter struct {
	w io.Writer
}

func (p *eventPrinter) print(e runtime.Event) {
	switch e.Kind {
	case runtime.EventFailed:
		fmt.Fprintf(p.w, "weir: attempt %d failed: %v\n", e.Attempt, e.Err)
	case runtime.EventRestarting:
		fmt.Fprintf(p.w, "weir: restarting (attempt %d) in %v\n", e.Attempt, e.Delay)
	case runtime.EventRestored:
		fmt.Fprintf(p.w, "weir: attempt %d restored from %s (checkpoint %d)\n", e.Attempt, e.Dir, e.Checkpoint)
	case runtime.EventCheckpointSkipped:
		fmt.Fprintf(p.w, "weir: checkpoint %d is damaged, falling back to an older one: %v\n", e.Checkpoint, e.Err)
	case runtime.EventSavepoint:
		fmt.Fprintf(p.w, "weir: savepoint %d completed\n", e.Checkpoint)
	}
}

// boolFlags are the flags that take no value.
var boolFlags = map[string]bool{"resume": true, "allow-non-restored-state": true}

// reorderFlags lets flags follow the positional argument (weir run job.yaml --state pebble).
func reorderFlags(args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			pos = append(pos, args[i+1:]...)
			i = len(args)
		case strings.HasPrefix(a, "-"):
			flags = append(flags, a)
			// Every other flag of these commands takes a value.
			if !strings.Contains(a, "=") && !boolFlags[strings.TrimLeft(a, "-")] && i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
		default:
			pos = append(pos, a)
		}
	}
	return append(flags, pos...)
}

func defaultCacheDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "weir", "wasm")
}

// reporter prints per-node progress: records in/out per second since the
// last report and the current watermark.
type reporter struct {
	w    io.Writer
	last map[string][2]int64
	at   time.Duration
}

func newReporter(w io.Writer) *reporter { return &reporter{w: w, last: map[string][2]int64{}} }

func (r *reporter) report(stats []runtime.TaskStats, elapsed time.Duration, final bool) {
	type agg struct {
		in, out, late int64
		wm            int64
		done, tasks   int
	}
	byChain := map[string]*agg{}
	var order []string
	for _, s := range stats {
		key := strings.Join(s.Nodes, "+")
		a := byChain[key]
		if a == nil {
			a = &agg{wm: abi.MaxWatermark}
			byChain[key] = a
			order = append(order, key)
		}
		a.in += s.RecordsIn
		a.out += s.RecordsOut
		a.late += s.LateDropped
		a.tasks++
		if s.Finished {
			a.done++
		}
		if s.Watermark < a.wm {
			a.wm = s.Watermark
		}
	}
	sort.Strings(order)
	dt := (elapsed - r.at).Seconds()
	r.at = elapsed
	if final {
		dt = elapsed.Seconds()
	}
	fmt.Fprintf(r.w, "-- %s\n", elapsed.Round(100*time.Millisecond))
	for _, k := range order {
		a := byChain[k]
		prev := r.last[k]
		if final {
			prev = [2]int64{}
		}
		r.last[k] = [2]int64{a.in, a.out}
		rate := func(n int64) string {
			if dt <= 0 {
				return "-"
			}
			return fmt.Sprintf("%.0f/s", float64(n)/dt)
		}
		fmt.Fprintf(r.w, "   %-28s in %10d (%10s)  out %10d (%10s)  wm %-24s tasks %d/%d done\n",
			k, a.in, rate(a.in-prev[0]), a.out, rate(a.out-prev[1]), formatWatermark(a.wm), a.done, a.tasks)
	}
}

func formatWatermark(wm int64) string {
	switch wm {
	case abi.MinWatermark:
		return "-"
	case abi.MaxWatermark:
		return "end"
	}
	return time.UnixMilli(wm).UTC().Format("2006-01-02T15:04:05.000Z")
}

// checkpoints prints a line about the newest completed checkpoint and the
// counts so far.
func (r *reporter) checkpoints(h []checkpoint.Stats) {
	var done, aborted int
	var last *checkpoint.Stats
	for i := range h {
		switch h[i].Status {
		case "completed":
			done++
			if !h[i].Savepoint {
				last = &h[i]
			}
		case "aborted":
			aborted++
		}
	}
	if last == nil {
		fmt.Fprintf(r.w, "   checkpoints: %d completed, %d aborted\n", done, aborted)
		return
	}
	fmt.Fprintf(r.w, "   checkpoints: %d completed, %d aborted; last #%d took %v, %d bytes (%d new), alignment %.1fms\n",
		done, aborted, last.ID, last.Duration.Round(time.Millisecond), last.Size, last.Uploaded, last.AlignmentMs)
}

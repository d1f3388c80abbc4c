package connectors

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/weirstream/weir/runtime"
)

// RegisterOptions configure the connectors a Register call adds. The zero value is
// what Register uses.
type RegisterOptions struct {
	// BaseDir resolves relative paths of the file source and the file sink
	// (normally the directory of the job spec). Empty means the process's
	// working directory.
	BaseDir string
	// Confine keeps file paths inside BaseDir: absolute paths and paths
	// that climb out with ".." are config errors. The platform sets it,
	// with BaseDir the tenant's file area, so that a tenant's job spec can
	// never read or write another tenant's (or the host's) files.
	Confine bool
	// Stdout is where print sinks write. Nil means os.Stdout. All print
	// sinks of one registration share one lock around it, so lines of
	// concurrent subtasks never interleave within a line.
	Stdout io.Writer
	// Kafka, when not nil, restricts the brokers kafka sources and sinks may
	// name (the platform sets it: a tenant's job must not reach arbitrary
	// hosts). Nil allows any broker (weir run).
	Kafka *KafkaPolicy
	// Blackhole, when not nil, receives the counts of every blackhole sink
	// of this registration (benchmarks read them). When nil the sinks still
	// count, into counters nobody reads.
	Blackhole *BlackholeCounters
}

// Register adds every connector of this package to c under its job-spec name:
// sources "datagen", "nexmark", "file" and "kafka", sinks "print",
// "blackhole", "file" and "kafka".
// Relative file paths resolve against the working directory.
func Register(c *runtime.Connectors) { RegisterWithOptions(c, RegisterOptions{}) }

// RegisterWithBase is Register with relative file paths resolved against
// baseDir (the job spec's directory).
func RegisterWithBase(c *runtime.Connectors, baseDir string) {
	RegisterWithOptions(c, RegisterOptions{BaseDir: baseDir})
}

// RegisterWithOptions is Register with explicit options.
func RegisterWithOptions(c *runtime.Connectors, o RegisterOptions) {
	if c.Sources == nil {
		c.Sources = make(map[string]runtime.SourceFactory)
	}
	if c.Sinks == nil {
		c.Sinks = make(map[string]runtime.SinkFactory)
	}
	out := o.Stdout
	if out == nil {
		out = os.Stdout
	}
	// One lock per registration rather than per sink: print sinks of all
	// subtasks (and all nodes) share the writer.
	shared := &lockedWriter{w: out}
	counters := o.Blackhole
	if counters == nil {
		counters = new(BlackholeCounters)
	}
	c.Sources["datagen"] = NewDatagenFactory()
	c.Sources["nexmark"] = newNexmarkFactory()
	root := fileRoot{base: o.BaseDir, confined: o.Confine}
	c.Sources["file"] = newFileSourceFactory(root)
	c.Sinks["print"] = newPrintFactory(shared)
	c.Sinks["blackhole"] = NewBlackholeFactory(counters)
	c.Sinks["file"] = newFileSinkFactory(root)
	c.Sources["kafka"] = NewKafkaSourceFactory()
	c.Sinks["kafka"] = NewKafkaSinkFactory()
	if p := o.Kafka; p != nil {
		source, sink := c.Sources["kafka"], c.Sinks["kafka"]
		c.Sources["kafka"] = func(config []byte) (func() runtime.Source, error) {
			mk, err := source(config)
			if err == nil {
				err = p.check(config)
			}
			return mk, err
		}
		c.Sinks["kafka"] = func(config []byte) (func() runtime.Sink, error) {
			mk, err := sink(config)
			if err == nil {
				err = p.check(config)
			}
			return mk, err
		}
	}
}

// lockedWriter serialises whole writes of several sinks to one writer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// fileRoot resolves the paths of file connectors' configs.
type fileRoot struct {
	base     string // relative paths resolve against it ("": the working directory)
	confined bool   // paths must stay inside base
}

// resolve makes p absolute against the base when p is relative and a base
// is set; otherwise it returns p cleaned. A confined root refuses paths
// outside its base.
func (r fileRoot) resolve(p string) (string, error) {
	if r.confined {
		if filepath.IsAbs(p) || !filepath.IsLocal(p) {
			return "", fmt.Errorf("config.path: %q must be a relative path inside the tenant's file area", p)
		}
		return filepath.Join(r.base, p), nil
	}
	if r.base != "" && !filepath.IsAbs(p) {
		return filepath.Join(r.base, p), nil
	}
	return filepath.Clean(p), nil
}

// checkTask validates the parallel-instance part of info and returns the
// subtask index and parallelism (a zero Parallelism counts as 1, so sources
// and sinks can be opened by hand in tests and tools).
func checkTask(info runtime.TaskInfo) (subtask, parallelism int, err error) {
	p := info.Parallelism
	if p == 0 {
		p = 1
	}
	if p < 0 || info.Subtask < 0 || info.Subtask >= p {
		return 0, 0, fmt.Errorf("task info: subtask %d out of range for parallelism %d", info.Subtask, info.Parallelism)
	}
	return info.Subtask, p, nil
}

// The contracts each connector promises (checked at compile time).
var (
	_ runtime.CheckpointedSource = (*datagenSource)(nil)
	_ runtime.CheckpointedSource = (*fileSource)(nil)
	_ runtime.TwoPhaseSink       = (*fileSink)(nil)
	_ runtime.CheckpointedSource = (*kafkaSource)(nil)
	_ runtime.TwoPhaseSink       = (*kafkaSink)(nil)
)

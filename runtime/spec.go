package runtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// JobSpec is the declarative description of a job (YAML, or JSON which is
// valid YAML). Field names are camelCase in both encodings.
type JobSpec struct {
	Name string `yaml:"name" json:"name"`
	// Parallelism is the default parallelism of nodes (default 1).
	Parallelism int `yaml:"parallelism,omitempty" json:"parallelism,omitempty"`
	// MaxParallelism is the number of key groups (default 128); it bounds
	// the parallelism of keyed nodes and never changes for a job's state.
	MaxParallelism int                   `yaml:"maxParallelism,omitempty" json:"maxParallelism,omitempty"`
	Modules        map[string]ModuleSpec `yaml:"modules,omitempty" json:"modules,omitempty"`
	Nodes          []NodeSpec            `yaml:"nodes" json:"nodes"`
	State          StateSpec             `yaml:"state,omitempty" json:"state,omitempty"`
	Exchange       ExchangeSpec          `yaml:"exchange,omitempty" json:"exchange,omitempty"`
	Limits         LimitsSpec            `yaml:"limits,omitempty" json:"limits,omitempty"`
	Checkpoints    CheckpointSpec        `yaml:"checkpoints,omitempty" json:"checkpoints,omitempty"`
	Restart        RestartSpec           `yaml:"restart,omitempty" json:"restart,omitempty"`
}

// ModuleSpec locates a module: a Wasm file (Path; relative paths are
// resolved against the job spec's directory), or a module uploaded to the
// platform's registry (Ref: "name", "name@3", "name@latest",
// "name@sha256:<hex>" or "sha256:<hex>"). Which one a job may use is the
// ModuleLoader's business: `weir run` loads paths, the platform only refs.
// In YAML a bare string is a Ref: `modules: {wc: wordcount@2}`.
type ModuleSpec struct {
	Path string `yaml:"path,omitempty" json:"path,omitempty"`
	Ref  string `yaml:"ref,omitempty" json:"ref,omitempty"`
}

// UnmarshalYAML accepts a mapping or a bare reference string.
func (m *ModuleSpec) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*m = ModuleSpec{Ref: n.Value}
		return nil
	}
	type plain ModuleSpec
	return n.Decode((*plain)(m))
}

// NodeSpec is one node. Exactly one of Source, Operator and Sink is set.
type NodeSpec struct {
	ID string `yaml:"id" json:"id"`
	// Source names a source connector (datagen, file, ...).
	Source string `yaml:"source,omitempty" json:"source,omitempty"`
	// Module and Operator name an operator exported by a module.
	Module   string `yaml:"module,omitempty" json:"module,omitempty"`
	Operator string `yaml:"operator,omitempty" json:"operator,omitempty"`
	// Sink names a sink connector (print, file, blackhole, ...).
	Sink        string         `yaml:"sink,omitempty" json:"sink,omitempty"`
	Parallelism int            `yaml:"parallelism,omitempty" json:"parallelism,omitempty"`
	Config      any            `yaml:"config,omitempty" json:"config,omitempty"`
	Inputs      []InputSpec    `yaml:"inputs,omitempty" json:"inputs,omitempty"`
	Watermarks  *WatermarkSpec `yaml:"watermarks,omitempty" json:"watermarks,omitempty"`
}

// InputSpec is an edge into a node. In YAML a bare string is shorthand for
// {from: NAME}.
type InputSpec struct {
	From string `yaml:"from" json:"from"`
	// Partition: forward, key, rebalance or broadcast. Default: key into a
	// keyed operator, else forward when parallelism is equal, else rebalance.
	Partition string `yaml:"partition,omitempty" json:"partition,omitempty"`
	// Output selects the upstream output: main (default) or late (the
	// late-data side output of an operator).
	Output string `yaml:"output,omitempty" json:"output,omitempty"`
}

// UnmarshalYAML accepts a string or a mapping.
func (in *InputSpec) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		in.From = n.Value
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: an input is a node id or a mapping with from, partition, output", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch k := n.Content[i]; k.Value {
		case "from", "partition", "output":
		default:
			return fmt.Errorf("line %d: field %s not found in type runtime.InputSpec", k.Line, k.Value)
		}
	}
	type plain InputSpec
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*in = InputSpec(p)
	return nil
}

// WatermarkSpec configures the watermarks a source generates: bounded
// out-of-orderness (watermark = max timestamp seen - outOfOrderness - 1ms).
type WatermarkSpec struct {
	OutOfOrderness Duration `yaml:"outOfOrderness,omitempty" json:"outOfOrderness,omitempty"`
	// IdleTimeout marks a source subtask idle after this long without
	// records, so it does not hold back downstream watermarks (0 = never).
	IdleTimeout Duration `yaml:"idleTimeout,omitempty" json:"idleTimeout,omitempty"`
	// Interval between watermarks on the processing-time clock (Flink's
	// autoWatermarkInterval). 0 means punctuated: a watermark after every
	// record that advances it, which makes lateness independent of timing.
	Interval *Duration `yaml:"interval,omitempty" json:"interval,omitempty"`
}

// StateSpec selects the keyed-state backend.
type StateSpec struct {
	// Backend: memory (default) or pebble.
	Backend string `yaml:"backend,omitempty" json:"backend,omitempty"`
	// Dir holds Pebble state (default: a temporary directory per run).
	Dir string `yaml:"dir,omitempty" json:"dir,omitempty"`
}

// CheckpointSpec configures barrier checkpoints (DESIGN.md, "Time, state
// and snapshots"). Checkpoints are off unless Interval is set; savepoints
// work either way when the job has checkpoint storage.
type CheckpointSpec struct {
	// Interval between periodic checkpoints (0: none).
	Interval Duration `yaml:"interval,omitempty" json:"interval,omitempty"`
	// Timeout aborts a checkpoint that has not completed (default 10m).
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// MinPause between the end of one checkpoint and the next trigger.
	MinPause Duration `yaml:"minPause,omitempty" json:"minPause,omitempty"`
	// MaxConcurrent checkpoints in flight (default 1).
	MaxConcurrent int `yaml:"maxConcurrent,omitempty" json:"maxConcurrent,omitempty"`
	// Retain is how many completed checkpoints are kept (default 3).
	Retain int `yaml:"retain,omitempty" json:"retain,omitempty"`
	// Mode: exactly-once (default; barriers are aligned) or at-least-once
	// (no alignment: records after a barrier on a fast input may be
	// replayed after recovery).
	Mode string `yaml:"mode,omitempty" json:"mode,omitempty"`
	// Storage is where checkpoints go: a directory path or file:// URI, or
	// s3://bucket/prefix?endpoint=host:port (default: ./weir-data/checkpoints
	// next to the working directory, set by the caller).
	Storage string `yaml:"storage,omitempty" json:"storage,omitempty"`
}

// Checkpoint modes.
const (
	ModeExactlyOnce = "exactly-once"
	ModeAtLeastOnce = "at-least-once"
)

// RestartSpec is the restart strategy after a task failure.
type RestartSpec struct {
	// Strategy: none, fixed or exponential (default: fixed when
	// checkpoints are on, none otherwise — Flink's choice).
	Strategy string `yaml:"strategy,omitempty" json:"strategy,omitempty"`
	// Attempts: most restarts in a row for fixed (default 10); unlimited
	// (0) for exponential, which relies on the failure rate.
	Attempts int `yaml:"attempts,omitempty" json:"attempts,omitempty"`
	// Delay before a restart (default 1s); the first delay for exponential.
	Delay Duration `yaml:"delay,omitempty" json:"delay,omitempty"`
	// MaxDelay caps exponential back-off (default 1m).
	MaxDelay Duration `yaml:"maxDelay,omitempty" json:"maxDelay,omitempty"`
	// Multiplier of exponential back-off (default 2).
	Multiplier float64 `yaml:"multiplier,omitempty" json:"multiplier,omitempty"`
	// MaxFailures within FailureInterval fail the job for good (0: no
	// failure-rate limit).
	MaxFailures     int      `yaml:"maxFailures,omitempty" json:"maxFailures,omitempty"`
	FailureInterval Duration `yaml:"failureInterval,omitempty" json:"failureInterval,omitempty"`
}

// Restart strategies.
const (
	RestartNone        = "none"
	RestartFixed       = "fixed"
	RestartExponential = "exponential"
)

// ExchangeSpec tunes the batches between tasks.
type ExchangeSpec struct {
	// BatchBytes flushes a channel's batch at this size (default 32 KiB).
	BatchBytes int `yaml:"batchBytes,omitempty" json:"batchBytes,omitempty"`
	// Linger flushes a non-full batch after this long (default 5ms).
	Linger Duration `yaml:"linger,omitempty" json:"linger,omitempty"`
	// Buffers per channel: the credits a producer may have in flight
	// before it blocks (default 4).
	Buffers int `yaml:"buffers,omitempty" json:"buffers,omitempty"`
}

// LimitsSpec are the sandbox limits of every Wasm instance of the job.
type LimitsSpec struct {
	MemoryPages    uint32   `yaml:"memoryPages,omitempty" json:"memoryPages,omitempty"`
	CallTimeout    Duration `yaml:"callTimeout,omitempty" json:"callTimeout,omitempty"`
	MaxOutputBytes int      `yaml:"maxOutputBytes,omitempty" json:"maxOutputBytes,omitempty"`
}

// Partitioning strategies.
const (
	PartitionForward   = "forward"
	PartitionKey       = "key"
	PartitionRebalance = "rebalance"
	PartitionBroadcast = "broadcast"
)

// Output names.
const (
	OutputMain = "main"
	OutputLate = "late"
)

// NodeKind is what a node is.
type NodeKind int

const (
	KindSource NodeKind = iota
	KindOperator
	KindSink
)

func (k NodeKind) String() string {
	return [...]string{"source", "operator", "sink"}[k]
}

// Kind returns the node's kind (valid after Validate).
func (n *NodeSpec) Kind() NodeKind {
	switch {
	case n.Source != "":
		return KindSource
	case n.Sink != "":
		return KindSink
	}
	return KindOperator
}

// SpecError is a problem in a job spec, located by a field path such as
// `nodes[2].inputs[0].partition`.
type SpecError struct {
	Field   string
	Problem string
}

func (e *SpecError) Error() string {
	if e.Field == "" {
		return e.Problem
	}
	return e.Field + ": " + e.Problem
}

// SpecErrors is every problem found in a spec.
type SpecErrors []*SpecError

func (es SpecErrors) Error() string {
	var b strings.Builder
	b.WriteString("invalid job spec:")
	for _, e := range es {
		b.WriteString("\n  ")
		b.WriteString(e.Error())
	}
	return b.String()
}

// ParseSpec decodes a YAML or JSON job spec. Unknown fields are errors that
// name the line.
func ParseSpec(data []byte) (*JobSpec, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var s JobSpec
	if err := dec.Decode(&s); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, SpecErrors{{Problem: "empty job spec"}}
		}
		return nil, SpecErrors{{Problem: strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	return &s, nil
}

// LoadSpec reads and parses a job spec file; relative module paths are
// resolved against its directory.
func LoadSpec(path string) (*JobSpec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("job spec: %w", err)
	}
	s, err := ParseSpec(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s.ResolvePaths(filepath.Dir(path))
	return s, nil
}

// ResolvePaths makes relative module and state paths relative to dir.
func (s *JobSpec) ResolvePaths(dir string) {
	for name, m := range s.Modules {
		if m.Path != "" && !filepath.IsAbs(m.Path) {
			m.Path = filepath.Join(dir, m.Path)
			s.Modules[name] = m
		}
	}
	if s.State.Dir != "" && !filepath.IsAbs(s.State.Dir) {
		s.State.Dir = filepath.Join(dir, s.State.Dir)
	}
	if st := s.Checkpoints.Storage; st != "" && !strings.Contains(st, "://") && !filepath.IsAbs(st) {
		s.Checkpoints.Storage = filepath.Join(dir, st)
	}
}

// ConfigJSON returns the node's config encoded as JSON ("{}" when absent).
func (n *NodeSpec) ConfigJSON() ([]byte, error) {
	if n.Config == nil {
		return []byte("{}"), nil
	}
	return json.Marshal(jsonable(n.Config))
}

// jsonable converts YAML-decoded values (map[any]any from some inputs) to
// values encoding/json accepts.
func jsonable(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = jsonable(e)
		}
		return m
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[fmt.Sprint(k)] = jsonable(e)
		}
		return m
	case []any:
		l := make([]any, len(t))
		for i, e := range t {
			l[i] = jsonable(e)
		}
		return l
	}
	return v
}

// applyDefaults fills defaults in place.
func (s *JobSpec) applyDefaults() {
	if s.Name == "" {
		s.Name = "job"
	}
	if s.Parallelism == 0 {
		s.Parallelism = 1
	}
	if s.MaxParallelism == 0 {
		s.MaxParallelism = 128
	}
	if s.State.Backend == "" {
		s.State.Backend = "memory"
	}
	if s.Exchange.BatchBytes == 0 {
		s.Exchange.BatchBytes = 32 << 10
	}
	if s.Exchange.Linger == 0 {
		s.Exchange.Linger = Duration(5e6)
	}
	if s.Exchange.Buffers == 0 {
		s.Exchange.Buffers = 4
	}
	if s.Checkpoints.Mode == "" {
		s.Checkpoints.Mode = ModeExactlyOnce
	}
	if s.Restart.Strategy == "" {
		s.Restart.Strategy = RestartNone
		if s.Checkpoints.Interval > 0 {
			s.Restart.Strategy = RestartFixed
		}
	}
	if s.Restart.Delay == 0 {
		s.Restart.Delay = Duration(time.Second)
	}
	if s.Restart.Attempts == 0 && s.Restart.Strategy == RestartFixed {
		s.Restart.Attempts = 10
	}
	if s.Restart.MaxDelay == 0 {
		s.Restart.MaxDelay = Duration(time.Minute)
	}
	if s.Restart.Multiplier == 0 {
		s.Restart.Multiplier = 2
	}
	for i := range s.Nodes {
		n := &s.Nodes[i]
		if n.Parallelism == 0 {
			n.Parallelism = s.Parallelism
		}
		for j := range n.Inputs {
			if n.Inputs[j].Output == "" {
				n.Inputs[j].Output = OutputMain
			}
		}
	}
}

// nodeField names a node for error messages: nodes[2] (count).
func nodeField(i int, n *NodeSpec) string {
	if n.ID == "" {
		return fmt.Sprintf("nodes[%d]", i)
	}
	return fmt.Sprintf("nodes[%d] (%s)", i, n.ID)
}

// Validate reports the problems of the spec's structure — everything that
// needs neither modules nor connectors: sections, nodes, edges and
// partitioning — as Compile would, without changing the spec. The platform
// uses it to report these together with its own rules' problems.
func (s *JobSpec) Validate() SpecErrors {
	b, err := json.Marshal(s)
	if err != nil {
		return SpecErrors{{Field: "", Problem: err.Error()}}
	}
	var c JobSpec
	if err := json.Unmarshal(b, &c); err != nil {
		return SpecErrors{{Field: "", Problem: err.Error()}}
	}
	return c.validateStructure(func(*NodeSpec) (bool, bool) { return false, false })
}

// validateStructure checks everything that needs neither modules nor
// connectors, and fills defaults (partitioning included, which needs to know
// whether operators are keyed: keyedOf answers that, or reports unknown).
func (s *JobSpec) validateStructure(keyedOf func(n *NodeSpec) (keyed, known bool)) SpecErrors {
	var errs SpecErrors
	add := func(field, format string, args ...any) {
		errs = append(errs, &SpecError{Field: field, Problem: fmt.Sprintf(format, args...)})
	}
	s.applyDefaults()
	if s.Parallelism < 1 {
		add("parallelism", "must be >= 1, got %d", s.Parallelism)
	}
	if s.MaxParallelism < 1 || s.MaxParallelism > 32768 {
		add("maxParallelism", "must be between 1 and 32768, got %d", s.MaxParallelism)
	}
	switch s.State.Backend {
	case "memory", "pebble":
	default:
		add("state.backend", "must be memory or pebble, got %q", s.State.Backend)
	}
	if s.Exchange.BatchBytes < 256 || s.Exchange.BatchBytes > 64<<20 {
		add("exchange.batchBytes", "must be between 256 and 64 MiB, got %d", s.Exchange.BatchBytes)
	}
	if s.Exchange.Linger < 0 {
		add("exchange.linger", "must not be negative")
	}
	if s.Exchange.Buffers < 1 || s.Exchange.Buffers > 1024 {
		add("exchange.buffers", "must be between 1 and 1024, got %d", s.Exchange.Buffers)
	}
	c := &s.Checkpoints
	for _, d := range []struct {
		f string
		v Duration
	}{{"checkpoints.interval", c.Interval}, {"checkpoints.timeout", c.Timeout}, {"checkpoints.minPause", c.MinPause},
		{"restart.delay", s.Restart.Delay}, {"restart.maxDelay", s.Restart.MaxDelay}, {"restart.failureInterval", s.Restart.FailureInterval}} {
		if d.v < 0 {
			add(d.f, "must not be negative")
		}
	}
	if c.Interval > 0 && c.Interval < Duration(10*time.Millisecond) {
		add("checkpoints.interval", "must be at least 10ms, got %v", time.Duration(c.Interval))
	}
	if c.MaxConcurrent < 0 || c.MaxConcurrent > 16 {
		add("checkpoints.maxConcurrent", "must be between 1 and 16, got %d", c.MaxConcurrent)
	}
	if c.Retain < 0 || c.Retain > 1000 {
		add("checkpoints.retain", "must be between 1 and 1000, got %d", c.Retain)
	}
	switch c.Mode {
	case ModeExactlyOnce, ModeAtLeastOnce:
	default:
		add("checkpoints.mode", "must be %s or %s, got %q", ModeExactlyOnce, ModeAtLeastOnce, c.Mode)
	}
	switch s.Restart.Strategy {
	case RestartNone, RestartFixed, RestartExponential:
	default:
		add("restart.strategy", "must be none, fixed or exponential, got %q", s.Restart.Strategy)
	}
	if s.Restart.Attempts < 0 {
		add("restart.attempts", "must not be negative")
	}
	if s.Restart.Multiplier < 1 {
		add("restart.multiplier", "must be >= 1, got %g", s.Restart.Multiplier)
	}
	if s.Restart.MaxFailures < 0 {
		add("restart.maxFailures", "must not be negative")
	}
	if s.Restart.MaxFailures > 0 && s.Restart.FailureInterval <= 0 {
		add("restart.failureInterval", "required with restart.maxFailures")
	}
	for name, m := range s.Modules {
		switch {
		case m.Path == "" && m.Ref == "":
			add("modules."+name, "needs a path (a Wasm file) or a ref (an uploaded module)")
		case m.Path != "" && m.Ref != "":
			add("modules."+name, "has both a path and a ref; give one")
		}
	}
	if len(s.Nodes) == 0 {
		add("nodes", "a job needs at least one node")
		return errs
	}
	index := map[string]int{}
	for i := range s.Nodes {
		n := &s.Nodes[i]
		f := nodeField(i, n)
		switch {
		case n.ID == "":
			add(f+".id", "required")
		case strings.ContainsAny(n.ID, "/ \t\n"):
			add(f+".id", "must not contain '/' or white space")
		default:
			if j, dup := index[n.ID]; dup {
				add(f+".id", "duplicate node id %q (also nodes[%d])", n.ID, j)
			} else {
				index[n.ID] = i
			}
		}
		kinds := 0
		for _, set := range []bool{n.Source != "", n.Operator != "" || n.Module != "", n.Sink != ""} {
			if set {
				kinds++
			}
		}
		if kinds != 1 {
			add(f, "must set exactly one of source, operator (with module) or sink")
			continue
		}
		if n.Kind() == KindOperator {
			if n.Module == "" {
				add(f+".module", "required for an operator node")
			} else if _, ok := s.Modules[n.Module]; !ok {
				add(f+".module", "unknown module %q (declare it under modules:)", n.Module)
			}
			if n.Operator == "" {
				add(f+".operator", "required for an operator node")
			}
		}
		if n.Parallelism < 1 {
			add(f+".parallelism", "must be >= 1, got %d", n.Parallelism)
		} else if n.Parallelism > s.MaxParallelism {
			add(f+".parallelism", "%d exceeds maxParallelism %d", n.Parallelism, s.MaxParallelism)
		}
		if n.Watermarks != nil && n.Kind() != KindSource {
			add(f+".watermarks", "only sources generate watermarks")
		}
		if n.Watermarks != nil && (n.Watermarks.OutOfOrderness < 0 || n.Watermarks.IdleTimeout < 0 ||
			(n.Watermarks.Interval != nil && *n.Watermarks.Interval < 0)) {
			add(f+".watermarks", "durations must not be negative")
		}
		switch {
		case n.Kind() == KindSource && len(n.Inputs) > 0:
			add(f+".inputs", "a source has no inputs")
		case n.Kind() != KindSource && len(n.Inputs) == 0:
			add(f+".inputs", "a %s needs at least one input", n.Kind())
		}
	}
	if len(errs) > 0 {
		return errs
	}
	// Edges.
	sources := 0
	for i := range s.Nodes {
		n := &s.Nodes[i]
		f := nodeField(i, n)
		if n.Kind() == KindSource {
			sources++
		}
		keyed, known := keyedOf(n)
		for j := range n.Inputs {
			in := &n.Inputs[j]
			ef := fmt.Sprintf("%s.inputs[%d]", f, j)
			k, ok := index[in.From]
			if in.From == "" {
				add(ef+".from", "required")
				continue
			}
			if !ok {
				add(ef+".from", "unknown node %q", in.From)
				continue
			}
			up := &s.Nodes[k]
			if up.Kind() == KindSink {
				add(ef+".from", "%q is a sink; sinks have no output", in.From)
				continue
			}
			switch in.Output {
			case OutputMain:
			case OutputLate:
				if up.Kind() != KindOperator {
					add(ef+".output", "only operators have a late output; %q is a %s", in.From, up.Kind())
				}
			default:
				add(ef+".output", "must be main or late, got %q", in.Output)
			}
			if in.Partition == "" {
				switch {
				case n.Kind() == KindOperator && known && keyed:
					in.Partition = PartitionKey
				case up.Parallelism == n.Parallelism:
					in.Partition = PartitionForward
				default:
					in.Partition = PartitionRebalance
				}
			}
			switch in.Partition {
			case PartitionForward:
				if up.Parallelism != n.Parallelism {
					add(ef+".partition", "forward needs equal parallelism, but %q has %d and %q has %d (use rebalance or key)",
						in.From, up.Parallelism, n.ID, n.Parallelism)
				}
			case PartitionKey, PartitionRebalance, PartitionBroadcast:
			default:
				add(ef+".partition", "must be forward, key, rebalance or broadcast, got %q", in.Partition)
				continue
			}
			if n.Kind() == KindOperator && known {
				if keyed && in.Partition != PartitionKey {
					add(ef+".partition", "operator %q of module %q is keyed (uses keyed state and timers): its inputs must use partition: key, got %s",
						n.Operator, n.Module, in.Partition)
				}
				if !keyed && in.Partition == PartitionKey {
					add(ef+".partition", "operator %q of module %q reads no key (not exported as keyed): partition: key is only allowed into keyed operators",
						n.Operator, n.Module)
				}
			}
		}
	}
	if sources == 0 {
		add("nodes", "a job needs at least one source")
	}
	consumed := map[string]bool{}
	for i := range s.Nodes {
		for _, in := range s.Nodes[i].Inputs {
			consumed[in.From] = true
		}
	}
	for i := range s.Nodes {
		if n := &s.Nodes[i]; n.Kind() != KindSink && !consumed[n.ID] {
			add(nodeField(i, n), "its output is read by no node (end every path in a sink, e.g. blackhole)")
		}
	}
	if cyc := s.findCycle(index); cyc != nil {
		add("nodes", "the graph has a cycle: %s", strings.Join(cyc, " -> "))
	}
	return errs
}

// findCycle returns the node ids of a cycle, or nil.
func (s *JobSpec) findCycle(index map[string]int) []string {
	const (
		white = iota
		grey
		black
	)
	color := make([]int, len(s.Nodes))
	var stack []string
	var visit func(i int) []string
	// Walk upstream along inputs; a grey node reached again closes a cycle.
	visit = func(i int) []string {
		color[i] = grey
		stack = append(stack, s.Nodes[i].ID)
		for _, in := range s.Nodes[i].Inputs {
			k, ok := index[in.From]
			if !ok {
				continue
			}
			switch color[k] {
			case grey:
				start := 0
				for j, id := range stack {
					if id == in.From {
						start = j
					}
				}
				cyc := append([]string(nil), stack[start:]...)
				// stack is downstream-first; report in data-flow order.
				for l, r := 0, len(cyc)-1; l < r; l, r = l+1, r-1 {
					cyc[l], cyc[r] = cyc[r], cyc[l]
				}
				return append(cyc, cyc[0])
			case white:
				if c := visit(k); c != nil {
					return c
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[i] = black
		return nil
	}
	for i := range s.Nodes {
		if color[i] == white {
			if c := visit(i); c != nil {
				return c
			}
		}
	}
	return nil
}

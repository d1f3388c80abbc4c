package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/runtime/clock"
	"github.com/weirstream/weir/state"
)

// ModuleLoader compiles the module declared as `name` in a job spec.
type ModuleLoader func(ctx context.Context, name string, spec ModuleSpec) (Module, error)

// Options are what a job runs with, beyond its spec.
type Options struct {
	Connectors Connectors
	// LoadModule compiles modules; see WasmLoader. Required when the spec
	// has operator nodes.
	LoadModule ModuleLoader
	// Clock is the processing-time clock (default: the wall clock).
	Clock clock.Clock
	// Logger receives job, task and guest logs (default: discard).
	Logger *slog.Logger
}

// Job is a validated, compiled job ready to run once.
type Job struct {
	Spec    *JobSpec
	opts    Options
	modules map[string]Module
	chains  []*chain
	tasks   []*task

	mu       sync.Mutex
	finished map[*task]bool
	tmpDir   string
}

// chain is a maximal sequence of nodes connected by forward edges that run
// in one task per subtask.
type chain struct {
	nodes []*NodeSpec
	// for operator nodes: operator info from the module
	ops []abi.OperatorInfo
}

func (c *chain) name() string {
	ids := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		ids[i] = n.ID
	}
	return strings.Join(ids, "+")
}

// Compile validates spec completely (structure, modules, exported
// operators, connector configs) and builds the execution graph. Nothing runs
// yet. A spec error is a SpecErrors naming every bad field.
func Compile(ctx context.Context, spec *JobSpec, opts Options) (*Job, error) {
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	j := &Job{Spec: spec, opts: opts, modules: map[string]Module{}, finished: map[*task]bool{}}
	var errs SpecErrors
	// Modules first: whether an operator is keyed decides partitioning.
	names := make([]string, 0, len(spec.Modules))
	for name := range spec.Modules {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		ms := spec.Modules[name]
		if ms.Path == "" {
			continue // reported by validateStructure
		}
		if opts.LoadModule == nil {
			errs = append(errs, &SpecError{Field: "modules." + name, Problem: "no module loader configured"})
			continue
		}
		m, err := opts.LoadModule(ctx, name, ms)
		if err != nil {
			errs = append(errs, &SpecError{Field: "modules." + name + ".path", Problem: err.Error()})
			continue
		}
		j.modules[name] = m
	}
	opInfo := func(n *NodeSpec) (abi.OperatorInfo, bool) {
		m, ok := j.modules[n.Module]
		if !ok {
			return abi.OperatorInfo{}, false
		}
		for _, o := range m.Operators() {
			if o.Name == n.Operator {
				return o, true
			}
		}
		return abi.OperatorInfo{}, false
	}
	errs = append(errs, spec.validateStructure(func(n *NodeSpec) (bool, bool) {
		o, ok := opInfo(n)
		return o.Keyed(), ok
	})...)
	for i := range spec.Nodes {
		n := &spec.Nodes[i]
		f := nodeField(i, n)
		switch n.Kind() {
		case KindOperator:
			m, ok := j.modules[n.Module]
			if !ok || n.Operator == "" {
				continue
			}
			if _, ok := opInfo(n); !ok {
				var names []string
				for _, o := range m.Operators() {
					names = append(names, o.Name)
				}
				errs = append(errs, &SpecError{Field: f + ".operator", Problem: fmt.Sprintf(
					"%q is not exported by module %q (it exports: %s)", n.Operator, n.Module, strings.Join(names, ", "))})
			}
		case KindSource:
			if _, ok := opts.Connectors.Sources[n.Source]; !ok {
				errs = append(errs, &SpecError{Field: f + ".source", Problem: fmt.Sprintf("unknown source %q (known: %s)", n.Source, keys(opts.Connectors.Sources))})
			}
		case KindSink:
			if _, ok := opts.Connectors.Sinks[n.Sink]; !ok {
				errs = append(errs, &SpecError{Field: f + ".sink", Problem: fmt.Sprintf("unknown sink %q (known: %s)", n.Sink, keys(opts.Connectors.Sinks))})
			}
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	// Connector configs.
	srcFactories := map[string]func() Source{}
	sinkFactories := map[string]func() Sink{}
	for i := range spec.Nodes {
		n := &spec.Nodes[i]
		f := nodeField(i, n)
		cfg, err := n.ConfigJSON()
		if err != nil {
			errs = append(errs, &SpecError{Field: f + ".config", Problem: err.Error()})
			continue
		}
		switch n.Kind() {
		case KindSource:
			mk, err := opts.Connectors.Sources[n.Source](cfg)
			if err != nil {
				errs = append(errs, &SpecError{Field: f, Problem: err.Error()})
			}
			srcFactories[n.ID] = mk
		case KindSink:
			mk, err := opts.Connectors.Sinks[n.Sink](cfg)
			if err != nil {
				errs = append(errs, &SpecError{Field: f, Problem: err.Error()})
			}
			sinkFactories[n.ID] = mk
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	j.buildChains(opInfo)
	if err := j.buildTasks(srcFactories, sinkFactories); err != nil {
		return nil, err
	}
	return j, nil
}

func keys[V any](m map[string]V) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

// buildChains groups nodes into chains: B joins A's chain when B's only
// input is A's main output over a forward edge and A has no other consumer.
func (j *Job) buildChains(opInfo func(*NodeSpec) (abi.OperatorInfo, bool)) {
	consumers := map[string]int{}
	for i := range j.Spec.Nodes {
		for _, in := range j.Spec.Nodes[i].Inputs {
			consumers[in.From]++
		}
	}
	chainOf := map[string]*chain{}
	// Nodes in topological order so an upstream chain exists first.
	for _, n := range j.topoOrder() {
		var c *chain
		if len(n.Inputs) == 1 {
			in := n.Inputs[0]
			up := chainOf[in.From]
			if in.Partition == PartitionForward && in.Output == OutputMain && consumers[in.From] == 1 &&
				up.nodes[len(up.nodes)-1].ID == in.From {
				c = up
			}
		}
		if c == nil {
			c = &chain{}
			j.chains = append(j.chains, c)
		}
		info, _ := opInfo(n)
		c.nodes = append(c.nodes, n)
		c.ops = append(c.ops, info)
		chainOf[n.ID] = c
	}
}

func (j *Job) topoOrder() []*NodeSpec {
	index := map[string]int{}
	for i := range j.Spec.Nodes {
		index[j.Spec.Nodes[i].ID] = i
	}
	seen := make([]bool, len(j.Spec.Nodes))
	var order []*NodeSpec
	var visit func(i int)
	visit = func(i int) {
		if seen[i] {
			return
		}
		seen[i] = true
		for _, in := range j.Spec.Nodes[i].Inputs {
			visit(index[in.From])
		}
		order = append(order, &j.Spec.Nodes[i])
	}
	for i := range j.Spec.Nodes {
		visit(i)
	}
	return order
}

// Graph describes the execution graph: its tasks (chains × subtasks).
func (j *Job) Graph() []string {
	var out []string
	for _, c := range j.chains {
		out = append(out, fmt.Sprintf("%s x%d", c.name(), c.nodes[0].Parallelism))
	}
	return out
}

func (j *Job) buildTasks(srcFactories map[string]func() Source, sinkFactories map[string]func() Sink) error {
	spec := j.Spec
	// Tasks per chain, and gates for chains with inputs.
	tasksOf := map[*chain][]*task{}
	chainOfTail := map[string]*chain{}
	for _, c := range j.chains {
		chainOfTail[c.nodes[len(c.nodes)-1].ID] = c
		head := c.nodes[0]
		for s := 0; s < head.Parallelism; s++ {
			t := &task{
				name:    fmt.Sprintf("%s[%d]", c.name(), s),
				nodes:   c.nodes,
				subtask: s,
				clock:   j.opts.Clock,
				metrics: newTaskMetrics(),
				ptDirty: true,
			}
			t.log = j.opts.Logger.With("job", spec.Name, "task", t.name)
			if head.Kind() == KindSource {
				t.source = srcFactories[head.ID]()
				t.srcBatch = 1024
				if head.Watermarks != nil {
					t.srcWM = *head.Watermarks
				}
				t.srcInfo = TaskInfo{Job: spec.Name, NodeID: head.ID, Subtask: s, Parallelism: head.Parallelism, Logger: t.log, Clock: j.opts.Clock}
			} else {
				channels := 0
				for _, in := range head.Inputs {
					if in.Partition == PartitionForward {
						channels++
					} else {
						channels += nodeByID(spec, in.From).Parallelism
					}
				}
				t.gate = newGate(channels, spec.Exchange.Buffers)
				t.tracker = newWatermarkTracker(channels)
				t.inputsLeft = make([]int, len(head.Inputs))
			}
			tasksOf[c] = append(tasksOf[c], t)
			j.tasks = append(j.tasks, t)
		}
	}
	// Channels: for every input edge of every chain head, from each
	// upstream subtask to each downstream subtask it can reach.
	type outKey struct {
		tail    string
		subtask int
	}
	outs := map[outKey]*outputWriter{}
	outFor := func(t *task, tail string) *outputWriter {
		k := outKey{tail, t.subtask}
		if o := outs[k]; o != nil {
			return o
		}
		o := &outputWriter{batchBytes: spec.Exchange.BatchBytes, linger: timeDuration(spec.Exchange.Linger), metrics: t.metrics}
		outs[k] = o
		t.out = o
		return o
	}
	for _, c := range j.chains {
		head := c.nodes[0]
		for inputNo, in := range head.Inputs {
			up := chainOfTail[in.From]
			tag := abi.TagMain
			if in.Output == OutputLate {
				tag = abi.TagLate
			}
			upTasks := tasksOf[up]
			edgesByUp := make([]*outEdge, len(upTasks))
			for u, ut := range upTasks {
				o := outFor(ut, in.From)
				e := &outEdge{tag: tag, partition: in.Partition, maxP: spec.MaxParallelism}
				o.edges = append(o.edges, e)
				edgesByUp[u] = e
			}
			for d, dt := range tasksOf[c] {
				for u := range upTasks {
					if in.Partition == PartitionForward && u != d {
						continue
					}
					ch := dt.gate.addChannel(inputNo, spec.Exchange.Buffers, spec.Exchange.BatchBytes)
					dt.inputsLeft[inputNo]++
					w := &channelWriter{c: ch}
					edgesByUp[u].writers = append(edgesByUp[u].writers, w)
					o := outs[outKey{in.From, u}]
					o.all = append(o.all, w)
				}
			}
		}
	}
	// Chain elements, built back to front.
	for _, c := range j.chains {
		for _, t := range tasksOf[c] {
			var next element
			if t.out != nil {
				next = t.out
			}
			elems := make([]element, 0, len(c.nodes))
			for i := len(c.nodes) - 1; i >= 0; i-- {
				n := c.nodes[i]
				chained := i < len(c.nodes)-1
				switch n.Kind() {
				case KindSink:
					next = &sinkElem{t: t, node: n, sink: sinkFactories[n.ID]()}
					elems = append(elems, next)
				case KindOperator:
					p := n.Parallelism
					op := &operatorElem{t: t, node: n, next: next, filter: chained}
					op.access = &stateAccess{
						t: t, node: n.ID, owner: uint32(i), keyed: c.ops[i].Keyed(),
						maxP: spec.MaxParallelism, kgRange: abi.KeyGroupRangeForSubtask(t.subtask, p, spec.MaxParallelism),
						clock: j.opts.Clock, wm: abi.MinWatermark,
					}
					if op.access.keyed {
						t.ptOwner = append(t.ptOwner, uint32(i))
					}
					next = op
					elems = append(elems, op)
				case KindSource:
					// The source itself is driven by the task loop.
				}
			}
			if next == nil {
				return fmt.Errorf("runtime: chain %s has no output", c.name())
			}
			t.head = next
			if t.out != nil {
				elems = append([]element{t.out}, elems...)
			}
			// close order: front to back
			for l, r := 0, len(elems)-1; l < r; l, r = l+1, r-1 {
				elems[l], elems[r] = elems[r], elems[l]
			}
			t.elems = elems
		}
	}
	return nil
}

func nodeByID(s *JobSpec, id string) *NodeSpec {
	for i := range s.Nodes {
		if s.Nodes[i].ID == id {
			return &s.Nodes[i]
		}
	}
	return nil
}

// Run runs the job until its bounded inputs are done, ctx is cancelled or a
// task fails; the first task failure cancels the others and is returned.
// A Job runs once.
func (j *Job) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if err := j.open(ctx); err != nil {
		j.closeBackends()
		return err
	}
	defer j.cleanup()
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for _, t := range j.tasks {
		t.ctx = ctx
		if t.out != nil {
			t.out.ctx = ctx
		}
		wg.Add(1)
		go func(t *task) {
			defer wg.Done()
			err := t.run()
			j.mu.Lock()
			j.finished[t] = true
			j.mu.Unlock()
			if err != nil && ctx.Err() == nil {
				once.Do(func() { first = fmt.Errorf("task %s: %w", t.name, err) })
				cancel(first)
			}
		}(t)
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return context.Cause(ctx)
}

// open creates every task's state backend and operator instances. Operator
// instances are opened here, on the caller's goroutine, before any task
// runs: a module that cannot start fails the job before data flows.
func (j *Job) open(ctx context.Context) error {
	spec := j.Spec
	pebbleDir := spec.State.Dir
	if spec.State.Backend == "pebble" && pebbleDir == "" {
		d, err := os.MkdirTemp("", "weir-state-")
		if err != nil {
			return err
		}
		j.tmpDir, pebbleDir = d, d
	}
	for _, t := range j.tasks {
		t.ctx = ctx
		switch spec.State.Backend {
		case "pebble":
			b, err := state.OpenPebble(filepath.Join(pebbleDir, spec.Name, t.name), state.PebbleOptions{})
			if err != nil {
				return fmt.Errorf("task %s: state: %w", t.name, err)
			}
			t.backend = b
		default:
			t.backend = state.NewMemory()
		}
		for _, e := range t.elems {
			op, ok := e.(*operatorElem)
			if !ok {
				continue
			}
			n := op.node
			inst, err := j.modules[n.Module].NewInstance(ctx, InstanceEnv{
				Name:   fmt.Sprintf("%s/%s[%d]", spec.Name, n.ID, t.subtask),
				Keyed:  op.access.keyed,
				State:  op.access,
				Timers: op.access,
				Logger: guestLogger{t.log.With("node", n.ID)},
				Limits: spec.Limits,
			})
			if err != nil {
				return fmt.Errorf("task %s: operator %s: %w", t.name, n.ID, err)
			}
			op.inst = inst
			cfg, _ := n.ConfigJSON()
			err = inst.Open(ctx, abi.OpenInfo{
				Operator: n.Operator, NodeID: n.ID, Config: cfg,
				Subtask: uint32(t.subtask), Parallelism: uint32(n.Parallelism),
				MaxParallelism: uint32(spec.MaxParallelism), Inputs: uint32(max(1, len(n.Inputs))),
			})
			if err != nil {
				return fmt.Errorf("task %s: operator %s: open: %w", t.name, n.ID, err)
			}
		}
		for _, e := range t.elems {
			if s, ok := e.(*sinkElem); ok {
				n := s.node
				info := TaskInfo{Job: spec.Name, NodeID: n.ID, Subtask: t.subtask, Parallelism: n.Parallelism, Logger: t.log, Clock: j.opts.Clock}
				if err := s.sink.Open(ctx, info); err != nil {
					return fmt.Errorf("task %s: sink %s: open: %w", t.name, n.ID, err)
				}
			}
		}
	}
	return nil
}

func (j *Job) closeBackends() {
	for _, t := range j.tasks {
		for _, e := range t.elems {
			if op, ok := e.(*operatorElem); ok && op.inst != nil {
				_ = op.inst.Close(context.Background())
			}
		}
		if t.backend != nil {
			_ = t.backend.Close()
		}
	}
	j.cleanup()
}

func (j *Job) cleanup() {
	if j.tmpDir != "" {
		_ = os.RemoveAll(j.tmpDir)
	}
}

// Stats returns every task's metrics.
func (j *Job) Stats() []TaskStats {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make([]TaskStats, 0, len(j.tasks))
	for _, t := range j.tasks {
		s := t.metrics.snapshot()
		s.Task = t.name
		for _, n := range t.nodes {
			s.Nodes = append(s.Nodes, n.ID)
		}
		s.Subtask = t.subtask
		s.Finished = j.finished[t]
		out = append(out, s)
	}
	return out
}

// IsSpecError reports whether err is (or wraps) a job spec problem.
func IsSpecError(err error) bool {
	var es SpecErrors
	var e *SpecError
	return errors.As(err, &es) || errors.As(err, &e)
}

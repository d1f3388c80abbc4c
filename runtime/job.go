package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/checkpoint"
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
	// Checkpoint connects the job to checkpoint storage; nil: no
	// checkpoints, savepoints or restarts.
	Checkpoint *CheckpointOptions
	// OnEvent, if set, is told about failures, restarts and checkpoints
	// as they happen (from any goroutine).
	OnEvent func(Event)
	// InjectFault is a test hook: called on the task goroutine before each
	// batch a task handles (and each source poll); an error fails the task
	// as a crash would.
	InjectFault func(task string) error
	// Cluster places the tasks of every attempt on workers; nil runs them
	// all in this process.
	Cluster Cluster
}

// Job is a validated, compiled job ready to run once.
type Job struct {
	Spec    *JobSpec
	opts    Options
	modules map[string]Module
	chains  []*chain
	groups  []TaskGroup // of the current (or last) attempt

	srcFactories  map[string]func() Source
	sinkFactories map[string]func() Sink

	cp *checkpointing // nil without checkpoint storage

	mu       sync.Mutex
	tmpDir   string
	restart  *restartStrategy
	failures []Failure
	bad      map[string]bool // restore points found damaged
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
	j := &Job{Spec: spec, opts: opts, modules: map[string]Module{}}
	var errs SpecErrors
	// Modules first: whether an operator is keyed decides partitioning.
	names := make([]string, 0, len(spec.Modules))
	for name := range spec.Modules {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		ms := spec.Modules[name]
		if (ms.Path == "") == (ms.Ref == "") {
			continue // reported by validateStructure
		}
		if opts.LoadModule == nil {
			errs = append(errs, &SpecError{Field: "modules." + name, Problem: "no module loader configured"})
			continue
		}
		m, err := opts.LoadModule(ctx, name, ms)
		if err != nil {
			field := "modules." + name + ".path"
			if ms.Path == "" {
				field = "modules." + name + ".ref"
			}
			errs = append(errs, &SpecError{Field: field, Problem: err.Error()})
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
	j.srcFactories, j.sinkFactories = srcFactories, sinkFactories
	if err := j.newCheckpointing(); err != nil {
		return nil, err
	}
	// Build the tasks once now so that graph errors surface at compile time.
	if _, err := j.buildTasks(&attempt{job: j}, func(string) bool { return true }, nil, nil); err != nil {
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

// buildTasks builds the tasks of an attempt, with fresh channels, sources,
// sinks and (in open) instances.
//
// Only the tasks local says run here are built; a channel between a local
// task and one elsewhere (placement names the worker) goes through ex.
// Channels are numbered in one order every process shares.
func (j *Job) buildTasks(a *attempt, local func(string) bool, ex Exchange, placement map[string]string) ([]*task, error) {
	spec := j.Spec
	srcFactories, sinkFactories := j.srcFactories, j.sinkFactories
	var tasks []*task
	// Tasks per chain, and gates for chains with inputs.
	tasksOf := map[*chain][]*task{}
	chainOfTail := map[string]*chain{}
	for _, c := range j.chains {
		chainOfTail[c.nodes[len(c.nodes)-1].ID] = c
		head := c.nodes[0]
		for s := 0; s < head.Parallelism; s++ {
			name := fmt.Sprintf("%s[%d]", c.name(), s)
			t := &task{
				name:    name,
				remote:  !local(name),
				nodes:   c.nodes,
				subtask: s,
				clock:   j.opts.Clock,
				metrics: newTaskMetrics(),
				ptDirty: true,

				injectFault: j.opts.InjectFault,
			}
			t.log = j.opts.Logger.With("job", spec.Name, "task", t.name)
			if t.remote {
				// Elsewhere: only its place in the graph matters here.
			} else if head.Kind() == KindSource {
				t.source = srcFactories[head.ID]()
				t.srcBatch = 1024
				if head.Watermarks != nil {
					t.srcWM = *head.Watermarks
				}
				t.srcW = &sourceWriter{maxTs: abi.NoTimestamp, wm: abi.MinWatermark}
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
			tasks = append(tasks, t)
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
	var chID uint32
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
					id := chID
					chID++
					ut := upTasks[u]
					var ch *channel
					switch {
					case ut.remote && dt.remote:
						continue
					case !ut.remote && !dt.remote:
						ch = dt.gate.addChannel(inputNo, spec.Exchange.Buffers, spec.Exchange.BatchBytes)
					case dt.remote: // the consumer is elsewhere
						if ex == nil {
							return nil, fmt.Errorf("runtime: task %s is on %s and no exchange is configured", dt.name, placement[dt.name])
						}
						ch = newRemoteSender(ex, placement[dt.name], id, spec.Exchange.Buffers, spec.Exchange.BatchBytes, a.set.Fail)
					default: // the producer is elsewhere
						if ex == nil {
							return nil, fmt.Errorf("runtime: task %s is on %s and no exchange is configured", ut.name, placement[ut.name])
						}
						dt.gate.addRemoteChannel(inputNo, ex, placement[ut.name], id)
					}
					if !dt.remote {
						dt.inputsLeft[inputNo]++
					}
					if ut.remote {
						continue
					}
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
			if t.remote {
				continue
			}
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
					se := &sinkElem{t: t, node: n, sink: sinkFactories[n.ID]()}
					se.tx, _ = se.sink.(TwoPhaseSink)
					next = se
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
				return nil, fmt.Errorf("runtime: chain %s has no output", c.name())
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
	local_ := tasks[:0]
	for _, t := range tasks {
		if !t.remote {
			local_ = append(local_, t)
		}
	}
	tasks = local_
	if j.cp != nil && a.acks != nil {
		for _, t := range tasks {
			n := 0
			if t.gate != nil {
				n = len(t.gate.channels)
			}
			t.cp = newTaskCP(a, t, n)
		}
	}
	return tasks, nil
}

func nodeByID(s *JobSpec, id string) *NodeSpec {
	for i := range s.Nodes {
		if s.Nodes[i].ID == id {
			return &s.Nodes[i]
		}
	}
	return nil
}

// Run runs the job until its bounded inputs are done, ctx is cancelled,
// it is stopped with a savepoint, or it fails for good. With checkpoint
// storage, a failed task restarts the job from its latest completed
// checkpoint as the restart strategy allows; without, the first task
// failure is returned. A Job runs once.
func (j *Job) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	defer j.cleanup()
	if err := j.setupCheckpointing(ctx); err != nil {
		return err
	}
	rs := j.Spec.Restart
	if j.cp == nil {
		rs.Strategy = RestartNone
	}
	j.mu.Lock()
	j.restart = newRestartStrategy(rs)
	j.bad = map[string]bool{}
	j.mu.Unlock()
	initial, err := j.initialRestore(ctx)
	if err != nil {
		return err
	}
	rp := initial
	if j.cp != nil {
		if initial != nil {
			j.cp.coord.ContinueAfter(initial.meta.ID)
		}
		if j.opts.Checkpoint.Resume {
			if rp, err = j.latestRestore(ctx, initial); err != nil {
				return err
			}
		}
		cctx, ccancel := context.WithCancel(ctx)
		defer ccancel()
		go j.cp.coord.Run(cctx)
	}
	for n := 1; ; n++ {
		err := j.runAttempt(ctx, n, rp)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		now := j.opts.Clock.Now()
		var re *restoreError
		if rp != nil && errors.As(err, &re) && damaged(err) {
			j.mu.Lock()
			j.bad[rp.dir] = true
			j.mu.Unlock()
			j.event(Event{Kind: EventCheckpointSkipped, Attempt: n, Checkpoint: rp.meta.ID, Dir: rp.dir, Err: err})
		}
		j.mu.Lock()
		j.failures = append(j.failures, Failure{Time: now, Attempt: n, Err: err})
		history := append([]Failure(nil), j.failures...)
		delay, ok, why := j.restart.next(now)
		j.mu.Unlock()
		j.event(Event{Kind: EventFailed, Attempt: n, Err: err})
		if isPermanent(err) {
			return err
		}
		if !ok {
			if rs.Strategy == RestartNone {
				return err
			}
			return &JobFailedError{Reason: why, History: history}
		}
		j.event(Event{Kind: EventRestarting, Attempt: n + 1, Delay: delay})
		if delay > 0 {
			select {
			case <-ctx.Done():
				return context.Cause(ctx)
			case <-j.opts.Clock.After(delay):
			}
		}
		if rp, err = j.latestRestore(ctx, initial); err != nil {
			return err
		}
	}
}

// initialRestore reads the savepoint the job starts from, if any.
func (j *Job) initialRestore(ctx context.Context) (*restorePoint, error) {
	co := j.opts.Checkpoint
	if co == nil || co.From == nil {
		return nil, nil
	}
	f := co.From
	m, err := checkpoint.ReadMetadata(ctx, f.Storage, f.Dir)
	if err != nil {
		return nil, fmt.Errorf("savepoint: %w", err)
	}
	// root ".": paths may go anywhere inside the storage (a retained
	// checkpoint references shared files beside it; a savepoint only itself).
	rp := &restorePoint{storage: f.Storage, dir: f.Dir, root: ".", meta: m, allow: f.AllowNonRestoredState}
	if err := j.checkMapping(rp); err != nil {
		return nil, err
	}
	return rp, nil
}

// latestRestore returns the newest retained checkpoint that is intact,
// else the initial savepoint, else nil (start afresh).
func (j *Job) latestRestore(ctx context.Context, initial *restorePoint) (*restorePoint, error) {
	retained := j.cp.coord.Retained()
	var damagedErrs []string
	for _, m := range retained {
		dir := j.cp.coord.CheckpointDir(m.ID)
		j.mu.Lock()
		bad := j.bad[dir]
		j.mu.Unlock()
		if bad {
			continue
		}
		rp := &restorePoint{storage: j.cp.opts.Storage, dir: dir, root: j.cp.root, meta: m, native: true,
			allow: j.opts.Checkpoint.From != nil && j.opts.Checkpoint.From.AllowNonRestoredState}
		err := checkpoint.Verify(ctx, rp.storage, dir, rp.root, m)
		if err == nil {
			err = j.checkMapping(rp)
		}
		if err != nil {
			if isPermanent(err) {
				return nil, err
			}
			j.mu.Lock()
			j.bad[dir] = true
			j.mu.Unlock()
			damagedErrs = append(damagedErrs, err.Error())
			j.opts.Logger.Warn("skipping a damaged checkpoint", "checkpoint", m.ID, "err", err)
			j.event(Event{Kind: EventCheckpointSkipped, Checkpoint: m.ID, Dir: dir, Err: err})
			continue
		}
		return rp, nil
	}
	if initial != nil {
		j.mu.Lock()
		bad := j.bad[initial.dir]
		j.mu.Unlock()
		if !bad {
			return initial, nil
		}
		return nil, permanent(fmt.Errorf("the savepoint the job started from is damaged and no later checkpoint is intact"))
	}
	if len(retained) > 0 {
		// Starting afresh would replay output that completed checkpoints
		// already committed: fail instead (as Flink does).
		j.mu.Lock()
		for _, m := range retained {
			if dir := j.cp.coord.CheckpointDir(m.ID); j.bad[dir] && len(damagedErrs) == 0 {
				damagedErrs = append(damagedErrs, dir+" failed to restore")
			}
		}
		j.mu.Unlock()
		return nil, permanent(fmt.Errorf("every retained checkpoint is damaged (%s); not starting afresh, which would repeat committed output",
			strings.Join(damagedErrs, "; ")))
	}
	return nil, nil
}

// runAttempt places, opens and runs the tasks once: in this process (one
// TaskSet) or on the workers of Options.Cluster.
func (j *Job) runAttempt(ctx context.Context, n int, rp *restorePoint) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	uid := randomID()
	var groups []TaskGroup
	if j.opts.Cluster == nil {
		groups = []TaskGroup{j.NewTaskSet(TaskSetConfig{Attempt: n, UID: uid, rp: rp})}
	} else {
		d := &Deployment{Job: j, Attempt: n, UID: uid, Tasks: j.Tasks(), Restore: rp.ref()}
		if j.cp != nil {
			d.Acks = j.cp.coord
		}
		var err error
		if groups, err = j.opts.Cluster.Deploy(ctx, d); err != nil {
			return err
		}
	}
	errs := make([]error, len(groups))
	var wg sync.WaitGroup
	for i, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = g.Open(ctx)
		}()
	}
	wg.Wait()
	if err := firstOpenError(errs); err != nil {
		for _, g := range groups {
			_, _ = g.Finish(ctx, false) // releases what opened, and the slots
		}
		return err
	}
	j.mu.Lock()
	j.groups = groups
	j.mu.Unlock()
	if j.cp != nil {
		names := make([]string, 0)
		for _, t := range j.Tasks() {
			names = append(names, t.Name)
		}
		j.cp.current.Store(&running{groups: groups})
		j.cp.coord.Start(names)
	}
	ev := Event{Kind: EventStarted, Attempt: n}
	if rp != nil {
		ev.Kind, ev.Checkpoint, ev.Dir = EventRestored, rp.meta.ID, rp.dir
	}
	j.event(ev)
	var once sync.Once
	var first error
	for _, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.Run(ctx); err != nil && ctx.Err() == nil {
				once.Do(func() { first = err })
				cancel(first)
			}
		}()
	}
	wg.Wait()
	if j.cp != nil {
		j.cp.current.Store(nil)
		if first != nil {
			j.cp.coord.Stop(first)
		} else {
			j.cp.coord.Pause()
		}
		if first != nil {
			if err := j.cp.coord.Sweep(context.WithoutCancel(ctx)); err != nil {
				j.opts.Logger.Warn("removing files of the failed attempt", "err", err)
			}
		}
	}
	if first == nil && ctx.Err() != nil {
		first = context.Cause(ctx)
	}
	committed := false
	for _, g := range groups {
		c, err := g.Finish(ctx, first == nil)
		if err != nil && first == nil {
			first = err
			if committed && !isPermanent(err) {
				first = permanent(fmt.Errorf("%w (other sinks have committed their final output, which a restart would write again)", err))
			}
		}
		committed = committed || c
	}
	return first
}

// finalCommitAttempts bounds the tries of a final commit; the waits
// between them double from finalCommitBackoff (0.1 s, 0.2 s, ... 1.6 s).
const (
	finalCommitAttempts = 6
	finalCommitBackoff  = 100 * time.Millisecond
)

// commitFinal commits a sink's final transaction, retrying a failure with
// backoff on the job's clock (a sink's Commit is idempotent). It gives up
// early when ctx is done.
func (j *Job) commitFinal(ctx context.Context, tx TwoPhaseSink) error {
	wait := finalCommitBackoff
	for i := 1; ; i++ {
		err := tx.Commit(context.WithoutCancel(ctx), FinalCheckpoint)
		if err == nil || i == finalCommitAttempts {
			return err
		}
		j.opts.Logger.Warn("final commit failed; retrying", "attempt", i, "err", err)
		select {
		case <-j.opts.Clock.After(wait):
		case <-ctx.Done():
			return err
		}
		wait *= 2
	}
}

// open creates every task's state backend, restores it and the
// connectors from rp (if any), and opens the operator instances, on the
// caller's goroutine before any task runs: a module that cannot start
// fails the attempt before data flows.
func (j *Job) open(ctx context.Context, a *attempt, rp *restorePoint) error {
	spec := j.Spec
	for _, t := range a.tasks {
		t.ctx = ctx
		dbDir := filepath.Join(a.stateDir, taskDirName(t))
		switch spec.State.Backend {
		case "pebble":
			b, err := state.OpenPebble(dbDir, state.PebbleOptions{})
			if err != nil {
				return fmt.Errorf("task %s: state: %w", t.name, err)
			}
			t.backend = b
		default:
			t.backend = state.NewMemory()
		}
	}
	if rp != nil {
		if err := j.restoreTasks(ctx, a, rp); err != nil {
			return err
		}
	}
	for _, t := range a.tasks {
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
			op.access.registered = map[string]bool{}
			err = inst.Open(ctx, abi.OpenInfo{
				Operator: n.Operator, NodeID: n.ID, Config: cfg,
				Subtask: uint32(t.subtask), Parallelism: uint32(n.Parallelism),
				MaxParallelism: uint32(spec.MaxParallelism), Inputs: uint32(max(1, len(n.Inputs))),
			})
			if err != nil {
				if re := op.access.regErr; re != nil && errors.Is(re, state.ErrKindMismatch) {
					// Restored state of another kind: a module version that
					// cannot take this savepoint. No restart can fix it.
					return permanent(fmt.Errorf("task %s: operator %s: the restored state does not fit the module: %w", t.name, n.ID, re))
				}
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
	if rp != nil {
		return j.checkRegistered(rp, a.tasks)
	}
	return nil
}

// restoreTasks restores every task, in parallel (bounded): recovery time
// is mostly fetching files, and tasks share nothing while restoring. The
// first error is returned (a damaged checkpoint first, so that recovery
// falls back).
func (j *Job) restoreTasks(ctx context.Context, a *attempt, rp *restorePoint) error {
	sem := make(chan struct{}, max(2, goruntime.GOMAXPROCS(0)))
	errs := make([]error, len(a.tasks))
	var wg sync.WaitGroup
	for i, t := range a.tasks {
		if t.cp == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = j.restoreTask(ctx, a, t, rp, filepath.Join(a.stateDir, taskDirName(t)))
		}()
	}
	wg.Wait()
	return firstOpenError(errs)
}

// taskDirName is a file-system-safe directory name for a task's state.
func taskDirName(t *task) string {
	r := strings.NewReplacer("+", "_", "[", "-", "]", "")
	return r.Replace(t.name)
}

// closeTasks releases what open created for tasks that never ran.
func (j *Job) closeTasks(tasks []*task) {
	for _, t := range tasks {
		for _, e := range t.elems {
			switch e := e.(type) {
			case *operatorElem:
				if e.inst != nil {
					_ = e.inst.Close(context.Background())
				}
			case *sinkElem:
				_ = e.sink.Close()
			}
		}
		if t.backend != nil {
			_ = t.backend.Close()
		}
	}
}

func (j *Job) cleanup() {
	if j.tmpDir != "" {
		_ = os.RemoveAll(j.tmpDir)
	}
}

// Stats returns every task's metrics, of the current (or last) attempt.
func (j *Job) Stats() []TaskStats {
	j.mu.Lock()
	groups := j.groups
	j.mu.Unlock()
	var out []TaskStats
	for _, g := range groups {
		out = append(out, g.Stats()...)
	}
	return out
}

// IsSpecError reports whether err is (or wraps) a job spec problem.
func IsSpecError(err error) bool {
	var es SpecErrors
	var e *SpecError
	return errors.As(err, &es) || errors.As(err, &e)
}

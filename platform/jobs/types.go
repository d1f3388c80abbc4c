package jobs

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/weirstream/weir/checkpoint"
	"github.com/weirstream/weir/runtime"
)

// State is a job's lifecycle state.
type State string

// Job states.
const (
	StateRunning    State = "running"
	StateRestarting State = "restarting" // a task failed; the restart strategy waits
	StateUpgrading  State = "upgrading"
	StateRescaling  State = "rescaling"
	StateFinished   State = "finished" // bounded input done
	StateFailed     State = "failed"
	StateCanceled   State = "canceled"
	StateStopped    State = "stopped" // stopped with a savepoint
)

func (s State) terminal() bool {
	switch s {
	case StateFinished, StateFailed, StateCanceled, StateStopped:
		return true
	}
	return false
}

// holdsSlots: a job that is not over keeps its slots, also between
// generations of an upgrade.
func (s State) holdsSlots() bool { return !s.terminal() }

// record is the durable part of a job (the metadata store's value).
type record struct {
	ID      string                  `json:"id"`
	Tenant  string                  `json:"tenant"`
	Name    string                  `json:"name"`
	Spec    json.RawMessage         `json:"spec"` // the pinned spec the current generation runs
	Modules map[string]PinnedModule `json:"modules"`
	// PrevModules are the modules of the spec an upgrade may roll back to.
	PrevModules map[string]PinnedModule `json:"prev_modules,omitempty"`
	State       State                   `json:"state"`
	Error       string                  `json:"error,omitempty"`
	Slots       int                     `json:"slots"`
	Generation  int                     `json:"generation"`
	// Savepoint the current generation started from (its id and folder).
	Savepoint        string      `json:"savepoint,omitempty"`
	SavepointDir     string      `json:"savepoint_dir,omitempty"`
	AllowNonRestored bool        `json:"allow_non_restored_state,omitempty"`
	StoppedWith      string      `json:"stopped_with,omitempty"` // the savepoint a stop took
	Exceptions       []Exception `json:"exceptions,omitempty"`
	Restarts         int         `json:"restarts"`
	CreatedAt        time.Time   `json:"created_at"`
	UpdatedAt        time.Time   `json:"updated_at"`
	FinishedAt       *time.Time  `json:"finished_at,omitempty"`
}

// maxExceptions bounds a job's exception history.
const maxExceptions = 100

// Job is a job as the API shows it.
type Job struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	State       State             `json:"state"`
	Error       string            `json:"error,omitempty"`
	Modules     map[string]string `json:"modules"` // alias -> name@version
	Slots       int               `json:"slots"`
	Generation  int               `json:"generation"`
	Restarts    int               `json:"restarts"`
	Savepoint   string            `json:"from_savepoint,omitempty"`
	StoppedWith string            `json:"stopped_with_savepoint,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
	FinishedAt  *time.Time        `json:"finished_at,omitempty"`
}

// Detail is a job with its graph, live metrics and checkpoint summary.
type Detail struct {
	Job
	Graph       []GraphNode       `json:"graph"`
	Vertices    []Vertex          `json:"vertices"`
	Checkpoints CheckpointSummary `json:"checkpoints"`
	Spec        json.RawMessage   `json:"spec"`
}

// GraphNode is one node of the job graph with its input edges.
type GraphNode struct {
	ID          string      `json:"id"`
	Kind        string      `json:"kind"` // source, operator, sink
	Connector   string      `json:"connector,omitempty"`
	Module      string      `json:"module,omitempty"`
	Operator    string      `json:"operator,omitempty"`
	Parallelism int         `json:"parallelism"`
	Inputs      []GraphEdge `json:"inputs,omitempty"`
}

// GraphEdge is an input of a node.
type GraphEdge struct {
	From      string `json:"from"`
	Partition string `json:"partition,omitempty"` // "" when the engine picks the default
	Output    string `json:"output,omitempty"`
}

// Vertex is the metrics of one chain of nodes (all its subtasks).
type Vertex struct {
	Nodes       []string `json:"nodes"`
	Parallelism int      `json:"parallelism"`
	Finished    int      `json:"finished"`
	RecordsIn   int64    `json:"records_in"`
	RecordsOut  int64    `json:"records_out"`
	BytesIn     int64    `json:"bytes_in"`
	BytesOut    int64    `json:"bytes_out"`
	LateDropped int64    `json:"late_dropped"`
	// Rates since the previous Get of the job (0 on the first).
	RecordsInPerSecond  float64 `json:"records_in_per_second"`
	RecordsOutPerSecond float64 `json:"records_out_per_second"`
	// BackpressureRatio is the share of the last interval the vertex's
	// slowest subtask spent blocked on output.
	BackpressureRatio float64 `json:"backpressure_ratio"`
	// Watermark is the lowest subtask watermark (epoch ms); null before any.
	Watermark *int64 `json:"watermark"`
	// AlignmentMs is the total barrier alignment time of the attempt.
	AlignmentMs float64 `json:"alignment_ms"`
}

// CheckpointSummary counts a generation's checkpoints.
type CheckpointSummary struct {
	Completed int               `json:"completed"`
	Aborted   int               `json:"aborted"`
	Latest    *checkpoint.Stats `json:"latest,omitempty"`
}

// Exception is one failure in a job's history.
type Exception struct {
	Time       time.Time `json:"time"`
	Generation int       `json:"generation"`
	Attempt    int       `json:"attempt"`
	// Task is the task that failed ("src+map[2]"), when the failure was a
	// task's.
	Task  string `json:"task,omitempty"`
	Error string `json:"error"`
}

// failedTask names the task of an attempt failure: the runtime reports
// one as "task <name>: <cause>", possibly wrapped by a restore or a
// restart strategy that adds its own prefix.
func failedTask(msg string) string {
	i := strings.Index(msg, "task ")
	if i < 0 || (i > 0 && msg[i-1] != ' ') {
		return ""
	}
	name, _, ok := strings.Cut(msg[i+len("task "):], ": ")
	if !ok || name == "" || strings.ContainsAny(name, " \t\n") {
		return ""
	}
	return name
}

func (e *entry) viewLocked() Job {
	mods := make(map[string]string, len(e.rec.Modules))
	for k, p := range e.rec.Modules {
		mods[k] = p.Pinned
	}
	r := &e.rec
	return Job{
		ID: r.ID, Name: r.Name, State: r.State, Error: r.Error, Modules: mods, Slots: r.Slots,
		Generation: r.Generation, Restarts: r.Restarts, Savepoint: r.Savepoint, StoppedWith: r.StoppedWith,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, FinishedAt: r.FinishedAt,
	}
}

// graphOf describes the spec's nodes with their effective parallelism.
func graphOf(spec *runtime.JobSpec) []GraphNode {
	out := make([]GraphNode, 0, len(spec.Nodes))
	for _, n := range spec.Nodes {
		g := GraphNode{ID: n.ID, Module: n.Module, Operator: n.Operator, Parallelism: n.Parallelism}
		if g.Parallelism == 0 {
			g.Parallelism = max(spec.Parallelism, 1)
		}
		switch n.Kind() {
		case runtime.KindSource:
			g.Kind, g.Connector = "source", n.Source
		case runtime.KindSink:
			g.Kind, g.Connector = "sink", n.Sink
		default:
			g.Kind = "operator"
		}
		for _, in := range n.Inputs {
			g.Inputs = append(g.Inputs, GraphEdge{From: in.From, Partition: in.Partition, Output: in.Output})
		}
		out = append(out, g)
	}
	return out
}

func summarize(h []checkpoint.Stats) CheckpointSummary {
	var s CheckpointSummary
	for i := range h {
		switch h[i].Status {
		case "completed":
			s.Completed++
			if !h[i].Savepoint {
				c := h[i]
				s.Latest = &c
			}
		case "aborted":
			s.Aborted++
		}
	}
	return s
}

// metrics turns task stats into per-vertex rates between two Gets.
type metrics struct {
	mu     sync.Mutex
	last   map[string]Vertex
	lastBP map[string]time.Duration
	at     time.Time
}

func (mt *metrics) vertices(stats []runtime.TaskStats, now time.Time) []Vertex {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	byChain := map[string]*Vertex{}
	bp := map[string]time.Duration{}
	var order []string
	for _, s := range stats {
		k := strings.Join(s.Nodes, "+")
		v := byChain[k]
		if v == nil {
			v = &Vertex{Nodes: s.Nodes}
			byChain[k] = v
			order = append(order, k)
		}
		v.Parallelism++
		if s.Finished {
			v.Finished++
		}
		v.RecordsIn += s.RecordsIn
		v.RecordsOut += s.RecordsOut
		v.BytesIn += s.BytesIn
		v.BytesOut += s.BytesOut
		v.LateDropped += s.LateDropped
		v.AlignmentMs += float64(s.Alignment) / float64(time.Millisecond)
		bp[fmt.Sprintf("%s[%d]", k, s.Subtask)] = s.Backpressure
		if s.Watermark > minWatermark && (v.Watermark == nil || s.Watermark < *v.Watermark) {
			w := s.Watermark
			v.Watermark = &w
		}
	}
	// order is the engine's task order: the graph's, sources first.
	dt := now.Sub(mt.at).Seconds()
	out := make([]Vertex, 0, len(order))
	for _, k := range order {
		v := byChain[k]
		if prev, ok := mt.last[k]; ok && dt > 0 {
			v.RecordsInPerSecond = max(float64(v.RecordsIn-prev.RecordsIn)/dt, 0)
			v.RecordsOutPerSecond = max(float64(v.RecordsOut-prev.RecordsOut)/dt, 0)
			for sub := 0; sub < v.Parallelism; sub++ {
				name := fmt.Sprintf("%s[%d]", k, sub)
				if d, ok := mt.lastBP[name]; ok {
					v.BackpressureRatio = max(v.BackpressureRatio, min((bp[name]-d).Seconds()/dt, 1))
				}
			}
		}
		out = append(out, *v)
	}
	mt.last = make(map[string]Vertex, len(out))
	for _, v := range out {
		mt.last[strings.Join(v.Nodes, "+")] = v
	}
	mt.lastBP, mt.at = bp, now
	return out
}

// minWatermark is abi.MinWatermark (no watermark yet).
const minWatermark = -1 << 63

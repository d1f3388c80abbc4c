package runtime

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/weirstream/weir/abi"
)

// This file holds test doubles that are real implementations of the
// runtime's interfaces in plain Go: a module of Go operators (so runtime
// tests do not depend on Wasm), an in-memory source and a collecting sink.

type rec struct {
	key, value string
	ts         int64
}

// opFuncs is a Go operator written against the batch ABI.
type opFuncs struct {
	keyed     bool
	open      func(c *opCtx) error
	process   func(c *opCtx, input int, r rec) error
	timer     func(c *opCtx, d abi.TimeDomain, key string, ts int64) error
	watermark func(c *opCtx, wm int64) error
	end       func(c *opCtx, input int) error
}

type goModule map[string]opFuncs

func (m goModule) Operators() []abi.OperatorInfo {
	var ops []abi.OperatorInfo
	for name, f := range m {
		var flags uint32
		if f.keyed {
			flags = abi.FlagKeyed
		}
		ops = append(ops, abi.OperatorInfo{Name: name, Flags: flags})
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].Name < ops[j].Name })
	return ops
}

func (m goModule) NewInstance(_ context.Context, env InstanceEnv) (OperatorInstance, error) {
	return &opCtx{mod: m, env: env}, nil
}

type opCtx struct {
	mod  goModule
	env  InstanceEnv
	f    opFuncs
	info abi.OpenInfo
	out  abi.Encoder
	ts   int64
	vals map[string]int32 // state ids by name
}

func (c *opCtx) Open(_ context.Context, info abi.OpenInfo) error {
	f, ok := c.mod[info.Operator]
	if !ok {
		return fmt.Errorf("unknown operator %q", info.Operator)
	}
	c.f, c.info, c.vals = f, info, map[string]int32{}
	if f.open != nil {
		return f.open(c)
	}
	return nil
}

func (c *opCtx) Process(_ context.Context, input int, batch []byte) ([]byte, error) {
	c.out.Reset()
	d := abi.NewDecoder(batch)
	var e abi.Event
	for d.More() {
		if err := d.Next(&e); err != nil {
			return nil, err
		}
		var err error
		switch e.Kind {
		case abi.KindRecord:
			c.ts = e.Timestamp
			if c.f.process != nil {
				err = c.f.process(c, input, rec{string(e.Key), string(e.Value), e.Timestamp})
			}
		case abi.KindTimer:
			c.ts = e.Timestamp
			if c.f.timer != nil {
				err = c.f.timer(c, e.Domain, string(e.Key), e.Timestamp)
			}
		case abi.KindWatermark:
			if c.f.watermark != nil {
				err = c.f.watermark(c, e.Timestamp)
			}
		case abi.KindEndOfInput:
			if c.f.end != nil {
				err = c.f.end(c, input)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return c.out.B, nil
}

func (c *opCtx) Close(context.Context) error { return nil }

func (c *opCtx) emit(key, value string) { c.out.Record(abi.TagMain, []byte(key), []byte(value), c.ts) }
func (c *opCtx) emitTag(tag uint8, key, value string) {
	c.out.Record(tag, []byte(key), []byte(value), c.ts)
}

func (c *opCtx) state(name string) int32 {
	id, ok := c.vals[name]
	if !ok {
		var err error
		id, err = c.env.State.Register(name, abi.StateValue)
		if err != nil {
			panic(err)
		}
		c.vals[name] = id
	}
	return id
}

func (c *opCtx) get(name, key string) (string, bool) {
	v, ok, err := c.env.State.Get(c.state(name), []byte(key), nil)
	if err != nil {
		panic(err)
	}
	return string(v), ok
}

func (c *opCtx) put(name, key, value string) {
	if err := c.env.State.Put(c.state(name), []byte(key), nil, []byte(value)); err != nil {
		panic(err)
	}
}

// sliceSource emits fixed records, split round-robin over subtasks.
type sliceSource struct {
	recs []rec
	next int
	info TaskInfo
}

func (s *sliceSource) Open(_ context.Context, info TaskInfo) error {
	s.info, s.next = info, info.Subtask
	return nil
}

func (s *sliceSource) Poll(_ context.Context, w RecordWriter, max int) (bool, error) {
	for n := 0; n < max && s.next < len(s.recs); n++ {
		r := s.recs[s.next]
		w.Write([]byte(r.key), []byte(r.value), r.ts)
		s.next += s.info.Parallelism
	}
	return s.next >= len(s.recs), nil
}

func (s *sliceSource) Close() error { return nil }

// collector gathers what sinks receive, per sink node.
type collector struct {
	mu   sync.Mutex
	recs map[string][]rec // by sink node id
	sub  map[string][]int // subtask of each record
	fin  map[string]int   // Finish calls per node
}

func newCollector() *collector {
	return &collector{recs: map[string][]rec{}, sub: map[string][]int{}, fin: map[string]int{}}
}

type collectSink struct {
	c    *collector
	info TaskInfo
	hook func(ctx context.Context) error // called per batch (tests block here)
}

func (s *collectSink) Open(_ context.Context, info TaskInfo) error { s.info = info; return nil }
func (s *collectSink) Write(ctx context.Context, batch []byte) error {
	if s.hook != nil {
		if err := s.hook(ctx); err != nil {
			return err
		}
	}
	d := abi.NewDecoder(batch)
	var e abi.Event
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	for d.More() {
		if err := d.Next(&e); err != nil {
			return err
		}
		if e.Kind != abi.KindRecord {
			return fmt.Errorf("sink got a %v event", e.Kind)
		}
		s.c.recs[s.info.NodeID] = append(s.c.recs[s.info.NodeID], rec{string(e.Key), string(e.Value), e.Timestamp})
		s.c.sub[s.info.NodeID] = append(s.c.sub[s.info.NodeID], s.info.Subtask)
	}
	return nil
}
func (s *collectSink) Finish(context.Context) error {
	s.c.mu.Lock()
	s.c.fin[s.info.NodeID]++
	s.c.mu.Unlock()
	return nil
}
func (s *collectSink) Close() error { return nil }

func (c *collector) sorted(node string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, r := range c.recs[node] {
		out = append(out, fmt.Sprintf("%s=%s@%d", r.key, r.value, r.ts))
	}
	sort.Strings(out)
	return out
}

// testEnv builds Options with named sources (records) and collect sinks.
type testEnv struct {
	sources map[string][]rec
	col     *collector
	mod     goModule
	hook    func(ctx context.Context) error
}

func (e *testEnv) options() Options {
	conns := Connectors{Sources: map[string]SourceFactory{}, Sinks: map[string]SinkFactory{}}
	for name, recs := range e.sources {
		recs := recs
		conns.Sources[name] = func([]byte) (func() Source, error) {
			return func() Source { return &sliceSource{recs: recs} }, nil
		}
	}
	conns.Sinks["collect"] = func(cfg []byte) (func() Sink, error) {
		var c struct{}
		if err := DecodeConfig(cfg, &c); err != nil {
			return nil, err
		}
		return func() Sink { return &collectSink{c: e.col, hook: e.hook} }, nil
	}
	return Options{
		Connectors: conns,
		LoadModule: func(_ context.Context, name string, _ ModuleSpec) (Module, error) {
			if name != "go" {
				return nil, fmt.Errorf("no such test module %q", name)
			}
			return e.mod, nil
		},
	}
}

func runSpec(t *testing.T, env *testEnv, yaml string) *Job {
	t.Helper()
	spec, err := ParseSpec([]byte(yaml))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	job, err := Compile(context.Background(), spec, env.options())
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	if err := job.Run(context.Background()); err != nil {
		t.Fatalf("run: %v", err)
	}
	return job
}

func equalLines(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got %d lines:\n%s\nwant %d lines:\n%s", len(got), strings.Join(got, "\n"), len(want), strings.Join(want, "\n"))
	}
}

package runtime

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
)

// txCollectSink is a collectSink with a two-phase final commit whose first
// failures[node] Commit(FinalCheckpoint) calls fail.
type txCollectSink struct {
	collectSink
	f *finalCommits
}

type finalCommits struct {
	mu       sync.Mutex
	failures map[string]int // failures still to inject, by node
	commits  map[string]int // successful final commits, by node
	calls    int
}

func (s *txCollectSink) PreCommit(context.Context, int64) ([]byte, error) { return nil, nil }
func (s *txCollectSink) Restore(context.Context, TaskInfo, int64, [][]byte) error {
	return nil
}
func (s *txCollectSink) Commit(_ context.Context, n int64) error {
	if n != FinalCheckpoint {
		return nil
	}
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.f.calls++
	if s.f.failures[s.info.NodeID] != 0 {
		s.f.failures[s.info.NodeID]--
		return errors.New("broker away")
	}
	s.f.commits[s.info.NodeID]++
	return nil
}

func runFinalCommit(t *testing.T, failures map[string]int) (*finalCommits, []Event, error) {
	t.Helper()
	env := &testEnv{sources: map[string][]rec{"src": {{"k", "a", 1}, {"k", "b", 2}}}, col: newCollector()}
	f := &finalCommits{failures: failures, commits: map[string]int{}}
	opts := env.options()
	opts.Connectors.Sinks["tx"] = func([]byte) (func() Sink, error) {
		return func() Sink { return &txCollectSink{collectSink: collectSink{c: env.col}, f: f} }, nil
	}
	var mu sync.Mutex
	var events []Event
	opts.OnEvent = func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() }
	spec, err := ParseSpec([]byte(`
name: final-commit
nodes:
  - {id: in, source: src}
  - {id: a, sink: tx, inputs: [in]}
  - {id: b, sink: tx, inputs: [in]}
restart: {strategy: fixed, attempts: 3, delay: 1ms}
`))
	if err != nil {
		t.Fatal(err)
	}
	job, err := Compile(context.Background(), spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	err = job.Run(context.Background())
	mu.Lock()
	defer mu.Unlock()
	return f, events, err
}

// TestFinalCommitRetried: a final commit that fails a few times is
// retried, not turned into a restart that would replay the job (and write
// again what the other sink committed).
func TestFinalCommitRetried(t *testing.T) {
	f, events, err := runFinalCommit(t, map[string]int{"a": 2, "b": 2})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if f.commits["a"] != 1 || f.commits["b"] != 1 || f.calls != 6 {
		t.Fatalf("commits %v after %d calls, want one per sink after 6", f.commits, f.calls)
	}
	for _, e := range events {
		if e.Kind == EventRestarting {
			t.Fatalf("the job restarted: %+v", e)
		}
	}
}

// TestFinalCommitFailsForGood: when one sink has committed and another's
// commit keeps failing, the job fails without a restart and says why.
func TestFinalCommitFailsForGood(t *testing.T) {
	f, events, err := runFinalCommit(t, map[string]int{"b": 1000})
	if err == nil || !strings.Contains(err.Error(), "sink b: commit: broker away") ||
		!strings.Contains(err.Error(), "a restart would write again") {
		t.Fatalf("run: %v", err)
	}
	if f.commits["a"] != 1 || f.commits["b"] != 0 || f.calls != 1+finalCommitAttempts {
		t.Fatalf("commits %v after %d calls", f.commits, f.calls)
	}
	for _, e := range events {
		if e.Kind == EventRestarting {
			t.Fatalf("the job restarted although sink a had committed: %+v", e)
		}
	}
}

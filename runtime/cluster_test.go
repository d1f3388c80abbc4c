package runtime

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// memCluster places subtask s on worker s % workers, each worker a
// TaskSet of its own, connected through memExchange: the same split of the
// graph the platform's cluster makes, without the network.
type memCluster struct {
	workers int
	ex      *memExchange
}

func (c *memCluster) Deploy(_ context.Context, d *Deployment) ([]TaskGroup, error) {
	placement := map[string]string{}
	for _, t := range d.Tasks {
		placement[t.Name] = fmt.Sprintf("w%d", t.Subtask%c.workers)
	}
	var groups []TaskGroup
	for w := 0; w < c.workers; w++ {
		self := fmt.Sprintf("w%d", w)
		groups = append(groups, d.Job.NewTaskSet(TaskSetConfig{
			Attempt: d.Attempt, UID: d.UID, Self: self, Placement: placement, Acks: d.Acks,
			Restore: d.Restore, Exchange: &memEndpoint{ex: c.ex, self: self, uid: d.UID},
		}))
	}
	return groups, nil
}

// memExchange delivers copies of batches (as the network would) and
// returns credits.
type memExchange struct {
	mu       sync.Mutex
	deliver  map[string]func([]byte)
	credit   map[string]func()
	sent     int
	inFlight map[string]int // batches sent and not yet credited, per channel
	maxIn    int
}

type memEndpoint struct {
	ex        *memExchange
	self, uid string
}

func (e *memEndpoint) Sender(to string, ch uint32, credit func()) func([]byte) error {
	k := fmt.Sprintf("%s/%d", e.uid, ch)
	e.ex.mu.Lock()
	e.ex.credit[k] = credit
	e.ex.mu.Unlock()
	return func(b []byte) error {
		e.ex.mu.Lock()
		d := e.ex.deliver[k]
		e.ex.sent++
		e.ex.inFlight[k]++
		e.ex.maxIn = max(e.ex.maxIn, e.ex.inFlight[k])
		e.ex.mu.Unlock()
		if d == nil {
			return fmt.Errorf("channel %s has no receiver", k)
		}
		d(append([]byte(nil), b...))
		return nil
	}
}

func (e *memEndpoint) Receive(from string, ch uint32, deliver func([]byte)) func() {
	k := fmt.Sprintf("%s/%d", e.uid, ch)
	e.ex.mu.Lock()
	e.ex.deliver[k] = deliver
	e.ex.mu.Unlock()
	return func() {
		e.ex.mu.Lock()
		c := e.ex.credit[k]
		e.ex.inFlight[k]--
		e.ex.mu.Unlock()
		c()
	}
}

func TestTasksSplitOverWorkers(t *testing.T) {
	input := wordInput(2000)
	for _, workers := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("workers%d", workers), func(t *testing.T) {
			env := &testEnv{sources: map[string][]rec{"lines": input}, col: newCollector(), mod: wordModule}
			spec, err := ParseSpec([]byte(`
name: wc
parallelism: 4
exchange: {batchBytes: 256, buffers: 2}
modules: {go: {path: unused}}
nodes:
  - {id: src, source: lines, parallelism: 2}
  - {id: split, module: go, operator: split, inputs: [{from: src, partition: rebalance}]}
  - {id: count, module: go, operator: count, inputs: [split]}
  - {id: out, sink: collect, inputs: [count]}
`))
			if err != nil {
				t.Fatal(err)
			}
			ex := &memExchange{deliver: map[string]func([]byte){}, credit: map[string]func(){}, inFlight: map[string]int{}}
			opts := env.options()
			opts.Cluster = &memCluster{workers: workers, ex: ex}
			job, err := Compile(context.Background(), spec, opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := job.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			equalLines(t, env.col.sorted("out"), wantWordCounts(input))
			if workers > 1 && ex.sent == 0 {
				t.Fatal("no batch crossed workers")
			}
			if ex.maxIn > 2 {
				t.Fatalf("%d batches in flight on one channel, credits allow 2", ex.maxIn)
			}
			if n := len(job.Stats()); n != 2+4+4 {
				t.Fatalf("stats of %d tasks, want 10 (from every worker)", n)
			}
		})
	}
}

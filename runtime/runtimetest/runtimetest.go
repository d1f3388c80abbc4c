// Package runtimetest holds what tests of whole jobs share: a source
// wrapper that slows a bounded input down so that it lasts for many
// checkpoints, and a fault injector that kills tasks at random once each
// attempt has made progress.
//
// It knows only the runtime's public API (runtime.Source,
// runtime.Options.OnEvent and InjectFault) and is imported by tests only.
package runtimetest

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/weirstream/weir/runtime"
)

// Throttle wraps a factory of checkpointed sources so that each subtask
// passes at most per records per tick of the wall clock: a rate limit, so
// that a bounded input lasts long enough for many checkpoints and failures.
func Throttle(f runtime.SourceFactory, per int, tick time.Duration) runtime.SourceFactory {
	return func(config []byte) (func() runtime.Source, error) {
		mk, err := f(config)
		if err != nil {
			return nil, err
		}
		return func() runtime.Source {
			return &throttled{CheckpointedSource: mk().(runtime.CheckpointedSource), per: per, tick: tick}
		}, nil
	}
}

type throttled struct {
	runtime.CheckpointedSource
	per  int
	tick time.Duration
	next time.Time
}

func (s *throttled) Poll(ctx context.Context, w runtime.RecordWriter, max int) (bool, error) {
	if d := time.Until(s.next); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false, nil
		}
	}
	s.next = time.Now().Add(s.tick)
	return s.CheckpointedSource.Poll(ctx, w, min(max, s.per))
}

// ErrKilled is the failure Chaos injects.
var ErrKilled = errors.New("chaos: task killed")

// Chaos fails a task now and then (with probability 0.05 per
// runtime.Options.InjectFault call), but only once the current attempt has
// completed a checkpoint, so that every attempt makes progress, and at
// most max times. Pass Event as runtime.Options.OnEvent and Fault as
// InjectFault.
type Chaos struct {
	mu       sync.Mutex
	rng      *rand.Rand
	max      int
	armed    bool
	failures int
	restarts int
}

// NewChaos returns a Chaos with its random choices seeded by seed.
func NewChaos(seed uint64, max int) *Chaos {
	return &Chaos{rng: rand.New(rand.NewPCG(seed, seed+1)), max: max}
}

// Event arms the injector at each completed checkpoint and counts restarts.
func (c *Chaos) Event(e runtime.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch e.Kind {
	case runtime.EventCheckpoint:
		c.armed = true
	case runtime.EventRestarting:
		c.restarts++
		c.armed = false
	}
}

// Fault is runtime.Options.InjectFault.
func (c *Chaos) Fault(string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.armed && c.failures < c.max && c.rng.Float64() < 0.05 {
		c.armed = false
		c.failures++
		return ErrKilled
	}
	return nil
}

// Failures is how many tasks were killed.
func (c *Chaos) Failures() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failures
}

// Restarts is how many restarts the job reported.
func (c *Chaos) Restarts() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.restarts
}

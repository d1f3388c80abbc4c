package wasmhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weirstream/weir/abi"
)

// healthyWorker runs batches through one instance until stop is closed,
// checking every output. It signals ready after its first batch.
type healthyWorker struct {
	name    string
	inst    *Instance
	batch   func(n int) (in, want []byte)
	batches int
	err     error
}

func (w *healthyWorker) run(stop <-chan struct{}, ready chan<- struct{}) {
	for n := 0; ; n++ {
		in, want := w.batch(n)
		out, err := w.inst.Process(context.Background(), 0, in)
		if err == nil && !bytes.Equal(out, want) {
			err = fmt.Errorf("batch %d: output %q, want %q", n, out, want)
		}
		if err != nil {
			w.err = err
			if n == 0 {
				close(ready)
			}
			return
		}
		w.batches++
		if n == 0 {
			close(ready)
		}
		select {
		case <-stop:
			return
		default:
		}
	}
}

// TestHostileIsolation runs every hostile case, concurrently, while healthy
// instances of the same modules (and of other modules) keep processing: a
// hostile module may fail its own instance and nothing else. Run with -race.
func TestHostileIsolation(t *testing.T) {
	gm := goGuestModule(t)
	rt := gm.rt
	compileShared := func(name string) *Module {
		m, err := rt.Compile(context.Background(), testWasm(t, name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close(context.Background()) })
		return m
	}
	echo, hostile, calls, bufferBad := compileShared("echo"), compileShared("hostile"), compileShared("calls"), compileShared("buffer_bad")

	echoBatch := func(int) ([]byte, []byte) { in := records(50); return in, in }
	countState := newMemState()
	workers := []*healthyWorker{
		{name: "echo.wat", inst: open(t, echo, "echo", InstanceConfig{}), batch: echoBatch},
		// The default CallTimeout (5s), not hostileLimits': the deadline is
		// wall time, and on a small machine the spinning hostile guests can
		// keep a healthy call off the CPU for longer than 100ms.
		{name: "hostile.wat input 0", inst: open(t, hostile, "hostile", InstanceConfig{}), batch: echoBatch},
		{name: "go echo", inst: open(t, gm, "echo", InstanceConfig{}), batch: echoBatch},
		{name: "go count", inst: open(t, gm, "count", InstanceConfig{State: countState, Timers: newFakeTimers()}),
			batch: func(n int) ([]byte, []byte) {
				in := abi.AppendRecord(nil, 0, []byte("k"), []byte("v"), abi.NoTimestamp)
				want := abi.AppendRecord(nil, 0, []byte("k"), []byte(strconv.Itoa(n+1)), abi.NoTimestamp)
				return in, want
			}},
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, w := range workers {
		ready := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(stop, ready)
		}()
		<-ready
	}

	type hostileRun struct {
		name string
		run  func() error
		kind FailureKind
	}
	var runs []hostileRun
	for _, hc := range hostileCases {
		runs = append(runs, hostileRun{"hostile.wat " + hc.name, func() error {
			i, err := hostile.Instantiate(context.Background(), InstanceConfig{Limits: hostileLimits})
			if err != nil {
				return err
			}
			defer i.Close(context.Background())
			if err := i.Open(context.Background(), abi.OpenInfo{Operator: "hostile"}); err != nil {
				return err
			}
			_, err = i.Process(context.Background(), hc.input, records(2))
			return err
		}, hc.kind})
	}
	goRun := func(op string, limits Limits) func() error {
		return func() error {
			i, err := gm.Instantiate(context.Background(), InstanceConfig{Limits: limits})
			if err != nil {
				return err
			}
			defer i.Close(context.Background())
			if err := i.Open(context.Background(), abi.OpenInfo{Operator: op}); err != nil {
				return err
			}
			_, err = i.Process(context.Background(), 0, records(2))
			return err
		}
	}
	runs = append(runs,
		hostileRun{"go panic", goRun("panic", Limits{}), FailureStatus},
		hostileRun{"go crash", goRun("crash", Limits{}), FailureTrap},
		hostileRun{"go oom", goRun("oom", Limits{MemoryPages: 256}), FailureTrap},
		hostileRun{"go loop", goRun("loop", Limits{CallTimeout: 200 * time.Millisecond}), FailureDeadline},
		hostileRun{"calls.wat emit out of bounds", func() error {
			i, err := calls.Instantiate(context.Background(), InstanceConfig{})
			if err != nil {
				return err
			}
			defer i.Close(context.Background())
			if err := i.Open(context.Background(), abi.OpenInfo{Operator: "plain"}); err != nil {
				return err
			}
			_, err = i.Process(context.Background(), 0, callArgs(selEmit, [7]int64{0xfffffff0, 0x20}, nil))
			return err
		}, FailureABI},
		hostileRun{"buffer_bad.wat", func() error {
			i, err := bufferBad.Instantiate(context.Background(), InstanceConfig{})
			if err != nil {
				return err
			}
			defer i.Close(context.Background())
			if err := i.Open(context.Background(), abi.OpenInfo{Operator: "stub"}); err != nil {
				return err
			}
			_, err = i.Process(context.Background(), 0, make([]byte, 10))
			return err
		}, FailureABI},
	)

	errs := make([]error, len(runs))
	var hwg sync.WaitGroup
	for k, hr := range runs {
		hwg.Add(1)
		go func() {
			defer hwg.Done()
			errs[k] = hr.run()
		}()
	}
	// Rejected modules, compiled concurrently with all of the above.
	for _, name := range []string{"abi_v2", "init_trap", "unknown_import", "ops_oob"} {
		hwg.Add(1)
		go func() {
			defer hwg.Done()
			if m, err := rt.Compile(context.Background(), testWasm(t, name)); err == nil {
				m.Close(context.Background())
				t.Errorf("%s compiled", name)
			}
		}()
	}
	hwg.Wait()
	close(stop)
	wg.Wait()

	for k, hr := range runs {
		if errs[k] == nil {
			t.Errorf("%s: no error", hr.name)
			continue
		}
		var ce *CallError
		if hr.kind == FailureTrap && errors.As(errs[k], &ce) && ce.Kind() == FailureDeadline && strings.Contains(hr.name, "recursion") {
			// Under this much contention (and -race) the host-side stack
			// growth of runaway recursion can outlast the deadline; either
			// is a clean failure of that instance alone.
			continue
		}
		callError(t, errs[k], hr.kind)
	}
	for _, w := range workers {
		if w.err != nil {
			t.Errorf("healthy %s failed: %v", w.name, w.err)
			continue
		}
		// Still healthy after every hostile case finished.
		in, want := w.batch(w.batches)
		if out, err := w.inst.Process(context.Background(), 0, in); err != nil || !bytes.Equal(out, want) {
			t.Errorf("healthy %s after the hostile cases: %v", w.name, err)
		}
		t.Logf("%s: %d batches during the hostile cases", w.name, w.batches)
	}
}

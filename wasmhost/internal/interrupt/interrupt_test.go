package interrupt

import (
	"context"
	"testing"
	"time"
)

// interruptTimeout bounds how long a test waits for an event that should
// take microseconds; reaching it fails the test.
const interruptTimeout = 20 * time.Second

// TestInterrupt runs guests that never return, on a runtime WITHOUT
// CloseOnContextDone, and stops them by setting the flag from the test's
// goroutine once the guest has called env.started. With the compiler this
// also shows that the compiled code re-reads the global on every
// iteration: a load hoisted out of the loop would never see the 1, and the
// test would time out.
func TestInterrupt(t *testing.T) {
	cases := []struct {
		name   string
		wasm   func(t *testing.T) []byte
		export string
		rearm  string   // an export to run after re-arming: finite() = 42, fib(20) = 6765
		args   []uint64 // its arguments
		want   uint64   // its result
	}{
		{"wat/loop", watModule("spin"), "spin", "finite", nil, 42},
		{"wat/loop with calls", watModule("spin"), "spin_calls", "finite", nil, 42},
		{"wat/recursion without loops", watModule("spin"), "recurse", "finite", nil, 42},
		{"wat/tail calls without loops", watModule("tailcall"), "forever", "sum", []uint64{8}, 36},
		{"go/for loop", func(t *testing.T) []byte { return buildGo(t, "testdata/spinguest") }, "spin", "fib", []uint64{20}, 6765},
	}
	for _, e := range engines() {
		for _, c := range cases {
			t.Run(e.String()+"/"+c.name, func(t *testing.T) {
				rt := newRuntime(t, e, false)
				mod, host := instantiateGuest(t, rt, mustInstrument(t, c.wasm(t)))
				flag, err := Flag(mod)
				if err != nil {
					t.Fatal(err)
				}
				done := make(chan error, 1)
				go func() {
					_, err := mod.ExportedFunction(c.export).Call(context.Background())
					done <- err
				}()
				select {
				case <-host.started:
				case err := <-done:
					t.Fatalf("%s returned before calling env.started: %v", c.export, err)
				case <-time.After(interruptTimeout):
					t.Fatalf("%s did not call env.started within %v", c.export, interruptTimeout)
				}
				set := time.Now()
				flag.Set(1)
				select {
				case err := <-done:
					if !isUnreachable(err) {
						t.Fatalf("%s returned %v, want an unreachable trap", c.export, err)
					}
					t.Logf("interrupted %v after the flag was set", time.Since(set))
				case <-time.After(interruptTimeout):
					t.Fatalf("%s still running %v after the flag was set", c.export, interruptTimeout)
				}
				if flag.Get() != 1 {
					t.Errorf("flag = %d after the interruption, want 1 (the host's evidence)", flag.Get())
				}
				// A flag left set stops the next call at once; re-armed,
				// the instance runs again. (Weir discards an interrupted
				// instance; this only shows the flag is the only state.)
				if _, err := mod.ExportedFunction(c.rearm).Call(context.Background(), c.args...); !isUnreachable(err) {
					t.Errorf("%s with the flag set: %v, want an unreachable trap", c.rearm, err)
				}
				flag.Set(0)
				if res := call(t, mod, c.rearm, c.args...); res[0] != c.want {
					t.Errorf("%s after re-arming = %d, want %d", c.rearm, res[0], c.want)
				}
			})
		}
	}
}

func watModule(name string) func(t *testing.T) []byte {
	return func(t *testing.T) []byte { return testWasm(t, name) }
}

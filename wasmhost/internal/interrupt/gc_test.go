package interrupt

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
)

// gcChildEnv makes the test binary run TestGCWhileGuestSpins's child part.
const gcChildEnv = "INTERRUPT_GC_CHILD"

// TestGCWhileGuestSpins is the regression test for the yield in the check.
// Native code cannot be preempted by the Go runtime, so a guest spinning
// in a loop that never leaves native code holds up every stop-the-world
// phase of the garbage collector; the goroutine that would set the flag is
// stopped as well, and the whole process deadlocks. The checks therefore
// call into Go (a table.grow of 0 elements) every yieldInterval checks.
//
// A deadlocked process cannot time itself out (its timers are stopped
// too), so the scenario runs in a child process that this test kills when
// it takes too long.
func TestGCWhileGuestSpins(t *testing.T) {
	if os.Getenv(gcChildEnv) != "" {
		t.Skip("child process")
	}
	for _, guest := range []string{"wat", "go"} {
		t.Run(guest, func(t *testing.T) {
			if guest == "go" {
				buildGo(t, "testdata/spinguest") // build here, outside the child's time budget
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestGCChild$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), gcChildEnv+"="+guest)
			out, err := cmd.CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("the child process did not finish in time: the garbage collector waited for the spinning guest (deadlock)\n%s", out)
			}
			if err != nil || !strings.Contains(string(out), "--- PASS: TestGCChild") {
				t.Fatalf("child process: %v\n%s", err, out)
			}
		})
	}
}

// TestGCChild runs a guest that spins, forces a garbage collection while
// it does, then interrupts it. Only run as TestGCWhileGuestSpins's child.
func TestGCChild(t *testing.T) {
	guest := os.Getenv(gcChildEnv)
	if guest == "" {
		t.Skip("run by TestGCWhileGuestSpins")
	}
	wasm := testWasm(t, "spin")
	if guest == "go" {
		wasm = buildGo(t, "testdata/spinguest")
	}
	rt := newRuntime(t, compiler, false)
	mod, host := instantiateGuest(t, rt, mustInstrument(t, wasm))
	flag, err := Flag(mod)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := mod.ExportedFunction("spin").Call(context.Background())
		done <- err
	}()
	<-host.started
	for range 3 {
		runtime.GC()
	}
	flag.Set(1)
	if err := <-done; !isUnreachable(err) {
		t.Fatalf("spin returned %v, want an unreachable trap", err)
	}
}

package wasmhost

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weirstream/weir/abi"
)

// virtualBytes reads VmSize from /proc (0 when unavailable).
func virtualBytes(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmSize:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	t.Skip("no VmSize")
	return 0
}

// TestMemoryReleased checks that the linear memory of instances that fail
// to instantiate, fail later, or are closed is released: each reserves
// 64 MiB of address space, so leaking 200 of them shows.
func TestMemoryReleased(t *testing.T) {
	r := newTestRuntime(t, Config{DefaultLimits: Limits{CallTimeout: 20 * time.Millisecond}})
	echo := compile(t, r, "echo")
	hostile := compile(t, r, "hostile")
	startTrap, startLoop := testWasm(t, "start_trap"), testWasm(t, "start_loop")
	ctx := context.Background()
	before := virtualBytes(t)
	for k := range 200 {
		switch k % 4 {
		case 0: // instantiation traps in the start function
			if _, err := r.Compile(ctx, startTrap); err == nil {
				t.Fatal("start_trap compiled")
			}
		case 1: // the start function hits the deadline
			if k%20 == 1 {
				if _, err := r.Compile(ctx, startLoop); err == nil {
					t.Fatal("start_loop compiled")
				}
			}
		case 2: // a trap kills the instance
			i := open(t, hostile, "hostile", InstanceConfig{})
			if _, err := i.Process(ctx, 2, nil); err == nil {
				t.Fatal("no trap")
			}
		case 3: // a normal life
			i := open(t, echo, "echo", InstanceConfig{})
			if err := i.Close(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if grown := virtualBytes(t) - before; grown > 1<<30 {
		t.Errorf("address space grew by %d MiB over 200 instances", grown>>20)
	}
}

// TestRuntimeCloseDuringCall closes the runtime while a guest is running
// on another goroutine: the call must fail cleanly (its memory is unmapped
// only after it returned), not fault the process.
func TestRuntimeCloseDuringCall(t *testing.T) {
	r, err := NewRuntime(context.Background(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	m := compile(t, r, "hostile")
	running := make(chan struct{})
	var once sync.Once
	tm := &signalTimers{fakeTimers: newFakeTimers(), onWatermark: func() { once.Do(func() { close(running) }) }}
	i, err := m.Instantiate(context.Background(), InstanceConfig{Timers: tm, Limits: Limits{CallTimeout: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	if err := i.Open(context.Background(), abi.OpenInfo{Operator: "hostile"}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		_, err := i.Process(context.Background(), 13, nil) // loops calling watermark()
		done <- err
	}()
	<-running
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	err = <-done
	callError(t, err, FailureClosed)
	if !errors.Is(err, ErrClosed) {
		t.Errorf("error %v does not wrap ErrClosed", err)
	}
	if err := i.Close(context.Background()); err != nil {
		t.Errorf("Close after the runtime closed: %v", err)
	}
	if _, err := r.Compile(context.Background(), testWasm(t, "echo")); !errors.Is(err, ErrClosed) {
		t.Errorf("Compile on a closed runtime: %v", err)
	}
}

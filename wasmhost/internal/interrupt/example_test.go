package interrupt_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/weirstream/weir/wasmhost/internal/interrupt"
)

// A guest that never returns, stopped at a deadline by the host: the
// runtime has no CloseOnContextDone; a timer sets the flag.
func Example() {
	ctx := context.Background()
	orig, err := os.ReadFile("testdata/spin.wasm") // "spin" loops forever after calling env.started
	if err != nil {
		log.Fatal(err)
	}
	wasm, err := interrupt.Instrument(orig)
	if err != nil {
		log.Fatal(err) // ErrUnsupported: fall back to WithCloseOnContextDone
	}

	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCoreFeatures(api.CoreFeaturesV2))
	defer rt.Close(ctx)
	_, err = rt.NewHostModuleBuilder("env").NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(func(context.Context, api.Module, []uint64) {}), nil, nil).
		Export("started").Instantiate(ctx)
	if err != nil {
		log.Fatal(err)
	}
	mod, err := rt.Instantiate(ctx, wasm)
	if err != nil {
		log.Fatal(err)
	}
	flag, err := interrupt.Flag(mod)
	if err != nil {
		log.Fatal(err)
	}

	// The call's deadline. The host keeps its own record of the
	// interruption: reading the flag back would race with the timer.
	var interrupted atomic.Bool
	deadline := time.AfterFunc(10*time.Millisecond, func() {
		interrupted.Store(true)
		flag.Set(1)
	})
	defer deadline.Stop()
	_, err = mod.ExportedFunction("spin").Call(ctx)
	fmt.Println("error:", err != nil)
	fmt.Println("interrupted:", interrupted.Load())
	// Output:
	// error: true
	// interrupted: true
}

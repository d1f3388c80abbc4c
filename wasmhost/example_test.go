package wasmhost_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/wasmhost"
)

// The life of one operator instance: compile the module once, instantiate
// it per task, open the operator, hand it batches, close it.
func Example() {
	ctx := context.Background()
	rt, err := wasmhost.NewRuntime(ctx, wasmhost.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close(ctx)

	wasm, err := os.ReadFile("testdata/echo.wasm")
	if err != nil {
		log.Fatal(err)
	}
	mod, err := rt.Compile(ctx, wasm)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("operators:", mod.Operators())

	inst, err := mod.Instantiate(ctx, wasmhost.InstanceConfig{Name: "job-1/echo#0"})
	if err != nil {
		log.Fatal(err)
	}
	if err := inst.Open(ctx, abi.OpenInfo{Operator: "echo", NodeID: "echo", Parallelism: 1, MaxParallelism: 128, Inputs: 1}); err != nil {
		log.Fatal(err)
	}
	var batch abi.Encoder
	batch.Record(abi.TagMain, []byte("k"), []byte("hello"), 1000)
	out, err := inst.Process(ctx, 0, batch.B)
	if err != nil {
		log.Fatal(err)
	}
	d := abi.NewDecoder(out)
	var ev abi.Event
	for d.More() {
		if err := d.Next(&ev); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s=%s @%d\n", ev.Key, ev.Value, ev.Timestamp)
	}
	if err := inst.Close(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// operators: [{echo 0}]
	// k=hello @1000
}

// A module that is not a valid Weir module is rejected by Compile with a
// *ModuleError whose code is stable (for APIs) and whose message is for
// the module's author.
func ExampleModuleError() {
	ctx := context.Background()
	rt, err := wasmhost.NewRuntime(ctx, wasmhost.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close(ctx)

	for _, name := range []string{"missing_process", "abi_v2", "unknown_import"} {
		wasm, err := os.ReadFile("testdata/" + name + ".wasm")
		if err != nil {
			log.Fatal(err)
		}
		_, err = rt.Compile(ctx, wasm)
		var me *wasmhost.ModuleError
		if errors.As(err, &me) {
			fmt.Printf("%s: %s\n", me.Code(), me.Message())
		}
	}
	// Output:
	// missing_export: missing export weir_process
	// abi_version: ABI version 2, this host supports 1
	// unknown_import: imports unknown host function weir.foo
}

// A guest that never returns is stopped at its deadline; the instance is
// dead afterwards and the error says what happened where.
func ExampleCallError() {
	ctx := context.Background()
	rt, err := wasmhost.NewRuntime(ctx, wasmhost.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close(ctx)
	wasm, err := os.ReadFile("testdata/hostile.wasm")
	if err != nil {
		log.Fatal(err)
	}
	mod, err := rt.Compile(ctx, wasm)
	if err != nil {
		log.Fatal(err)
	}
	inst, err := mod.Instantiate(ctx, wasmhost.InstanceConfig{
		Name:   "job-1/spin#0",
		Limits: wasmhost.Limits{CallTimeout: 50 * time.Millisecond},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer inst.Close(ctx)
	if err := inst.Open(ctx, abi.OpenInfo{Operator: "hostile"}); err != nil {
		log.Fatal(err)
	}
	_, err = inst.Process(ctx, 1, nil) // input 1: an infinite loop
	var ce *wasmhost.CallError
	if errors.As(err, &ce) {
		fmt.Println(ce.Kind(), errors.Is(err, context.DeadlineExceeded))
		fmt.Println(err)
	}
	_, err = inst.Process(ctx, 0, nil)
	fmt.Println(errors.Is(err, wasmhost.ErrClosed))
	// Output:
	// deadline true
	// wasmhost: instance "job-1/spin#0": weir_process: deadline exceeded after 50ms
	// true
}

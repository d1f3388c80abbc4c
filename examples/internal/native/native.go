// Package native runs the operators a Go program exports through the SDK
// (sdk.Export, from the init functions of the operator packages it imports)
// natively with sdk.Native, as a runtime.Module: the benchmarks' way of
// measuring the same operator code with and without WebAssembly in one run.
//
// It belongs to the examples' tests and benchmarks only: the runtime knows
// nothing of the guest SDK, and the SDK nothing of the runtime.
package native

import (
	"context"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/runtime"
	"github.com/weirstream/weir/sdk"
)

// Loader is a runtime.ModuleLoader that ignores the spec's module and
// returns the program's own operators, run natively.
func Loader(context.Context, string, runtime.ModuleSpec) (runtime.Module, error) {
	return module{}, nil
}

type module struct{}

func (module) Operators() []abi.OperatorInfo { return sdk.NewNative(nil, nil, nil).Operators() }

func (module) NewInstance(_ context.Context, env runtime.InstanceEnv) (runtime.OperatorInstance, error) {
	return instance{sdk.NewNative(env.State, env.Timers, env.Logger)}, nil
}

type instance struct{ n *sdk.Native }

func (i instance) Open(_ context.Context, info abi.OpenInfo) error { return i.n.Open(info) }
func (i instance) Process(_ context.Context, input int, b []byte) ([]byte, error) {
	return i.n.Process(input, b)
}
func (i instance) Close(context.Context) error { return i.n.Close() }

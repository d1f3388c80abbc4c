package runtime

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/wasmhost"
)

// MaxModuleBytes bounds the size of a module file the loader reads.
const MaxModuleBytes = 256 << 20

// WasmLoader returns a ModuleLoader that reads module files and compiles
// them with rt (compile once per module; instances per task).
func WasmLoader(rt *wasmhost.Runtime) ModuleLoader {
	return func(ctx context.Context, name string, spec ModuleSpec) (Module, error) {
		if spec.Path == "" {
			return nil, fmt.Errorf("module references (%q) need the platform's registry; give a path to a Wasm file", spec.Ref)
		}
		st, err := os.Stat(spec.Path)
		if err != nil {
			return nil, fmt.Errorf("module file: %w", err)
		}
		if st.IsDir() {
			return nil, fmt.Errorf("module file %s is a directory", spec.Path)
		}
		if st.Size() > MaxModuleBytes {
			return nil, fmt.Errorf("module file %s is %d bytes, more than %d", spec.Path, st.Size(), MaxModuleBytes)
		}
		b, err := os.ReadFile(spec.Path)
		if err != nil {
			return nil, fmt.Errorf("module file: %w", err)
		}
		m, err := rt.Compile(ctx, b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", spec.Path, err)
		}
		return WasmModule(m), nil
	}
}

// WasmModule adapts a compiled module to the runtime (loaders other than
// WasmLoader, such as the platform's registry, compile modules themselves).
func WasmModule(m *wasmhost.Module) Module { return wasmModule{m} }

type wasmModule struct{ m *wasmhost.Module }

func (w wasmModule) Operators() []abi.OperatorInfo { return w.m.Operators() }

func (w wasmModule) NewInstance(ctx context.Context, env InstanceEnv) (OperatorInstance, error) {
	inst, err := w.m.Instantiate(ctx, wasmhost.InstanceConfig{
		Name:   env.Name,
		State:  env.State,
		Timers: env.Timers,
		Logger: env.Logger,
		Limits: wasmhost.Limits{
			MemoryPages:    env.Limits.MemoryPages,
			CallTimeout:    time.Duration(env.Limits.CallTimeout),
			MaxOutputBytes: env.Limits.MaxOutputBytes,
		},
	})
	if err != nil {
		return nil, err
	}
	return inst, nil
}

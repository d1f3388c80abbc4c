package wasmhost

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/weirstream/weir/abi"
)

// Runtime compiles Weir modules and hosts their instances. It owns one
// wazero runtime with the host module "weir" and a sandboxed WASI. It is
// safe for concurrent use: many tasks compile and instantiate in parallel.
type Runtime struct {
	cfg Config
	// rt runs modules the interrupt instrumenter could not rewrite: its
	// compiled code checks for cancellation at every loop header and
	// function entry (wazero's CloseOnContextDone), which costs Go guests
	// about 4x. fast runs instrumented modules (internal/interrupt): they
	// check a global flag instead, and the host sets it at the deadline.
	rt     wazero.Runtime
	fast   wazero.Runtime
	cache  wazero.CompilationCache
	wasi   map[string]api.FunctionDefinition // exports of wasi_snapshot_preview1
	closed atomic.Bool

	// live holds the instances of instrumented modules, so that Close can
	// interrupt their running calls (the fast engine has no other way).
	liveMu sync.Mutex
	live   map[*Instance]struct{}
}

func (r *Runtime) track(i *Instance) {
	r.liveMu.Lock()
	defer r.liveMu.Unlock()
	if r.live == nil {
		r.live = map[*Instance]struct{}{}
	}
	r.live[i] = struct{}{}
}

func (r *Runtime) untrack(i *Instance) {
	r.liveMu.Lock()
	defer r.liveMu.Unlock()
	delete(r.live, i)
}

// NewRuntime creates a runtime. cfg is completed with EnsureDefaults and
// checked with Validate.
func NewRuntime(ctx context.Context, cfg Config) (*Runtime, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var cache wazero.CompilationCache
	if cfg.CacheDir != "" {
		c, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("wasmhost: compilation cache in %s: %w", cfg.CacheDir, err)
		}
		cache = c
	} else {
		cache = wazero.NewCompilationCache()
	}
	r := &Runtime{cfg: cfg, cache: cache}
	for _, checked := range []bool{true, false} {
		rc := wazero.NewRuntimeConfig().
			WithCoreFeatures(api.CoreFeaturesV2).
			// checked: compiled code checks the context at function entries
			// and loop headers, so a runaway guest is stopped at the call's
			// deadline. The fast engine relies on instrumentation instead.
			WithCloseOnContextDone(checked).
			WithMemoryLimitPages(cfg.MemoryLimitPages).
			WithCompilationCache(cache)
		engine := wazero.NewRuntimeWithConfig(ctx, rc)
		if checked {
			r.rt = engine
		} else {
			r.fast = engine
		}
		if _, err := wasi_snapshot_preview1.Instantiate(ctx, engine); err != nil {
			_ = r.Close(ctx)
			return nil, fmt.Errorf("wasmhost: instantiating WASI: %w", err)
		}
		r.wasi = engine.Module(wasi_snapshot_preview1.ModuleName).ExportedFunctionDefinitions()
		b := engine.NewHostModuleBuilder(abi.HostModule)
		for _, hf := range hostFuncs {
			b.NewFunctionBuilder().
				WithGoModuleFunction(hf.fn, hf.params, hf.results).
				WithParameterNames(hf.paramNames...).
				Export(hf.name)
		}
		if _, err := b.Instantiate(ctx); err != nil {
			_ = r.Close(ctx)
			return nil, fmt.Errorf("wasmhost: instantiating host module %s: %w", abi.HostModule, err)
		}
	}
	return r, nil
}

// Config returns the runtime's configuration with defaults applied.
func (r *Runtime) Config() Config { return r.cfg }

// Close closes every module and instance of the runtime and the compilation
// cache. Instances must not be used afterwards.
func (r *Runtime) Close(ctx context.Context) error {
	if r.closed.Swap(true) {
		return nil
	}
	r.liveMu.Lock()
	for i := range r.live {
		i.setInterrupt(interruptedClosed)
	}
	r.liveMu.Unlock()
	var err error
	for _, engine := range []wazero.Runtime{r.rt, r.fast} {
		if engine != nil {
			if cerr := engine.Close(ctx); err == nil {
				err = cerr
			}
		}
	}
	if cerr := r.cache.Close(ctx); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("wasmhost: closing runtime: %w", err)
	}
	return nil
}

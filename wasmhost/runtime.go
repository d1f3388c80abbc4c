package wasmhost

import (
	"context"
	"fmt"
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
	cfg    Config
	rt     wazero.Runtime
	cache  wazero.CompilationCache
	wasi   map[string]api.FunctionDefinition // exports of wasi_snapshot_preview1
	closed atomic.Bool
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
	rc := wazero.NewRuntimeConfig().
		WithCoreFeatures(api.CoreFeaturesV2).
		// Compiled code checks the context at function entries and loop
		// headers, so a runaway guest is stopped at the call's deadline.
		WithCloseOnContextDone(true).
		WithMemoryLimitPages(cfg.MemoryLimitPages).
		WithCompilationCache(cache)
	r := &Runtime{cfg: cfg, rt: wazero.NewRuntimeWithConfig(ctx, rc), cache: cache}

	if _, err := wasi_snapshot_preview1.Instantiate(ctx, r.rt); err != nil {
		_ = r.Close(ctx)
		return nil, fmt.Errorf("wasmhost: instantiating WASI: %w", err)
	}
	r.wasi = r.rt.Module(wasi_snapshot_preview1.ModuleName).ExportedFunctionDefinitions()

	b := r.rt.NewHostModuleBuilder(abi.HostModule)
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
	err := r.rt.Close(ctx)
	if cerr := r.cache.Close(ctx); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("wasmhost: closing runtime: %w", err)
	}
	return nil
}

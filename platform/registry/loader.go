package registry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/weirstream/weir/runtime"
	"github.com/weirstream/weir/wasmhost"
)

// Loader returns the module loader of the tenant's jobs: it loads
// ModuleSpec.Ref (see Resolve) from the tenant's modules, and refuses
// ModuleSpec.Path, so that a platform job can never read a file of the
// host. Modules are compiled once per digest and shared.
func (r *Registry) Loader(tenant string) runtime.ModuleLoader {
	return func(ctx context.Context, name string, spec runtime.ModuleSpec) (runtime.Module, error) {
		if spec.Path != "" {
			return nil, fmt.Errorf("module %s: the platform runs uploaded modules only, not files (%q): give a reference such as name@version", name, spec.Path)
		}
		m, _, err := r.LoadRef(ctx, tenant, spec.Ref)
		if err != nil {
			return nil, err
		}
		return runtime.WasmModule(m), nil
	}
}

// LoadRef resolves ref in the tenant (Resolve) and returns the compiled
// module with the version it resolved to. The module is compiled once per
// digest, from the tenant's own verified bytes, and the same *Module is
// returned to every caller, of every tenant, until no tenant that loaded
// it has a version with its digest. Safe for concurrent use; concurrent
// first loads of a digest compile it once.
func (r *Registry) LoadRef(ctx context.Context, tenant, ref string) (*wasmhost.Module, Version, error) {
	v, err := r.Resolve(tenant, ref)
	if err != nil {
		return nil, Version{}, err
	}
	hexDigest := strings.TrimPrefix(v.Digest, digestPrefix)
	m, err := r.cache.get(ctx, hexDigest, tenant, func(ctx context.Context) ([]byte, error) {
		return r.Bytes(ctx, tenant, v)
	})
	if err != nil {
		return nil, Version{}, fmt.Errorf("module reference %q (%s): %w", ref, v.Ref(), err)
	}
	return m, v, nil
}

// moduleCache holds compiled modules by digest. An entry remembers which
// tenants loaded or uploaded it; when the last of them has no version
// with the digest any more (release), the module is closed. Lock order:
// a tenant's write lock, then moduleCache.mu.
type moduleCache struct {
	rt       *wasmhost.Runtime
	compiles atomic.Int64 // compilations by get (tests, diagnostics)

	mu      sync.Mutex
	entries map[string]*cacheEntry // by digest hex
}

type cacheEntry struct {
	ready chan struct{} // closed when m or err is set
	m     *wasmhost.Module
	err   error
	users map[string]struct{} // tenants; guarded by moduleCache.mu
}

func newModuleCache(rt *wasmhost.Runtime) *moduleCache {
	return &moduleCache{rt: rt, entries: map[string]*cacheEntry{}}
}

// get returns the compiled module of the digest, compiling the bytes from
// load the first time. Failures are not cached: the next get tries again.
// A caller never receives the error of another caller's load (which may
// name another tenant's object).
func (c *moduleCache) get(ctx context.Context, hexDigest, tenant string, load func(context.Context) ([]byte, error)) (*wasmhost.Module, error) {
	for {
		c.mu.Lock()
		e, found := c.entries[hexDigest]
		if !found {
			e = &cacheEntry{ready: make(chan struct{}), users: map[string]struct{}{}}
			c.entries[hexDigest] = e
		}
		e.users[tenant] = struct{}{}
		c.mu.Unlock()
		if !found {
			c.fill(ctx, hexDigest, e, load)
		}
		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if e.err == nil {
			return e.m, nil
		}
		if !found {
			return nil, e.err
		}
		// Another caller's load failed: its context, or its tenant's
		// bytes (a corrupt object), which are none of this caller's
		// business, error message included. The failed entry is gone:
		// load again, from this caller's own bytes.
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// fill loads and compiles an entry's module and publishes the result.
func (c *moduleCache) fill(ctx context.Context, hexDigest string, e *cacheEntry, load func(context.Context) ([]byte, error)) {
	b, err := load(ctx)
	var m *wasmhost.Module
	if err == nil {
		c.compiles.Add(1)
		m, err = c.rt.Compile(ctx, b)
	}
	if err == nil && m.Digest() != hexDigest {
		// load verifies the bytes; this guards the cache's key itself.
		_ = m.Close(ctx)
		m, err = nil, fmt.Errorf("registry: compiled module has digest sha256:%s, want sha256:%s", m.Digest(), hexDigest)
	}
	c.mu.Lock()
	e.m, e.err = m, err
	if err != nil && c.entries[hexDigest] == e {
		delete(c.entries, hexDigest)
	}
	c.mu.Unlock()
	close(e.ready)
}

// peek returns the digest's compiled module if it is ready.
func (c *moduleCache) peek(hexDigest string) (*wasmhost.Module, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[hexDigest]
	if e == nil {
		return nil, false
	}
	select {
	case <-e.ready:
		if e.err == nil {
			return e.m, true
		}
	default:
	}
	return nil, false
}

// add records that tenant uploaded the digest, compiled as m. fromCache
// says m came from peek. If another caller cached the digest meanwhile,
// that module stays and m is closed.
func (c *moduleCache) add(hexDigest, tenant string, m *wasmhost.Module, fromCache bool) {
	c.mu.Lock()
	e := c.entries[hexDigest]
	if e == nil && fromCache {
		// Released (and closed) since peek: cache nothing; the next
		// load compiles afresh.
		c.mu.Unlock()
		return
	}
	if e == nil {
		e = &cacheEntry{ready: make(chan struct{}), m: m, users: map[string]struct{}{}}
		close(e.ready)
		c.entries[hexDigest] = e
	}
	e.users[tenant] = struct{}{}
	cached := e.m == m
	c.mu.Unlock()
	if !fromCache && !cached {
		_ = m.Close(context.Background())
	}
}

// release records that tenant has no version with the digest any more;
// the module is closed when no tenant that used it has one. A load of the
// digest still in flight keeps its module (its caller is about to use
// it); the cache forgets it.
func (c *moduleCache) release(ctx context.Context, hexDigest, tenant string) {
	c.mu.Lock()
	e := c.entries[hexDigest]
	if e == nil {
		c.mu.Unlock()
		return
	}
	delete(e.users, tenant)
	if len(e.users) > 0 {
		c.mu.Unlock()
		return
	}
	delete(c.entries, hexDigest)
	var m *wasmhost.Module
	select {
	case <-e.ready:
		m = e.m
	default:
	}
	c.mu.Unlock()
	if m != nil {
		_ = m.Close(ctx)
	}
}

// close closes every cached module.
func (c *moduleCache) close(ctx context.Context) error {
	c.mu.Lock()
	entries := c.entries
	c.entries = map[string]*cacheEntry{}
	c.mu.Unlock()
	var errs []error
	for _, e := range entries {
		select {
		case <-e.ready:
			if e.m != nil {
				errs = append(errs, e.m.Close(ctx))
			}
		default:
		}
	}
	return errors.Join(errs...)
}

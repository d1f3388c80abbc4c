package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/checkpoint"
	"github.com/weirstream/weir/platform/meta"
	"github.com/weirstream/weir/wasmhost"
)

// Registry keeps the tenants' modules. It is safe for concurrent use:
// writes (Upload, Delete*) are serialised per tenant, reads take no lock
// (each reads one consistent Pebble view, or tolerates a concurrent delete
// by reporting ErrNotFound).
type Registry struct {
	store   *meta.Store
	objects checkpoint.Storage
	rt      *wasmhost.Runtime
	now     func() time.Time
	log     *slog.Logger
	cache   *moduleCache

	locksMu sync.Mutex
	locks   map[string]*sync.Mutex // per tenant; entries are never removed (one small mutex per tenant ever seen)

	// beforeCommit, when set (tests only), runs just before an upload's
	// metadata commit; its error fails the upload there.
	beforeCommit func() error
}

// Limits are the tenant's quotas an upload is checked against. A zero
// field means no limit (the platform passes the effective quotas, with its
// defaults applied).
type Limits struct {
	// MaxModules bounds the number of module versions of the tenant (all
	// names together).
	MaxModules int
	// MaxBytes bounds the size of one module.
	MaxBytes int64
}

// New returns a registry keeping records in store and module bytes in
// objects (the checkpoint storage: a local directory or S3), compiling
// with rt. now stamps CreatedAt (nil: time.Now); logger receives uploads,
// deletions and cleanup failures (nil: discard).
func New(store *meta.Store, objects checkpoint.Storage, rt *wasmhost.Runtime, now func() time.Time, logger *slog.Logger) *Registry {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Registry{
		store:   store,
		objects: objects,
		rt:      rt,
		now:     now,
		log:     logger,
		cache:   newModuleCache(rt),
		locks:   map[string]*sync.Mutex{},
	}
}

// Close releases the compiled modules the registry caches. Call it after
// the jobs that use them have stopped; it does not close the store, the
// storage or the runtime, which the caller owns.
func (r *Registry) Close(ctx context.Context) error { return r.cache.close(ctx) }

// lock serialises the writes of one tenant and returns the unlock.
func (r *Registry) lock(tenant string) func() {
	r.locksMu.Lock()
	mu := r.locks[tenant]
	if mu == nil {
		mu = &sync.Mutex{}
		r.locks[tenant] = mu
	}
	r.locksMu.Unlock()
	mu.Lock()
	return mu.Unlock
}

// Upload validates wasm and stores it as the next version of name for
// tenant. In order, it checks:
//
//  1. the name (ValidateName: ErrInvalidName);
//  2. the size against lim.MaxBytes (*LimitError QuotaModuleBytes);
//  3. whether these bytes already are a version of name: then it returns
//     that version with created == false (an idempotent retry; no quota is
//     charged);
//  4. the version count against lim.MaxModules (*LimitError QuotaModules);
//  5. that wasm is a valid Weir module (a *wasmhost.ModuleError, wrapped:
//     use errors.As);
//
// then stores the bytes (reusing the tenant's object when another version
// has the same digest) and commits the version record, the name's counter
// and the digest index in one metadata commit. Nothing is half-created: a
// failure before the commit leaves no record, and removes the object again
// unless another version references it.
func (r *Registry) Upload(ctx context.Context, tenant, name string, wasm []byte, lim Limits) (v Version, created bool, err error) {
	if err := checkTenant(tenant); err != nil {
		return Version{}, false, err
	}
	if err := ValidateName(name); err != nil {
		return Version{}, false, err
	}
	size := int64(len(wasm))
	if lim.MaxBytes > 0 && size > lim.MaxBytes {
		return Version{}, false, &LimitError{Quota: QuotaModuleBytes, Limit: lim.MaxBytes, Requested: size}
	}
	start := r.now()
	sum := sha256.Sum256(wasm)
	hexDigest := hex.EncodeToString(sum[:])

	unlock := r.lock(tenant)
	defer unlock()

	same, err := r.digestRefs(tenant, hexDigest, name)
	if err != nil {
		return Version{}, false, err
	}
	if len(same) > 0 {
		v, err := r.mustVersion(tenant, same[0].name, same[0].version)
		return v, false, err
	}
	if lim.MaxModules > 0 {
		n, err := r.count(tenant)
		if err != nil {
			return Version{}, false, err
		}
		if n >= lim.MaxModules {
			return Version{}, false, &LimitError{Quota: QuotaModules, Limit: int64(lim.MaxModules), Used: int64(n), Requested: 1}
		}
	}

	// Compile before storing anything: an invalid module must cost no
	// storage and leave no trace. Bytes compiled before (by any tenant)
	// are valid, and the cached module is reused.
	m, fromCache := r.cache.peek(hexDigest)
	if m == nil {
		m, err = r.rt.Compile(ctx, wasm)
		if err != nil {
			var me *wasmhost.ModuleError
			if errors.As(err, &me) {
				return Version{}, false, fmt.Errorf("module %s: %w", name, err)
			}
			return Version{}, false, fmt.Errorf("registry: tenant %s: compiling module %s: %w", tenant, name, err)
		}
	}
	keep := false
	defer func() {
		if !keep && !fromCache {
			_ = m.Close(ctx)
		}
	}()

	objPrefix, _ := ObjectsPrefix(tenant) // tenant was checked
	obj := objectName(objPrefix, hexDigest)
	shared, err := r.digestRefs(tenant, hexDigest, "")
	if err != nil {
		return Version{}, false, err
	}
	wrote := false
	if len(shared) == 0 {
		// No version references the digest, so an object there is a
		// leftover of a crash between Put and commit: overwrite it.
		if _, err := r.objects.Put(ctx, obj, bytes.NewReader(wasm)); err != nil {
			return Version{}, false, fmt.Errorf("registry: tenant %s: storing module %s: %w", tenant, name, err)
		}
		wrote = true
	}
	fail := func(err error) (Version, bool, error) {
		if wrote {
			// No version references the object (we hold the tenant's
			// lock and found none): remove it again.
			if derr := r.objects.Delete(context.WithoutCancel(ctx), obj); derr != nil {
				r.log.Error("registry: removing the object of a failed upload", "tenant", tenant, "module", name, "object", obj, "err", derr)
			}
		}
		return Version{}, false, err
	}

	last, err := r.lastNumber(tenant, name)
	if err != nil {
		return fail(err)
	}
	if last >= maxVersion {
		return fail(fmt.Errorf("registry: tenant %s: module %s has used every version number up to %d", tenant, name, maxVersion))
	}
	v = Version{
		Name:       name,
		Version:    last + 1,
		Digest:     digestPrefix + hexDigest,
		Size:       size,
		ABIVersion: abi.Version,
		Operators:  operators(m.Operators()),
		// UTC strips the monotonic reading: the record round-trips.
		CreatedAt: r.now().UTC(),
	}
	rec, err := json.Marshal(v)
	if err != nil {
		return fail(fmt.Errorf("registry: encoding module %s version %d: %w", name, v.Version, err))
	}
	if r.beforeCommit != nil {
		if err := r.beforeCommit(); err != nil {
			return fail(err)
		}
	}
	puts := map[string][]byte{
		versionKey(tenant, name, v.Version):           rec,
		counterKey(tenant, name):                      []byte(strconv.Itoa(v.Version)),
		digestKey(tenant, hexDigest, name, v.Version): {},
	}
	if err := r.store.Commit(puts, nil); err != nil {
		return fail(fmt.Errorf("registry: tenant %s: recording module %s version %d: %w", tenant, name, v.Version, err))
	}
	keep = true
	r.cache.add(hexDigest, tenant, m, fromCache)
	r.log.Info("module uploaded", "tenant", tenant, "module", name, "version", v.Version, "digest", v.Digest,
		"size", size, "shared_object", !wrote, "took", r.now().Sub(start))
	return v, true, nil
}

func operators(ops []abi.OperatorInfo) []Operator {
	out := make([]Operator, len(ops))
	for i, op := range ops {
		out[i] = Operator{Name: op.Name, Keyed: op.Keyed()}
	}
	return out
}

// checkTenant rejects tenant ids that could not be a key or path element.
// Tenant ids come from the platform (an API key's tenant), so a bad one is
// a caller's bug, not a lookup miss.
func checkTenant(tenant string) error {
	if err := checkpoint.ValidateID("tenant", tenant); err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	return nil
}

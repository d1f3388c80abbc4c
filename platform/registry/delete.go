package registry

import (
	"context"
	"fmt"
	"strings"
)

// Delete removes one version of the tenant's module name (version as in
// Get: a number, "latest" or a digest). It refuses with an *InUseError
// when inUse reports the version's digest ("sha256:<hex>") in use; nil
// means nothing is in use. inUse runs under the tenant's write lock: it
// may read the registry but must not write to it.
//
// The version's number is never given again. The bytes are deleted from
// storage when no other version of the tenant has the same digest.
func (r *Registry) Delete(ctx context.Context, tenant, name, version string, inUse func(digest string) bool) error {
	if err := checkTenant(tenant); err != nil {
		return err
	}
	unlock := r.lock(tenant)
	defer unlock()
	v, err := r.Get(tenant, name, version)
	if err != nil {
		return err
	}
	if inUse != nil && inUse(v.Digest) {
		return &InUseError{Name: v.Name, Version: v.Version, Digest: v.Digest}
	}
	hexDigest := strings.TrimPrefix(v.Digest, digestPrefix)
	dels := []string{versionKey(tenant, name, v.Version), digestKey(tenant, hexDigest, name, v.Version)}
	if err := r.store.Commit(nil, dels); err != nil {
		return fmt.Errorf("registry: tenant %s: deleting module %s version %d: %w", tenant, name, v.Version, err)
	}
	r.log.Info("module version deleted", "tenant", tenant, "module", name, "version", v.Version, "digest", v.Digest)
	r.dropUnreferenced(ctx, tenant, []string{hexDigest})
	return nil
}

// DeleteName removes every version of the tenant's module name, or none:
// it refuses with an *InUseError (naming the first version in use) when
// inUse reports any version's digest in use. inUse is as for Delete. The
// name's numbering survives: a later upload continues after the highest
// number it ever had.
func (r *Registry) DeleteName(ctx context.Context, tenant, name string, inUse func(digest string) bool) error {
	if err := checkTenant(tenant); err != nil {
		return err
	}
	if err := ValidateName(name); err != nil {
		return err
	}
	unlock := r.lock(tenant)
	defer unlock()
	vs, err := r.versionsOf(tenant, name)
	if err != nil {
		return err
	}
	if len(vs) == 0 {
		return fmt.Errorf("module %s: %w", name, ErrNotFound)
	}
	var dels, digests []string
	for _, v := range vs {
		if inUse != nil && inUse(v.Digest) {
			return &InUseError{Name: v.Name, Version: v.Version, Digest: v.Digest}
		}
		hexDigest := strings.TrimPrefix(v.Digest, digestPrefix)
		dels = append(dels, versionKey(tenant, name, v.Version), digestKey(tenant, hexDigest, name, v.Version))
		digests = append(digests, hexDigest)
	}
	if err := r.store.Commit(nil, dels); err != nil {
		return fmt.Errorf("registry: tenant %s: deleting module %s: %w", tenant, name, err)
	}
	r.log.Info("module deleted", "tenant", tenant, "module", name, "versions", len(vs))
	r.dropUnreferenced(ctx, tenant, digests)
	return nil
}

// DeleteTenant removes every record and object of the tenant's modules,
// including the names' counters. It checks nothing: the platform refuses
// to delete a tenant with running jobs before calling it. Running it again
// after a failure finishes the job.
func (r *Registry) DeleteTenant(ctx context.Context, tenant string) error {
	if err := checkTenant(tenant); err != nil {
		return err
	}
	unlock := r.lock(tenant)
	defer unlock()
	prefix := tenantKeys(tenant)
	var dels, digests []string
	err := r.store.Scan(prefix, func(key string, _ []byte) error {
		dels = append(dels, key)
		if rest, ok := strings.CutPrefix(key, prefix+digestsFolder); ok {
			if hexDigest, _, ok := strings.Cut(rest, "/"); ok {
				digests = append(digests, hexDigest)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("registry: tenant %s: listing module records: %w", tenant, err)
	}
	// Records first: a crash between the two leaves unreferenced objects
	// (harmless, removed by the next run), never records without bytes.
	if len(dels) > 0 {
		if err := r.store.Commit(nil, dels); err != nil {
			return fmt.Errorf("registry: tenant %s: deleting module records: %w", tenant, err)
		}
	}
	objPrefix, _ := ObjectsPrefix(tenant)
	if err := r.objects.DeletePrefix(ctx, objPrefix); err != nil {
		return fmt.Errorf("registry: tenant %s: deleting module objects under %s: %w", tenant, objPrefix, err)
	}
	for _, d := range digests {
		r.cache.release(ctx, d, tenant)
	}
	r.log.Info("tenant's modules deleted", "tenant", tenant, "records", len(dels))
	return nil
}

// dropUnreferenced deletes the tenant's objects of the digests no version
// references any more, after their records were committed away. A failure
// leaves an unreferenced object behind, which is logged, not returned: the
// deletion the caller asked for has happened, and a later upload of the
// same bytes overwrites the object.
func (r *Registry) dropUnreferenced(ctx context.Context, tenant string, digests []string) {
	objPrefix, _ := ObjectsPrefix(tenant)
	seen := map[string]bool{}
	for _, d := range digests {
		if seen[d] {
			continue
		}
		seen[d] = true
		refs, err := r.digestRefs(tenant, d, "")
		if err != nil {
			r.log.Error("registry: checking references of a module object", "tenant", tenant, "digest", digestPrefix+d, "err", err)
			continue
		}
		if len(refs) > 0 {
			continue
		}
		obj := objectName(objPrefix, d)
		if err := r.objects.Delete(ctx, obj); err != nil {
			r.log.Error("registry: deleting an unreferenced module object", "tenant", tenant, "object", obj, "err", err)
		}
		r.cache.release(ctx, d, tenant)
	}
}

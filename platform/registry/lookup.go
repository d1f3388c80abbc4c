package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/weirstream/weir/checkpoint"
)

// versionRef is a (name, version) pair found in the digest index.
type versionRef struct {
	name    string
	version int
}

// Names returns the tenant's module names that have at least one version,
// sorted, each with its latest version and its number of versions.
func (r *Registry) Names(tenant string) ([]NameSummary, error) {
	if err := checkTenant(tenant); err != nil {
		return nil, err
	}
	prefix := tenantKeys(tenant) + versionsFolder
	var out []NameSummary
	var cur string
	var count int
	var last []byte // record of cur's highest version so far
	flush := func() error {
		if count == 0 {
			return nil
		}
		v, err := decodeVersion(prefix+cur, last)
		if err != nil {
			return err
		}
		out = append(out, NameSummary{Name: cur, Latest: v, Versions: count})
		return nil
	}
	err := r.store.Scan(prefix, func(key string, value []byte) error {
		name, _, err := splitNameVersion(key[len(prefix):])
		if err != nil {
			return err
		}
		// A name's keys are contiguous ("a/..." sorts as a block), and in
		// version order within it.
		if name != cur {
			if err := flush(); err != nil {
				return err
			}
			cur, count = name, 0
		}
		count++
		last = append(last[:0], value...)
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return nil, fmt.Errorf("registry: tenant %s: listing modules: %w", tenant, err)
	}
	// Key order is not name order ('/' sorts after '-' and '.').
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Versions returns the versions of the tenant's module name, oldest
// first; ErrNotFound when it has none.
func (r *Registry) Versions(tenant, name string) ([]Version, error) {
	if err := checkTenant(tenant); err != nil {
		return nil, err
	}
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	vs, err := r.versionsOf(tenant, name)
	if err != nil {
		return nil, err
	}
	if len(vs) == 0 {
		return nil, fmt.Errorf("module %s: %w", name, ErrNotFound)
	}
	return vs, nil
}

// Resolve finds the version a reference names in the tenant:
//
//	name, name@latest    the name's highest version
//	name@3               version 3 of name
//	name@sha256:<hex>    the version of name with these bytes
//	sha256:<hex>         a version with these bytes under any name: the
//	                     lowest version number (then the first name)
//
// A malformed reference is ErrBadRef; nothing found is ErrNotFound, both
// wrapped with the reference.
func (r *Registry) Resolve(tenant, ref string) (Version, error) {
	if err := checkTenant(tenant); err != nil {
		return Version{}, err
	}
	sel, err := parseRef(ref)
	if err != nil {
		return Version{}, err
	}
	v, err := r.lookup(tenant, sel)
	if err != nil {
		return Version{}, fmt.Errorf("module reference %q: %w", ref, err)
	}
	return v, nil
}

// Get finds a version of the tenant's module name as the REST path names
// it: version is a number, "latest" or a digest "sha256:<hex>". Errors as
// Resolve; an invalid name is ErrInvalidName.
func (r *Registry) Get(tenant, name, version string) (Version, error) {
	if err := checkTenant(tenant); err != nil {
		return Version{}, err
	}
	if err := ValidateName(name); err != nil {
		return Version{}, err
	}
	sel, err := parseVersion(version)
	if err != nil {
		return Version{}, fmt.Errorf("module %s: %w", name, err)
	}
	sel.name = name
	return r.lookup(tenant, sel)
}

// Count returns the number of module versions of the tenant (its usage of
// the modules quota). A metadata read failure is logged and counts 0;
// Upload enforces the quota with its own count, which fails instead.
func (r *Registry) Count(tenant string) int {
	if err := checkTenant(tenant); err != nil {
		r.log.Error("registry: counting modules", "err", err)
		return 0
	}
	n, err := r.count(tenant)
	if err != nil {
		r.log.Error("registry: counting modules", "tenant", tenant, "err", err)
		return 0
	}
	return n
}

// Bytes reads the bytes of a version of the tenant from storage and checks
// them against the version's size and digest: a mismatch is ErrCorrupt,
// naming the object. A missing object is ErrNotFound (it was deleted
// since v was looked up).
func (r *Registry) Bytes(ctx context.Context, tenant string, v Version) ([]byte, error) {
	obj, err := ObjectName(tenant, v.Digest)
	if err != nil {
		return nil, fmt.Errorf("registry: module %s: %w", v.Ref(), err)
	}
	rc, err := r.objects.Open(ctx, obj)
	if errors.Is(err, checkpoint.ErrNotFound) {
		return nil, fmt.Errorf("module %s: object %s: %w: %w", v.Ref(), obj, ErrNotFound, err)
	}
	if err != nil {
		return nil, fmt.Errorf("registry: module %s: reading object %s: %w", v.Ref(), obj, err)
	}
	defer rc.Close()
	if v.Size < 0 || v.Size > maxModuleSize {
		return nil, fmt.Errorf("registry: module %s: recorded size %d is out of range", v.Ref(), v.Size)
	}
	b := make([]byte, v.Size)
	n, err := io.ReadFull(rc, b)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return nil, fmt.Errorf("module %s: object %s is %d bytes, recorded %d: %w", v.Ref(), obj, n, v.Size, ErrCorrupt)
	case err != nil:
		return nil, fmt.Errorf("registry: module %s: reading object %s: %w", v.Ref(), obj, err)
	}
	var one [1]byte
	if k, _ := io.ReadFull(rc, one[:]); k > 0 {
		return nil, fmt.Errorf("module %s: object %s is longer than the recorded %d bytes: %w", v.Ref(), obj, v.Size, ErrCorrupt)
	}
	sum := sha256.Sum256(b)
	if got := digestPrefix + hex.EncodeToString(sum[:]); got != v.Digest {
		return nil, fmt.Errorf("module %s: object %s has digest %s, recorded %s: %w", v.Ref(), obj, got, v.Digest, ErrCorrupt)
	}
	return b, nil
}

// maxModuleSize bounds what Bytes allocates for a record, whatever the
// record says (a damaged record must not allocate terabytes).
const maxModuleSize = 1 << 30

// lookup finds the version sel selects in the tenant.
func (r *Registry) lookup(tenant string, sel selector) (Version, error) {
	switch {
	case sel.digest != "":
		refs, err := r.digestRefs(tenant, sel.digest, sel.name)
		if err != nil {
			return Version{}, err
		}
		if len(refs) == 0 {
			return Version{}, fmt.Errorf("%s: %w", sel.describe(), ErrNotFound)
		}
		best := refs[0]
		for _, ref := range refs[1:] {
			if ref.version < best.version || ref.version == best.version && ref.name < best.name {
				best = ref
			}
		}
		v, ok, err := r.version(tenant, best.name, best.version)
		if err == nil && !ok {
			// Deleted between the two reads.
			err = fmt.Errorf("%s: %w", sel.describe(), ErrNotFound)
		}
		return v, err
	case sel.number > 0:
		v, ok, err := r.version(tenant, sel.name, sel.number)
		if err == nil && !ok {
			err = fmt.Errorf("%s: %w", sel.describe(), ErrNotFound)
		}
		return v, err
	default:
		vs, err := r.versionsOf(tenant, sel.name)
		if err != nil {
			return Version{}, err
		}
		if len(vs) == 0 {
			return Version{}, fmt.Errorf("%s: %w", sel.describe(), ErrNotFound)
		}
		return vs[len(vs)-1], nil
	}
}

// versionsOf returns the versions of name in version order (none: empty).
func (r *Registry) versionsOf(tenant, name string) ([]Version, error) {
	var out []Version
	err := r.store.Scan(versionsPrefix(tenant, name), func(key string, value []byte) error {
		v, err := decodeVersion(key, value)
		if err != nil {
			return err
		}
		out = append(out, v)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("registry: tenant %s: reading module %s: %w", tenant, name, err)
	}
	return out, nil
}

// version reads one version record.
func (r *Registry) version(tenant, name string, n int) (Version, bool, error) {
	key := versionKey(tenant, name, n)
	b, ok, err := r.store.Get(key)
	if err != nil || !ok {
		return Version{}, false, err
	}
	v, err := decodeVersion(key, b)
	return v, err == nil, err
}

// mustVersion reads a version the digest index points at.
func (r *Registry) mustVersion(tenant, name string, n int) (Version, error) {
	v, ok, err := r.version(tenant, name, n)
	if err == nil && !ok {
		err = fmt.Errorf("registry: tenant %s: the digest index names module %s version %d, which has no record", tenant, name, n)
	}
	return v, err
}

// digestRefs returns the versions of the tenant with the digest, of name
// only when name is not empty, in key order (name, then version).
func (r *Registry) digestRefs(tenant, hexDigest, name string) ([]versionRef, error) {
	prefix := digestPrefixKey(tenant, hexDigest)
	scan := prefix
	if name != "" {
		scan += name + "/"
	}
	var out []versionRef
	err := r.store.Scan(scan, func(key string, _ []byte) error {
		n, v, err := splitNameVersion(key[len(prefix):])
		if err != nil {
			return err
		}
		out = append(out, versionRef{name: n, version: v})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("registry: tenant %s: reading the digest index of sha256:%s: %w", tenant, hexDigest, err)
	}
	return out, nil
}

// count returns the number of versions of the tenant.
func (r *Registry) count(tenant string) (int, error) {
	n := 0
	err := r.store.Scan(tenantKeys(tenant)+versionsFolder, func(string, []byte) error {
		n++
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("registry: tenant %s: counting modules: %w", tenant, err)
	}
	return n, nil
}

// lastNumber is the highest version number name was ever given (0: none).
func (r *Registry) lastNumber(tenant, name string) (int, error) {
	key := counterKey(tenant, name)
	b, ok, err := r.store.Get(key)
	if err != nil {
		return 0, fmt.Errorf("registry: tenant %s: reading the version counter of %s: %w", tenant, name, err)
	}
	if !ok {
		return 0, nil
	}
	n, err := strconv.Atoi(string(b))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("registry: metadata key %s holds %q, not a version number", key, b)
	}
	return n, nil
}

func decodeVersion(key string, b []byte) (Version, error) {
	var v Version
	if err := json.Unmarshal(b, &v); err != nil {
		return Version{}, fmt.Errorf("registry: metadata key %s: %w", key, err)
	}
	if v.Name == "" || v.Version <= 0 || !strings.HasPrefix(v.Digest, digestPrefix) {
		return Version{}, fmt.Errorf("registry: metadata key %s: incomplete version record", key)
	}
	return v, nil
}

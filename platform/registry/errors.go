package registry

import (
	"errors"
	"fmt"
)

// Errors the platform maps to problems. They are wrapped with what was
// looked up or what is wrong; test them with errors.Is.
var (
	// ErrNotFound: no such module, version or digest in the tenant.
	// Another tenant's modules are ErrNotFound too, exactly as if they did
	// not exist.
	ErrNotFound = errors.New("module not found")
	// ErrBadRef: a module reference ("name@3", "sha256:<hex>") or a version
	// ("3", "latest", "sha256:<hex>") is malformed.
	ErrBadRef = errors.New("malformed module reference")
	// ErrInvalidName: a module name breaks the naming rule (ValidateName).
	ErrInvalidName = errors.New("invalid module name")
	// ErrCorrupt: a module's stored bytes no longer have the size or the
	// sha256 recorded when it was uploaded.
	ErrCorrupt = errors.New("module object is corrupt")
)

// Quota names of LimitError, the same names the platform's Quotas use.
const (
	// QuotaModules bounds the number of module versions of a tenant.
	QuotaModules = "modules"
	// QuotaModuleBytes bounds the size of one module.
	QuotaModuleBytes = "module_bytes"
)

// LimitError says an upload would exceed one of the tenant's limits. The
// platform maps it to its quota problem (409/413 with `quota`, `limit` and
// `used`), as it maps the tenants package's quota errors.
type LimitError struct {
	// Quota is QuotaModules or QuotaModuleBytes.
	Quota string
	// Limit is the quota's value (versions, or bytes).
	Limit int64
	// Used is what the tenant uses now: its number of versions for
	// QuotaModules; 0 for QuotaModuleBytes, which bounds one module, not a
	// total.
	Used int64
	// Requested is what the upload asked for: 1 more version, or the
	// module's size in bytes.
	Requested int64
}

func (e *LimitError) Error() string {
	if e.Quota == QuotaModuleBytes {
		return fmt.Sprintf("the module is %d bytes, more than the %s quota of %d", e.Requested, e.Quota, e.Limit)
	}
	return fmt.Sprintf("%s quota exceeded: %d of %d module versions used, %d more requested", e.Quota, e.Used, e.Limit, e.Requested)
}

// InUseError refuses to delete a module version a job uses.
type InUseError struct {
	Name    string
	Version int
	Digest  string // sha256:<hex>
}

func (e *InUseError) Error() string {
	return fmt.Sprintf("module %s version %d (%s) is in use by a job", e.Name, e.Version, e.Digest)
}

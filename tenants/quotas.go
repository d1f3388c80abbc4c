package tenants

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Quota names: the JSON names of Quotas and Usage fields, used by
// QuotaError, FieldError and Check so that an error names exactly what the
// API shows.
const (
	QuotaSlots               = "slots"
	QuotaMemoryPages         = "memory_pages"
	QuotaCallTimeout         = "call_timeout"
	QuotaModules             = "modules"
	QuotaModuleBytes         = "module_bytes"
	QuotaStateBytes          = "state_bytes"
	QuotaRetainedCheckpoints = "retained_checkpoints"
	QuotaSavepoints          = "savepoints"
	QuotaRequestsPerSecond   = "requests_per_second"
	QuotaRequestBurst        = "request_burst"
)

// Quotas are a tenant's limits. A zero field means "the default" (see
// DefaultQuotas), so a request only names what it changes and records written
// before a quota existed pick up its default.
type Quotas struct {
	// Slots is how many task slots the tenant's running jobs may hold.
	Slots int `json:"slots"`
	// MemoryPages caps each Wasm instance's linear memory, in 64 KiB pages.
	MemoryPages uint32 `json:"memory_pages"`
	// CallTimeout bounds one guest call.
	CallTimeout Duration `json:"call_timeout"`
	// Modules is how many module versions the tenant may keep.
	Modules int `json:"modules"`
	// ModuleBytes is the size of the largest module the tenant may upload.
	ModuleBytes int64 `json:"module_bytes"`
	// StateBytes caps a job's full state in its newest checkpoint.
	StateBytes int64 `json:"state_bytes"`
	// RetainedCheckpoints is how many completed checkpoints a job keeps.
	RetainedCheckpoints int `json:"retained_checkpoints"`
	// Savepoints is how many savepoints the tenant may keep.
	Savepoints int `json:"savepoints"`
	// RequestsPerSecond is the sustained API request rate.
	RequestsPerSecond float64 `json:"requests_per_second"`
	// RequestBurst is how many requests may arrive at once above that rate.
	RequestBurst int `json:"request_burst"`
}

// Bounds of Validate. The memory ceiling matches wasmhost's: 65536 pages
// would not fit a uint32 byte count. The rate bounds keep the rate limiter's
// arithmetic (burst × interval, in nanoseconds) far from overflow.
const (
	maxMemoryPages       = 65535
	maxCallTimeout       = 10 * time.Minute
	minRequestsPerSecond = 0.001
	maxRequestBurst      = 1_000_000
)

// DefaultQuotas returns the quotas of a tenant created without any.
func DefaultQuotas() Quotas {
	return Quotas{
		Slots:               8,
		MemoryPages:         1024,
		CallTimeout:         Duration(5 * time.Second),
		Modules:             100,
		ModuleBytes:         64 << 20,
		StateBytes:          1 << 30,
		RetainedCheckpoints: 5,
		Savepoints:          20,
		RequestsPerSecond:   100,
		RequestBurst:        200,
	}
}

// WithDefaults returns q with every zero field set to its default.
func (q Quotas) WithDefaults() Quotas {
	d := DefaultQuotas()
	orDefault(&q.Slots, d.Slots)
	orDefault(&q.MemoryPages, d.MemoryPages)
	orDefault(&q.CallTimeout, d.CallTimeout)
	orDefault(&q.Modules, d.Modules)
	orDefault(&q.ModuleBytes, d.ModuleBytes)
	orDefault(&q.StateBytes, d.StateBytes)
	orDefault(&q.RetainedCheckpoints, d.RetainedCheckpoints)
	orDefault(&q.Savepoints, d.Savepoints)
	orDefault(&q.RequestsPerSecond, d.RequestsPerSecond)
	orDefault(&q.RequestBurst, d.RequestBurst)
	return q
}

// orDefault sets a zero *v to d.
func orDefault[T comparable](v *T, d T) {
	var zero T
	if *v == zero {
		*v = d
	}
}

// Validate checks every field; zero is valid (it means the default). The
// error joins one *FieldError per bad field, in field order (errors.As finds
// the first; Unwrap() []error gives all), and satisfies
// errors.Is(err, ErrInvalid).
func (q Quotas) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
	}
	nonNegative := func(field string, v int64) {
		if v < 0 {
			bad(field, "%d is negative", v)
		}
	}
	nonNegative(QuotaSlots, int64(q.Slots))
	if q.MemoryPages > maxMemoryPages {
		bad(QuotaMemoryPages, "%d is more than %d (64 KiB pages, 4 GiB)", q.MemoryPages, maxMemoryPages)
	}
	switch d := time.Duration(q.CallTimeout); {
	case d < 0:
		bad(QuotaCallTimeout, "%s is negative", d)
	case d > maxCallTimeout:
		bad(QuotaCallTimeout, "%s is more than %s", d, maxCallTimeout)
	}
	nonNegative(QuotaModules, int64(q.Modules))
	nonNegative(QuotaModuleBytes, q.ModuleBytes)
	nonNegative(QuotaStateBytes, q.StateBytes)
	nonNegative(QuotaRetainedCheckpoints, int64(q.RetainedCheckpoints))
	nonNegative(QuotaSavepoints, int64(q.Savepoints))
	switch r := q.RequestsPerSecond; {
	case math.IsNaN(r) || math.IsInf(r, 0):
		bad(QuotaRequestsPerSecond, "%v is not a number", r)
	case r < 0:
		bad(QuotaRequestsPerSecond, "%v is negative", r)
	case r > 0 && r < minRequestsPerSecond:
		bad(QuotaRequestsPerSecond, "%v is less than %v", r, minRequestsPerSecond)
	}
	switch b := q.RequestBurst; {
	case b < 0:
		bad(QuotaRequestBurst, "%d is negative", b)
	case b > maxRequestBurst:
		bad(QuotaRequestBurst, "%d is more than %d", b, maxRequestBurst)
	}
	return errors.Join(errs...)
}

// FieldError is one invalid field of a request, named by its JSON name (the
// REST layer reports it as {"field", "problem"}).
type FieldError struct {
	Field   string
	Problem string
}

// Error reads like `quota memory_pages: 70000 is more than 65535 ...`.
func (e *FieldError) Error() string { return "quota " + e.Field + ": " + e.Problem }

// Is makes every FieldError an ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// Usage is what a tenant currently uses, with the names of the quotas it is
// measured against. The platform fills it; this package only defines it.
type Usage struct {
	// Slots held by the tenant's running jobs.
	Slots int `json:"slots"`
	// Jobs running.
	Jobs int `json:"jobs"`
	// Modules is the count of module versions.
	Modules int `json:"modules"`
	// Savepoints kept.
	Savepoints int `json:"savepoints"`
	// StateBytes of the largest job's newest checkpoint.
	StateBytes int64 `json:"state_bytes"`
}

// QuotaError says that a request would exceed a quota; the REST layer's
// problem carries its quota, limit and used.
type QuotaError struct {
	// Quota is the quota's JSON name, e.g. "modules".
	Quota string
	// Limit is the quota's value.
	Limit int64
	// Used is what is in use without the request.
	Used int64
	// Requested is what the request would add.
	Requested int64
}

// Error reads like `quota "modules" exceeded: 10 of 10 used, 1 more requested`.
func (e *QuotaError) Error() string {
	if e.Quota == QuotaCallTimeout { // a ceiling, in nanoseconds
		return fmt.Sprintf("quota %q exceeded: %v requested, at most %v allowed", e.Quota, time.Duration(e.Requested), time.Duration(e.Limit))
	}
	return fmt.Sprintf("quota %q exceeded: %d of %d used, %d more requested", e.Quota, e.Used, e.Limit, e.Requested)
}

// Check returns a *QuotaError when used+requested exceeds limit, else nil.
// It cannot overflow: the sum is never computed.
func Check(quota string, limit, used, requested int64) error {
	if used > limit || requested > limit-used {
		return &QuotaError{Quota: quota, Limit: limit, Used: used, Requested: requested}
	}
	return nil
}

// Duration is a time.Duration that JSON shows as a Go duration string ("5s",
// "1.5s"). On input it also takes an integer number of nanoseconds, which is
// what a plain time.Duration field would have produced.
type Duration time.Duration

// String is time.Duration's.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return strconv.AppendQuote(nil, time.Duration(d).String()), nil
}

// UnmarshalJSON reads a duration string or integer nanoseconds; null leaves d
// unchanged, as encoding/json does for other types.
func (d *Duration) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return nil
	}
	if len(s) > 0 && s[0] == '"' {
		u, err := strconv.Unquote(s)
		if err != nil {
			return fmt.Errorf("duration %s: %w", s, err)
		}
		v, err := time.ParseDuration(u)
		if err != nil {
			return fmt.Errorf("duration %s: %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("duration %s: want a string such as \"5s\" or integer nanoseconds", s)
	}
	*d = Duration(v)
	return nil
}

package wasmhost

import (
	"errors"
	"fmt"
	"time"
)

// Limits bound what one instance may consume. They are per tenant in the
// platform; the runtime passes them per instance. A zero field means "use the
// default" (see WithDefaults), so a zero Limits is the default limits.
type Limits struct {
	// MemoryPages caps the instance's linear memory, in 64 KiB pages.
	// memory.grow beyond it returns -1 (most languages turn that into an
	// out-of-memory failure). A module whose declared initial memory exceeds
	// it cannot be instantiated. Default 1024 (64 MiB); at most 65535.
	MemoryPages uint32
	// CallTimeout is the deadline of every call into the guest
	// (_initialize, weir_open, weir_process, weir_close, ...). When it
	// passes, wazero closes the instance and the call fails with a
	// *DeadlineError. Default 5s.
	CallTimeout time.Duration
	// MaxOutputBytes caps the bytes a guest may emit while handling one
	// input batch (one Process call). The emit that would exceed it traps
	// with an *OutputLimitError. Default 64 MiB.
	MaxOutputBytes int
	// MaxLogBytesPerSecond rate-limits guest log lines (the log import and
	// captured stdout/stderr), with a burst of one second's worth. Lines over
	// the rate are dropped and counted; the count is reported in a warning
	// line once the rate allows again. Default 64 KiB/s.
	MaxLogBytesPerSecond int
}

// Default limits, as documented on Limits.
const (
	DefaultMemoryPages          = 1024
	DefaultCallTimeout          = 5 * time.Second
	DefaultMaxOutputBytes       = 64 << 20
	DefaultMaxLogBytesPerSecond = 64 << 10

	// maxMemoryPages keeps memory sizes representable in a uint32 (wazero's
	// api.Memory.Size is a uint32, and 65536 pages would wrap to 0).
	maxMemoryPages = 65535
)

// WithDefaults returns l with every zero field replaced by the default.
func (l Limits) WithDefaults() Limits {
	return l.withFallback(Limits{
		MemoryPages:          DefaultMemoryPages,
		CallTimeout:          DefaultCallTimeout,
		MaxOutputBytes:       DefaultMaxOutputBytes,
		MaxLogBytesPerSecond: DefaultMaxLogBytesPerSecond,
	})
}

// withFallback returns l with every zero field taken from d.
func (l Limits) withFallback(d Limits) Limits {
	if l.MemoryPages == 0 {
		l.MemoryPages = d.MemoryPages
	}
	if l.CallTimeout == 0 {
		l.CallTimeout = d.CallTimeout
	}
	if l.MaxOutputBytes == 0 {
		l.MaxOutputBytes = d.MaxOutputBytes
	}
	if l.MaxLogBytesPerSecond == 0 {
		l.MaxLogBytesPerSecond = d.MaxLogBytesPerSecond
	}
	return l
}

// Validate reports the first field of l that is out of range. Zero fields
// are valid (they mean the default).
func (l Limits) Validate() error {
	switch {
	case l.MemoryPages > maxMemoryPages:
		return fmt.Errorf("wasmhost: limits.MemoryPages %d is more than %d", l.MemoryPages, maxMemoryPages)
	case l.CallTimeout < 0:
		return fmt.Errorf("wasmhost: limits.CallTimeout %v is negative", l.CallTimeout)
	case l.MaxOutputBytes < 0:
		return fmt.Errorf("wasmhost: limits.MaxOutputBytes %d is negative", l.MaxOutputBytes)
	case l.MaxLogBytesPerSecond < 0:
		return fmt.Errorf("wasmhost: limits.MaxLogBytesPerSecond %d is negative", l.MaxLogBytesPerSecond)
	}
	return nil
}

// Config configures a Runtime. It is a plain struct (as pebble.Options):
// fill what you need, NewRuntime applies EnsureDefaults and Validate.
type Config struct {
	// CacheDir is the directory of wazero's on-disk compilation cache, so
	// that a restarted worker does not compile the same module again. Empty
	// means an in-memory cache that lives as long as the Runtime.
	CacheDir string
	// MemoryLimitPages is the runtime-wide ceiling of any instance's linear
	// memory (wazero's RuntimeConfig.WithMemoryLimitPages): a module that
	// declares more initial or maximum memory is rejected by Compile.
	// Per-instance limits (Limits.MemoryPages) must not exceed it. Default
	// 65535.
	MemoryLimitPages uint32
	// DefaultLimits fills the zero fields of every InstanceConfig.Limits, and
	// bounds the validation instance Compile runs. Its own zero fields are
	// the package defaults (Limits.WithDefaults).
	DefaultLimits Limits
}

// EnsureDefaults fills the zero fields of c with defaults.
func (c *Config) EnsureDefaults() {
	if c.MemoryLimitPages == 0 {
		c.MemoryLimitPages = maxMemoryPages
	}
	c.DefaultLimits = c.DefaultLimits.WithDefaults()
}

// Validate reports the first field of c that is out of range.
func (c *Config) Validate() error {
	if c.MemoryLimitPages > maxMemoryPages {
		return fmt.Errorf("wasmhost: config.MemoryLimitPages %d is more than %d", c.MemoryLimitPages, maxMemoryPages)
	}
	if err := c.DefaultLimits.Validate(); err != nil {
		return fmt.Errorf("wasmhost: config.DefaultLimits: %w", err)
	}
	if c.MemoryLimitPages != 0 && c.DefaultLimits.MemoryPages > c.MemoryLimitPages {
		return fmt.Errorf("wasmhost: config.DefaultLimits.MemoryPages %d exceeds config.MemoryLimitPages %d",
			c.DefaultLimits.MemoryPages, c.MemoryLimitPages)
	}
	return nil
}

// InstanceConfig configures one instance (Module.Instantiate).
type InstanceConfig struct {
	// Name identifies the instance in errors and logs, e.g.
	// "job-7/window#2". It need not be unique.
	Name string
	// Limits of this instance; zero fields take the Runtime's
	// Config.DefaultLimits.
	Limits Limits
	// State is the keyed state of the operator. Required when the operator
	// the instance opens is flagged KEYED; unused otherwise (state imports of
	// an unkeyed operator return abi.ErrNotKeyed).
	State StateAccess
	// Timers is the operator's timer service and clocks. Required for keyed
	// operators. When nil, an unkeyed operator sees watermark() =
	// abi.MinWatermark and processing_time() = 0; the runtime always
	// supplies it, nil is a convenience for tests and tools.
	Timers Timers
	// Logger receives guest log lines and captured stdout/stderr. Nil
	// discards them.
	Logger Logger
	// Now is the clock of the log rate limiter. Nil means time.Now.
	Now func() time.Time
}

// errNilConfig is returned for missing required collaborators.
var errNilConfig = errors.New("wasmhost: keyed operator needs InstanceConfig.State and InstanceConfig.Timers")

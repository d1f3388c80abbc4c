package state

import (
	"errors"
	"fmt"
	"log/slog"
)

// PebbleOptions configures OpenPebble. It is a plain struct: a zero field
// means "the default", which EnsureDefaults fills in and the field comments
// state. OpenPebble calls EnsureDefaults and Validate on its own copy.
type PebbleOptions struct {
	// CacheBytes bounds the backend's write-back cache of value and map
	// cells, counting keys, values and a fixed per-cell overhead. Cached
	// cells are read and updated without touching Pebble; a changed cell is
	// written to Pebble when it is evicted, before a scan of its state, and
	// by Flush and Close. Default 64 MiB.
	CacheBytes int64

	// BlockCacheBytes is the size of Pebble's block cache (decompressed
	// sstable blocks). Default 64 MiB.
	BlockCacheBytes int64

	// MemTableBytes is the size of one Pebble memtable. Large memtables keep
	// recently written state readable without sstable reads. Default 64 MiB;
	// at most 4 GiB - 1.
	MemTableBytes int64

	// BatchBytes is the size at which pending writes (evicted cells, list
	// appends, timers, deletions), kept in one indexed Pebble batch, are
	// committed. Larger batches amortise the commit; the batch is also the
	// read view, so they cost a little on reads. Default 512 KiB.
	BatchBytes int

	// TimerCacheSize is how many of the earliest timers of each (operator,
	// time domain, key group) are kept in memory; firing or deleting them
	// needs no Pebble read until that many have fired. Default 128.
	TimerCacheSize int

	// EnableWAL turns Pebble's write-ahead log on. Off by default: local
	// state is rebuilt from the last checkpoint after a crash, so the WAL
	// would only cost write bandwidth. Close flushes memtables either way,
	// so a directory that was closed reopens with all of its data.
	EnableWAL bool

	// Logger receives Pebble's log lines (its informational lines at Debug
	// level). Default: discarded.
	Logger *slog.Logger
}

// Defaults of PebbleOptions.
const (
	DefaultPebbleCacheBytes      = 64 << 20
	DefaultPebbleBlockCacheBytes = 64 << 20
	DefaultPebbleMemTableBytes   = 64 << 20
	DefaultPebbleBatchBytes      = 512 << 10
	DefaultPebbleTimerCacheSize  = 128
)

// maxPebbleMemTableBytes is Pebble's limit (memtable offsets are uint32).
const maxPebbleMemTableBytes = 1<<32 - 1

// EnsureDefaults sets every zero field to its default and returns o.
func (o *PebbleOptions) EnsureDefaults() *PebbleOptions {
	if o.CacheBytes == 0 {
		o.CacheBytes = DefaultPebbleCacheBytes
	}
	if o.BlockCacheBytes == 0 {
		o.BlockCacheBytes = DefaultPebbleBlockCacheBytes
	}
	if o.MemTableBytes == 0 {
		o.MemTableBytes = DefaultPebbleMemTableBytes
	}
	if o.BatchBytes == 0 {
		o.BatchBytes = DefaultPebbleBatchBytes
	}
	if o.TimerCacheSize == 0 {
		o.TimerCacheSize = DefaultPebbleTimerCacheSize
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Validate reports every field out of range, naming it. Zero fields are
// valid (they mean the default).
func (o *PebbleOptions) Validate() error {
	var errs []error
	if o.CacheBytes < 0 {
		errs = append(errs, fmt.Errorf("CacheBytes %d is negative", o.CacheBytes))
	}
	if o.BlockCacheBytes < 0 {
		errs = append(errs, fmt.Errorf("BlockCacheBytes %d is negative", o.BlockCacheBytes))
	}
	if o.MemTableBytes < 0 || o.MemTableBytes > maxPebbleMemTableBytes {
		errs = append(errs, fmt.Errorf("MemTableBytes %d not in [0, %d]", o.MemTableBytes, int64(maxPebbleMemTableBytes)))
	}
	if o.BatchBytes < 0 {
		errs = append(errs, fmt.Errorf("BatchBytes %d is negative", o.BatchBytes))
	}
	if o.TimerCacheSize < 0 {
		errs = append(errs, fmt.Errorf("TimerCacheSize %d is negative", o.TimerCacheSize))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("state: invalid PebbleOptions: %w", err)
	}
	return nil
}

// pebbleLogger adapts *slog.Logger to pebble.Logger.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

// Fatalf is called by Pebble on unrecoverable corruption; Pebble expects it
// not to return.
func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error(msg, "component", "pebble", "fatal", true)
	panic("pebble: " + msg)
}

package sdktest

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"

	"github.com/weirstream/weir/abi"
)

// Timers is an in-memory timer service with the method set of
// sdk.NativeTimers (and wasmhost.Timers): a set of (domain, key, timestamp)
// plus the watermark and the processing-time clock, which the test (or the
// Harness) moves.
type Timers struct {
	// Owns, when set, says whether a key belongs to this task; timer calls
	// for other keys fail with abi.ErrKeyNotLocal.
	Owns func(key []byte) bool

	wm      int64
	now     int64
	pending []TimerEntry // sorted by domain, timestamp, key
}

// TimerEntry is a registered timer.
type TimerEntry struct {
	Domain    abi.TimeDomain
	Timestamp int64
	Key       string
}

func (t TimerEntry) String() string { return fmt.Sprintf("%s@%d[%q]", t.Domain, t.Timestamp, t.Key) }

func compareTimer(a TimerEntry, d abi.TimeDomain, ts int64, key []byte) int {
	if c := cmp.Compare(a.Domain, d); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Timestamp, ts); c != 0 {
		return c
	}
	return bytes.Compare([]byte(a.Key), key)
}

// NewTimers returns a timer service with the watermark at abi.MinWatermark
// and the processing-time clock at 0.
func NewTimers() *Timers { return &Timers{wm: abi.MinWatermark} }

func (t *Timers) find(d abi.TimeDomain, key []byte, ts int64) (int, bool) {
	return slices.BinarySearchFunc(t.pending, ts, func(e TimerEntry, ts int64) int { return compareTimer(e, d, ts, key) })
}

// RegisterTimer adds a timer; registering an existing one is a no-op.
func (t *Timers) RegisterTimer(d abi.TimeDomain, key []byte, ts int64) error {
	if d > abi.ProcessingTime {
		return abi.ErrInvalid
	}
	if t.Owns != nil && !t.Owns(key) {
		return abi.ErrKeyNotLocal
	}
	if i, ok := t.find(d, key, ts); !ok {
		t.pending = slices.Insert(t.pending, i, TimerEntry{Domain: d, Timestamp: ts, Key: string(key)})
	}
	return nil
}

// DeleteTimer removes a timer; deleting a missing one is a no-op.
func (t *Timers) DeleteTimer(d abi.TimeDomain, key []byte, ts int64) error {
	if d > abi.ProcessingTime {
		return abi.ErrInvalid
	}
	if t.Owns != nil && !t.Owns(key) {
		return abi.ErrKeyNotLocal
	}
	if i, ok := t.find(d, key, ts); ok {
		t.pending = slices.Delete(t.pending, i, i+1)
	}
	return nil
}

// Watermark is the current watermark.
func (t *Timers) Watermark() int64 { return t.wm }

// ProcessingTime is the current processing time.
func (t *Timers) ProcessingTime() int64 { return t.now }

// SetWatermark sets the watermark without firing timers (the Harness fires
// them).
func (t *Timers) SetWatermark(wm int64) { t.wm = wm }

// SetProcessingTime sets the processing-time clock without firing timers.
func (t *Timers) SetProcessingTime(now int64) { t.now = now }

// Pending returns the registered timers of domain d in firing order.
func (t *Timers) Pending(d abi.TimeDomain) []TimerEntry {
	var out []TimerEntry
	for _, e := range t.pending {
		if e.Domain == d {
			out = append(out, e)
		}
	}
	return out
}

// PopDue removes and returns, in firing order (timestamp, then key), the
// timers of domain d at or before upTo.
func (t *Timers) PopDue(d abi.TimeDomain, upTo int64) []TimerEntry {
	var due []TimerEntry
	t.pending = slices.DeleteFunc(t.pending, func(e TimerEntry) bool {
		if e.Domain == d && e.Timestamp <= upTo {
			due = append(due, e)
			return true
		}
		return false
	})
	return due
}

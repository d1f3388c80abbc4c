package connectors

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/weirstream/weir/runtime"
	"github.com/weirstream/weir/runtime/clock"
)

// indexCursor is the part of a generating source's subtask that datagen
// and nexmark share. Their records are pure functions of a global index,
// so a subtask's whole state is where it is in the index space: it
// produces the indices i with i % parallelism == subtask below count, in
// ascending order, skipping those a restored checkpoint says were
// produced already (indexset.go), at an optional rate on the task clock.
//
// A Poll is begin, then take for each record, then finish:
//
//	n, done, err := c.begin(ctx, maxRecords)
//	if n == 0 {
//		return done, err
//	}
//	written := uint64(0)
//	for ; written < n; written++ {
//		idx, ok := c.take()
//		if !ok {
//			break
//		}
//		... write record idx ...
//	}
//	return c.finish(written), nil
//
// so the per-record loop stays in the source, without an indirect call.
type indexCursor struct {
	what  string // "datagen source": names the source in errors
	kind  byte   // snapshot kind
	count uint64 // records over the node; 0: unbounded
	// rate is records per second (0: as fast as possible), per subtask,
	// or over the node when rateOverNode is set (each subtask then takes
	// rate/parallelism).
	rate         float64
	rateOverNode bool

	clock clock.Clock
	share share
	// restored is set by restore, which fixes share before open.
	restored bool
	opened   bool
	next     uint64 // next candidate global index, of this subtask's class
	end      uint64 // count, or MaxUint64 when unbounded

	// Rate limiting: records emitted since started, on the task clock.
	subtaskRate float64
	started     time.Time
	emitted     uint64
}

// skipBudget bounds the already-generated indices one Poll steps over after
// a restore (most are jumped over in bulk; see indexSet.firstFree), so that
// Poll returns to the task loop promptly even when a rescale left long
// stretches to skip.
const skipBudget = 1 << 16

// open positions the subtask at its first index and starts the rate clock.
func (c *indexCursor) open(info runtime.TaskInfo) error {
	subtask, p, err := checkTask(info)
	if err != nil {
		return fmt.Errorf("%s: %w", c.what, err)
	}
	if c.restored {
		if c.share.sub != uint64(subtask) || c.share.par != uint64(p) {
			return fmt.Errorf("%s node %q: Open as subtask %d of %d after Restore as subtask %d of %d", c.what, info.NodeID, subtask, p, c.share.sub, c.share.par)
		}
	} else {
		c.share = newShare(indexSet{}, uint64(subtask), uint64(p))
	}
	c.clock = info.Clock
	if c.clock == nil {
		c.clock = clock.Real{}
	}
	c.next = c.share.start()
	c.end = c.count
	if c.end == 0 {
		c.end = math.MaxUint64
	}
	c.subtaskRate = c.rate
	if c.rateOverNode {
		c.subtaskRate = c.rate / float64(p)
	}
	// The rate restarts here, also after a restore: records due while the
	// job was down are not made up in a burst.
	c.started = c.clock.Now()
	c.emitted = 0
	c.opened = true
	return nil
}

// begin starts a Poll: it returns how many records may be produced now
// (at most maxRecords), waiting for the rate when none is due. With 0 it
// also returns Poll's result: done when the subtask has produced all its
// indices, or ctx's error when cancelled (nil at ctx's deadline, Poll's
// normal way back to the task loop).
func (c *indexCursor) begin(ctx context.Context, maxRecords int) (n uint64, done bool, err error) {
	if !c.opened {
		return 0, false, fmt.Errorf("%s: Poll before Open", c.what)
	}
	// Step over restored indices first: there may be nothing left, and the
	// rate must not be spent waiting for a record that will not come.
	if c.next < c.share.high {
		next, ok := c.share.skipDone(c.next, skipBudget)
		c.next = next
		if !ok {
			return 0, false, nil
		}
	}
	if c.next >= c.end {
		return 0, true, nil
	}
	n = uint64(max(maxRecords, 1))
	if c.subtaskRate > 0 {
		due, err := c.waitDue(ctx)
		if due == 0 {
			return 0, false, err
		}
		n = min(n, due)
	}
	return n, false, nil
}

// take returns the next index to produce, or false when there is none in
// this Poll (the end, or the skip budget spent on restored indices).
func (c *indexCursor) take() (uint64, bool) {
	idx := c.next
	if idx >= c.end {
		return 0, false
	}
	if idx < c.share.high && c.share.isDone(idx) {
		return c.takeSkipping()
	}
	c.next = idx + c.share.par
	return idx, true
}

// takeSkipping is take's slow path, over restored indices.
func (c *indexCursor) takeSkipping() (uint64, bool) {
	idx, ok := c.share.skipDone(c.next, skipBudget)
	c.next = idx
	if !ok || idx >= c.end {
		return 0, false
	}
	c.next = idx + c.share.par
	return idx, true
}

// finish ends a Poll that produced written records and reports whether
// the subtask is done.
func (c *indexCursor) finish(written uint64) bool {
	if c.next < c.end && c.next < c.share.high {
		// Report done with the last records when only restored ones follow.
		c.next, _ = c.share.skipDone(c.next, skipBudget)
	}
	c.emitted += written
	return c.next >= c.end
}

// snapshot is runtime.CheckpointedSource.Snapshot: the count, then the set
// of indices produced so far over the node (see doc.go, "Checkpoint
// formats").
func (c *indexCursor) snapshot() ([]byte, error) {
	if !c.opened {
		return nil, fmt.Errorf("%s: Snapshot before Open", c.what)
	}
	w := sourceSnapshot(c.kind, &c.share)
	w.uvarint(c.count)
	set := c.share.produced(c.next)
	set.encode(w)
	return w.finish(), nil
}

// restore is runtime.CheckpointedSource.Restore. Every old snapshot must
// be of the same kind with the same count (the index space); everything
// else may change, since a position is an index, not a record.
func (c *indexCursor) restore(info runtime.TaskInfo, states [][]byte) error {
	subtask, p, err := checkTask(info)
	if err != nil {
		return fmt.Errorf("%s: %w", c.what, err)
	}
	done, err := restoreSourceStates(states, c.kind, func(_ int, r *snapReader) error {
		count := r.uvarint("count")
		if r.err != nil {
			return r.err
		}
		if count != c.count {
			return fmt.Errorf("count differs: the checkpoint was taken with count %d, the config has %d", count, c.count)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s node %q subtask %d: restore: %w", c.what, info.NodeID, subtask, err)
	}
	c.share = newShare(done, uint64(subtask), uint64(p))
	c.restored = true
	return nil
}

// waitDue returns how many records are due at the clock's now, waiting for
// the next one when none is. It returns 0 when ctx ends first: nil at its
// deadline (Poll's normal return to the task loop), ctx's error when
// cancelled.
func (c *indexCursor) waitDue(ctx context.Context) (uint64, error) {
	for {
		elapsed := c.clock.Now().Sub(c.started)
		// Estimate, then correct with dueAfter itself, so that waiting
		// until dueAfter(emitted) always makes a record due whatever the
		// float rounding.
		allowed := uint64(elapsed.Seconds()*c.subtaskRate) + 1
		for allowed > 0 && c.dueAfter(allowed-1) > elapsed {
			allowed--
		}
		for c.dueAfter(allowed) <= elapsed {
			allowed++
		}
		if allowed > c.emitted {
			return allowed - c.emitted, nil
		}
		select {
		case <-c.clock.After(c.dueAfter(c.emitted) - elapsed):
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return 0, nil
			}
			return 0, ctx.Err()
		}
	}
}

// dueAfter is when record n (0-based, of this subtask) is due, measured from
// the start: the rate allows one record at once and one more every 1/rate s.
// Computing every due time from the start (not from the previous record)
// keeps rounding from accumulating.
func (c *indexCursor) dueAfter(n uint64) time.Duration {
	return time.Duration(math.Ceil(float64(n) / c.subtaskRate * float64(time.Second)))
}

// checkCountRate validates the count and rate fields that every index
// source's config has.
func checkCountRate(count int64, rate float64) error {
	if count < 0 {
		return fmt.Errorf("config.count: must be >= 0 (0 = unbounded), got %d", count)
	}
	if rate < 0 || math.IsNaN(rate) || math.IsInf(rate, 0) {
		return fmt.Errorf("config.rate: must be a finite number >= 0 (0 = as fast as possible), got %v", rate)
	}
	return nil
}

package runtime

import "github.com/weirstream/weir/abi"

// watermarkTracker combines the watermarks of a task's input channels: the
// task's watermark is the minimum over channels that are neither idle nor
// finished (a finished channel counts as MaxWatermark). It only moves
// forward. It is a pure state machine; the task loop feeds it.
type watermarkTracker struct {
	wm       []int64
	idle     []bool
	done     []bool
	current  int64
	isIdle   bool // every live channel is idle
	liveLeft int  // channels not finished
}

func newWatermarkTracker(channels int) *watermarkTracker {
	t := &watermarkTracker{
		wm:       make([]int64, channels),
		idle:     make([]bool, channels),
		done:     make([]bool, channels),
		current:  abi.MinWatermark,
		liveLeft: channels,
	}
	for i := range t.wm {
		t.wm[i] = abi.MinWatermark
	}
	return t
}

// watermark records channel ch's watermark; it returns the task's new
// watermark and whether it advanced. A watermark also ends idleness.
func (t *watermarkTracker) watermark(ch int, ts int64) (int64, bool) {
	if ts > t.wm[ch] {
		t.wm[ch] = ts
	}
	t.idle[ch] = false
	return t.recompute()
}

// setIdle marks channel ch idle or active.
func (t *watermarkTracker) setIdle(ch int, idle bool) (int64, bool) {
	t.idle[ch] = idle
	return t.recompute()
}

// activity marks channel ch active (it delivered a record).
func (t *watermarkTracker) activity(ch int) (int64, bool) {
	if !t.idle[ch] {
		return t.current, false
	}
	return t.setIdle(ch, false)
}

// finish marks channel ch finished.
func (t *watermarkTracker) finish(ch int) (int64, bool) {
	if !t.done[ch] {
		t.done[ch] = true
		t.liveLeft--
	}
	t.wm[ch] = abi.MaxWatermark
	return t.recompute()
}

func (t *watermarkTracker) recompute() (int64, bool) {
	min := abi.MaxWatermark
	active := false
	for i, w := range t.wm {
		if t.done[i] || t.idle[i] {
			continue
		}
		active = true
		if w < min {
			min = w
		}
	}
	if t.liveLeft == 0 {
		active, min = true, abi.MaxWatermark
	}
	t.isIdle = !active
	if !active || min <= t.current {
		return t.current, false
	}
	t.current = min
	return min, true
}

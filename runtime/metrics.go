package runtime

import (
	"sync/atomic"
	"time"

	"github.com/weirstream/weir/abi"
)

// taskMetrics are updated by the task goroutine (per batch, never per
// record) and read by anyone.
type taskMetrics struct {
	recordsIn    atomic.Int64
	recordsOut   atomic.Int64
	bytesIn      atomic.Int64
	bytesOut     atomic.Int64
	lateDropped  atomic.Int64 // late-output records with no edge reading them
	watermark    atomic.Int64
	backpressure atomic.Int64 // nanoseconds blocked waiting for output buffers
	blockedSince atomic.Int64 // unix nanos when the current wait began, 0 if not blocked
}

func newTaskMetrics() *taskMetrics {
	m := &taskMetrics{}
	m.watermark.Store(abi.MinWatermark)
	return m
}

// TaskStats is a snapshot of one task's metrics.
type TaskStats struct {
	Task        string // node ids of the chain joined by "+", and the subtask: "split+count[2]"
	Nodes       []string
	Subtask     int
	RecordsIn   int64
	RecordsOut  int64
	BytesIn     int64
	BytesOut    int64
	LateDropped int64
	// Watermark is the task's current input watermark (abi.MinWatermark
	// before any; a source task's is the watermark it generated).
	Watermark    int64
	Backpressure time.Duration
	// Alignment is the time spent aligning checkpoint barriers (inputs
	// blocked) in this attempt.
	Alignment time.Duration
	Finished  bool
}

func (m *taskMetrics) snapshot() TaskStats {
	bp := m.backpressure.Load()
	if since := m.blockedSince.Load(); since != 0 {
		bp += time.Now().UnixNano() - since
	}
	return TaskStats{
		RecordsIn:    m.recordsIn.Load(),
		RecordsOut:   m.recordsOut.Load(),
		BytesIn:      m.bytesIn.Load(),
		BytesOut:     m.bytesOut.Load(),
		LateDropped:  m.lateDropped.Load(),
		Watermark:    m.watermark.Load(),
		Backpressure: time.Duration(bp),
	}
}

// countRecords returns the number of record events and their bytes in a
// records-only batch by walking headers only.
func countRecords(batch []byte) (n int64) {
	d := abi.NewDecoder(batch)
	var e abi.Event
	for d.More() {
		if d.Next(&e) != nil {
			break
		}
		if e.Kind == abi.KindRecord {
			n++
		}
	}
	return n
}

package runtime

import (
	"context"
	"time"

	"github.com/weirstream/weir/abi"
)

// envelope is one batch travelling on a channel into a task's gate.
type envelope struct {
	ch  int    // channel index within the receiving gate
	buf []byte // abi-encoded events
}

// channel connects one producer subtask to one consumer subtask. Its buffers
// are its credits: a producer must take a free buffer before it can encode
// into it, and the consumer returns the buffer once it has processed the
// batch. So at most `buffers` batches per channel are in flight, memory is
// bounded, and a slow consumer blocks its producers (backpressure reaches the
// sources). The remote exchange of the cluster issue uses the same credits.
//
// A channel whose other end is on another worker is split in two: the
// producer's side (send set) keeps the buffers and gets one back for every
// credit the consumer returns over the network; the consumer's side
// (credit set) delivers received batches into its gate and answers each
// recycled one with a credit.
type channel struct {
	free chan []byte // buffers the producer may fill
	gate *gate
	idx  int // index in gate

	send   func([]byte) error // remote consumer: hand a batch to the network
	spare  chan []byte        // remote consumer: sent buffers awaiting credit
	fail   func(error)        // remote consumer: a send failed
	credit func()             // remote producer: return a credit
}

// newRemoteSender is the producer's end of channel id, whose consumer is on
// worker to. It starts with buffers credits (the consumer's buffers).
func newRemoteSender(ex Exchange, to string, id uint32, buffers, batchBytes int, fail func(error)) *channel {
	c := &channel{free: make(chan []byte, buffers), spare: make(chan []byte, buffers), fail: fail}
	for i := 0; i < buffers; i++ {
		c.free <- make([]byte, 0, batchBytes+batchBytes/4)
	}
	c.send = ex.Sender(to, id, func() { c.free <- (<-c.spare)[:0] })
	return c
}

// addRemoteChannel adds the consumer's end of channel id, whose producer
// is on worker from.
func (g *gate) addRemoteChannel(input int, ex Exchange, from string, id uint32) {
	c := &channel{gate: g, idx: len(g.channels)}
	g.channels = append(g.channels, c)
	g.input = append(g.input, input)
	idx := c.idx
	c.credit = ex.Receive(from, id, func(batch []byte) {
		g.inbox <- envelope{ch: idx, buf: batch}
	})
}

// gate is the receiving side of a task: every channel into it shares one
// inbox. The inbox has room for every buffer of every channel, so a send
// never blocks once a buffer was obtained.
type gate struct {
	inbox    chan envelope
	channels []*channel
	input    []int // input number (edge order in the spec) of each channel
}

func newGate(channels, buffers int) *gate {
	return &gate{inbox: make(chan envelope, channels*buffers)}
}

func (g *gate) addChannel(input, buffers, batchBytes int) *channel {
	c := &channel{free: make(chan []byte, buffers), gate: g, idx: len(g.channels)}
	for i := 0; i < buffers; i++ {
		c.free <- make([]byte, 0, batchBytes+batchBytes/4)
	}
	g.channels = append(g.channels, c)
	g.input = append(g.input, input)
	return c
}

// recycle returns a processed buffer to its channel.
func (g *gate) recycle(e envelope) {
	c := g.channels[e.ch]
	if c.credit != nil {
		c.credit()
		return
	}
	c.free <- e.buf[:0]
}

// channelWriter is the producer's view of one channel: the batch being
// filled and flush bookkeeping.
type channelWriter struct {
	c   *channel
	buf []byte // nil when no buffer is held
}

// outputWriter is the end of a task's chain: it routes the records of each
// output tag to the edges reading it, partitions them into channels, and
// broadcasts control events. Flushing happens by size (batchBytes), on
// control events that must travel promptly, and by linger (the task loop
// calls flushIfLingered).
type outputWriter struct {
	ctx        context.Context
	edges      []*outEdge
	all        []*channelWriter // every channel of every edge, for control events
	batchBytes int
	linger     time.Duration
	pendingAt  time.Time // when the oldest unflushed event was written; zero if none
	metrics    *taskMetrics
}

type outEdge struct {
	tag       uint8
	partition string
	maxP      int
	writers   []*channelWriter
	next      int // rebalance position
}

// acquire makes sure w holds a buffer, blocking while the consumer has all
// of them (backpressure), and counting the time blocked.
func (o *outputWriter) acquire(w *channelWriter) error {
	if w.buf != nil {
		return nil
	}
	select {
	case w.buf = <-w.c.free:
		return nil
	default:
	}
	start := time.Now()
	o.metrics.blockedSince.Store(start.UnixNano())
	defer func() {
		o.metrics.blockedSince.Store(0)
		o.metrics.backpressure.Add(int64(time.Since(start)))
	}()
	select {
	case w.buf = <-w.c.free:
		return nil
	case <-o.ctx.Done():
		return context.Cause(o.ctx)
	}
}

func (o *outputWriter) flush(w *channelWriter) {
	if w.buf == nil || len(w.buf) == 0 {
		return
	}
	if c := w.c; c.send != nil {
		if err := c.send(w.buf); err != nil {
			c.fail(err)
		}
		c.spare <- w.buf
		w.buf = nil
		return
	}
	w.c.gate.inbox <- envelope{ch: w.c.idx, buf: w.buf}
	w.buf = nil
}

func (o *outputWriter) markPending() {
	if o.pendingAt.IsZero() {
		o.pendingAt = time.Now()
	}
}

// flushAll sends every non-empty batch.
func (o *outputWriter) flushAll() {
	for _, w := range o.all {
		o.flush(w)
	}
	o.pendingAt = time.Time{}
}

// lingerLeft returns how long until pending output must be flushed, and
// whether any is pending.
func (o *outputWriter) lingerLeft() (time.Duration, bool) {
	if o.pendingAt.IsZero() {
		return 0, false
	}
	return o.linger - time.Since(o.pendingAt), true
}

// flushIfLingered flushes when the oldest pending event is older than linger.
func (o *outputWriter) flushIfLingered() {
	if d, ok := o.lingerLeft(); ok && d <= 0 {
		o.flushAll()
	}
}

// appendRecord copies one encoded record (raw) into w's batch, with tag 0:
// downstream of an edge every record is on the main input.
func (o *outputWriter) appendRecord(w *channelWriter, raw []byte) error {
	if err := o.acquire(w); err != nil {
		return err
	}
	n := len(w.buf)
	w.buf = append(w.buf, raw...)
	w.buf[n+1] = abi.TagMain
	if len(w.buf) >= o.batchBytes {
		o.flush(w)
	} else {
		o.markPending()
	}
	return nil
}

// route partitions the records of a records-only batch into the channels of
// the edges that read their tag, counting them for the metrics in the same
// pass.
func (o *outputWriter) route(batch []byte) error {
	d := abi.NewDecoder(batch)
	var e abi.Event
	var n int64
	defer func() { o.metrics.recordsOut.Add(n) }()
	for d.More() {
		off := d.Offset()
		if err := d.Next(&e); err != nil {
			return err
		}
		raw := batch[off:d.Offset()]
		n++
		routed := false
		for _, edge := range o.edges {
			if edge.tag != e.Tag {
				continue
			}
			routed = true
			var err error
			switch edge.partition {
			case PartitionForward:
				err = o.appendRecord(edge.writers[0], raw)
			case PartitionRebalance:
				w := edge.writers[edge.next]
				edge.next++
				if edge.next == len(edge.writers) {
					edge.next = 0
				}
				err = o.appendRecord(w, raw)
			case PartitionKey:
				kg := abi.KeyGroup(e.Key, edge.maxP)
				err = o.appendRecord(edge.writers[abi.OperatorIndexForKeyGroup(kg, len(edge.writers), edge.maxP)], raw)
			case PartitionBroadcast:
				for _, w := range edge.writers {
					if err = o.appendRecord(w, raw); err != nil {
						break
					}
				}
			}
			if err != nil {
				return err
			}
		}
		if !routed && e.Tag != abi.TagMain {
			o.metrics.lateDropped.Add(1)
		}
	}
	return nil
}

// control appends a control event to every channel.
func (o *outputWriter) control(ev *abi.Event, flushNow bool) error {
	for _, w := range o.all {
		if err := o.acquire(w); err != nil {
			return err
		}
		w.buf = abi.AppendEvent(w.buf, ev)
		if flushNow || len(w.buf) >= o.batchBytes {
			o.flush(w)
		}
	}
	if flushNow {
		o.flushAll()
	} else {
		o.markPending()
	}
	return nil
}

package sdk

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/weirstream/weir/abi"
)

// Context is the operator's window on the host: the current record's key and
// time, output, timers, logging and the instance's configuration. The SDK
// passes the same *Context to every call of an operator instance; what it
// reports (current key, timestamp) changes from event to event.
type Context struct {
	in     *instance
	key    []byte
	hasKey bool
	ts     int64
}

// CurrentKey is the key of the record or timer being handled (nil in Open,
// Close, OnWatermark and OnEndOfInput). It aliases the input batch: copy it
// to keep it beyond the current call.
func (c *Context) CurrentKey() []byte { return c.key }

// Timestamp is the event time of the record or event-time timer being
// handled, and the timestamp Emit gives to output records. It is
// NoTimestamp for processing-time timers, watermarks, end of input, and
// records without event time.
func (c *Context) Timestamp() int64 { return c.ts }

// SetTimestamp changes the timestamp that Timestamp reports and Emit
// attaches, until the next event. Libraries that emit on behalf of another
// time use it (windows emit their results at the window's max timestamp).
func (c *Context) SetTimestamp(ts int64) { c.ts = ts }

// Watermark is the operator's current event-time watermark: the time up to
// which every record is assumed to have arrived. Records with a timestamp at
// or below it are late. During the call that advances it (the timers it
// fires and OnWatermark) it is the new watermark.
func (c *Context) Watermark() int64 { return c.in.watermark() }

// ProcessingTime is the task's current processing time in epoch
// milliseconds (the host's clock; Wasm instances have no other).
func (c *Context) ProcessingTime() int64 { return c.in.h.processingTime() }

// Emit sends a record with the current timestamp to the main output. key and
// value are copied. Records may be emitted while processing events (Process,
// OnTimer, OnWatermark, OnEndOfInput); emitting from Open or Close fails the
// call.
func (c *Context) Emit(key, value []byte) { c.in.emitRecord(abi.TagMain, key, value, c.ts) }

// EmitWithTimestamp sends a record with timestamp ts to the main output.
func (c *Context) EmitWithTimestamp(key, value []byte, ts int64) {
	c.in.emitRecord(abi.TagMain, key, value, ts)
}

// EmitLate sends a record with the current timestamp to the late-data side
// output (records that arrived after the watermark passed them and that the
// operator will not use).
func (c *Context) EmitLate(key, value []byte) { c.in.emitRecord(abi.TagLate, key, value, c.ts) }

// EmitReserve sends a record with the current timestamp and an n-byte value
// to the main output, and returns the value's bytes for the caller to fill
// in place (no intermediate buffer). The slice is valid until the next Emit
// call or the end of the current call.
func (c *Context) EmitReserve(key []byte, n int) []byte {
	return c.in.reserveRecord(abi.TagMain, key, n, c.ts)
}

// RegisterEventTimeTimer asks for OnTimer to be called for the current key
// when the watermark reaches ts. Registering the same (key, ts) twice fires
// once. Timers are part of the operator's state (they survive failures).
func (c *Context) RegisterEventTimeTimer(ts int64) error {
	return c.timer(true, abi.EventTime, ts)
}

// DeleteEventTimeTimer deletes the current key's event-time timer at ts, if
// any.
func (c *Context) DeleteEventTimeTimer(ts int64) error {
	return c.timer(false, abi.EventTime, ts)
}

// RegisterProcessingTimeTimer asks for OnTimer to be called for the current
// key when the task's clock reaches ts (epoch milliseconds). Pending
// processing-time timers do not fire at end of input.
func (c *Context) RegisterProcessingTimeTimer(ts int64) error {
	return c.timer(true, abi.ProcessingTime, ts)
}

// DeleteProcessingTimeTimer deletes the current key's processing-time timer
// at ts, if any.
func (c *Context) DeleteProcessingTimeTimer(ts int64) error {
	return c.timer(false, abi.ProcessingTime, ts)
}

func (c *Context) timer(register bool, d abi.TimeDomain, ts int64) error {
	what := "delete timer"
	if register {
		what = "register timer"
	}
	if err := c.in.checkKeyed(what); err != nil {
		return err
	}
	var n int32
	if register {
		n = c.in.h.timerRegister(d, c.key, ts)
	} else {
		n = c.in.h.timerDelete(d, c.key, ts)
	}
	if n < 0 {
		return fmt.Errorf("sdk: %s %s at %d: %w", what, d, ts, abi.Errno(n))
	}
	return nil
}

// Log writes a line to the job's log. The host cuts lines over 4 KiB and
// rate-limits logging.
func (c *Context) Log(level LogLevel, msg string) { c.in.h.log(level, msg) }

// Logf writes a formatted line to the job's log (see Log).
func (c *Context) Logf(level LogLevel, format string, args ...any) {
	c.in.h.log(level, fmt.Sprintf(format, args...))
}

// Operator is the name of the exported operator this instance runs.
func (c *Context) Operator() string { return c.in.info.Operator }

// NodeID is the id of the job-spec node this instance belongs to.
func (c *Context) NodeID() string { return c.in.info.NodeID }

// Subtask is the index of this parallel instance, 0-based.
func (c *Context) Subtask() int { return int(c.in.info.Subtask) }

// Parallelism is the number of parallel instances of the node.
func (c *Context) Parallelism() int { return int(c.in.info.Parallelism) }

// MaxParallelism is the number of key groups of the job.
func (c *Context) MaxParallelism() int { return int(c.in.info.MaxParallelism) }

// Inputs is the number of inputs of the node.
func (c *Context) Inputs() int { return int(c.in.info.Inputs) }

// Keyed reports whether the operator was exported with Keyed.
func (c *Context) Keyed() bool { return c.in.reg.info.Keyed() }

// Config is the node's `config` from the job spec, as JSON (empty when the
// spec has none). The slice is shared: do not modify it.
func (c *Context) Config() []byte { return c.in.info.Config }

// ConfigJSON decodes the node's config into v (a pointer, typically to a
// struct with json tags). Unknown fields are an error, so that a typo in a
// job spec does not go unnoticed. An empty config leaves v unchanged.
func (c *Context) ConfigJSON(v any) error {
	cfg := bytes.TrimSpace(c.in.info.Config)
	if len(cfg) == 0 || string(cfg) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(cfg))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("sdk: config of node %q (operator %q): %w", c.in.info.NodeID, c.in.info.Operator, err)
	}
	return nil
}

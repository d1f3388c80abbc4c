// Package window implements event-time windows — tumbling, sliding and
// session — as an SDK library on top of keyed map state and event-time
// timers, so that the host ABI needs no notion of windows.
//
// A window Operator is an ordinary keyed sdk.Operator:
//
//	sdk.Export("sum", func() sdk.Operator {
//		return window.New(window.Tumbling(10*time.Second), sumAgg{}, codec.Int64, emitSum,
//			window.AllowedLateness(5*time.Second))
//	}, sdk.Keyed())
//
// # Semantics
//
// They are those of Apache Flink's WindowOperator with its EventTimeTrigger
// and an incremental AggregateFunction:
//
//   - A window is the half-open interval [Start, End) of event time, in
//     epoch milliseconds; its max timestamp is End-1. Tumbling windows of size
//     s start at multiples of s (plus an offset); sliding windows of size s
//     and slide d start at multiples of d, so a record belongs to s/d of
//     them; a session window of gap g starts as [t, t+g) for a record at t
//     and merges with every window of the same key it intersects (touching
//     counts, as in Flink: [0,10) and [10,20) merge), accumulators combined
//     with Aggregator.Merge.
//   - Each window keeps one accumulator per key (Aggregator.Add folds each
//     record in); its contents are never buffered.
//   - A window fires once, when the watermark reaches its max timestamp
//     (End-1): the EmitFunc receives Aggregator.Result of the accumulator,
//     with the window's key as current key and End-1 as the timestamp that
//     Emit attaches.
//   - Allowed lateness L keeps a window after it fired, until the watermark
//     reaches End-1+L. A record for such a window (late, but not too late)
//     updates the accumulator and fires the window again at once, with the
//     updated result. A session record may so extend a fired session; the
//     merged window fires again when the watermark passes its new end, or at
//     once if it already has.
//   - A window is late when End-1+L <= watermark. A record whose windows are
//     all late is dropped from the aggregation and sent to the late side
//     output (sdk.Context.EmitLate with the record's key, value and
//     timestamp), unless OnLate replaces that.
//   - A window's state is deleted when the watermark reaches End-1+L (with
//     L = 0, right after it fires), by an event-time timer; so every window
//     of a bounded input fires and is cleaned up by the final
//     Watermark(MaxWatermark).
//   - Records without a timestamp are an error: event-time windows need
//     timestamps (assigned by the source).
//
// Windows here are event-time only; processing-time windows and
// non-incremental window functions (all records of a window in a list) are
// not provided.
//
// # State
//
// One map state per operator (default name "window"): map key = the window
// (start and end, 16 order-preserving bytes), value = the accumulator
// encoded with the codec given to New. Timers: one at each window's max
// timestamp, one at its cleanup time when L > 0. Nothing lives in the
// operator's memory, so windows survive failures and rescaling with the
// keyed state.
//
// This package knows only the public API of package sdk and codec.
package window

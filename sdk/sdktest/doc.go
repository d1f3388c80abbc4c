// Package sdktest runs Weir operators natively, in memory, for unit tests
// and benchmarks: an in-memory implementation of the host's keyed state and
// timer service (State, Timers) and a Harness that drives an operator
// through sdk.Native the way the runtime drives a Wasm instance (records,
// watermarks that fire event-time timers first, processing time, end of
// input) and collects its output.
//
//	h, err := sdktest.New("count", sdktest.Options{})
//	...
//	h.Record("a", "x", 1000)
//	h.Watermark(2000)
//	out := h.TakeOutput() // []sdktest.Output
//
// It is the reference a tenant's tests can rely on, and it follows abi/ABI.md
// (timer order, set semantics of timers, sorted map scans); it knows nothing
// of the runtime or of real state backends.
package sdktest

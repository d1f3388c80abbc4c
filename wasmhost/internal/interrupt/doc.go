// Package interrupt makes guest calls stoppable cheaply: Instrument rewrites
// a Wasm binary so that every loop iteration and every function entry that
// can lead to unbounded work first checks an exported flag global, and the
// host stops a runaway call by setting that flag (Flag) from another
// goroutine.
//
// It owns the rewriting of Wasm binaries (a binary-format walker that
// decodes every instruction) and nothing else. It must not know about
// deadlines, clocks, tenants or instances: when to set the flag, and what
// an interrupted call means, is wasmhost's business.
//
// # Why it exists
//
// wazero can stop a call at its deadline itself
// (RuntimeConfig.WithCloseOnContextDone), but it does so by calling into Go
// at every loop header, and Go-compiled Wasm wraps every function body in a
// loop (for goroutine resumption), so every guest function call pays it.
// Measured with wazero 1.12's compiler on this project's 2-core machine
// (BenchmarkProcess, BenchmarkLoop):
//
//	                                   none      wazero   instrumented
//	Go guest, map operator, ns/record   700        4000            690
//	tight loop, ns/iteration            0.5          28            1.9
//
// "none" cannot be stopped at all; "wazero" is WithCloseOnContextDone;
// "instrumented" is this package on a runtime without it. For a real Go
// operator the checks cost nothing measurable; on a loop of three
// instructions they cost about 1.4 ns per iteration.
//
// # The check
//
// At the start of every loop body, and at the start of every function
// that calls a function outside all of its loops, Instrument inserts:
//
//	global.get $flag ; if ; unreachable ; end       ;; interrupted: trap
//	$countdown -= 1
//	if $countdown == 0 {                            ;; every 1024 checks:
//	  table.grow 0 (ref.null) 0 ; drop              ;;   yield to Go
//	  $countdown = 1024
//	}
//
// Why these places. Without loops, an activation executes each of its
// instructions at most once, so an execution that never ends performs
// either infinitely many loop iterations (each passes a loop check) or
// infinitely many calls. Calls made inside loops are bounded by the loop
// iterations; calls made outside them come from activations of functions
// that have such a call, each making finitely many, so there are
// infinitely many of those activations, each passing an entry check. So
// no guest can run unboundedly without checking the flag: a regular
// interval between checks is all an interruption waits for. wazero's own
// mechanism checks loop headers only; an exponential recursion or a tail
// call to itself escapes it (testdata/spin.wat "recurse",
// testdata/tailcall.wat "forever": verified not to stop with
// WithCloseOnContextDone, stopped here).
//
// Why the yield. The Go runtime cannot preempt a goroutine that runs
// native (compiled Wasm) code. A guest call that runs long holds up every
// stop-the-world phase of the garbage collector, and so every goroutine of
// the process; a guest that never returns deadlocks the process at the
// next collection, because the goroutine that would set the flag is
// stopped too (TestGCWhileGuestSpins: with the flag check alone, the
// process hangs). wazero's compiler makes table.grow a call into Go
// (TableInstance.Grow, which returns at once for 0 elements), and that Go
// function's prologue is where a pending preemption takes place, so a
// guest lets the collector through at least every 1024 checks
// (microseconds). memory.grow would work as well, but the compiled code
// forgets what it knows about the memory after it (base, checked bounds),
// which costs a Go guest 15%. A module without a table gets one.
//
// The flag is read with a plain load while another goroutine writes it.
// That is what makes it cheap; on amd64 and arm64 the store reaches the
// looping core within microseconds (TestInterrupt: 15-30 µs from Set to
// the call's return). With wazero's interpreter, whose load is Go code,
// the race detector rightly reports it; Weir runs the compiler.
//
// # Using it (wasmhost)
//
//   - Instrument each module once, before compiling it (7 ms and 3 MB of
//     garbage for a 2.8 MB Go guest, BenchmarkInstrument), and compile the
//     result on a runtime WITHOUT CloseOnContextDone, with reference types
//     enabled (api.CoreFeaturesV2).
//   - ErrUnsupported: the module uses a proposal the walker does not decode
//     (threads, exception handling, GC, ...) or already exports
//     ExportName. Compile the original on a second runtime WITH
//     CloseOnContextDone. ErrMalformed and ErrLimit: reject the module
//     without handing it to wazero (see their documentation).
//   - After instantiating, look the flag up with Flag. Before each call it
//     must be 0; when the call's deadline passes, Set(1). Record that in
//     the host's own synchronised state, e.g. an atomic that the deadline
//     callback moves from "running" to "interrupted" before it sets the
//     flag, and that the caller moves from "running" to "idle" when the
//     call returns: if that fails, the call was interrupted (its
//     unreachable trap is a deadline, not a bug) and a late Set(1) cannot
//     hit the next call. Discard an interrupted instance: it was stopped
//     in the middle of its work.
//   - Time spent in host functions is not covered: the host functions
//     (and WASI) must not block past the deadline themselves.
//
// # What changes in the module
//
// Two globals are appended (the flag, exported as ExportName, and the
// countdown), so no global index changes; a funcref table is added when
// the module has none (table 0 must exist for the yield); function bodies
// grow by about 32 bytes per check (the bench Go guest: 1324 loop checks,
// 531 entry checks, +2.1% of its size). Custom sections other than "name"
// are dropped, since code offsets move (DWARF, source maps); "name" refers
// to indices only and is kept.
package interrupt

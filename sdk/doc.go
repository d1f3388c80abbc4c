// Package sdk is the Go guest SDK of Weir: it turns ordinary Go types into
// operators of a Weir module (GOOS=wasip1 GOARCH=wasm, built with
// -buildmode=c-shared), modelled on Apache Flink's KeyedProcessFunction.
//
// # Writing operators
//
// An operator is a Go type with a Process method; optional methods add
// set-up, timers, watermarks, end of input and tear-down (Opener,
// TimerHandler, WatermarkHandler, EndOfInputHandler, Closer). A module is a
// main package that exports its operators from init:
//
//	package main
//
//	type Count struct{ n *sdk.ValueState[int64] }
//
//	func (c *Count) Open(ctx *sdk.Context) (err error) {
//		c.n, err = sdk.NewValueState(ctx, "n", codec.Int64)
//		return err
//	}
//
//	func (c *Count) Process(ctx *sdk.Context, r sdk.Record) error {
//		n, _, err := c.n.Get() // the current key's count, 0 if none
//		if err != nil {
//			return err
//		}
//		n++
//		if err := c.n.Set(n); err != nil {
//			return err
//		}
//		ctx.Emit(r.Key, strconv.AppendInt(nil, n, 10))
//		return nil
//	}
//
//	func init() {
//		sdk.Export("count", func() sdk.Operator { return &Count{} }, sdk.Keyed())
//	}
//
//	func main() {}
//
// Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o count.wasm .
//
// # Keys, state and timers
//
// An operator exported with Keyed has its inputs partitioned by key. Its
// state handles (ValueState, MapState, ListState, declared in Open with a
// codec from package codec) and timers always refer to the current key: the
// key of the record in Process, of the timer in OnTimer. State lives in the
// host, not in the instance: it is checkpointed, restored after failures and
// redistributed when the job is rescaled, so an operator must keep nothing
// in its Go fields that it could not lose (caches aside).
//
// # Time
//
// Timestamps are int64 milliseconds since the Unix epoch. Context.Watermark
// is the event time up to which input is complete; event-time timers fire
// in timestamp order when it passes them, processing-time timers when the
// task's clock does. Package window builds tumbling, sliding and session
// windows on these primitives.
//
// # Output
//
// Context.Emit appends records to an output buffer that is handed to the
// host in batches of about 64 KiB and at the end of every call; records that
// arrive too late for the operator go to a side output with
// Context.EmitLate. Keys and values passed to operators alias the input
// batch and are valid only during the call.
//
// # Errors and panics
//
// An error returned by an operator method, or a panic in it, fails the task
// (it restarts from the last checkpoint): the host receives the message, and
// for a panic an excerpt of the stack.
//
// # Performance
//
// The host calls the module once per batch of events, not per record. On the
// hot path the SDK does not allocate: the decoded records alias the batch,
// state reads go to a reused buffer (values larger than it take a second
// host call with a buffer of the right size), state writes encode into
// reused buffers, and output is written into one buffer. Codecs for strings,
// JSON and []byte values allocate the values they return.
//
// # The hot path
//
// In Go compiled to Wasm and run by wazero, a function call costs 10 to 15
// ns (measured here; natively about 1): arguments travel on a stack in
// linear memory, every function starts with a stack check and a br_table
// that dispatches its resumption points, and wazero reloads the memory base
// and globals after the call. A copy of non-constant length is such a call
// (runtime.memmove), so is a value-receiver method reached through an
// interface (the compiler's wrapper, which also copies the arguments
// again), and a branch taken inside a function is a jump through that
// br_table. A call to the host costs 70 to 130 ns. So the per-record path
// is written to make as few calls as it can, which in Go means code written
// out where a native program would call a helper:
//
//   - weir_process decodes record headers inline and makes one call per
//     record, the operator's Process (FuzzProcess guards the decoding).
//   - Emit and EmitReserve make one call besides their copies: one
//     comparison against outLimit sends every unusual case (misuse, a full
//     buffer, a huge record) to makeRoom, and the header is five stores
//     written inline. The output buffer is indexed (outN), not re-sliced
//     and appended to, so no pointer is stored per record (a write-barrier
//     check, hence a jump).
//   - ValueState of an 8-byte integer (codec.Int64, Uint64, Int, Uint) gets
//     and sets with one call besides the import itself: the value is
//     decoded or encoded inline and, in the Wasm build, the import is called
//     directly rather than through the host interface. The fixed-width
//     codecs of package codec declare their encoding (sdk/internal/fixed),
//     which every state handle uses instead of calls through codec.Codec.
//
// What remains per record is the interface call to Process with its
// 64-byte Record argument, and for keyed operators the host calls of state
// access, which dominate (examples/internal/benchops, BenchmarkGuest,
// measures all of it in Wasm and natively). Operators can help: give them
// pointer receivers (a value receiver costs a wrapper call and a second
// copy of the Record, about 20 ns per record), and keep small helpers out
// of per-record loops.
//
// # Running without WebAssembly
//
// The same operator code runs natively through Native, which the runtime
// uses to measure the cost of the sandbox and tests use to run operators
// (package sdktest builds an in-memory host on it).
//
// # Design notes
//
// Why does Emit return no error? Output can only fail by misuse (emitting
// from Open or Close) or a host failure; both fail the whole call, so the
// SDK records the first one and the call returns it, and operators stay
// free of error plumbing on their most frequent call.
//
// Why is state declared in Open and bound to the current key? The host
// registers state names only while an operator opens (names are what
// survives upgrades), and keyed state only makes sense for the key being
// processed, as in Flink. A handle is declared once and used without
// naming a key, so it cannot touch another key's state by mistake.
//
// Why is there package-level state at all? The operator table is filled by
// Export from init functions, before the host calls any export, and a Wasm
// module's exports are package functions: the table and the Wasm build's
// one instance are the only package-level variables. Everything else lives
// in an instance (Native creates as many as the runtime wants).
//
// Why are records decoded and encoded inline rather than with the abi
// package's Decoder and AppendRecord? See "The hot path": the other events
// use the abi decoder.
//
// # Boundaries
//
// This package owns the guest side of the ABI (abi/ABI.md): decoding the
// host's arguments, dispatching events, buffering output, the `weir`
// imports and the six exports. It depends only on package abi, its own
// packages (codec, internal/fixed) and the standard library, and knows
// nothing of the runtime, jobs or state backends: it sees them only through
// the host functions.
package sdk

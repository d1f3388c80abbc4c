// Package queries holds the Nexmark queries q0, q1, q2, q3, q4, q5, q7 and
// q8 as Weir operators, registered with the SDK when the package is
// imported: the nexmark module (examples/nexmark) imports it for the Wasm
// build, and the module's tests and benchmarks import it to run the very
// same code natively (sdk.Native), as examples/internal/benchops does for
// the pipeline benchmarks.
//
// Semantics are those of the reference SQL of github.com/nexmark/nexmark
// (nexmark-flink/src/main/resources/queries); examples/nexmark/README.md
// says what each query computes, which operators it uses and what it
// writes.
//
// # Input
//
// Every query reads Nexmark events in the row layout of package
// connectors/nexmark (Event.AppendRow), as the "nexmark" source writes
// them: empty key, the event row as value, and the event's dateTime as the
// record's timestamp. Windowed queries (q5, q7, q8) assign windows by the
// record's timestamp, which is the event time the runtime's watermarks
// refer to (Flink's rowtime attribute); the source guarantees it equals
// dateTime. Bids, 92% of the events, are read by decodeBid, a straight
// pass over that layout, and the type of other events by eventType;
// persons and auctions by Event.DecodeRow (event.go says why, and
// FuzzDecodeBid holds decodeBid to DecodeRow's results). A row that does
// not decode fails the task with the reason: it means that writer and
// reader disagree on the schema, and dropping it would silently change
// the results. A query does not decode the events it does not read
// (q0 does not look into persons).
//
// # Stages
//
// A query that needs keyed state starts with a stateless "prep" operator
// (chained with the source over a forward edge) that keeps only the events
// the query reads, sets the record key the next stage is partitioned by
// (an int64 as 8 bytes big endian) and re-encodes the fields that stage
// needs as a small row (package abi/row), so that the exchange carries
// tens of bytes per event instead of hundreds. The layouts of these
// intermediate rows are internal to the module; they are documented next
// to the operators that write them.
//
// # Output
//
// Results are text lines: the query's output columns in the order of the
// reference's SELECT, separated by commas, integers in decimal, timestamps
// as epoch milliseconds, strings as they are unless they hold a comma, a
// double quote or a line break (then quoted as in RFC 4180). The key of an
// output record is empty (q4: the category as 8 bytes), so the file sink's
// "value" format writes exactly one CSV line per result.
//
// # State
//
// Everything a query remembers lives in keyed state (ValueState, MapState,
// ListState) and event-time timers, never in Go fields: the fields of an
// operator hold only scratch buffers, so instances stay disposable and
// state is checkpointed, restored and rescaled by the host.
//
// # Performance
//
// The per-event paths allocate nothing: strings alias the input batch,
// keys and output lines are built in scratch buffers owned by the
// operator, and state values are read without copying (the view codec).
// In Go compiled to Wasm and run by wazero, every function call costs
// 10-15 ns, every taken jump inside a function goes through the
// function's dispatch table (a passing bounds check is one), a uint64
// division by a constant is a multiply-high emulated in four
// multiplications, and a host call (state, timers) 100-400 ns. So the
// per-bid paths are straight-line code: decodeBid and readInts read
// fields with unsafe loads at offsets proven in range (endian_le.go),
// numbers are formatted eight digits at a time by multiplications
// (format.go), strings are scanned eight bytes at a time, and the keyed
// stages use the SDK's fastest state (ValueState[int64]) or fixed-layout
// values decoded by hand, and as few state calls per event as the
// semantics allow. BenchmarkGuest and BenchmarkGuestKeyed in
// examples/nexmark measure each operator in Wasm and natively.
//
// This package knows the SDK, its codecs, abi/row and the Nexmark model; it
// knows nothing of the runtime, connectors or job specs.
package queries

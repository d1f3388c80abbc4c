// Package wasmhost runs Weir operator modules: the host side of ABI.md,
// implemented with wazero.
//
// It owns the wazero runtime (one per process, with an on-disk compilation
// cache), the validation of uploaded modules (Runtime.Compile), one sandboxed
// instance per operator task (Module.Instantiate), the host functions of
// module "weir" (ABI.md section 3), the limits of an instance (memory pages,
// time per call, output per batch, log rate) and the translation of every
// way a guest can fail into typed errors (*ModuleError, *CallError and its
// causes).
//
// It must not know about jobs, tasks, tenants, key groups, checkpoints or
// storage. It talks to three small interfaces the runtime supplies per
// instance (StateAccess, Timers, Logger, in host.go) and takes its limits as
// plain numbers (Limits). Which key a task owns, where state is stored and
// how a failure is recovered are the runtime's business.
//
// # Using it
//
//	rt, _ := wasmhost.NewRuntime(ctx, wasmhost.Config{CacheDir: dir}) // once per process
//	mod, _ := rt.Compile(ctx, wasmBytes)                               // once per module
//	inst, _ := mod.Instantiate(ctx, wasmhost.InstanceConfig{...})      // once per operator task
//	_ = inst.Open(ctx, abi.OpenInfo{...})
//	out, _ := inst.Process(ctx, input, batch) // per batch, on the task goroutine
//	_ = inst.Close(ctx)
//
// A Module is immutable and shared by all instances; an Instance is owned
// by one goroutine. Instances of one module share nothing: each has its own
// linear memory, WASI context and Go runtime (for Go guests).
//
// # Why batches cross the Wasm boundary, not records
//
// A call from the host into a guest, with its deadline, costs about 2 µs
// on a small server (most of it the per-call deadline: a context, a timer
// and wazero's watcher goroutine; the call itself is tens of ns), and a
// guest's call to the host about 50-100 ns (BenchmarkProcess,
// BenchmarkHostCall).
// Crossing once per record would cap a core at well under a million
// records per second before the operator did any work. So the host writes
// a whole event batch (the same encoding the network and local channels
// use, abi.Encoder) into a buffer the guest allocates (weir_buffer), calls
// weir_process once, and the guest hands back its output records in as few
// emit calls as it likes. Per record the host then only validates a record
// header on emit (a few ns) and copies bytes. For a batch of 1024 records
// the fixed cost of the call is about 2 ns per record; the WAT echo guest
// moves 40-60 million 100-byte records per second through the host.
//
// # Why state lives in the host
//
// Instances are disposable: a trap, a deadline, a rescale or a module
// upgrade discards the instance and its memory. If operators kept state in
// linear memory, every checkpoint would have to snapshot whole memories
// (tens of MB per instance, opaque, unsplittable) and rescaling could not
// redistribute keys. Keeping state behind host calls (state_get, state_put,
// ...) makes it keyed, splittable by key group, incrementally snapshotted by
// the state backend, and shared by nothing: a guest can only reach the cells
// of keys its task owns (StateAccess checks). A host call costs 50-100 ns
// plus the backend lookup, and allocates nothing, which is the price of
// that.
//
// # How limits are enforced
//
// Memory. Every instance gets its own linear memory allocator (wazero's
// experimental.MemoryAllocator) that refuses to grow past
// Limits.MemoryPages: memory.grow returns -1, as for a declared maximum,
// and the guest decides what that means (Go guests die with "fatal error:
// out of memory", which surfaces as a *TrapError whose Stderr says so). A
// module whose declared initial memory exceeds the limit is not
// instantiated. wazero's own limit (WithMemoryLimitPages, from
// Config.MemoryLimitPages) is runtime-wide and is only the ceiling. On unix
// the memory is one anonymous mapping reserving the whole limit: growing
// never copies, only touched pages are resident, guest memory stays out of
// the Go heap, and it is unmapped when the instance closes (never while a
// call is running, even if the runtime is closed concurrently).
//
// Time. Every call into the guest (_initialize, weir_buffer plus the
// export it feeds, weir_close) runs under Limits.CallTimeout, wall time (on
// an overloaded machine a healthy call can hit it too). Compile instruments
// each module (internal/interrupt): every loop body, and every function that
// calls outside its loops, starts by checking an exported flag global, and a
// countdown makes the guest call into Go every 1024 checks so that a spinning
// guest cannot stall the Go garbage collector. Such modules run on a wazero
// engine without WithCloseOnContextDone; a per-instance timer (and the
// caller's context, and Runtime.Close) sets the flag, the guest traps at its
// next check, and the call returns a *DeadlineError (or is reported as
// cancelled/closed). Why not wazero's own mechanism: v1.12 exits to Go at
// every loop back-edge (about 28-55 ns, against ~2 ns for the flag check;
// wazero issue #2466), and Go guests, whose functions each begin with a loop
// (Go's resumable-stack scheme), pay it on almost every call: a 100-byte map
// operator ran at ~4 us per record with it and ~0.7 us without. Modules the
// instrumenter cannot rewrite (proposals it does not decode, a start
// section) fall back to a second engine with WithCloseOnContextDone; modules
// it finds malformed or over its limits (e.g. 2^32 locals, which would make
// wazero allocate gigabytes before validating) are rejected.
//
// Output. emit copies records into the instance's output buffer; the emit
// that would take one input batch's output past Limits.MaxOutputBytes traps
// (*OutputLimitError), as do bytes that are not well-formed records with tag
// 0 or 1 (*MalformedOutputError).
//
// Pointers. Every (ptr, len) a guest passes to an import, and every range
// weir_buffer and weir_operators return, is checked in 64-bit arithmetic
// against the current memory size before any access; a bad one traps the
// call with a *BoundsError naming the function and the range. Host
// functions never keep slices into guest memory past the call.
//
// Logs. Lines from the log import and from captured stdout (info) and
// stderr (warn) are cut at MaxLogLine bytes and rate-limited by a token
// bucket of Limits.MaxLogBytesPerSecond (clock: InstanceConfig.Now); dropped
// lines are counted and reported in one warning when logging resumes and at
// Close.
//
// Not limited here: the host-side native stack wazero grows for deeply
// recursive guests (up to about 100 MB before it reports a stack overflow),
// and the CPU a guest spends in host functions (bounded by the deadline).
//
// # The sandbox
//
// Modules may import only module "weir" and wasi_snapshot_preview1 (Go
// guests need it); Compile rejects anything else with a clear message. WASI
// is wazero's, configured with no arguments, no environment, no
// preopened directories and no sockets; stdin is empty. Its clocks and
// random source are wazero's deterministic defaults: wall and monotonic
// clocks are fakes that advance 1 ms per reading, sleeping returns
// immediately, random bytes come from a fixed seed. Operators get real time
// only through the ABI (processing_time, timers). proc_exit ends the
// instance with an *ExitError carrying the code; _start is never called.
//
// # Failures
//
// Every failure of a call is a *CallError naming the instance and the
// export, with a FailureKind and a cause: *TrapError, *DeadlineError,
// *ExitError, *StatusError (non-zero status, with the guest's fail
// message), *BoundsError, *OutputLimitError, *MalformedOutputError, or the
// host service's own error (a StateAccess error that is not an abi.Errno:
// the guest gets ErrInternal and the call fails when it returns). After any
// failure the instance is dead: its memory is released at once and every
// further call returns FailureClosed wrapping ErrClosed. A hostile module can
// fail its own instance and nothing else; the tests run every hostile case
// concurrently with healthy instances of the same modules.
//
// # Finding the instance in a host function
//
// Host functions use wazero's stack-based api.GoModuleFunc (no reflection,
// no allocation). The calling Instance travels in the context passed to the
// guest call: a *callContext that host functions recover with a type
// assertion (2-6 ns, about a third of a context.Value lookup and a quarter
// of a sync.Map keyed by module; BenchmarkCallerLookup). Allocating that context per call
// is required anyway, because wazero's deadline watcher goroutine may still
// read the context after the call returned.
package wasmhost

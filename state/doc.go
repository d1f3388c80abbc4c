// Package state owns keyed state and timers: the Backend interface, an
// in-memory backend (Memory) and a Pebble backend (Pebble), and the
// conformance suite both pass (package statetest).
//
// It knows key groups (the unit of sharding and of rescaling) but nothing of
// jobs, Wasm or the network. The runtime computes key groups with
// abi.KeyGroup and checks ownership before calling a backend.
//
// # Contract details shared by both backends
//
//   - State IDs are dense registration numbers of one backend, from 0.
//     Register checks the kind (value, map or list) and returns
//     ErrKindMismatch when a name comes back with another kind.
//   - Calls are checked against the registered kind: Get, Put and Delete
//     apply to value state (with an empty sub key) and map state; Append to
//     list state; Scan and Clear to all three. A mismatch is ErrWrongKind.
//     Key groups must lie in [0, MaxKeyGroups); timer domains must be
//     abi.EventTime or abi.ProcessingTime. All these argument errors wrap
//     abi.ErrInvalid, so wasmhost hands them to the guest as Invalid.
//   - Every slice a backend returns (a Get value, the sub keys and values a
//     Scan passes to fn) stays valid until the next call on the backend, even
//     after Scan returned. The Key of a Timer passed to a FireTimers callback
//     is valid until the callback returns and may be passed straight back to
//     RegisterTimer.
//   - A Scan callback must not call the backend. A FireTimers callback may
//     call anything but FireTimers (ErrReentrantFire): a timer is removed
//     before its callback runs, so the callback may re-register it, and the
//     firing loop looks at the queue afresh after every callback, which is
//     how timers registered during firing with ts <= upTo fire in the same
//     call. If the callback fails, that timer is gone and later ones remain.
//   - After Close every call returns ErrClosed; Close is idempotent.
//
// # Memory
//
// Value state is one Go map per state keyed by (key group, key); keys of up
// to 13 bytes are map keys by value (a 16-byte array, hashed and compared
// inside the map's memory), longer ones strings. Cells are boxed so that Put
// overwrites them in place, with values up to 16 bytes stored in the box.
// The cell the last Get found is remembered, so the Put of a
// read-modify-write skips the second lookup. Together a Get+Put over 100k
// keys costs about 100 ns and allocates nothing. Map state keeps per key a
// hash map and the same entries sorted by sub key; list state one buffer of
// length-prefixed values per key. Timers are, per (owner, domain), a
// min-heap ordered by the timer's encoded id (flipped timestamp, key group,
// key: byte order is firing order) plus a set of ids for de-duplication.
//
// # Pebble storage layout
//
// Every key of keyed data begins with its key group as a big-endian u16, so
// a key-group range is a key range: a snapshot can be split, and restored
// into a task with another range, by range alone (rescaling). Values from
// MaxKeyGroups (0x8000) up are not key groups; 0xFFFF holds metadata, which
// therefore sorts after all keyed data.
//
//	kg u16 | 0x01 | state id u32 | uvarint(len(key)) | key | sub key   -> value
//	kg u16 | 0x02 | owner u32 | domain u8 | ts u64 | key              -> (empty)
//	0xFFFF | 0x00                                                      -> "weir-state-v1"
//	0xFFFF | 0x01 | uvarint(len(operator)) | operator | name          -> kind u8 | state id u32
//
// All integers are big-endian; ts is the timestamp with its sign bit
// flipped (uint64(ts) ^ 1<<63), so timers sort by timestamp, negative ones
// first, then by key. The key's length prefix makes the cell prefix of
// (state, kg, key) prefix-free: key "a" with sub key "bc" and key "ab" with
// sub key "c" can never meet in a scan or a point read; the raw sub key
// after it makes a key's map entries sort by sub key, so a map scan is a
// prefix iteration. Value state uses the prefix alone. A list is one key
// whose value is a sequence of uvarint(len) | value entries: Append writes a
// merge operand holding new entries and the merger "weir.list.v1"
// concatenates operands, so appending is O(1) and needs no per-list
// counter; a scan is one read. Map Clear deletes entries one by one
// (Pebble re-fragments the range tombstones of a memtable after each new
// one, so many small range deletions are slow to read past).
//
// State IDs are numbers of one backend, so the registry (operator, name) ->
// (kind, id) is stored under the metadata prefix and read at open: reopening
// a directory keeps every ID, and a new registration gets the next free
// one. The format key lets OpenPebble refuse a directory that holds
// anything else.
//
// # Pebble performance decisions
//
// A raw Pebble Get+Set costs 2-3 µs here (memtable skiplist search and
// insert, commit pipeline); the keyed count needs about 1 µs or less per
// record. So the backend keeps three write-back caches in memory and writes
// Pebble only when they overflow, before a scan that needs the store, and
// on Flush and Close:
//
//   - Cells (PebbleOptions.CacheBytes): value and map cells by storage key,
//     with CLOCK eviction (a hit sets a bit; no list to reorder). Absent
//     cells are cached too, so misses repeat cheaply. A cached Get+Put costs
//     about 120 ns with no allocation; a changed cell reaches Pebble once per
//     eviction or Flush however often it changed. A map Scan or Clear first
//     writes back the changed cells of that state.
//   - List appends: a list's cell collects the entries appended since its
//     last write-back, written as one merge operand. A list cleared, or read
//     and found empty, is known to have nothing in Pebble, so a window's
//     append, scan and clear cycle usually never touches Pebble.
//   - Timers (PebbleOptions.TimerCacheSize): per (owner, domain, key group)
//     the earliest timers are cached in sorted order, and a heap orders key
//     groups by their earliest timer (as Flink's RocksDB timer service does).
//     NextTimer reads only memory. A timer registered into a cache is
//     written to Pebble only if it leaves the cache unfired (pushed out by
//     earlier ones) or at Flush; most timers fire first and cost Pebble
//     nothing. A cache that empties while Pebble holds more timers of its
//     group is refilled by one iteration that starts after the last removed
//     timer, skipping the tombstones of fired ones.
//
// All writes go to one indexed batch, which is also the read view (reads
// and iterators see the batch over the database), committed with NoSync
// once it holds PebbleOptions.BatchBytes. The write-ahead log is off by
// default: local state is rebuilt from the last checkpoint after a crash,
// so durability comes from checkpoints, not the WAL; Close flushes the
// memtables so that a closed directory reopens complete. Point reads are
// helped by bloom filters and a block cache of BlockCacheBytes.
//
// A checkpoint must call (*Pebble).Flush before it snapshots the store:
// only then is everything held in memory in Pebble.
package state

// Package state owns keyed state and timers: the Backend interface, an
// in-memory backend (Memory) and a Pebble backend (Pebble), the conformance
// suite both pass (package statetest), and their snapshots: native Pebble
// checkpoints and the canonical stream (Export, Import) that restores into
// any backend and any key-group range.
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
// Every state keeps one group object per key group it has cells in (the
// unit of copy-on-write, see Snapshots). In a group, value state is a Go
// map keyed by key; keys of up to 15 bytes are map keys by value (a
// 16-byte array, hashed and compared inside the map's memory), longer ones
// strings. Cells are boxed so that Put overwrites them in place, with
// values up to 16 bytes stored in the box. The cell the last Get found is
// remembered, so the Put of a read-modify-write skips the second lookup.
// Together a Get+Put over 100k keys costs about 80-100 ns and allocates
// nothing. Map state keeps per key a hash map and the same entries sorted
// by sub key; list state one buffer of length-prefixed values per key.
// Timers are, per (owner, domain), a min-heap ordered by the timer's
// encoded id (flipped timestamp, key group, key: byte order is firing
// order) plus, per key group, a set of ids for de-duplication.
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
// only then is everything held in memory in Pebble. Snapshot does so.
//
// # Snapshots
//
// Snapshot (snapshot.go) is the synchronous part of a checkpoint; the
// Snapshot it returns is read by another goroutine while the task goes on.
//
// Memory snapshots are copy-on-write per key group. Cells live in one
// group object per (state, key group) and timer ids in one set per (timer
// queue, key group); Snapshot copies only the slices of group pointers
// (1.5-4 µs for 1M keys in 128 key groups) and increments a generation
// counter. A write to a group of an older generation first copies the
// group's maps (pointers, not cells); a write to a value box, per-key map
// or list of an older generation replaces that one object by a copy (a
// list copy shares the buffer: appends write past every length a snapshot
// has seen). So a cell is copied at most once per snapshot, and only if it
// is written while the snapshot is alive: that first write of a value
// costs a box allocation and a map assignment more than the usual in-place
// update (about 200 ns instead of 90 for the keyed count's Get+Put). With
// no snapshot alive (an atomic counter, the only variable shared with
// exporting goroutines) nothing is copied at all, and the hot path pays
// one generation compare. Several snapshots may be alive at once.
//
// Pebble snapshots flush the write-back caches into the store and take a
// Pebble snapshot (a sequence number) that Export iterates. The native
// form also flushes the memtables and makes a Pebble checkpoint in
// dir/pebble: its sstables are hard links to the store's (immutable, so
// NativeFile.Shared: a name always means the same bytes within one store
// instance; another instance, e.g. one restored from a checkpoint, may
// reuse a number for other bytes, so uploads must be keyed by instance as
// well), its MANIFEST, OPTIONS and marker files are small copies, and its
// WAL files are empty because the memtables were flushed. To restore, put
// every NativeFile under its Name in one empty directory and call
// OpenPebble on it; the registry (and so every state ID) comes back with
// the data. Release closes the Pebble snapshot and deletes dir/pebble (not
// dir). Closing the backend while snapshots are alive is allowed: Close
// returns at once and the last Release closes the store.
//
// # Canonical snapshot stream
//
// Export writes, and Import reads, a backend-independent encoding of the
// keyed state and timers of a key-group range (format.go). Version 1:
//
//	stream  = magic "WEIRSNAP" | header block | data block* | trailer block
//	block   = type u8 | length u32 | payload (length bytes) | crc32c u32
//
// The CRC (Castagnoli) covers type, length and payload. Integers are
// big-endian; uvarint is encoding/binary's; str and bytes are uvarint(len)
// followed by that many bytes.
//
//	header  ('H') = version u16 (1) | kg start u32 | kg end u32 (half-open)
//	                | uvarint(n) | n × (operator str | name str | kind u8)
//	                | uvarint(m) | m × timer owner operator str
//	data    ('D') = kg u16 | cells u32 | lists u32 | timers u32 | record*
//	trailer ('T') = data blocks u64 | cells u64 | lists u64 | timers u64
//	                | data payload bytes u64
//
//	cell  = 0x01 | state uvarint | key bytes | sub bytes | value bytes
//	list  = 0x02 | state uvarint | key bytes | items bytes
//	timer = 0x03 | owner uvarint | domain u8 | ts u64 (sign bit flipped) | key bytes
//
// States are named by (operator, name, kind) and timer owners by operator
// name, both by their index in the header, never by backend ids or owner
// numbers: a stream restores into any backend and any task layout. A
// value cell has an empty sub key; a map cell per entry. A list's items
// are uvarint(len) | value entries in append order; a long list is split
// over several records of the same key (about 128 KiB each), which the
// reader appends in order. A data block holds records of one key group
// only, and blocks come in ascending key-group order (a group may span
// several blocks); within a group records come in any order. So a reader
// can skip key groups outside its range by the block header alone, and
// rescaling reads the same stream into several tasks.
//
// Import checks everything it reads: the magic, each block's CRC and
// length (at most 1 GiB), the block order, every record (indices, kinds,
// domains, list framing), the per-block counts against the records, and
// the trailer's totals against the whole stream, including the blocks it
// skips. Any failure, truncation included, is a *CorruptError (wrapping
// ErrCorrupt) with the byte offset of the damaged block or record; a valid
// stream of another version is ErrStreamVersion. A stream is complete only
// with its trailer: the Pebble backend imports by writing sstables and
// ingests them only after the trailer checked out, so a failed import
// leaves its data untouched (registrations excepted); the Memory backend
// writes as it reads and must be discarded after a failed import.
package state

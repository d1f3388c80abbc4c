package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/weirstream/weir/abi"
)

// pebbleFormat is stored under the format key of every store; a directory
// holding something else is refused rather than misread.
const pebbleFormat = "weir-state-v1"

// Pebble is a Backend on a Pebble LSM store in one directory. It keeps a
// write-back cache of value and map cells and the earliest timers of each
// key group in memory, and all pending writes in one indexed batch that is
// also its read view (see doc.go for the layout and the reasons).
//
// Like every Backend it is used by one goroutine and does no locking.
type Pebble struct {
	db     *pebble.DB
	dir    string
	opts   PebbleOptions
	po     *pebble.Options // with Pebble's defaults: Import builds sstables with them
	wb     *pebble.Batch   // indexed: every read and write goes through it
	iters  int             // open iterators on wb; commits wait for 0
	reg    registry
	cells  cellCache
	dirty  [][]*cell // by state ID: cells changed since they were last written
	timers map[timerQueueID]*pebbleTimerQueue
	closed bool
	firing bool

	// Scratch buffers, reused so that the hot paths do not allocate. fireKey
	// is separate from tbuf so that a FireTimers callback may pass the key
	// it was given back to RegisterTimer.
	kbuf    []byte // storage key of the current call
	vbuf    []byte // encoded list operand
	wbuf    []byte // key of a cell being written back
	tbuf    []byte // timer storage key
	fireKey []byte
	scanBuf []byte // Scan results, valid until the next call
	keysBuf []byte // keys collected by Clear
	lensBuf []int  // their lengths
	gbuf    []byte // value read by getValue

	// Live snapshots (pebble_snapshot.go) read db from other goroutines:
	// Close leaves closing db to the last Release.
	snapMu       sync.Mutex
	snaps        int  // snapshots not released
	closePending bool // Close ran while snaps > 0
}

var _ Backend = (*Pebble)(nil)

// OpenPebble opens (creating if needed) the state store in dir.
func OpenPebble(dir string, opts PebbleOptions) (*Pebble, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	cache := pebble.NewCache(opts.BlockCacheBytes)
	defer cache.Unref() // the DB holds its own reference
	po := &pebble.Options{
		Cache:              cache,
		MemTableSize:       uint64(opts.MemTableBytes),
		DisableWAL:         !opts.EnableWAL,
		Merger:             listMerger,
		Logger:             pebbleLogger{opts.Logger},
		FormatMajorVersion: pebble.FormatNewest,
		// Every native snapshot uploads the MANIFEST whole: roll it over
		// (a new one starts with a snapshot of the current version, a few
		// KiB) long before Pebble's default of 128 MiB.
		MaxManifestFileSize: 1 << 20,
	}
	// Value separation: values of 256 bytes and more go to blob files that
	// compactions do not rewrite. With uniformly random updates leveled
	// compactions rewrite about ten times the changed bytes into new
	// sstables, and an incremental checkpoint uploads every new file: blob
	// files cut that (measured in docs/BENCHMARKS.md) at some cost in disk
	// space. Blob files are immutable and shared across checkpoints like
	// sstables.
	po.Experimental.ValueSeparationPolicy = func() pebble.ValueSeparationPolicy {
		return pebble.ValueSeparationPolicy{
			Enabled: true, MinimumSize: 256, MaxBlobReferenceDepth: 10,
			RewriteMinimumAge: 10 * time.Second, TargetGarbageRatio: 0.2,
		}
	}
	// Bloom filters let point reads skip sstables that do not hold the key
	// (the other levels inherit L0's policy).
	po.Levels[0].FilterPolicy = bloom.FilterPolicy(10)
	po.EnsureDefaults()
	db, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("state: open pebble store %s: %w", dir, err)
	}
	p := &Pebble{
		db:     db,
		dir:    dir,
		opts:   opts,
		po:     po,
		wb:     db.NewIndexedBatch(),
		reg:    newRegistry(),
		cells:  newCellCache(opts.CacheBytes),
		timers: make(map[timerQueueID]*pebbleTimerQueue),
	}
	if err := p.load(); err != nil {
		_ = p.wb.Close()
		_ = db.Close()
		return nil, fmt.Errorf("state: open pebble store %s: %w", dir, err)
	}
	return p, nil
}

// load checks the format key, reads the registry and builds the timer caches.
func (p *Pebble) load() error {
	fk := []byte{metaGroup >> 8, metaGroup & 0xFF, metaFormat}
	v, closer, err := p.wb.Get(fk)
	switch {
	case err == nil:
		format := string(v)
		_ = closer.Close()
		if format != pebbleFormat {
			return fmt.Errorf("store format %q, want %q", format, pebbleFormat)
		}
	case errors.Is(err, pebble.ErrNotFound):
		empty, err := p.isEmpty()
		if err != nil {
			return err
		}
		if !empty {
			return fmt.Errorf("not a weir state store (no format key %q)", pebbleFormat)
		}
		if err := p.wb.Set(fk, []byte(pebbleFormat), nil); err != nil {
			return err
		}
	default:
		return fmt.Errorf("read format key: %w", err)
	}
	if err := p.loadRegistry(); err != nil {
		return err
	}
	return p.loadTimers()
}

func (p *Pebble) isEmpty() (bool, error) {
	it, err := p.wb.NewIter(nil)
	if err != nil {
		return false, err
	}
	empty := !it.First()
	return empty, it.Close()
}

func (p *Pebble) loadRegistry() error {
	prefix := []byte{metaGroup >> 8, metaGroup & 0xFF, metaRegistry}
	it, err := p.wb.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return err
	}
	for valid := it.First(); valid; valid = it.Next() {
		k, v := it.Key()[len(prefix):], it.Value()
		n, w := binary.Uvarint(k)
		if w <= 0 || uint64(len(k)-w) < n || len(v) != 5 {
			_ = it.Close()
			return fmt.Errorf("corrupt registry entry %x = %x", it.Key(), v)
		}
		operator, name := string(k[w:w+int(n)]), string(k[w+int(n):])
		kind, id := abi.StateKind(v[0]), ID(binary.BigEndian.Uint32(v[1:]))
		if checkKind(kind) != nil {
			_ = it.Close()
			return fmt.Errorf("registry entry of %q/%q has kind %d", operator, name, kind)
		}
		p.reg.add(operator, name, kind, id)
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("read registry: %w", err)
	}
	p.dirty = make([][]*cell, len(p.reg.kinds))
	return nil
}

// Register implements Backend. A new registration is written to the store
// with the next free ID, so that reopening the directory keeps IDs.
func (p *Pebble) Register(operator, name string, kind abi.StateKind) (ID, error) {
	if p.closed {
		return 0, ErrClosed
	}
	id, ok, err := p.reg.lookup(operator, name, kind)
	if err != nil || ok {
		return id, err
	}
	id = p.reg.next()
	var v [5]byte
	v[0] = byte(kind)
	binary.BigEndian.PutUint32(v[1:], uint32(id))
	if err := p.wb.Set(appendRegistryKey(nil, operator, name), v[:], nil); err != nil {
		return 0, fmt.Errorf("state: register %q of operator %q: %w", name, operator, err)
	}
	p.reg.add(operator, name, kind, id)
	p.dirty = append(p.dirty, nil)
	return id, p.maybeCommit()
}

// check validates a call on (id, kg), returns the state's kind and leaves
// the cell prefix of (id, kg, key) in p.kbuf.
func (p *Pebble) check(id ID, kg int, key []byte) (abi.StateKind, error) {
	if p.closed {
		return 0, ErrClosed
	}
	kind, err := p.reg.kind(id)
	if err != nil {
		return 0, err
	}
	if uint(kg) >= MaxKeyGroups {
		return 0, keyGroupError(kg)
	}
	p.kbuf = appendStatePrefix(p.kbuf[:0], id, kg, key)
	return kind, nil
}

// Get implements Backend. The value returned is the cached copy.
func (p *Pebble) Get(id ID, kg int, key, sub []byte) ([]byte, bool, error) {
	kind, err := p.check(id, kg, key)
	if err != nil {
		return nil, false, err
	}
	if err := cellKind("Get", id, kind, sub); err != nil {
		return nil, false, err
	}
	p.kbuf = append(p.kbuf, sub...)
	c, err := p.cell(id, p.kbuf)
	if err != nil {
		return nil, false, err
	}
	if !c.present {
		return nil, false, nil
	}
	return c.val, true, nil
}

// cellKind checks that a point operation applies to kind.
func cellKind(op string, id ID, kind abi.StateKind, sub []byte) error {
	switch {
	case kind == abi.StateMap:
		return nil
	case kind == abi.StateValue && len(sub) == 0:
		return nil
	case kind == abi.StateValue:
		return wrongKind(op+" with a sub key", id, kind)
	}
	return wrongKind(op, id, kind)
}

// Put implements Backend: the cell is updated in the cache and written to
// Pebble later (write-back).
func (p *Pebble) Put(id ID, kg int, key, sub, value []byte) error {
	kind, err := p.check(id, kg, key)
	if err != nil {
		return err
	}
	if err := cellKind("Put", id, kind, sub); err != nil {
		return err
	}
	p.kbuf = append(p.kbuf, sub...)
	if c := p.cells.get(p.kbuf); c != nil {
		p.cells.setValue(c, value)
		c.present = true
		p.markDirty(c)
		return nil
	}
	// A blind write: the store may or may not hold the key.
	c, err := p.insertCell(id, p.kbuf, value, true, true)
	if err != nil {
		return err
	}
	p.markDirty(c)
	return nil
}

// Delete implements Backend.
func (p *Pebble) Delete(id ID, kg int, key, sub []byte) error {
	kind, err := p.check(id, kg, key)
	if err != nil {
		return err
	}
	if err := cellKind("Delete", id, kind, sub); err != nil {
		return err
	}
	p.kbuf = append(p.kbuf, sub...)
	return p.deleteCell(p.kbuf)
}

func (p *Pebble) deleteCell(key []byte) error {
	if c := p.cells.get(key); c != nil {
		if c.present {
			p.cells.setValue(c, nil)
			c.present = false
			p.markDirty(c)
		}
		return nil
	}
	if err := p.wb.Delete(key, nil); err != nil {
		return fmt.Errorf("state: delete %x: %w", key, err)
	}
	return p.maybeCommit()
}

// Append implements Backend. The entry (uvarint length, value) is added to
// the list's cell: appends are kept in memory until the cell is written
// back, then written as one merge operand that listMerger concatenates to
// the stored entries. Either way an append is O(1).
func (p *Pebble) Append(id ID, kg int, key, value []byte) error {
	kind, err := p.check(id, kg, key)
	if err != nil {
		return err
	}
	if kind != abi.StateList {
		return wrongKind("Append", id, kind)
	}
	c := p.cells.get(p.kbuf)
	if c == nil {
		// Pebble may hold earlier entries: they stay there.
		if c, err = p.insertListCell(id, p.kbuf, true); err != nil {
			return err
		}
	}
	p.vbuf = binary.AppendUvarint(p.vbuf[:0], uint64(len(value)))
	p.vbuf = append(p.vbuf, value...)
	p.cells.appendValue(c, p.vbuf)
	p.markDirty(c)
	return nil
}

// Scan implements Backend. Entries are copied to a buffer owned by the
// backend, so the slices passed to fn stay valid until the next call. fn
// must not call the backend.
func (p *Pebble) Scan(id ID, kg int, key []byte, fn func(sub, value []byte) error) error {
	kind, err := p.check(id, kg, key)
	if err != nil {
		return err
	}
	switch kind {
	case abi.StateValue:
		c, err := p.cell(id, p.kbuf)
		if err != nil || !c.present {
			return err
		}
		return fn(nil, c.val)
	case abi.StateList:
		// Stored entries (if the store may have any), then pending ones.
		p.scanBuf = p.scanBuf[:0]
		c := p.cells.get(p.kbuf)
		if c == nil || c.inStore {
			v, found, err := p.getValue(p.kbuf)
			if err != nil {
				return fmt.Errorf("state: scan list state %d: %w", id, err)
			}
			p.scanBuf = append(p.scanBuf, v...)
			if c == nil {
				if c, err = p.insertListCell(id, p.kbuf, found); err != nil {
					return err
				}
			}
		}
		p.scanBuf = append(p.scanBuf, c.val...)
		return scanList(p.scanBuf, fn)
	}
	// Map state: write the state's changed cells so that the iterator sees them.
	if err := p.writeDirty(id); err != nil {
		return err
	}
	it, err := p.newIter(p.kbuf)
	if err != nil {
		return err
	}
	defer p.closeIter(it)
	n := len(p.kbuf)
	p.scanBuf = p.scanBuf[:0]
	for valid := it.First(); valid; valid = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("state: scan map state %d: %w", id, err)
		}
		start := len(p.scanBuf)
		p.scanBuf = append(p.scanBuf, it.Key()[n:]...)
		mid := len(p.scanBuf)
		p.scanBuf = append(p.scanBuf, v...)
		end := len(p.scanBuf)
		if err := fn(p.scanBuf[start:mid:mid], p.scanBuf[mid:end:end]); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("state: scan map state %d: %w", id, err)
	}
	return nil
}

// Clear implements Backend.
func (p *Pebble) Clear(id ID, kg int, key []byte) error {
	kind, err := p.check(id, kg, key)
	if err != nil {
		return err
	}
	switch kind {
	case abi.StateValue:
		return p.deleteCell(p.kbuf)
	case abi.StateList:
		c := p.cells.get(p.kbuf)
		if c == nil {
			// Remember that the list is empty: appends until the next
			// write-back then need no store at all.
			if c, err = p.insertListCell(id, p.kbuf, true); err != nil {
				return err
			}
		}
		p.cells.setValue(c, nil)
		c.dirty = false // nothing pending; a stale dirty-list entry is skipped
		if c.inStore {
			c.inStore = false
			if err := p.wb.Delete(p.kbuf, nil); err != nil {
				return fmt.Errorf("state: clear list state %d: %w", id, err)
			}
			return p.maybeCommit()
		}
		return nil
	}
	// Map state: point deletions of every entry, not a range deletion:
	// Pebble re-fragments the range tombstones of a memtable after each new
	// one, which makes frequent small range deletions expensive to read past.
	if err := p.writeDirty(id); err != nil {
		return err
	}
	it, err := p.newIter(p.kbuf)
	if err != nil {
		return err
	}
	p.keysBuf, p.lensBuf = p.keysBuf[:0], p.lensBuf[:0]
	for valid := it.First(); valid; valid = it.Next() {
		p.keysBuf = append(p.keysBuf, it.Key()...)
		p.lensBuf = append(p.lensBuf, len(it.Key()))
	}
	err = it.Error()
	p.closeIter(it)
	if err != nil {
		return fmt.Errorf("state: clear map state %d: %w", id, err)
	}
	b := p.keysBuf
	for _, n := range p.lensBuf {
		k := b[:n]
		b = b[n:]
		if err := p.wb.Delete(k, nil); err != nil {
			return fmt.Errorf("state: clear map state %d: %w", id, err)
		}
		if c := p.cells.get(k); c != nil {
			// Written (writeDirty above) and now deleted in the batch.
			p.cells.setValue(c, nil)
			c.present, c.inStore = false, false
		}
	}
	return p.maybeCommit()
}

// newIter opens an iterator on wb over the keys that start with prefix.
func (p *Pebble) newIter(prefix []byte) (*pebble.Iterator, error) {
	it, err := p.wb.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, fmt.Errorf("state: iterate %x: %w", prefix, err)
	}
	p.iters++
	return it, nil
}

func (p *Pebble) closeIter(it *pebble.Iterator) {
	_ = it.Close() // errors were reported by the iteration
	p.iters--
}

// maybeCommit commits wb once it holds BatchBytes, unless an iterator is
// open on it.
func (p *Pebble) maybeCommit() error {
	if p.wb.Len() < p.opts.BatchBytes || p.iters > 0 {
		return nil
	}
	return p.commit()
}

func (p *Pebble) commit() error {
	if p.wb.Empty() {
		return nil
	}
	if err := p.wb.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("state: commit %d bytes to pebble store %s: %w", p.wb.Len(), p.dir, err)
	}
	p.wb.Reset()
	return nil
}

// Flush writes every change held in memory (cached cells and timers, the
// pending batch) to Pebble; it does not sync or flush memtables. A checkpoint calls
// it before it snapshots the store.
func (p *Pebble) Flush() error {
	if p.closed {
		return ErrClosed
	}
	for id := range p.dirty {
		if err := p.writeDirty(ID(id)); err != nil {
			return err
		}
	}
	if err := p.writePendingTimers(); err != nil {
		return err
	}
	return p.commit()
}

// Close implements Backend: it writes everything, flushes the memtables
// (without a WAL nothing else would keep them) and closes the store. If
// snapshots are still alive, the store is closed by the last Release (and
// the directory stays locked until then): a failing task need not wait for
// its uploads.
func (p *Pebble) Close() error {
	if p.closed {
		return nil
	}
	err := p.Flush()
	if err == nil && !p.opts.EnableWAL {
		err = p.db.Flush()
	}
	p.closed = true
	err = errors.Join(err, p.wb.Close())
	p.snapMu.Lock()
	p.closePending = p.snaps > 0
	deferred := p.closePending
	p.snapMu.Unlock()
	if !deferred {
		err = errors.Join(err, p.db.Close())
	}
	p.cells = cellCache{}
	p.dirty, p.timers = nil, nil
	if err != nil {
		return fmt.Errorf("state: close pebble store %s: %w", p.dir, err)
	}
	return nil
}

// getValue reads key through wb into p.gbuf; found=false if absent. The
// value is valid until the next getValue (a batch commit may reuse the
// memory Pebble returned, so it is copied at once).
func (p *Pebble) getValue(key []byte) (val []byte, found bool, err error) {
	v, closer, err := p.wb.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("state: read %x: %w", key, err)
	}
	p.gbuf = append(p.gbuf[:0], v...)
	return p.gbuf, true, closer.Close()
}

package state

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/cockroachdb/pebble/v2/objstorage"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/weirstream/weir/abi"
)

// Import into Pebble builds sstables and ingests them. Writing the records
// through the backend would cost a memtable insertion each (about 1 µs);
// an sstable writer takes sorted keys at disk speed, and ingestion links
// the files into the LSM. The stream comes in ascending key groups, and
// the key group is the first part of every storage key, so only one key
// group's records are buffered and sorted at a time; the files are written
// in key order and never overlap.
//
// Nothing reaches the store before the trailer has been verified: the
// files are ingested by finish and deleted by abort. Lists are written as
// merge operands (listMerger appends them to what the store holds), cells
// and timers as sets, exactly what the Backend calls would have done.

// importFileBytes is the size after which a new sstable is started.
const importFileBytes = 256 << 20

type pebbleImport struct {
	p     *Pebble
	dir   string // staging directory inside the store's (ingestion links)
	files []string
	w     *sstable.Writer
	wf    *abortable
	wsize int64

	kg    int // the key group buffered in ents, -1 for none
	arena []byte
	ents  []importEntry
	order []importOrder // parallel to ents until sorted
	tmp   []importOrder // scratch of the sort
}

// importEntry is a buffered record: key and value are arena offsets (the
// value follows the key). Its index in ents is its arrival order, which
// decides between records of the same key (later cells win, list items
// concatenate in order).
type importEntry struct {
	k0, k1, v1 uint32
	merge      bool
}

// importOrder is what the sort moves: an entry's index and its key's
// bytes 2 to 17 (after the key group, which all entries share), zero
// padded. Comparing these settles most comparisons without touching the
// arena, and 24 bytes move faster than the entries.
type importOrder struct {
	abbr [2]uint64
	i    uint32
}

// maxImportGroup bounds the buffered records of one key group (arena
// offsets are 32 bits).
const maxImportGroup uint64 = 1<<32 - 1

// abbreviate returns the sort abbreviation of a storage key.
func abbreviate(k []byte) [2]uint64 {
	var b [16]byte
	if len(k) > 2 {
		copy(b[:], k[2:])
	}
	return [2]uint64{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func (p *Pebble) newImport() (*pebbleImport, error) {
	if p.closed {
		return nil, ErrClosed
	}
	dir, err := os.MkdirTemp(p.dir, "weir-import-")
	if err != nil {
		return nil, fmt.Errorf("state: import: staging directory: %w", err)
	}
	return &pebbleImport{p: p, dir: dir, kg: -1}, nil
}

func (s *pebbleImport) register(operator, name string, kind abi.StateKind) (ID, error) {
	return s.p.Register(operator, name, kind)
}

// add buffers a record of key group kg, writing the previous group first.
func (s *pebbleImport) add(kg int, key, val []byte, merge bool) error {
	if kg != s.kg {
		if err := s.writeGroup(); err != nil {
			return err
		}
		s.kg = kg
	}
	if uint64(len(s.arena))+uint64(len(key))+uint64(len(val)) > maxImportGroup {
		return fmt.Errorf("state: import: key group %d holds more than %d bytes", kg, maxImportGroup)
	}
	k0 := len(s.arena)
	s.arena = append(s.arena, key...)
	k1 := len(s.arena)
	s.arena = append(s.arena, val...)
	s.order = append(s.order, importOrder{abbr: abbreviate(key), i: uint32(len(s.ents))})
	s.ents = append(s.ents, importEntry{k0: uint32(k0), k1: uint32(k1), v1: uint32(len(s.arena)), merge: merge})
	return nil
}

func (s *pebbleImport) cell(id ID, kg int, key, sub, value []byte) error {
	k := appendStatePrefix(s.p.kbuf[:0], id, kg, key)
	s.p.kbuf = append(k, sub...)
	return s.add(kg, s.p.kbuf, value, false)
}

func (s *pebbleImport) list(id ID, kg int, key, items []byte) error {
	s.p.kbuf = appendStatePrefix(s.p.kbuf[:0], id, kg, key)
	return s.add(kg, s.p.kbuf, items, true)
}

func (s *pebbleImport) timer(t Timer) error {
	k := appendTimerPrefix(s.p.tbuf[:0], t.KeyGroup, t.Owner, uint8(t.Domain))
	k = binary.BigEndian.AppendUint64(k, flipTimestamp(t.Timestamp))
	s.p.tbuf = append(k, t.Key...)
	return s.add(t.KeyGroup, s.p.tbuf, nil, false)
}

// writeGroup sorts the buffered group and appends it to the sstable.
func (s *pebbleImport) writeGroup() error {
	if len(s.ents) == 0 {
		return nil
	}
	a, ents := s.arena, s.ents
	key := func(o importOrder) []byte { return a[ents[o.i].k0:ents[o.i].k1] }
	s.tmp = sortImportOrder(s.order, s.tmp, func(x, y importOrder) int {
		return cmp.Or(cmp.Compare(x.abbr[1], y.abbr[1]), bytes.Compare(key(x), key(y)), cmp.Compare(x.i, y.i))
	})
	if s.w == nil {
		if err := s.openFile(); err != nil {
			return err
		}
	}
	var merged []byte
	for i := 0; i < len(s.order); {
		k := key(s.order[i])
		j := i + 1
		for j < len(s.order) && s.order[j].abbr == s.order[i].abbr && bytes.Equal(key(s.order[j]), k) {
			j++
		}
		var err error
		if e := &ents[s.order[i].i]; e.merge {
			merged = merged[:0]
			for _, o := range s.order[i:j] {
				merged = append(merged, a[ents[o.i].k1:ents[o.i].v1]...)
			}
			err = s.w.Merge(k, merged)
			s.wsize += int64(len(k) + len(merged))
		} else {
			last := &ents[s.order[j-1].i]
			err = s.w.Set(k, a[last.k1:last.v1])
			s.wsize += int64(len(k)) + int64(last.v1-last.k1)
		}
		if err != nil {
			return fmt.Errorf("state: import: write sstable: %w", err)
		}
		i = j
	}
	s.ents, s.order, s.arena = s.ents[:0], s.order[:0], s.arena[:0]
	if s.wsize >= importFileBytes {
		return s.closeFile()
	}
	return nil
}

func (s *pebbleImport) openFile() error {
	path := filepath.Join(s.dir, fmt.Sprintf("%06d.sst", len(s.files)))
	f, err := vfs.Default.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("state: import: %w", err)
	}
	opts := s.p.po.MakeWriterOptions(0, s.p.db.FormatMajorVersion().MaxTableFormat())
	s.wf = &abortable{Writable: objstorageprovider.NewFileWritable(f)}
	s.w = sstable.NewWriter(s.wf, opts)
	s.files = append(s.files, path)
	s.wsize = 0
	return nil
}

// closeFile finishes (and syncs) the current sstable.
func (s *pebbleImport) closeFile() error {
	w := s.w
	s.w = nil
	if err := w.Close(); err != nil {
		return fmt.Errorf("state: import: finish sstable %s: %w", s.files[len(s.files)-1], err)
	}
	return nil
}

// finish ingests the sstables. The write-back caches are written first
// (the import comes after what the task did) and dropped afterwards, as
// the ingested data bypassed them; the timer caches are rebuilt from the
// store.
func (s *pebbleImport) finish() error {
	if err := s.writeGroup(); err != nil {
		return err
	}
	if s.w != nil {
		if err := s.closeFile(); err != nil {
			return err
		}
	}
	p := s.p
	defer func() { _ = os.RemoveAll(s.dir) }()
	if err := p.Flush(); err != nil {
		return err
	}
	if len(s.files) == 0 {
		return nil
	}
	if err := p.db.Ingest(context.Background(), s.files); err != nil {
		return fmt.Errorf("state: import: ingest %d sstables into %s: %w", len(s.files), p.dir, err)
	}
	p.cells = newCellCache(p.opts.CacheBytes)
	p.dirty = make([][]*cell, len(p.reg.kinds))
	p.timers = make(map[timerQueueID]*pebbleTimerQueue)
	if err := p.loadTimers(); err != nil {
		return fmt.Errorf("state: import: reload timers of %s: %w", p.dir, err)
	}
	return nil
}

func (s *pebbleImport) abort() {
	if s.w != nil {
		s.wf.aborted = true
		_ = s.w.Close()
		s.w = nil
	}
	_ = os.RemoveAll(s.dir)
}

// abortable lets abort close an sstable writer without the sync of
// Finish: the file is deleted anyway.
type abortable struct {
	objstorage.Writable
	aborted bool
}

func (a *abortable) Finish() error {
	if a.aborted {
		a.Abort()
		return errors.New("aborted")
	}
	return a.Writable.Finish()
}

// sortImportOrder sorts a by abbr[0] with a least-significant-digit radix
// sort (stable, so records of one key stay in arrival order), then each run
// of equal abbr[0] with rest, which must order by abbr[1], key and index.
// A comparison sort of a key group's records cost half of an import; the
// radix sort is about eight times faster. Bytes that are the same in every
// record (the key space, mostly the state id) cost one counting pass. tmp
// is scratch space, returned for reuse.
func sortImportOrder(a, tmp []importOrder, rest func(x, y importOrder) int) []importOrder {
	var count [8][256]int
	for _, x := range a {
		for d := range count {
			count[d][byte(x.abbr[0]>>(8*d))]++
		}
	}
	tmp = slices.Grow(tmp[:0], len(a))[:len(a)]
	for d := range count {
		c := &count[d]
		if c[byte(a[0].abbr[0]>>(8*d))] == len(a) {
			continue // one value: nothing to order by
		}
		pos := 0
		for i, n := range c {
			c[i] = pos
			pos += n
		}
		for _, x := range a {
			b := byte(x.abbr[0] >> (8 * d))
			tmp[c[b]] = x
			c[b]++
		}
		copy(a, tmp)
	}
	for i := 0; i < len(a); {
		j := i + 1
		for j < len(a) && a[j].abbr[0] == a[i].abbr[0] {
			j++
		}
		if j-i > 1 {
			slices.SortFunc(a[i:j], rest)
		}
		i = j
	}
	return tmp
}

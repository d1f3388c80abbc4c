package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/weirstream/weir/abi"
)

// nativeDirName is the subdirectory of a snapshot's scratch directory that
// holds the Pebble checkpoint (Checkpoint wants a directory that does not
// exist yet).
const nativeDirName = "pebble"

// Snapshot implements Snapshotter. The synchronous part writes the
// write-back caches to Pebble (Flush), takes a Pebble snapshot for Export,
// and for FormNative also flushes the memtables to sstables and makes a
// Pebble checkpoint in dir/pebble: sstables are hard links; MANIFEST,
// OPTIONS, marker and (empty) WAL files are copies. Its cost is the flush
// of what the caches and memtables hold, not the size of the state.
func (p *Pebble) Snapshot(form SnapshotForm, dir string) (Snapshot, error) {
	if p.closed {
		return nil, ErrClosed
	}
	if form != FormCanonical && form != FormNative {
		return nil, fmt.Errorf("state: snapshot form %d: %w", form, abi.ErrInvalid)
	}
	if form == FormNative && dir == "" {
		return nil, fmt.Errorf("state: native snapshot needs a scratch directory: %w", abi.ErrInvalid)
	}
	if err := p.Flush(); err != nil {
		return nil, fmt.Errorf("state: snapshot: %w", err)
	}
	s := &pebbleSnapshot{p: p, infos: p.reg.infos(), kinds: slices.Clone(p.reg.kinds)}
	s.index = make([]uint32, len(s.kinds))
	n := uint32(0)
	for id, k := range s.kinds {
		if k != 0 {
			s.index[id] = n
			n++
		}
	}
	// Queues are never removed, so their owners include every owner with
	// timers in the store.
	for qid := range p.timers {
		s.owners = append(s.owners, qid.owner)
	}
	slices.Sort(s.owners)
	s.owners = slices.Compact(s.owners)
	if form == FormNative {
		// Flush the memtables even with the WAL on: the checkpoint would
		// copy the WAL instead, synchronously, and the WAL is uploaded with
		// every checkpoint while a flushed sstable is uploaded once.
		if err := p.db.Flush(); err != nil {
			return nil, fmt.Errorf("state: snapshot: flush memtables of %s: %w", p.dir, err)
		}
		ck := filepath.Join(dir, nativeDirName)
		if err := p.db.Checkpoint(ck, pebble.WithFlushedWAL()); err != nil {
			return nil, fmt.Errorf("state: snapshot: checkpoint %s into %s: %w", p.dir, ck, err)
		}
		files, err := nativeFiles(ck)
		if err != nil {
			_ = os.RemoveAll(ck)
			return nil, fmt.Errorf("state: snapshot: %w", err)
		}
		s.dir, s.native = ck, files
	}
	s.snap = p.db.NewSnapshot()
	p.snapMu.Lock()
	p.snaps++
	p.snapMu.Unlock()
	return s, nil
}

// nativeFiles lists the files of a checkpoint directory. SSTs and blob
// files are immutable for the store's lifetime (Shared); MANIFEST, OPTIONS,
// marker and WAL files are per checkpoint.
func nativeFiles(dir string) ([]NativeFile, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list checkpoint %s: %w", dir, err)
	}
	files := make([]NativeFile, 0, len(ents))
	for _, e := range ents {
		if e.IsDir() {
			return nil, fmt.Errorf("checkpoint %s holds a directory %s", dir, e.Name())
		}
		info, err := e.Info()
		if err != nil {
			return nil, fmt.Errorf("list checkpoint %s: %w", dir, err)
		}
		name := e.Name()
		files = append(files, NativeFile{
			Path:   filepath.Join(dir, name),
			Name:   name,
			Size:   info.Size(),
			Shared: strings.HasSuffix(name, ".sst") || strings.HasSuffix(name, ".blob"),
		})
	}
	return files, nil
}

// pebbleSnapshot is a Pebble snapshot (for Export) and, for the native
// form, a checkpoint directory.
type pebbleSnapshot struct {
	p        *Pebble // only its snapshot count and db are used
	snap     *pebble.Snapshot
	released atomic.Bool
	infos    []StateInfo     // registered states, ID order
	kinds    []abi.StateKind // by ID (0: gap)
	index    []uint32        // header index by ID
	owners   []uint32        // timer owners, ascending
	dir      string          // checkpoint directory, "" for the canonical form
	native   []NativeFile
}

// NativeFiles implements Snapshot.
func (s *pebbleSnapshot) NativeFiles() []NativeFile { return slices.Clone(s.native) }

// States implements Snapshot.
func (s *pebbleSnapshot) States() []StateInfo { return slices.Clone(s.infos) }

// Release implements Snapshot: it closes the Pebble snapshot, removes the
// checkpoint directory (dir/pebble; dir itself is the caller's) and, if
// the backend was closed meanwhile and this was its last snapshot, closes
// the store. It is idempotent.
func (s *pebbleSnapshot) Release() error {
	if s.released.Swap(true) {
		return nil
	}
	err := s.snap.Close()
	if s.dir != "" {
		err = errors.Join(err, os.RemoveAll(s.dir))
	}
	p := s.p
	p.snapMu.Lock()
	p.snaps--
	last := p.snaps == 0 && p.closePending
	if last {
		p.closePending = false
	}
	p.snapMu.Unlock()
	if last {
		err = errors.Join(err, p.db.Close())
	}
	if err != nil {
		return fmt.Errorf("state: release snapshot of %s: %w", p.dir, err)
	}
	return nil
}

// groupBound is the first storage key of key group kg (kg may be
// MaxKeyGroups: the end of all keyed data).
func groupBound(kg int) []byte { return binary.BigEndian.AppendUint16(nil, uint16(kg)) }

// Export implements Snapshot: one iteration over the key range of kr in
// storage order (key group, cells by state ID and key, then timers).
func (s *pebbleSnapshot) Export(w io.Writer, kr abi.KeyGroupRange, owner func(uint32) string) error {
	if s.released.Load() {
		return ErrReleased
	}
	if err := checkExportRange(kr); err != nil {
		return err
	}
	names, ownerIndex, err := exportOwners(s.owners, owner)
	if err != nil {
		return err
	}
	sw := newStreamWriter(w, kr)
	if err := sw.header(s.infos, names); err != nil {
		return err
	}
	it, err := s.snap.NewIter(&pebble.IterOptions{LowerBound: groupBound(kr.Start), UpperBound: groupBound(kr.End)})
	if err != nil {
		return fmt.Errorf("state: export: %w", err)
	}
	for valid := it.First(); valid; valid = it.Next() {
		if err := s.exportKey(sw, it, ownerIndex); err != nil {
			_ = it.Close()
			return err
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return fmt.Errorf("state: export: read %s: %w", s.p.dir, err)
	}
	return sw.finish()
}

func (s *pebbleSnapshot) exportKey(sw *streamWriter, it *pebble.Iterator, ownerIndex map[uint32]uint32) error {
	k := it.Key()
	bad := func(what string) error { return fmt.Errorf("state: export: store key %x: %s", k, what) }
	if len(k) < 3 {
		return bad("too short")
	}
	kg := int(binary.BigEndian.Uint16(k))
	switch k[2] {
	case spaceState:
		if len(k) < 8 {
			return bad("too short for a cell")
		}
		id := binary.BigEndian.Uint32(k[3:7])
		n, w := binary.Uvarint(k[7:])
		if w <= 0 || uint64(len(k)-7-w) < n {
			return bad("bad key length")
		}
		key, sub := k[7+w:7+w+int(n)], k[7+w+int(n):]
		if uint64(id) >= uint64(len(s.kinds)) || s.kinds[id] == 0 {
			return bad(fmt.Sprintf("state id %d is not registered", id))
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("state: export: read %x: %w", k, err)
		}
		switch s.kinds[id] {
		case abi.StateValue:
			if len(sub) != 0 {
				return bad("value cell with a sub key")
			}
			return sw.cell(kg, s.index[id], key, nil, v)
		case abi.StateMap:
			return sw.cell(kg, s.index[id], key, sub, v)
		default:
			if len(sub) != 0 {
				return bad("list cell with a sub key")
			}
			return sw.list(kg, s.index[id], key, v)
		}
	case spaceTimer:
		if len(k) < timerPrefixLen+8 {
			return bad("too short for a timer")
		}
		owner := binary.BigEndian.Uint32(k[3:7])
		oi, ok := ownerIndex[owner]
		if !ok {
			return bad(fmt.Sprintf("timer of owner %d, which had no queue at snapshot time", owner))
		}
		ts := unflipTimestamp(binary.BigEndian.Uint64(k[timerPrefixLen:]))
		return sw.timer(kg, oi, abi.TimeDomain(k[7]), ts, k[timerPrefixLen+8:])
	}
	return bad("unknown key space")
}

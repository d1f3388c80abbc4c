package state

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync/atomic"

	"github.com/weirstream/weir/abi"
)

// Memory snapshots are copy-on-write at key-group granularity.
//
// Snapshot copies, per state and per timer queue, the slice of key-group
// pointers (O(states × key groups), no cell is touched) and increments the
// backend's generation. From then on every group of an older generation
// is shared with the snapshot: the first write to it copies the group's
// maps (pointers to the cells, not the cells) into a group of the new
// generation. Cells (value boxes, per-key maps and lists) keep the
// generation they were made in, and a write to an older cell replaces it
// by a copy, so a cell is copied at most once per snapshot and only if
// written. While no snapshot is alive (live is 0) nothing is copied: older
// objects are simply adopted into the current generation.
//
// The snapshot reads only objects the task no longer changes, so Export
// needs no locking; live, an atomic counter, is the only shared variable.

// ErrReleased is returned by the methods of a Snapshot after Release.
var ErrReleased = errors.New("state: snapshot released")

// Snapshot implements Snapshotter: the synchronous part costs one pointer
// copy per (state, key group) and (timer queue, key group); dir is not used
// (Memory has no native form).
func (m *Memory) Snapshot(form SnapshotForm, dir string) (Snapshot, error) {
	if m.closed {
		return nil, ErrClosed
	}
	if form != FormCanonical && form != FormNative {
		return nil, fmt.Errorf("state: snapshot form %d: %w", form, abi.ErrInvalid)
	}
	s := &memSnapshot{live: &m.live, infos: m.reg.infos(), data: make([]memSnapState, len(m.states))}
	for i, st := range m.states {
		s.data[i] = memSnapState{kind: st.kind, groups: slices.Clone(st.groups)}
	}
	for qid, q := range m.timers {
		s.timers = append(s.timers, memSnapTimers{qid: qid, sets: slices.Clone(q.sets)})
	}
	slices.SortFunc(s.timers, func(a, b memSnapTimers) int {
		return cmp.Or(cmp.Compare(a.qid.owner, b.qid.owner), cmp.Compare(a.qid.domain, b.qid.domain))
	})
	m.gen++
	m.live.Add(1)
	return s, nil
}

// memSnapshot is a frozen view of a Memory backend.
type memSnapshot struct {
	live     *atomic.Int64
	released atomic.Bool
	infos    []StateInfo // by state ID
	data     []memSnapState
	timers   []memSnapTimers // by (owner, domain)
}

type memSnapState struct {
	kind   abi.StateKind
	groups []*memGroup
}

type memSnapTimers struct {
	qid  timerQueueID
	sets []*memTimerSet
}

// NativeFiles implements Snapshot: Memory has no native form.
func (s *memSnapshot) NativeFiles() []NativeFile { return nil }

// States implements Snapshot.
func (s *memSnapshot) States() []StateInfo { return slices.Clone(s.infos) }

// Release implements Snapshot; it is idempotent.
func (s *memSnapshot) Release() error {
	if s.released.Swap(true) {
		return nil
	}
	s.data, s.timers = nil, nil
	s.live.Add(-1)
	return nil
}

// Export implements Snapshot. Within a key group, cells come in map order
// (the stream does not require an order there), map entries by sub key,
// list items in append order.
func (s *memSnapshot) Export(w io.Writer, kr abi.KeyGroupRange, owner func(uint32) string) error {
	if s.released.Load() {
		return ErrReleased
	}
	if err := checkExportRange(kr); err != nil {
		return err
	}
	var nums []uint32
	for _, t := range s.timers {
		if len(nums) == 0 || nums[len(nums)-1] != t.qid.owner {
			nums = append(nums, t.qid.owner)
		}
	}
	names, ownerIndex, err := exportOwners(nums, owner)
	if err != nil {
		return err
	}
	sw := newStreamWriter(w, kr)
	if err := sw.header(s.infos, names); err != nil {
		return err
	}
	var key []byte
	for kg := kr.Start; kg < kr.End; kg++ {
		for id, st := range s.data {
			if kg >= len(st.groups) || st.groups[kg] == nil {
				continue
			}
			if err := exportGroup(sw, kg, uint32(id), st.groups[kg], &key); err != nil {
				return err
			}
		}
		for _, t := range s.timers {
			if kg >= len(t.sets) || t.sets[kg] == nil {
				continue
			}
			oi := ownerIndex[t.qid.owner]
			for tid := range t.sets[kg].ids {
				key = append(key[:0], tid[timerIDLen:]...)
				ts := unflipTimestamp(binary.BigEndian.Uint64([]byte(tid[:8])))
				if err := sw.timer(kg, oi, t.qid.domain, ts, key); err != nil {
					return err
				}
			}
		}
	}
	return sw.finish()
}

// exportGroup writes the cells of one state in one key group; key is
// scratch space.
func exportGroup(sw *streamWriter, kg int, state uint32, g *memGroup, key *[]byte) error {
	for k, c := range g.short {
		*key = append((*key)[:0], k.b[:k.n]...)
		if err := sw.cell(kg, state, *key, nil, c.v); err != nil {
			return err
		}
	}
	for k, c := range g.values {
		*key = append((*key)[:0], k...)
		if err := sw.cell(kg, state, *key, nil, c.v); err != nil {
			return err
		}
	}
	for k, mm := range g.maps {
		*key = append((*key)[:0], k...)
		for _, e := range mm.sorted {
			if err := sw.cell(kg, state, *key, e.sub, e.v); err != nil {
				return err
			}
		}
	}
	for k, l := range g.lists {
		*key = append((*key)[:0], k...)
		if err := sw.list(kg, state, *key, l.buf); err != nil {
			return err
		}
	}
	return nil
}

// memorySink imports into a Memory backend: through its methods, but a
// list's items in one copy rather than an Append per item.
type memorySink struct{ m *Memory }

func (s memorySink) register(operator, name string, kind abi.StateKind) (ID, error) {
	return s.m.Register(operator, name, kind)
}

func (s memorySink) cell(id ID, kg int, key, sub, value []byte) error {
	return s.m.Put(id, kg, key, sub, value)
}

func (s memorySink) list(id ID, kg int, key, items []byte) error {
	st, err := s.m.state(id, kg)
	if err != nil {
		return err
	}
	if st.kind != abi.StateList {
		return wrongKind("Append", id, st.kind)
	}
	l := s.m.writableList(s.m.writable(st, kg), key)
	l.buf = append(l.buf, items...)
	return nil
}

func (s memorySink) timer(t Timer) error { return s.m.RegisterTimer(t) }
func (s memorySink) finish() error       { return nil }
func (s memorySink) abort()              {}

package state

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/weirstream/weir/abi"
)

// Memory is a Backend that keeps everything in Go maps. It is the fastest
// backend and the reference the conformance suite compares Pebble with; its
// state is lost on Close (checkpoints will serialise it).
//
// Like every Backend it is used by one goroutine and does no locking.
type Memory struct {
	reg    registry
	states []*memState // by ID, parallel to reg.kinds
	timers map[timerQueueID]*memTimerQueue
	closed bool
	firing bool

	// Scratch buffers: lookups build their map keys here so that
	// m[string(buf)] does not allocate. fireKey holds the key handed to a
	// FireTimers callback and is separate so the callback may pass it back
	// to RegisterTimer.
	kbuf    []byte
	tbuf    []byte
	fireKey []byte

	// The value cell the last Get found, with its state and group key: the
	// Put that usually follows (read-modify-write) updates it without a
	// second map lookup. Cells leave the maps only by Delete and Clear,
	// which reset the memo; until then it stays true.
	memoState *memState
	memoKey   []byte
	memoCell  *memValue
}

var _ Backend = (*Memory)(nil)

// memState holds the cells of one registered state. Only the map of its
// kind is used; all are keyed by appendGroupKey(kg, key).
type memState struct {
	kind abi.StateKind
	// Value state: short group keys (most keys: ids, numbers, UUIDs) are
	// map keys by value, so a lookup compares them in the map's own memory
	// instead of following a string pointer (one cache miss fewer on the
	// hottest path); longer ones are strings.
	short  map[shortKey]*memValue
	values map[string]*memValue
	maps   map[string]*memMap
	lists  map[string]*memList
}

// shortKeyMax is the longest group key (kg u16 + key) kept in a shortKey.
const shortKeyMax = 15

// shortKey is a group key of at most shortKeyMax bytes, zero padded.
type shortKey struct {
	n uint8
	b [shortKeyMax]byte
}

func makeShortKey(gk []byte) shortKey {
	k := shortKey{n: uint8(len(gk))}
	copy(k.b[:], gk)
	return k
}

// memValue is boxed so that Put updates the bytes in place (a map
// assignment would need the key anew). Values up to len(inline) bytes live
// in the box itself: one allocation per cell and one cache line to read.
type memValue struct {
	v      []byte
	inline [16]byte
}

func (c *memValue) set(v []byte) {
	if len(v) <= len(c.inline) {
		c.v = c.inline[:len(v)]
		copy(c.v, v) // copy handles v aliasing c.inline
		return
	}
	// If c.v is the inline array its capacity is too small: append
	// allocates rather than writing past it.
	c.v = append(c.v[:0], v...)
}

func (s *memState) value(gk []byte) *memValue {
	if len(gk) <= shortKeyMax {
		return s.short[makeShortKey(gk)]
	}
	return s.values[string(gk)]
}

func (s *memState) putValue(gk, v []byte) {
	if c := s.value(gk); c != nil {
		c.set(v)
		return
	}
	c := &memValue{}
	c.set(v)
	if len(gk) <= shortKeyMax {
		s.short[makeShortKey(gk)] = c
	} else {
		s.values[string(gk)] = c
	}
}

func (s *memState) deleteValue(gk []byte) {
	if len(gk) <= shortKeyMax {
		delete(s.short, makeShortKey(gk))
	} else {
		delete(s.values, string(gk))
	}
}

// memMap is the map state of one key: a hash map for point access and the
// same entries sorted by sub key for scans.
type memMap struct {
	cells  map[string]*memEntry
	sorted []*memEntry
}

type memEntry struct{ sub, v []byte }

// memList is the list state of one key: values appended to one buffer as
// uvarint(len), value, so an Append allocates only when the buffer grows.
type memList struct{ buf []byte }

// NewMemory returns an empty in-memory backend.
func NewMemory() *Memory {
	return &Memory{reg: newRegistry(), timers: make(map[timerQueueID]*memTimerQueue)}
}

// Register implements Backend.
func (m *Memory) Register(operator, name string, kind abi.StateKind) (ID, error) {
	if m.closed {
		return 0, ErrClosed
	}
	id, ok, err := m.reg.lookup(operator, name, kind)
	if err != nil || ok {
		return id, err
	}
	id = m.reg.next()
	m.reg.add(operator, name, kind, id)
	s := &memState{kind: kind}
	switch kind {
	case abi.StateValue:
		s.short = make(map[shortKey]*memValue)
		s.values = make(map[string]*memValue)
	case abi.StateMap:
		s.maps = make(map[string]*memMap)
	case abi.StateList:
		s.lists = make(map[string]*memList)
	}
	m.states = append(m.states, s)
	return id, nil
}

// state returns the state of id after checking that the backend is open,
// id is registered and kg is in range; it leaves kg|key in m.kbuf.
func (m *Memory) state(id ID, kg int, key []byte) (*memState, error) {
	if m.closed {
		return nil, ErrClosed
	}
	if int(id) >= len(m.states) {
		return nil, fmt.Errorf("state id %d: %w", id, ErrUnknownState)
	}
	if uint(kg) >= MaxKeyGroups {
		return nil, keyGroupError(kg)
	}
	m.kbuf = appendGroupKey(m.kbuf[:0], kg, key)
	return m.states[id], nil
}

// Get implements Backend. The value returned is the stored slice itself.
func (m *Memory) Get(id ID, kg int, key, sub []byte) ([]byte, bool, error) {
	s, err := m.state(id, kg, key)
	if err != nil {
		return nil, false, err
	}
	switch s.kind {
	case abi.StateValue:
		if len(sub) != 0 {
			return nil, false, wrongKind("Get with a sub key", id, s.kind)
		}
		c := s.value(m.kbuf)
		if c == nil {
			return nil, false, nil
		}
		// Keep the key without copying: the buffers trade places.
		m.memoState, m.memoCell = s, c
		m.memoKey, m.kbuf = m.kbuf, m.memoKey
		return c.v, true, nil
	case abi.StateMap:
		if mm := s.maps[string(m.kbuf)]; mm != nil {
			if e := mm.cells[string(sub)]; e != nil {
				return e.v, true, nil
			}
		}
		return nil, false, nil
	}
	return nil, false, wrongKind("Get", id, s.kind)
}

// Put implements Backend. A value of the stored size (or smaller, within the
// stored capacity) is copied in place.
func (m *Memory) Put(id ID, kg int, key, sub, value []byte) error {
	s, err := m.state(id, kg, key)
	if err != nil {
		return err
	}
	switch s.kind {
	case abi.StateValue:
		if len(sub) != 0 {
			return wrongKind("Put with a sub key", id, s.kind)
		}
		if m.memoCell != nil && m.memoState == s && bytes.Equal(m.memoKey, m.kbuf) {
			m.memoCell.set(value)
			return nil
		}
		s.putValue(m.kbuf, value)
		return nil
	case abi.StateMap:
		mm := s.maps[string(m.kbuf)]
		if mm == nil {
			mm = &memMap{cells: make(map[string]*memEntry, 1)}
			s.maps[string(m.kbuf)] = mm
		}
		if e := mm.cells[string(sub)]; e != nil {
			e.v = append(e.v[:0], value...)
			return nil
		}
		mm.insert(&memEntry{sub: bytes.Clone(sub), v: bytes.Clone(value)})
		return nil
	}
	return wrongKind("Put", id, s.kind)
}

// Delete implements Backend.
func (m *Memory) Delete(id ID, kg int, key, sub []byte) error {
	m.memoCell = nil
	s, err := m.state(id, kg, key)
	if err != nil {
		return err
	}
	switch s.kind {
	case abi.StateValue:
		if len(sub) != 0 {
			return wrongKind("Delete with a sub key", id, s.kind)
		}
		s.deleteValue(m.kbuf)
		return nil
	case abi.StateMap:
		mm := s.maps[string(m.kbuf)]
		if mm == nil {
			return nil
		}
		mm.remove(sub)
		if len(mm.sorted) == 0 {
			delete(s.maps, string(m.kbuf))
		}
		return nil
	}
	return wrongKind("Delete", id, s.kind)
}

// Append implements Backend.
func (m *Memory) Append(id ID, kg int, key, value []byte) error {
	s, err := m.state(id, kg, key)
	if err != nil {
		return err
	}
	if s.kind != abi.StateList {
		return wrongKind("Append", id, s.kind)
	}
	l := s.lists[string(m.kbuf)]
	if l == nil {
		l = &memList{}
		s.lists[string(m.kbuf)] = l
	}
	l.buf = binary.AppendUvarint(l.buf, uint64(len(value)))
	l.buf = append(l.buf, value...)
	return nil
}

// Scan implements Backend. The slices passed to fn are the stored ones; fn
// must not call the backend.
func (m *Memory) Scan(id ID, kg int, key []byte, fn func(sub, value []byte) error) error {
	s, err := m.state(id, kg, key)
	if err != nil {
		return err
	}
	switch s.kind {
	case abi.StateValue:
		if c := s.value(m.kbuf); c != nil {
			return fn(nil, c.v)
		}
	case abi.StateMap:
		if mm := s.maps[string(m.kbuf)]; mm != nil {
			for _, e := range mm.sorted {
				if err := fn(e.sub, e.v); err != nil {
					return err
				}
			}
		}
	case abi.StateList:
		if l := s.lists[string(m.kbuf)]; l != nil {
			return scanList(l.buf, fn)
		}
	}
	return nil
}

// scanList decodes a buffer of uvarint(len), value entries.
func scanList(b []byte, fn func(sub, value []byte) error) error {
	for len(b) > 0 {
		n, w := binary.Uvarint(b)
		if w <= 0 || uint64(len(b)-w) < n {
			return fmt.Errorf("state: corrupt list entry (%d bytes left)", len(b))
		}
		v := b[w : w+int(n) : w+int(n)]
		b = b[w+int(n):]
		if err := fn(nil, v); err != nil {
			return err
		}
	}
	return nil
}

// Clear implements Backend.
func (m *Memory) Clear(id ID, kg int, key []byte) error {
	m.memoCell = nil
	s, err := m.state(id, kg, key)
	if err != nil {
		return err
	}
	switch s.kind {
	case abi.StateValue:
		s.deleteValue(m.kbuf)
	case abi.StateMap:
		delete(s.maps, string(m.kbuf))
	case abi.StateList:
		delete(s.lists, string(m.kbuf))
	}
	return nil
}

// insert adds e, which is not in mm yet. Sub keys that arrive in ascending
// order (timestamps, counters) append without moving entries.
func (mm *memMap) insert(e *memEntry) {
	mm.cells[string(e.sub)] = e
	n := len(mm.sorted)
	if n == 0 || bytes.Compare(mm.sorted[n-1].sub, e.sub) < 0 {
		mm.sorted = append(mm.sorted, e)
		return
	}
	i := sort.Search(n, func(i int) bool { return bytes.Compare(mm.sorted[i].sub, e.sub) >= 0 })
	mm.sorted = append(mm.sorted, nil)
	copy(mm.sorted[i+1:], mm.sorted[i:])
	mm.sorted[i] = e
}

// remove deletes the entry of sub if present.
func (mm *memMap) remove(sub []byte) {
	if _, ok := mm.cells[string(sub)]; !ok {
		return
	}
	delete(mm.cells, string(sub))
	n := len(mm.sorted)
	i := sort.Search(n, func(i int) bool { return bytes.Compare(mm.sorted[i].sub, sub) >= 0 })
	copy(mm.sorted[i:], mm.sorted[i+1:])
	mm.sorted[n-1] = nil
	mm.sorted = mm.sorted[:n-1]
}

// Close implements Backend: it drops all state and timers.
func (m *Memory) Close() error {
	if m.closed {
		return nil
	}
	m.closed = true
	m.states, m.timers, m.memoCell = nil, nil, nil
	m.reg = registry{}
	return nil
}

package state

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"maps"
	"sort"
	"sync/atomic"

	"github.com/weirstream/weir/abi"
)

// Memory is a Backend that keeps everything in Go maps. It is the fastest
// backend and the reference the conformance suite compares Pebble with; its
// state is lost on Close, so checkpoints export it as a canonical stream
// (Snapshot).
//
// Like every Backend it is used by one goroutine and does no locking; only
// the count of live snapshots is shared with the goroutines that export them.
type Memory struct {
	reg    registry
	states []*memState // by ID, parallel to reg.kinds
	timers map[timerQueueID]*memTimerQueue
	closed bool
	firing bool

	// Copy-on-write (memory_snapshot.go). gen is the current generation:
	// Snapshot freezes everything of older generations and increments it.
	// An object (group, value box, map, list, timer set) whose generation
	// is not the one of its group, or a group whose generation is not gen,
	// may be shared with a snapshot and is copied before it is changed,
	// unless live says no snapshot is alive.
	gen  uint64
	live atomic.Int64

	// Scratch buffers. tbuf holds timer ids so that m[string(tbuf)] does not
	// allocate. fireKey holds the key handed to a FireTimers callback and
	// is separate so the callback may pass it back to RegisterTimer.
	tbuf    []byte
	fireKey []byte

	// The value cell the last Get found, with its group and key: the Put
	// that usually follows (read-modify-write) updates it without a second
	// map lookup. Cells leave the maps only by Delete, Clear and copy-on-
	// write; the first two reset the memo, the last changes the group or
	// the cell's generation, which Put checks.
	memoGroup *memGroup
	memoKey   []byte
	memoCell  *memValue
}

var _ Backend = (*Memory)(nil)

// memState holds the cells of one registered state, per key group: the key
// group is the unit of copy-on-write, so that a snapshot freezes a state by
// copying one pointer per key group.
type memState struct {
	kind   abi.StateKind
	groups []*memGroup // by key group, grown on demand; nil: no cells there
}

// group returns the cells of kg for reading, or nil.
func (s *memState) group(kg int) *memGroup {
	if kg < len(s.groups) {
		return s.groups[kg]
	}
	return nil
}

// memGroup holds the cells of one state in one key group, keyed by key.
// Only the maps of the state's kind are used. Maps are allocated on first
// insertion (reading a nil map is fine).
type memGroup struct {
	gen uint64
	// Value state: short keys (most keys: ids, numbers, UUIDs) are map keys
	// by value, so a lookup compares them in the map's own memory instead
	// of following a string pointer (one cache miss fewer on the hottest
	// path); longer ones are strings.
	short  map[shortKey]*memValue
	values map[string]*memValue
	maps   map[string]*memMap
	lists  map[string]*memList
}

// clone returns a copy of g of generation gen sharing g's cells: they are
// copied one by one when first changed (their generation is older).
func (g *memGroup) clone(gen uint64) *memGroup {
	return &memGroup{
		gen:    gen,
		short:  maps.Clone(g.short),
		values: maps.Clone(g.values),
		maps:   maps.Clone(g.maps),
		lists:  maps.Clone(g.lists),
	}
}

// shortKeyMax is the longest key kept in a shortKey.
const shortKeyMax = 15

// shortKey is a key of at most shortKeyMax bytes, zero padded.
type shortKey struct {
	n uint8
	b [shortKeyMax]byte
}

func makeShortKey(k []byte) shortKey {
	sk := shortKey{n: uint8(len(k))}
	copy(sk.b[:], k)
	return sk
}

func (k *shortKey) bytes() []byte { return k.b[:k.n] }

// memValue is boxed so that Put updates the bytes in place (a map
// assignment would need the key anew). Values up to len(inline) bytes live
// in the box itself: one allocation per cell and one cache line to read.
type memValue struct {
	v      []byte
	inline [16]byte
	gen    uint64
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

func (g *memGroup) value(key []byte) *memValue {
	if len(key) <= shortKeyMax {
		return g.short[makeShortKey(key)]
	}
	return g.values[string(key)]
}

// mayWrite reports whether an object of generation *gen in a group of
// generation g may be changed in place: it was made in g's generation, or
// no snapshot is alive (then it becomes g's).
func (m *Memory) mayWrite(gen *uint64, g uint64) bool {
	if *gen == g {
		return true
	}
	if m.live.Load() == 0 {
		*gen = g
		return true
	}
	return false
}

// putValue stores v under key in g (of the current generation), in the
// existing box if it is g's, else in a new box.
func (m *Memory) putValue(g *memGroup, key, v []byte) {
	c := g.value(key)
	m.replaceValue(g, key, c, v)
}

// replaceValue stores v under key in g, whose box for key is c (nil if
// there is none): in c if g owns it, else in a new box, which it returns.
func (m *Memory) replaceValue(g *memGroup, key []byte, c *memValue, v []byte) *memValue {
	if c != nil && m.mayWrite(&c.gen, g.gen) {
		c.set(v)
		return c
	}
	c = &memValue{gen: g.gen}
	c.set(v)
	if len(key) <= shortKeyMax {
		if g.short == nil {
			g.short = make(map[shortKey]*memValue)
		}
		g.short[makeShortKey(key)] = c
		return c
	}
	if g.values == nil {
		g.values = make(map[string]*memValue)
	}
	g.values[string(key)] = c
	return c
}

func (g *memGroup) deleteValue(key []byte) {
	if len(key) <= shortKeyMax {
		delete(g.short, makeShortKey(key))
	} else {
		delete(g.values, string(key))
	}
}

// memMap is the map state of one key: a hash map for point access and the
// same entries sorted by sub key for scans.
type memMap struct {
	gen    uint64
	cells  map[string]*memEntry
	sorted []*memEntry
}

type memEntry struct{ sub, v []byte }

// newMemEntry copies sub and v into one allocation; v has the end of it,
// so that Put can overwrite v in place up to its length.
func newMemEntry(sub, v []byte) *memEntry {
	b := make([]byte, len(sub)+len(v))
	n := copy(b, sub)
	copy(b[n:], v)
	return &memEntry{sub: b[:n:n], v: b[n:]}
}

// clone copies mm with its entries (whose values Put changes in place);
// sub keys never change and are shared.
func (mm *memMap) clone(gen uint64) *memMap {
	c := &memMap{gen: gen, cells: make(map[string]*memEntry, len(mm.sorted)), sorted: make([]*memEntry, len(mm.sorted))}
	for i, e := range mm.sorted {
		ne := &memEntry{sub: e.sub, v: bytes.Clone(e.v)}
		c.sorted[i] = ne
		c.cells[string(ne.sub)] = ne
	}
	return c
}

// memList is the list state of one key: values appended to one buffer as
// uvarint(len), value, so an Append allocates only when the buffer grows.
// A copy made for copy-on-write shares the buffer: lists only grow by
// appending, which writes past every length a snapshot has seen.
type memList struct {
	gen uint64
	buf []byte
}

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
	m.states = append(m.states, &memState{kind: kind})
	return id, nil
}

// state returns the state of id after checking that the backend is open,
// id is registered and kg is in range.
func (m *Memory) state(id ID, kg int) (*memState, error) {
	if m.closed {
		return nil, ErrClosed
	}
	if int(id) >= len(m.states) {
		return nil, fmt.Errorf("state id %d: %w", id, ErrUnknownState)
	}
	if uint(kg) >= MaxKeyGroups {
		return nil, keyGroupError(kg)
	}
	return m.states[id], nil
}

// writable returns the group of kg for writing: of the current generation,
// created or copied if needed.
func (m *Memory) writable(s *memState, kg int) *memGroup {
	if kg < len(s.groups) {
		if g := s.groups[kg]; g != nil && g.gen == m.gen {
			return g
		}
	}
	return m.ownGroup(s, kg)
}

// ownGroup is writable's slow path.
func (m *Memory) ownGroup(s *memState, kg int) *memGroup {
	if kg >= len(s.groups) {
		s.groups = append(s.groups, make([]*memGroup, kg+1-len(s.groups))...)
	}
	g := s.groups[kg]
	switch {
	case g == nil:
		g = &memGroup{gen: m.gen}
	case m.live.Load() == 0:
		g.gen = m.gen // no snapshot can see it
	default:
		g = g.clone(m.gen)
	}
	s.groups[kg] = g
	return g
}

// Get implements Backend. The value returned is the stored slice itself.
func (m *Memory) Get(id ID, kg int, key, sub []byte) ([]byte, bool, error) {
	s, err := m.state(id, kg)
	if err != nil {
		return nil, false, err
	}
	g := s.group(kg)
	switch s.kind {
	case abi.StateValue:
		if len(sub) != 0 {
			return nil, false, wrongKind("Get with a sub key", id, s.kind)
		}
		if g == nil {
			return nil, false, nil
		}
		c := g.value(key)
		if c == nil {
			return nil, false, nil
		}
		m.memoGroup, m.memoCell = g, c
		m.memoKey = append(m.memoKey[:0], key...)
		return c.v, true, nil
	case abi.StateMap:
		if g == nil {
			return nil, false, nil
		}
		if mm := g.maps[string(key)]; mm != nil {
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
	s, err := m.state(id, kg)
	if err != nil {
		return err
	}
	switch s.kind {
	case abi.StateValue:
		if len(sub) != 0 {
			return wrongKind("Put with a sub key", id, s.kind)
		}
		g := m.writable(s, kg)
		if c := m.memoCell; c != nil && m.memoGroup == g && bytes.Equal(m.memoKey, key) {
			if c.gen == g.gen {
				c.set(value)
				return nil
			}
			// The first write since a snapshot: the box is known, so only
			// its replacement costs a map operation.
			m.memoCell = m.replaceValue(g, key, c, value)
			return nil
		}
		m.putValue(g, key, value)
		return nil
	case abi.StateMap:
		mm := m.writableMap(m.writable(s, kg), key, true)
		if e := mm.cells[string(sub)]; e != nil {
			e.v = append(e.v[:0], value...)
			return nil
		}
		mm.insert(newMemEntry(sub, value))
		return nil
	}
	return wrongKind("Put", id, s.kind)
}

// writableMap returns the map of key in g (of the current generation) for
// writing, copied if a snapshot may share it; nil if there is none and
// create is false.
func (m *Memory) writableMap(g *memGroup, key []byte, create bool) *memMap {
	mm := g.maps[string(key)]
	switch {
	case mm == nil && !create:
		return nil
	case mm == nil:
		mm = &memMap{gen: g.gen, cells: make(map[string]*memEntry, 1)}
	case m.mayWrite(&mm.gen, g.gen):
		return mm
	default:
		mm = mm.clone(g.gen)
	}
	if g.maps == nil {
		g.maps = make(map[string]*memMap)
	}
	g.maps[string(key)] = mm
	return mm
}

// Delete implements Backend.
func (m *Memory) Delete(id ID, kg int, key, sub []byte) error {
	m.memoCell = nil
	s, err := m.state(id, kg)
	if err != nil {
		return err
	}
	switch s.kind {
	case abi.StateValue:
		if len(sub) != 0 {
			return wrongKind("Delete with a sub key", id, s.kind)
		}
		if g := s.group(kg); g == nil || g.value(key) == nil {
			return nil
		}
		m.writable(s, kg).deleteValue(key)
		return nil
	case abi.StateMap:
		if g := s.group(kg); g == nil || g.maps[string(key)] == nil {
			return nil
		}
		g := m.writable(s, kg)
		mm := m.writableMap(g, key, false)
		mm.remove(sub)
		if len(mm.sorted) == 0 {
			delete(g.maps, string(key))
		}
		return nil
	}
	return wrongKind("Delete", id, s.kind)
}

// Append implements Backend.
func (m *Memory) Append(id ID, kg int, key, value []byte) error {
	s, err := m.state(id, kg)
	if err != nil {
		return err
	}
	if s.kind != abi.StateList {
		return wrongKind("Append", id, s.kind)
	}
	l := m.writableList(m.writable(s, kg), key)
	l.buf = binary.AppendUvarint(l.buf, uint64(len(value)))
	l.buf = append(l.buf, value...)
	return nil
}

// writableList returns the list of key in g (of the current generation)
// for appending, creating it or making a copy that shares the buffer.
func (m *Memory) writableList(g *memGroup, key []byte) *memList {
	l := g.lists[string(key)]
	switch {
	case l == nil:
		l = &memList{gen: g.gen}
	case m.mayWrite(&l.gen, g.gen):
		return l
	default:
		l = &memList{gen: g.gen, buf: l.buf}
	}
	if g.lists == nil {
		g.lists = make(map[string]*memList)
	}
	g.lists[string(key)] = l
	return l
}

// Scan implements Backend. The slices passed to fn are the stored ones; fn
// must not call the backend.
func (m *Memory) Scan(id ID, kg int, key []byte, fn func(sub, value []byte) error) error {
	s, err := m.state(id, kg)
	if err != nil {
		return err
	}
	g := s.group(kg)
	if g == nil {
		return nil
	}
	switch s.kind {
	case abi.StateValue:
		if c := g.value(key); c != nil {
			return fn(nil, c.v)
		}
	case abi.StateMap:
		if mm := g.maps[string(key)]; mm != nil {
			for _, e := range mm.sorted {
				if err := fn(e.sub, e.v); err != nil {
					return err
				}
			}
		}
	case abi.StateList:
		if l := g.lists[string(key)]; l != nil {
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
	s, err := m.state(id, kg)
	if err != nil {
		return err
	}
	g := s.group(kg)
	if g == nil {
		return nil
	}
	switch s.kind {
	case abi.StateValue:
		if g.value(key) != nil {
			m.writable(s, kg).deleteValue(key)
		}
	case abi.StateMap:
		if g.maps[string(key)] != nil {
			delete(m.writable(s, kg).maps, string(key))
		}
	case abi.StateList:
		if g.lists[string(key)] != nil {
			delete(m.writable(s, kg).lists, string(key))
		}
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

// Close implements Backend: it drops all state and timers. Snapshots keep
// what they reference and stay usable.
func (m *Memory) Close() error {
	if m.closed {
		return nil
	}
	m.closed = true
	m.states, m.timers, m.memoCell, m.memoGroup = nil, nil, nil, nil
	m.reg = registry{}
	return nil
}

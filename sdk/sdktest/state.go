package sdktest

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"

	"github.com/weirstream/weir/abi"
)

// State is an in-memory keyed state store with the method set of
// sdk.NativeState (and wasmhost.StateAccess). It is used by one goroutine.
type State struct {
	// Owns, when set, says whether a key belongs to this task; state calls
	// for other keys fail with abi.ErrKeyNotLocal, as the runtime's do.
	Owns func(key []byte) bool

	states []registered
	cells  map[string]*cells // by cellKey(id, key)
	buf    []byte
	get    []byte
}

type registered struct {
	name string
	kind abi.StateKind
}

// cells are the entries of one (state, key): sorted sub keys for value and
// map state, values in order for list state.
type cells struct {
	entries []entry
	list    [][]byte
}

type entry struct{ sub, value []byte }

// NewState returns an empty store.
func NewState() *State { return &State{cells: make(map[string]*cells)} }

// Register returns the id of state name, registering it on first use.
func (s *State) Register(name string, kind abi.StateKind) (int32, error) {
	if kind < abi.StateValue || kind > abi.StateList {
		return 0, abi.ErrInvalid
	}
	for i, r := range s.states {
		if r.name == name {
			if r.kind != kind {
				return 0, abi.ErrInvalid
			}
			return int32(i), nil
		}
	}
	s.states = append(s.states, registered{name: name, kind: kind})
	return int32(len(s.states) - 1), nil
}

func (s *State) check(id int32, key []byte, kinds ...abi.StateKind) error {
	if id < 0 || int(id) >= len(s.states) {
		return abi.ErrInvalid
	}
	if len(kinds) > 0 && !slices.Contains(kinds, s.states[id].kind) {
		return abi.ErrInvalid
	}
	if s.Owns != nil && !s.Owns(key) {
		return abi.ErrKeyNotLocal
	}
	return nil
}

// cellKey builds the map key of (id, key) in s.buf; a lookup with
// string(s.buf) does not allocate.
func (s *State) cellKey(id int32, key []byte) []byte {
	s.buf = binary.LittleEndian.AppendUint32(s.buf[:0], uint32(id))
	s.buf = append(s.buf, key...)
	return s.buf
}

func (s *State) lookup(id int32, key []byte) *cells { return s.cells[string(s.cellKey(id, key))] }

func (s *State) lookupOrAdd(id int32, key []byte) *cells {
	k := s.cellKey(id, key)
	c := s.cells[string(k)]
	if c == nil {
		c = &cells{}
		s.cells[string(k)] = c
	}
	return c
}

func (c *cells) find(sub []byte) (int, bool) {
	return sort.Find(len(c.entries), func(i int) int { return bytes.Compare(sub, c.entries[i].sub) })
}

// Get returns the value of (id, key, sub). The slice is valid until the
// next call.
func (s *State) Get(id int32, key, sub []byte) ([]byte, bool, error) {
	if err := s.check(id, key, abi.StateValue, abi.StateMap); err != nil {
		return nil, false, err
	}
	c := s.lookup(id, key)
	if c == nil {
		return nil, false, nil
	}
	i, ok := c.find(sub)
	if !ok {
		return nil, false, nil
	}
	// Hand out a copy so that a caller writing into it cannot corrupt the
	// store (the contract says it must not, the fake makes sure).
	s.get = append(s.get[:0], c.entries[i].value...)
	return s.get, true, nil
}

// Put sets (id, key, sub) to value.
func (s *State) Put(id int32, key, sub, value []byte) error {
	if err := s.check(id, key, abi.StateValue, abi.StateMap); err != nil {
		return err
	}
	c := s.lookupOrAdd(id, key)
	i, ok := c.find(sub)
	if ok {
		c.entries[i].value = append(c.entries[i].value[:0], value...)
		return nil
	}
	c.entries = slices.Insert(c.entries, i, entry{sub: bytes.Clone(sub), value: append([]byte{}, value...)})
	return nil
}

// Delete removes (id, key, sub).
func (s *State) Delete(id int32, key, sub []byte) error {
	if err := s.check(id, key, abi.StateValue, abi.StateMap); err != nil {
		return err
	}
	c := s.lookup(id, key)
	if c == nil {
		return nil
	}
	if i, ok := c.find(sub); ok {
		c.entries = slices.Delete(c.entries, i, i+1)
	}
	if len(c.entries) == 0 && len(c.list) == 0 {
		delete(s.cells, string(s.cellKey(id, key)))
	}
	return nil
}

// Append adds value to the list (id, key).
func (s *State) Append(id int32, key, value []byte) error {
	if err := s.check(id, key, abi.StateList); err != nil {
		return err
	}
	c := s.lookupOrAdd(id, key)
	c.list = append(c.list, append([]byte{}, value...))
	return nil
}

// Scan calls fn for the entries of (id, key): map and value entries in
// ascending sub-key order, list values in append order with a nil sub key.
func (s *State) Scan(id int32, key []byte, fn func(sub, value []byte) error) error {
	if err := s.check(id, key); err != nil {
		return err
	}
	c := s.lookup(id, key)
	if c == nil {
		return nil
	}
	for _, e := range c.entries {
		if err := fn(e.sub, e.value); err != nil {
			return err
		}
	}
	for _, v := range c.list {
		if err := fn(nil, v); err != nil {
			return err
		}
	}
	return nil
}

// Clear removes every entry of (id, key).
func (s *State) Clear(id int32, key []byte) error {
	if err := s.check(id, key); err != nil {
		return err
	}
	delete(s.cells, string(s.cellKey(id, key)))
	return nil
}

// Cell is one stored entry, as Dump reports it.
type Cell struct {
	State string
	Key   string
	Sub   string // map key (encoded); empty for value and list state
	Value string // encoded value
}

func (c Cell) String() string {
	return fmt.Sprintf("%s[%q][%q]=%q", c.State, c.Key, c.Sub, c.Value)
}

// Dump returns every stored entry, sorted by state, key, then sub key
// (list elements in order). Tests use it to check that state is cleaned up.
func (s *State) Dump() []Cell {
	var out []Cell
	for k, c := range s.cells {
		id := binary.LittleEndian.Uint32([]byte(k))
		name, key := s.states[id].name, k[4:]
		for _, e := range c.entries {
			out = append(out, Cell{State: name, Key: key, Sub: string(e.sub), Value: string(e.value)})
		}
		for _, v := range c.list {
			out = append(out, Cell{State: name, Key: key, Value: string(v)})
		}
	}
	slices.SortStableFunc(out, func(a, b Cell) int {
		if c := cmp.Compare(a.State, b.State); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		return cmp.Compare(a.Sub, b.Sub)
	})
	return out
}

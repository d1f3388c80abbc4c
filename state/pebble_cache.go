package state

import "fmt"

// cell is a cached value, map or list cell of the Pebble backend.
//
// For value and map cells, val is the value and present says whether there
// is one; a cached absent cell answers repeated reads of a missing key
// without Pebble. dirty says the cached state differs from the store's
// (wb's) and must be written back. inStore says the store may hold a value
// for the key: when false, writing back an absent cell needs no tombstone.
//
// For list cells (list set), val holds the entries appended since the cell
// was last written back, dirty says there are some, and inStore says the
// store may hold earlier entries (when false, the list is val alone).
type cell struct {
	key     string
	val     []byte
	id      ID    // state, for per-state dirty lists
	slot    int32 // index in cellCache.ring
	present bool
	dirty   bool
	inStore bool
	list    bool
	ref     bool // CLOCK reference bit
}

// cellOverhead approximates the bytes a cell costs beyond its key and value:
// the struct, its map entry and ring slot.
const cellOverhead = 128

// cellCache is a bounded map of cells with CLOCK eviction: a cell touched
// since the hand last passed it gets a second chance. CLOCK needs no list
// manipulation on a hit (a bit is set), which keeps Get and Put cheap.
type cellCache struct {
	m     map[string]*cell
	ring  []*cell
	free  []int32 // nil slots of ring
	hand  int
	bytes int64
	limit int64
}

func newCellCache(limit int64) cellCache {
	return cellCache{m: make(map[string]*cell), limit: limit}
}

func cellSize(c *cell) int64 { return int64(len(c.key)+cap(c.val)) + cellOverhead }

// get returns the cached cell of key, or nil.
func (cc *cellCache) get(key []byte) *cell {
	c := cc.m[string(key)]
	if c != nil {
		c.ref = true
	}
	return c
}

// setValue replaces c's value, reusing its buffer when it is large enough.
func (cc *cellCache) setValue(c *cell, v []byte) {
	old := cap(c.val)
	c.val = append(c.val[:0], v...)
	cc.bytes += int64(cap(c.val) - old)
}

// appendValue appends b to c's value.
func (cc *cellCache) appendValue(c *cell, b []byte) {
	old := cap(c.val)
	c.val = append(c.val, b...)
	cc.bytes += int64(cap(c.val) - old)
}

// insertListCell caches an empty list cell for key.
func (p *Pebble) insertListCell(id ID, key []byte, inStore bool) (*cell, error) {
	c, err := p.insertCell(id, key, nil, false, inStore)
	if err != nil {
		return nil, err
	}
	c.list = true
	return c, nil
}

// cell returns the cell of key, reading it from the store on a miss.
func (p *Pebble) cell(id ID, key []byte) (*cell, error) {
	if c := p.cells.get(key); c != nil {
		return c, nil
	}
	v, found, err := p.getValue(key)
	if err != nil {
		return nil, err
	}
	return p.insertCell(id, key, v, found, found)
}

// insertCell caches a new clean cell for key, evicting others first. The
// value is copied.
func (p *Pebble) insertCell(id ID, key, v []byte, present, inStore bool) (*cell, error) {
	need := int64(len(key)+len(v)) + cellOverhead
	for p.cells.bytes+need > p.cells.limit && len(p.cells.m) > 0 {
		if err := p.evictOne(); err != nil {
			return nil, err
		}
	}
	c := &cell{key: string(key), id: id, present: present, inStore: inStore}
	if present {
		c.val = append(make([]byte, 0, len(v)), v...)
	}
	if n := len(p.cells.free); n > 0 {
		c.slot = p.cells.free[n-1]
		p.cells.free = p.cells.free[:n-1]
		p.cells.ring[c.slot] = c
	} else {
		c.slot = int32(len(p.cells.ring))
		p.cells.ring = append(p.cells.ring, c)
	}
	p.cells.m[c.key] = c
	p.cells.bytes += cellSize(c)
	return c, nil
}

// evictOne advances the CLOCK hand to a cell without its reference bit,
// writes it back if dirty and drops it. The cache must not be empty.
func (p *Pebble) evictOne() error {
	cc := &p.cells
	for {
		if cc.hand >= len(cc.ring) {
			cc.hand = 0
		}
		c := cc.ring[cc.hand]
		cc.hand++
		if c == nil {
			continue
		}
		if c.ref {
			c.ref = false
			continue
		}
		if c.dirty {
			if err := p.writeCell(c); err != nil {
				return err
			}
		}
		delete(cc.m, c.key)
		cc.ring[c.slot] = nil
		cc.free = append(cc.free, c.slot)
		cc.bytes -= cellSize(c)
		return p.maybeCommit()
	}
}

func (p *Pebble) markDirty(c *cell) {
	c.ref = true
	if c.dirty {
		return
	}
	c.dirty = true
	list := append(p.dirty[c.id], c)
	// Evicted cells stay in the list (clean) until the next writeDirty;
	// compact it before it outgrows the cache, so that a state never
	// scanned or flushed cannot grow it without bound. Every dirty cell is
	// cached, so compaction at least halves the list.
	if len(list) > 2*len(p.cells.m)+64 {
		n := 0
		for _, d := range list {
			if d.dirty {
				list[n] = d
				n++
			}
		}
		clear(list[n:])
		list = list[:n]
	}
	p.dirty[c.id] = list
}

// writeCell writes c to wb and marks it clean. An absent cell the store
// cannot hold needs no tombstone.
func (p *Pebble) writeCell(c *cell) error {
	p.wbuf = append(p.wbuf[:0], c.key...)
	var err error
	switch {
	case c.list:
		if len(c.val) > 0 {
			err = p.wb.Merge(p.wbuf, c.val, nil)
			c.inStore = true
			p.cells.setValue(c, nil)
		}
	case c.present:
		err = p.wb.Set(p.wbuf, c.val, nil)
		c.inStore = true
	case c.inStore:
		err = p.wb.Delete(p.wbuf, nil)
		c.inStore = false
	}
	if err != nil {
		return fmt.Errorf("state: write back %x: %w", p.wbuf, err)
	}
	c.dirty = false
	return nil
}

// writeDirty writes back the changed cells of state id (including cells
// already evicted, which are clean by then and skipped).
func (p *Pebble) writeDirty(id ID) error {
	list := p.dirty[id]
	for i, c := range list {
		if c.dirty {
			if err := p.writeCell(c); err != nil {
				p.dirty[id] = list[i:]
				return err
			}
		}
	}
	clear(list)
	p.dirty[id] = list[:0]
	return p.maybeCommit()
}

package state

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"

	"github.com/cockroachdb/pebble/v2"
	"github.com/weirstream/weir/abi"
)

// Pebble timers. Every timer is a key kg|spaceTimer|owner|domain|ts|key
// (doc.go). In memory, per (owner, domain), each key group that has timers
// has a timerGroup caching its earliest timers, and a min-heap orders the
// groups by their earliest timer (Flink's RocksDB timer service works the
// same way). NextTimer is the heap's top; FireTimers pops from the top
// group's cache and reads Pebble only when a cache runs empty while the
// group has more timers.
//
// The cache is write-back: a timer registered into it is written to Pebble
// only when it leaves the cache unfired (pushed out by earlier timers) or
// at Flush and Close. Most timers fire or are deleted before that, and then
// never cost a memtable insertion, let alone two (set and tombstone).

// pebbleTimerQueue holds the timer caches of one (owner, domain).
type pebbleTimerQueue struct {
	owner  uint32
	domain abi.TimeDomain
	groups map[uint16]*timerGroup // exactly the key groups that have timers
	heap   []*timerGroup          // the same groups, by first timer
}

// timerGroup caches the earliest timers of one key group. Invariants:
// entries is non-empty and sorted; every timer of the group not in entries
// sorts after the last entry; complete says there is none.
type timerGroup struct {
	kg       uint16
	entries  []timerEntry
	complete bool
	idx      int // position in heap
}

// timerEntry is a cached timer: tk is flipped ts u64 | key (the timer's
// storage key after timerPrefixLen); pending says it is not in Pebble yet.
// Timers not cached are always in Pebble.
type timerEntry struct {
	tk      []byte
	pending bool
}

func (g *timerGroup) first() []byte { return g.entries[0].tk }

func entryTimestamp(e []byte) int64 { return unflipTimestamp(binary.BigEndian.Uint64(e)) }

// groupLess orders groups by first timer: timestamp, key group, key.
func groupLess(a, b *timerGroup) bool {
	ea, eb := a.first(), b.first()
	if c := bytes.Compare(ea[:8], eb[:8]); c != 0 {
		return c < 0
	}
	if a.kg != b.kg {
		return a.kg < b.kg
	}
	return bytes.Compare(ea[8:], eb[8:]) < 0
}

// search returns where e is or belongs in g.entries.
func (g *timerGroup) search(e []byte) (int, bool) {
	n := len(g.entries)
	if n > 0 && bytes.Compare(g.entries[n-1].tk, e) < 0 {
		return n, false // common case: a later timer than all cached ones
	}
	i := sort.Search(n, func(i int) bool { return bytes.Compare(g.entries[i].tk, e) >= 0 })
	return i, i < n && bytes.Equal(g.entries[i].tk, e)
}

func (p *Pebble) timerQueue(owner uint32, d abi.TimeDomain, create bool) *pebbleTimerQueue {
	qid := timerQueueID{owner, d}
	q := p.timers[qid]
	if q == nil && create {
		q = &pebbleTimerQueue{owner: owner, domain: d, groups: make(map[uint16]*timerGroup)}
		p.timers[qid] = q
	}
	return q
}

// RegisterTimer implements Backend.
func (p *Pebble) RegisterTimer(t Timer) error {
	if p.closed {
		return ErrClosed
	}
	if err := checkTimer(&t); err != nil {
		return err
	}
	q := p.timerQueue(t.Owner, t.Domain, true)
	p.tbuf = appendTimerPrefix(p.tbuf[:0], t.KeyGroup, t.Owner, uint8(t.Domain))
	p.tbuf = binary.BigEndian.AppendUint64(p.tbuf, flipTimestamp(t.Timestamp))
	p.tbuf = append(p.tbuf, t.Key...)
	e := p.tbuf[timerPrefixLen:]
	kg := uint16(t.KeyGroup)
	g := q.groups[kg]
	if g == nil {
		// The group has no timers: this one is all of them.
		g = &timerGroup{kg: kg, entries: []timerEntry{{tk: bytes.Clone(e), pending: true}}, complete: true}
		q.groups[kg] = g
		q.push(g)
		return nil
	}
	i, found := g.search(e)
	if found {
		return nil
	}
	if i == len(g.entries) && !g.complete {
		// After the cached timers: it belongs to the part only in Pebble.
		return p.writeTimer(p.tbuf, true)
	}
	g.entries = slices.Insert(g.entries, i, timerEntry{tk: bytes.Clone(e), pending: true})
	if len(g.entries) > p.opts.TimerCacheSize {
		// The last timer leaves the cache: Pebble must have it.
		last := len(g.entries) - 1
		out := g.entries[last]
		g.entries[last] = timerEntry{}
		g.entries = g.entries[:last]
		g.complete = false
		if out.pending {
			p.tbuf = appendTimerPrefix(p.tbuf[:0], int(kg), q.owner, uint8(q.domain))
			p.tbuf = append(p.tbuf, out.tk...)
			if err := p.writeTimer(p.tbuf, true); err != nil {
				return err
			}
		}
	}
	if i == 0 {
		q.fix(g.idx)
	}
	return nil
}

// DeleteTimer implements Backend.
func (p *Pebble) DeleteTimer(t Timer) error {
	if p.closed {
		return ErrClosed
	}
	if err := checkTimer(&t); err != nil {
		return err
	}
	q := p.timerQueue(t.Owner, t.Domain, false)
	if q == nil {
		return nil
	}
	g := q.groups[uint16(t.KeyGroup)]
	if g == nil {
		return nil
	}
	p.tbuf = appendTimerPrefix(p.tbuf[:0], t.KeyGroup, t.Owner, uint8(t.Domain))
	p.tbuf = binary.BigEndian.AppendUint64(p.tbuf, flipTimestamp(t.Timestamp))
	p.tbuf = append(p.tbuf, t.Key...)
	e := p.tbuf[timerPrefixLen:]
	i, found := g.search(e)
	if !found {
		if i == len(g.entries) && !g.complete {
			// It may exist in the part of the group only in Pebble.
			return p.writeTimer(p.tbuf, false)
		}
		return nil // the cache is authoritative up to its last entry
	}
	if !g.entries[i].pending {
		if err := p.writeTimer(p.tbuf, false); err != nil {
			return err
		}
	}
	return p.removeEntry(q, g, i)
}

// removeEntry drops g.entries[i] (already deleted in the store), refilling
// the cache if it runs empty and updating the heap.
func (p *Pebble) removeEntry(q *pebbleTimerQueue, g *timerGroup, i int) error {
	removed := g.entries[i].tk
	copy(g.entries[i:], g.entries[i+1:])
	g.entries[len(g.entries)-1] = timerEntry{}
	g.entries = g.entries[:len(g.entries)-1]
	if len(g.entries) == 0 && !g.complete {
		// Every remaining timer sorts after the removed one.
		p.tbuf = appendTimerPrefix(p.tbuf[:0], int(g.kg), q.owner, uint8(q.domain))
		p.tbuf = append(p.tbuf, removed...)
		p.tbuf = append(p.tbuf, 0)
		if err := p.fillTimerGroup(g, q, p.tbuf); err != nil {
			return err
		}
	}
	switch {
	case len(g.entries) == 0:
		delete(q.groups, g.kg)
		q.removeAt(g.idx)
	case i == 0:
		q.fix(g.idx)
	}
	return nil
}

// fillTimerGroup loads into the empty cache of g the first TimerCacheSize
// timers of the group at or after the storage key from.
func (p *Pebble) fillTimerGroup(g *timerGroup, q *pebbleTimerQueue, from []byte) error {
	prefix := from[:timerPrefixLen]
	it, err := p.wb.NewIter(&pebble.IterOptions{LowerBound: from, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return fmt.Errorf("state: read timers of key group %d: %w", g.kg, err)
	}
	p.iters++
	valid := it.First()
	for ; valid && len(g.entries) < p.opts.TimerCacheSize; valid = it.Next() {
		k := it.Key()
		if len(k) < timerPrefixLen+8 {
			p.closeIter(it)
			return fmt.Errorf("state: corrupt timer key %x", k)
		}
		g.entries = append(g.entries, timerEntry{tk: bytes.Clone(k[timerPrefixLen:])})
	}
	g.complete = !valid
	err = it.Error()
	p.closeIter(it)
	if err != nil {
		return fmt.Errorf("state: read timers of key group %d: %w", g.kg, err)
	}
	return nil
}

// writeTimer sets or deletes a timer key in wb.
func (p *Pebble) writeTimer(key []byte, set bool) error {
	var err error
	if set {
		err = p.wb.Set(key, nil, nil)
	} else {
		err = p.wb.Delete(key, nil)
	}
	if err != nil {
		return fmt.Errorf("state: write timer %x: %w", key, err)
	}
	return p.maybeCommit()
}

// FireTimers implements Backend. Each timer is deleted before fn sees it;
// t.Key is valid until fn returns.
func (p *Pebble) FireTimers(owner uint32, domain abi.TimeDomain, upTo int64, fn func(Timer) error) error {
	if p.closed {
		return ErrClosed
	}
	if p.firing {
		return ErrReentrantFire
	}
	if domain != abi.EventTime && domain != abi.ProcessingTime {
		return domainError(domain)
	}
	q := p.timerQueue(owner, domain, false)
	if q == nil {
		return nil
	}
	p.firing = true
	defer func() { p.firing = false }()
	for len(q.heap) > 0 {
		g := q.heap[0]
		e := g.first()
		ts := entryTimestamp(e)
		if ts > upTo {
			break
		}
		kg := int(g.kg)
		p.fireKey = append(p.fireKey[:0], e[8:]...)
		if !g.entries[0].pending {
			p.tbuf = appendTimerPrefix(p.tbuf[:0], kg, owner, uint8(domain))
			p.tbuf = append(p.tbuf, e...)
			if err := p.writeTimer(p.tbuf, false); err != nil {
				return err
			}
		}
		if err := p.removeEntry(q, g, 0); err != nil {
			return err
		}
		if err := fn(Timer{Owner: owner, Domain: domain, Timestamp: ts, KeyGroup: kg, Key: p.fireKey}); err != nil {
			return err
		}
	}
	return nil
}

// NextTimer implements Backend; it reads only memory.
func (p *Pebble) NextTimer(owner uint32, domain abi.TimeDomain) (int64, bool, error) {
	if p.closed {
		return 0, false, ErrClosed
	}
	if domain != abi.EventTime && domain != abi.ProcessingTime {
		return 0, false, domainError(domain)
	}
	q := p.timerQueue(owner, domain, false)
	if q == nil || len(q.heap) == 0 {
		return 0, false, nil
	}
	return entryTimestamp(q.heap[0].first()), true, nil
}

// writePendingTimers writes every cached timer that Pebble does not have.
func (p *Pebble) writePendingTimers() error {
	for _, q := range p.timers {
		for _, g := range q.heap {
			for i := range g.entries {
				e := &g.entries[i]
				if !e.pending {
					continue
				}
				p.tbuf = appendTimerPrefix(p.tbuf[:0], int(g.kg), q.owner, uint8(q.domain))
				p.tbuf = append(p.tbuf, e.tk...)
				if err := p.writeTimer(p.tbuf, true); err != nil {
					return err
				}
				e.pending = false
			}
		}
	}
	return nil
}

// loadTimers finds, at open, every (key group, owner, domain) with timers
// and fills its cache: per key group it seeks to the timer space and then
// from one (owner, domain) to the next, so the cost is one seek per group
// of timers, not one read per timer.
func (p *Pebble) loadTimers() error {
	end := []byte{metaGroup >> 8, metaGroup & 0xFF}
	it, err := p.wb.NewIter(&pebble.IterOptions{UpperBound: end})
	if err != nil {
		return fmt.Errorf("read timers: %w", err)
	}
	defer func() { _ = it.Close() }()
	seek := []byte{0, 0, spaceTimer}
	for it.SeekGE(seek) {
		k := it.Key()
		if len(k) < 3 {
			return fmt.Errorf("corrupt key %x", k)
		}
		kg := int(binary.BigEndian.Uint16(k))
		if kg >= MaxKeyGroups {
			return fmt.Errorf("key %x outside key groups", k)
		}
		switch {
		case k[2] < spaceTimer:
			// State of a later key group: go to its timers.
			seek = []byte{k[0], k[1], spaceTimer}
			continue
		case k[2] > spaceTimer:
			// Past this key group's timers: go to the next group's.
			if kg+1 >= MaxKeyGroups {
				return nil
			}
			seek = binary.BigEndian.AppendUint16(nil, uint16(kg+1))
			seek = append(seek, spaceTimer)
			continue
		}
		if len(k) < timerPrefixLen+8 {
			return fmt.Errorf("corrupt timer key %x", k)
		}
		owner := binary.BigEndian.Uint32(k[3:7])
		d := abi.TimeDomain(k[7])
		if d != abi.EventTime && d != abi.ProcessingTime {
			return fmt.Errorf("timer key %x: %w", k, domainError(d))
		}
		q := p.timerQueue(owner, d, true)
		g := &timerGroup{kg: uint16(kg)}
		prefix := bytes.Clone(k[:timerPrefixLen])
		if err := p.fillTimerGroup(g, q, prefix); err != nil {
			return err
		}
		q.groups[g.kg] = g
		q.push(g)
		seek = prefixEnd(prefix)
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("read timers: %w", err)
	}
	return nil
}

func (q *pebbleTimerQueue) push(g *timerGroup) {
	g.idx = len(q.heap)
	q.heap = append(q.heap, g)
	q.up(g.idx)
}

func (q *pebbleTimerQueue) fix(i int) {
	if !q.down(i) {
		q.up(i)
	}
}

func (q *pebbleTimerQueue) removeAt(i int) {
	last := len(q.heap) - 1
	if i != last {
		q.swap(i, last)
	}
	q.heap[last] = nil
	q.heap = q.heap[:last]
	if i != last {
		q.fix(i)
	}
}

func (q *pebbleTimerQueue) swap(i, j int) {
	q.heap[i], q.heap[j] = q.heap[j], q.heap[i]
	q.heap[i].idx = i
	q.heap[j].idx = j
}

func (q *pebbleTimerQueue) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !groupLess(q.heap[i], q.heap[parent]) {
			return
		}
		q.swap(i, parent)
		i = parent
	}
}

func (q *pebbleTimerQueue) down(i int) bool {
	start, n := i, len(q.heap)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && groupLess(q.heap[r], q.heap[l]) {
			c = r
		}
		if !groupLess(q.heap[c], q.heap[i]) {
			break
		}
		q.swap(i, c)
		i = c
	}
	return i > start
}

package state

import (
	"maps"

	"github.com/weirstream/weir/abi"
)

// timerQueueID names the timers of one operator in one time domain; the
// queues are independent.
type timerQueueID struct {
	owner  uint32
	domain abi.TimeDomain
}

// memTimerQueue is a min-heap of timers ordered by id (appendTimerID: the
// bytes sort in firing order) plus, per key group, the set of ids for
// de-duplication and deletion. The sets are what a snapshot freezes (the
// heap is only an index over them), so they are per key group for
// copy-on-write like the state groups. Popped timers are recycled so that
// steady-state registration allocates only the id string.
type memTimerQueue struct {
	heap []*memTimer
	sets []*memTimerSet // by key group, grown on demand
	free []*memTimer
}

// memTimerSet holds the timers of one queue in one key group by id. A
// snapshot reads only the ids (map keys); the *memTimer values are the
// task's heap entries, which it changes freely.
type memTimerSet struct {
	gen uint64
	ids map[string]*memTimer
}

// lookup returns the timer of id in key group kg, or nil.
func (q *memTimerQueue) lookup(kg int, id []byte) *memTimer {
	if kg < len(q.sets) {
		if s := q.sets[kg]; s != nil {
			return s.ids[string(id)]
		}
	}
	return nil
}

// writableSet returns the set of kg for changing, of the current
// generation: created, or copied if a snapshot may share it.
func (m *Memory) writableSet(q *memTimerQueue, kg int) *memTimerSet {
	if kg < len(q.sets) {
		if s := q.sets[kg]; s != nil && s.gen == m.gen {
			return s
		}
	}
	if kg >= len(q.sets) {
		q.sets = append(q.sets, make([]*memTimerSet, kg+1-len(q.sets))...)
	}
	s := q.sets[kg]
	switch {
	case s == nil:
		s = &memTimerSet{gen: m.gen, ids: make(map[string]*memTimer)}
	case m.live.Load() == 0:
		s.gen = m.gen
	default:
		s = &memTimerSet{gen: m.gen, ids: maps.Clone(s.ids)}
	}
	q.sets[kg] = s
	return s
}

type memTimer struct {
	id  string // appendTimerID(ts, kg, key)
	idx int    // position in heap
}

func (t *memTimer) timestamp() int64 {
	s := t.id[:8]
	return unflipTimestamp(uint64(s[0])<<56 | uint64(s[1])<<48 | uint64(s[2])<<40 | uint64(s[3])<<32 |
		uint64(s[4])<<24 | uint64(s[5])<<16 | uint64(s[6])<<8 | uint64(s[7]))
}

func checkTimer(t *Timer) error {
	if t.Domain != abi.EventTime && t.Domain != abi.ProcessingTime {
		return domainError(t.Domain)
	}
	if uint(t.KeyGroup) >= MaxKeyGroups {
		return keyGroupError(t.KeyGroup)
	}
	return nil
}

// RegisterTimer implements Backend.
func (m *Memory) RegisterTimer(t Timer) error {
	if m.closed {
		return ErrClosed
	}
	if err := checkTimer(&t); err != nil {
		return err
	}
	qid := timerQueueID{t.Owner, t.Domain}
	q := m.timers[qid]
	if q == nil {
		q = &memTimerQueue{}
		m.timers[qid] = q
	}
	m.tbuf = appendTimerID(m.tbuf[:0], t.Timestamp, t.KeyGroup, t.Key)
	if q.lookup(t.KeyGroup, m.tbuf) != nil {
		return nil
	}
	var e *memTimer
	if n := len(q.free); n > 0 {
		e, q.free = q.free[n-1], q.free[:n-1]
	} else {
		e = &memTimer{}
	}
	e.id = string(m.tbuf)
	m.writableSet(q, t.KeyGroup).ids[e.id] = e
	q.push(e)
	return nil
}

// DeleteTimer implements Backend.
func (m *Memory) DeleteTimer(t Timer) error {
	if m.closed {
		return ErrClosed
	}
	if err := checkTimer(&t); err != nil {
		return err
	}
	q := m.timers[timerQueueID{t.Owner, t.Domain}]
	if q == nil {
		return nil
	}
	m.tbuf = appendTimerID(m.tbuf[:0], t.Timestamp, t.KeyGroup, t.Key)
	e := q.lookup(t.KeyGroup, m.tbuf)
	if e == nil {
		return nil
	}
	delete(m.writableSet(q, t.KeyGroup).ids, e.id)
	q.removeAt(e.idx)
	q.recycle(e)
	return nil
}

// FireTimers implements Backend. Each timer is removed before fn sees it;
// t.Key is valid until fn returns. The loop re-reads the heap after every
// callback, so timers fn registers or deletes are taken into account.
func (m *Memory) FireTimers(owner uint32, domain abi.TimeDomain, upTo int64, fn func(Timer) error) error {
	if m.closed {
		return ErrClosed
	}
	if m.firing {
		return ErrReentrantFire
	}
	if domain != abi.EventTime && domain != abi.ProcessingTime {
		return domainError(domain)
	}
	q := m.timers[timerQueueID{owner, domain}]
	if q == nil {
		return nil
	}
	m.firing = true
	defer func() { m.firing = false }()
	for len(q.heap) > 0 {
		e := q.heap[0]
		ts := e.timestamp()
		if ts > upTo {
			break
		}
		q.removeAt(0)
		kg := int(e.id[8])<<8 | int(e.id[9])
		delete(m.writableSet(q, kg).ids, e.id)
		m.fireKey = append(m.fireKey[:0], e.id[timerIDLen:]...)
		q.recycle(e)
		if err := fn(Timer{Owner: owner, Domain: domain, Timestamp: ts, KeyGroup: kg, Key: m.fireKey}); err != nil {
			return err
		}
	}
	return nil
}

// NextTimer implements Backend.
func (m *Memory) NextTimer(owner uint32, domain abi.TimeDomain) (int64, bool, error) {
	if m.closed {
		return 0, false, ErrClosed
	}
	if domain != abi.EventTime && domain != abi.ProcessingTime {
		return 0, false, domainError(domain)
	}
	q := m.timers[timerQueueID{owner, domain}]
	if q == nil || len(q.heap) == 0 {
		return 0, false, nil
	}
	return q.heap[0].timestamp(), true, nil
}

func (q *memTimerQueue) recycle(e *memTimer) {
	e.id = ""
	q.free = append(q.free, e)
}

func (q *memTimerQueue) push(e *memTimer) {
	e.idx = len(q.heap)
	q.heap = append(q.heap, e)
	q.up(e.idx)
}

// removeAt removes the element at heap index i.
func (q *memTimerQueue) removeAt(i int) {
	last := len(q.heap) - 1
	if i != last {
		q.swap(i, last)
	}
	q.heap[last] = nil
	q.heap = q.heap[:last]
	if i != last {
		if !q.down(i) {
			q.up(i)
		}
	}
}

func (q *memTimerQueue) swap(i, j int) {
	q.heap[i], q.heap[j] = q.heap[j], q.heap[i]
	q.heap[i].idx = i
	q.heap[j].idx = j
}

func (q *memTimerQueue) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if q.heap[p].id <= q.heap[i].id {
			return
		}
		q.swap(i, p)
		i = p
	}
}

// down sifts i down and reports whether it moved.
func (q *memTimerQueue) down(i int) bool {
	start, n := i, len(q.heap)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && q.heap[r].id < q.heap[l].id {
			c = r
		}
		if q.heap[i].id <= q.heap[c].id {
			break
		}
		q.swap(i, c)
		i = c
	}
	return i > start
}

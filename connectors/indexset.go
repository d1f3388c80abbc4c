package connectors

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// Both sources split a global record index space over their subtasks:
// subtask s of p produces the indices i with i % p == s, in ascending
// order. A checkpoint must say which indices were produced, in a form that
// survives restoring at another parallelism any number of times
// (2 → 3 → 1 → 4 ...). This file holds that bookkeeping, shared by the
// datagen and file sources.
//
// The produced set is kept as "every index below low, plus a few stripes".
// A stripe (mod, res, end) is {i : i % mod == res, i < end}: exactly what
// one subtask of parallelism mod that has reached index end has produced,
// so a subtask's progress is one stripe, and the union over the subtasks of
// a checkpoint is low plus one stripe per subtask. Normalising advances low
// over the prefix the stripes cover completely and drops stripes that end
// below it, so stripes only survive while subtasks are uneven; after a
// rescale the new subtasks skip the indices an old stripe holds.
//
// Why stripes rather than a bitmap of [low, high)? A bitmap grows with the
// gap between the slowest and the fastest subtask (one bit per record: a
// backpressured subtask 100 M records behind makes it 12 MB), while stripes
// are a few numbers per subtask whatever the gap.

// stripe is the index set {i : i % mod == res, i < end}; mod >= 1 and
// res < mod.
type stripe struct{ mod, res, end uint64 }

// meets reports whether the stripe's residue class intersects the class
// {i : i % mod == res} (by the Chinese remainder theorem: iff the residues
// agree modulo the gcd).
func (st stripe) meets(mod, res uint64) bool {
	g := gcd(st.mod, mod)
	return st.res%g == res%g
}

// indexSet is a set of global record indices: every index below low, and
// every index of its stripes.
type indexSet struct {
	low     uint64
	stripes []stripe
}

// Limits that keep normalisation and Restore bounded whatever the input.
const (
	// maxStripes bounds the stripes a decoded snapshot may hold.
	maxStripes = 1 << 16
	// maxPeriodPoints bounds the candidates firstFree examines to prove a
	// stretch periodic; beyond it (parallelisms with a huge lcm) it scans
	// point by point within its budget.
	maxPeriodPoints = 1 << 12
	// normalizeBudget bounds the candidates one normalisation examines to
	// advance low. Stopping early only leaves low lower than it could be,
	// which is still exact (low is a bound, the stripes hold the rest).
	normalizeBudget = 1 << 16
)

// has reports whether i is in the set.
func (s *indexSet) has(i uint64) bool {
	if i < s.low {
		return true
	}
	for _, st := range s.stripes {
		if i < st.end && i%st.mod == st.res {
			return true
		}
	}
	return false
}

// high is an index from which on nothing is in the set.
func (s *indexSet) high() uint64 {
	h := s.low
	for _, st := range s.stripes {
		h = max(h, st.end)
	}
	return h
}

// union adds every index of o to s (not normalised).
func (s *indexSet) union(o indexSet) {
	s.low = max(s.low, o.low)
	s.stripes = append(s.stripes, o.stripes...)
}

// clone returns a copy sharing no memory with s.
func (s indexSet) clone() indexSet {
	return indexSet{low: s.low, stripes: slices.Clone(s.stripes)}
}

// normalize brings s to its canonical, compact form: stripes merged and
// subsumed ones dropped, low advanced over the prefix the stripes cover,
// stripes ending at or below low dropped, the rest sorted by (mod, res).
func (s *indexSet) normalize() {
	for _, st := range s.stripes {
		if st.mod == 1 {
			s.low = max(s.low, st.end)
		}
	}
	s.prune()
	s.low, _ = s.firstFree(s.low, 1, 0, normalizeBudget)
	s.prune()
}

// prune drops stripes ending at or below low and stripes another one
// subsumes, and sorts the rest by (mod, res).
func (s *indexSet) prune() {
	// Sorted by mod, then res, then end descending, a stripe can only be
	// subsumed by one before it: a subsumer's mod divides the stripe's,
	// and for equal (mod, res) the longer comes first.
	slices.SortFunc(s.stripes, func(a, b stripe) int {
		if c := cmp.Compare(a.mod, b.mod); c != 0 {
			return c
		}
		if c := cmp.Compare(a.res, b.res); c != 0 {
			return c
		}
		return cmp.Compare(b.end, a.end)
	})
	out := s.stripes[:0]
	for _, st := range s.stripes {
		if st.end <= s.low || st.mod == 1 {
			continue
		}
		subsumed := false
		for _, o := range out {
			if st.mod%o.mod == 0 && st.res%o.mod == o.res && o.end >= st.end {
				subsumed = true
				break
			}
		}
		if !subsumed {
			out = append(out, st)
		}
	}
	s.stripes = out
}

// firstFree returns the smallest index i >= from with i % mod == res that is
// not in s, examining at most budget candidates one by one. When the budget
// runs out it returns ok=false and the candidate it stopped at: every index
// of the class in [from, i) is in s, so it is where to continue.
//
// It does not walk a covered stretch point by point. Between from and the
// nearest end of a stripe that meets the class, membership of the class's
// indices repeats with the period lcm(mod, stripe mods); once one period's
// candidates are all covered, so is the stretch, and the search jumps to
// its end.
func (s *indexSet) firstFree(from, mod, res uint64, budget int) (i uint64, ok bool) {
	i = alignUp(max(from, s.low), mod, res)
	limit := uint64(math.MaxUint64)
	if mod <= math.MaxUint64/maxPeriodPoints {
		limit = mod * maxPeriodPoints
	}
	for {
		stretchEnd := uint64(math.MaxUint64)
		period, active := mod, false
		for _, st := range s.stripes {
			if st.end <= i || !st.meets(mod, res) {
				continue
			}
			active = true
			stretchEnd = min(stretchEnd, st.end)
			period = lcmCapped(period, st.mod, limit)
		}
		if !active {
			return i, true
		}
		points := uint64(math.MaxUint64) // no proven period: scan to the end
		if period != 0 {
			points = period / mod
		}
		j := i
		for n := uint64(0); j < stretchEnd && n < points; n++ {
			if budget <= 0 {
				return j, false
			}
			budget--
			if !s.has(j) {
				return j, true
			}
			if j > math.MaxUint64-mod {
				return math.MaxUint64, true // the index space ends here
			}
			j += mod
		}
		// Either the stretch ended or a whole period of it is covered, and
		// with it the rest of the stretch.
		i = alignUp(stretchEnd, mod, res)
	}
}

// alignUp returns the smallest i >= x with i % mod == res, saturating at
// the top of the index space.
func alignUp(x, mod, res uint64) uint64 {
	d := (res + mod - x%mod) % mod
	if x > math.MaxUint64-d {
		return math.MaxUint64
	}
	return x + d
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// lcmCapped returns lcm(a, b), or 0 when it exceeds limit (or when a is
// already 0, meaning "over the limit").
func lcmCapped(a, b, limit uint64) uint64 {
	if a == 0 {
		return 0
	}
	m := a / gcd(a, b)
	if m > limit/b {
		return 0
	}
	return m * b
}

// encode appends the set: low, the number of stripes, then mod, res and end
// of each.
func (s *indexSet) encode(w *snapWriter) {
	w.uvarint(s.low)
	w.uvarint(uint64(len(s.stripes)))
	for _, st := range s.stripes {
		w.uvarint(st.mod)
		w.uvarint(st.res)
		w.uvarint(st.end)
	}
}

// decodeIndexSet reads what encode wrote, checking every stripe.
func decodeIndexSet(r *snapReader) indexSet {
	s := indexSet{low: r.uvarint("low index")}
	n := r.int("stripe count", maxStripes+1)
	for k := 0; k < n && r.err == nil; k++ {
		st := stripe{mod: r.uvarint("stripe modulus"), res: r.uvarint("stripe residue"), end: r.uvarint("stripe end")}
		if r.err == nil && (st.mod == 0 || st.res >= st.mod) {
			r.fail("corrupt snapshot: stripe %d has residue %d modulo %d", k, st.res, st.mod)
		}
		s.stripes = append(s.stripes, st)
	}
	return s
}

// share is one subtask's part of the index space: the indices i with
// i % par == sub that done (what was produced before the last restore) does
// not hold. The subtask produces them in ascending order, so its progress is
// one number, next: it has produced (or skipped, being done) every index of
// its class below next.
type share struct {
	done     indexSet // frozen at Restore; normalised
	sub, par uint64
	// mine is done without the stripes that cannot meet this class, so the
	// per-record check looks at the few that can; high is where it ends.
	mine indexSet
	high uint64
}

func newShare(done indexSet, sub, par uint64) share {
	sh := share{done: done, sub: sub, par: par}
	sh.mine.low = done.low
	for _, st := range done.stripes {
		if st.meets(par, sub) {
			sh.mine.stripes = append(sh.mine.stripes, st)
		}
	}
	sh.high = sh.mine.high()
	return sh
}

// start is the first index of the class not known to be done.
func (sh *share) start() uint64 { return alignUp(sh.done.low, sh.par, sh.sub) }

// isDone reports whether index i (of this class) was produced before the
// restore. It costs one comparison once the subtask is past the restored
// stripes.
func (sh *share) isDone(i uint64) bool { return i < sh.high && sh.mine.has(i) }

// skipDone returns the first index >= i of the class that is not done,
// within budget candidates (see indexSet.firstFree).
func (sh *share) skipDone(i uint64, budget int) (uint64, bool) {
	if i >= sh.high {
		return i, true
	}
	return sh.mine.firstFree(i, sh.par, sh.sub, budget)
}

// produced is the set this subtask's snapshot carries when it has reached
// next: what was done before the restore plus its own stripe. Carrying the
// restored set in every snapshot is what makes a later restore exact
// whatever the parallelisms in between.
func (sh *share) produced(next uint64) indexSet {
	s := sh.done.clone()
	s.stripes = append(s.stripes, stripe{mod: sh.par, res: sh.sub, end: next})
	s.normalize()
	return s
}

// String renders the set for test failures and debugging.
func (s indexSet) String() string {
	return fmt.Sprintf("{<%d %v}", s.low, s.stripes)
}

// restoreSourceStates decodes the snapshots of every old subtask of a
// source node (states[i] of old subtask i; nil: it had not snapshotted) and
// returns the union of the sets they produced, normalised. Each snapshot
// starts with the parallelism and subtask that took it, which must match
// its place in states; body then reads and checks the kind's own fields;
// the produced set comes last.
func restoreSourceStates(states [][]byte, kind byte, body func(old int, r *snapReader) error) (indexSet, error) {
	var u indexSet
	for i, b := range states {
		if b == nil {
			continue
		}
		if err := func() error {
			r, err := openSnapshot(b, kind)
			if err != nil {
				return err
			}
			p := r.int("parallelism", maxSnapshotParallelism+1)
			sub := r.int("subtask", maxSnapshotParallelism)
			if r.err != nil {
				return r.err
			}
			if p != len(states) || sub != i {
				return fmt.Errorf("taken by subtask %d of %d, but it is entry %d of a checkpoint with %d subtasks", sub, p, i, len(states))
			}
			if err := body(i, r); err != nil {
				return err
			}
			set := decodeIndexSet(r)
			if err := r.done(); err != nil {
				return err
			}
			u.union(set)
			return nil
		}(); err != nil {
			return indexSet{}, fmt.Errorf("snapshot of old subtask %d: %w", i, err)
		}
	}
	u.normalize()
	return u, nil
}

// sourceSnapshot starts a source snapshot: the envelope, then the
// parallelism and subtask that take it (restoreSourceStates checks them).
func sourceSnapshot(kind byte, sh *share) *snapWriter {
	w := newSnapWriter(kind)
	w.uvarint(sh.par)
	w.uvarint(sh.sub)
	return w
}

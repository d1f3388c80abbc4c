package connectors

import (
	"math"
	"math/rand/v2"
	"testing"
)

// bruteHas is indexSet membership straight from the definition.
func bruteHas(low uint64, stripes []stripe, i uint64) bool {
	if i < low {
		return true
	}
	for _, st := range stripes {
		if i%st.mod == st.res && i < st.end {
			return true
		}
	}
	return false
}

func randomSet(rng *rand.Rand) indexSet {
	s := indexSet{low: uint64(rng.IntN(20))}
	for n := rng.IntN(8); n > 0; n-- {
		mod := uint64(1 + rng.IntN(6))
		s.stripes = append(s.stripes, stripe{mod: mod, res: uint64(rng.IntN(int(mod))), end: uint64(rng.IntN(200))})
	}
	return s
}

// TestIndexSetNormalizeKeepsMembers checks on random sets that
// normalisation changes the representation, never the set, and leaves low
// at the first missing index (the budget is not reached at these sizes).
func TestIndexSetNormalizeKeepsMembers(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 5000; iter++ {
		s := randomSet(rng)
		orig := s.clone()
		s.normalize()
		firstMissing := uint64(0)
		for bruteHas(orig.low, orig.stripes, firstMissing) {
			firstMissing++
		}
		if s.low != firstMissing {
			t.Fatalf("%v normalised to %v: low %d, first missing index is %d", orig, s, s.low, firstMissing)
		}
		for i := uint64(0); i < 260; i++ {
			if bruteHas(orig.low, orig.stripes, i) != s.has(i) {
				t.Fatalf("%v normalised to %v: membership of %d changed", orig, s, i)
			}
		}
		for _, st := range s.stripes {
			if st.end <= s.low || st.mod == 1 {
				t.Fatalf("%v normalised to %v: stripe %v should be gone", orig, s, st)
			}
		}
	}
}

// TestIndexSetFirstFree compares firstFree with a linear search over every
// class, including the budgeted early stop.
func TestIndexSetFirstFree(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for iter := 0; iter < 5000; iter++ {
		s := randomSet(rng)
		mod := uint64(1 + rng.IntN(6))
		res := uint64(rng.IntN(int(mod)))
		from := uint64(rng.IntN(250))
		want := alignUp(from, mod, res)
		for bruteHas(s.low, s.stripes, want) {
			want += mod
		}
		got, ok := s.firstFree(from, mod, res, 1<<20)
		if !ok || got != want {
			t.Fatalf("%v.firstFree(%d, %d, %d) = %d, %v; want %d", s, from, mod, res, got, ok, want)
		}
		// With a tiny budget it may stop early, but only on covered ground.
		got, ok = s.firstFree(from, mod, res, 1)
		if ok && got != want || !ok && (got > want || got%mod != res) {
			t.Fatalf("%v.firstFree(%d, %d, %d, budget 1) = %d, %v; want %d", s, from, mod, res, got, ok, want)
		}
	}
}

// TestIndexSetFirstFreeJumpsPeriodicStretches: a class covered by stripes
// of another modulus is crossed without visiting its points.
func TestIndexSetFirstFreeJumpsPeriodicStretches(t *testing.T) {
	const end = 50_000_000
	// Subtasks 0 and 2 of 4 reached end; subtasks 1 and 3 nothing.
	s := indexSet{stripes: []stripe{{4, 0, end}, {4, 2, end}, {4, 1, 0}, {4, 3, 0}}}
	got, ok := s.firstFree(0, 2, 0, 100)
	if !ok || got != end {
		t.Fatalf("firstFree = %d, %v; want %d within a budget of 100", got, ok, end)
	}
	got, ok = s.firstFree(0, 2, 1, 100)
	if !ok || got != 1 {
		t.Fatalf("odd class: firstFree = %d, %v; want 1", got, ok)
	}
	// A period longer than maxPeriodPoints is not proven: the search walks
	// point by point within its budget, and says where it stopped.
	const p = maxPeriodPoints + 1
	var all indexSet
	for r := uint64(0); r < p; r++ {
		all.stripes = append(all.stripes, stripe{p, r, 3 * p})
	}
	if got, ok := all.firstFree(0, 1, 0, 100); ok || got != 100 {
		t.Fatalf("long period, small budget: firstFree = %d, %v; want 100, false", got, ok)
	}
	if got, ok := all.firstFree(0, 1, 0, 4*p); !ok || got != 3*p {
		t.Fatalf("long period: firstFree = %d, %v; want %d", got, ok, 3*p)
	}
}

func TestIndexSetEdges(t *testing.T) {
	if got := alignUp(math.MaxUint64-1, 4, 3); got != math.MaxUint64 {
		t.Fatalf("alignUp saturates: got %d", got)
	}
	if got := lcmCapped(6, 4, 100); got != 12 {
		t.Fatalf("lcm(6, 4) = %d", got)
	}
	if got := lcmCapped(1<<40, 3, 1<<41); got != 0 {
		t.Fatalf("lcm over the cap = %d, want 0", got)
	}
	// mod 1 stripes fold into low; equal (mod, res) merge; a stripe whose
	// modulus divides another's and covers it subsumes it.
	s := indexSet{stripes: []stripe{{1, 0, 5}, {3, 1, 40}, {3, 1, 30}, {6, 4, 20}, {6, 4, 50}, {6, 3, 9}}}
	s.normalize()
	// 5 is in no stripe, so low stays there.
	want := indexSet{low: 5, stripes: []stripe{{3, 1, 40}, {6, 3, 9}, {6, 4, 50}}}
	if s.String() != want.String() {
		t.Fatalf("normalised to %v, want %v", s, want)
	}
}

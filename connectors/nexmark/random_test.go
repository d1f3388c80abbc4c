package nexmark

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestJavaRandom checks the port against values printed by Java 17's
// java.util.Random (testdata/README.md): one sequence of every kind of
// draw, in order, from new Random(42), and two from new Random(-7).
func TestJavaRandom(t *testing.T) {
	r := newJavaRandom(42)
	if got := r.nextInt(); got != -1170105035 {
		t.Errorf("nextInt() = %d", got)
	}
	for _, tc := range []struct{ bound, want int32 }{
		{10, 3},
		{16, 10}, // power of two: the multiply path
		{math.MaxInt32, 102948884},
		{1<<30 + 1, 662969970}, // rejects about half the draws
	} {
		if got := r.nextIntn(tc.bound); got != tc.want {
			t.Errorf("nextInt(%d) = %d, want %d", tc.bound, got, tc.want)
		}
	}
	if got := r.nextLong(); got != -1068554554583376509 {
		t.Errorf("nextLong() = %d", got)
	}
	if got := math.Float64bits(r.nextDouble()); got != 4604549709834685269 {
		t.Errorf("nextDouble() bits = %d", got)
	}
	m := newJavaRandom(-7)
	if a, b := m.nextInt(), m.nextLong(); a != 1155869324 || b != -1817049056290694612 {
		t.Errorf("seed -7: nextInt() = %d, nextLong() = %d", a, b)
	}
}

// TestConstantBounds: the constant-divisor draws are nextIntn's.
func TestConstantBounds(t *testing.T) {
	for seed := int64(0); seed < 2000; seed++ {
		a, b := newJavaRandom(seed), newJavaRandom(seed)
		for i := 0; i < 20; i++ {
			if x, y := a.nextIntn13(), b.nextIntn(13); x != y {
				t.Fatalf("seed %d draw %d: nextIntn13 %d, nextIntn(13) %d", seed, i, x, y)
			}
			if x, y := a.nextIntn26(), b.nextIntn(26); x != y {
				t.Fatalf("seed %d draw %d: nextIntn26 %d, nextIntn(26) %d", seed, i, x, y)
			}
		}
	}
}

func TestJavaRound(t *testing.T) {
	// Expected values printed by Java 17's Math.round and (long) casts.
	for _, tc := range []struct {
		x     float64
		round int64
	}{
		{0.49999999999999994, 0}, {-0.5, 0}, {0.5, 1}, {2.5, 3}, {-2.5, -2},
		{math.NaN(), 0}, {1e20, math.MaxInt64}, {-1e20, math.MinInt64},
		{4503599627370497.0, 4503599627370497}, {-4503599627370497.0, -4503599627370497},
		{1.5e-300, 0}, {math.Inf(1), math.MaxInt64},
	} {
		if got := javaRound(tc.x); got != tc.round {
			t.Errorf("javaRound(%v) = %d, want %d", tc.x, got, tc.round)
		}
	}
	for _, tc := range []struct {
		x    float64
		long int64
	}{
		{math.NaN(), 0}, {1e19, math.MaxInt64}, {-1e19, math.MinInt64},
		{9.3e18, math.MaxInt64}, {-9.3e18, math.MinInt64}, {123.9, 123}, {-123.9, -123},
	} {
		if got := javaLong(tc.x); got != tc.long {
			t.Errorf("javaLong(%v) = %d, want %d", tc.x, got, tc.long)
		}
	}
}

// TestPow10 holds pow10 to math.Pow bit for bit, on the values prices
// use (6 times a 53-bit fraction) and on the edges.
func TestPow10(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	check := func(y float64) {
		if got, want := pow10(y), math.Pow(10, y); math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("pow10(%v) = %v, math.Pow %v", y, got, want)
		}
	}
	for _, y := range []float64{0, 0.5, 1, 1.5, 2, 2.5, 3, 5.5, 5.999999999999999, 6, 0x1p-53 * 6, math.Nextafter(0.5, 1), math.Nextafter(0.5, 0)} {
		check(y)
	}
	for i := 0; i < 1_000_000; i++ {
		check(float64(rng.Uint64()>>11) * 0x1p-53 * 6)
	}
}

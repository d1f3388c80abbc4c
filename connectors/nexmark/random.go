package nexmark

import "math"

// javaRandom is java.util.Random: a 48-bit linear congruential generator
// (Knuth, TAOCP 3.2.1) with the reference implementation's seed
// scrambling and derivations. The reference seeds one per event with the
// event id, so the bits must be Java's exactly: every draw below is
// Random's documented algorithm, in int32/int64 arithmetic that wraps as
// Java's does.
type javaRandom struct{ seed uint64 }

const (
	javaMultiplier = 0x5DEECE66D
	javaAddend     = 0xB
	javaMask       = 1<<48 - 1
)

// newJavaRandom is new Random(seed).
func newJavaRandom(seed int64) javaRandom {
	return javaRandom{seed: (uint64(seed) ^ javaMultiplier) & javaMask}
}

// next is Random.next(bits): the top bits of the advanced 48-bit state,
// narrowed to an int as Java's (int) cast does (for 32 bits the result may
// be negative).
func (r *javaRandom) next(bits uint) int32 {
	r.seed = (r.seed*javaMultiplier + javaAddend) & javaMask
	return int32(r.seed >> (48 - bits))
}

// nextInt is Random.nextInt(): 32 uniform bits.
func (r *javaRandom) nextInt() int32 { return r.next(32) }

// nextIntn is Random.nextInt(bound), bound > 0: a multiply for powers of
// two, otherwise rejection of the values in the last partial interval of
// the 31-bit range (the loop's condition overflows on purpose, as Java's).
func (r *javaRandom) nextIntn(bound int32) int32 {
	v := r.next(31)
	m := bound - 1
	if bound&m == 0 {
		return int32((int64(bound) * int64(v)) >> 31)
	}
	for u := v; ; u = r.next(31) {
		v = u % bound
		if u-v+m >= 0 {
			return v
		}
	}
}

// nextIntn13 and nextIntn26 are nextIntn(13) and nextIntn(26) with a
// constant divisor, which the compiler turns into a multiplication: the
// string generators draw one of each per character.
func (r *javaRandom) nextIntn13() int32 {
	for {
		u := r.next(31)
		if v := u % 13; u-v+12 >= 0 {
			return v
		}
	}
}

func (r *javaRandom) nextIntn26() int32 {
	for {
		u := r.next(31)
		if v := u % 26; u-v+25 >= 0 {
			return v
		}
	}
}

// nextLong is Random.nextLong(): two 32-bit draws, the low one sign
// extended before the addition as in Java.
func (r *javaRandom) nextLong() int64 {
	hi := int64(r.next(32))
	return hi<<32 + int64(r.next(32))
}

// nextDouble is Random.nextDouble(): 53 bits scaled into [0, 1).
func (r *javaRandom) nextDouble() float64 {
	hi := int64(r.next(26))
	return float64(hi<<27+int64(r.next(27))) * 0x1.0p-53
}

// nextLongn is the reference's LongGenerator.nextLong(random, n): nextInt
// for n below Integer.MAX_VALUE, else |nextLong() % n| (skewed, as the
// reference's comment admits).
func (r *javaRandom) nextLongn(n int64) int64 {
	if n < math.MaxInt32 {
		return int64(r.nextIntn(int32(n)))
	}
	v := r.nextLong() % n
	if v < 0 {
		v = -v
	}
	return v
}

// javaLong is Java's (long) cast of a double: truncation toward zero,
// saturating at the int64 range, NaN to 0. (Go leaves out-of-range
// conversions implementation-defined.)
func javaLong(f float64) int64 {
	switch {
	case f != f:
		return 0
	case f >= 0x1p63:
		return math.MaxInt64
	case f <= -0x1p63:
		return math.MinInt64
	}
	return int64(f)
}

// javaRound is Java's Math.round(double): the nearest long, ties toward
// positive infinity, computed on the bits as Java 17 does so that no
// intermediate a+0.5 can round.
func javaRound(a float64) int64 {
	bits := int64(math.Float64bits(a))
	const (
		significandWidth = 53
		expBias          = 1023
		expMask          = 0x7FF0000000000000
		signifMask       = 0x000FFFFFFFFFFFFF
	)
	biasedExp := (bits & expMask) >> (significandWidth - 1)
	shift := (significandWidth - 2 + expBias) - biasedExp
	if shift&-64 == 0 { // 0 <= shift < 64
		r := bits&signifMask | (signifMask + 1)
		if bits < 0 {
			r = -r
		}
		return ((r >> shift) + 1) >> 1
	}
	return javaLong(a)
}

// mix64 is the SplitMix64 finaliser, which turns Config.Seed into the
// word xored into every event's seed.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

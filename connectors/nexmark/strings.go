package nexmark

import (
	"math"
	"math/bits"
	"strconv"
	"sync"
)

// The reference's fixed word lists (PersonGenerator, BidGenerator).
var (
	firstNames  = [...]string{"Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter"}
	lastNames   = [...]string{"Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris"}
	usCities    = [...]string{"Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend", "Redmond", "Seattle", "Kent", "Cheyenne"}
	usStates    = [...]string{"AZ", "CA", "ID", "OR", "WA", "WY"}
	hotChannels = [...]string{"Google", "Facebook", "Baidu", "Apple"}
)

const (
	// minStringLength is StringsGenerator.MIN_STRING_LENGTH.
	minStringLength = 3
	// reusableExtraLen is the length of the reference's
	// REUSABLE_EXTRA_STRING, which extra fields are substrings of.
	reusableExtraLen = 1 << 20
	// channelsNumber is BidGenerator.CHANNELS_NUMBER.
	channelsNumber = 10000
	// Seeds of the static tables. The reference builds them from unseeded
	// randoms, different in every JVM; fixing the seeds is what makes the
	// generator deterministic (see doc.go).
	reusableExtraSeed = 0
	channelTableSeed  = 1
)

// tables are the reference's static tables, built once per process from
// fixed seeds and never written after: the 1 MiB string extra fields are
// cut from, the hot channels' URLs and the 10,000 other channels with
// their URLs.
type tables struct {
	reusableExtra []byte
	hotURLs       [len(hotChannels)]string
	channels      [channelsNumber]string // "channel-<i>"
	channelURLs   [channelsNumber]string
}

// sharedTables builds the tables on first use; they are immutable, so
// every Generator shares them. Building them lazily (a few milliseconds,
// 1.5 MB) keeps them out of Wasm operators that import this package only
// to decode events.
var sharedTables = sync.OnceValue(buildTables)

func buildTables() *tables {
	t := &tables{}
	// StringsGenerator.REUSABLE_EXTRA_STRING: nextExactString while the
	// table itself does not exist yet, i.e. its generating branch.
	r := newJavaRandom(reusableExtraSeed)
	t.reusableExtra = appendGeneratedString(make([]byte, 0, reusableExtraLen), &r, reusableExtraLen)
	// BidGenerator's static initialisers, in their order: four hot URLs,
	// then the channel cache.
	r = newJavaRandom(channelTableSeed)
	for i := range t.hotURLs {
		t.hotURLs[i] = string(appendBaseURL(nil, &r))
	}
	for i := range t.channelURLs {
		url := appendBaseURL(nil, &r)
		if r.nextIntn(10) > 0 {
			// Math.abs(Integer.reverse(i)): abs of MinInt32 stays negative.
			v := int32(bits.Reverse32(uint32(i)))
			if v < 0 {
				v = -v
			}
			url = append(url, "&channel_id="...)
			url = strconv.AppendInt(url, int64(v), 10)
		}
		t.channels[i] = "channel-" + strconv.Itoa(i)
		t.channelURLs[i] = string(url)
	}
	return t
}

// appendBaseURL is BidGenerator.getBaseUrl.
func appendBaseURL(dst []byte, r *javaRandom) []byte {
	dst = append(dst, "https://www.nexmark.com/"...)
	dst = appendNextString(dst, r, 5, '_')
	dst = append(dst, '/')
	dst = appendNextString(dst, r, 5, '_')
	dst = append(dst, '/')
	dst = appendNextString(dst, r, 5, '_')
	return append(dst, "/item.htm?query=1"...)
}

// appendNextString is StringsGenerator.nextString(random, maxLength,
// special): 3 to maxLength-1 characters, each the special character with
// probability 1/13, else a lowercase letter, then trimmed (String.trim:
// only a special ' ' is ever trimmed). The trim happens in place, in dst.
func appendNextString(dst []byte, r *javaRandom, maxLength int32, special byte) []byte {
	n := minStringLength + int(r.nextIntn(maxLength-minStringLength))
	start := len(dst)
	for ; n > 0; n-- {
		if r.nextIntn13() == 0 {
			dst = append(dst, special)
		} else {
			dst = append(dst, byte('a'+r.nextIntn26()))
		}
	}
	if special > ' ' {
		return dst
	}
	s := dst[start:]
	lo, hi := 0, len(s)
	for lo < hi && s[lo] <= ' ' {
		lo++
	}
	for hi > lo && s[hi-1] <= ' ' {
		hi--
	}
	if lo > 0 {
		copy(s, s[lo:hi])
	}
	return dst[:start+hi-lo]
}

// appendGeneratedString is the generating branch of
// StringsGenerator.nextExactString: six characters per nextInt(), 'a'
// plus the remainder modulo 26 (negative remainders give the characters
// 'H' to '`' below 'a', as in the reference).
func appendGeneratedString(dst []byte, r *javaRandom, length int) []byte {
	var rnd, n int32
	for ; length > 0; length-- {
		if n == 0 {
			rnd = r.nextInt()
			n = 6 // log_26(2^31)
		}
		dst = append(dst, byte('a'+rnd%26))
		rnd /= 26
		n--
	}
	return dst
}

// appendExtra is StringsGenerator.nextExtra(random, currentSize,
// desiredAverageSize): a string that brings the event to
// desiredAverageSize bytes ± 20%, cut from the reusable table (or, for
// lengths of half the table and more, generated).
func (t *tables) appendExtra(dst []byte, r *javaRandom, currentSize, desiredAverageSize int) []byte {
	if currentSize > desiredAverageSize {
		return dst
	}
	desiredAverageSize -= currentSize
	delta := int32(javaRound(float64(desiredAverageSize) * 0.2))
	size := int32(desiredAverageSize) - delta
	if delta != 0 {
		size += r.nextIntn(2 * delta)
	}
	if size < reusableExtraLen/2 {
		off := r.nextIntn(reusableExtraLen - size)
		return append(dst, t.reusableExtra[off:off+size]...)
	}
	return appendGeneratedString(dst, r, int(size))
}

// nextPrice is PriceGenerator.nextPrice: round(10^(6u) * 100) for a
// uniform u, i.e. log-uniform cents between 1.00 and 1,000,000.00.
//
// Java's Math.pow and Go's math.Pow may differ in the last bit; a price
// differs from the reference's only when that bit decides the rounding of
// x.5, which for these magnitudes is about once per 10^9 prices (none in
// 3 million pow values compared with Java's).
func nextPrice(r *javaRandom) int64 {
	return javaRound(pow10(r.nextDouble()*6.0) * 100.0)
}

// pow10 is math.Pow(10, y) for 0 <= y <= 6, bit for bit (TestPow10), at
// about half the cost: math.Pow's own algorithm for a base of 10, with
// log(10) a constant instead of a call and the special cases that cannot
// occur left out. Prices are nearly half of the generator's time.
func pow10(y float64) float64 {
	switch y {
	case 0:
		return 1
	case 1:
		return 10
	case 0.5:
		return math.Sqrt(10)
	}
	yi, yf := math.Modf(y)
	a1 := 1.0
	if yf != 0 {
		if yf > 0.5 {
			yf--
			yi++
		}
		a1 = math.Exp(yf * math.Ln10)
	}
	// 10^yi by the bits of yi, as math.Pow multiplies them: 10 = 0.625*2^4
	// and its squarings, renormalised to [0.5, 1).
	x1, xe, ae := 0.625, 4, 0
	for i := int64(yi); i != 0; i >>= 1 {
		if i&1 == 1 {
			a1 *= x1
			ae += xe
		}
		x1 *= x1
		xe <<= 1
		if x1 < .5 {
			x1 += x1
			xe--
		}
	}
	// math.Ldexp(a1, ae), as an exact multiplication: the result is a
	// normal number between 1 and 10^6.
	return a1 * math.Float64frombits(uint64(1023+ae)<<52)
}

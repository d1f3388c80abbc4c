package queries

import (
	"encoding/binary"
	"math/bits"
	"strconv"
	"unsafe"

	"github.com/weirstream/weir/sdk/codec"
)

// Text formatting for Go compiled to Wasm. Go's Wasm backend compiles a
// function into a loop around a br_table, and every taken jump between
// basic blocks (a loop's back edge, a passing bounds check, the skipped
// side of an if) goes through that dispatch; Wasm has no multiply-high
// either, so a uint64 division by a constant is four multiplications and
// their carries, and strconv makes one per two digits. strconv.AppendInt
// and a loop over a string's bytes therefore cost 100-150 ns per number
// and 7-8 ns per byte in Wasm, ten times their native cost, and dominated
// q0 and q1. The functions below are straight-line code: digits come from
// multiplications (SWAR, eight at a time), digit counts from a
// leading-zero count, and strings are scanned eight bytes at a time.
//
// The digits are written with unaligned 8-byte stores past the slice's
// length, into room checked once per call, through unsafe pointers.

// reserve returns b with room for n more bytes beyond its length.
func reserve(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		b = append(make([]byte, 0, 2*cap(b)+n), b...)
	}
	return b
}

// digits8 returns x < 10^8 as 8 ASCII digits with leading zeros, the first
// digit in the lowest byte (Lemire's fixed-width conversion: lanes of
// four, then two, then one digit, divided by multiplying).
func digits8(x uint32) uint64 {
	hi := uint32(uint64(x) * 0xD1B71759 >> 45) // x / 10000
	merged := uint64(hi) | uint64(x-hi*10000)<<32
	top := (merged * 10486 >> 20) & (0x7F<<32 | 0x7F) // each lane / 100
	hundreds := (merged-100*top)<<16 + top
	tens := (hundreds * 103 >> 10) & (0xF<<48 | 0xF<<32 | 0xF<<16 | 0xF) // each lane / 10
	tens += (hundreds - 10*tens) << 8
	return tens + 0x3030303030303030
}

// pow10 holds 10^0 to 10^16.
var pow10 = [17]uint64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16}

// Formatting u < 10^16 (appendInt, appendInts, written out in both: a
// call costs ~13 ns in Wasm): the 16 digits with leading zeros come from
// digits8 of u's two halves; d of them are significant, so the 16-d
// leading zeros are dropped by shifting the 16 bytes (w0 then w1) right by
// s bits, as one 128-bit value, and storing the two words (bytes past the
// d digits are garbage beyond the length).

// appendInt appends v in decimal. The common case, 0 <= v < 10^16 (every
// Nexmark id, price and timestamp) with room for 16 bytes, is this one
// function without a call.
func appendInt(b []byte, v int64) []byte {
	n := len(b)
	u := uint64(v)
	if u >= 1e16 || cap(b)-n < 16 {
		return appendIntSlow(b, v)
	}
	p := unsafe.Pointer(unsafe.SliceData(b))
	hi := u / 1e8 // a multiply-high: the divisor is constant
	w0, w1 := digits8(uint32(hi)), digits8(uint32(u-hi*1e8))
	x := u | 1                              // as many digits as u, and 0 has one
	t := uint64(bits.Len64(x)) * 1233 >> 12 // floor(log10(x)) or one more, <= 16
	d := t + 1 - (x-*(*uint64)(unsafe.Add(unsafe.Pointer(&pow10), t*8)))>>63
	s := (16 - d) * 8
	store64(p, n, w0>>s|w1<<(64-s)|w1>>(s-64))
	store64(p, n+8, w1>>s)
	return b[:n+int(d)]
}

// appendInts appends vs in decimal, each followed by a comma: appendInt
// and a comma per value, in one call. vs[point], if point is an index of
// vs, is in thousandths and written with three decimals, as by
// appendThousandths (q1's euros); noPoint for none.
func appendInts(b []byte, point int, vs ...int64) []byte {
	n := len(b)
	if cap(b)-n < 18*len(vs) {
		b = reserve(b, 18*len(vs))
	}
	p := unsafe.Pointer(unsafe.SliceData(b))
	for i, v := range vs {
		u := uint64(v)
		if u >= 1e16 || (i == point && u < 1000) {
			if i == point {
				b = appendThousandths(b[:n], v)
			} else {
				b = appendIntSlow(b[:n], v)
			}
			b = reserve(append(b, ','), 18*(len(vs)-i))
			n, p = len(b), unsafe.Pointer(unsafe.SliceData(b))
			continue
		}
		hi := u / 1e8
		w0, w1 := digits8(uint32(hi)), digits8(uint32(u-hi*1e8))
		x := u | 1
		t := uint64(bits.Len64(x)) * 1233 >> 12
		d := t + 1 - (x-*(*uint64)(unsafe.Add(unsafe.Pointer(&pow10), t*8)))>>63
		s := (16 - d) * 8
		store64(p, n, w0>>s|w1<<(64-s)|w1>>(s-64))
		store64(p, n+8, w1>>s)
		n += int(d)
		if i == point {
			// Slide the last three digits right by one, for the point.
			last3 := *(*[3]byte)(unsafe.Add(p, n-3))
			*(*byte)(unsafe.Add(p, n-3)) = '.'
			*(*[3]byte)(unsafe.Add(p, n-2)) = last3
			n++
		}
		*(*byte)(unsafe.Add(p, n)) = ','
		n++
	}
	return b[:n]
}

// noPoint is appendInts's point for integers only.
const noPoint = -1

func appendIntSlow(b []byte, v int64) []byte {
	u := uint64(v)
	if v < 0 {
		b = append(b, '-')
		u = -u
	}
	return appendUint(b, u)
}

// appendUint appends u in decimal.
func appendUint(b []byte, u uint64) []byte {
	if u >= 1e16 {
		return strconv.AppendUint(b, u, 10)
	}
	return appendInt(reserve(b, 16), int64(u))
}

// appendThousandths appends v/1000 as a decimal with exactly three
// fractional digits (908 -> "0.908", -1500 -> "-1.500"): how q1 prints
// DECIMAL(23, 3) without floating point.
func appendThousandths(b []byte, v int64) []byte {
	u := uint64(v)
	if v < 0 {
		b = append(b, '-')
		u = -u // also right for math.MinInt64
	}
	b = appendUint(b, u/1000)
	f := uint32(u % 1000)
	return append(b, '.', byte('0'+f/100), byte('0'+f/10%10), byte('0'+f%10))
}

// appendText appends s as a CSV field: as it is, or quoted (RFC 4180, with
// inner quotes doubled) when it holds a comma, a double quote or a line
// break. Nexmark's generated strings never need quoting.
func appendText(b, s []byte) []byte {
	if needsQuotes(s) {
		return appendQuoted(b, s)
	}
	return append(b, s...)
}

// appendTextString is appendText of a string.
func appendTextString(b []byte, s string) []byte {
	return appendText(b, unsafe.Slice(unsafe.StringData(s), len(s)))
}

// Byte lanes for the SWAR scan.
const (
	lanes01 = 0x0101010101010101
	lanes80 = 0x8080808080808080
)

// special reports (as a non-zero value) whether one of the 8 bytes of x is
// a comma, a double quote, CR or LF. (x ^ c*lanes01) has a zero byte where
// x has c, and v - lanes01 & ^v & lanes80 is non-zero exactly when v has a
// zero byte.
func special(x uint64) uint64 {
	a, q, r, n := x^','*lanes01, x^'"'*lanes01, x^'\r'*lanes01, x^'\n'*lanes01
	return (a-lanes01)&^a&lanes80 | (q-lanes01)&^q&lanes80 | (r-lanes01)&^r&lanes80 | (n-lanes01)&^n&lanes80
}

// needsQuotes reports whether s holds a comma, a double quote or a line
// break, reading it 8 bytes at a time. Those bytes are all below '-',
// which letters and digits are not: a first pass looks only for bytes
// below '-' (four operations a word, 16 bytes an iteration), and only a
// string that has some (a space, say) gets the exact test.
func needsQuotes(s []byte) bool {
	p := unsafe.Pointer(unsafe.SliceData(s))
	n := len(s)
	if n < 8 {
		var x uint64 = 'a' * lanes01 // padding that is no special byte
		for i := 0; i < n; i++ {
			x = x<<8 | uint64(*(*byte)(unsafe.Add(p, i)))
		}
		return special(x) != 0
	}
	const low = '-' * lanes01
	// The last 8 bytes first, overlapping what the loop reads.
	last := *(*uint64)(unsafe.Add(p, n-8))
	found := (last - low) &^ last & lanes80
	i := 0
	for ; i+16 <= n; i += 16 {
		x, y := *(*uint64)(unsafe.Add(p, i)), *(*uint64)(unsafe.Add(p, i+8))
		found |= (x-low)&^x&lanes80 | (y-low)&^y&lanes80
	}
	if i+8 <= n {
		x := *(*uint64)(unsafe.Add(p, i))
		found |= (x - low) &^ x & lanes80
	}
	if found == 0 {
		return false
	}
	found = special(last)
	for i = 0; i+8 <= n; i += 8 {
		found |= special(*(*uint64)(unsafe.Add(p, i)))
	}
	return found != 0
}

func appendQuoted(b, s []byte) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			b = append(b, '"')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

// int64Key writes v into k as a record key: 8 bytes, big endian.
func int64Key(k *[8]byte, v int64) []byte {
	binary.BigEndian.PutUint64(k[:], uint64(v))
	return k[:]
}

// keyInt64 reads the int64 at the start of a key written by int64Key; ok is
// false when the key is shorter.
func keyInt64(k []byte) (v int64, ok bool) {
	if len(k) < 8 {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(k)), true
}

// view is a codec for byte values that decodes without copying: the value
// a state read returns aliases the SDK's read buffer (or, in Range, the
// scan buffer) and is valid only until the operator's next state call (the
// end of the Range callback). Operators use it for values they consume at
// once: an output prefix, a row to re-emit.
var view codec.Codec[[]byte] = viewCodec{}

type viewCodec struct{}

func (viewCodec) Encode(w *codec.Writer, v []byte) { w.Raw(v) }
func (viewCodec) Decode(r *codec.Reader) []byte    { return r.Rest() }

// floorDiv returns the largest multiple of d that is <= t (d > 0): the start
// of t's window of size d, right for negative t too.
func floorDiv(t, d int64) int64 {
	r := t % d
	if r < 0 {
		r += d
	}
	return t - r
}

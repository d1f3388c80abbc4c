package fixed

import (
	"math/rand/v2"
	"testing"
)

// TestRoundTrip: Decode inverts Encode for every layout package codec
// declares, on the bits of any number of the width, and Get reads what Put
// wrote. (sdk/codec's TestFixedLayouts holds the layouts to the codecs.)
func TestRoundTrip(t *testing.T) {
	layouts := []Layout{
		{Width: 8, Flip: 1 << 63}, {Width: 8}, {Width: 8, Float: true},
		{Width: 4, Flip: 1 << 31}, {Width: 4}, {Width: 4, Float: true},
	}
	r := rand.New(rand.NewPCG(3, 4))
	vals := []uint64{0, 1, 1<<31 - 1, 1 << 31, 1<<32 - 1, 1<<63 - 1, 1 << 63, 1<<64 - 1}
	for range 1000 {
		vals = append(vals, r.Uint64())
	}
	for _, l := range layouts {
		for _, u := range vals {
			if l.Width == 4 {
				u &= 1<<32 - 1
			}
			e := l.Encode(u)
			if l.Width == 4 && e>>32 != 0 {
				t.Fatalf("%+v: Encode(%#x) = %#x has more than 4 bytes", l, u, e)
			}
			if d := l.Decode(e); d != u {
				t.Fatalf("%+v: Decode(Encode(%#x)) = %#x", l, u, d)
			}
			b := make([]byte, l.Width)
			l.Put(b, e)
			if g := l.Get(b); g != e {
				t.Fatalf("%+v: Get(Put(%#x)) = %#x", l, e, g)
			}
		}
	}
}

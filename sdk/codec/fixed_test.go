package codec_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/weirstream/weir/sdk/codec"
	"github.com/weirstream/weir/sdk/internal/fixed"
)

// layoutOf returns the layout a codec declares (the zero Layout if none).
func layoutOf(c any) fixed.Layout {
	if f, ok := c.(fixed.Codec); ok {
		return f.FixedLayout(fixed.Token{})
	}
	return fixed.Layout{}
}

// checkLayout compares, for v, the codec's own encoding with the one the
// SDK computes from the declared layout and the value's bits, and the
// decoding back.
func checkLayout[T any](t *testing.T, name string, c codec.Codec[T], bits func(T) uint64, v T) {
	t.Helper()
	l := layoutOf(c)
	want, err := codec.Marshal(c, v)
	if err != nil {
		t.Fatal(err)
	}
	if int(l.Width) != len(want) {
		t.Fatalf("%s: layout width %d, encoding of %v has %d bytes", name, l.Width, v, len(want))
	}
	got := make([]byte, l.Width)
	l.Put(got, l.Encode(bits(v)))
	if string(got) != string(want) {
		t.Errorf("%s(%v): layout encodes %x, codec %x", name, v, got, want)
	}
	if d := l.Decode(l.Get(want)); d != bits(v) {
		t.Errorf("%s(%v): layout decodes %x to bits %x, want %x", name, v, want, d, bits(v))
	}
}

// TestFixedLayouts holds every declared layout to its codec, on edge
// values and random ones.
func TestFixedLayouts(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	ints := []int64{0, 1, -1, 2, -2, math.MaxInt64, math.MinInt64, math.MaxInt32, math.MinInt32, 1 << 40}
	for range 200 {
		ints = append(ints, int64(r.Uint64()))
	}
	floats := []float64{0, math.Copysign(0, -1), 1, -1, 0.5, -0.5, math.MaxFloat64, -math.MaxFloat64,
		math.SmallestNonzeroFloat64, math.Inf(1), math.Inf(-1), math.NaN()}
	for range 200 {
		floats = append(floats, math.Float64frombits(r.Uint64()))
	}
	for _, n := range ints {
		checkLayout(t, "Int64", codec.Int64, func(v int64) uint64 { return uint64(v) }, n)
		checkLayout(t, "Uint64", codec.Uint64, func(v uint64) uint64 { return v }, uint64(n))
		checkLayout(t, "Int", codec.Int, func(v int) uint64 { return uint64(v) }, int(n))
		checkLayout(t, "Uint", codec.Uint, func(v uint) uint64 { return uint64(v) }, uint(n))
		checkLayout(t, "Int32", codec.Int32, func(v int32) uint64 { return uint64(uint32(v)) }, int32(n))
		checkLayout(t, "Uint32", codec.Uint32, func(v uint32) uint64 { return uint64(v) }, uint32(n))
	}
	for _, f := range floats {
		checkLayout(t, "Float64", codec.Float64, math.Float64bits, f)
		checkLayout(t, "Float32", codec.Float32, func(v float32) uint64 { return uint64(math.Float32bits(v)) }, float32(f))
	}
	// Codecs without a fixed-width number encoding declare none.
	for name, c := range map[string]any{"Raw": codec.Raw, "String": codec.String, "Bool": codec.Bool,
		"JSON": codec.JSON[int64](), "SliceOf": codec.SliceOf(codec.Int64),
		"Struct": codec.Struct(func(w *codec.Writer, v int64) { w.Int64(v) }, func(r *codec.Reader) int64 { return r.Int64() })} {
		if l := layoutOf(c); l != (fixed.Layout{}) {
			t.Errorf("%s declares layout %+v", name, l)
		}
	}
}

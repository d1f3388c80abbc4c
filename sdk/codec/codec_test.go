package codec_test

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/weirstream/weir/sdk/codec"
)

func roundTrip[T any](t *testing.T, c codec.Codec[T], v T, want []byte) {
	t.Helper()
	b, err := codec.Marshal(c, v)
	if err != nil {
		t.Fatalf("Marshal(%v): %v", v, err)
	}
	if want != nil && !bytes.Equal(b, want) {
		t.Errorf("Marshal(%v) = %x, want %x", v, b, want)
	}
	got, err := codec.Unmarshal(c, b)
	if err != nil {
		t.Fatalf("Unmarshal(%x): %v", b, err)
	}
	if !reflect.DeepEqual(got, v) {
		t.Errorf("round trip of %v gave %v", v, got)
	}
}

func TestScalarEncodings(t *testing.T) {
	// Golden encodings, written out by hand: big endian, sign bit flipped.
	roundTrip(t, codec.Int64, 0, []byte{0x80, 0, 0, 0, 0, 0, 0, 0})
	roundTrip(t, codec.Int64, -1, []byte{0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	roundTrip(t, codec.Int64, 258, []byte{0x80, 0, 0, 0, 0, 0, 1, 2})
	roundTrip(t, codec.Int64, math.MinInt64, []byte{0, 0, 0, 0, 0, 0, 0, 0})
	roundTrip(t, codec.Int32, -2, []byte{0x7f, 0xff, 0xff, 0xfe})
	roundTrip(t, codec.Int, 7, []byte{0x80, 0, 0, 0, 0, 0, 0, 7})
	roundTrip(t, codec.Uint64, 1, []byte{0, 0, 0, 0, 0, 0, 0, 1})
	roundTrip(t, codec.Uint32, 0xdeadbeef, []byte{0xde, 0xad, 0xbe, 0xef})
	roundTrip(t, codec.Uint, 3, []byte{0, 0, 0, 0, 0, 0, 0, 3})
	roundTrip(t, codec.Float64, 1.0, []byte{0xbf, 0xf0, 0, 0, 0, 0, 0, 0})                    // 0x3ff0... | sign
	roundTrip(t, codec.Float64, -1.0, []byte{0x40, 0x0f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) // ^0xbff0...
	roundTrip(t, codec.Float32, 1.5, []byte{0xbf, 0xc0, 0, 0})
	roundTrip(t, codec.Bool, true, []byte{1})
	roundTrip(t, codec.Bool, false, []byte{0})
	roundTrip(t, codec.String, "héllo", []byte("héllo"))
	roundTrip(t, codec.String, "", []byte{})
	roundTrip(t, codec.Raw, []byte{0, 1, 2}, []byte{0, 1, 2})
	roundTrip(t, codec.Raw, []byte{}, []byte{})
}

func TestRawDecodeCopies(t *testing.T) {
	b := []byte("abc")
	v, err := codec.Unmarshal(codec.Raw, b)
	if err != nil {
		t.Fatal(err)
	}
	b[0] = 'x'
	if string(v) != "abc" {
		t.Errorf("decoded Raw aliases its input: %q", v)
	}
}

func TestOrderPreserving(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	ints := []int64{math.MinInt64, -1 << 40, -2, -1, 0, 1, 2, 1 << 40, math.MaxInt64}
	floats := []float64{math.Inf(-1), -math.MaxFloat64, -1.5, -math.SmallestNonzeroFloat64, 0, math.SmallestNonzeroFloat64, 0.25, 1, math.MaxFloat64, math.Inf(1)}
	for range 1000 {
		ints = append(ints, int64(r.Uint64()))
		floats = append(floats, r.NormFloat64()*math.Pow(10, float64(r.IntN(40)-20)))
	}
	for i := range ints {
		a, b := ints[i], ints[(i*7+3)%len(ints)]
		ea, _ := codec.Marshal(codec.Int64, a)
		eb, _ := codec.Marshal(codec.Int64, b)
		if got, want := bytes.Compare(ea, eb), cmp(a, b); got != want {
			t.Fatalf("Int64 order of %d, %d: bytes %d, numbers %d", a, b, got, want)
		}
		ua, ub := uint64(a), uint64(b)
		ea, _ = codec.Marshal(codec.Uint64, ua)
		eb, _ = codec.Marshal(codec.Uint64, ub)
		if got, want := bytes.Compare(ea, eb), cmp(ua, ub); got != want {
			t.Fatalf("Uint64 order of %d, %d: bytes %d, numbers %d", ua, ub, got, want)
		}
		a32, b32 := int32(a), int32(b)
		ea, _ = codec.Marshal(codec.Int32, a32)
		eb, _ = codec.Marshal(codec.Int32, b32)
		if got, want := bytes.Compare(ea, eb), cmp(a32, b32); got != want {
			t.Fatalf("Int32 order of %d, %d: bytes %d, numbers %d", a32, b32, got, want)
		}
	}
	for i := range floats {
		a, b := floats[i], floats[(i*13+5)%len(floats)]
		ea, _ := codec.Marshal(codec.Float64, a)
		eb, _ := codec.Marshal(codec.Float64, b)
		if got, want := bytes.Compare(ea, eb), cmp(a, b); got != want {
			t.Fatalf("Float64 order of %g, %g: bytes %d, numbers %d", a, b, got, want)
		}
		roundTrip(t, codec.Float64, a, nil)
		fa, fb := float32(a), float32(b)
		ea, _ = codec.Marshal(codec.Float32, fa)
		eb, _ = codec.Marshal(codec.Float32, fb)
		if got, want := bytes.Compare(ea, eb), cmp(fa, fb); got != want {
			t.Fatalf("Float32 order of %g, %g: bytes %d, numbers %d", fa, fb, got, want)
		}
	}
}

func cmp[T int64 | uint64 | int32 | float64 | float32](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

type acc struct {
	Sum   int64
	Count uint32
	Name  string
	Tags  []byte
	Ok    bool
	Mean  float64
	Inner []string
}

var accCodec = codec.Struct(
	func(w *codec.Writer, a acc) {
		w.Int64(a.Sum)
		w.Uint32(a.Count)
		w.Str(a.Name)
		w.Bytes(a.Tags)
		w.Bool(a.Ok)
		w.Float64(a.Mean)
		codec.Write(w, codec.SliceOf(codec.String), a.Inner)
	},
	func(r *codec.Reader) acc {
		return acc{Sum: r.Int64(), Count: r.Uint32(), Name: r.Str(), Tags: r.Bytes(), Ok: r.Bool(), Mean: r.Float64(),
			Inner: codec.Read(r, codec.SliceOf(codec.String))}
	},
)

func TestStruct(t *testing.T) {
	roundTrip(t, accCodec, acc{Sum: -5, Count: 3, Name: "n", Tags: []byte{9}, Ok: true, Mean: 2.5, Inner: []string{"a", "", "bc"}}, nil)
	roundTrip(t, accCodec, acc{Tags: []byte{}}, nil)

	b, _ := codec.Marshal(accCodec, acc{Name: "abc", Tags: []byte{}})
	for n := range len(b) {
		if _, err := codec.Unmarshal(accCodec, b[:n]); err == nil {
			t.Errorf("decoding %d of %d bytes succeeded", n, len(b))
		}
	}
	if _, err := codec.Unmarshal(accCodec, append(b, 0)); !errors.Is(err, codec.ErrTrailingBytes) {
		t.Errorf("trailing byte: err = %v, want ErrTrailingBytes", err)
	}
}

func TestNestedRawTakesOnlyItsLength(t *testing.T) {
	pair := codec.Struct(
		func(w *codec.Writer, p [2]string) {
			codec.Write(w, codec.String, p[0])
			codec.Write(w, codec.String, p[1])
		},
		func(r *codec.Reader) [2]string {
			return [2]string{codec.Read(r, codec.String), codec.Read(r, codec.String)}
		},
	)
	roundTrip(t, pair, [2]string{"left", "right"}, []byte("\x00\x00\x00\x04left\x00\x00\x00\x05right"))
}

func TestJSON(t *testing.T) {
	type T struct {
		A int    `json:"a"`
		B string `json:"b"`
	}
	roundTrip(t, codec.JSON[T](), T{A: 1, B: "x"}, []byte(`{"a":1,"b":"x"}`))
	if _, err := codec.Unmarshal(codec.JSON[T](), []byte(`{"a":`)); err == nil {
		t.Error("decoding truncated JSON succeeded")
	}
	if _, err := codec.Marshal(codec.JSON[func()](), func() {}); err == nil {
		t.Error("encoding a func as JSON succeeded")
	}
}

func TestBadInput(t *testing.T) {
	cases := []struct {
		name string
		fn   func() error
	}{
		{"short int64", func() error { _, err := codec.Unmarshal(codec.Int64, []byte{1, 2}); return err }},
		{"long int64", func() error { _, err := codec.Unmarshal(codec.Int64, make([]byte, 9)); return err }},
		{"bool 2", func() error { _, err := codec.Unmarshal(codec.Bool, []byte{2}); return err }},
		{"empty bool", func() error { _, err := codec.Unmarshal(codec.Bool, nil); return err }},
		{"huge slice count", func() error {
			_, err := codec.Unmarshal(codec.SliceOf(codec.Int64), []byte{0xff, 0xff, 0xff, 0xff, 0x0f})
			return err
		}},
		{"nested past end", func() error {
			_, err := codec.Unmarshal(codec.SliceOf(codec.Int64), []byte{1, 0, 0, 0, 9, 1})
			return err
		}},
		{"nested trailing", func() error {
			_, err := codec.Unmarshal(codec.SliceOf(codec.Bool), []byte{1, 0, 0, 0, 2, 1, 1})
			return err
		}},
	}
	for _, c := range cases {
		if err := c.fn(); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
}

func TestVarints(t *testing.T) {
	w := codec.NewWriter(nil)
	w.Uvarint(300)
	w.Varint(-3)
	w.Uint8(7)
	w.Raw([]byte("tail"))
	r := codec.NewReader(w.Buffer())
	if v := r.Uvarint(); v != 300 {
		t.Errorf("Uvarint = %d", v)
	}
	if v := r.Varint(); v != -3 {
		t.Errorf("Varint = %d", v)
	}
	if v := r.Uint8(); v != 7 {
		t.Errorf("Uint8 = %d", v)
	}
	if v := string(r.Rest()); v != "tail" {
		t.Errorf("Rest = %q", v)
	}
	if err := r.Finish(); err != nil {
		t.Error(err)
	}
	r.Reset([]byte{0x80})
	r.Uvarint()
	if !errors.Is(r.Err(), codec.ErrTruncated) {
		t.Errorf("bad uvarint: %v", r.Err())
	}
}

func TestEncodeDecodeNoAllocs(t *testing.T) {
	w := codec.NewWriter(make([]byte, 0, 64))
	r := codec.NewReader(nil)
	small := codec.Struct(
		func(w *codec.Writer, v [2]int64) { w.Int64(v[0]); w.Int64(v[1]) },
		func(r *codec.Reader) [2]int64 { return [2]int64{r.Int64(), r.Int64()} },
	)
	allocs := testing.AllocsPerRun(100, func() {
		w.Reset(w.Buffer()[:0])
		codec.Int64.Encode(w, 42)
		small.Encode(w, [2]int64{1, 2})
		r.Reset(w.Buffer())
		if codec.Int64.Decode(r) != 42 || small.Decode(r) != [2]int64{1, 2} || r.Finish() != nil {
			t.Fatal("bad round trip")
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per encode+decode, want 0", allocs)
	}
}

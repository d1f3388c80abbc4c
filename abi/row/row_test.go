package row

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
)

// The encoding is specified byte by byte in the package doc; these bytes are
// written from that text, not from the code.
func TestEncodingGolden(t *testing.T) {
	var b []byte
	b = AppendInt(b, -2)
	b = AppendString(b, "hi")
	b = AppendNull(b)
	b = AppendBool(b, true)
	b = AppendFloat(b, 1.5)
	b = AppendBytes(b, nil)
	want := []byte{
		1, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // int -2
		3, 2, 0, 0, 0, 'h', 'i', // bytes "hi"
		0,    // null
		4, 1, // bool true
		2, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f, // float 1.5 = 0x3ff8000000000000
		3, 0, 0, 0, 0, // empty bytes
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("encoding\n got %v\nwant %v", b, want)
	}
	r := NewReader(b)
	if v := r.Int(); v != -2 {
		t.Errorf("Int = %d", v)
	}
	if v := r.String(); v != "hi" {
		t.Errorf("String = %q", v)
	}
	if !r.IsNull() {
		t.Error("IsNull = false")
	}
	if !r.Bool() {
		t.Error("Bool = false")
	}
	if v := r.Float(); v != 1.5 {
		t.Errorf("Float = %v", v)
	}
	if v := r.Bytes(); len(v) != 0 {
		t.Errorf("Bytes = %q", v)
	}
	if !r.Done() || r.Err() != nil {
		t.Fatalf("Done = %v, Err = %v", r.Done(), r.Err())
	}
	if n, err := Valid(b); n != 6 || err != nil {
		t.Fatalf("Valid = %d, %v", n, err)
	}
}

func TestRoundTrip(t *testing.T) {
	ints := []int64{0, 1, -1, math.MaxInt64, math.MinInt64}
	floats := []float64{0, -0.5, math.Inf(1), math.MaxFloat64}
	var b []byte
	for _, v := range ints {
		b = AppendInt(b, v)
	}
	for _, v := range floats {
		b = AppendFloat(b, v)
	}
	long := strings.Repeat("x", 70000)
	b = AppendString(b, long)
	b = AppendBool(b, false)
	r := NewReader(b)
	for _, want := range ints {
		if got := r.Int(); got != want {
			t.Errorf("Int = %d, want %d", got, want)
		}
	}
	for _, want := range floats {
		if got := r.Float(); got != want {
			t.Errorf("Float = %v, want %v", got, want)
		}
	}
	if got := r.String(); got != long {
		t.Errorf("long string: %d bytes", len(got))
	}
	if r.Bool() || !r.Done() {
		t.Fatalf("tail: %v", r.Err())
	}
}

func TestErrors(t *testing.T) {
	good := AppendString(AppendInt(nil, 7), "abc")
	tests := []struct {
		name string
		row  []byte
		read func(r *Reader)
		want string
	}{
		{"wrong kind", good, func(r *Reader) { _ = r.String() }, "row: field 0: want bytes, got int"},
		{"second field wrong", good, func(r *Reader) { r.Int(); r.Int() }, "row: field 1: want int, got bytes"},
		{"past the end", good, func(r *Reader) { r.Int(); _ = r.String(); r.Int() }, "field 2: want int: row: truncated"},
		{"truncated int", good[:5], func(r *Reader) { r.Int() }, "field 0: int ends after 5 bytes: row: truncated"},
		{"truncated bytes", good[:len(good)-1], func(r *Reader) { r.Int(); r.Bytes() }, "field 1: 3 bytes: row: truncated"},
		{"bad bool", []byte{4, 2}, func(r *Reader) { r.Bool() }, "row: field 0: bool byte 2"},
		{"unknown kind", []byte{9}, func(r *Reader) { r.Skip() }, "row: field 0: unknown kind 9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(tc.row)
			tc.read(&r)
			if r.Err() == nil || !strings.Contains(r.Err().Error(), tc.want) {
				t.Fatalf("Err = %v, want %q", r.Err(), tc.want)
			}
			// Sticky: later reads return zero values and keep the first error.
			first := r.Err()
			if v := r.Int(); v != 0 || r.Err() != first {
				t.Fatalf("after an error: Int = %d, Err = %v", v, r.Err())
			}
			if r.Done() {
				t.Fatal("Done after an error")
			}
		})
	}
	if _, err := Valid(good[:len(good)-1]); !errors.Is(err, ErrShort) {
		t.Fatalf("Valid(truncated) = %v", err)
	}
}

func TestField(t *testing.T) {
	b := AppendInt(AppendString(AppendInt(nil, 1), "name"), 1700000000000)
	if v, err := IntField(b, 2); err != nil || v != 1700000000000 {
		t.Fatalf("IntField(2) = %d, %v", v, err)
	}
	if k, p, err := Field(b, 1); err != nil || k != Bytes || string(p) != "name" {
		t.Fatalf("Field(1) = %v %q %v", k, p, err)
	}
	if _, err := IntField(b, 1); err == nil || !strings.Contains(err.Error(), "field 1: want int, got bytes") {
		t.Fatalf("IntField(1) = %v", err)
	}
	if _, _, err := Field(b, 3); err == nil || !strings.Contains(err.Error(), "no field 3 (the row has 3)") {
		t.Fatalf("Field(3) = %v", err)
	}
}

func TestReaderDoesNotAllocate(t *testing.T) {
	b := AppendInt(AppendString(AppendInt(nil, 1), "name"), 2)
	var r Reader
	n := testing.AllocsPerRun(100, func() {
		r.Reset(b)
		_ = r.Int()
		_ = r.String()
		_ = r.Int()
	})
	if n != 0 {
		t.Fatalf("%v allocs per row", n)
	}
}

func FuzzValid(f *testing.F) {
	f.Add(AppendString(AppendInt(nil, 1), "x"))
	f.Add([]byte{3, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := Valid(b)
		if err != nil {
			return
		}
		// A valid row re-encodes to itself field by field.
		r := NewReader(b)
		var out []byte
		for i := 0; i < n; i++ {
			k, _ := r.Next()
			switch k {
			case Null:
				r.IsNull()
				out = AppendNull(out)
			case Int:
				out = AppendInt(out, r.Int())
			case Float:
				out = AppendFloat(out, r.Float())
			case Bytes:
				out = AppendBytes(out, r.Bytes())
			case Bool:
				out = AppendBool(out, r.Bool())
			}
		}
		if !bytes.Equal(out, b) || !r.Done() {
			t.Fatalf("re-encoding differs: %v vs %v", out, b)
		}
	})
}

func BenchmarkReadBidRow(b *testing.B) {
	var row []byte
	row = AppendInt(row, 2)
	row = AppendInt(row, 1001)
	row = AppendInt(row, 2001)
	row = AppendInt(row, 12345)
	row = AppendString(row, "Google")
	row = AppendString(row, "https://www.nexmark.com/abc/def/item.htm?query=1")
	row = AppendInt(row, 1700000000000)
	row = AppendString(row, strings.Repeat("e", 40))
	b.SetBytes(int64(len(row)))
	var r Reader
	var sum int64
	for b.Loop() {
		r.Reset(row)
		sum += r.Int() + r.Int() + r.Int() + r.Int()
		_ = r.Bytes()
		_ = r.Bytes()
		sum += r.Int()
		_ = r.Bytes()
	}
	_ = sum
}

package queries

import (
	"bytes"
	"github.com/weirstream/weir/abi/row"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

func TestAppendThousandths(t *testing.T) {
	for _, c := range []struct {
		v    int64
		want string
	}{
		{0, "0.000"},
		{1, "0.001"},
		{908, "0.908"},
		{10 * 908, "9.080"},
		{123 * 908, "111.684"},
		{1000, "1.000"},
		{-1500, "-1.500"},
		{-7, "-0.007"},
		{math.MaxInt64, "9223372036854775.807"},
		{math.MinInt64, "-9223372036854775.808"},
	} {
		if got := string(appendThousandths([]byte("x"), c.v)); got != "x"+c.want {
			t.Errorf("appendThousandths(%d) = %q, want %q", c.v, got, "x"+c.want)
		}
	}
}

func TestAppendInt(t *testing.T) {
	for _, c := range []struct {
		v    int64
		want string
	}{{0, "0"}, {7, "7"}, {10, "10"}, {-1, "-1"}, {1700000000000, "1700000000000"}, {math.MinInt64, "-9223372036854775808"}} {
		if got := string(appendInt(nil, c.v)); got != c.want {
			t.Errorf("appendInt(%d) = %q, want %q", c.v, got, c.want)
		}
	}
}

func TestAppendText(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"Los Angeles", "Los Angeles"},
		{"a,b", `"a,b"`},
		{`say "hi"`, `"say ""hi"""`},
		{"two\nlines", "\"two\nlines\""},
		{"cr\r", "\"cr\r\""},
	} {
		if got := string(appendTextString(nil, c.in)); got != c.want {
			t.Errorf("appendText(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestFloorDiv(t *testing.T) {
	for _, c := range []struct{ t, d, want int64 }{
		{0, 10, 0}, {9, 10, 0}, {10, 10, 10}, {-1, 10, -10}, {-10, 10, -10}, {-11, 10, -20},
	} {
		if got := floorDiv(c.t, c.d); got != c.want {
			t.Errorf("floorDiv(%d, %d) = %d, want %d", c.t, c.d, got, c.want)
		}
	}
}

func TestKeys(t *testing.T) {
	var k [8]byte
	for _, v := range []int64{0, 1, -1, math.MaxInt64, math.MinInt64} {
		got, ok := keyInt64(int64Key(&k, v))
		if !ok || got != v {
			t.Errorf("key of %d reads back as %d, %v", v, got, ok)
		}
	}
	if _, ok := keyInt64(k[:7]); ok {
		t.Error("a 7-byte key read as an int64")
	}
}

// appendRowInt is row.AppendInt, for tests that build rows.
func appendRowInt(b []byte, v int64) []byte { return row.AppendInt(b, v) }

func TestAppendUint(t *testing.T) {
	check := func(u uint64) {
		t.Helper()
		if got, want := string(appendUint(reserve([]byte("x"), 16), u)), "x"+strconv.FormatUint(u, 10); got != want {
			t.Fatalf("appendUint(%d) = %q, want %q", u, got, want)
		}
	}
	for _, u := range []uint64{0, 9, 10, 99, 100, 101, 999, 1000, 99999999, 1e8, 1e8 + 1, 123456789012, 1e16 - 1, 1e16, 1e16 + 7, math.MaxUint64} {
		check(u)
		check(u - 1)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100_000 {
		check(r.Uint64() >> r.UintN(64))
	}
	// The magic division by 100 over the uint32 range it is used on.
	for x := uint32(0); x < 1e8; x += 7 {
		if q := uint32(uint64(x) * 0x51EB851F >> 37); q != x/100 {
			t.Fatalf("%d / 100 = %d, magic says %d", x, x/100, q)
		}
	}
}

func TestNeedsQuotes(t *testing.T) {
	// Every length up to 40, every position, every byte value.
	for n := 1; n <= 40; n++ {
		for i := 0; i < n; i++ {
			for c := 0; c < 256; c++ {
				s := bytes.Repeat([]byte{'x'}, n)
				if n > 3 {
					s[(i+n/2)%n] = ' ' // a low byte that is no special one
				}
				s[i] = byte(c)
				want := c == ',' || c == '"' || c == '\r' || c == '\n'
				if got := needsQuotes(s); got != want {
					t.Fatalf("needsQuotes(%q) = %v", s, got)
				}
			}
		}
	}
	if needsQuotes(nil) {
		t.Error("needsQuotes of nothing")
	}
}

func TestAppendInts(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	values := []int64{0, 1, 9, 10, 999, 1000, 1001, 99999999, 1e8, 1e15, 1e16 - 1, 1e16, -1, -999, -1000, math.MaxInt64, math.MinInt64}
	for range 2000 {
		values = append(values, int64(r.Uint64()>>r.UintN(64)), -int64(r.Uint64()>>(1+r.UintN(63))))
	}
	for i := 0; i+3 <= len(values); i++ {
		vs := values[i : i+3]
		for _, point := range []int{noPoint, 0, 1, 2} {
			want := "x"
			for j, v := range vs {
				if j == point {
					want += string(appendThousandths(nil, v)) + ","
				} else {
					want += strconv.FormatInt(v, 10) + ","
				}
			}
			if got := string(appendInts([]byte("x"), point, vs...)); got != want {
				t.Fatalf("appendInts(%v, point %d) = %q, want %q", vs, point, got, want)
			}
		}
	}
}

package sdk_test

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/sdk"
	"github.com/weirstream/weir/sdk/codec"
	"github.com/weirstream/weir/sdk/sdktest"
)

// The hot paths (sdk/doc.go, "The hot path") encode fixed-width numbers
// inline and write records without abi.AppendRecord. These tests hold them
// to the general paths: the bytes stored and emitted must be those of
// package codec and package abi, and every failure must read as before.

// fixedOp keeps one state per fixed-width codec. Commands:
// "set N" sets every state from N; "get" emits every value; "raw NAME HEX"
// stores HEX under value state NAME with codec.Raw (the same state, as
// names identify state), to plant a value of the wrong size.
type fixedOp struct {
	i64 *sdk.ValueState[int64]
	u64 *sdk.ValueState[uint64]
	i   *sdk.ValueState[int]
	u   *sdk.ValueState[uint]
	f64 *sdk.ValueState[float64]
	i32 *sdk.ValueState[int32]
	u32 *sdk.ValueState[uint32]
	f32 *sdk.ValueState[float32]
	m   *sdk.MapState[int32, float64]
	l   *sdk.ListState[uint64]
	raw map[string]*sdk.ValueState[[]byte]
}

func newValue[T any](ctx *sdk.Context, err *error, name string, c codec.Codec[T]) *sdk.ValueState[T] {
	if *err != nil {
		return nil
	}
	v, e := sdk.NewValueState(ctx, name, c)
	*err = e
	return v
}

func (o *fixedOp) Open(ctx *sdk.Context) (err error) {
	o.i64 = newValue(ctx, &err, "i64", codec.Int64)
	o.u64 = newValue(ctx, &err, "u64", codec.Uint64)
	o.i = newValue(ctx, &err, "i", codec.Int)
	o.u = newValue(ctx, &err, "u", codec.Uint)
	o.f64 = newValue(ctx, &err, "f64", codec.Float64)
	o.i32 = newValue(ctx, &err, "i32", codec.Int32)
	o.u32 = newValue(ctx, &err, "u32", codec.Uint32)
	o.f32 = newValue(ctx, &err, "f32", codec.Float32)
	o.raw = map[string]*sdk.ValueState[[]byte]{}
	for _, name := range []string{"i64", "u64", "f64", "i32", "f32"} {
		o.raw[name] = newValue(ctx, &err, name, codec.Raw)
	}
	if err != nil {
		return err
	}
	if o.m, err = sdk.NewMapState(ctx, "m", codec.Int32, codec.Float64); err != nil {
		return err
	}
	o.l, err = sdk.NewListState(ctx, "l", codec.Uint64)
	return err
}

func (o *fixedOp) Process(ctx *sdk.Context, r sdk.Record) error {
	cmd := strings.Fields(string(r.Value))
	switch cmd[0] {
	case "set":
		n, err := strconv.ParseInt(cmd[1], 10, 64)
		if err != nil {
			return err
		}
		for _, err := range []error{
			o.i64.Set(n), o.u64.Set(uint64(n)), o.i.Set(int(n)), o.u.Set(uint(n)),
			o.f64.Set(float64(n) / 4), o.i32.Set(int32(n)), o.u32.Set(uint32(n)), o.f32.Set(float32(n) / 4),
			o.m.Put(int32(n), float64(n)/4), o.l.Append(uint64(n)),
		} {
			if err != nil {
				return err
			}
		}
	case "get":
		var b strings.Builder
		add := func(v any, ok bool, err error) {
			if err != nil {
				fmt.Fprintf(&b, "error(%v) ", err)
				return
			}
			fmt.Fprintf(&b, "%v/%v ", v, ok)
		}
		add(o.i64.Get())
		add(o.u64.Get())
		add(o.i.Get())
		add(o.u.Get())
		add(o.f64.Get())
		add(o.i32.Get())
		add(o.u32.Get())
		add(o.f32.Get())
		err := o.m.Range(func(k int32, v float64) error {
			fmt.Fprintf(&b, "m[%d]=%v ", k, v)
			return nil
		})
		if err != nil {
			return err
		}
		err = o.l.Range(func(v uint64) error {
			fmt.Fprintf(&b, "l:%d ", v)
			return nil
		})
		if err != nil {
			return err
		}
		ctx.Emit(r.Key, []byte(strings.TrimSpace(b.String())))
	case "raw":
		var v []byte
		if len(cmd) > 2 {
			var err error
			if v, err = hex.DecodeString(cmd[2]); err != nil {
				return err
			}
		}
		return o.raw[cmd[1]].Set(v)
	}
	return nil
}

func init() {
	sdk.Export("fixed", func() sdk.Operator { return &fixedOp{} }, sdk.Keyed())
}

func mustMarshal[T any](t *testing.T, c codec.Codec[T], v T) string {
	t.Helper()
	b, err := codec.Marshal(c, v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestFixedWidthState stores and reads every fixed-width codec through the
// inline paths: the stored bytes are codec.Marshal's, and the values read
// back are the values written.
func TestFixedWidthState(t *testing.T) {
	for _, n := range []int64{0, 1, -1, 7, -123456789, math.MaxInt64, math.MinInt64, math.MaxInt32 + 1, 1 << 53} {
		t.Run(strconv.FormatInt(n, 10), func(t *testing.T) {
			st := sdktest.NewState()
			nat := openNative(t, st, "fixed", "")
			process(t, nat, "k", fmt.Sprint("set ", n))
			want := map[string]string{
				"i64": mustMarshal(t, codec.Int64, n),
				"u64": mustMarshal(t, codec.Uint64, uint64(n)),
				"i":   mustMarshal(t, codec.Int, int(n)),
				"u":   mustMarshal(t, codec.Uint, uint(n)),
				"f64": mustMarshal(t, codec.Float64, float64(n)/4),
				"i32": mustMarshal(t, codec.Int32, int32(n)),
				"u32": mustMarshal(t, codec.Uint32, uint32(n)),
				"f32": mustMarshal(t, codec.Float32, float32(n)/4),
				"m":   mustMarshal(t, codec.Float64, float64(n)/4),
				"l":   mustMarshal(t, codec.Uint64, uint64(n)),
			}
			for _, c := range st.Dump() {
				if w, ok := want[c.State]; !ok || c.Value != w {
					t.Errorf("%s stored %x, want %x", c, c.Value, w)
				}
				if c.State == "m" && c.Sub != mustMarshal(t, codec.Int32, int32(n)) {
					t.Errorf("map key stored %x", c.Sub)
				}
				delete(want, c.State)
			}
			if len(want) != 0 {
				t.Errorf("not stored: %v", want)
			}
			got := process(t, nat, "k", "get")
			wantGet := fmt.Sprintf("%v/true %v/true %v/true %v/true %v/true %v/true %v/true %v/true m[%d]=%v l:%d",
				n, uint64(n), int(n), uint(n), float64(n)/4, int32(n), uint32(n), float32(n)/4, int32(n), float64(n)/4, uint64(n))
			if len(got) != 1 || got[0] != wantGet {
				t.Errorf("get:\n%q\nwant\n%q", got, wantGet)
			}
		})
	}
}

// TestFixedWidthStateErrors plants values of the wrong size: the inline
// paths must report exactly what the codec reports, and an absent value
// must read as absent.
func TestFixedWidthStateErrors(t *testing.T) {
	nat := openNative(t, sdktest.NewState(), "fixed", "")
	got := process(t, nat, "fresh", "get")
	if want := "0/false 0/false 0/false 0/false 0/false 0/false 0/false 0/false"; len(got) != 1 || got[0] != want {
		t.Errorf("absent values: %q, want %q", got, want)
	}
	for _, c := range []struct {
		state, hex string
		decode     func([]byte) error
	}{
		{"i64", "0102", func(b []byte) error { _, err := codec.Unmarshal(codec.Int64, b); return err }},
		{"i64", "010203040506070809", func(b []byte) error { _, err := codec.Unmarshal(codec.Int64, b); return err }},
		{"u64", "", func(b []byte) error { _, err := codec.Unmarshal(codec.Uint64, b); return err }},
		{"f64", "0102030405060708ff", func(b []byte) error { _, err := codec.Unmarshal(codec.Float64, b); return err }},
		{"i32", "01020304ff", func(b []byte) error { _, err := codec.Unmarshal(codec.Int32, b); return err }},
		{"f32", "010203", func(b []byte) error { _, err := codec.Unmarshal(codec.Float32, b); return err }},
	} {
		key := c.state + "-" + c.hex
		process(t, nat, key, "raw "+c.state+" "+c.hex)
		b, _ := hex.DecodeString(c.hex)
		want := fmt.Sprintf("error(sdk: value state %q: decode: %v)", c.state, c.decode(b))
		got := process(t, nat, key, "get")
		if len(got) != 1 || !strings.Contains(got[0], want) {
			t.Errorf("%s=%s: got %q, want it to contain %q", c.state, c.hex, got, want)
		}
	}
}

// emitOp emits, per record, one record per command in its value: "e K V"
// (Emit), "l K V" (EmitLate), "t K V TS" (EmitWithTimestamp), "r K V"
// (EmitReserve, filled with V), "z K N" (EmitReserve of N bytes, left as
// returned). "-" stands for an empty key or value.
type emitOp struct{}

func (emitOp) Process(ctx *sdk.Context, r sdk.Record) error {
	arg := func(s string) []byte {
		if s == "-" {
			return nil
		}
		return []byte(s)
	}
	for _, line := range strings.Split(string(r.Value), ";") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "e":
			ctx.Emit(arg(f[1]), arg(f[2]))
		case "l":
			ctx.EmitLate(arg(f[1]), arg(f[2]))
		case "t":
			ts, err := strconv.ParseInt(f[3], 10, 64)
			if err != nil {
				return err
			}
			ctx.EmitWithTimestamp(arg(f[1]), arg(f[2]), ts)
		case "r":
			v := arg(f[2])
			copy(ctx.EmitReserve(arg(f[1]), len(v)), v)
		case "z":
			n, err := strconv.Atoi(f[2])
			if err != nil {
				return err
			}
			ctx.EmitReserve(arg(f[1]), n)
		}
	}
	return nil
}

func init() {
	sdk.Export("emit", func() sdk.Operator { return emitOp{} })
}

// TestEmitEncoding emits keys and values of 0 to 20 bytes through each emit
// method and compares the output with abi.AppendRecord's. Reserved values
// must come back zeroed even where the buffer held other bytes before (a
// batch that filled it earlier).
func TestEmitEncoding(t *testing.T) {
	nat := openNative(t, nil, "emit", "")
	// Dirty the output buffer with 0xff-ish bytes first.
	dirty := strings.Repeat("e "+strings.Repeat("x", 40)+" "+strings.Repeat("y", 200)+";", 200)
	if _, err := nat.Process(0, abi.AppendRecord(nil, 0, []byte("k"), []byte(dirty), 3)); err != nil {
		t.Fatal(err)
	}
	src := "abcdefghijklmnopqrstuvwxyz"
	var cmds []string
	var want []byte
	for n := 0; n <= 20; n++ {
		s, b := src[:n], []byte(src[:n])
		if n == 0 {
			s, b = "-", nil
		}
		// key of length n, value of length 20-n
		vs, vb := src[n:20], []byte(src[n:20])
		if n == 20 {
			vs, vb = "-", nil
		}
		cmds = append(cmds, "e "+s+" "+vs, "l "+vs+" "+s, "t "+s+" "+s+" -77", "r "+s+" "+vs, "z "+s+" "+strconv.Itoa(n))
		want = abi.AppendRecord(want, abi.TagMain, b, vb, 9)
		want = abi.AppendRecord(want, abi.TagLate, vb, b, 9)
		want = abi.AppendRecord(want, abi.TagMain, b, b, -77)
		want = abi.AppendRecord(want, abi.TagMain, b, vb, 9)
		want = abi.AppendRecord(want, abi.TagMain, b, make([]byte, n), 9)
	}
	out, err := nat.Process(0, abi.AppendRecord(nil, 0, []byte("k"), []byte(strings.Join(cmds, ";")), 9))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, want) {
		d := abi.NewDecoder(out)
		w := abi.NewDecoder(want)
		for i := 0; d.More() && w.More(); i++ {
			var g, e abi.Event
			if err := d.Next(&g); err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
			_ = w.Next(&e)
			if fmt.Sprint(g) != fmt.Sprint(e) {
				t.Fatalf("record %d (%s): got %+v, want %+v", i, cmds[i], g, e)
			}
		}
		t.Fatalf("output differs: %d bytes, want %d", len(out), len(want))
	}
}

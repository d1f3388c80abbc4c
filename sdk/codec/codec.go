package codec

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/weirstream/weir/sdk/internal/fixed"
)

// Codec encodes and decodes values of type T.
//
// Encode appends v to w; it reports failures with w.Fail. Decode reads one
// value from r; it reports malformed input with r.Fail (the Reader's
// accessors do so themselves on truncated input). A Codec must be stateless
// or safe for concurrent use: one codec value is shared by every operator
// instance of a process.
type Codec[T any] interface {
	Encode(w *Writer, v T)
	Decode(r *Reader) T
}

// ErrTrailingBytes is returned by Unmarshal when the input holds more than
// one value.
var ErrTrailingBytes = errors.New("codec: trailing bytes after value")

// Marshal encodes v with c into a new byte slice.
func Marshal[T any](c Codec[T], v T) ([]byte, error) {
	return Append(nil, c, v)
}

// Append appends the encoding of v with c to dst.
func Append[T any](dst []byte, c Codec[T], v T) ([]byte, error) {
	w := Writer{buf: dst}
	c.Encode(&w, v)
	if w.err != nil {
		return dst, w.err
	}
	return w.buf, nil
}

// Unmarshal decodes b, which must hold exactly one value, with c.
func Unmarshal[T any](c Codec[T], b []byte) (T, error) {
	r := Reader{buf: b}
	v := c.Decode(&r)
	if err := r.Finish(); err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

// Write appends v encoded with c to w, prefixed with its length (4 bytes, big endian), so that a
// Struct codec can nest any codec (including Raw, String and JSON, which
// otherwise take the whole input).
func Write[T any](w *Writer, c Codec[T], v T) {
	at := len(w.buf)
	w.buf = append(w.buf, 0, 0, 0, 0)
	c.Encode(w, v)
	n := len(w.buf) - at - 4
	if uint64(n) > math.MaxUint32 {
		w.Fail(fmt.Errorf("codec: nested value of %d bytes is too long", n))
		return
	}
	binary.BigEndian.PutUint32(w.buf[at:], uint32(n))
}

// Read reads a value written by Write with c.
func Read[T any](r *Reader, c Codec[T]) T {
	var zero T
	n := r.Uint32()
	if r.err != nil {
		return zero
	}
	if uint64(n) > uint64(len(r.buf)) {
		r.Fail(fmt.Errorf("codec: nested value of %d bytes past the end (%d left)", n, len(r.buf)))
		return zero
	}
	// Decode in place on a shortened view of the same Reader, so that the
	// nested decode allocates no second Reader.
	rest := r.buf[n:]
	r.buf = r.buf[:n]
	v := c.Decode(r)
	if r.err == nil && len(r.buf) != 0 {
		r.Fail(fmt.Errorf("codec: nested value: %w", ErrTrailingBytes))
	}
	r.buf = rest
	if r.err != nil {
		return zero
	}
	return v
}

// Raw is the identity codec for byte slices. Decoding copies: the decoded
// slice stays valid after the state call that read it.
var Raw Codec[[]byte] = rawCodec{}

type rawCodec struct{}

func (rawCodec) Encode(w *Writer, v []byte) { w.Raw(v) }
func (rawCodec) Decode(r *Reader) []byte {
	b := r.Rest()
	if len(b) == 0 {
		return []byte{}
	}
	return append(make([]byte, 0, len(b)), b...)
}

// String encodes a string as its bytes.
var String Codec[string] = stringCodec{}

type stringCodec struct{}

func (stringCodec) Encode(w *Writer, v string) { w.RawString(v) }
func (stringCodec) Decode(r *Reader) string    { return string(r.Rest()) }

// Int64 encodes an int64 in 8 bytes, order-preserving.
var Int64 Codec[int64] = int64Codec{}

type int64Codec struct{}

func (int64Codec) Encode(w *Writer, v int64) { w.Int64(v) }
func (int64Codec) Decode(r *Reader) int64    { return r.Int64() }

// Int32 encodes an int32 in 4 bytes, order-preserving.
var Int32 Codec[int32] = int32Codec{}

type int32Codec struct{}

func (int32Codec) Encode(w *Writer, v int32) { w.Int32(v) }
func (int32Codec) Decode(r *Reader) int32    { return r.Int32() }

// Int encodes an int in 8 bytes, order-preserving (as Int64).
var Int Codec[int] = intCodec{}

type intCodec struct{}

func (intCodec) Encode(w *Writer, v int) { w.Int64(int64(v)) }
func (intCodec) Decode(r *Reader) int    { return int(r.Int64()) }

// Uint64 encodes a uint64 in 8 bytes, order-preserving.
var Uint64 Codec[uint64] = uint64Codec{}

type uint64Codec struct{}

func (uint64Codec) Encode(w *Writer, v uint64) { w.Uint64(v) }
func (uint64Codec) Decode(r *Reader) uint64    { return r.Uint64() }

// Uint32 encodes a uint32 in 4 bytes, order-preserving.
var Uint32 Codec[uint32] = uint32Codec{}

type uint32Codec struct{}

func (uint32Codec) Encode(w *Writer, v uint32) { w.Uint32(v) }
func (uint32Codec) Decode(r *Reader) uint32    { return r.Uint32() }

// Uint encodes a uint in 8 bytes, order-preserving (as Uint64).
var Uint Codec[uint] = uintCodec{}

type uintCodec struct{}

func (uintCodec) Encode(w *Writer, v uint) { w.Uint64(uint64(v)) }
func (uintCodec) Decode(r *Reader) uint    { return uint(r.Uint64()) }

// Float64 encodes a float64 in 8 bytes, order-preserving for non-NaN values.
var Float64 Codec[float64] = float64Codec{}

type float64Codec struct{}

func (float64Codec) Encode(w *Writer, v float64) { w.Float64(v) }
func (float64Codec) Decode(r *Reader) float64    { return r.Float64() }

// Float32 encodes a float32 in 4 bytes, order-preserving for non-NaN values.
var Float32 Codec[float32] = float32Codec{}

type float32Codec struct{}

func (float32Codec) Encode(w *Writer, v float32) { w.Float32(v) }
func (float32Codec) Decode(r *Reader) float32    { return r.Float32() }

// Bool encodes a bool in one byte, 0 or 1.
var Bool Codec[bool] = boolCodec{}

type boolCodec struct{}

func (boolCodec) Encode(w *Writer, v bool) { w.Bool(v) }
func (boolCodec) Decode(r *Reader) bool    { return r.Bool() }

// JSON returns a codec that encodes T with encoding/json. It is convenient
// and slow (reflection, allocations); prefer Struct on hot paths.
func JSON[T any]() Codec[T] { return jsonCodec[T]{} }

type jsonCodec[T any] struct{}

func (jsonCodec[T]) Encode(w *Writer, v T) {
	b, err := json.Marshal(v)
	if err != nil {
		w.Fail(fmt.Errorf("codec: json: %w", err))
		return
	}
	w.Raw(b)
}

func (jsonCodec[T]) Decode(r *Reader) T {
	var v T
	if err := json.Unmarshal(r.Rest(), &v); err != nil {
		r.Fail(fmt.Errorf("codec: json: %w", err))
	}
	return v
}

// Struct returns a codec built from an encode and a decode function, for
// small structs written field by field:
//
//	type Acc struct{ Sum, Count int64 }
//
//	var AccCodec = codec.Struct(
//		func(w *codec.Writer, a Acc) { w.Int64(a.Sum); w.Int64(a.Count) },
//		func(r *codec.Reader) Acc { return Acc{Sum: r.Int64(), Count: r.Int64()} },
//	)
//
// Fields of a composite literal are evaluated left to right, so decode reads
// them in the order encode wrote them. decode need not check errors: the
// Reader records the first one and returns zero values after it.
func Struct[T any](encode func(w *Writer, v T), decode func(r *Reader) T) Codec[T] {
	return structCodec[T]{encode: encode, decode: decode}
}

type structCodec[T any] struct {
	encode func(w *Writer, v T)
	decode func(r *Reader) T
}

func (c structCodec[T]) Encode(w *Writer, v T) { c.encode(w, v) }
func (c structCodec[T]) Decode(r *Reader) T    { return c.decode(r) }

// SliceOf returns a codec for []T: the element count, then every element
// written with Write (length-prefixed).
func SliceOf[T any](elem Codec[T]) Codec[[]T] { return sliceCodec[T]{elem: elem} }

type sliceCodec[T any] struct{ elem Codec[T] }

func (c sliceCodec[T]) Encode(w *Writer, v []T) {
	w.Uvarint(uint64(len(v)))
	for _, e := range v {
		Write(w, c.elem, e)
	}
}

func (c sliceCodec[T]) Decode(r *Reader) []T {
	n := r.Uvarint()
	// Every element takes at least its 4-byte length prefix: bound the
	// allocation by the input so that corrupt counts cannot exhaust memory.
	if r.err != nil || n > uint64(len(r.buf)/4) {
		if r.err == nil {
			r.Fail(fmt.Errorf("codec: slice of %d elements in %d bytes", n, len(r.buf)))
		}
		return nil
	}
	if n == 0 {
		return nil
	}
	out := make([]T, 0, n)
	for i := uint64(0); i < n && r.err == nil; i++ {
		out = append(out, Read(r, c.elem))
	}
	if r.err != nil {
		return nil
	}
	return out
}

// The fixed-width number codecs declare their encoding, so that the SDK's
// state handles can encode and decode them inline (sdk/internal/fixed).

func (int64Codec) FixedLayout(fixed.Token) fixed.Layout  { return fixed.Layout{Width: 8, Flip: 1 << 63} }
func (intCodec) FixedLayout(fixed.Token) fixed.Layout    { return fixed.Layout{Width: 8, Flip: 1 << 63} }
func (uint64Codec) FixedLayout(fixed.Token) fixed.Layout { return fixed.Layout{Width: 8} }
func (uintCodec) FixedLayout(fixed.Token) fixed.Layout   { return fixed.Layout{Width: 8} }
func (float64Codec) FixedLayout(fixed.Token) fixed.Layout {
	return fixed.Layout{Width: 8, Float: true}
}
func (int32Codec) FixedLayout(fixed.Token) fixed.Layout  { return fixed.Layout{Width: 4, Flip: 1 << 31} }
func (uint32Codec) FixedLayout(fixed.Token) fixed.Layout { return fixed.Layout{Width: 4} }
func (float32Codec) FixedLayout(fixed.Token) fixed.Layout {
	return fixed.Layout{Width: 4, Float: true}
}

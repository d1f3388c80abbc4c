package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Writer appends encoded values to a byte buffer. The zero value is ready to
// use. It records the first failure (Fail) and keeps appending, so encode
// functions need not check errors after every field.
type Writer struct {
	buf []byte
	err error
}

// NewWriter returns a Writer that appends to dst.
func NewWriter(dst []byte) *Writer { return &Writer{buf: dst} }

// Reset makes w append to dst and clears its error.
func (w *Writer) Reset(dst []byte) { w.buf, w.err = dst, nil }

// Buffer returns the bytes written so far (including what dst held).
func (w *Writer) Buffer() []byte { return w.buf }

// Err is the first failure recorded with Fail.
func (w *Writer) Err() error { return w.err }

// Fail records err as the encoding failure, unless one is recorded already.
func (w *Writer) Fail(err error) {
	if w.err == nil && err != nil {
		w.err = err
	}
}

// Int64 writes v in 8 bytes, big endian with the sign bit flipped, so that
// encodings sort like the numbers.
func (w *Writer) Int64(v int64) { w.Uint64(uint64(v) ^ 1<<63) }

// Int32 writes v in 4 bytes, order-preserving.
func (w *Writer) Int32(v int32) { w.Uint32(uint32(v) ^ 1<<31) }

// Uint64 writes v in 8 bytes, big endian.
func (w *Writer) Uint64(v uint64) { w.buf = binary.BigEndian.AppendUint64(w.buf, v) }

// Uint32 writes v in 4 bytes, big endian.
func (w *Writer) Uint32(v uint32) { w.buf = binary.BigEndian.AppendUint32(w.buf, v) }

// Uint8 writes one byte.
func (w *Writer) Uint8(v uint8) { w.buf = append(w.buf, v) }

// Float64 writes v in 8 bytes, order-preserving for non-NaN values: positive
// numbers get the sign bit set, negative numbers have every bit inverted.
func (w *Writer) Float64(v float64) {
	b := math.Float64bits(v)
	if b>>63 == 1 {
		b = ^b
	} else {
		b |= 1 << 63
	}
	w.Uint64(b)
}

// Float32 writes v in 4 bytes, order-preserving for non-NaN values.
func (w *Writer) Float32(v float32) {
	b := math.Float32bits(v)
	if b>>31 == 1 {
		b = ^b
	} else {
		b |= 1 << 31
	}
	w.Uint32(b)
}

// Bool writes one byte, 1 for true and 0 for false.
func (w *Writer) Bool(v bool) {
	if v {
		w.buf = append(w.buf, 1)
	} else {
		w.buf = append(w.buf, 0)
	}
}

// Uvarint writes v as an unsigned varint (1 to 10 bytes).
func (w *Writer) Uvarint(v uint64) { w.buf = binary.AppendUvarint(w.buf, v) }

// Varint writes v as a zig-zag signed varint (1 to 10 bytes).
func (w *Writer) Varint(v int64) { w.buf = binary.AppendVarint(w.buf, v) }

// Str writes s prefixed with its length (uvarint). (Not named String so that
// a Reader is not a fmt.Stringer that consumes its input when printed.)
func (w *Writer) Str(s string) {
	w.Uvarint(uint64(len(s)))
	w.buf = append(w.buf, s...)
}

// Bytes writes b prefixed with its length (uvarint).
func (w *Writer) Bytes(b []byte) {
	w.Uvarint(uint64(len(b)))
	w.buf = append(w.buf, b...)
}

// Raw writes b as is, without a length: only the last thing written can be
// raw (its reader takes the rest with Reader.Rest).
func (w *Writer) Raw(b []byte) { w.buf = append(w.buf, b...) }

// RawString writes s as is, without a length (see Raw).
func (w *Writer) RawString(s string) { w.buf = append(w.buf, s...) }

// ErrTruncated is wrapped by the error a Reader records when the input ends
// before the value does.
var ErrTruncated = errors.New("codec: truncated input")

// Reader reads encoded values from a byte slice. It records the first error
// (truncated or malformed input) and returns zero values after it, so decode
// functions need not check errors after every field.
type Reader struct {
	buf []byte
	err error
}

// NewReader returns a Reader over b.
func NewReader(b []byte) *Reader { return &Reader{buf: b} }

// Reset makes r read b and clears its error.
func (r *Reader) Reset(b []byte) { r.buf, r.err = b, nil }

// Len is the number of unread bytes.
func (r *Reader) Len() int { return len(r.buf) }

// Err is the first error recorded.
func (r *Reader) Err() error { return r.err }

// Fail records err as the decoding error, unless one is recorded already.
func (r *Reader) Fail(err error) {
	if r.err == nil && err != nil {
		r.err = err
	}
}

// Finish returns the recorded error, or ErrTrailingBytes if unread bytes
// remain.
func (r *Reader) Finish() error {
	if r.err == nil && len(r.buf) == 0 {
		return nil
	}
	return r.finishFailed()
}

func (r *Reader) finishFailed() error {
	if r.err != nil {
		return r.err
	}
	return fmt.Errorf("%w (%d bytes)", ErrTrailingBytes, len(r.buf))
}

func (r *Reader) next(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.buf) < n {
		r.err = fmt.Errorf("%w: %s needs %d bytes, %d left", ErrTruncated, what, n, len(r.buf))
		return nil
	}
	b := r.buf[:n:n]
	r.buf = r.buf[n:]
	return b
}

// Int64 reads a value written by Writer.Int64.
func (r *Reader) Int64() int64 { return int64(r.uint64("int64") ^ 1<<63) }

// Int32 reads a value written by Writer.Int32.
func (r *Reader) Int32() int32 { return int32(r.uint32("int32") ^ 1<<31) }

// Uint64 reads a value written by Writer.Uint64.
func (r *Reader) Uint64() uint64 { return r.uint64("uint64") }

// Uint32 reads a value written by Writer.Uint32.
func (r *Reader) Uint32() uint32 { return r.uint32("uint32") }

// uint64 reads 8 bytes, big endian. The exported readers inline it, and it
// does the whole read itself (the failure path aside), so that a field
// costs one call in Wasm.
func (r *Reader) uint64(what string) uint64 {
	if b := r.buf; len(b) >= 8 && r.err == nil {
		r.buf = b[8:]
		return binary.BigEndian.Uint64(b)
	}
	return r.short(8, what)
}

// uint32 reads 4 bytes, big endian (see uint64).
func (r *Reader) uint32(what string) uint32 {
	if b := r.buf; len(b) >= 4 && r.err == nil {
		r.buf = b[4:]
		return binary.BigEndian.Uint32(b)
	}
	return uint32(r.short(4, what))
}

// short records the failure of a fixed-width read of n bytes and returns
// the encoding that decodes to zero (the sign bit set for an n-byte number,
// so Int64, Float64 and the like read 0).
func (r *Reader) short(n int, what string) uint64 {
	r.next(n, what)
	return 1 << (8*n - 1)
}

// Uint8 reads one byte.
func (r *Reader) Uint8() uint8 {
	b := r.next(1, "uint8")
	if b == nil {
		return 0
	}
	return b[0]
}

// Float64 reads a value written by Writer.Float64.
func (r *Reader) Float64() float64 {
	b := r.uint64("float64")
	if r.err != nil {
		return 0
	}
	if b>>63 == 1 {
		b &^= 1 << 63
	} else {
		b = ^b
	}
	return math.Float64frombits(b)
}

// Float32 reads a value written by Writer.Float32.
func (r *Reader) Float32() float32 {
	b := r.uint32("float32")
	if r.err != nil {
		return 0
	}
	if b>>31 == 1 {
		b &^= 1 << 31
	} else {
		b = ^b
	}
	return math.Float32frombits(b)
}

// Bool reads a value written by Writer.Bool; a byte other than 0 or 1 is an
// error.
func (r *Reader) Bool() bool {
	b := r.next(1, "bool")
	if b == nil {
		return false
	}
	if b[0] > 1 {
		r.Fail(fmt.Errorf("codec: bool byte %d is not 0 or 1", b[0]))
		return false
	}
	return b[0] == 1
}

// Uvarint reads a value written by Writer.Uvarint.
func (r *Reader) Uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.buf)
	if n <= 0 {
		r.Fail(fmt.Errorf("%w: bad uvarint", ErrTruncated))
		return 0
	}
	r.buf = r.buf[n:]
	return v
}

// Varint reads a value written by Writer.Varint.
func (r *Reader) Varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.buf)
	if n <= 0 {
		r.Fail(fmt.Errorf("%w: bad varint", ErrTruncated))
		return 0
	}
	r.buf = r.buf[n:]
	return v
}

func (r *Reader) length(what string) int {
	n := r.Uvarint()
	if r.err != nil {
		return 0
	}
	if n > uint64(len(r.buf)) {
		r.Fail(fmt.Errorf("%w: %s of %d bytes, %d left", ErrTruncated, what, n, len(r.buf)))
		return 0
	}
	return int(n)
}

// Str reads a value written by Writer.Str.
func (r *Reader) Str() string {
	n := r.length("string")
	return string(r.next(n, "string"))
}

// Bytes reads a value written by Writer.Bytes into a new slice.
func (r *Reader) Bytes() []byte {
	n := r.length("bytes")
	b := r.next(n, "bytes")
	if r.err != nil {
		return nil
	}
	return append(make([]byte, 0, n), b...)
}

// BytesView reads a value written by Writer.Bytes without copying: the
// result aliases the input and is valid only as long as the input is (during
// a Decode, only until Decode returns).
func (r *Reader) BytesView() []byte {
	n := r.length("bytes")
	return r.next(n, "bytes")
}

// Rest consumes and returns every unread byte without copying (the value
// written last with Writer.Raw). The result aliases the input.
func (r *Reader) Rest() []byte {
	if r.err != nil {
		return nil
	}
	b := r.buf
	r.buf = r.buf[len(b):]
	return b
}

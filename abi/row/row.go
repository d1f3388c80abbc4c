// Package row is Weir's fast binary row encoding: a record value made of
// typed fields, written by connectors on the host (the Nexmark generator,
// the Kafka source's "row" format) and read by operators in the guest
// without allocating.
//
// # Encoding
//
// A row is its fields one after the other, with no header; each field is a
// kind byte followed by its payload:
//
//	kind 0 null     no payload
//	kind 1 int      8 bytes, int64 little endian
//	kind 2 float    8 bytes, IEEE 754 float64 bits little endian
//	kind 3 bytes    4 bytes length (uint32 little endian), then the bytes
//	                (strings are bytes: UTF-8 is the writer's business)
//	kind 4 bool     1 byte, 0 or 1
//
// Timestamps are ints (epoch milliseconds). Fields are found by position,
// so a row's schema is an agreement between writer and reader (the Nexmark
// events document theirs); the kind bytes make a mismatch an error instead
// of garbage.
//
// # Decisions
//
// Why fixed-width numbers instead of varints? Rows are read in Wasm guests,
// where a varint is a loop with a branch per byte and every branch is a
// jump through the function's dispatch table; an 8-byte load is one
// instruction. Nexmark rows grow by about a fifth, which matters less than
// the decoding on every hop.
//
// Why a kind byte per field? It costs a byte and a comparison, and turns a
// reader that disagrees with the writer about the schema (an old module on
// new data) into an error naming the field, instead of numbers read out of
// string bytes.
//
// This package is pure Go with no dependencies beyond the standard
// library, so that it builds for the host and for GOOS=wasip1 guests; it
// knows nothing of records, batches or connectors.
package row

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unsafe"
)

// Kind is the type of a field.
type Kind uint8

// The field kinds.
const (
	Null  Kind = 0
	Int   Kind = 1
	Float Kind = 2
	Bytes Kind = 3
	Bool  Kind = 4
)

var kindNames = [...]string{"null", "int", "float", "bytes", "bool"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// MaxBytes bounds one bytes field (64 MiB, the record value limit).
const MaxBytes = 64 << 20

// AppendNull appends a null field.
func AppendNull(dst []byte) []byte { return append(dst, byte(Null)) }

// AppendInt appends an int field.
func AppendInt(dst []byte, v int64) []byte {
	dst = append(dst, byte(Int))
	return binary.LittleEndian.AppendUint64(dst, uint64(v))
}

// AppendFloat appends a float field.
func AppendFloat(dst []byte, v float64) []byte {
	dst = append(dst, byte(Float))
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
}

// AppendBytes appends a bytes field.
func AppendBytes(dst, b []byte) []byte {
	dst = append(dst, byte(Bytes))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(b)))
	return append(dst, b...)
}

// AppendString appends a bytes field holding s.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, byte(Bytes))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...)
}

// AppendBool appends a bool field.
func AppendBool(dst []byte, v bool) []byte {
	b := byte(0)
	if v {
		b = 1
	}
	return append(dst, byte(Bool), b)
}

// ErrShort reports a row that ends inside a field or before the field asked for.
var ErrShort = errors.New("row: truncated")

// Reader reads the fields of a row in order. Errors are sticky: after the
// first one every read returns a zero value and Err reports it, so a
// decoder reads all its fields and checks Err once. The zero Reader reads
// an empty row.
type Reader struct {
	b   []byte
	off int
	n   int // index of the next field, for error messages
	err error
}

// NewReader returns a Reader of b. It does not copy b.
func NewReader(b []byte) Reader { return Reader{b: b} }

// Reset makes r read b from its first field.
func (r *Reader) Reset(b []byte) { *r = Reader{b: b} }

// Err is the first error, naming the field by position.
func (r *Reader) Err() error { return r.err }

// Done reports whether every field was read (and no error occurred).
func (r *Reader) Done() bool { return r.err == nil && r.off == len(r.b) }

// Len is the number of bytes not read yet.
func (r *Reader) Len() int { return len(r.b) - r.off }

// Field is the index of the next field.
func (r *Reader) Field() int { return r.n }

// Next is the kind of the next field; ok is false at the end of the row or
// after an error.
func (r *Reader) Next() (k Kind, ok bool) {
	if r.err != nil || r.off >= len(r.b) {
		return 0, false
	}
	return Kind(r.b[r.off]), true
}

func (r *Reader) fail(want Kind) {
	if r.err != nil {
		return
	}
	if r.off >= len(r.b) {
		r.err = fmt.Errorf("field %d: want %s: %w", r.n, want, ErrShort)
		return
	}
	if Kind(r.b[r.off]) == want {
		r.err = fmt.Errorf("field %d: %s ends after %d bytes: %w", r.n, want, len(r.b)-r.off, ErrShort)
		return
	}
	r.err = fmt.Errorf("row: field %d: want %s, got %s", r.n, want, Kind(r.b[r.off]))
}

// Int reads an int field.
func (r *Reader) Int() int64 {
	off := r.off
	if r.err != nil || off+9 > len(r.b) || r.b[off] != byte(Int) {
		r.fail(Int)
		return 0
	}
	r.off = off + 9
	r.n++
	return int64(binary.LittleEndian.Uint64(r.b[off+1:]))
}

// Float reads a float field.
func (r *Reader) Float() float64 {
	off := r.off
	if r.err != nil || off+9 > len(r.b) || r.b[off] != byte(Float) {
		r.fail(Float)
		return 0
	}
	r.off = off + 9
	r.n++
	return math.Float64frombits(binary.LittleEndian.Uint64(r.b[off+1:]))
}

// Bool reads a bool field.
func (r *Reader) Bool() bool {
	off := r.off
	if r.err != nil || off+2 > len(r.b) || r.b[off] != byte(Bool) || r.b[off+1] > 1 {
		if r.err == nil && off+2 <= len(r.b) && r.b[off] == byte(Bool) {
			r.err = fmt.Errorf("row: field %d: bool byte %d", r.n, r.b[off+1])
			return false
		}
		r.fail(Bool)
		return false
	}
	r.off = off + 2
	r.n++
	return r.b[off+1] == 1
}

// Bytes reads a bytes field. The result aliases the row.
func (r *Reader) Bytes() []byte {
	off := r.off
	if r.err != nil || off+5 > len(r.b) || r.b[off] != byte(Bytes) {
		r.fail(Bytes)
		return nil
	}
	n := int(binary.LittleEndian.Uint32(r.b[off+1:]))
	end := off + 5 + n
	if n > MaxBytes || end > len(r.b) {
		r.err = fmt.Errorf("field %d: %d bytes: %w", r.n, n, ErrShort)
		return nil
	}
	r.off = end
	r.n++
	return r.b[off+5 : end : end]
}

// String reads a bytes field as a string that aliases the row (no copy):
// it is valid as long as the row's bytes are, which for an operator's input
// is the current call. Keep it longer with strings.Clone.
func (r *Reader) String() string {
	b := r.Bytes()
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// IsNull reads the next field if it is null and reports whether it was.
func (r *Reader) IsNull() bool {
	if r.err == nil && r.off < len(r.b) && r.b[r.off] == byte(Null) {
		r.off++
		r.n++
		return true
	}
	return false
}

// Skip reads the next field, whatever its kind.
func (r *Reader) Skip() {
	k, ok := r.Next()
	if !ok {
		r.fail(Null)
		return
	}
	switch k {
	case Null:
		r.IsNull()
	case Int:
		r.Int()
	case Float:
		r.Float()
	case Bytes:
		r.Bytes()
	case Bool:
		r.Bool()
	default:
		r.err = fmt.Errorf("row: field %d: unknown kind %d", r.n, uint8(k))
	}
}

// Valid checks that b is a well-formed row and returns its field count.
func Valid(b []byte) (fields int, err error) {
	r := NewReader(b)
	for {
		if _, ok := r.Next(); !ok {
			break
		}
		r.Skip()
	}
	if r.err != nil {
		return r.n, r.err
	}
	return r.n, nil
}

// Field returns the kind and payload of field i of b (for an int or float
// the 8 bytes, for bytes the bytes, for bool the one byte, for null none),
// aliasing b.
func Field(b []byte, i int) (Kind, []byte, error) {
	r := NewReader(b)
	for r.n < i {
		if _, ok := r.Next(); !ok {
			break
		}
		r.Skip()
	}
	if r.err != nil {
		return 0, nil, r.err
	}
	k, ok := r.Next()
	if !ok {
		return 0, nil, fmt.Errorf("row: no field %d (the row has %d): %w", i, r.n, ErrShort)
	}
	start := r.off
	r.Skip()
	if r.err != nil {
		return 0, nil, r.err
	}
	switch k {
	case Bytes:
		return k, b[start+5 : r.off], nil
	default:
		return k, b[start+1 : r.off], nil
	}
}

// IntField returns int field i of b: how a connector takes event time from
// a row.
func IntField(b []byte, i int) (int64, error) {
	k, p, err := Field(b, i)
	if err != nil {
		return 0, err
	}
	if k != Int {
		return 0, fmt.Errorf("row: field %d: want int, got %s", i, k)
	}
	return int64(binary.LittleEndian.Uint64(p)), nil
}

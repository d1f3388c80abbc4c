package fixed

import (
	"encoding/binary"
	"math"
)

// Layout describes a fixed-width encoding of a number: its bits, as an
// unsigned integer of Width bytes, transformed and written big endian. For
// integers the transform is XOR Flip (the sign bit for signed integers, so
// that byte order is numeric order); for floats (Float) it is the
// order-preserving map of codec.Writer.Float64 and Float32. The zero Layout
// means "not a fixed-width codec".
type Layout struct {
	Width uint8 // 4 or 8
	Float bool
	Flip  uint64
}

// Token is the argument of Codec.FixedLayout. Only packages inside sdk/
// can name it.
type Token struct{}

// Codec is implemented by the codecs of package codec whose encoding is a
// Layout. The value type T of such a Codec[T] is a number type of Width
// bytes (the SDK checks the size), so its bits can be reinterpreted.
type Codec interface {
	FixedLayout(Token) Layout
}

// Encode returns the encoding of the number whose bits are u (the low
// 8*Width bits) as a big-endian integer of Width bytes.
func (l Layout) Encode(u uint64) uint64 {
	if l.Float {
		sign := uint64(1) << (8*l.Width - 1)
		if u&sign != 0 {
			return ^u & mask(l.Width)
		}
		return u | sign
	}
	return u ^ l.Flip
}

// Decode inverts Encode.
func (l Layout) Decode(e uint64) uint64 {
	if l.Float {
		sign := uint64(1) << (8*l.Width - 1)
		if e&sign != 0 {
			return e &^ sign
		}
		return ^e & mask(l.Width)
	}
	return e ^ l.Flip
}

func mask(width uint8) uint64 {
	if width == 8 {
		return math.MaxUint64
	}
	return 1<<(8*width) - 1
}

// Put writes e (an encoding) into b, which has at least Width bytes.
func (l Layout) Put(b []byte, e uint64) {
	if l.Width == 8 {
		binary.BigEndian.PutUint64(b, e)
	} else {
		binary.BigEndian.PutUint32(b, uint32(e))
	}
}

// Get reads an encoding of Width bytes from b.
func (l Layout) Get(b []byte) uint64 {
	if l.Width == 8 {
		return binary.BigEndian.Uint64(b)
	}
	return uint64(binary.BigEndian.Uint32(b))
}

package interrupt

// LEB128, as the Wasm binary format defines it: at most ceil(N/7) bytes for
// an N-bit integer, and the unused bits of the last byte must be zero
// (unsigned) or copies of the sign bit (signed). The decoders are strict so
// that they consume exactly the bytes a validating decoder (wazero's)
// consumes; a lax decoder could resynchronise on the wrong byte and mistake
// an immediate for an opcode.

// readU32 decodes an unsigned 32-bit LEB128 at b[i:]. ok is false when the
// encoding is truncated, too long or has bits beyond 32.
func readU32(b []byte, i int) (v uint32, next int, ok bool) {
	var shift uint
	for k := 0; k < 5; k++ {
		if i >= len(b) {
			return 0, i, false
		}
		c := b[i]
		i++
		if k == 4 && c&0xf0 != 0 { // no continuation, only 4 payload bits left
			return 0, i, false
		}
		v |= uint32(c&0x7f) << shift
		if c&0x80 == 0 {
			return v, i, true
		}
		shift += 7
	}
	return 0, i, false // unreachable: k == 4 returns above
}

// readU64 decodes an unsigned 64-bit LEB128 at b[i:].
func readU64(b []byte, i int) (v uint64, next int, ok bool) {
	var shift uint
	for k := 0; k < 10; k++ {
		if i >= len(b) {
			return 0, i, false
		}
		c := b[i]
		i++
		if k == 9 && c&0xfe != 0 { // only 1 payload bit left
			return 0, i, false
		}
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v, i, true
		}
		shift += 7
	}
	return 0, i, false
}

// readSigned decodes a signed LEB128 of bits bits (32, 33 or 64) at b[i:].
func readSigned(b []byte, i int, bits uint) (v int64, next int, ok bool) {
	maxBytes := (bits + 6) / 7
	var shift uint
	for k := uint(0); k < maxBytes; k++ {
		if i >= len(b) {
			return 0, i, false
		}
		c := b[i]
		i++
		if k == maxBytes-1 {
			// The last byte carries sig payload bits; the bits above them,
			// up to bit 6, must repeat the sign bit, and there is no
			// continuation.
			sig := bits - 7*(maxBytes-1)
			ext := byte(0x7f) &^ (byte(1)<<sig - 1)
			if c&0x80 != 0 {
				return 0, i, false
			}
			if c&(1<<(sig-1)) != 0 {
				if c&ext != ext {
					return 0, i, false
				}
			} else if c&ext != 0 {
				return 0, i, false
			}
		}
		v |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				v |= -1 << shift
			}
			return v, i, true
		}
	}
	return 0, i, false
}

// appendU32 appends the shortest LEB128 encoding of v.
func appendU32(b []byte, v uint32) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// appendSLEB32 appends the shortest signed LEB128 encoding of v.
func appendSLEB32(b []byte, v int32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 && c&0x40 == 0 || v == -1 && c&0x40 != 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// sizeU32 is the length of appendU32's encoding of v.
func sizeU32(v uint32) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

package interrupt

import "fmt"

// walker decodes function bodies instruction by instruction. Finding the
// `loop` opcodes of a body needs every immediate of every instruction
// before them decoded exactly: an immediate byte 0x03 is not a loop. So the
// walker knows the immediates of every instruction of Wasm 2.0 (MVP,
// sign extension, non-trapping float-to-int, bulk memory, reference types,
// multi-value, fixed-width SIMD), tail calls, and the Wasm 3.0 encodings of
// memory indices and 64-bit offsets; anything else (exception handling,
// typed function references, GC, threads, relaxed SIMD, unknown opcodes) is
// ErrUnsupported rather than a guess.
//
// It is reused from body to body so that its frame stack is allocated once.
type walker struct {
	// loops[d] is true when the control frame at depth d (0: the body's
	// own block) is a loop.
	loops []bool
}

// Opcodes the walker treats specially.
const (
	opUnreachable        = 0x00
	opBlock              = 0x02
	opLoop               = 0x03
	opIf                 = 0x04
	opEnd                = 0x0b
	opCall               = 0x10
	opCallIndirect       = 0x11
	opReturnCall         = 0x12
	opReturnCallIndirect = 0x13
	opPrefixMisc         = 0xfc
	opPrefixSIMD         = 0xfd
)

// walk decodes the body b[bd.start:] (b ends with the body), appends to
// points the offset after every loop's block type, sets bd.instr to the
// offset of the first instruction and bd.entry when the body makes a call
// outside every loop.
func (w *walker) walk(b []byte, bd *body, points *[]int) error {
	i := bd.start
	decls, i, ok := readU32(b, i)
	if !ok {
		return malformed(bd.start, "bad count of local declarations")
	}
	if uint64(decls) > uint64(len(b)-i)/2 {
		return malformed(bd.start, "%d local declarations in a %d-byte body", decls, len(b)-bd.start)
	}
	var locals uint64
	for k := uint32(0); k < decls; k++ {
		at := i
		var n uint32
		if n, i, ok = readU32(b, i); !ok || i >= len(b) {
			return malformed(at, "local declaration %d truncated or malformed", k)
		}
		if locals += uint64(n); locals > maxLocals {
			return fmt.Errorf("%w: more than %d locals at byte offset %d", ErrLimit, maxLocals, at)
		}
		if !isValType(b[i]) {
			return unsupported(i, "local of type 0x%02x", b[i])
		}
		i++
	}
	bd.instr = i

	w.loops = append(w.loops[:0], false)
	loopDepth := 0
	for i < len(b) {
		at := i
		op := b[i]
		i++
		switch {
		case op == opBlock || op == opIf || op == opLoop:
			if i, ok = skipBlockType(b, i); !ok {
				if i < 0 {
					return unsupported(at+1, "block type")
				}
				return malformed(at+1, "bad block type")
			}
			isLoop := op == opLoop
			w.loops = append(w.loops, isLoop)
			if isLoop {
				loopDepth++
				*points = append(*points, i)
			}
		case op == opEnd:
			last := len(w.loops) - 1
			if w.loops[last] {
				loopDepth--
			}
			w.loops = w.loops[:last]
			if last == 0 {
				if i != len(b) {
					return malformed(i, "%d bytes after the end of the function", len(b)-i)
				}
				return nil
			}
		case op == opCall || op == opReturnCall:
			_, i, ok = readU32(b, i)
			if loopDepth == 0 {
				bd.entry = true
			}
		case op == opCallIndirect || op == opReturnCallIndirect:
			if _, i, ok = readU32(b, i); ok { // type index
				_, i, ok = readU32(b, i) // table index
			}
			if loopDepth == 0 {
				bd.entry = true
			}
		case op <= 0x01 || op == 0x05 || op == 0x0f || op == 0x1a || op == 0x1b ||
			0x45 <= op && op <= 0xc4 || op == 0xd1:
			// unreachable, nop, else, return, drop, select, the numeric
			// instructions (sign extension included), ref.is_null: no
			// immediate.
		case op == 0x0c || op == 0x0d || // br, br_if: label
			0x20 <= op && op <= 0x26 || // local.*, global.*, table.get/set: index
			op == 0x3f || op == 0x40 || // memory.size/grow: memory index
			op == 0xd2: // ref.func: function index
			_, i, ok = readU32(b, i)
		case op == 0x0e: // br_table: vec(label) label
			var n uint32
			if n, i, ok = readU32(b, i); ok {
				if uint64(n) >= uint64(len(b)-i) { // every label takes a byte
					return malformed(at, "br_table of %d labels in a %d-byte rest of body", n, len(b)-i)
				}
				for k := uint32(0); k <= n && ok; k++ {
					_, i, ok = readU32(b, i)
				}
			}
		case op == 0x1c: // select t*: vec(valtype)
			var n uint32
			if n, i, ok = readU32(b, i); ok {
				if uint64(n) > uint64(len(b)-i) {
					return malformed(at, "select with %d types in a %d-byte rest of body", n, len(b)-i)
				}
				for k := uint32(0); k < n; k, i = k+1, i+1 {
					if !isValType(b[i]) {
						return unsupported(i, "select type 0x%02x", b[i])
					}
				}
			}
		case 0x28 <= op && op <= 0x3e: // loads and stores
			i, ok = skipMemarg(b, i)
		case op == 0x41: // i32.const
			_, i, ok = readSigned(b, i, 32)
		case op == 0x42: // i64.const
			_, i, ok = readSigned(b, i, 64)
		case op == 0x43: // f32.const
			i += 4
			ok = i <= len(b)
		case op == 0x44: // f64.const
			i += 8
			ok = i <= len(b)
		case op == 0xd0: // ref.null t
			if i < len(b) && b[i] != typeFuncref && b[i] != typeExternref {
				return unsupported(i, "ref.null of heap type 0x%02x", b[i])
			}
			i++
			ok = i <= len(b)
		case op == opPrefixMisc:
			var sub uint32
			if sub, i, ok = readU32(b, i); ok {
				i, ok = skipMisc(b, i, sub)
				if i < 0 {
					return unsupported(at, "instruction 0xfc %d", sub)
				}
			}
		case op == opPrefixSIMD:
			var sub uint32
			if sub, i, ok = readU32(b, i); ok {
				i, ok = skipSIMD(b, i, sub)
				if i < 0 {
					return unsupported(at, "SIMD instruction 0xfd %d", sub)
				}
			}
		default:
			return unsupported(at, "%s", opcodeProblem(op))
		}
		if !ok {
			return malformed(at, "instruction 0x%02x truncated or malformed", op)
		}
	}
	return malformed(len(b), "function body ends inside a block (no final end)")
}

// opcodeProblem names the proposal an opcode the walker does not decode
// belongs to.
func opcodeProblem(op byte) string {
	switch op {
	case 0x06, 0x07, 0x08, 0x09, 0x0a, 0x18, 0x19, 0x1f:
		return "exception handling instruction 0x" + hex(op)
	case 0x14, 0x15, 0xd3, 0xd4, 0xd6:
		return "typed function reference instruction 0x" + hex(op)
	case 0xd5, 0xfb:
		return "GC instruction 0x" + hex(op)
	case 0xfe:
		return "threads (atomic) instruction 0xfe"
	}
	return "unknown opcode 0x" + hex(op)
}

func hex(b byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[b>>4], digits[b&15]})
}

// skipBlockType skips a block type: 0x40 (empty), a value type, or a
// type index (s33 >= 0). It returns i < 0 with ok false for a block type of
// a proposal it does not know (a GC reference type).
func skipBlockType(b []byte, i int) (int, bool) {
	v, next, ok := readSigned(b, i, 33)
	if !ok {
		return next, false
	}
	if v >= 0 {
		return next, true // type index
	}
	// A negative s33 is a one-byte type code: 0x40 is -64, 0x7f is -1...
	switch byte(v & 0x7f) {
	case blockEmpty, typeI32, typeI64, typeF32, typeF64, typeV128, typeFuncref, typeExternref:
		if next == i+1 {
			return next, true
		}
	}
	return -1, false
}

// skipMemarg skips a memory argument: alignment (bit 6 set: a memory index
// follows, multi-memory) and offset (u64 in Wasm 3.0, where 32-bit memories
// get the 32-bit range checked at validation).
func skipMemarg(b []byte, i int) (int, bool) {
	align, i, ok := readU32(b, i)
	if !ok || align >= 1<<7 {
		return i, false
	}
	if align&(1<<6) != 0 {
		if _, i, ok = readU32(b, i); !ok {
			return i, false
		}
	}
	_, i, ok = readU64(b, i)
	return i, ok
}

// skipMisc skips the immediates of 0xfc sub-opcode sub. It returns i < 0
// for a sub-opcode it does not know.
func skipMisc(b []byte, i int, sub uint32) (int, bool) {
	n := 0 // number of u32 immediates
	switch sub {
	case 0, 1, 2, 3, 4, 5, 6, 7: // i32/i64.trunc_sat_f32/f64_s/u
	case 9, 11, 13, 15, 16, 17: // data.drop, memory.fill, elem.drop, table.grow/size/fill
		n = 1
	case 8, 10, 12, 14: // memory.init, memory.copy, table.init, table.copy
		n = 2
	default:
		return -1, false
	}
	ok := true
	for ; n > 0 && ok; n-- {
		_, i, ok = readU32(b, i)
	}
	return i, ok
}

// skipSIMD skips the immediates of 0xfd sub-opcode sub. It returns i < 0
// for a sub-opcode of no fixed-width SIMD instruction (reserved codes,
// relaxed SIMD).
func skipSIMD(b []byte, i int, sub uint32) (int, bool) {
	switch {
	case sub <= 11 || sub == 92 || sub == 93: // v128.load*, v128.store, v128.load32/64_zero
		return skipMemarg(b, i)
	case sub == 12 || sub == 13: // v128.const, i8x16.shuffle
		i += 16
		return i, i <= len(b)
	case 21 <= sub && sub <= 34: // extract_lane, replace_lane
		i++
		return i, i <= len(b)
	case 84 <= sub && sub <= 91: // v128.load*_lane, v128.store*_lane
		i, ok := skipMemarg(b, i)
		i++
		return i, ok && i <= len(b)
	case sub > 255:
		return -1, false
	}
	switch sub {
	case 0x9a, 0xa2, 0xa5, 0xa6, 0xaf, 0xb0, 0xb2, 0xb3, 0xb4, 0xbb,
		0xc2, 0xc5, 0xc6, 0xcf, 0xd0, 0xd2, 0xd3, 0xd4, 0xe2, 0xee:
		return -1, false // reserved
	}
	return i, true // 14-20, 35-83, 94-255: no immediate
}

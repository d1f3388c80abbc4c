package interrupt

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// The tests below build modules byte by byte with these helpers, written
// independently of the package's encoder so that a shared bug cannot hide.

func uleb(v uint32) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// sec is a section: id, size, content.
func sec(id byte, content ...[]byte) []byte {
	c := cat(content...)
	return cat([]byte{id}, uleb(uint32(len(c))), c)
}

// vec is a vector: count, items.
func vec(items ...[]byte) []byte { return cat(uleb(uint32(len(items))), cat(items...)) }

func name(s string) []byte { return cat(uleb(uint32(len(s))), []byte(s)) }

// wmod is a module: header, sections.
func wmod(sections ...[]byte) []byte {
	return cat([]byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}, cat(sections...))
}

// code is a function body: size, then locals and instructions.
func code(localsAndInstrs ...byte) []byte {
	return cat(uleb(uint32(len(localsAndInstrs))), localsAndInstrs)
}

var (
	typeSec = sec(1, vec([]byte{0x60, 0x00, 0x00})) // type 0: [] -> []
	tabSec  = sec(4, vec([]byte{0x70, 0x00, 0x00})) // table 0: funcref, min 0
	memSec  = sec(5, vec([]byte{0x00, 0x01}))       // memory 0: 1 page
	// newGlobals are the globals Instrument adds: the flag (mut i32 = 0)
	// and the countdown (mut i32 = 1024).
	newGlobals = [][]byte{{0x7f, 0x01, 0x41, 0x00, 0x0b}, {0x7f, 0x01, 0x41, 0x80, 0x08, 0x0b}}
)

// globalSec is a global section of the given entries followed by the new
// globals.
func globalSec(entries ...[]byte) []byte { return sec(6, vec(append(entries, newGlobals...)...)) }

func flagExport(idx uint32) []byte { return cat(name(ExportName), []byte{0x03}, uleb(idx)) }

// check is the instrumentation for flag index idx (countdown idx+1) and a
// funcref table 0.
func check(idx uint32) []byte { return checkRef(idx, 0x70) }

// checkRef is check for a table 0 of element type ref.
func checkRef(idx uint32, ref byte) []byte {
	cd := uleb(idx + 1)
	return cat(
		[]byte{0x23}, uleb(idx), []byte{0x04, 0x40, 0x00, 0x0b}, // global.get flag; if; unreachable; end
		[]byte{0x23}, cd, []byte{0x41, 0x7f, 0x6a, 0x24}, cd, // countdown += -1
		[]byte{0x23}, cd, []byte{0x45, 0x04, 0x40}, // global.get countdown; i32.eqz; if
		[]byte{0xd0, ref, 0x41, 0x00, 0xfc, 0x0f, 0x00, 0x1a}, // table.grow(ref.null, 0); drop
		[]byte{0x41, 0x80, 0x08, 0x24}, cd, []byte{0x0b})      // countdown = 1024; end
}

// funcModule is a module of functions of type 0 with the given bodies
// (sizes included) and a table, without globals or exports.
func funcModule(bodies ...[]byte) []byte {
	types := make([][]byte, len(bodies))
	for i := range types {
		types[i] = []byte{0}
	}
	return wmod(typeSec, sec(3, vec(types...)), tabSec, sec(10, vec(bodies...)))
}

// instrumentedFuncModule is what Instrument must make of funcModule: the
// flag (index 0) and the countdown in a new global section, the flag's
// export in a new export section, and the given bodies.
func instrumentedFuncModule(bodies ...[]byte) []byte {
	types := make([][]byte, len(bodies))
	for i := range types {
		types[i] = []byte{0}
	}
	return wmod(typeSec, sec(3, vec(types...)), tabSec, globalSec(), sec(7, vec(flagExport(0))), sec(10, vec(bodies...)))
}

// TestGolden compares whole outputs with hand-assembled modules.
func TestGolden(t *testing.T) {
	c0 := check(0)
	importGlobal := sec(2, vec(cat(name("env"), name("g"), []byte{0x03, 0x7f, 0x00})))
	importFunc := sec(2, vec(cat(name("env"), name("f"), []byte{0x00, 0x00})))
	nameSec := sec(0, name("name"), []byte{0x01, 0x04, 0x01, 0x00, 0x01, 'f'})
	producers := sec(0, name("producers"), []byte{0x00})
	debug := sec(0, name(".debug_info"), []byte{1, 2, 3})
	tests := []struct {
		name    string
		in, out []byte
		loops   int
		entries int
	}{
		{
			name: "header only",
			in:   wmod(),
			out:  wmod(globalSec(), sec(7, vec(flagExport(0)))),
		},
		{
			name: "loop",
			// loop; br 0; end; end
			in:    funcModule(code(0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b)),
			out:   instrumentedFuncModule(code(cat([]byte{0x00, 0x03, 0x40}, c0, []byte{0x0c, 0x00, 0x0b, 0x0b})...)),
			loops: 1,
		},
		{
			name: "hand-counted bytes",
			// The same as "loop", every byte and size written out.
			in: []byte{0, 'a', 's', 'm', 1, 0, 0, 0,
				1, 4, 1, 0x60, 0, 0,
				3, 2, 1, 0,
				4, 4, 1, 0x70, 0, 0,
				10, 9, 1, 7, 0, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b},
			out: cat([]byte{0, 'a', 's', 'm', 1, 0, 0, 0,
				1, 4, 1, 0x60, 0, 0,
				3, 2, 1, 0,
				4, 4, 1, 0x70, 0, 0,
				6, 12, 2, 0x7f, 1, 0x41, 0, 0x0b, 0x7f, 1, 0x41, 0x80, 0x08, 0x0b,
				7, 20, 1, 16}, []byte(ExportName), []byte{3, 0,
				10, 41, 1, 39, 0, 0x03, 0x40,
				0x23, 0x00, 0x04, 0x40, 0x00, 0x0b,
				0x23, 0x01, 0x41, 0x7f, 0x6a, 0x24, 0x01,
				0x23, 0x01, 0x45, 0x04, 0x40,
				0xd0, 0x70, 0x41, 0x00, 0xfc, 0x0f, 0x00, 0x1a, 0x41, 0x80, 0x08, 0x24, 0x01, 0x0b,
				0x0c, 0x00, 0x0b, 0x0b}),
			loops: 1,
		},
		{
			name: "no table: one is added for the yield",
			in:   wmod(typeSec, sec(3, vec([]byte{0})), memSec, sec(10, vec(code(0x00, 0x03, 0x40, 0x0b, 0x0b)))),
			out: wmod(typeSec, sec(3, vec([]byte{0})), tabSec, memSec, globalSec(), sec(7, vec(flagExport(0))),
				sec(10, vec(code(cat([]byte{0x00, 0x03, 0x40}, check(0), []byte{0x0b, 0x0b})...)))),
			loops: 1,
		},
		{
			name: "empty table section: a table is appended",
			in:   wmod(typeSec, sec(3, vec([]byte{0})), sec(4, vec()), sec(10, vec(code(0x00, 0x03, 0x40, 0x0b, 0x0b)))),
			out: wmod(typeSec, sec(3, vec([]byte{0})), tabSec, globalSec(), sec(7, vec(flagExport(0))),
				sec(10, vec(code(cat([]byte{0x00, 0x03, 0x40}, check(0), []byte{0x0b, 0x0b})...)))),
			loops: 1,
		},
		{
			name: "no table and no checks: no table added",
			in:   wmod(typeSec, sec(3, vec([]byte{0})), sec(10, vec(code(0x00, 0x0b)))),
			out:  wmod(typeSec, sec(3, vec([]byte{0})), globalSec(), sec(7, vec(flagExport(0))), sec(10, vec(code(0x00, 0x0b)))),
		},
		{
			name: "imported externref table 0: the yield grows it with ref.null extern",
			in: wmod(typeSec, sec(2, vec(cat(name("env"), name("t"), []byte{0x01, 0x6f, 0x00, 0x00}))),
				sec(3, vec([]byte{0})), tabSec, sec(10, vec(code(0x00, 0x03, 0x40, 0x0b, 0x0b)))),
			out: wmod(typeSec, sec(2, vec(cat(name("env"), name("t"), []byte{0x01, 0x6f, 0x00, 0x00}))),
				sec(3, vec([]byte{0})), tabSec, globalSec(), sec(7, vec(flagExport(0))),
				sec(10, vec(code(cat([]byte{0x00, 0x03, 0x40}, checkRef(0, 0x6f), []byte{0x0b, 0x0b})...)))),
			loops: 1,
		},
		{
			name: "defined externref table 0 with an initializer (Wasm 3.0)",
			in: wmod(typeSec, sec(3, vec([]byte{0})), sec(4, vec([]byte{0x40, 0x00, 0x6f, 0x00, 0x01, 0xd0, 0x6f, 0x0b})),
				sec(10, vec(code(0x00, 0x03, 0x40, 0x0b, 0x0b)))),
			out: wmod(typeSec, sec(3, vec([]byte{0})), sec(4, vec([]byte{0x40, 0x00, 0x6f, 0x00, 0x01, 0xd0, 0x6f, 0x0b})),
				globalSec(), sec(7, vec(flagExport(0))),
				sec(10, vec(code(cat([]byte{0x00, 0x03, 0x40}, checkRef(0, 0x6f), []byte{0x0b, 0x0b})...)))),
			loops: 1,
		},
		{
			name: "nested loops with locals, block and if",
			// 2 locals of i32, 1 of f64; block; loop; if; loop; end; end; end; end; end
			in: funcModule(code(0x02, 0x02, 0x7f, 0x01, 0x7c,
				0x02, 0x40, 0x03, 0x40, 0x20, 0x00, 0x04, 0x40, 0x03, 0x7f, 0x41, 0x01, 0x0b, 0x1a, 0x0b, 0x0b, 0x0b, 0x0b)),
			out: instrumentedFuncModule(code(cat([]byte{0x02, 0x02, 0x7f, 0x01, 0x7c,
				0x02, 0x40, 0x03, 0x40}, c0, []byte{0x20, 0x00, 0x04, 0x40, 0x03, 0x7f}, c0,
				[]byte{0x41, 0x01, 0x0b, 0x1a, 0x0b, 0x0b, 0x0b, 0x0b})...)),
			loops: 2,
		},
		{
			name: "call outside loops gets an entry check after the locals",
			in: funcModule(
				code(0x01, 0x01, 0x7f, 0x10, 0x01, 0x0b),       // local i32; call 1
				code(0x00, 0x03, 0x40, 0x10, 0x00, 0x0b, 0x0b), // loop; call 0; end: the loop's check covers it
				code(0x00, 0x0b)), // leaf: nothing
			out: instrumentedFuncModule(
				code(cat([]byte{0x01, 0x01, 0x7f}, c0, []byte{0x10, 0x01, 0x0b})...),
				code(cat([]byte{0x00, 0x03, 0x40}, c0, []byte{0x10, 0x00, 0x0b, 0x0b})...),
				code(0x00, 0x0b)),
			loops: 1, entries: 1,
		},
		{
			name: "imported and defined globals: the flag comes after them",
			in: wmod(typeSec, importGlobal, sec(3, vec([]byte{0})), tabSec,
				sec(6, vec([]byte{0x7e, 0x00, 0x42, 0x05, 0x0b}, []byte{0x7f, 0x01, 0x41, 0x03, 0x0b})),
				sec(7, vec(cat(name("g"), []byte{0x03, 0x01}))),
				sec(10, vec(code(0x00, 0x03, 0x40, 0x0b, 0x0b)))),
			out: wmod(typeSec, importGlobal, sec(3, vec([]byte{0})), tabSec,
				globalSec([]byte{0x7e, 0x00, 0x42, 0x05, 0x0b}, []byte{0x7f, 0x01, 0x41, 0x03, 0x0b}),
				sec(7, vec(cat(name("g"), []byte{0x03, 0x01}), flagExport(3))),
				sec(10, vec(code(cat([]byte{0x00, 0x03, 0x40}, check(3), []byte{0x0b, 0x0b})...)))),
			loops: 1,
		},
		{
			name: "imported funcref table and memory",
			in: wmod(typeSec, sec(2, vec(cat(name("env"), name("mem"), []byte{0x02, 0x01, 0x01, 0x02}), cat(name("env"), name("t"), []byte{0x01, 0x70, 0x00, 0x00}))),
				sec(3, vec([]byte{0})), sec(10, vec(code(0x00, 0x03, 0x40, 0x0b, 0x0b)))),
			out: wmod(typeSec, sec(2, vec(cat(name("env"), name("mem"), []byte{0x02, 0x01, 0x01, 0x02}), cat(name("env"), name("t"), []byte{0x01, 0x70, 0x00, 0x00}))),
				sec(3, vec([]byte{0})), globalSec(), sec(7, vec(flagExport(0))),
				sec(10, vec(code(cat([]byte{0x00, 0x03, 0x40}, check(0), []byte{0x0b, 0x0b})...)))),
			loops: 1,
		},
		{
			name: "global section present, export section created before start",
			in: wmod(typeSec, importFunc, sec(3, vec([]byte{0})),
				sec(6, vec([]byte{0x7f, 0x00, 0x41, 0x03, 0x0b})),
				sec(8, uleb(1)),
				sec(10, vec(code(0x00, 0x0b)))),
			out: wmod(typeSec, importFunc, sec(3, vec([]byte{0})),
				globalSec([]byte{0x7f, 0x00, 0x41, 0x03, 0x0b}),
				sec(7, vec(flagExport(1))),
				sec(8, uleb(1)),
				sec(10, vec(code(0x00, 0x0b)))),
		},
		{
			name: "export section present, global section created before it",
			in: wmod(typeSec, sec(3, vec([]byte{0})), sec(5, vec([]byte{0x00, 0x01})),
				sec(7, vec(cat(name("memory"), []byte{0x02, 0x00}))),
				sec(10, vec(code(0x00, 0x0b)))),
			out: wmod(typeSec, sec(3, vec([]byte{0})), sec(5, vec([]byte{0x00, 0x01})),
				globalSec(),
				sec(7, vec(cat(name("memory"), []byte{0x02, 0x00}), flagExport(0))),
				sec(10, vec(code(0x00, 0x0b)))),
		},
		{
			name: "custom sections: name kept in place, others dropped",
			in:   wmod(producers, typeSec, sec(3, vec([]byte{0})), sec(10, vec(code(0x00, 0x0b))), debug, nameSec),
			out: wmod(typeSec, sec(3, vec([]byte{0})), globalSec(), sec(7, vec(flagExport(0))),
				sec(10, vec(code(0x00, 0x0b))), nameSec),
		},
		{
			name: "name section first",
			in:   wmod(nameSec, typeSec),
			out:  wmod(nameSec, typeSec, globalSec(), sec(7, vec(flagExport(0)))),
		},
		{
			name: "data count, code and data: created sections go before them",
			in: wmod(typeSec, sec(3, vec([]byte{0})), sec(5, vec([]byte{0x00, 0x01})), sec(12, uleb(1)),
				sec(10, vec(code(0x00, 0x0b))), sec(11, vec([]byte{0x01, 0x01, 'x'}))),
			out: wmod(typeSec, sec(3, vec([]byte{0})), sec(5, vec([]byte{0x00, 0x01})),
				globalSec(), sec(7, vec(flagExport(0))), sec(12, uleb(1)),
				sec(10, vec(code(0x00, 0x0b))), sec(11, vec([]byte{0x01, 0x01, 'x'}))),
		},
		{
			name: "flag index needing two LEB bytes",
			// 200 imported globals: the flag is global 200.
			in: wmod(typeSec, sec(2, vec(repeat(cat(name("e"), name("g"), []byte{0x03, 0x7f, 0x00}), 200)...)),
				sec(3, vec([]byte{0})), tabSec, sec(10, vec(code(0x00, 0x03, 0x40, 0x0b, 0x0b)))),
			out: wmod(typeSec, sec(2, vec(repeat(cat(name("e"), name("g"), []byte{0x03, 0x7f, 0x00}), 200)...)),
				sec(3, vec([]byte{0})), tabSec, globalSec(), sec(7, vec(flagExport(200))),
				sec(10, vec(code(cat([]byte{0x00, 0x03, 0x40}, check(200), []byte{0x0b, 0x0b})...)))),
			loops: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, st, err := instrument(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, tt.out) {
				t.Errorf("output\n got % x\nwant % x", out, tt.out)
			}
			if st.loops != tt.loops || st.entries != tt.entries {
				t.Errorf("checks: %d at loops, %d at entries; want %d, %d", st.loops, st.entries, tt.loops, tt.entries)
			}
		})
	}
}

func repeat(b []byte, n int) [][]byte {
	r := make([][]byte, n)
	for i := range r {
		r[i] = b
	}
	return r
}

// TestImmediates puts each instruction, with immediates full of the bytes
// of `loop` (0x03), `end` (0x0b) and the empty block type (0x40), before a
// loop, and checks that the walker found exactly that loop: any immediate
// decoded with the wrong length would shift it. The encodings are written
// from the spec, not from the walker.
func TestImmediates(t *testing.T) {
	b16 := func(c byte) []byte { return bytes.Repeat([]byte{c}, 16) }
	tests := []struct {
		name  string
		instr []byte
		call  bool // a call outside a loop: the body also gets an entry check
	}{
		{"unreachable", []byte{0x00}, false},
		{"nop", []byte{0x01}, false},
		{"block empty", []byte{0x02, 0x40, 0x0b}, false},
		{"block i32", []byte{0x02, 0x7f, 0x41, 0x03, 0x0b}, false},
		{"block v128", []byte{0x02, 0x7b, 0x0b}, false},
		{"block type index 3", []byte{0x02, 0x03, 0x0b}, false},
		{"block type index 131 (2-byte s33)", []byte{0x02, 0x83, 0x01, 0x0b}, false},
		{"if else", []byte{0x04, 0x40, 0x01, 0x05, 0x01, 0x0b}, false},
		{"br 3", []byte{0x0c, 0x03}, false},
		{"br_if 3", []byte{0x0d, 0x03}, false},
		{"br_table", []byte{0x0e, 0x02, 0x03, 0x0b, 0x40}, false},
		{"br_table 200 labels", cat([]byte{0x0e, 0xc8, 0x01}, bytes.Repeat([]byte{0x03}, 201)), false},
		{"return", []byte{0x0f}, false},
		{"call 3", []byte{0x10, 0x03}, true},
		{"call 300", []byte{0x10, 0xac, 0x02}, true},
		{"call_indirect", []byte{0x11, 0x03, 0x03}, true},
		{"return_call", []byte{0x12, 0x03}, true},
		{"return_call_indirect", []byte{0x13, 0x03, 0x00}, true},
		{"drop", []byte{0x1a}, false},
		{"select", []byte{0x1b}, false},
		{"select t", []byte{0x1c, 0x01, 0x7f}, false},
		{"select t (2 types)", []byte{0x1c, 0x02, 0x7b, 0x6f}, false},
		{"local.get 3", []byte{0x20, 0x03}, false},
		{"local.set 3", []byte{0x21, 0x03}, false},
		{"local.tee 64", []byte{0x22, 0x40}, false},
		{"global.get 11", []byte{0x23, 0x0b}, false},
		{"global.set 3", []byte{0x24, 0x03}, false},
		{"table.get 3", []byte{0x25, 0x03}, false},
		{"table.set 3", []byte{0x26, 0x03}, false},
		{"i32.load", []byte{0x28, 0x02, 0x03}, false},
		{"i64.load offset 387", []byte{0x29, 0x03, 0x83, 0x03}, false},
		{"f32.load", []byte{0x2a, 0x02, 0x0b}, false},
		{"i64.load32_u", []byte{0x35, 0x02, 0x03}, false},
		{"i32.store", []byte{0x36, 0x02, 0x03}, false},
		{"i64.store32", []byte{0x3e, 0x02, 0x40}, false},
		{"i32.load memory 3 (multi-memory)", []byte{0x28, 0x42, 0x03, 0x03}, false},
		{"i64.load offset 2^40 (memory64)", []byte{0x29, 0x03, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20}, false},
		{"memory.size", []byte{0x3f, 0x00}, false},
		{"memory.grow", []byte{0x40, 0x00}, false},
		{"i32.const 3", []byte{0x41, 0x03}, false},
		{"i32.const -1", []byte{0x41, 0x7f}, false},
		{"i32.const 5 bytes", []byte{0x41, 0x83, 0x83, 0x83, 0x83, 0x03}, false},
		{"i32.const min", []byte{0x41, 0x80, 0x80, 0x80, 0x80, 0x78}, false},
		{"i64.const 10 bytes", []byte{0x42, 0x83, 0x83, 0x83, 0x83, 0x83, 0x83, 0x83, 0x83, 0x83, 0x00}, false},
		{"i64.const min", []byte{0x42, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f}, false},
		{"f32.const", []byte{0x43, 0x03, 0x03, 0x40, 0x0b}, false},
		{"f64.const", []byte{0x44, 0x03, 0x0b, 0x40, 0x03, 0x03, 0x03, 0x03, 0x0b}, false},
		{"i32.eqz", []byte{0x45}, false},
		{"i32.add", []byte{0x6a}, false},
		{"f64.reinterpret_i64", []byte{0xbf}, false},
		{"i32.extend8_s", []byte{0xc0}, false},
		{"i64.extend32_s", []byte{0xc4}, false},
		{"ref.null func", []byte{0xd0, 0x70}, false},
		{"ref.null extern", []byte{0xd0, 0x6f}, false},
		{"ref.is_null", []byte{0xd1}, false},
		{"ref.func 3", []byte{0xd2, 0x03}, false},
		{"i32.trunc_sat_f32_s", []byte{0xfc, 0x00}, false},
		{"i64.trunc_sat_f64_u", []byte{0xfc, 0x07}, false},
		{"memory.init", []byte{0xfc, 0x08, 0x03, 0x00}, false},
		{"data.drop", []byte{0xfc, 0x09, 0x03}, false},
		{"memory.copy", []byte{0xfc, 0x0a, 0x00, 0x00}, false},
		{"memory.fill", []byte{0xfc, 0x0b, 0x00}, false},
		{"table.init", []byte{0xfc, 0x0c, 0x03, 0x03}, false},
		{"elem.drop", []byte{0xfc, 0x0d, 0x03}, false},
		{"table.copy", []byte{0xfc, 0x0e, 0x03, 0x0b}, false},
		{"table.grow", []byte{0xfc, 0x0f, 0x03}, false},
		{"table.size", []byte{0xfc, 0x10, 0x03}, false},
		{"table.fill", []byte{0xfc, 0x11, 0x03}, false},
		{"v128.load", []byte{0xfd, 0x00, 0x04, 0x03}, false},
		{"v128.load8x8_s", []byte{0xfd, 0x01, 0x03, 0x03}, false},
		{"v128.load64_splat", []byte{0xfd, 0x0a, 0x03, 0x0b}, false},
		{"v128.store", []byte{0xfd, 0x0b, 0x04, 0x03}, false},
		{"v128.const", cat([]byte{0xfd, 0x0c}, b16(0x03)), false},
		{"v128.const (padded sub-opcode)", cat([]byte{0xfd, 0x8c, 0x00}, b16(0x0b)), false},
		{"i8x16.shuffle", cat([]byte{0xfd, 0x0d}, b16(0x0b)), false},
		{"i8x16.swizzle", []byte{0xfd, 0x0e}, false},
		{"f64x2.splat", []byte{0xfd, 0x14}, false},
		{"i8x16.extract_lane_s", []byte{0xfd, 0x15, 0x03}, false},
		{"f64x2.replace_lane", []byte{0xfd, 0x22, 0x01}, false},
		{"i8x16.eq", []byte{0xfd, 0x23}, false},
		{"v128.bitselect", []byte{0xfd, 0x52}, false},
		{"v128.any_true", []byte{0xfd, 0x53}, false},
		{"v128.load8_lane", []byte{0xfd, 0x54, 0x00, 0x03, 0x03}, false},
		{"v128.store64_lane", []byte{0xfd, 0x5b, 0x03, 0x03, 0x01}, false},
		{"v128.load32_zero", []byte{0xfd, 0x5c, 0x02, 0x03}, false},
		{"v128.load64_zero", []byte{0xfd, 0x5d, 0x03, 0x0b}, false},
		{"f32x4.demote_f64x2_zero", []byte{0xfd, 0x5e}, false},
		{"i8x16.abs", []byte{0xfd, 0x60}, false},
		{"i16x8.q15mulr_sat_s", []byte{0xfd, 0x82, 0x01}, false},
		{"i32x4.dot_i16x8_s", []byte{0xfd, 0xba, 0x01}, false},
		{"i64x2.extmul_high_i32x4_u", []byte{0xfd, 0xdf, 0x01}, false},
		{"f64x2.convert_low_i32x4_u", []byte{0xfd, 0xff, 0x01}, false},
	}
	c0 := check(0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// instr; loop; end; end
			in := funcModule(code(cat([]byte{0x00}, tt.instr, []byte{0x03, 0x40, 0x0b, 0x0b})...))
			var want []byte
			if tt.call {
				want = instrumentedFuncModule(code(cat([]byte{0x00}, c0, tt.instr, []byte{0x03, 0x40}, c0, []byte{0x0b, 0x0b})...))
			} else {
				want = instrumentedFuncModule(code(cat([]byte{0x00}, tt.instr, []byte{0x03, 0x40}, c0, []byte{0x0b, 0x0b})...))
			}
			out, err := Instrument(in)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, want) {
				t.Errorf("output\n got % x\nwant % x", out, want)
			}
		})
	}
}

// TestRejected checks that what the instrumenter cannot rewrite safely is
// ErrUnsupported, that broken input is ErrMalformed, that absurd numbers
// are ErrLimit, and that the error names the reason and the offset. In funcModule with one body and no
// locals, the first instruction is at offset 23.
func TestRejected(t *testing.T) {
	body := func(instrs ...byte) []byte { return funcModule(code(cat([]byte{0x00}, instrs, []byte{0x0b})...)) }
	exportSec := func(names ...string) []byte {
		var items [][]byte
		for _, n := range names {
			items = append(items, cat(name(n), []byte{0x00, 0x00}))
		}
		return sec(7, vec(items...))
	}
	tests := []struct {
		name   string
		in     []byte
		want   error
		reason string // substring of the message
		offset int
	}{
		{"threads", body(0xfe, 0x10, 0x02, 0x00), ErrUnsupported, "threads", 29},
		{"exception handling try", body(0x06, 0x40, 0x0b), ErrUnsupported, "exception handling", 29},
		{"exception handling throw", body(0x08, 0x00), ErrUnsupported, "exception handling", 29},
		{"GC", body(0xfb, 0x00, 0x00), ErrUnsupported, "GC", 29},
		{"typed function references", body(0x14, 0x00), ErrUnsupported, "typed function reference", 29},
		{"reserved SIMD opcode", body(0xfd, 0x9a, 0x01), ErrUnsupported, "SIMD instruction 0xfd 154", 29},
		{"relaxed SIMD", body(0xfd, 0x80, 0x02), ErrUnsupported, "SIMD instruction 0xfd 256", 29},
		{"unknown 0xfc", body(0xfc, 0x12), ErrUnsupported, "0xfc 18", 29},
		{"unknown opcode", body(0x27), ErrUnsupported, "unknown opcode 0x27", 29},
		{"ref.null of a GC heap type", body(0xd0, 0x71), ErrUnsupported, "heap type 0x71", 30},
		{"GC block type", body(0x02, 0x63, 0x70, 0x0b), ErrUnsupported, "block type", 30},
		{"negative block type index", body(0x02, 0xff, 0x7f, 0x0b), ErrUnsupported, "block type", 30},
		{"GC select type", body(0x1c, 0x01, 0x64), ErrUnsupported, "select type 0x64", 31},
		{"GC local", funcModule(code(0x01, 0x01, 0x63, 0x70, 0x0b)), ErrUnsupported, "local of type 0x63", 30},
		{"export name taken", wmod(typeSec, exportSec("memory", ExportName)), ErrUnsupported, "already exports", 26},
		{"unknown section", wmod(typeSec, sec(14, []byte{0})), ErrUnsupported, "section id 14", 14},
		{"version 2", []byte{0, 'a', 's', 'm', 2, 0, 0, 0}, ErrUnsupported, "version", 4},
		{"layer 1 (component)", []byte{0, 'a', 's', 'm', 0x0d, 0, 1, 0}, ErrUnsupported, "version", 4},
		{"GC table 0", wmod(sec(4, vec([]byte{0x64, 0x70, 0x00, 0x00}))), ErrUnsupported, "table 0 of element type 0x64", 11},
		{"GC global import", wmod(sec(2, vec(cat(name("e"), name("g"), []byte{0x03, 0x63, 0x70, 0x00})))), ErrUnsupported, "global of type 0x63", 16},

		{"2^32-1 locals", funcModule(code(0x01, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x7f, 0x0b)), ErrLimit, "more than 50000 locals", 29},
		{"50001 locals in two declarations", funcModule(code(0x02, 0xb0, 0xea, 0x01, 0x7f, 0xa1, 0x9c, 0x01, 0x7e, 0x0b)), ErrLimit, "more than 50000 locals", 33},

		{"empty", nil, ErrMalformed, "magic", 0},
		{"short", []byte{0, 'a', 's'}, ErrMalformed, "magic", 0},
		{"bad magic", []byte{0, 'a', 's', 'n', 1, 0, 0, 0}, ErrMalformed, "magic", 0},
		{"section past end", wmod([]byte{1, 5, 1, 0x60}), ErrMalformed, "past the end", 9},
		{"section size too long", wmod([]byte{1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}), ErrMalformed, "size", 9},
		{"out of order", wmod(sec(3, vec()), typeSec), ErrMalformed, "out of order", 11},
		{"repeated", wmod(typeSec, typeSec), ErrMalformed, "out of order", 14},
		{"custom section without name", wmod([]byte{0, 0}), ErrMalformed, "name", 10},
		{"no final end", funcModule(code(0x00, 0x02, 0x40, 0x0b)), ErrMalformed, "no final end", 32},
		{"bytes after the end", funcModule(code(0x00, 0x0b, 0x01)), ErrMalformed, "after the end of the function", 30},
		{"truncated i32.const", funcModule(code(0x00, 0x41, 0x80)), ErrMalformed, "0x41 truncated", 29},
		{"i32.const with bad sign bits", body(0x41, 0x80, 0x80, 0x80, 0x80, 0x70), ErrMalformed, "0x41", 29},
		{"i32.const of 6 bytes", body(0x41, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00), ErrMalformed, "0x41", 29},
		{"u32 with bits beyond 32", body(0x20, 0xff, 0xff, 0xff, 0xff, 0x1f), ErrMalformed, "0x20", 29},
		{"huge br_table", body(0x0e, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00), ErrMalformed, "br_table", 29},
		{"huge select vector", body(0x1c, 0xff, 0xff, 0x03), ErrMalformed, "select", 29},
		{"truncated v128.const", funcModule(code(0x00, 0xfd, 0x0c, 1, 2, 3)), ErrMalformed, "0xfd", 29},
		{"alignment past 127", body(0x28, 0x80, 0x01, 0x00), ErrMalformed, "0x28", 29},
		{"body past the section", wmod(typeSec, sec(10, []byte{0x01, 0x05, 0x00})), ErrMalformed, "past the end of the code section", 17},
		{"forged element count", []byte("\x00asm\x01\x00\x00\x00\t\x17\xff\xff\xff80000000000000000000"), ErrMalformed, "entries in a 23-byte section 9", 10},
		{"forged body count", wmod(sec(10, []byte{0xff, 0xff, 0xff, 0xff, 0x0f})), ErrMalformed, "function bodies", 10},
		{"forged locals count", funcModule(code(0xff, 0xff, 0x03, 0x0b)), ErrMalformed, "local declarations", 28},
		{"bytes after the last body", wmod(typeSec, sec(10, []byte{0x01, 0x02, 0x00, 0x0b, 0x00})), ErrMalformed, "after the last function body", 20},
		{"truncated import", wmod(sec(2, []byte{0x01, 0x01, 'e', 0x01, 'f', 0x03, 0x7f})), ErrMalformed, "import 0", 11},
		{"bytes after the last export", wmod(sec(7, []byte{0x00, 0x00})), ErrMalformed, "after the last export", 11},
		{"bad export kind", wmod(sec(7, vec(cat(name("x"), []byte{0x09, 0x00})))), ErrMalformed, "kind", 13},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Instrument(tt.in)
			if err == nil {
				t.Fatalf("no error; output % x", out)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %q does not wrap %v", err, tt.want)
			}
			for _, other := range []error{ErrUnsupported, ErrMalformed, ErrLimit} {
				if other != tt.want && errors.Is(err, other) {
					t.Errorf("error %q wraps %v too", err, other)
				}
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not say %q", err, tt.reason)
			}
			if at := fmt.Sprintf("at byte offset %d", tt.offset); !strings.Contains(err.Error(), at) {
				t.Errorf("error %q does not say %q", err, at)
			}
		})
	}
}

// TestErrorNamesFunction checks that an error in a body names the function
// by its index (imports included).
func TestErrorNamesFunction(t *testing.T) {
	in := wmod(typeSec, sec(2, vec(cat(name("e"), name("f"), []byte{0x00, 0x00}))), sec(3, vec([]byte{0}, []byte{0})),
		sec(10, vec(code(0x00, 0x0b), code(0x00, 0xfe, 0x03, 0x0b))))
	_, err := Instrument(in)
	if err == nil || !strings.Contains(err.Error(), "function 2 (code entry 1)") {
		t.Fatalf("error %v does not name function 2 (code entry 1)", err)
	}
}

func TestInstrumentDoesNotModifyInput(t *testing.T) {
	in := testWasm(t, "control")
	orig := bytes.Clone(in)
	mustInstrument(t, in)
	if !bytes.Equal(in, orig) {
		t.Fatal("Instrument modified its input")
	}
}

// TestReinstrument checks that an instrumented module is refused (its
// export name is taken) rather than instrumented twice.
func TestReinstrument(t *testing.T) {
	out := mustInstrument(t, testWasm(t, "control"))
	if _, err := Instrument(out); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("instrumenting twice: %v, want ErrUnsupported", err)
	}
}

func TestLEB(t *testing.T) {
	for _, v := range []uint32{0, 1, 0x7f, 0x80, 0x3fff, 0x4000, 1<<21 - 1, 1 << 21, 1<<28 - 1, 1 << 28, 1<<32 - 1} {
		enc := appendU32(nil, v)
		if !bytes.Equal(enc, uleb(v)) || sizeU32(v) != len(enc) {
			t.Errorf("appendU32(%d) = % x (size %d), want % x", v, enc, sizeU32(v), uleb(v))
		}
		got, next, ok := readU32(enc, 0)
		if !ok || got != v || next != len(enc) {
			t.Errorf("readU32(% x) = %d, %d, %v", enc, got, next, ok)
		}
	}
	signed := []struct {
		enc  []byte
		bits uint
		want int64
		ok   bool
	}{
		{[]byte{0x00}, 32, 0, true},
		{[]byte{0x7f}, 32, -1, true},
		{[]byte{0x40}, 33, -64, true},
		{[]byte{0x3f}, 33, 63, true},
		{[]byte{0x80, 0x7f}, 32, -128, true},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0x07}, 32, 1<<31 - 1, true},
		{[]byte{0x80, 0x80, 0x80, 0x80, 0x78}, 32, -1 << 31, true},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0x0f}, 33, 1<<32 - 1, true},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0x0f}, 32, 0, false}, // bit 31 set, bits above clear
		{[]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f}, 64, -1 << 63, true},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00}, 64, 1<<63 - 1, true},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 64, 0, false},
		{[]byte{0x80}, 32, 0, false},
	}
	for _, tt := range signed {
		got, next, ok := readSigned(tt.enc, 0, tt.bits)
		if ok != tt.ok || ok && (got != tt.want || next != len(tt.enc)) {
			t.Errorf("readSigned(% x, %d) = %d, %d, %v; want %d, %v", tt.enc, tt.bits, got, next, ok, tt.want, tt.ok)
		}
	}
	if _, _, ok := readU64([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}, 0); ok {
		t.Error("readU64 accepted bits beyond 64")
	}
	if v, _, ok := readU64([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 0); !ok || v != 1<<64-1 {
		t.Errorf("readU64(max) = %d, %v", v, ok)
	}
}

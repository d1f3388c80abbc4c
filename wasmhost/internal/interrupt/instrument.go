package interrupt

import (
	"errors"
	"fmt"
	"math"
)

// ExportName is the name under which the instrumented module exports its
// interrupt flag global.
const ExportName = "__weir_interrupt"

var (
	// ErrUnsupported is wrapped by the errors of Instrument for a module
	// that uses something the instrumenter cannot rewrite safely (an
	// opcode or type of a proposal it does not decode, an export already
	// named ExportName). The module may still be valid: run it without
	// instrumentation, with wazero's own interruption
	// (RuntimeConfig.WithCloseOnContextDone).
	ErrUnsupported = errors.New("interrupt: module not supported")

	// ErrMalformed is wrapped by the errors of Instrument for bytes that
	// are not a well-formed Wasm binary. wazero would reject them too,
	// but only after allocating memory in proportion to the counts it
	// read (8 GiB for a forged element section of 40 bytes): reject them
	// without handing them to wazero.
	ErrMalformed = errors.New("interrupt: malformed module")

	// ErrLimit is wrapped by the errors of Instrument for a module beyond
	// an implementation limit (maxLocals). The module may be valid, but
	// no host should compile it: wazero allocates memory in proportion to
	// such numbers before it checks anything else (4 GiB for a function
	// body of 6 bytes that declares 2^32-1 locals).
	ErrLimit = errors.New("interrupt: module exceeds an implementation limit")
)

// maxLocals bounds the locals a function declares (parameters aside):
// the limit of V8 (and so of every module that runs in a browser).
const maxLocals = 50_000

// Section ids, and their required order (custom sections aside). Tag (13,
// exception handling) sits between memory and global.
const (
	secCustom    = 0
	secType      = 1
	secImport    = 2
	secFunction  = 3
	secTable     = 4
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secData      = 11
	secDataCount = 12
	secTag       = 13
)

// sectionRank orders the known non-custom sections; 0 means unknown.
func sectionRank(id byte) int {
	switch id {
	case secType, secImport, secFunction, secTable, secMemory:
		return int(id)
	case secTag:
		return 6
	case secGlobal, secExport, secStart, secElement:
		return int(id) + 1
	case secDataCount:
		return 11
	case secCode:
		return 12
	case secData:
		return 13
	}
	return 0
}

// Value type and reference type bytes of Wasm 2.0.
const (
	typeI32       = 0x7f
	typeI64       = 0x7e
	typeF32       = 0x7d
	typeF64       = 0x7c
	typeV128      = 0x7b
	typeFuncref   = 0x70
	typeExternref = 0x6f
	blockEmpty    = 0x40
)

func isValType(b byte) bool {
	switch b {
	case typeI32, typeI64, typeF32, typeF64, typeV128, typeFuncref, typeExternref:
		return true
	}
	return false
}

// header is the magic number and version 1.
const header = "\x00asm\x01\x00\x00\x00"

// section is one section of the input: its id and content bounds.
type section struct {
	id         byte
	start, end int // content, after the size
}

// vecSection locates a vector section of the input that Instrument
// extends.
type vecSection struct {
	index   int    // in module.sections, -1 when absent
	count   uint32 // number of entries
	entries int    // offset of the first entry
}

// module is what Instrument learned about its input: the sections to keep
// and the facts the rewrite depends on.
type module struct {
	b        []byte
	sections []section // in input order, dropped custom sections excluded

	importedFuncs   uint32
	importedGlobals uint32
	importedTables  uint32
	table0Type      byte // reference type of table 0, if any

	tables, globals, exports vecSection
	codeSec                  int // index in sections, -1 if absent
	code                     codePlan

	flagIndex uint32 // index of the interrupt flag global; the countdown is flagIndex+1
	addTable  bool   // the module has no table: add one for the yield
	check     []byte // the instructions inserted at every check point
}

// Instrument returns a copy of the Wasm binary in which the body of every
// `loop`, and the body of every function that makes a call outside any
// loop, starts with a check:
//
//	global.get $flag ; if (blocktype empty) ; unreachable ; end
//
// followed by a countdown that yields to the Go scheduler every
// yieldInterval checks (see appendCheck). $flag is a new mutable i32 global
// (initial 0) that the module exports as ExportName. Setting it to 1
// (api.MutableGlobal.Set, from any goroutine) makes the running call trap
// at its next check. The package documentation explains why these places
// and why the yield.
//
// The new globals come after the existing ones, so no index changes. A
// module without a table gets one (the yield is a table.grow of 0
// elements). Custom sections other than "name" are dropped: their contents
// may refer to code offsets, which move (DWARF, source maps).
//
// Errors wrap ErrUnsupported (the module may be valid, but the instrumenter
// cannot rewrite it safely), ErrMalformed or ErrLimit, and name the reason
// and the byte offset. Instrument does not validate the module beyond what the
// rewrite needs: compiling the output validates it.
func Instrument(wasm []byte) ([]byte, error) {
	out, _, err := instrument(wasm)
	return out, err
}

// stats counts the checks Instrument inserted, for tests.
type stats struct {
	loops   int // checks at the start of a loop body
	entries int // checks at the start of a function body
}

func instrument(wasm []byte) ([]byte, stats, error) {
	m := &module{b: wasm, tables: vecSection{index: -1}, globals: vecSection{index: -1},
		exports: vecSection{index: -1}, codeSec: -1}
	if err := m.parse(); err != nil {
		return nil, stats{}, err
	}
	return m.emit(), stats{loops: len(m.code.points), entries: m.code.checks - len(m.code.points)}, nil
}

func malformed(off int, format string, args ...any) error {
	return fmt.Errorf("%w: %s at byte offset %d", ErrMalformed, fmt.Sprintf(format, args...), off)
}

func unsupported(off int, format string, args ...any) error {
	return fmt.Errorf("%w: %s at byte offset %d", ErrUnsupported, fmt.Sprintf(format, args...), off)
}

// parse splits the module into sections, checks their order and reads the
// import, global, export and code sections.
func (m *module) parse() error {
	b := m.b
	if len(b) < len(header) || string(b[:4]) != header[:4] {
		return malformed(0, "no Wasm magic number")
	}
	if string(b[4:8]) != header[4:] {
		return unsupported(4, "binary format version %x (only version 1)", b[4:8])
	}
	lastRank := 0
	for i := len(header); i < len(b); {
		secOff := i
		id := b[i]
		size, next, ok := readU32(b, i+1)
		if !ok {
			return malformed(i+1, "bad size of section %d", id)
		}
		if uint64(size) > uint64(len(b)-next) {
			return malformed(i+1, "section %d of %d bytes runs past the end of the module", id, size)
		}
		s := section{id: id, start: next, end: next + int(size)}
		i = s.end
		if id == secCustom {
			name, _, err := readName(b[:s.end], s.start)
			if err != nil {
				return err
			}
			// Only the name section is kept: it refers to indices, which
			// do not change, where other custom sections (DWARF
			// .debug_*, sourceMappingURL, ...) may refer to code
			// offsets, which do.
			if name == "name" {
				m.sections = append(m.sections, s)
			}
			continue
		}
		if sectionRank(id) == 0 {
			return unsupported(secOff, "unknown section id %d", id)
		}
		if r := sectionRank(id); r <= lastRank {
			return malformed(secOff, "section %d out of order or repeated", id)
		} else {
			lastRank = r
		}
		if err := checkCount(b[:s.end], s); err != nil {
			return err
		}
		var err error
		switch id {
		case secImport:
			err = m.parseImports(s)
		case secTable:
			err = m.parseTables(s)
		case secGlobal:
			m.globals.index = len(m.sections)
			m.globals.count, m.globals.entries, err = readCount(b[:s.end], s.start, "global")
		case secExport:
			err = m.parseExports(s)
		case secCode:
			m.codeSec = len(m.sections)
		}
		if err != nil {
			return err
		}
		m.sections = append(m.sections, s)
	}

	// The flag's index: after every imported and defined global, so that
	// no existing index moves.
	n := uint64(m.importedGlobals) + uint64(m.globals.count)
	if n >= math.MaxUint32-1 {
		return malformed(len(header), "%d globals", n)
	}
	m.flagIndex = uint32(n)
	if m.codeSec >= 0 {
		s := m.sections[m.codeSec]
		if err := m.code.parse(b[:s.end], s.start, m.importedFuncs); err != nil {
			return err
		}
		if m.code.checks > 0 && m.importedTables+m.tables.count == 0 {
			m.addTable, m.table0Type = true, typeFuncref
		}
		m.check = appendCheck(nil, m.flagIndex, m.flagIndex+1, m.table0Type)
		if m.code.tooBig(len(m.check)) {
			return unsupported(s.start, "instrumented code section would exceed 4 GiB")
		}
	}
	return nil
}

// minEntrySize is the size of the smallest entry of a vector section, 0
// for the others (code is checked by codePlan.parse).
func minEntrySize(id byte) int {
	switch id {
	case secFunction:
		return 1
	case secType, secMemory, secData, secTag: // (a GC rec group may be 2 bytes)
		return 2
	case secTable, secGlobal, secExport, secElement:
		return 3
	case secImport:
		return 4
	}
	return 0
}

// checkCount rejects a vector section whose count cannot fit its size.
// This is no validation, only a bound: wazero allocates its tables from
// these counts before it reads the entries (8 GiB for a forged 40-byte
// element section), and the host hands it the output.
func checkCount(b []byte, s section) error {
	size := minEntrySize(s.id)
	if size == 0 {
		return nil
	}
	n, next, err := readCount(b, s.start, "entry")
	if err != nil {
		return err
	}
	if uint64(n)*uint64(size) > uint64(s.end-next) {
		return malformed(s.start, "%d entries in a %d-byte section %d", n, s.end-s.start, s.id)
	}
	return nil
}

// readCount reads the element count of a vector section.
func readCount(b []byte, i int, what string) (uint32, int, error) {
	n, next, ok := readU32(b, i)
	if !ok {
		return 0, 0, malformed(i, "bad %s count", what)
	}
	return n, next, nil
}

// readName reads a name (u32 length, bytes) at b[i:].
func readName(b []byte, i int) (string, int, error) {
	n, next, ok := readU32(b, i)
	if !ok {
		return "", 0, malformed(i, "bad name length")
	}
	if uint64(n) > uint64(len(b)-next) {
		return "", 0, malformed(i, "name of %d bytes runs past the end of its section", n)
	}
	return string(b[next : next+int(n)]), next + int(n), nil
}

// parseImports counts imported functions and globals, which the flag's
// index and error messages depend on.
func (m *module) parseImports(s section) error {
	b := m.b[:s.end]
	count, i, err := readCount(b, s.start, "import")
	if err != nil {
		return err
	}
	for k := uint32(0); k < count; k++ {
		entry := i
		if _, i, err = readName(b, i); err != nil { // module
			return err
		}
		if _, i, err = readName(b, i); err != nil { // field
			return err
		}
		if i >= len(b) {
			return malformed(i, "import %d truncated", k)
		}
		kind := b[i]
		i++
		var ok bool
		switch kind {
		case 0x00: // function: type index
			_, i, ok = readU32(b, i)
			m.importedFuncs++
		case 0x01: // table: reftype, limits
			if i < len(b) && b[i] != typeFuncref && b[i] != typeExternref {
				return unsupported(i, "import %d: table element type 0x%02x", k, b[i])
			}
			if i < len(b) && m.importedTables == 0 {
				m.table0Type = b[i]
			}
			m.importedTables++
			i, ok = skipLimits(b, i+1)
		case 0x02: // memory: limits
			i, ok = skipLimits(b, i)
		case 0x03: // global: valtype, mutability
			if i+1 >= len(b) {
				return malformed(entry, "import %d truncated", k)
			}
			if !isValType(b[i]) {
				return unsupported(i, "import %d: global of type 0x%02x", k, b[i])
			}
			if b[i+1] > 1 {
				return malformed(i+1, "import %d: global mutability %d", k, b[i+1])
			}
			i, ok = i+2, true
			m.importedGlobals++
		case 0x04: // tag (exception handling): attribute, type index
			if i >= len(b) {
				return malformed(entry, "import %d truncated", k)
			}
			_, i, ok = readU32(b, i+1)
		default:
			return unsupported(i-1, "import %d of kind 0x%02x", k, kind)
		}
		if !ok {
			return malformed(entry, "import %d truncated or malformed", k)
		}
	}
	if i != s.end {
		return malformed(i, "%d bytes after the last import", s.end-i)
	}
	return nil
}

// skipLimits skips table or memory limits: a flags byte (bit 0: maximum
// present, bit 1: shared, bit 2: 64-bit addresses), then the minimum and the
// optional maximum, u32 or (64-bit) u64.
func skipLimits(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] > 7 {
		return i, false
	}
	flags := b[i]
	i++
	n := 1
	if flags&1 != 0 {
		n = 2
	}
	ok := true
	for ; n > 0 && ok; n-- {
		if flags&4 != 0 {
			_, i, ok = readU64(b, i)
		} else {
			_, i, ok = readU32(b, i)
		}
	}
	return i, ok
}

// parseTables reads the table count and, when table 0 is the first table
// defined here, its element type (the yield's table.grow needs a null
// reference of that type).
func (m *module) parseTables(s section) error {
	b := m.b[:s.end]
	count, i, err := readCount(b, s.start, "table")
	if err != nil {
		return err
	}
	m.tables = vecSection{index: len(m.sections), count: count, entries: i}
	if m.importedTables > 0 || count == 0 {
		return nil
	}
	if i+1 < len(b) && b[i] == 0x40 && b[i+1] == 0x00 { // Wasm 3.0: a table with an initializer
		i += 2
	}
	if i >= len(b) {
		return malformed(i, "table 0 truncated")
	}
	if b[i] != typeFuncref && b[i] != typeExternref {
		return unsupported(i, "table 0 of element type 0x%02x", b[i])
	}
	m.table0Type = b[i]
	return nil
}

// parseExports checks that ExportName is free.
func (m *module) parseExports(s section) error {
	b := m.b[:s.end]
	count, i, err := readCount(b, s.start, "export")
	if err != nil {
		return err
	}
	m.exports = vecSection{index: len(m.sections), count: count, entries: i}
	for k := uint32(0); k < count; k++ {
		entry := i
		var name string
		if name, i, err = readName(b, i); err != nil {
			return err
		}
		if name == ExportName {
			return unsupported(entry, "the module already exports %q", ExportName)
		}
		if i >= len(b) || b[i] > 0x04 {
			return malformed(i, "export %d: bad kind", k)
		}
		var ok bool
		if _, i, ok = readU32(b, i+1); !ok {
			return malformed(entry, "export %d: bad index", k)
		}
	}
	if i != s.end {
		return malformed(i, "%d bytes after the last export", s.end-i)
	}
	return nil
}

// yieldInterval is the number of checks after which a check yields to the
// Go scheduler (see appendCheck and the package documentation).
const yieldInterval = 1024

// appendCheck appends the check for the flag global, the countdown global
// and table 0, of element type ref:
//
//	global.get $flag ; if ; unreachable ; end       ;; interrupted: trap
//	global.get $countdown ; i32.const -1 ; i32.add ; global.set $countdown
//	global.get $countdown ; i32.eqz
//	if                                              ;; every yieldInterval checks:
//	  ref.null ref ; i32.const 0 ; table.grow 0 ; drop   ;; yield to Go
//	  i32.const yieldInterval ; global.set $countdown
//	end
//
// The yield matters because the Go runtime cannot preempt native code:
// without it, a guest that runs long holds up every stop-the-world phase
// of the garbage collector, and a guest that never returns deadlocks the
// whole process at the next one (the goroutine that would set the flag is
// stopped too). wazero's compiler makes table.grow a call into Go
// (TableInstance.Grow, which returns at once for 0 elements), and the
// prologue of that Go function is where a pending preemption takes place.
// memory.grow would do as well, but its compiled code forgets what it
// knows about the memory (base address, checked bounds) after the call,
// which slows the rest of the function down (+15% per record for a Go
// guest, where table.grow costs nothing measurable).
func appendCheck(b []byte, flag, countdown uint32, ref byte) []byte {
	b = append(b, 0x23) // global.get
	b = appendU32(b, flag)
	b = append(b, opIf, blockEmpty, opUnreachable, opEnd)
	b = append(b, 0x23)
	b = appendU32(b, countdown)
	b = append(b, 0x41, 0x7f, 0x6a, 0x24) // i32.const -1; i32.add; global.set
	b = appendU32(b, countdown)
	b = append(b, 0x23)
	b = appendU32(b, countdown)
	b = append(b, 0x45, opIf, blockEmpty)                                // i32.eqz; if
	b = append(b, 0xd0, ref, 0x41, 0x00, opPrefixMisc, 0x0f, 0x00, 0x1a) // ref.null; i32.const 0; table.grow 0; drop
	b = append(b, 0x41)                                                  // i32.const
	b = appendSLEB32(b, yieldInterval)
	b = append(b, 0x24)
	b = appendU32(b, countdown)
	return append(b, opEnd)
}

// emit writes the instrumented module.
func (m *module) emit() []byte {
	// Entries appended to vector sections, created where absent: the
	// table for the yield if needed, the flag (mut i32 = 0) and the
	// countdown (mut i32 = yieldInterval), the flag's export.
	type addition struct {
		id      byte
		vec     *vecSection
		n       uint32
		entries []byte
	}
	newGlobals := appendSLEB32([]byte{typeI32, 0x01, 0x41, 0x00, 0x0b, typeI32, 0x01, 0x41}, yieldInterval)
	newGlobals = append(newGlobals, 0x0b)
	newExport := append(appendU32(nil, uint32(len(ExportName))), ExportName...)
	newExport = append(newExport, 0x03) // global
	newExport = appendU32(newExport, m.flagIndex)
	adds := []addition{ // in section order
		{secGlobal, &m.globals, 2, newGlobals},
		{secExport, &m.exports, 1, newExport},
	}
	if m.addTable {
		adds = append([]addition{{secTable, &m.tables, 1, []byte{typeFuncref, 0x00, 0x00}}}, adds...)
	}

	out := make([]byte, 0, len(m.b)+m.code.checks*len(m.check)+len(newGlobals)+len(newExport)+64)
	out = append(out, header...)
	// createMissing creates the absent sections that must precede a
	// section of the given rank.
	created := 0
	createMissing := func(rank int) {
		for ; created < len(adds) && sectionRank(adds[created].id) < rank; created++ {
			if a := adds[created]; a.vec.index < 0 {
				out = appendSection(out, a.id, appendU32(nil, a.n), a.entries)
			}
		}
	}
	for k, s := range m.sections {
		if s.id != secCustom {
			createMissing(sectionRank(s.id))
		}
		extended := false
		for _, a := range adds {
			if a.vec.index == k {
				out = appendSection(out, s.id, appendU32(nil, a.vec.count+a.n), m.b[a.vec.entries:s.end], a.entries)
				extended = true
			}
		}
		switch {
		case extended:
		case k == m.codeSec:
			out = m.code.emit(out, m.b, m.check)
		default:
			out = appendSection(out, s.id, m.b[s.start:s.end])
		}
	}
	createMissing(math.MaxInt)
	return out
}

// appendSection appends a section made of the concatenation of parts.
func appendSection(out []byte, id byte, parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	out = append(out, id)
	out = appendU32(out, uint32(n))
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

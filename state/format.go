package state

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"

	"github.com/weirstream/weir/abi"
)

// The canonical snapshot stream, version 1 (doc.go, "Canonical snapshot
// stream", is the specification). Export writes it with streamWriter;
// Import reads it with streamReader and hands what it keeps to an
// importSink of the target backend.

const (
	streamMagic   = "WEIRSNAP"
	streamVersion = 1

	// Block types.
	blockHeader  byte = 'H'
	blockData    byte = 'D'
	blockTrailer byte = 'T'

	frameHead = 1 + 4   // block type, payload length u32
	frameTail = 4       // CRC32C u32 of type, length and payload
	dataHead  = 2 + 3*4 // key group u16, cell, list and timer record counts u32
	trailerN  = 5       // u64 counts in the trailer
	trailerSz = trailerN * 8

	// Record types in data blocks.
	recCell  byte = 1
	recList  byte = 2
	recTimer byte = 3

	// blockTarget is the payload size after which the writer starts a new
	// block: big enough that framing costs nothing, small enough that a
	// reader skipping key groups outside its range skips little.
	blockTarget = 128 << 10
	// maxBlockPayload bounds a block (one record can make a block bigger
	// than blockTarget); a larger length field is corruption.
	maxBlockPayload = 1 << 30
)

// castagnoli is the CRC32C table (read-only after initialisation).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is wrapped by every error Import returns for a stream that is
// truncated, damaged or not a snapshot stream at all (see CorruptError).
var ErrCorrupt = errors.New("state: corrupt snapshot stream")

// ErrStreamVersion is returned by Import for an intact stream of a format
// version this build cannot read.
var ErrStreamVersion = errors.New("state: unsupported snapshot stream version")

// CorruptError says where and how a snapshot stream is damaged. It wraps
// ErrCorrupt.
type CorruptError struct {
	Offset int64  // byte offset in the stream of the damaged block or record
	Reason string // what is wrong
}

// Error names the offset and the problem.
func (e *CorruptError) Error() string {
	return fmt.Sprintf("state: corrupt snapshot stream at byte %d: %s", e.Offset, e.Reason)
}

// Unwrap makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

func corruptf(off int64, format string, args ...any) error {
	return &CorruptError{Offset: off, Reason: fmt.Sprintf(format, args...)}
}

// streamCounts are the totals a trailer records.
type streamCounts struct {
	blocks, cells, lists, timers, bytes uint64
}

// --- writing ---

// streamWriter writes a stream: header, data records in ascending key
// group order, trailer. Records of one key group go to blocks of that
// group only, so a reader can skip a block by its key group alone.
type streamWriter struct {
	w    io.Writer
	kr   abi.KeyGroupRange
	buf  []byte // the frame being built
	open bool   // buf holds a data block
	kg   int    // its key group; the last one written
	n    [3]uint32
	tot  streamCounts
}

func newStreamWriter(w io.Writer, kr abi.KeyGroupRange) *streamWriter {
	return &streamWriter{w: w, kr: kr, kg: -1, buf: make([]byte, 0, blockTarget+4096)}
}

func (sw *streamWriter) startFrame(typ byte) {
	sw.buf = append(sw.buf[:0], typ, 0, 0, 0, 0)
}

func (sw *streamWriter) endFrame() error {
	n := len(sw.buf) - frameHead
	if n > maxBlockPayload {
		return fmt.Errorf("state: export: a block of %d bytes exceeds the limit of %d (one value too large?)", n, maxBlockPayload)
	}
	binary.BigEndian.PutUint32(sw.buf[1:frameHead], uint32(n))
	sw.buf = binary.BigEndian.AppendUint32(sw.buf, crc32.Checksum(sw.buf, castagnoli))
	if _, err := sw.w.Write(sw.buf); err != nil {
		return fmt.Errorf("state: export: write: %w", err)
	}
	return nil
}

// header writes the magic and the header block.
func (sw *streamWriter) header(states []StateInfo, owners []string) error {
	if _, err := io.WriteString(sw.w, streamMagic); err != nil {
		return fmt.Errorf("state: export: write: %w", err)
	}
	sw.startFrame(blockHeader)
	sw.buf = binary.BigEndian.AppendUint16(sw.buf, streamVersion)
	sw.buf = binary.BigEndian.AppendUint32(sw.buf, uint32(sw.kr.Start))
	sw.buf = binary.BigEndian.AppendUint32(sw.buf, uint32(sw.kr.End))
	sw.buf = binary.AppendUvarint(sw.buf, uint64(len(states)))
	for _, s := range states {
		sw.buf = appendString(sw.buf, s.Operator)
		sw.buf = appendString(sw.buf, s.Name)
		sw.buf = append(sw.buf, byte(s.Kind))
	}
	sw.buf = binary.AppendUvarint(sw.buf, uint64(len(owners)))
	for _, o := range owners {
		sw.buf = appendString(sw.buf, o)
	}
	return sw.endFrame()
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// record prepares buf for a record of key group kg: it ends the open block
// if it is of another group or full, and opens one if needed.
func (sw *streamWriter) record(kg int) error {
	if sw.open && (kg != sw.kg || len(sw.buf) >= frameHead+blockTarget) {
		if err := sw.endData(); err != nil {
			return err
		}
	}
	if sw.open {
		return nil
	}
	if kg < sw.kg || !sw.kr.Contains(kg) {
		return fmt.Errorf("state: export: key group %d out of order or outside %d..%d (after %d)", kg, sw.kr.Start, sw.kr.End-1, sw.kg)
	}
	sw.startFrame(blockData)
	sw.buf = binary.BigEndian.AppendUint16(sw.buf, uint16(kg))
	sw.buf = append(sw.buf, make([]byte, 3*4)...)
	sw.open, sw.kg, sw.n = true, kg, [3]uint32{}
	return nil
}

func (sw *streamWriter) endData() error {
	h := sw.buf[frameHead+2:]
	for i, n := range sw.n {
		binary.BigEndian.PutUint32(h[4*i:], n)
	}
	sw.tot.blocks++
	sw.tot.cells += uint64(sw.n[0])
	sw.tot.lists += uint64(sw.n[1])
	sw.tot.timers += uint64(sw.n[2])
	sw.tot.bytes += uint64(len(sw.buf) - frameHead)
	sw.open = false
	return sw.endFrame()
}

// cell writes a value or map cell; state is the header index.
func (sw *streamWriter) cell(kg int, state uint32, key, sub, value []byte) error {
	if err := sw.record(kg); err != nil {
		return err
	}
	sw.buf = append(sw.buf, recCell)
	sw.buf = binary.AppendUvarint(sw.buf, uint64(state))
	sw.buf = appendBytes(sw.buf, key)
	sw.buf = appendBytes(sw.buf, sub)
	sw.buf = appendBytes(sw.buf, value)
	sw.n[0]++
	return nil
}

// list writes the items of a list (uvarint(len), value entries, as lists
// are stored), split into records of about blockTarget bytes at item
// boundaries; the reader appends records of one key in order. An empty
// list writes nothing.
func (sw *streamWriter) list(kg int, state uint32, key, items []byte) error {
	for len(items) > 0 {
		n, err := listChunk(items, blockTarget)
		if err != nil {
			return fmt.Errorf("state: export list of state %d, key group %d, key %q: %w", state, kg, key, err)
		}
		if err := sw.record(kg); err != nil {
			return err
		}
		sw.buf = append(sw.buf, recList)
		sw.buf = binary.AppendUvarint(sw.buf, uint64(state))
		sw.buf = appendBytes(sw.buf, key)
		sw.buf = appendBytes(sw.buf, items[:n])
		sw.n[1]++
		items = items[n:]
	}
	return nil
}

// listChunk returns the length of the longest prefix of items made of
// whole entries and at most limit bytes long, but at least one entry.
func listChunk(items []byte, limit int) (int, error) {
	pos := 0
	for pos < len(items) {
		n, w := binary.Uvarint(items[pos:])
		if w <= 0 || uint64(len(items)-pos-w) < n {
			return 0, fmt.Errorf("corrupt list entry at byte %d of %d", pos, len(items))
		}
		next := pos + w + int(n)
		if pos > 0 && next > limit {
			break
		}
		pos = next
	}
	return pos, nil
}

// timer writes a timer; owner is the header index.
func (sw *streamWriter) timer(kg int, owner uint32, domain abi.TimeDomain, ts int64, key []byte) error {
	if err := sw.record(kg); err != nil {
		return err
	}
	sw.buf = append(sw.buf, recTimer)
	sw.buf = binary.AppendUvarint(sw.buf, uint64(owner))
	sw.buf = append(sw.buf, byte(domain))
	sw.buf = binary.BigEndian.AppendUint64(sw.buf, flipTimestamp(ts))
	sw.buf = appendBytes(sw.buf, key)
	sw.n[2]++
	return nil
}

// finish ends the last data block and writes the trailer.
func (sw *streamWriter) finish() error {
	if sw.open {
		if err := sw.endData(); err != nil {
			return err
		}
	}
	sw.startFrame(blockTrailer)
	for _, n := range []uint64{sw.tot.blocks, sw.tot.cells, sw.tot.lists, sw.tot.timers, sw.tot.bytes} {
		sw.buf = binary.BigEndian.AppendUint64(sw.buf, n)
	}
	return sw.endFrame()
}

// exportOwners names the timer owners of a snapshot (ascending numbers)
// through owner and returns the names, in the order of the header, and
// each number's index.
func exportOwners(nums []uint32, owner func(uint32) string) ([]string, map[uint32]uint32, error) {
	names := make([]string, len(nums))
	index := make(map[uint32]uint32, len(nums))
	seen := make(map[string]uint32, len(nums))
	for i, n := range nums {
		name := ""
		if owner != nil {
			name = owner(n)
		}
		if name == "" {
			return nil, nil, fmt.Errorf("state: export: timer owner %d has no operator name", n)
		}
		if prev, dup := seen[name]; dup {
			return nil, nil, fmt.Errorf("state: export: timer owners %d and %d are both named %q", prev, n, name)
		}
		seen[name] = n
		names[i] = name
		index[n] = uint32(i)
	}
	return names, index, nil
}

func checkExportRange(kr abi.KeyGroupRange) error {
	if kr.Start < 0 || kr.End > MaxKeyGroups || kr.Start > kr.End {
		return fmt.Errorf("state: key-group range %d..%d (half-open) not within [0, %d): %w", kr.Start, kr.End, MaxKeyGroups, abi.ErrInvalid)
	}
	return nil
}

// --- reading ---

// streamReader reads the frames of a stream and keeps its byte offset for
// error messages.
type streamReader struct {
	r   *bufio.Reader
	off int64
	hdr [frameHead]byte
	buf []byte
}

// readErr turns a read failure into a corruption error (the stream ended)
// or a wrapped I/O error.
func (sr *streamReader) readErr(err error, at int64, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return corruptf(at, "stream truncated in %s (at byte %d)", what, sr.off)
	}
	return fmt.Errorf("state: import: read snapshot stream at byte %d: %w", sr.off, err)
}

func (sr *streamReader) magic() error {
	var m [len(streamMagic)]byte
	n, err := io.ReadFull(sr.r, m[:])
	sr.off += int64(n)
	if err != nil {
		return sr.readErr(err, 0, "the magic number")
	}
	if string(m[:]) != streamMagic {
		return corruptf(0, "magic %q, want %q: not a weir snapshot stream", m[:], streamMagic)
	}
	return nil
}

// block reads the next frame and checks its CRC. The payload is valid
// until the next call.
func (sr *streamReader) block() (typ byte, payload []byte, at int64, err error) {
	at = sr.off
	n, err := io.ReadFull(sr.r, sr.hdr[:])
	sr.off += int64(n)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return 0, nil, at, corruptf(at, "stream ends without its trailer")
		}
		return 0, nil, at, sr.readErr(err, at, "a block header")
	}
	typ = sr.hdr[0]
	if typ != blockHeader && typ != blockData && typ != blockTrailer {
		return 0, nil, at, corruptf(at, "unknown block type 0x%02x", typ)
	}
	length := binary.BigEndian.Uint32(sr.hdr[1:])
	if length > maxBlockPayload {
		return 0, nil, at, corruptf(at, "%s block length %d exceeds the limit of %d", blockName(typ), length, maxBlockPayload)
	}
	// Read in chunks, so that a damaged length cannot make us allocate
	// far more than the stream holds.
	need := int(length) + frameTail
	sr.buf = sr.buf[:0]
	for len(sr.buf) < need {
		chunk := min(need-len(sr.buf), 1<<20)
		sr.buf = slices.Grow(sr.buf, chunk)
		n, err := io.ReadFull(sr.r, sr.buf[len(sr.buf):len(sr.buf)+chunk])
		sr.buf = sr.buf[:len(sr.buf)+n]
		sr.off += int64(n)
		if err != nil {
			return 0, nil, at, sr.readErr(err, at, blockName(typ)+" block")
		}
	}
	payload = sr.buf[:length]
	crc := crc32.Update(crc32.Checksum(sr.hdr[:], castagnoli), castagnoli, payload)
	if stored := binary.BigEndian.Uint32(sr.buf[length:]); stored != crc {
		return 0, nil, at, corruptf(at, "%s block of %d bytes: checksum %08x, computed %08x", blockName(typ), length, stored, crc)
	}
	return typ, payload, at, nil
}

func blockName(typ byte) string {
	switch typ {
	case blockHeader:
		return "header"
	case blockData:
		return "data"
	case blockTrailer:
		return "trailer"
	}
	return fmt.Sprintf("0x%02x", typ)
}

// decoder reads the fields of a payload; the first overrun sets bad and
// makes every later read return zero values.
type decoder struct {
	b   []byte
	pos int
	bad bool
}

func (d *decoder) need(n int) bool {
	if d.bad || n < 0 || n > len(d.b)-d.pos {
		d.bad = true
		return false
	}
	return true
}

func (d *decoder) u8() byte {
	if !d.need(1) {
		return 0
	}
	d.pos++
	return d.b[d.pos-1]
}

func (d *decoder) u16() uint16 {
	if !d.need(2) {
		return 0
	}
	d.pos += 2
	return binary.BigEndian.Uint16(d.b[d.pos-2:])
}

func (d *decoder) u32() uint32 {
	if !d.need(4) {
		return 0
	}
	d.pos += 4
	return binary.BigEndian.Uint32(d.b[d.pos-4:])
}

func (d *decoder) u64() uint64 {
	if !d.need(8) {
		return 0
	}
	d.pos += 8
	return binary.BigEndian.Uint64(d.b[d.pos-8:])
}

func (d *decoder) uvarint() uint64 {
	if d.bad {
		return 0
	}
	v, w := binary.Uvarint(d.b[d.pos:])
	if w <= 0 {
		d.bad = true
		return 0
	}
	d.pos += w
	return v
}

// bytes reads a length-prefixed byte string (a sub-slice of the payload).
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.bad || n > uint64(len(d.b)-d.pos) {
		d.bad = true
		return nil
	}
	d.pos += int(n)
	return d.b[d.pos-int(n) : d.pos : d.pos]
}

func (d *decoder) done() bool { return d.pos == len(d.b) }

// --- importing ---

// importSink receives what Import keeps. Each backend has one that writes
// the fastest way it can; backendSink works for any Backend.
type importSink interface {
	register(operator, name string, kind abi.StateKind) (ID, error)
	// cell stores a value (sub empty) or map cell.
	cell(id ID, kg int, key, sub, value []byte) error
	// list appends items (validated, non-empty) to a list.
	list(id ID, kg int, key, items []byte) error
	timer(t Timer) error
	// finish is called once the trailer has been verified; abort instead
	// when the import fails.
	finish() error
	abort()
}

// backendSink imports through the Backend interface.
type backendSink struct{ b Backend }

func (s backendSink) register(operator, name string, kind abi.StateKind) (ID, error) {
	return s.b.Register(operator, name, kind)
}

func (s backendSink) cell(id ID, kg int, key, sub, value []byte) error {
	return s.b.Put(id, kg, key, sub, value)
}

func (s backendSink) list(id ID, kg int, key, items []byte) error {
	return scanList(items, func(_, v []byte) error { return s.b.Append(id, kg, key, v) })
}

func (s backendSink) timer(t Timer) error { return s.b.RegisterTimer(t) }
func (s backendSink) finish() error       { return nil }
func (s backendSink) abort()              {}

// Import reads a canonical stream (written by Snapshot.Export) from r into
// b: the states and timers of the key groups in kr that belong to
// operators m.Owner knows. States are registered on b by (operator, name,
// kind), so a state whose kind changed fails with ErrKindMismatch; timer
// owners are renumbered through m.Owner.
//
// Import reads the stream up to its trailer and checks every block's
// checksum and every count, whether or not its key groups are kept: a
// truncated or damaged stream gives an error wrapping ErrCorrupt (a
// *CorruptError with the byte offset). The Pebble backend stages the data
// and applies it only once the trailer has been verified; other backends
// are written as the stream is read, so after an error they hold part of
// it and must be discarded. The backend should not hold state in kr's key
// groups already: imported cells overwrite, list items are appended.
func Import(b Backend, r io.Reader, kr abi.KeyGroupRange, m ImportMapping) error {
	if m.Owner == nil {
		return fmt.Errorf("state: import: ImportMapping.Owner is nil: %w", abi.ErrInvalid)
	}
	if err := checkExportRange(kr); err != nil {
		return fmt.Errorf("state: import: %w", err)
	}
	var sink importSink
	switch b := b.(type) {
	case *Memory:
		sink = memorySink{b}
	case *Pebble:
		var err error
		if sink, err = b.newImport(); err != nil {
			return err
		}
	default:
		sink = backendSink{b}
	}
	im := &importer{
		sink: sink,
		sr:   &streamReader{r: bufio.NewReaderSize(r, 64<<10)},
		kr:   kr,
		m:    m,
	}
	if err := im.run(); err != nil {
		sink.abort()
		return err
	}
	return nil
}

// importer is the state of one Import.
type importer struct {
	sink   importSink
	sr     *streamReader
	kr     abi.KeyGroupRange
	m      ImportMapping
	hkr    abi.KeyGroupRange // the range the stream says it holds
	states []importState     // by header index
	owners []importOwner     // by header index
	tot    streamCounts
}

type importState struct {
	StateInfo
	id   ID
	keep bool // its operator is in the importing task
}

type importOwner struct {
	name  string
	owner uint32
	keep  bool
}

func (im *importer) run() error {
	if err := im.sr.magic(); err != nil {
		return err
	}
	typ, p, at, err := im.sr.block()
	if err != nil {
		return err
	}
	if typ != blockHeader {
		return corruptf(at, "first block is a %s block, want the header", blockName(typ))
	}
	if err := im.header(p, at); err != nil {
		return err
	}
	prevKG := -1
	for {
		typ, p, at, err := im.sr.block()
		if err != nil {
			return err
		}
		switch typ {
		case blockHeader:
			return corruptf(at, "second header block")
		case blockTrailer:
			if err := im.trailer(p, at); err != nil {
				return err
			}
			if err := im.sink.finish(); err != nil {
				return fmt.Errorf("state: import: %w", err)
			}
			return nil
		}
		if len(p) < dataHead {
			return corruptf(at, "data block of %d bytes is shorter than its header", len(p))
		}
		kg := int(binary.BigEndian.Uint16(p))
		if kg < prevKG || !im.hkr.Contains(kg) {
			return corruptf(at, "data block of key group %d after key group %d in a stream of key groups %d..%d", kg, prevKG, im.hkr.Start, im.hkr.End-1)
		}
		prevKG = kg
		var n [3]uint32
		for i := range n {
			n[i] = binary.BigEndian.Uint32(p[2+4*i:])
		}
		im.tot.blocks++
		im.tot.cells += uint64(n[0])
		im.tot.lists += uint64(n[1])
		im.tot.timers += uint64(n[2])
		im.tot.bytes += uint64(len(p))
		if !im.kr.Contains(kg) {
			continue // checked by its CRC and counted, not needed
		}
		if err := im.data(kg, p, at, n); err != nil {
			return err
		}
	}
}

// header parses the header block and registers the states to keep.
func (im *importer) header(p []byte, at int64) error {
	d := &decoder{b: p}
	bad := func(what string) error {
		return corruptf(at+frameHead+int64(d.pos), "header block: %s", what)
	}
	if v := d.u16(); d.bad {
		return bad("truncated version")
	} else if v != streamVersion {
		return fmt.Errorf("state: import: stream format version %d, this build reads version %d: %w", v, streamVersion, ErrStreamVersion)
	}
	start, end := d.u32(), d.u32()
	if d.bad {
		return bad("truncated key-group range")
	}
	if start > end || end > MaxKeyGroups {
		return bad(fmt.Sprintf("key-group range %d..%d (half-open) not within [0, %d)", start, end, MaxKeyGroups))
	}
	im.hkr = abi.KeyGroupRange{Start: int(start), End: int(end)}
	n := d.uvarint()
	if d.bad || n > uint64(len(p)) {
		return bad("bad state count")
	}
	seen := make(map[registryName]bool, n)
	im.states = make([]importState, n)
	for i := range im.states {
		op, name, kind := string(d.bytes()), string(d.bytes()), abi.StateKind(d.u8())
		if d.bad {
			return bad(fmt.Sprintf("truncated state %d", i))
		}
		if checkKind(kind) != nil {
			return bad(fmt.Sprintf("state %q of operator %q has kind %d", name, op, kind))
		}
		if seen[registryName{op, name}] {
			return bad(fmt.Sprintf("state %q of operator %q listed twice", name, op))
		}
		seen[registryName{op, name}] = true
		im.states[i].StateInfo = StateInfo{Operator: op, Name: name, Kind: kind}
	}
	n = d.uvarint()
	if d.bad || n > uint64(len(p)) {
		return bad("bad timer owner count")
	}
	im.owners = make([]importOwner, n)
	names := make(map[string]bool, n)
	for i := range im.owners {
		name := string(d.bytes())
		if d.bad {
			return bad(fmt.Sprintf("truncated timer owner %d", i))
		}
		if names[name] {
			return bad(fmt.Sprintf("timer owner %q listed twice", name))
		}
		names[name] = true
		im.owners[i].name = name
	}
	if !d.done() {
		return bad(fmt.Sprintf("%d bytes after the owner list", len(p)-d.pos))
	}
	for i := range im.states {
		s := &im.states[i]
		if _, ok := im.m.Owner(s.Operator); !ok {
			continue
		}
		id, err := im.sink.register(s.Operator, s.Name, s.Kind)
		if err != nil {
			return fmt.Errorf("state: import: %w", err)
		}
		s.id, s.keep = id, true
	}
	for i := range im.owners {
		o := &im.owners[i]
		o.owner, o.keep = im.m.Owner(o.name)
	}
	return nil
}

// data parses the records of a data block of kg and passes them on.
func (im *importer) data(kg int, p []byte, at int64, want [3]uint32) error {
	d := &decoder{b: p, pos: dataHead}
	var got [3]uint32
	for !d.done() {
		start := d.pos
		bad := func(format string, args ...any) error {
			return corruptf(at+frameHead+int64(start), "key group %d: record at byte %d of the block: %s", kg, start, fmt.Sprintf(format, args...))
		}
		switch typ := d.u8(); typ {
		case recCell, recList:
			si := d.uvarint()
			key := d.bytes()
			var sub, val []byte
			if typ == recCell {
				sub, val = d.bytes(), d.bytes()
			} else {
				val = d.bytes()
			}
			if d.bad {
				return bad("truncated")
			}
			if si >= uint64(len(im.states)) {
				return bad("state index %d of %d", si, len(im.states))
			}
			s := &im.states[si]
			var err error
			if typ == recCell {
				got[0]++
				switch {
				case s.Kind == abi.StateList:
					return bad("cell of list state %q of operator %q", s.Name, s.Operator)
				case s.Kind == abi.StateValue && len(sub) != 0:
					return bad("sub key in value state %q of operator %q", s.Name, s.Operator)
				}
				if s.keep {
					err = im.sink.cell(s.id, kg, key, sub, val)
				}
			} else {
				got[1]++
				if s.Kind != abi.StateList {
					return bad("list of %v state %q of operator %q", s.Kind, s.Name, s.Operator)
				}
				if n, err := listChunk(val, len(val)); err != nil || n != len(val) || n == 0 {
					return bad("list items of state %q of operator %q: malformed", s.Name, s.Operator)
				}
				if s.keep {
					err = im.sink.list(s.id, kg, key, val)
				}
			}
			if err != nil {
				return fmt.Errorf("state: import %q of operator %q, key group %d: %w", s.Name, s.Operator, kg, err)
			}
		case recTimer:
			got[2]++
			oi, dom, ts, key := d.uvarint(), abi.TimeDomain(d.u8()), unflipTimestamp(d.u64()), d.bytes()
			if d.bad {
				return bad("truncated")
			}
			if oi >= uint64(len(im.owners)) {
				return bad("timer owner index %d of %d", oi, len(im.owners))
			}
			if dom != abi.EventTime && dom != abi.ProcessingTime {
				return bad("timer domain %d", dom)
			}
			if o := im.owners[oi]; o.keep {
				err := im.sink.timer(Timer{Owner: o.owner, Domain: dom, Timestamp: ts, KeyGroup: kg, Key: key})
				if err != nil {
					return fmt.Errorf("state: import timer of operator %q, key group %d: %w", o.name, kg, err)
				}
			}
		default:
			return bad("unknown record type %d", typ)
		}
	}
	if got != want {
		return corruptf(at, "data block of key group %d: header counts %d cells, %d lists, %d timers; records are %d, %d, %d",
			kg, want[0], want[1], want[2], got[0], got[1], got[2])
	}
	return nil
}

func (im *importer) trailer(p []byte, at int64) error {
	if len(p) != trailerSz {
		return corruptf(at, "trailer of %d bytes, want %d", len(p), trailerSz)
	}
	var t [trailerN]uint64
	for i := range t {
		t[i] = binary.BigEndian.Uint64(p[8*i:])
	}
	got := [trailerN]uint64{im.tot.blocks, im.tot.cells, im.tot.lists, im.tot.timers, im.tot.bytes}
	if t != got {
		return corruptf(at, "trailer counts %d data blocks, %d cells, %d lists, %d timers, %d bytes; the stream has %d, %d, %d, %d, %d",
			t[0], t[1], t[2], t[3], t[4], got[0], got[1], got[2], got[3], got[4])
	}
	return nil
}

package connectors

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// The snapshots of the sources and the transaction states of the file sink
// share one envelope (documented in doc.go, "Checkpoint formats"):
//
//	"WEIR"  magic, 4 bytes
//	kind    1 byte: one of the snapKind constants below
//	version 1 byte: the payload's format version (1 for every kind today)
//	payload kind-specific, built from uvarints and length-prefixed strings
//	crc     4 bytes, little endian: CRC-32C (Castagnoli) of all bytes before
//
// The checksum is there because positions are numbers: a flipped bit in an
// offset would otherwise restore silently to the wrong record.
const (
	snapMagic = "WEIR"

	snapKindDatagen     byte = 1
	snapKindFileSource  byte = 2
	snapKindFileSink    byte = 3
	snapKindNexmark     byte = 4 // nexmark source: the datagen payload (nexmarksource.go)
	snapKindKafkaSource byte = 5 // kafka source: offsets per partition (kafkasource.go)
	snapKindKafkaSink   byte = 6 // kafka sink: pre-committed transactions (kafkasink.go)

	// snapVersion is the payload version every kind writes. A reader
	// accepts exactly the versions it knows; a newer one is an error that
	// says so rather than a misread.
	snapVersion byte = 1
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// snapKindName names a kind for error messages.
func snapKindName(k byte) string {
	switch k {
	case snapKindDatagen:
		return "datagen source"
	case snapKindFileSource:
		return "file source"
	case snapKindFileSink:
		return "file sink"
	case snapKindNexmark:
		return "nexmark source"
	case snapKindKafkaSource:
		return "kafka source"
	case snapKindKafkaSink:
		return "kafka sink"
	}
	return fmt.Sprintf("unknown kind %d", k)
}

// snapWriter builds an envelope. Snapshots are taken once per checkpoint,
// not per record, so clarity beats reuse here.
type snapWriter struct{ b []byte }

func newSnapWriter(kind byte) *snapWriter {
	w := &snapWriter{b: make([]byte, 0, 128)}
	w.b = append(w.b, snapMagic...)
	w.b = append(w.b, kind, snapVersion)
	return w
}

func (w *snapWriter) uvarint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }

func (w *snapWriter) string(s string) {
	w.uvarint(uint64(len(s)))
	w.b = append(w.b, s...)
}

// finish appends the checksum and returns the envelope.
func (w *snapWriter) finish() []byte {
	return binary.LittleEndian.AppendUint32(w.b, crc32.Checksum(w.b, crc32c))
}

// snapReader decodes an envelope's payload. The first error sticks; the
// getters return zero values after it, so a decoder reads every field and
// checks err once (as bufio.Scanner does).
type snapReader struct {
	b   []byte
	err error
}

// openSnapshot checks the envelope of b (magic, kind, version, checksum)
// and returns a reader of its payload.
func openSnapshot(b []byte, kind byte) (*snapReader, error) {
	const overhead = len(snapMagic) + 2 + 4
	if len(b) < overhead || string(b[:len(snapMagic)]) != snapMagic {
		return nil, errors.New("not a Weir connector snapshot (bad magic)")
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, crc32c) != sum {
		return nil, errors.New("corrupt snapshot (checksum mismatch)")
	}
	if k := b[len(snapMagic)]; k != kind {
		return nil, fmt.Errorf("snapshot of a %s, want a %s", snapKindName(k), snapKindName(kind))
	}
	if v := b[len(snapMagic)+1]; v != snapVersion {
		return nil, fmt.Errorf("%s snapshot version %d not supported (this build reads version %d)", snapKindName(kind), v, snapVersion)
	}
	return &snapReader{b: body[len(snapMagic)+2:]}, nil
}

func (r *snapReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
}

func (r *snapReader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("corrupt snapshot: truncated or bad %s", what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

// int reads a uvarint that must fit an int below limit (counts, lengths,
// subtask numbers), so that garbage cannot make the decoder allocate
// without bound.
func (r *snapReader) int(what string, limit int) int {
	v := r.uvarint(what)
	if r.err == nil && v >= uint64(limit) {
		r.fail("corrupt snapshot: %s %d out of range (limit %d)", what, v, limit)
		return 0
	}
	return int(v)
}

func (r *snapReader) int64(what string) int64 {
	v := r.uvarint(what)
	if r.err == nil && v > math.MaxInt64 {
		r.fail("corrupt snapshot: %s %d out of range", what, v)
		return 0
	}
	return int64(v)
}

func (r *snapReader) string(what string) string {
	n := r.int(what+" length", len(r.b)+1)
	if r.err != nil {
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// done reports the first error, or trailing bytes after the payload.
func (r *snapReader) done() error {
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("corrupt snapshot: %d unexpected bytes after the payload", len(r.b))
	}
	return r.err
}

// maxSnapshotParallelism bounds parallelism and subtask numbers read from a
// snapshot (garbage must not make Restore allocate per subtask).
const maxSnapshotParallelism = 1 << 16

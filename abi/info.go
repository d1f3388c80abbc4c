package abi

import (
	"encoding/binary"
	"fmt"
)

// OpenInfo is the argument of ExportOpen.
//
// Encoding (little endian): u32 len + bytes for Operator, NodeID and Config;
// then u32 Subtask, u32 Parallelism, u32 MaxParallelism, u32 Inputs.
type OpenInfo struct {
	Operator       string // name of the exported operator to create
	NodeID         string // job-spec node id
	Config         []byte // the node's `config` from the job spec, as JSON (may be empty)
	Subtask        uint32 // index of this parallel instance, 0-based
	Parallelism    uint32 // number of parallel instances of the node
	MaxParallelism uint32 // number of key groups
	Inputs         uint32 // number of inputs of the node
}

// AppendOpenInfo appends o encoded to b.
func AppendOpenInfo(b []byte, o *OpenInfo) []byte {
	b = appendBytes(b, []byte(o.Operator))
	b = appendBytes(b, []byte(o.NodeID))
	b = appendBytes(b, o.Config)
	for _, v := range []uint32{o.Subtask, o.Parallelism, o.MaxParallelism, o.Inputs} {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	return b
}

// DecodeOpenInfo decodes an OpenInfo. Config aliases b.
func DecodeOpenInfo(b []byte) (OpenInfo, error) {
	var o OpenInfo
	r := reader{b: b}
	o.Operator = string(r.bytes())
	o.NodeID = string(r.bytes())
	o.Config = r.bytes()
	o.Subtask = r.u32()
	o.Parallelism = r.u32()
	o.MaxParallelism = r.u32()
	o.Inputs = r.u32()
	if r.err != nil {
		return OpenInfo{}, fmt.Errorf("abi: open info: %w", r.err)
	}
	return o, nil
}

// AppendOperatorTable encodes the operator table a guest returns from
// ExportOperators: u32 count, then per operator u32 name length, name bytes,
// u32 flags.
func AppendOperatorTable(b []byte, ops []OperatorInfo) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(ops)))
	for _, o := range ops {
		b = appendBytes(b, []byte(o.Name))
		b = binary.LittleEndian.AppendUint32(b, o.Flags)
	}
	return b
}

// MaxOperators bounds the operator table.
const MaxOperators = 1024

// DecodeOperatorTable decodes an operator table.
func DecodeOperatorTable(b []byte) ([]OperatorInfo, error) {
	r := reader{b: b}
	n := r.u32()
	if r.err == nil && n > MaxOperators {
		return nil, fmt.Errorf("abi: operator table: %d operators, more than %d", n, MaxOperators)
	}
	var ops []OperatorInfo
	for i := uint32(0); i < n && r.err == nil; i++ {
		name := string(r.bytes())
		flags := r.u32()
		if r.err == nil && name == "" {
			return nil, fmt.Errorf("abi: operator table: operator %d has an empty name", i)
		}
		ops = append(ops, OperatorInfo{Name: name, Flags: flags})
	}
	if r.err != nil {
		return nil, fmt.Errorf("abi: operator table: %w", r.err)
	}
	return ops, nil
}

// AppendScanEntry appends one entry of a state_scan result: u32 sub key
// length, sub key, u32 value length, value.
func AppendScanEntry(b, sub, value []byte) []byte {
	b = appendBytes(b, sub)
	return appendBytes(b, value)
}

// ScanReader iterates the entries of a state_scan result.
type ScanReader struct{ r reader }

// NewScanReader returns a reader over b.
func NewScanReader(b []byte) ScanReader { return ScanReader{reader{b: b}} }

// Next returns the next entry; ok is false at the end or on corrupt input
// (then Err is set). Slices alias the input.
func (s *ScanReader) Next() (sub, value []byte, ok bool) {
	if s.r.err != nil || len(s.r.b) == 0 {
		return nil, nil, false
	}
	sub = s.r.bytes()
	value = s.r.bytes()
	return sub, value, s.r.err == nil
}

// Err is the decoding error, if any.
func (s *ScanReader) Err() error { return s.r.err }

func appendBytes(b, v []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) u32() uint32 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 4 {
		r.err = fmt.Errorf("%w: truncated", ErrCorrupt)
		return 0
	}
	v := binary.LittleEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *reader) bytes() []byte {
	n := r.u32()
	if r.err != nil {
		return nil
	}
	if uint64(n) > uint64(len(r.b)) {
		r.err = fmt.Errorf("%w: length %d past end", ErrCorrupt, n)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

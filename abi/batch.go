package abi

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Kind is the first byte of every event in a batch.
type Kind uint8

const (
	KindRecord     Kind = 1
	KindWatermark  Kind = 2
	KindTimer      Kind = 3
	KindBarrier    Kind = 4
	KindEndOfInput Kind = 5
	KindIdle       Kind = 6
)

func (k Kind) String() string {
	switch k {
	case KindRecord:
		return "record"
	case KindWatermark:
		return "watermark"
	case KindTimer:
		return "timer"
	case KindBarrier:
		return "barrier"
	case KindEndOfInput:
		return "end-of-input"
	case KindIdle:
		return "idle"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Encoded sizes of the fixed parts of each event, kind byte included.
const (
	RecordHeaderSize = 1 + 1 + 4 + 4 + 8 // kind, tag, key len, value len, timestamp
	WatermarkSize    = 1 + 8
	TimerHeaderSize  = 1 + 1 + 8 + 4 // kind, domain, timestamp, key len
	BarrierSize      = 1 + 8 + 8 + 1 // kind, checkpoint id, timestamp, flags
	EndOfInputSize   = 1
	IdleSize         = 1 + 1
)

// MaxFieldLen bounds keys and values (and so any one event) to 64 MiB.
const MaxFieldLen = 64 << 20

// Event is one decoded event. Key and Value alias the batch bytes: they are
// valid only as long as the batch is.
type Event struct {
	Kind      Kind
	Tag       uint8      // record: output tag
	Domain    TimeDomain // timer
	Idle      bool       // idle: true when the channel became idle, false when active again
	Flags     uint8      // barrier flags
	Timestamp int64      // record event time, watermark, timer time, barrier trigger time
	ID        uint64     // barrier: checkpoint id
	Key       []byte     // record, timer
	Value     []byte     // record
}

// Barrier flags.
const (
	BarrierSavepoint uint8 = 1 << 0
)

// ErrCorrupt is wrapped by every decoding error.
var ErrCorrupt = errors.New("corrupt batch")

// Decoder reads events from a batch. The zero value is not usable; use
// NewDecoder or Reset.
type Decoder struct {
	b   []byte
	off int
}

// NewDecoder returns a decoder over b.
func NewDecoder(b []byte) Decoder { return Decoder{b: b} }

// Reset makes d read b from its start.
func (d *Decoder) Reset(b []byte) { d.b, d.off = b, 0 }

// More reports whether events remain.
func (d *Decoder) More() bool { return d.off < len(d.b) }

// Offset is the position of the next event.
func (d *Decoder) Offset() int { return d.off }

func (d *Decoder) corrupt(what string) error {
	return fmt.Errorf("abi: %w: %s at offset %d of %d", ErrCorrupt, what, d.off, len(d.b))
}

// Next decodes the next event into e. It returns an error wrapping
// ErrCorrupt on malformed input and never panics.
func (d *Decoder) Next(e *Event) error {
	b := d.b[d.off:]
	if len(b) == 0 {
		return d.corrupt("read past end")
	}
	*e = Event{Kind: Kind(b[0])}
	switch e.Kind {
	case KindRecord:
		if len(b) < RecordHeaderSize {
			return d.corrupt("truncated record header")
		}
		e.Tag = b[1]
		kl := binary.LittleEndian.Uint32(b[2:])
		vl := binary.LittleEndian.Uint32(b[6:])
		e.Timestamp = int64(binary.LittleEndian.Uint64(b[10:]))
		if kl > MaxFieldLen || vl > MaxFieldLen || uint64(len(b)-RecordHeaderSize) < uint64(kl)+uint64(vl) {
			return d.corrupt("record key/value length out of range")
		}
		k := RecordHeaderSize + int(kl)
		e.Key = b[RecordHeaderSize:k:k]
		e.Value = b[k : k+int(vl) : k+int(vl)]
		d.off += k + int(vl)
	case KindWatermark:
		if len(b) < WatermarkSize {
			return d.corrupt("truncated watermark")
		}
		e.Timestamp = int64(binary.LittleEndian.Uint64(b[1:]))
		d.off += WatermarkSize
	case KindTimer:
		if len(b) < TimerHeaderSize {
			return d.corrupt("truncated timer")
		}
		e.Domain = TimeDomain(b[1])
		if e.Domain > ProcessingTime {
			return d.corrupt("unknown timer domain")
		}
		e.Timestamp = int64(binary.LittleEndian.Uint64(b[2:]))
		kl := binary.LittleEndian.Uint32(b[10:])
		if kl > MaxFieldLen || uint64(len(b)-TimerHeaderSize) < uint64(kl) {
			return d.corrupt("timer key length out of range")
		}
		n := TimerHeaderSize + int(kl)
		e.Key = b[TimerHeaderSize:n:n]
		d.off += n
	case KindBarrier:
		if len(b) < BarrierSize {
			return d.corrupt("truncated barrier")
		}
		e.ID = binary.LittleEndian.Uint64(b[1:])
		e.Timestamp = int64(binary.LittleEndian.Uint64(b[9:]))
		e.Flags = b[17]
		d.off += BarrierSize
	case KindEndOfInput:
		d.off += EndOfInputSize
	case KindIdle:
		if len(b) < IdleSize {
			return d.corrupt("truncated idle marker")
		}
		if b[1] > 1 {
			return d.corrupt("idle flag not 0 or 1")
		}
		e.Idle = b[1] == 1
		d.off += IdleSize
	default:
		return d.corrupt(fmt.Sprintf("unknown event kind %d", b[0]))
	}
	return nil
}

// Encoder appends events to a batch buffer. The zero value is ready to use.
type Encoder struct {
	B []byte // the encoded batch so far
}

// Len is the number of encoded bytes.
func (e *Encoder) Len() int { return len(e.B) }

// Reset empties the batch, keeping its buffer.
func (e *Encoder) Reset() { e.B = e.B[:0] }

// Record appends a record.
func (e *Encoder) Record(tag uint8, key, value []byte, ts int64) {
	e.B = AppendRecord(e.B, tag, key, value, ts)
}

// Watermark appends a watermark.
func (e *Encoder) Watermark(ts int64) { e.B = AppendWatermark(e.B, ts) }

// Timer appends a fired timer.
func (e *Encoder) Timer(d TimeDomain, key []byte, ts int64) { e.B = AppendTimer(e.B, d, key, ts) }

// Barrier appends a checkpoint barrier.
func (e *Encoder) Barrier(id uint64, ts int64, flags uint8) { e.B = AppendBarrier(e.B, id, ts, flags) }

// EndOfInput appends the end-of-input marker.
func (e *Encoder) EndOfInput() { e.B = append(e.B, byte(KindEndOfInput)) }

// Idle appends an idleness change.
func (e *Encoder) Idle(idle bool) { e.B = AppendIdle(e.B, idle) }

// Event appends ev re-encoded.
func (e *Encoder) Event(ev *Event) { e.B = AppendEvent(e.B, ev) }

// AppendRecord appends an encoded record to b.
func AppendRecord(b []byte, tag uint8, key, value []byte, ts int64) []byte {
	n := len(b)
	b = grow(b, RecordHeaderSize+len(key)+len(value))
	h := b[n:]
	h[0] = byte(KindRecord)
	h[1] = tag
	binary.LittleEndian.PutUint32(h[2:], uint32(len(key)))
	binary.LittleEndian.PutUint32(h[6:], uint32(len(value)))
	binary.LittleEndian.PutUint64(h[10:], uint64(ts))
	copy(h[RecordHeaderSize:], key)
	copy(h[RecordHeaderSize+len(key):], value)
	return b
}

// AppendWatermark appends an encoded watermark to b.
func AppendWatermark(b []byte, ts int64) []byte {
	b = append(b, byte(KindWatermark))
	return binary.LittleEndian.AppendUint64(b, uint64(ts))
}

// AppendTimer appends an encoded fired timer to b.
func AppendTimer(b []byte, d TimeDomain, key []byte, ts int64) []byte {
	b = append(b, byte(KindTimer), byte(d))
	b = binary.LittleEndian.AppendUint64(b, uint64(ts))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(key)))
	return append(b, key...)
}

// AppendBarrier appends an encoded barrier to b.
func AppendBarrier(b []byte, id uint64, ts int64, flags uint8) []byte {
	b = append(b, byte(KindBarrier))
	b = binary.LittleEndian.AppendUint64(b, id)
	b = binary.LittleEndian.AppendUint64(b, uint64(ts))
	return append(b, flags)
}

// AppendIdle appends an encoded idleness marker to b.
func AppendIdle(b []byte, idle bool) []byte {
	v := byte(0)
	if idle {
		v = 1
	}
	return append(b, byte(KindIdle), v)
}

// AppendEvent appends ev encoded to b.
func AppendEvent(b []byte, ev *Event) []byte {
	switch ev.Kind {
	case KindRecord:
		return AppendRecord(b, ev.Tag, ev.Key, ev.Value, ev.Timestamp)
	case KindWatermark:
		return AppendWatermark(b, ev.Timestamp)
	case KindTimer:
		return AppendTimer(b, ev.Domain, ev.Key, ev.Timestamp)
	case KindBarrier:
		return AppendBarrier(b, ev.ID, ev.Timestamp, ev.Flags)
	case KindEndOfInput:
		return append(b, byte(KindEndOfInput))
	case KindIdle:
		return AppendIdle(b, ev.Idle)
	}
	panic(fmt.Sprintf("abi: cannot encode event kind %v", ev.Kind))
}

// EncodedSize is the encoded size of a record with the given key and value lengths.
func EncodedSize(keyLen, valueLen int) int { return RecordHeaderSize + keyLen + valueLen }

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), 2*cap(b)+n)
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}

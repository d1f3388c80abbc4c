package state

import (
	"encoding/binary"
)

// Key encodings shared by the backends. doc.go describes the Pebble layout
// built from them; the Memory backend uses the same timer encoding as the
// ordering key of its heaps.

// Storage key spaces inside a key group (the byte after the key group).
const (
	spaceState byte = 0x01 // keyed state cells
	spaceTimer byte = 0x02 // timers
)

// metaGroup is the reserved "key group" under which Pebble keeps backend
// metadata; it is >= MaxKeyGroups so it never collides with keyed data, and
// it sorts after every key group, so a key-group range never includes it.
const metaGroup = 0xFFFF

// Metadata keys after metaGroup.
const (
	metaFormat   byte = 0x00 // -> format string
	metaRegistry byte = 0x01 // uvarint(len(operator)), operator, name -> kind u8, id u32
)

// flipTimestamp maps int64 to uint64 preserving order (sign bit flipped), so
// big-endian timestamps sort as numbers, negative ones first.
func flipTimestamp(ts int64) uint64 { return uint64(ts) ^ (1 << 63) }

func unflipTimestamp(u uint64) int64 { return int64(u ^ (1 << 63)) }

// appendStatePrefix appends the storage-key prefix of every cell of
// (id, kg, key): kg u16, spaceState, id u32, uvarint(len(key)), key. The
// length prefix makes the key self-delimiting, so cells of key "a" with sub
// key "bc" and key "ab" with sub key "c" never share a prefix; the sub key
// follows raw, so cells of one key sort by sub key.
func appendStatePrefix(b []byte, id ID, kg int, key []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(kg))
	b = append(b, spaceState)
	b = binary.BigEndian.AppendUint32(b, uint32(id))
	b = binary.AppendUvarint(b, uint64(len(key)))
	return append(b, key...)
}

// timerIDLen is the length of a timer id before its key.
const timerIDLen = 8 + 2

// appendTimerID appends the order key of a timer within one (owner,
// domain): flipped timestamp u64, kg u16, key. Byte order of ids is the
// firing order (timestamp, key group, key). The key needs no length prefix:
// it is last and the fields before it have fixed widths.
func appendTimerID(b []byte, ts int64, kg int, key []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, flipTimestamp(ts))
	b = binary.BigEndian.AppendUint16(b, uint16(kg))
	return append(b, key...)
}

// timerPrefixLen is the length of a Pebble timer key before its timestamp.
const timerPrefixLen = 2 + 1 + 4 + 1

// appendTimerPrefix appends the storage-key prefix of the timers of
// (kg, owner, domain): kg u16, spaceTimer, owner u32, domain u8.
func appendTimerPrefix(b []byte, kg int, owner uint32, d uint8) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(kg))
	b = append(b, spaceTimer)
	b = binary.BigEndian.AppendUint32(b, owner)
	return append(b, d)
}

// appendRegistryKey appends the metadata key of state (operator, name).
func appendRegistryKey(b []byte, operator, name string) []byte {
	b = binary.BigEndian.AppendUint16(b, metaGroup)
	b = append(b, metaRegistry)
	b = binary.AppendUvarint(b, uint64(len(operator)))
	b = append(b, operator...)
	return append(b, name...)
}

// prefixEnd returns the smallest key greater than every key that starts with
// prefix, or nil if there is none (prefix is all 0xFF).
func prefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xFF {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

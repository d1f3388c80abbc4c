package state

import (
	"io"

	"github.com/cockroachdb/pebble/v2"
)

// listMerger concatenates list-state merge operands (each uvarint(len),
// value) oldest first. Pebble's default merger does the same but copies the
// whole result on every older operand (quadratic in the operands read);
// this one collects operands and assembles them once. Its name is stored in
// the store: it must never change for stores that exist.
var listMerger = &pebble.Merger{
	Name: "weir.list.v1",
	Merge: func(_, value []byte) (pebble.ValueMerger, error) {
		m := &listValueMerger{}
		m.add(value, false)
		return m, nil
	},
}

// listValueMerger keeps copies of the operands in one buffer; newer holds
// spans in newest-last order, older in oldest-last order.
type listValueMerger struct {
	buf          []byte
	newer, older []span
}

type span struct{ start, end int }

func (m *listValueMerger) add(v []byte, older bool) {
	s := span{len(m.buf), len(m.buf) + len(v)}
	m.buf = append(m.buf, v...)
	if older {
		m.older = append(m.older, s)
	} else {
		m.newer = append(m.newer, s)
	}
}

func (m *listValueMerger) MergeNewer(value []byte) error { m.add(value, false); return nil }

func (m *listValueMerger) MergeOlder(value []byte) error { m.add(value, true); return nil }

func (m *listValueMerger) Finish(bool) ([]byte, io.Closer, error) {
	if len(m.older) == 0 {
		return m.buf, nil, nil // the newer operands were appended in order
	}
	out := make([]byte, 0, len(m.buf))
	for i := len(m.older) - 1; i >= 0; i-- {
		out = append(out, m.buf[m.older[i].start:m.older[i].end]...)
	}
	for _, s := range m.newer {
		out = append(out, m.buf[s.start:s.end]...)
	}
	return out, nil, nil
}

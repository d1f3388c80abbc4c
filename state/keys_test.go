package state

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"
)

func TestFlipTimestampOrder(t *testing.T) {
	ts := []int64{math.MinInt64, math.MinInt64 + 1, -1 << 40, -2, -1, 0, 1, 2, 1 << 40, math.MaxInt64 - 1, math.MaxInt64}
	for i := 1; i < len(ts); i++ {
		a := appendTimerID(nil, ts[i-1], 0, nil)
		b := appendTimerID(nil, ts[i], 0, nil)
		if bytes.Compare(a, b) >= 0 {
			t.Fatalf("timer id of %d (%x) does not sort before %d (%x)", ts[i-1], a, ts[i], b)
		}
		if got := unflipTimestamp(flipTimestamp(ts[i])); got != ts[i] {
			t.Fatalf("unflip(flip(%d)) = %d", ts[i], got)
		}
	}
}

// TestStatePrefixFree checks the property the layout depends on: the cell
// prefix of one (id, kg, key) is never a prefix of a cell of another, so a
// prefix scan or a point read can never see another key's cells.
func TestStatePrefixFree(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	randKey := func() []byte {
		b := make([]byte, r.IntN(200)) // lengths past 127 use two uvarint bytes
		for i := range b {
			b[i] = byte(r.IntN(3)) // few distinct bytes: many shared prefixes
		}
		return b
	}
	for i := 0; i < 20000; i++ {
		id1, id2 := ID(r.IntN(3)), ID(r.IntN(3))
		kg1, kg2 := r.IntN(3), r.IntN(3)
		k1, k2 := randKey(), randKey()
		if id1 == id2 && kg1 == kg2 && bytes.Equal(k1, k2) {
			continue
		}
		p1 := appendStatePrefix(nil, id1, kg1, k1)
		cell2 := append(appendStatePrefix(nil, id2, kg2, k2), randKey()...)
		if bytes.HasPrefix(cell2, p1) {
			t.Fatalf("prefix of (%d, %d, %x) is a prefix of a cell of (%d, %d, %x)", id1, kg1, k1, id2, kg2, k2)
		}
	}
}

func TestPrefixEnd(t *testing.T) {
	for _, c := range []struct{ in, want []byte }{
		{[]byte{1, 2}, []byte{1, 3}},
		{[]byte{1, 0xFF}, []byte{2}},
		{[]byte{0xFF, 0xFF}, nil},
		{[]byte{}, nil},
	} {
		if got := prefixEnd(c.in); !bytes.Equal(got, c.want) {
			t.Errorf("prefixEnd(%x) = %x, want %x", c.in, got, c.want)
		}
	}
}

// TestListMerger checks operand order whichever way Pebble feeds them.
func TestListMerger(t *testing.T) {
	vm, err := listMerger.Merge(nil, []byte("c"))
	if err != nil {
		t.Fatal(err)
	}
	_ = vm.MergeOlder([]byte("b"))
	_ = vm.MergeNewer([]byte("d"))
	_ = vm.MergeOlder([]byte("a"))
	_ = vm.MergeNewer([]byte("e"))
	got, _, err := vm.Finish(true)
	if err != nil || string(got) != "abcde" {
		t.Fatalf("Finish = %q, %v; want abcde", got, err)
	}
	vm, _ = listMerger.Merge(nil, []byte("x"))
	_ = vm.MergeNewer([]byte("y"))
	if got, _, _ := vm.Finish(true); string(got) != "xy" {
		t.Fatalf("Finish = %q, want xy", got)
	}
}

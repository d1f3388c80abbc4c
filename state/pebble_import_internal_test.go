package state

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSortImportOrder compares the radix sort of import records with a
// comparison sort of the full keys, on keys that share long prefixes,
// differ only after the abbreviation, repeat (arrival order must win) and
// are shorter than the abbreviation.
func TestSortImportOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	var tmp []importOrder
	for round := 0; round < 200; round++ {
		n := 1 + r.IntN(2000)
		keys := make([][]byte, n)
		for i := range keys {
			k := []byte{0, 7, spaceState, 0, 0, 0, byte(r.IntN(3))}
			switch r.IntN(4) {
			case 0: // short
				k = k[:2+r.IntN(6)]
			case 1: // same 16 abbreviated bytes, differs later
				k = append(k, bytes.Repeat([]byte{9}, 12)...)
				k = append(k, byte(r.IntN(4)))
			default:
				k = binary.BigEndian.AppendUint64(k, r.Uint64()>>uint(r.IntN(64)))
			}
			if round%2 == 0 && i > 0 && r.IntN(5) == 0 {
				k = keys[r.IntN(i)] // a repeated key
			}
			keys[i] = k
		}
		order := make([]importOrder, n)
		for i, k := range keys {
			order[i] = importOrder{abbr: abbreviate(k), i: uint32(i)}
		}
		tmp = sortImportOrder(order, tmp, func(x, y importOrder) int {
			return cmp.Or(cmp.Compare(x.abbr[1], y.abbr[1]), bytes.Compare(keys[x.i], keys[y.i]), cmp.Compare(x.i, y.i))
		})
		want := make([]uint32, n)
		for i := range want {
			want[i] = uint32(i)
		}
		slices.SortStableFunc(want, func(a, b uint32) int { return bytes.Compare(keys[a], keys[b]) })
		for i := range want {
			if order[i].i != want[i] {
				t.Fatalf("round %d: position %d holds record %d (%x), want %d (%x)", round, i, order[i].i, keys[order[i].i], want[i], keys[want[i]])
			}
		}
	}
}

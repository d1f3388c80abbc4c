package queries

import (
	"bytes"
	"testing"

	"github.com/weirstream/weir/connectors/nexmark"
)

// checkDecodeBid requires decodeBid and eventType to agree with
// nexmark.Event.DecodeRow and EventType on v: decodeBid takes exactly the
// rows DecodeRow decodes as bids, with the same fields.
func checkDecodeBid(t *testing.T, v []byte) {
	t.Helper()
	var e nexmark.Event
	err := e.DecodeRow(v)
	// DecodeRow converts the type field to a Type (uint8) unchecked, so it
	// takes 0x...0102 for a bid; EventType, and decodeBid, do not.
	t0, terr := nexmark.EventType(v)
	isBid := err == nil && e.Type == nexmark.BidType && terr == nil && t0 == nexmark.BidType
	var b bid
	got := decodeBid(v, &b)
	if got != isBid {
		t.Fatalf("decodeBid(%x) = %v; DecodeRow: %v, type %v", v, got, err, e.Type)
	}
	if got {
		w := e.Bid
		if b.auction != w.Auction || b.bidder != w.Bidder || b.price != w.Price || b.dateTime != w.DateTime || string(b.extra(v)) != w.Extra {
			t.Fatalf("decodeBid(%x) = %+v (extra %q); DecodeRow: %+v", v, b, b.extra(v), w)
		}
	}
	wantType, wantErr := nexmark.EventType(v)
	gotType, gotErr := eventType(v)
	if (gotErr == nil) != (wantErr == nil) || (gotErr == nil && gotType != wantType) {
		t.Fatalf("eventType(%x) = %v, %v; EventType: %v, %v", v, gotType, gotErr, wantType, wantErr)
	}
}

// generatedRows returns the rows of events first..first+n-1.
func generatedRows(t testing.TB, first, n int64) [][]byte {
	g, err := nexmark.NewGenerator(nexmark.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]byte
	for i := first; i < first+n; i++ {
		rows = append(rows, g.AppendRow(nil, i))
	}
	return rows
}

func TestDecodeBid(t *testing.T) {
	rows := generatedRows(t, 0, 20_000)
	bids := 0
	for _, v := range rows {
		checkDecodeBid(t, v)
		if ok := decodeBid(v, new(bid)); ok {
			bids++
		}
	}
	if bids < 18_000 {
		t.Fatalf("%d bids in 20000 events", bids)
	}
	// Every truncation, and every single-byte change of the header bytes
	// (kinds, lengths, type) of a few rows.
	for _, v := range rows[:60] {
		for n := range len(v) {
			checkDecodeBid(t, v[:n])
		}
		checkDecodeBid(t, append(bytes.Clone(v), 0))
		for i := range len(v) {
			for _, x := range []byte{1, 2, 3, 0x80, 0xff} {
				m := bytes.Clone(v)
				m[i] ^= x
				checkDecodeBid(t, m)
			}
		}
	}
	// Rows built by hand: empty strings, long strings.
	for _, e := range []nexmark.Bid{
		{},
		{Auction: -1, Bidder: 1 << 62, Price: -5, DateTime: -1},
		{Channel: string(make([]byte, 70000)), URL: "u", Extra: string(make([]byte, 1000))},
	} {
		checkDecodeBid(t, e.AppendRow(nil))
	}
}

func FuzzDecodeBid(f *testing.F) {
	for _, v := range generatedRows(f, 0, 100) {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v []byte) { checkDecodeBid(t, v) })
}

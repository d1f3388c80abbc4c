package nexmark

import (
	"strings"
	"testing"

	"github.com/weirstream/weir/abi/row"
)

func TestEventRowRoundTrip(t *testing.T) {
	events := []Event{
		{Type: PersonType, Person: Person{ID: 1001, Name: "Peter Jones", EmailAddress: "p@x.com", CreditCard: "1234 5678 9012 3456", City: "Boise", State: "ID", DateTime: 1700000000001, Extra: "pad"}},
		{Type: AuctionType, Auction: Auction{ID: 1002, ItemName: "item", Description: "desc", InitialBid: 5, Reserve: 10, DateTime: 1700000000002, Expires: 1700000009000, Seller: 1001, Category: 10, Extra: ""}},
		{Type: BidType, Bid: Bid{Auction: 1002, Bidder: 1001, Price: 700, Channel: "Google", URL: "https://www.nexmark.com/a", DateTime: 1700000000003, Extra: "x"}},
	}
	for _, want := range events {
		b := want.AppendRow(nil)
		var got Event
		if err := got.DecodeRow(b); err != nil {
			t.Fatalf("%s: %v", want.Type, err)
		}
		if got != want {
			t.Fatalf("%s: round trip\n got %+v\nwant %+v", want.Type, got, want)
		}
		if ty, err := EventType(b); err != nil || ty != want.Type {
			t.Fatalf("EventType = %v, %v", ty, err)
		}
		ts, err := row.IntField(b, TimestampField(want.Type))
		if err != nil || ts != want.Timestamp() {
			t.Fatalf("%s: timestamp field %d = %d, %v; want %d", want.Type, TimestampField(want.Type), ts, err, want.Timestamp())
		}
	}
	bid := events[2].Bid
	if got, want := string(bid.AppendRow(nil)), string(events[2].AppendRow(nil)); got != want {
		t.Fatal("Bid.AppendRow differs from Event.AppendRow")
	}
}

func TestEventRowErrors(t *testing.T) {
	bid := Event{Type: BidType, Bid: Bid{Auction: 1}}
	good := bid.AppendRow(nil)
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "nexmark event: field 0: want int: row: truncated"},
		{"unknown type", row.AppendInt(nil, 7), "nexmark event: unknown type 7"},
		// A type whose low byte is a bid's is still unknown.
		{"wide type", row.AppendInt(nil, 0x3030303030303002), "nexmark event: unknown type 3472328296227680258"},
		{"truncated", good[:len(good)-2], "nexmark bid: field 7"},
		{"trailing bytes", append(good[:len(good):len(good)], 0), "nexmark bid: 1 bytes after the last field"},
		{"person read as bid", row.AppendString(row.AppendInt(nil, 2), "x"), "nexmark bid: row: field 1: want int, got bytes"},
	}
	for _, tc := range tests {
		var e Event
		err := e.DecodeRow(tc.b)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

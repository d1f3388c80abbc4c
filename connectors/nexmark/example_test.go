package nexmark_test

import (
	"fmt"

	"github.com/weirstream/weir/connectors/nexmark"
)

// The reference's stream with its defaults: event 0 is an auction, then
// bids; the first person is event 48 (event id 50).
func ExampleGenerator() {
	g, err := nexmark.NewGenerator(nexmark.DefaultConfig())
	if err != nil {
		panic(err)
	}
	var e nexmark.Event
	for _, n := range []int64{0, 2, 48} {
		g.Event(n, &e)
		switch e.Type {
		case nexmark.PersonType:
			fmt.Printf("%d person %d %q from %s at %d\n", n, e.Person.ID, e.Person.Name, e.Person.City, e.Person.DateTime)
		case nexmark.AuctionType:
			fmt.Printf("%d auction %d by %d, reserve %d, at %d\n", n, e.Auction.ID, e.Auction.Seller, e.Auction.Reserve, e.Auction.DateTime)
		case nexmark.BidType:
			fmt.Printf("%d bid on %d by %d: %d via %s at %d\n", n, e.Bid.Auction, e.Bid.Bidder, e.Bid.Price, e.Bid.Channel, e.Bid.DateTime)
		}
	}
	fmt.Println(string(g.AppendJSON(nil, 2))[:80])
	// Output:
	// 0 auction 1001 by 1000, reserve 28805847, at 1767225600000
	// 2 bid on 1000 by 2001: 32530001 via Google at 1767225600000
	// 48 person 1001 "Sarah Smith" from Los Angeles at 1767225600004
	// {"event_type":2,"person":null,"auction":null,"bid":{"auction":1000,"bidder":2001
}

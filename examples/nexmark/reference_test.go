//go:build !wasip1

package main

// Reference implementations of the queries, written from the reference SQL
// (github.com/nexmark/nexmark, nexmark-flink/src/main/resources/queries)
// without the operators' code: plain Go over all events at once, no
// windows, timers, panes, shards or state. Their outputs are the lines the
// jobs must write (as multisets), in the format README.md documents.

import (
	"fmt"
	"math/big"
	"sort"
	"strings"

	"github.com/weirstream/weir/connectors/nexmark"
)

// csvField quotes s as RFC 4180 does when it holds a comma, a quote or a
// line break.
func csvField(s string) string {
	if strings.ContainsAny(s, ",\"\r\n") {
		return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	return s
}

// reference accumulates what the reference queries need from the events
// (the events themselves would not fit in memory at a million).
type reference struct {
	q0, q1, q2 func(line string) // the stateless queries stream their lines

	persons  []person  // q3, q8
	auctions []auction // q3, q4, q8
	bids     []bid     // q4, q5, q7
}

type person struct {
	id                int64
	name, city, state string
	dateTime          int64
}

type auction struct {
	id, dateTime, expires, seller, category int64
}

type bid struct {
	n                                int64 // the event number
	auction, bidder, price, dateTime int64
}

// add feeds event number n to the references.
func (r *reference) add(n int64, e *nexmark.Event) {
	switch e.Type {
	case nexmark.PersonType:
		p := &e.Person
		r.persons = append(r.persons, person{p.ID, strings.Clone(p.Name), strings.Clone(p.City), strings.Clone(p.State), p.DateTime})
	case nexmark.AuctionType:
		a := &e.Auction
		r.auctions = append(r.auctions, auction{a.ID, a.DateTime, a.Expires, a.Seller, a.Category})
	case nexmark.BidType:
		b := &e.Bid
		// SELECT auction, bidder, price, dateTime, extra FROM bid
		if r.q0 != nil {
			r.q0(fmt.Sprintf("%d,%d,%d,%d,%s", b.Auction, b.Bidder, b.Price, b.DateTime, csvField(b.Extra)))
		}
		// SELECT auction, bidder, 0.908 * price as price, dateTime, extra
		// FROM bid, price as DECIMAL(23, 3)
		if r.q1 != nil {
			eur := new(big.Rat).Mul(big.NewRat(908, 1000), new(big.Rat).SetInt64(b.Price))
			r.q1(fmt.Sprintf("%d,%d,%s,%d,%s", b.Auction, b.Bidder, eur.FloatString(3), b.DateTime, csvField(b.Extra)))
		}
		// SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0
		if r.q2 != nil && b.Auction%123 == 0 {
			r.q2(fmt.Sprintf("%d,%d", b.Auction, b.Price))
		}
		// q7 prints the extra of its bids: it regenerates the few it needs
		// from the event number.
		r.bids = append(r.bids, bid{n, b.Auction, b.Bidder, b.Price, b.DateTime})
	}
}

// q3: SELECT P.name, P.city, P.state, A.id FROM auction AS A INNER JOIN
// person AS P on A.seller = P.id WHERE A.category = 10 and (P.state = 'OR'
// OR P.state = 'ID' OR P.state = 'CA').
func (r *reference) q3() []string {
	bySeller := make(map[int64][]auction)
	for _, a := range r.auctions {
		bySeller[a.seller] = append(bySeller[a.seller], a)
	}
	var out []string
	for _, p := range r.persons {
		if p.state != "OR" && p.state != "ID" && p.state != "CA" {
			continue
		}
		for _, a := range bySeller[p.id] {
			if a.category == 10 {
				out = append(out, fmt.Sprintf("%s,%s,%s,%d", csvField(p.name), csvField(p.city), csvField(p.state), a.id))
			}
		}
	}
	return out
}

// q4: SELECT Q.category, AVG(Q.final) FROM (SELECT MAX(B.price) AS final,
// A.category FROM auction A, bid B WHERE A.id = B.auction AND B.dateTime
// BETWEEN A.dateTime AND A.expires GROUP BY A.id, A.category) Q GROUP BY
// Q.category: the final average per category (BIGINT, truncated).
func (r *reference) q4() map[int64]int64 {
	byID := make(map[int64][]auction)
	for _, a := range r.auctions {
		byID[a.id] = append(byID[a.id], a)
	}
	type group struct{ id, category int64 }
	final := make(map[group]int64)
	for _, b := range r.bids {
		for _, a := range byID[b.auction] {
			if b.dateTime >= a.dateTime && b.dateTime <= a.expires {
				g := group{a.id, a.category}
				if m, ok := final[g]; !ok || b.price > m {
					final[g] = b.price
				}
			}
		}
	}
	sum, count := make(map[int64]int64), make(map[int64]int64)
	for g, f := range final {
		sum[g.category] += f
		count[g.category]++
	}
	avg := make(map[int64]int64)
	for c, s := range sum {
		avg[c] = s / count[c]
	}
	return avg
}

// window is [start, end) in epoch ms.
type window struct{ start, end int64 }

// hop lists the windows of HOP(TABLE bid, DESCRIPTOR(dateTime), INTERVAL
// slide, INTERVAL size) that hold ts: those with start in (ts - size, ts]
// and start a multiple of slide.
func hop(ts, slide, size int64) []window {
	var ws []window
	first := ts - size + 1
	start := first + ((slide-first%slide)%slide+slide)%slide // smallest multiple of slide >= first
	for ; start <= ts; start += slide {
		ws = append(ws, window{start, start + size})
	}
	return ws
}

// q5: per HOP(2 s, 10 s) window, COUNT(*) per auction; then the auctions
// whose count is >= the window's max count: auction,num.
func (r *reference) q5() []string {
	counts := make(map[window]map[int64]int64)
	for _, b := range r.bids {
		for _, w := range hop(b.dateTime, 2000, 10000) {
			if counts[w] == nil {
				counts[w] = make(map[int64]int64)
			}
			counts[w][b.auction]++
		}
	}
	var out []string
	for _, c := range counts {
		var maxn int64
		for _, n := range c {
			maxn = max(maxn, n)
		}
		for a, n := range c {
			if n >= maxn {
				out = append(out, fmt.Sprintf("%d,%d", a, n))
			}
		}
	}
	return out
}

// q7: B1 = SELECT MAX(price) AS maxprice, window_end AS dateTime FROM
// TUMBLE(bid, 10 s) GROUP BY window; then every bid B with B.price =
// B1.maxprice and B.dateTime BETWEEN B1.dateTime - 10 s AND B1.dateTime:
// B.auction, B.price, B.bidder, B.dateTime, B.extra. extra returns the
// extra of event number n (only the matching bids need one).
func (r *reference) q7(extra func(n int64) string) []string {
	maxPrice := make(map[int64]int64) // window end -> max price
	for _, b := range r.bids {
		end := b.dateTime - ((b.dateTime%10000)+10000)%10000 + 10000
		if m, ok := maxPrice[end]; !ok || b.price > m {
			maxPrice[end] = b.price
		}
	}
	ends := make([]int64, 0, len(maxPrice))
	for e := range maxPrice {
		ends = append(ends, e)
	}
	sort.Slice(ends, func(i, j int) bool { return ends[i] < ends[j] })
	var out []string
	for _, e := range ends {
		for _, b := range r.bids {
			if b.price == maxPrice[e] && b.dateTime >= e-10000 && b.dateTime <= e {
				out = append(out, fmt.Sprintf("%d,%d,%d,%d,%s", b.auction, b.price, b.bidder, b.dateTime, csvField(extra(b.n))))
			}
		}
	}
	return out
}

// q8: persons and auction sellers per TUMBLE(10 s) window, each GROUP BY'd
// (distinct), joined on id = seller and the window: id,name,starttime.
func (r *reference) q8() []string {
	type sellerWindow struct{ seller, start int64 }
	sellers := make(map[sellerWindow]bool)
	for _, a := range r.auctions {
		start := a.dateTime - ((a.dateTime%10000)+10000)%10000
		sellers[sellerWindow{a.seller, start}] = true
	}
	type row struct {
		id    int64
		name  string
		start int64
	}
	seen := make(map[row]bool)
	var out []string
	for _, p := range r.persons {
		start := p.dateTime - ((p.dateTime%10000)+10000)%10000
		k := row{p.id, p.name, start}
		if seen[k] || !sellers[sellerWindow{p.id, start}] {
			continue
		}
		seen[k] = true
		out = append(out, fmt.Sprintf("%d,%s,%d", p.id, csvField(p.name), start))
	}
	return out
}

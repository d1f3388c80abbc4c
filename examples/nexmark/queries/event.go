package queries

import (
	"fmt"
	"unsafe"

	"github.com/weirstream/weir/abi/row"
	"github.com/weirstream/weir/connectors/nexmark"
	"github.com/weirstream/weir/sdk"
)

// Reading events on the per-bid path.
//
// nexmark.Event.DecodeRow reads a field per call to row.Reader, whose
// checks are short-circuit conditions: in Go compiled to Wasm each taken
// jump goes through the function's dispatch table, and a bid costs about
// 390 ns to decode (EventType alone 140 ns), where the rest of a
// stateless query costs 60 ns per event. Bids are 92% of the events, so
// the queries read a bid with decodeBid, one straight pass over the row
// layout that Event.AppendRow documents (the fields' kind bytes, fixed
// offsets up to the first string, then three length-prefixed strings),
// about 30 ns; and the type of any event with eventType. Both accept
// exactly the bid rows DecodeRow accepts (or a subset: a row they do not
// take goes to DecodeRow, which decodes it or says what is wrong), which
// FuzzDecodeBid and TestDecodeBid check against DecodeRow.

// Offsets in a bid row: type, auction, bidder and price are int fields of
// 9 bytes (kind 1 and 8 bytes), then channel starts (kind 3, a 4-byte
// length, the bytes).
const (
	bidAuctionAt = 9
	bidBidderAt  = 18
	bidPriceAt   = 27
	bidChannelAt = 36
	bidFixed     = bidChannelAt + 5
	// the shortest bid row: empty strings
	bidMinLen = bidFixed + 5 + 9 + 5
)

// bid is what the queries read of a bid. The extra field is located in
// the row rather than made a string: a struct without pointers is written
// without the garbage collector's write barriers.
type bid struct {
	auction, bidder, price, dateTime int64
	extraAt, extraLen                int
}

// extra returns the bid's extra field from its row v, aliasing v.
func (b *bid) extra(v []byte) []byte { return v[b.extraAt : b.extraAt+b.extraLen] }

// minInt is min(a, b) without a jump (Go compiles min to one in Wasm),
// for |a - b| < 2^63.
func minInt(a, b int) int {
	d := a - b
	return b + d&(d>>63)
}

// decodeBid decodes a bid event row into b and reports whether v was one.
// It is false for the rows of persons and auctions and for malformed rows:
// the caller then asks DecodeRow. The channel and url are checked but not
// returned (no query reads them).
//
// The reads are made safe by clamping each offset into the row instead of
// testing it; one test at the end finds any offset that had to be clamped,
// any wrong kind byte and a row that does not end with the last string.
func decodeBid(v []byte, b *bid) bool {
	n := len(v)
	if n < bidMinLen {
		return false
	}
	// Every read below is in range: the fixed part fits as n >= bidMinLen,
	// and the clamped offsets satisfy bidFixed <= urlAt <= n-5 (a kind
	// byte and a length) and bidFixed <= dateTimeAt <= n-14 (an int and a
	// kind byte and a length).
	p := unsafe.Pointer(unsafe.SliceData(v))
	url := bidFixed + minInt(int(load32(p, bidChannelAt+1)), n) // the url's kind byte
	urlAt := minInt(url, n-5)
	dateTime := urlAt + 5 + minInt(int(load32(p, urlAt+1)), n) // the dateTime's kind byte; extra's is 9 bytes on
	dateTimeAt := minInt(dateTime, n-14)
	extraLen := minInt(int(load32(p, dateTimeAt+10)), n)
	kinds := load64(p, 0)&0xff | load64(p, bidAuctionAt)&0xff<<8 | load64(p, bidBidderAt)&0xff<<16 |
		load64(p, bidPriceAt)&0xff<<24 | load64(p, bidChannelAt)&0xff<<32 | uint64(*(*byte)(unsafe.Add(p, urlAt)))<<40 |
		load64(p, dateTimeAt)&0xff<<48 | load64(p, dateTimeAt+6)>>24&0xff<<56 // the byte at dateTimeAt+9
	const wantKinds = uint64(row.Int) | uint64(row.Int)<<8 | uint64(row.Int)<<16 | uint64(row.Int)<<24 |
		uint64(row.Bytes)<<32 | uint64(row.Bytes)<<40 | uint64(row.Int)<<48 | uint64(row.Bytes)<<56
	// (In Go ^ and | bind alike, left to right: every term is parenthesized.)
	bad := (kinds ^ wantKinds) | (load64(p, 1) ^ uint64(nexmark.BidType)) |
		uint64(url^urlAt) | uint64(dateTime^dateTimeAt) | uint64((dateTimeAt+14+extraLen)^n)
	if bad != 0 {
		return false
	}
	b.auction = int64(load64(p, bidAuctionAt+1))
	b.bidder = int64(load64(p, bidBidderAt+1))
	b.price = int64(load64(p, bidPriceAt+1))
	b.dateTime = int64(load64(p, dateTimeAt+1))
	b.extraAt, b.extraLen = dateTimeAt+14, extraLen // extra ends the row (checked above)
	return true
}

// eventType returns the type of an event row from its first field, as
// nexmark.EventType does, without a row.Reader.
func eventType(v []byte) (nexmark.Type, error) {
	if len(v) >= 9 && v[0] == byte(row.Int) {
		if t := load64(unsafe.Pointer(unsafe.SliceData(v)), 1); t <= uint64(nexmark.BidType) {
			return nexmark.Type(t), nil
		}
	}
	return nexmark.EventType(v) // the error
}

// readBid decodes the bid of record r into b; ok is false when r holds
// another event, which is not decoded (a query that reads only bids does
// not check the other events' fields). Errors name the operator.
func readBid(op string, r *sdk.Record, b *bid) (ok bool, err error) {
	if decodeBid(r.Value, b) {
		return true, nil
	}
	t, err := eventType(r.Value)
	if err != nil {
		return false, fmt.Errorf("%s: %w", op, err)
	}
	if t != nexmark.BidType {
		return false, nil
	}
	// A bid row decodeBid did not take is malformed: DecodeRow says how.
	var e nexmark.Event
	if err := e.DecodeRow(r.Value); err != nil {
		return false, fmt.Errorf("%s: %w", op, err)
	}
	return false, fmt.Errorf("%s: bid row %x decodes with DecodeRow but not decodeBid", op, r.Value) // not reached: see FuzzDecodeBid
}

// readInts reads the int fields of v, a row of exactly len(dst) of them
// (the intermediate rows between a query's stages), into dst, and reports
// whether it was one. It is row.Reader's Int without a call and a jump
// per field.
func readInts(v []byte, dst []int64) bool {
	if len(v) != 9*len(dst) {
		return false
	}
	p := unsafe.Pointer(unsafe.SliceData(v))
	var bad uint64
	for i := range dst {
		bad |= uint64(*(*byte)(unsafe.Add(p, 9*i)) ^ byte(row.Int))
		dst[i] = int64(load64(p, 9*i+1))
	}
	return bad == 0
}

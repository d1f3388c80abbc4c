package queries

import (
	"fmt"
	"time"
	"unsafe"

	"github.com/weirstream/weir/abi/row"
	"github.com/weirstream/weir/connectors/nexmark"
	"github.com/weirstream/weir/sdk"
	"github.com/weirstream/weir/sdk/codec"
)

// Operator names of q4.
const (
	Q4Prep = "q4-prep"
	Q4Max  = "q4-max"
	Q4Avg  = "q4-avg"
)

// q4Prep keeps auctions and bids, keyed by auction id. Values:
//
//	auction  row(int 1 = AuctionType, int dateTime, int expires, int category)
//	bid      row(int 2 = BidType, int price, int dateTime)
type q4Prep struct {
	b   bid
	e   nexmark.Event
	key [8]byte
	out []byte
}

func (q *q4Prep) Process(ctx *sdk.Context, r sdk.Record) error {
	if b := &q.b; decodeBid(r.Value, b) {
		o := row.AppendInt(q.out[:0], int64(nexmark.BidType))
		o = row.AppendInt(o, b.price)
		q.out = row.AppendInt(o, b.dateTime)
		ctx.Emit(int64Key(&q.key, b.auction), q.out)
		return nil
	}
	if err := decodeEvent(Q4Prep, &q.e, &r); err != nil {
		return err
	}
	switch q.e.Type {
	case nexmark.BidType: // not reached: decodeBid takes every bid
		return fmt.Errorf("%s: a bid row the fast decoder did not take", Q4Prep)
	case nexmark.AuctionType:
		a := &q.e.Auction
		o := row.AppendInt(q.out[:0], int64(nexmark.AuctionType))
		o = row.AppendInt(o, a.DateTime)
		o = row.AppendInt(o, a.Expires)
		q.out = row.AppendInt(o, a.Category)
		ctx.Emit(int64Key(&q.key, a.ID), q.out)
	}
	return nil
}

// auctionState is what q4-max keeps of an auction: the join's side of the
// auction and the group's MAX so far.
type auctionState struct {
	DateTime, Expires, Category int64
	Max                         int64 // valid when HasMax
	HasMax                      bool  // some bid qualified
}

// auctionStateSize is the size of an encoded auctionState: the four
// numbers as 8 bytes little endian, then HasMax as a byte. It is encoded
// by hand rather than with codec.Struct, whose calls through the Codec
// interface and the Reader cost several hundred ns per bid in Wasm.
const auctionStateSize = 33

func (a *auctionState) encode(b *[auctionStateSize]byte) []byte {
	p := unsafe.Pointer(b)
	store64(p, 0, uint64(a.DateTime))
	store64(p, 8, uint64(a.Expires))
	store64(p, 16, uint64(a.Category))
	store64(p, 24, uint64(a.Max))
	b[32] = 0
	if a.HasMax {
		b[32] = 1
	}
	return b[:]
}

func (a *auctionState) decode(v []byte) error {
	if len(v) != auctionStateSize || v[32] > 1 {
		return fmt.Errorf("%s: auction state of %d bytes, want %d", Q4Max, len(v), auctionStateSize)
	}
	p := unsafe.Pointer(unsafe.SliceData(v))
	a.DateTime, a.Expires, a.Category, a.Max = int64(load64(p, 0)), int64(load64(p, 8)), int64(load64(p, 16)), int64(load64(p, 24))
	a.HasMax = v[32] == 1
	return nil
}

// earlyBid is a bid that arrived before its auction.
type earlyBid struct{ Price, DateTime int64 }

var earlyBidCodec = codec.Struct(
	func(w *codec.Writer, b earlyBid) { w.Int64(b.Price); w.Int64(b.DateTime) },
	func(r *codec.Reader) earlyBid { return earlyBid{Price: r.Int64(), DateTime: r.Int64()} },
)

// q4Config is the config of q4-max.
type q4Config struct {
	// Retention is how long (event time) an auction's state is kept after
	// it expires. It only saves work: a bid that finds no auction is kept
	// as an early bid until the watermark passes its dateTime, which gives
	// the same result. Default 60s.
	Retention string `json:"retention"`
}

// q4Max is the join of auctions and bids on A.id = B.auction with
// B.dateTime BETWEEN A.dateTime AND A.expires, grouped by auction:
// MAX(B.price) per auction. Keyed by auction id. Whenever an auction's max
// changes it emits an update for q4-avg, keyed by category:
//
//	row(int old max or null when the auction had none, int new max)
//
// Bids may arrive before their auction (the generator bids on auctions up
// to 10 ids ahead, and at parallelism > 1 subtasks interleave): as in
// Flink's regular join they still count. They are kept in "early" with an
// event-time timer at their dateTime, and dropped when it fires: an auction
// that has not arrived by then has dateTime > watermark >= the bid's
// dateTime (the source never emits records behind the watermark), so the
// bid could not qualify. An auction's state is deleted by a timer at
// expires + retention; no later bid can qualify either.
type q4Max struct {
	auction   *sdk.ValueState[[]byte] // an encoded auctionState
	abuf      [auctionStateSize]byte
	ints      [4]int64
	early     *sdk.ListState[earlyBid]
	retention int64 // ms
	key       [8]byte
	out       []byte
	kept      []earlyBid
	collect   func(earlyBid) error // appends to kept; made once
}

func (q *q4Max) Open(ctx *sdk.Context) (err error) {
	cfg := q4Config{Retention: "60s"}
	if err := ctx.ConfigJSON(&cfg); err != nil {
		return err
	}
	d, err := time.ParseDuration(cfg.Retention)
	if err != nil || d < 0 {
		return fmt.Errorf("%s: config.retention: want a duration >= 0, got %q", Q4Max, cfg.Retention)
	}
	q.retention = d.Milliseconds()
	if q.auction, err = sdk.NewValueState(ctx, "auction", view); err != nil {
		return err
	}
	if q.early, err = sdk.NewListState(ctx, "early", earlyBidCodec); err != nil {
		return err
	}
	q.collect = func(b earlyBid) error {
		q.kept = append(q.kept, b)
		return nil
	}
	return nil
}

func (q *q4Max) Process(ctx *sdk.Context, r sdk.Record) error {
	v := q.ints[:]
	switch {
	case readInts(r.Value, v[:3]) && v[0] == int64(nexmark.BidType):
		b := earlyBid{Price: v[1], DateTime: v[2]}
		a, ok, err := q.getAuction()
		if err != nil {
			return err
		}
		if !ok {
			if err := q.early.Append(b); err != nil {
				return err
			}
			return ctx.RegisterEventTimeTimer(b.DateTime)
		}
		if b.DateTime < a.DateTime || b.DateTime > a.Expires || (a.HasMax && b.Price <= a.Max) {
			return nil
		}
		return q.update(ctx, a, b.Price)
	case readInts(r.Value, v[:4]) && v[0] == int64(nexmark.AuctionType):
		a := auctionState{DateTime: v[1], Expires: v[2], Category: v[3]}
		q.kept = q.kept[:0]
		if err := q.early.Range(q.collect); err != nil {
			return err
		}
		var max int64
		found := false
		for _, b := range q.kept {
			if b.DateTime >= a.DateTime && b.DateTime <= a.Expires && (!found || b.Price > max) {
				max, found = b.Price, true
			}
		}
		if len(q.kept) > 0 {
			if err := q.early.Clear(); err != nil {
				return err
			}
		}
		if err := ctx.RegisterEventTimeTimer(q.cleanupTime(a)); err != nil {
			return err
		}
		if !found {
			return q.auction.Set(a.encode(&q.abuf))
		}
		return q.update(ctx, a, max)
	default:
		return fmt.Errorf("%s: %x is neither a bid (type, price, dateTime) nor an auction (type, dateTime, expires, category) row", Q4Max, r.Value)
	}
}

// getAuction reads the current key's auction.
func (q *q4Max) getAuction() (a auctionState, ok bool, err error) {
	v, ok, err := q.auction.Get()
	if err != nil || !ok {
		return a, false, err
	}
	return a, true, a.decode(v)
}

func (q *q4Max) cleanupTime(a auctionState) int64 {
	if t := a.Expires + q.retention; t >= a.Expires {
		return t
	}
	return sdk.MaxWatermark // overflow
}

// update stores max as the auction's new MAX and emits the change.
func (q *q4Max) update(ctx *sdk.Context, a auctionState, max int64) error {
	o := q.out[:0]
	if a.HasMax {
		o = row.AppendInt(o, a.Max)
	} else {
		o = row.AppendNull(o)
	}
	q.out = row.AppendInt(o, max)
	a.Max, a.HasMax = max, true
	if err := q.auction.Set(a.encode(&q.abuf)); err != nil {
		return err
	}
	ctx.Emit(int64Key(&q.key, a.Category), q.out)
	return nil
}

// OnTimer drops the early bids the watermark has passed and deletes an
// auction whose retention is over. One timer may serve both.
func (q *q4Max) OnTimer(ctx *sdk.Context, t sdk.Timer) error {
	q.kept = q.kept[:0]
	if err := q.early.Range(q.collect); err != nil {
		return err
	}
	if len(q.kept) > 0 {
		n := 0
		for _, b := range q.kept {
			if b.DateTime > t.Timestamp {
				q.kept[n] = b
				n++
			}
		}
		if n < len(q.kept) {
			if err := q.early.Update(q.kept[:n]); err != nil {
				return err
			}
		}
	}
	a, ok, err := q.getAuction()
	if err != nil || !ok {
		return err
	}
	if t.Timestamp >= q.cleanupTime(a) {
		return q.auction.Clear()
	}
	return nil
}

// sumCount is q4-avg's accumulator of a category.
type sumCount struct{ Sum, Count int64 }

var sumCountCodec = codec.Struct(
	func(w *codec.Writer, s sumCount) { w.Int64(s.Sum); w.Int64(s.Count) },
	func(r *codec.Reader) sumCount { return sumCount{Sum: r.Int64(), Count: r.Int64()} },
)

// q4Avg is AVG(final) GROUP BY category over q4-max's changelog, keyed by
// category: an update (old, new) replaces old by new in the category's sum,
// or adds new when old is null. Every update emits the category's new
// average, category,avg, an upsert changelog whose last line per category
// is the answer. AVG of a BIGINT is a BIGINT, the sum divided by the count
// truncated toward zero, as in Flink.
type q4Avg struct {
	acc *sdk.ValueState[sumCount]
	r   row.Reader
	out []byte
}

func (q *q4Avg) Open(ctx *sdk.Context) (err error) {
	q.acc, err = sdk.NewValueState(ctx, "sum-count", sumCountCodec)
	return err
}

func (q *q4Avg) Process(ctx *sdk.Context, r sdk.Record) error {
	category, ok := keyInt64(r.Key)
	if !ok {
		return fmt.Errorf("%s: key of %d bytes, want 8 (the category)", Q4Avg, len(r.Key))
	}
	q.r.Reset(r.Value)
	var old int64
	hadOld := !q.r.IsNull()
	if hadOld {
		old = q.r.Int()
	}
	max := q.r.Int()
	if err := q.r.Err(); err != nil {
		return fmt.Errorf("%s: update: %w", Q4Avg, err)
	}
	acc, _, err := q.acc.Get()
	if err != nil {
		return err
	}
	if hadOld {
		if acc.Count == 0 {
			return fmt.Errorf("%s: category %d: an update replaces max %d, but the category has no auction", Q4Avg, category, old)
		}
		acc.Sum += max - old
	} else {
		acc.Sum += max
		acc.Count++
	}
	if err := q.acc.Set(acc); err != nil {
		return err
	}
	o := appendInt(q.out[:0], category)
	o = append(o, ',')
	q.out = appendInt(o, acc.Sum/acc.Count)
	ctx.Emit(r.Key, q.out)
	return nil
}

func init() {
	sdk.Export(Q4Prep, func() sdk.Operator { return &q4Prep{} })
	sdk.Export(Q4Max, func() sdk.Operator { return &q4Max{} }, sdk.Keyed())
	sdk.Export(Q4Avg, func() sdk.Operator { return &q4Avg{} }, sdk.Keyed())
}

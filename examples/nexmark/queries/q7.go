package queries

import (
	"fmt"
	"unsafe"

	"github.com/weirstream/weir/abi/row"
	"github.com/weirstream/weir/sdk"
	"github.com/weirstream/weir/sdk/codec"
)

// Operator names of q7.
const (
	Q7Prep  = "q7-prep"
	Q7Local = "q7-local"
	Q7Final = "q7-final"
)

// q7Window is the length of q7's tumbling windows (TUMBLE(..., INTERVAL '10'
// SECOND)); windows start at multiples of it since the epoch.
const q7Window = 10_000 // ms

// q7 joins every bid B with the maximum price of the window B1 that ends at
// window_end when B.price = B1.maxprice and B.dateTime BETWEEN window_end -
// 10 s AND window_end. Both ends are inclusive, so the bids of a window
// match it and so do the bids at exactly window_end, which belong to the
// next window: such a bid can match two windows, and is then emitted
// twice, as the reference does.
//
// It runs in three stages. q7-prep keys each bid by (window end, shard),
// once for its own window and, when its time is exactly a window start,
// again for the window that ends there (a "boundary" bid, which matches
// that window but does not count in its max). q7-local, keyed by (window
// end, shard), keeps the window's max price over its shard and the
// candidates (bids at that price, and boundary bids at or above it), and
// forwards the candidates when the window closes; q7-final, keyed by window
// end, does the same over the candidates of every shard and emits the bids
// at the window's max. The shards spread a window's bids, which would
// otherwise all go to one subtask, over the parallel instances; the local
// stage reads one state value per bid and forwards a few bids per shard
// and window.
//
// Rows between the stages (the prep's value, the candidates):
//
//	row(int price, int dateTime, int auction, int bidder, bytes extra)
//
// keyed by the window end (8 bytes, big endian), followed by the shard (one
// byte) out of q7-prep.

// q7Config is the config of q7-prep.
type q7Config struct {
	// Shards is the number of keys a window's bids are spread over, 1 to
	// 256 (default 32).
	Shards int `json:"shards"`
}

// q7Prep keys the bids for q7-local.
type q7Prep struct {
	b      bid
	shards uint64
	key    [9]byte
	out    []byte
}

func (q *q7Prep) Open(ctx *sdk.Context) error {
	cfg := q7Config{Shards: 32}
	if err := ctx.ConfigJSON(&cfg); err != nil {
		return err
	}
	if cfg.Shards < 1 || cfg.Shards > 256 {
		return fmt.Errorf("%s: config.shards: want 1 to 256, got %d", Q7Prep, cfg.Shards)
	}
	q.shards = uint64(cfg.Shards)
	return nil
}

func (q *q7Prep) Process(ctx *sdk.Context, r sdk.Record) error {
	b := &q.b
	ok, err := readBid(Q7Prep, &r, b)
	if !ok {
		return err
	}
	if r.Timestamp != b.dateTime {
		return fmt.Errorf("%s: record timestamp %d is not the bid's dateTime %d: q7 needs the source to use dateTime as event time", Q7Prep, r.Timestamp, b.dateTime)
	}
	o := row.AppendInt(q.out[:0], b.price)
	o = row.AppendInt(o, b.dateTime)
	o = row.AppendInt(o, b.auction)
	o = row.AppendInt(o, b.bidder)
	q.out = row.AppendBytes(o, b.extra(r.Value))
	// Any spread will do; this one does not follow the hot auction and
	// bidder, which take half of the bids.
	h := uint64(b.price) ^ uint64(b.dateTime)<<21 ^ uint64(b.bidder)<<42
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	q.key[8] = byte(h % q.shards)
	start := floorDiv(b.dateTime, q7Window)
	int64Key((*[8]byte)(q.key[:8]), start+q7Window)
	ctx.Emit(q.key[:], q.out)
	if b.dateTime == start {
		int64Key((*[8]byte)(q.key[:8]), start) // the window ending here
		ctx.Emit(q.key[:], q.out)
	}
	return nil
}

// q7Max is q7-local (final false) and q7-final (final true).
//
// State of a key: "max", the largest price of the window's own bids so far
// (absent until the first); "candidates", the rows of the window's own bids
// at that price and of the boundary bids at or above it (the others cannot
// match: the window's max only grows). A timer at the window end (fired
// when the watermark reaches it, so that the boundary bids at exactly the
// end have arrived) forwards the candidates (local) or emits the bids at
// the max (final) and clears the key. The rows of candidates are kept
// whole, so a window keeps as many as tie at its max.
type q7Max struct {
	final bool
	name  string
	max   *sdk.ValueState[int64]
	cands *sdk.ListState[[]byte]
	r     row.Reader
	key   [8]byte
	out   []byte

	// state of a Range over the candidates
	ctx     *sdk.Context
	m       int64                // the max
	end     int64                // the window end
	keep    []byte               // rows kept when the max rises, as a row of bytes fields
	onCand  func(b []byte) error // the timer's callback
	onPrune func(b []byte) error // the rising max's callback
}

func (q *q7Max) Open(ctx *sdk.Context) (err error) {
	if q.max, err = sdk.NewValueState(ctx, "max", codec.Int64); err != nil {
		return err
	}
	if q.cands, err = sdk.NewListState(ctx, "candidates", view); err != nil {
		return err
	}
	q.ctx = ctx
	q.onCand = q.candidate
	q.onPrune = q.prune
	return nil
}

// head reads the price and dateTime of a candidate row (its first two
// fields), without row.Reader's call per field.
func (q *q7Max) head(v []byte) (price, dateTime int64, err error) {
	if len(v) < 18 || v[0] != byte(row.Int) || v[9] != byte(row.Int) {
		return 0, 0, fmt.Errorf("%s: %x is not a bid row (price, dateTime, ...)", q.name, v)
	}
	p := unsafe.Pointer(unsafe.SliceData(v))
	return int64(load64(p, 1)), int64(load64(p, 10)), nil
}

func (q *q7Max) Process(ctx *sdk.Context, r sdk.Record) error {
	end, ok := keyInt64(r.Key)
	if !ok {
		return fmt.Errorf("%s: key of %d bytes, want 8 or more (the window end)", q.name, len(r.Key))
	}
	price, dateTime, err := q.head(r.Value)
	if err != nil {
		return err
	}
	if dateTime < end-q7Window || dateTime > end {
		return fmt.Errorf("%s: bid at %d keyed for the window ending at %d", q.name, dateTime, end)
	}
	if end <= ctx.Watermark() {
		// The window has fired already (late data, which the nexmark
		// source never produces).
		ctx.EmitLate(r.Key, r.Value)
		return nil
	}
	m, ok, err := q.max.Get()
	if err != nil {
		return err
	}
	if !ok {
		if err := ctx.RegisterEventTimeTimer(end); err != nil {
			return err
		}
	}
	if dateTime == end { // a boundary bid
		if ok && price < m {
			return nil
		}
		return q.cands.Append(r.Value)
	}
	if ok && price < m {
		return nil
	}
	if !ok || price > m {
		if err := q.raise(price, end); err != nil {
			return err
		}
	}
	return q.cands.Append(r.Value)
}

// raise makes price the max and drops the candidates below it: every own
// bid, and the boundary bids below price.
func (q *q7Max) raise(price, end int64) error {
	if err := q.max.Set(price); err != nil {
		return err
	}
	q.m, q.end, q.keep = price, end, q.keep[:0]
	if err := q.cands.Range(q.onPrune); err != nil {
		return err
	}
	if err := q.cands.Clear(); err != nil {
		return err
	}
	q.r.Reset(q.keep)
	for {
		if _, more := q.r.Next(); !more {
			break
		}
		if err := q.cands.Append(q.r.Bytes()); err != nil {
			return err
		}
	}
	return q.r.Err()
}

func (q *q7Max) prune(b []byte) error {
	price, dateTime, err := q.head(b)
	if err != nil {
		return err
	}
	if dateTime == q.end && price >= q.m {
		q.keep = row.AppendBytes(q.keep, b)
	}
	return nil
}

// OnTimer closes the window ending at t.
func (q *q7Max) OnTimer(ctx *sdk.Context, t sdk.Timer) error {
	m, ok, err := q.max.Get()
	if err != nil {
		return err
	}
	if ok || !q.final {
		q.m, q.end = m, t.Timestamp
		if err := q.cands.Range(q.onCand); err != nil {
			return err
		}
	}
	if err := q.cands.Clear(); err != nil {
		return err
	}
	return q.max.Clear()
}

func (q *q7Max) candidate(b []byte) error {
	if !q.final {
		q.ctx.Emit(int64Key(&q.key, q.end), b)
		return nil
	}
	q.r.Reset(b)
	price, dateTime, auction, bidder, extra := q.r.Int(), q.r.Int(), q.r.Int(), q.r.Int(), q.r.String()
	if err := q.r.Err(); err != nil {
		return fmt.Errorf("%s: bid: %w", q.name, err)
	}
	if price != q.m {
		return nil
	}
	// The reference's SELECT order: B.auction, B.price, B.bidder,
	// B.dateTime, B.extra.
	o := appendInt(q.out[:0], auction)
	o = append(o, ',')
	o = appendInt(o, price)
	o = append(o, ',')
	o = appendInt(o, bidder)
	o = append(o, ',')
	o = appendInt(o, dateTime)
	o = append(o, ',')
	q.out = appendTextString(o, extra)
	q.ctx.Emit(nil, q.out)
	return nil
}

func init() {
	sdk.Export(Q7Prep, func() sdk.Operator { return &q7Prep{} })
	sdk.Export(Q7Local, func() sdk.Operator { return &q7Max{name: Q7Local} }, sdk.Keyed())
	sdk.Export(Q7Final, func() sdk.Operator { return &q7Max{name: Q7Final, final: true} }, sdk.Keyed())
}

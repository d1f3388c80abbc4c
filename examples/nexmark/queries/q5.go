package queries

import (
	"errors"
	"fmt"

	"github.com/weirstream/weir/abi/row"
	"github.com/weirstream/weir/sdk"
	"github.com/weirstream/weir/sdk/codec"
)

// Operator names of q5.
const (
	Q5Prep  = "q5-prep"
	Q5Count = "q5-count"
	Q5Max   = "q5-max"
)

// q5's hopping windows: 10 s long, one starting every 2 s (HOP(..., INTERVAL
// '2' SECOND, INTERVAL '10' SECOND)); windows start at multiples of the
// slide since the epoch.
const (
	q5Size  = 10_000 // ms
	q5Slide = 2_000  // ms
)

var errNoTimestamp = errors.New("record without timestamp (windows need the source to assign event time)")

// q5 counts the bids per auction and window (COUNT(*) GROUP BY auction,
// window_start, window_end), then keeps per window the auctions whose count
// is the window's largest (num >= maxn). A bid belongs to five windows;
// rather than counting it five times, q5 counts it once in its pane (the
// 2 s slide it falls in), as Flink's window slicing does, and a window's
// count per auction is the sum of its five panes':
//
//   - q5-prep keys each bid by (auction, pane start), 16 bytes, with an
//     empty value;
//   - q5-count, keyed by (auction, pane), counts the pane's bids in a
//     ValueState[int64] (the SDK's fastest state: one state read and one
//     write per bid) and, when the watermark passes the pane, sends the
//     count to each of the pane's five windows that have not fired, keyed
//     by the window's end: row(int auction, int count);
//   - q5-max, keyed by window end, appends the pane counts to a list and,
//     when the watermark passes the window (after every q5-count subtask
//     has sent its panes: they emit before they forward the watermark),
//     sums them per auction and emits the auctions at the largest sum as
//     auction,num.
//
// The keys spread over the parallel instances: (auction, pane) by auction,
// and windows, one every 2 s, each to one instance.

// q5Prep keys the bids for q5-count.
type q5Prep struct {
	b   bid
	key [16]byte
}

func (q *q5Prep) Process(ctx *sdk.Context, r sdk.Record) error {
	b := &q.b
	ok, err := readBid(Q5Prep, &r, b)
	if !ok {
		return err
	}
	if r.Timestamp == sdk.NoTimestamp {
		return fmt.Errorf("%s: %w", Q5Prep, errNoTimestamp)
	}
	int64Key((*[8]byte)(q.key[:8]), b.auction)
	int64Key((*[8]byte)(q.key[8:]), floorDiv(r.Timestamp, q5Slide))
	ctx.Emit(q.key[:], nil)
	return nil
}

// q5Count counts the bids of an (auction, pane) key. State: "count". A
// timer at the pane's max timestamp sends the count to the pane's five
// windows and clears the key; it fires when the watermark first passes
// the pane, before q5-count forwards that watermark, so none of the
// windows has fired downstream. Late bids (behind the watermark, which the
// nexmark source never sends) count as in Flink, in the windows that have
// not fired: a bid whose windows have all fired goes to the late side
// output, and one whose pane has passed but some of whose windows have not
// is sent to those windows at once, as a count of one.
type q5Count struct {
	count *sdk.ValueState[int64]
	key   [8]byte
	out   []byte
}

func (q *q5Count) Open(ctx *sdk.Context) (err error) {
	q.count, err = sdk.NewValueState(ctx, "count", codec.Int64)
	return err
}

// paneKey reads a q5-count key.
func paneKey(k []byte) (auction, pane int64, err error) {
	if len(k) != 16 {
		return 0, 0, fmt.Errorf("%s: key of %d bytes, want 16 (auction and pane)", Q5Count, len(k))
	}
	auction, _ = keyInt64(k)
	pane, _ = keyInt64(k[8:])
	return auction, pane, nil
}

func (q *q5Count) Process(ctx *sdk.Context, r sdk.Record) error {
	auction, pane, err := paneKey(r.Key)
	if err != nil {
		return err
	}
	switch wm := ctx.Watermark(); {
	case pane+q5Size-1 <= wm: // every window of the pane has fired
		ctx.EmitLate(r.Key, r.Value)
		return nil
	case pane+q5Slide-1 <= wm: // the pane has passed: the windows left, now
		q.send(ctx, auction, 1, pane, wm)
		return nil
	}
	n, ok, err := q.count.Get()
	if err != nil {
		return err
	}
	if err := q.count.Set(n + 1); err != nil {
		return err
	}
	if ok {
		return nil
	}
	return ctx.RegisterEventTimeTimer(pane + q5Slide - 1)
}

// OnTimer sends the pane's count to its windows.
func (q *q5Count) OnTimer(ctx *sdk.Context, t sdk.Timer) error {
	auction, pane, err := paneKey(t.Key)
	if err != nil {
		return err
	}
	n, ok, err := q.count.Get()
	if err != nil || !ok {
		return err
	}
	if err := q.count.Clear(); err != nil {
		return err
	}
	q.send(ctx, auction, n, pane, sdk.MinWatermark)
	return nil
}

// send emits n bids of auction in pane to the pane's windows whose max
// timestamp is after wm, keyed by window end, at that max timestamp.
func (q *q5Count) send(ctx *sdk.Context, auction, n, pane, wm int64) {
	o := row.AppendInt(q.out[:0], auction)
	q.out = row.AppendInt(o, n)
	for end := pane + q5Slide; end <= pane+q5Size; end += q5Slide {
		if end-1 > wm {
			ctx.EmitWithTimestamp(int64Key(&q.key, end), q.out, end-1)
		}
	}
}

// paneCount is an entry of q5-max's list.
type paneCount struct{ Auction, Count int64 }

var paneCountCodec = codec.Struct(
	func(w *codec.Writer, c paneCount) { w.Int64(c.Auction); w.Int64(c.Count) },
	func(r *codec.Reader) paneCount { return paneCount{Auction: r.Int64(), Count: r.Int64()} },
)

// q5Max is the rest of q5, keyed by window end. State: "counts", the pane
// counts of the window. A timer at the window's max timestamp sums them
// per auction (in a map that lives for the call only), emits the auctions
// at the largest sum and clears the key.
type q5Max struct {
	counts *sdk.ListState[paneCount]
	r      row.Reader
	out    []byte
	sums   map[int64]int64 // scratch of OnTimer
	add    func(c paneCount) error
}

func (q *q5Max) Open(ctx *sdk.Context) (err error) {
	q.counts, err = sdk.NewListState(ctx, "counts", paneCountCodec)
	q.sums = make(map[int64]int64)
	q.add = func(c paneCount) error {
		q.sums[c.Auction] += c.Count
		return nil
	}
	return err
}

func (q *q5Max) Process(ctx *sdk.Context, r sdk.Record) error {
	end, ok := keyInt64(r.Key)
	if !ok {
		return fmt.Errorf("%s: key of %d bytes, want 8 (the window end)", Q5Max, len(r.Key))
	}
	q.r.Reset(r.Value)
	c := paneCount{Auction: q.r.Int(), Count: q.r.Int()}
	if err := q.r.Err(); err != nil {
		return fmt.Errorf("%s: count: %w", Q5Max, err)
	}
	if err := q.counts.Append(c); err != nil {
		return err
	}
	// Registering again is a no-op; cheaper than reading a flag.
	return ctx.RegisterEventTimeTimer(end - 1)
}

func (q *q5Max) OnTimer(ctx *sdk.Context, t sdk.Timer) error {
	clear(q.sums)
	if err := q.counts.Range(q.add); err != nil {
		return err
	}
	var max int64
	for _, n := range q.sums {
		max = maxInt64(max, n)
	}
	for auction, n := range q.sums {
		if n == max {
			o := appendInt(q.out[:0], auction)
			o = append(o, ',')
			q.out = appendInt(o, n)
			ctx.Emit(nil, q.out)
		}
	}
	return q.counts.Clear()
}

func maxInt64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

func init() {
	sdk.Export(Q5Prep, func() sdk.Operator { return &q5Prep{} })
	sdk.Export(Q5Count, func() sdk.Operator { return &q5Count{} }, sdk.Keyed())
	sdk.Export(Q5Max, func() sdk.Operator { return &q5Max{} }, sdk.Keyed())
}

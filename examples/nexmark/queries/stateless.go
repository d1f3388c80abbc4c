package queries

import (
	"fmt"

	"github.com/weirstream/weir/connectors/nexmark"
	"github.com/weirstream/weir/sdk"
)

// Operator names of the stateless queries.
const (
	Q0 = "q0"
	Q1 = "q1"
	Q2 = "q2"
)

// decodeEvent decodes the row of r into e, with an error naming the
// operator.
func decodeEvent(op string, e *nexmark.Event, r *sdk.Record) error {
	if err := e.DecodeRow(r.Value); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// q0 passes bids through: auction,bidder,price,dateTime,extra.
type q0 struct {
	b   bid
	out []byte
}

func (q *q0) Process(ctx *sdk.Context, r sdk.Record) error {
	b := &q.b
	ok, err := readBid(Q0, &r, b)
	if !ok {
		return err
	}
	o := appendInts(q.out[:0], noPoint, b.auction, b.bidder, b.price, b.dateTime)
	o = appendText(o, b.extra(r.Value))
	q.out = o
	ctx.Emit(nil, o)
	return nil
}

// q1 converts bid prices to euros: auction,bidder,price,dateTime,extra with
// price = 0.908 * price as DECIMAL(23, 3), computed exactly in integers
// (price * 908 thousandths).
type q1 struct {
	b   bid
	out []byte
}

func (q *q1) Process(ctx *sdk.Context, r sdk.Record) error {
	b := &q.b
	ok, err := readBid(Q1, &r, b)
	if !ok {
		return err
	}
	o := appendInts(q.out[:0], 2, b.auction, b.bidder, b.price*908, b.dateTime)
	o = appendText(o, b.extra(r.Value))
	q.out = o
	ctx.Emit(nil, o)
	return nil
}

// q2 selects the bids on every 123rd auction: auction,price.
type q2 struct {
	b   bid
	out []byte
}

func (q *q2) Process(ctx *sdk.Context, r sdk.Record) error {
	b := &q.b
	ok, err := readBid(Q2, &r, b)
	if !ok || b.auction%123 != 0 {
		return err
	}
	o := appendInt(q.out[:0], b.auction)
	o = append(o, ',')
	o = appendInt(o, b.price)
	q.out = o
	ctx.Emit(nil, o)
	return nil
}

func init() {
	sdk.Export(Q0, func() sdk.Operator { return &q0{out: make([]byte, 0, 256)} })
	sdk.Export(Q1, func() sdk.Operator { return &q1{out: make([]byte, 0, 256)} })
	sdk.Export(Q2, func() sdk.Operator { return &q2{out: make([]byte, 0, 64)} })
}

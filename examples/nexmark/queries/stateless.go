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

// bidProjection is q0 and q1: every bid as auction,bidder,price,dateTime,
// extra. q0 passes bids through (scale 1, no decimal point); q1 converts
// prices to euros, 0.908 * price as DECIMAL(23, 3), exactly in integers
// (price * 908 thousandths: scale 908, the point in the third int).
type bidProjection struct {
	op    string
	scale int64
	point int // appendInts' point argument
	b     bid
	out   []byte
}

func (q *bidProjection) Process(ctx *sdk.Context, r sdk.Record) error {
	b := &q.b
	ok, err := readBid(q.op, &r, b)
	if !ok {
		return err
	}
	o := appendInts(q.out[:0], q.point, b.auction, b.bidder, b.price*q.scale, b.dateTime)
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
	sdk.Export(Q0, func() sdk.Operator {
		return &bidProjection{op: Q0, scale: 1, point: noPoint, out: make([]byte, 0, 256)}
	})
	sdk.Export(Q1, func() sdk.Operator { return &bidProjection{op: Q1, scale: 908, point: 2, out: make([]byte, 0, 256)} })
	sdk.Export(Q2, func() sdk.Operator { return &q2{out: make([]byte, 0, 64)} })
}

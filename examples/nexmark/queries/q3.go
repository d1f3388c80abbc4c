package queries

import (
	"fmt"

	"github.com/weirstream/weir/abi/row"
	"github.com/weirstream/weir/connectors/nexmark"
	"github.com/weirstream/weir/sdk"
	"github.com/weirstream/weir/sdk/codec"
)

// Operator names of q3.
const (
	Q3Prep = "q3-prep"
	Q3Join = "q3-join"
)

// q3Prep keeps the auctions of category 10 and the persons of OR, ID and CA
// (the reference's WHERE, pushed below the join as Flink does) and keys
// them by person id (auction seller, person id). Values:
//
//	auction  row(int 1 = AuctionType, int id)
//	person   row(int 0 = PersonType, bytes "name,city,state,")
//
// The person's row carries the first three output columns already
// formatted: the join stores and emits them as they are.
type q3Prep struct {
	e   nexmark.Event
	key [8]byte
	out []byte
	csv []byte
}

func (q *q3Prep) Process(ctx *sdk.Context, r sdk.Record) error {
	t, err := eventType(r.Value)
	if err != nil {
		return fmt.Errorf("%s: %w", Q3Prep, err)
	}
	if t == nexmark.BidType {
		return nil
	}
	if err := decodeEvent(Q3Prep, &q.e, &r); err != nil {
		return err
	}
	switch t {
	case nexmark.AuctionType:
		a := &q.e.Auction
		if a.Category != 10 {
			return nil
		}
		o := row.AppendInt(q.out[:0], int64(nexmark.AuctionType))
		q.out = row.AppendInt(o, a.ID)
		ctx.Emit(int64Key(&q.key, a.Seller), q.out)
	case nexmark.PersonType:
		p := &q.e.Person
		if s := p.State; s != "OR" && s != "ID" && s != "CA" {
			return nil
		}
		c := appendTextString(q.csv[:0], p.Name)
		c = append(c, ',')
		c = appendTextString(c, p.City)
		c = append(c, ',')
		c = appendTextString(c, p.State)
		q.csv = append(c, ',')
		o := row.AppendInt(q.out[:0], int64(nexmark.PersonType))
		q.out = row.AppendBytes(o, q.csv)
		ctx.Emit(int64Key(&q.key, p.ID), q.out)
	}
	return nil
}

// q3Join is the regular (unbounded) inner join of q3, keyed by person id:
// each (person, auction) pair is emitted once, when its second side
// arrives, as name,city,state,id.
//
// State of a key: "person", the person's "name,city,state," once it has
// arrived; "auctions", the ids of the auctions that arrived before it
// (emitted and cleared when it arrives). A person's auctions that arrive
// after it are joined at once and not stored: Nexmark person ids are
// unique, so no second person can join them later. Like Flink's join
// without state TTL, a person's state is kept for the life of the job.
type q3Join struct {
	person   *sdk.ValueState[[]byte]
	auctions *sdk.ListState[int64]
	out      []byte
	prefix   []byte
	r        row.Reader
	// emitPending is the Range callback that joins the person (prefix)
	// with a stored auction, made once.
	emitPending func(id int64) error
}

func (q *q3Join) Open(ctx *sdk.Context) (err error) {
	if q.person, err = sdk.NewValueState(ctx, "person", view); err != nil {
		return err
	}
	q.emitPending = func(id int64) error {
		q.emit(ctx, q.prefix, id)
		return nil
	}
	q.auctions, err = sdk.NewListState(ctx, "auctions", codec.Int64)
	return err
}

func (q *q3Join) Process(ctx *sdk.Context, r sdk.Record) error {
	q.r.Reset(r.Value)
	t := q.r.Int()
	switch t {
	case int64(nexmark.AuctionType):
		id := q.r.Int()
		if err := q.r.Err(); err != nil {
			return fmt.Errorf("%s: auction: %w", Q3Join, err)
		}
		p, ok, err := q.person.Get()
		if err != nil {
			return err
		}
		if !ok {
			return q.auctions.Append(id)
		}
		q.emit(ctx, p, id)
		return nil
	case int64(nexmark.PersonType):
		p := q.r.Bytes()
		if err := q.r.Err(); err != nil {
			return fmt.Errorf("%s: person: %w", Q3Join, err)
		}
		if err := q.person.Set(p); err != nil {
			return err
		}
		// The prefix outlives the state calls below: keep a copy.
		q.prefix = append(q.prefix[:0], p...)
		if err := q.auctions.Range(q.emitPending); err != nil {
			return err
		}
		return q.auctions.Clear()
	}
	return fmt.Errorf("%s: unknown record type %d", Q3Join, t)
}

func (q *q3Join) emit(ctx *sdk.Context, prefix []byte, id int64) {
	q.out = appendInt(append(q.out[:0], prefix...), id)
	ctx.Emit(nil, q.out)
}

func init() {
	sdk.Export(Q3Prep, func() sdk.Operator { return &q3Prep{} })
	sdk.Export(Q3Join, func() sdk.Operator { return &q3Join{} }, sdk.Keyed())
}

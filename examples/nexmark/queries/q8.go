package queries

import (
	"encoding/binary"
	"fmt"

	"github.com/weirstream/weir/abi/row"
	"github.com/weirstream/weir/connectors/nexmark"
	"github.com/weirstream/weir/sdk"
	"github.com/weirstream/weir/sdk/codec"
)

// Operator names of q8.
const (
	Q8Prep = "q8-prep"
	Q8Join = "q8-join"
)

// q8Window is the length of q8's tumbling windows.
const q8Window = 10_000 // ms

// q8Prep keeps persons and auctions, keyed by person id (auction seller).
// Values (the window comes from the record's timestamp):
//
//	person   row(int 0 = PersonType, bytes name)
//	auction  row(int 1 = AuctionType)
type q8Prep struct {
	e   nexmark.Event
	key [8]byte
	out []byte
}

func (q *q8Prep) Process(ctx *sdk.Context, r sdk.Record) error {
	t, err := eventType(r.Value)
	if err != nil {
		return fmt.Errorf("%s: %w", Q8Prep, err)
	}
	if t == nexmark.BidType {
		return nil
	}
	if err := decodeEvent(Q8Prep, &q.e, &r); err != nil {
		return err
	}
	o := row.AppendInt(q.out[:0], int64(t))
	if t == nexmark.PersonType {
		q.out = row.AppendString(o, q.e.Person.Name)
		ctx.Emit(int64Key(&q.key, q.e.Person.ID), q.out)
		return nil
	}
	q.out = o
	ctx.Emit(int64Key(&q.key, q.e.Auction.Seller), q.out)
	return nil
}

// q8Join is q8's window join, keyed by person id: the persons of a 10 s
// tumbling window who created an auction (as seller) in the same window,
// emitted as id,name,starttime when the window closes (the watermark
// reaches its max timestamp), once per person and window as the reference's
// GROUP BY id, name, window_start, window_end makes them.
//
// State of a key: "person", the person's window start (8 bytes, big
// endian) followed by the output line, until its window closes; "sold",
// the starts of the windows in which the person sold something, each until
// that window closes. A timer at each such window's max timestamp closes
// it. Nexmark person ids are unique, so a key has at most one person.
// Records of windows that have closed (late) go to the late side output.
type q8Join struct {
	person *sdk.ValueState[[]byte]
	sold   *sdk.MapState[int64, bool]
	r      row.Reader
	out    []byte
}

func (q *q8Join) Open(ctx *sdk.Context) (err error) {
	if q.person, err = sdk.NewValueState(ctx, "person", view); err != nil {
		return err
	}
	q.sold, err = sdk.NewMapState(ctx, "sold", codec.Int64, codec.Bool)
	return err
}

func (q *q8Join) Process(ctx *sdk.Context, r sdk.Record) error {
	if r.Timestamp == sdk.NoTimestamp {
		return fmt.Errorf("%s: %w", Q8Join, errNoTimestamp)
	}
	start := floorDiv(r.Timestamp, q8Window)
	if start+q8Window-1 <= ctx.Watermark() {
		ctx.EmitLate(r.Key, r.Value)
		return nil
	}
	q.r.Reset(r.Value)
	switch t := q.r.Int(); t {
	case int64(nexmark.AuctionType):
		if err := q.r.Err(); err != nil {
			return fmt.Errorf("%s: auction: %w", Q8Join, err)
		}
		if err := q.sold.Put(start, true); err != nil {
			return err
		}
	case int64(nexmark.PersonType):
		name := q.r.String()
		if err := q.r.Err(); err != nil {
			return fmt.Errorf("%s: person: %w", Q8Join, err)
		}
		id, ok := keyInt64(r.Key)
		if !ok {
			return fmt.Errorf("%s: key of %d bytes, want 8 (the person id)", Q8Join, len(r.Key))
		}
		o := binary.BigEndian.AppendUint64(q.out[:0], uint64(start))
		o = appendInt(o, id)
		o = append(o, ',')
		o = appendTextString(o, name)
		o = append(o, ',')
		q.out = appendInt(o, start)
		if err := q.person.Set(q.out); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%s: unknown record type %d", Q8Join, t)
	}
	return ctx.RegisterEventTimeTimer(start + q8Window - 1)
}

// OnTimer closes the window whose max timestamp is t.
func (q *q8Join) OnTimer(ctx *sdk.Context, t sdk.Timer) error {
	start := t.Timestamp - (q8Window - 1)
	p, ok, err := q.person.Get()
	if err != nil {
		return err
	}
	if ok && len(p) >= 8 && int64(binary.BigEndian.Uint64(p)) <= start {
		// The person's window closes (or, defensively, closed).
		q.out = append(q.out[:0], p[8:]...)
		own := int64(binary.BigEndian.Uint64(p)) == start
		if own {
			sold, err := q.sold.Contains(start)
			if err != nil {
				return err
			}
			if sold {
				ctx.Emit(nil, q.out)
			}
		}
		if err := q.person.Clear(); err != nil {
			return err
		}
	}
	return q.sold.Delete(start)
}

func init() {
	sdk.Export(Q8Prep, func() sdk.Operator { return &q8Prep{} })
	sdk.Export(Q8Join, func() sdk.Operator { return &q8Join{} }, sdk.Keyed())
}

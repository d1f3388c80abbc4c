package nexmark

import (
	"fmt"
	"strconv"

	"github.com/weirstream/weir/abi/row"
)

// Type is an event's type, numbered as the reference's event_type column.
type Type uint8

// The three event types.
const (
	PersonType  Type = 0
	AuctionType Type = 1
	BidType     Type = 2
)

func (t Type) String() string {
	switch t {
	case PersonType:
		return "person"
	case AuctionType:
		return "auction"
	case BidType:
		return "bid"
	}
	return "type(" + strconv.Itoa(int(t)) + ")"
}

// Person is a user who sells or bids (the reference's Person). DateTime is
// epoch milliseconds.
type Person struct {
	ID           int64
	Name         string
	EmailAddress string
	CreditCard   string
	City         string
	State        string
	DateTime     int64
	Extra        string
}

// Auction is an item for sale (the reference's Auction). Seller is a
// Person.ID; DateTime and Expires are epoch milliseconds.
type Auction struct {
	ID          int64
	ItemName    string
	Description string
	InitialBid  int64
	Reserve     int64
	DateTime    int64
	Expires     int64
	Seller      int64
	Category    int64
	Extra       string
}

// Bid is a bid on an auction (the reference's Bid). Auction is an
// Auction.ID, Bidder a Person.ID; DateTime is epoch milliseconds.
type Bid struct {
	Auction  int64
	Bidder   int64
	Price    int64
	Channel  string
	URL      string
	DateTime int64
	Extra    string
}

// Event is one Nexmark event: Type says which of Person, Auction and Bid
// holds it (the others are left as they were).
type Event struct {
	Type    Type
	Person  Person
	Auction Auction
	Bid     Bid
}

// Timestamp is the event's time (its entity's DateTime), in epoch
// milliseconds: the event time the generator gives its record.
func (e *Event) Timestamp() int64 {
	switch e.Type {
	case PersonType:
		return e.Person.DateTime
	case AuctionType:
		return e.Auction.DateTime
	default:
		return e.Bid.DateTime
	}
}

// Row layout of an event (package abi/row): field 0 is the Type as an int,
// then the entity's fields in the order of the structs above (the
// reference's column order), strings as bytes and times as int millis:
//
//	person   0 type, 1 id, 2 name, 3 emailAddress, 4 creditCard, 5 city,
//	         6 state, 7 dateTime, 8 extra
//	auction  0 type, 1 id, 2 itemName, 3 description, 4 initialBid,
//	         5 reserve, 6 dateTime, 7 expires, 8 seller, 9 category, 10 extra
//	bid      0 type, 1 auction, 2 bidder, 3 price, 4 channel, 5 url,
//	         6 dateTime, 7 extra
//
// TimestampField gives the position of dateTime per type.
func TimestampField(t Type) int {
	switch t {
	case PersonType:
		return 7
	case AuctionType:
		return 6
	default:
		return 6
	}
}

// AppendRow appends e in the row layout.
func (e *Event) AppendRow(dst []byte) []byte {
	dst = row.AppendInt(dst, int64(e.Type))
	switch e.Type {
	case PersonType:
		p := &e.Person
		dst = row.AppendInt(dst, p.ID)
		dst = row.AppendString(dst, p.Name)
		dst = row.AppendString(dst, p.EmailAddress)
		dst = row.AppendString(dst, p.CreditCard)
		dst = row.AppendString(dst, p.City)
		dst = row.AppendString(dst, p.State)
		dst = row.AppendInt(dst, p.DateTime)
		dst = row.AppendString(dst, p.Extra)
	case AuctionType:
		a := &e.Auction
		dst = row.AppendInt(dst, a.ID)
		dst = row.AppendString(dst, a.ItemName)
		dst = row.AppendString(dst, a.Description)
		dst = row.AppendInt(dst, a.InitialBid)
		dst = row.AppendInt(dst, a.Reserve)
		dst = row.AppendInt(dst, a.DateTime)
		dst = row.AppendInt(dst, a.Expires)
		dst = row.AppendInt(dst, a.Seller)
		dst = row.AppendInt(dst, a.Category)
		dst = row.AppendString(dst, a.Extra)
	default:
		dst = e.Bid.appendFields(dst)
	}
	return dst
}

// AppendRow appends b as a bid event row (what Event.AppendRow writes for
// a bid, without building an Event).
func (b *Bid) AppendRow(dst []byte) []byte {
	return b.appendFields(row.AppendInt(dst, int64(BidType)))
}

func (b *Bid) appendFields(dst []byte) []byte {
	dst = row.AppendInt(dst, b.Auction)
	dst = row.AppendInt(dst, b.Bidder)
	dst = row.AppendInt(dst, b.Price)
	dst = row.AppendString(dst, b.Channel)
	dst = row.AppendString(dst, b.URL)
	dst = row.AppendInt(dst, b.DateTime)
	return row.AppendString(dst, b.Extra)
}

// DecodeRow decodes an event row into e. Its strings alias b (no copy):
// they are valid as long as b is, which for an operator's input is the
// current call; clone them (strings.Clone) to keep them. Only the entity
// of the event's type is written.
func (e *Event) DecodeRow(b []byte) error {
	r := row.NewReader(b)
	t := r.Int()
	if r.Err() != nil {
		return fmt.Errorf("nexmark event: %w", r.Err())
	}
	if t < 0 || t > int64(BidType) {
		return fmt.Errorf("nexmark event: unknown type %d", t)
	}
	switch Type(t) {
	case PersonType:
		p := &e.Person
		p.ID = r.Int()
		p.Name = r.String()
		p.EmailAddress = r.String()
		p.CreditCard = r.String()
		p.City = r.String()
		p.State = r.String()
		p.DateTime = r.Int()
		p.Extra = r.String()
	case AuctionType:
		a := &e.Auction
		a.ID = r.Int()
		a.ItemName = r.String()
		a.Description = r.String()
		a.InitialBid = r.Int()
		a.Reserve = r.Int()
		a.DateTime = r.Int()
		a.Expires = r.Int()
		a.Seller = r.Int()
		a.Category = r.Int()
		a.Extra = r.String()
	case BidType:
		bd := &e.Bid
		bd.Auction = r.Int()
		bd.Bidder = r.Int()
		bd.Price = r.Int()
		bd.Channel = r.String()
		bd.URL = r.String()
		bd.DateTime = r.Int()
		bd.Extra = r.String()
	}
	if !r.Done() {
		if r.Err() != nil {
			return fmt.Errorf("nexmark %s: %w", Type(t), r.Err())
		}
		return fmt.Errorf("nexmark %s: %d bytes after the last field", Type(t), r.Len())
	}
	e.Type = Type(t)
	return nil
}

// EventType returns the type of an event row by reading only its first
// field: how an operator skips the events it does not want cheaply.
func EventType(b []byte) (Type, error) {
	r := row.NewReader(b)
	t := r.Int()
	if err := r.Err(); err != nil {
		return 0, fmt.Errorf("nexmark event: %w", err)
	}
	if t < 0 || t > int64(BidType) {
		return 0, fmt.Errorf("nexmark event: unknown type %d", t)
	}
	return Type(t), nil
}

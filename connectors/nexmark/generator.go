package nexmark

import (
	"encoding/binary"
	"fmt"

	"github.com/weirstream/weir/abi/row"
)

// The reference's constants (GeneratorConfig, PersonGenerator,
// AuctionGenerator, BidGenerator).
const (
	FirstPersonID   = 1000 // GeneratorConfig.FIRST_PERSON_ID
	FirstAuctionID  = 1000 // GeneratorConfig.FIRST_AUCTION_ID
	FirstCategoryID = 10   // GeneratorConfig.FIRST_CATEGORY_ID

	numCategories    = 5   // AuctionGenerator.NUM_CATEGORIES
	personIDLead     = 10  // PersonGenerator.PERSON_ID_LEAD
	auctionIDLead    = 10  // AuctionGenerator.AUCTION_ID_LEAD
	hotSellerRatio   = 100 // AuctionGenerator.HOT_SELLER_RATIO
	hotAuctionRatio  = 100 // BidGenerator.HOT_AUCTION_RATIO
	hotBidderRatio   = 100 // BidGenerator.HOT_BIDDER_RATIO
	hotChannelsRatio = 2   // BidGenerator.HOT_CHANNELS_RATIO
	// outOfOrderMultiplier scatters event numbers within a group
	// (GeneratorConfig.nextAdjustedEventNumber).
	outOfOrderMultiplier = 953
)

// Generator generates the Nexmark events of a Config. Event n, for any
// n >= 0, is a pure function of the config and n: the event the reference
// generator emits after n others (its eventsCountSoFar is n). A Generator
// is immutable and safe for concurrent use.
//
// # Fidelity
//
// This is a port of the generator of github.com/nexmark/nexmark at commit
// 6b3646c (GeneratorConfig, NexmarkGenerator and the Person, Auction, Bid,
// Strings, Price and Long generators): the same event ids and types, id,
// price, string, size and time formulas, and the same random draws in the
// same order, java.util.Random included bit for bit. Since 2021 the
// reference draws from an unseeded random per generator and builds its
// static tables (the 1 MiB string extras are cut from, the channel URLs)
// from unseeded randoms, so no two of its runs agree. The port restores
// the seeding the reference had until then, which Apache Beam's Nexmark
// still has: a java.util.Random seeded with the event id per event, and
// fixed seeds for the tables (0 for the extra string, 1 for the URLs).
// testdata/README.md shows how the reference, with exactly these changes,
// printed the golden events TestGolden compares with, field by field.
//
// Kept as the reference has them: a bid's Bidder is the bidding
// Person.ID plus 1000 (it adds FIRST_PERSON_ID twice; none of q0-q8 joins
// bidders to people), extra fields hold characters 'H' to 'z'
// (among them '\' and '`'), an unbounded stream is not capped at the
// reference's maxEvents (about 3.7e14 events with the defaults).
//
// Different: prices use Go's math.Pow where Java uses Math.pow, which may
// differ in the last bit; a price differs only when that bit decides the
// rounding of x.5 (estimated once per 10^9 prices; the first 20 million
// events agree in every field). The reference's parallel source gives each of its p
// generators its own timeline (numEventGenerators = p, events p times
// further apart, each generator its own range of ids); here the subtasks
// of a source share one timeline and split the event numbers, which is the
// reference's parallelism-1 stream for any parallelism.
type Generator struct {
	c       Config
	total   int64   // sum of the proportions
	delayUs float64 // microseconds of event time between event numbers
	// auctionsAhead is the number of events until NumInFlightAuctions more
	// auctions were created: an auction lasts about twice that long.
	auctionsAhead int64
	seedMix       int64 // xored into each event's seed; 0 for Seed 0
	t             *tables
}

// NewGenerator validates c and returns its generator.
func NewGenerator(c Config) (*Generator, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	g := &Generator{
		c:     c,
		total: int64(c.PersonProportion + c.AuctionProportion + c.BidProportion),
		// The reference's interEventDelayUs with numEventGenerators 1:
		// subtasks here share one timeline (see doc.go).
		delayUs: 1000000.0 / float64(c.FirstEventRate),
		t:       sharedTables(),
	}
	if c.AuctionProportion > 0 {
		g.auctionsAhead = int64(c.NumInFlightAuctions) * g.total / int64(c.AuctionProportion)
	}
	if c.Seed != 0 {
		g.seedMix = int64(mix64(uint64(c.Seed)))
	}
	return g, nil
}

// Config returns the generator's config.
func (g *Generator) Config() Config { return g.c }

// adjustedNumber is GeneratorConfig.nextAdjustedEventNumber(n): the event
// number, scattered within its out-of-order group. Arithmetic wraps as
// Java's does.
func (g *Generator) adjustedNumber(n int64) int64 {
	size := g.c.OutOfOrderGroupSize
	number := g.c.FirstEventNumber + n
	return number/size*size + number*outOfOrderMultiplier%size
}

// timestampFor is GeneratorConfig.timestampForEvent.
func (g *Generator) timestampFor(number int64) int64 {
	return g.c.BaseTime + javaLong(float64(number)*g.delayUs)/1000
}

// Timestamp returns the event time of event n (its dateTime), in epoch
// milliseconds. With OutOfOrderGroupSize 1 it never decreases with n.
func (g *Generator) Timestamp(n int64) int64 { return g.timestampFor(g.adjustedNumber(n)) }

// Type returns the type of event n without generating it.
func (g *Generator) Type(n int64) Type {
	return g.typeOf(g.c.FirstEventID + g.adjustedNumber(n))
}

func (g *Generator) typeOf(id int64) Type {
	rem := id % g.total
	switch {
	case rem < int64(g.c.PersonProportion):
		return PersonType
	case rem < int64(g.c.PersonProportion+g.c.AuctionProportion):
		return AuctionType
	}
	return BidType
}

// lastPerson is PersonGenerator.lastBase0PersonId: the id (from 0) of the
// last person created up to event id, this one included.
func (g *Generator) lastPerson(id int64) int64 {
	epoch, offset := id/g.total, id%g.total
	p := int64(g.c.PersonProportion)
	if offset >= p {
		offset = p - 1
	}
	return epoch*p + offset
}

// lastAuction is AuctionGenerator.lastBase0AuctionId.
func (g *Generator) lastAuction(id int64) int64 {
	epoch, offset := id/g.total, id%g.total
	p, a := int64(g.c.PersonProportion), int64(g.c.AuctionProportion)
	switch {
	case offset < p:
		epoch--
		offset = a - 1
	case offset >= p+a:
		offset = a - 1
	default:
		offset -= p
	}
	return epoch*a + offset
}

// randomPerson is PersonGenerator.nextBase0PersonId: one of the last
// NumActivePeople people, or a few ids ahead.
func (g *Generator) randomPerson(id int64, r *javaRandom) int64 {
	people := g.lastPerson(id) + 1
	active := min(people, int64(g.c.NumActivePeople))
	return people - active + r.nextLongn(active+personIDLead)
}

// randomAuction is AuctionGenerator.nextBase0AuctionId: one of the last
// NumInFlightAuctions auctions, or a few ids ahead.
func (g *Generator) randomAuction(id int64, r *javaRandom) int64 {
	last := g.lastAuction(id)
	first := max(last-int64(g.c.NumInFlightAuctions), 0)
	return first + r.nextLongn(last-first+1+auctionIDLead)
}

// Event generates event n into e (n >= 0). Only the entity of the event's
// type is written; its strings are allocated for the event.
func (g *Generator) Event(n int64, e *Event) {
	b := g.AppendRow(nil, n)
	if err := e.DecodeRow(b); err != nil {
		panic(fmt.Sprintf("nexmark: generated row of event %d does not decode: %v", n, err))
	}
}

// AppendRow appends event n (n >= 0) in the row layout of Event.AppendRow.
// It allocates nothing beyond growing dst: the strings are written straight
// into it. This is the source connector's hot path.
func (g *Generator) AppendRow(dst []byte, n int64) []byte {
	if n < 0 {
		panic(fmt.Sprintf("nexmark: event number %d < 0", n))
	}
	number := g.adjustedNumber(n)
	id := g.c.FirstEventID + number
	ts := g.timestampFor(number)
	// A Random per event, seeded with the event id (see Fidelity).
	r := newJavaRandom(id ^ g.seedMix)
	switch g.typeOf(id) {
	case PersonType:
		return g.appendPerson(dst, id, ts, &r)
	case AuctionType:
		return g.appendAuction(dst, number, id, ts, &r)
	}
	return g.appendBid(dst, id, ts, &r)
}

// appendPerson is PersonGenerator.nextPerson, its draws in the order of
// its fields.
func (g *Generator) appendPerson(dst []byte, id, ts int64, r *javaRandom) []byte {
	dst = row.AppendInt(dst, int64(PersonType))
	dst = row.AppendInt(dst, g.lastPerson(id)+FirstPersonID)
	size := 8

	mark := len(dst)
	dst = openBytes(dst)
	dst = append(dst, firstNames[r.nextIntn(int32(len(firstNames)))]...)
	dst = append(dst, ' ')
	dst = append(dst, lastNames[r.nextIntn(int32(len(lastNames)))]...)
	dst, size = closeBytes(dst, mark, size)

	mark = len(dst)
	dst = openBytes(dst)
	dst = appendNextString(dst, r, 7, ' ')
	dst = append(dst, '@')
	dst = appendNextString(dst, r, 5, ' ')
	dst = append(dst, ".com"...)
	dst, size = closeBytes(dst, mark, size)

	mark = len(dst)
	dst = openBytes(dst)
	for i := 0; i < 4; i++ {
		if i > 0 {
			dst = append(dst, ' ')
		}
		v := r.nextIntn(10000)
		dst = append(dst, byte('0'+v/1000), byte('0'+v/100%10), byte('0'+v/10%10), byte('0'+v%10))
	}
	dst, size = closeBytes(dst, mark, size)

	city := usCities[r.nextIntn(int32(len(usCities)))]
	state := usStates[r.nextIntn(int32(len(usStates)))]
	dst = row.AppendString(dst, city)
	dst = row.AppendString(dst, state)
	size += len(city) + len(state)
	dst = row.AppendInt(dst, ts)

	mark = len(dst)
	dst = openBytes(dst)
	dst = g.t.appendExtra(dst, r, size, g.c.AvgPersonByteSize)
	dst, _ = closeBytes(dst, mark, 0)
	return dst
}

// appendAuction is AuctionGenerator.nextAuction. Its draws come in the
// order seller, category, initial bid, expiry, name, description,
// reserve, extra; the row's order (name, description, initial bid,
// reserve, ..., seller, category) differs, so the numbers drawn before
// the strings are kept until their fields come.
func (g *Generator) appendAuction(dst []byte, number, id, ts int64, r *javaRandom) []byte {
	var seller int64
	if r.nextIntn(int32(g.c.HotSellersRatio)) > 0 {
		// The first person of the batch of the last hotSellerRatio people.
		seller = g.lastPerson(id) / hotSellerRatio * hotSellerRatio
	} else {
		seller = g.randomPerson(id, r)
	}
	seller += FirstPersonID
	category := FirstCategoryID + int64(r.nextIntn(numCategories))
	initialBid := nextPrice(r)
	// AuctionGenerator.nextAuctionLengthMs: on average as long as it
	// takes until NumInFlightAuctions more auctions exist.
	horizon := g.timestampFor(number+g.auctionsAhead) - ts
	expires := ts + 1 + r.nextLongn(max(horizon*2, 1))

	dst = row.AppendInt(dst, int64(AuctionType))
	dst = row.AppendInt(dst, g.lastAuction(id)+FirstAuctionID)
	size := 8 + 8*5
	mark := len(dst)
	dst = appendNextString(openBytes(dst), r, 20, ' ')
	dst, size = closeBytes(dst, mark, size)
	mark = len(dst)
	dst = appendNextString(openBytes(dst), r, 100, ' ')
	dst, size = closeBytes(dst, mark, size)
	reserve := initialBid + nextPrice(r)

	dst = row.AppendInt(dst, initialBid)
	dst = row.AppendInt(dst, reserve)
	dst = row.AppendInt(dst, ts)
	dst = row.AppendInt(dst, expires)
	dst = row.AppendInt(dst, seller)
	dst = row.AppendInt(dst, category)
	mark = len(dst)
	dst = g.t.appendExtra(openBytes(dst), r, size, g.c.AvgAuctionByteSize)
	dst, _ = closeBytes(dst, mark, 0)
	return dst
}

// appendBid is BidGenerator.nextBid.
func (g *Generator) appendBid(dst []byte, id, ts int64, r *javaRandom) []byte {
	var auction int64
	if r.nextIntn(int32(g.c.HotAuctionRatio)) > 0 {
		// The first auction of the batch of the last hotAuctionRatio.
		auction = g.lastAuction(id) / hotAuctionRatio * hotAuctionRatio
	} else {
		auction = g.randomAuction(id, r)
	}
	auction += FirstAuctionID

	var bidder int64
	if r.nextIntn(int32(g.c.HotBiddersRatio)) > 0 {
		// The second person of the batch (so hot bidders and hot
		// sellers differ).
		bidder = g.lastPerson(id)/hotBidderRatio*hotBidderRatio + 1
	} else {
		bidder = g.randomPerson(id, r)
	}
	// The reference adds FIRST_PERSON_ID twice to a bidder (once before
	// the channel is drawn, once after): bidders are person ids + 1000.
	bidder += 2 * FirstPersonID

	price := nextPrice(r)
	var channel, url string
	if r.nextIntn(hotChannelsRatio) > 0 {
		i := r.nextIntn(int32(len(hotChannels)))
		channel, url = hotChannels[i], g.t.hotURLs[i]
	} else {
		i := r.nextIntn(channelsNumber)
		channel, url = g.t.channels[i], g.t.channelURLs[i]
	}

	dst = row.AppendInt(dst, int64(BidType))
	dst = row.AppendInt(dst, auction)
	dst = row.AppendInt(dst, bidder)
	dst = row.AppendInt(dst, price)
	dst = row.AppendString(dst, channel)
	dst = row.AppendString(dst, url)
	dst = row.AppendInt(dst, ts)
	mark := len(dst)
	dst = g.t.appendExtra(openBytes(dst), r, 8*4, g.c.AvgBidByteSize)
	dst, _ = closeBytes(dst, mark, 0)
	return dst
}

// openBytes starts a bytes field whose length is not known yet: its kind
// and a length that closeBytes fills in, as row.AppendBytes would have
// written them.
func openBytes(dst []byte) []byte { return append(dst, byte(row.Bytes), 0, 0, 0, 0) }

// closeBytes ends the bytes field opened at mark and returns dst with the
// field's length added to size (the reference's running event size).
func closeBytes(dst []byte, mark, size int) ([]byte, int) {
	n := len(dst) - mark - 5
	binary.LittleEndian.PutUint32(dst[mark+1:], uint32(n))
	return dst, size + n
}

package nexmark

import (
	"fmt"
	"math"
)

// Config holds the reference's generator knobs (its NexmarkConfiguration
// and GeneratorConfig), with the reference's defaults in DefaultConfig.
// The zero Config is not valid: start from DefaultConfig.
type Config struct {
	// FirstEventRate is the event-time rate: events per second of event
	// time, over the whole stream. Event n of the stream is stamped
	// BaseTime + number*1e6/FirstEventRate µs (truncated to the
	// millisecond), number being its (adjusted) event number. It says
	// nothing about how fast events are delivered.
	FirstEventRate int
	// NextEventRate is accepted for configs written for the reference,
	// which declares it but never reads it: its GeneratorConfig uses
	// FirstEventRate only (the rate shapes are Beam's and were not
	// carried over). 0 means FirstEventRate; another value must equal
	// FirstEventRate, so that a config expecting a changing rate fails
	// instead of silently getting a constant one.
	NextEventRate int

	// PersonProportion, AuctionProportion and BidProportion are the
	// shares of each type (1:3:46): event id i is a person when
	// i % total < PersonProportion, an auction when below
	// PersonProportion+AuctionProportion, else a bid.
	PersonProportion, AuctionProportion, BidProportion int

	// AvgPersonByteSize, AvgAuctionByteSize and AvgBidByteSize are the
	// reference's idealised event sizes (200, 500, 100): each event's
	// extra field is sized so that its fields average this many bytes
	// (within ±20%), counting 8 bytes per number. At most 1 MiB here (the
	// reference has no bound), which keeps an event far below the record
	// size limit.
	AvgPersonByteSize, AvgAuctionByteSize, AvgBidByteSize int

	// HotAuctionRatio, HotSellersRatio and HotBiddersRatio (2, 4, 4):
	// a bid is for a hot auction, an auction by a hot seller, a bid by a
	// hot bidder with probability 1 - 1/ratio. 1 means never hot.
	HotAuctionRatio, HotSellersRatio, HotBiddersRatio int

	// NumActivePeople (1000) is how many of the latest people are
	// picked from for sellers and bidders that are not hot.
	NumActivePeople int
	// NumInFlightAuctions (100) is how many of the latest auctions are
	// picked from for bids that are not for a hot auction; it also sets
	// how long auctions last (about twice the event time until that many
	// more auctions were created).
	NumInFlightAuctions int
	// OutOfOrderGroupSize (1) shuffles event numbers within groups of
	// this many events, so that groups arrive out of order in event time;
	// 1 keeps every timestamp in order.
	OutOfOrderGroupSize int64

	// BaseTime is the event time of event number 0, in epoch
	// milliseconds. The reference takes the wall clock at job start;
	// DefaultConfig fixes it (DefaultBaseTime) so that every run sees the
	// same events.
	BaseTime int64
	// FirstEventID and FirstEventNumber offset the event ids and numbers
	// as the reference's GeneratorConfig does; the reference's "nexmark"
	// table source uses 1 and 1, the defaults here, so event 0 is event id
	// 2 (an auction).
	FirstEventID, FirstEventNumber int64

	// Seed 0 generates exactly the reference's events. Any other value is
	// mixed into every event's random seed (seed = event id XOR
	// SplitMix64(Seed)), which changes every random choice (names, prices,
	// hot or not, ...) while keeping the formulas of the event number:
	// types, ids, timestamps.
	Seed int64
}

// DefaultBaseTime is DefaultConfig's BaseTime: 2026-01-01T00:00:00Z in
// epoch milliseconds.
const DefaultBaseTime int64 = 1767225600000

// DefaultConfig returns the reference's defaults (those of its "nexmark"
// table source at parallelism 1), with BaseTime fixed to DefaultBaseTime.
func DefaultConfig() Config {
	return Config{
		FirstEventRate: 10000,
		// NextEventRate 0: the same as FirstEventRate (the reference's
		// 10000), and it stays so when FirstEventRate is changed.
		PersonProportion:    1,
		AuctionProportion:   3,
		BidProportion:       46,
		AvgPersonByteSize:   200,
		AvgAuctionByteSize:  500,
		AvgBidByteSize:      100,
		HotAuctionRatio:     2,
		HotSellersRatio:     4,
		HotBiddersRatio:     4,
		NumActivePeople:     1000,
		NumInFlightAuctions: 100,
		OutOfOrderGroupSize: 1,
		BaseTime:            DefaultBaseTime,
		FirstEventID:        1,
		FirstEventNumber:    1,
	}
}

// ConfigError reports an invalid Config field.
type ConfigError struct {
	// Field is the field's name as the "nexmark" source's config spells
	// it (the Go name with a lower-case first letter, "Id" for "ID"), so
	// that the connector can name it in its own error.
	Field string
	// Reason says what is wrong, e.g. "must be >= 1, got 0".
	Reason string
}

// Error implements error: "nexmark config: <field>: <reason>".
func (e *ConfigError) Error() string { return "nexmark config: " + e.Field + ": " + e.Reason }

// Limits of Validate.
const (
	// MaxAvgByteSize bounds the average event sizes.
	MaxAvgByteSize = 1 << 20
	// maxProportion bounds each proportion, so that products of ids and
	// proportions cannot overflow in any formula.
	maxProportion = 1 << 20
)

// Validate checks every field, reporting the first invalid one as a
// *ConfigError.
func (c Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return &ConfigError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	intRange := func(field string, v, lo, hi int) error {
		if v < lo || v > hi {
			return bad(field, "must be between %d and %d, got %d", lo, hi, v)
		}
		return nil
	}
	checks := []struct {
		field  string
		v      int
		lo, hi int
	}{
		{"firstEventRate", c.FirstEventRate, 1, math.MaxInt32},
		{"personProportion", c.PersonProportion, 0, maxProportion},
		{"auctionProportion", c.AuctionProportion, 0, maxProportion},
		{"bidProportion", c.BidProportion, 0, maxProportion},
		{"avgPersonByteSize", c.AvgPersonByteSize, 0, MaxAvgByteSize},
		{"avgAuctionByteSize", c.AvgAuctionByteSize, 0, MaxAvgByteSize},
		{"avgBidByteSize", c.AvgBidByteSize, 0, MaxAvgByteSize},
		{"hotAuctionRatio", c.HotAuctionRatio, 1, math.MaxInt32},
		{"hotSellersRatio", c.HotSellersRatio, 1, math.MaxInt32},
		{"hotBiddersRatio", c.HotBiddersRatio, 1, math.MaxInt32},
		{"numActivePeople", c.NumActivePeople, 0, math.MaxInt32},
		{"numInFlightAuctions", c.NumInFlightAuctions, 0, math.MaxInt32},
	}
	for _, ch := range checks {
		if err := intRange(ch.field, ch.v, ch.lo, ch.hi); err != nil {
			return err
		}
	}
	if c.NextEventRate != 0 && c.NextEventRate != c.FirstEventRate {
		return bad("nextEventRate", "must equal firstEventRate (%d) or be 0, got %d: the reference generates at firstEventRate only", c.FirstEventRate, c.NextEventRate)
	}
	if c.PersonProportion+c.AuctionProportion+c.BidProportion == 0 {
		return bad("bidProportion", "the proportions must not all be 0")
	}
	if c.OutOfOrderGroupSize < 1 {
		return bad("outOfOrderGroupSize", "must be >= 1, got %d", c.OutOfOrderGroupSize)
	}
	if c.BaseTime < 0 {
		return bad("baseTime", "must be >= 0 (epoch milliseconds), got %d", c.BaseTime)
	}
	if c.FirstEventID < 0 {
		return bad("firstEventId", "must be >= 0, got %d", c.FirstEventID)
	}
	if c.FirstEventNumber < 0 {
		return bad("firstEventNumber", "must be >= 0, got %d", c.FirstEventNumber)
	}
	return nil
}

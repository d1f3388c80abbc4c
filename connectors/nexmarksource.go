package connectors

import (
	"context"
	"errors"
	"fmt"

	"github.com/weirstream/weir/connectors/nexmark"
	"github.com/weirstream/weir/runtime"
)

// nexmarkConfig is the config of the nexmark source (documented in
// doc.go). The generator knobs are pointers so that an absent one keeps
// the reference's default.
type nexmarkConfig struct {
	Count  int64   `json:"count"`
	Rate   float64 `json:"rate"`
	Format string  `json:"format"`
	Seed   int64   `json:"seed"`

	BaseTime            *int64 `json:"baseTime"`
	FirstEventRate      *int   `json:"firstEventRate"`
	NextEventRate       *int   `json:"nextEventRate"`
	PersonProportion    *int   `json:"personProportion"`
	AuctionProportion   *int   `json:"auctionProportion"`
	BidProportion       *int   `json:"bidProportion"`
	AvgPersonByteSize   *int   `json:"avgPersonByteSize"`
	AvgAuctionByteSize  *int   `json:"avgAuctionByteSize"`
	AvgBidByteSize      *int   `json:"avgBidByteSize"`
	HotAuctionRatio     *int   `json:"hotAuctionRatio"`
	HotSellersRatio     *int   `json:"hotSellersRatio"`
	HotBiddersRatio     *int   `json:"hotBiddersRatio"`
	NumActivePeople     *int   `json:"numActivePeople"`
	NumInFlightAuctions *int   `json:"numInFlightAuctions"`
	OutOfOrderGroupSize *int64 `json:"outOfOrderGroupSize"`
	FirstEventID        *int64 `json:"firstEventId"`
	FirstEventNumber    *int64 `json:"firstEventNumber"`
}

// nexmarkPlan is a validated nexmark config, shared (immutable) by the
// subtasks of a node.
type nexmarkPlan struct {
	gen   *nexmark.Generator
	count uint64  // 0: unbounded
	rate  float64 // events per second over the node; 0: as fast as possible
	json  bool    // JSON values instead of rows
}

// newNexmarkFactory returns the nexmark source factory.
func newNexmarkFactory() runtime.SourceFactory {
	return func(config []byte) (func() runtime.Source, error) {
		plan, err := newNexmarkPlan(config)
		if err != nil {
			return nil, err
		}
		return func() runtime.Source { return newNexmarkSource(plan) }, nil
	}
}

func newNexmarkPlan(config []byte) (*nexmarkPlan, error) {
	var cfg nexmarkConfig
	if err := runtime.DecodeConfig(config, &cfg); err != nil {
		return nil, err
	}
	if err := checkCountRate(cfg.Count, cfg.Rate); err != nil {
		return nil, err
	}
	p := &nexmarkPlan{count: uint64(cfg.Count), rate: cfg.Rate}
	switch cfg.Format {
	case "", "row":
	case "json":
		p.json = true
	default:
		return nil, fmt.Errorf("config.format: must be one of row, json, got %q", cfg.Format)
	}
	// nextEventRate follows firstEventRate unless given (the reference
	// ignores it; Validate only checks that it agrees).
	c := nexmark.DefaultConfig()
	c.Seed = cfg.Seed
	for _, f := range []struct {
		from *int
		to   *int
	}{
		{cfg.FirstEventRate, &c.FirstEventRate},
		{cfg.NextEventRate, &c.NextEventRate},
		{cfg.PersonProportion, &c.PersonProportion},
		{cfg.AuctionProportion, &c.AuctionProportion},
		{cfg.BidProportion, &c.BidProportion},
		{cfg.AvgPersonByteSize, &c.AvgPersonByteSize},
		{cfg.AvgAuctionByteSize, &c.AvgAuctionByteSize},
		{cfg.AvgBidByteSize, &c.AvgBidByteSize},
		{cfg.HotAuctionRatio, &c.HotAuctionRatio},
		{cfg.HotSellersRatio, &c.HotSellersRatio},
		{cfg.HotBiddersRatio, &c.HotBiddersRatio},
		{cfg.NumActivePeople, &c.NumActivePeople},
		{cfg.NumInFlightAuctions, &c.NumInFlightAuctions},
	} {
		if f.from != nil {
			*f.to = *f.from
		}
	}
	for _, f := range []struct {
		from *int64
		to   *int64
	}{
		{cfg.BaseTime, &c.BaseTime},
		{cfg.OutOfOrderGroupSize, &c.OutOfOrderGroupSize},
		{cfg.FirstEventID, &c.FirstEventID},
		{cfg.FirstEventNumber, &c.FirstEventNumber},
	} {
		if f.from != nil {
			*f.to = *f.from
		}
	}
	gen, err := nexmark.NewGenerator(c)
	if err != nil {
		var ce *nexmark.ConfigError
		if errors.As(err, &ce) {
			// The generator names fields as this config does.
			return nil, fmt.Errorf("config.%s: %s", ce.Field, ce.Reason)
		}
		return nil, fmt.Errorf("config: %w", err)
	}
	p.gen = gen
	return p, nil
}

// nexmarkSource is one subtask of a nexmark node: it generates the events
// n with n % parallelism == subtask below count, in ascending order, except
// those a restored checkpoint says were generated already.
type nexmarkSource struct {
	plan *nexmarkPlan
	cur  indexCursor
	buf  []byte
}

func newNexmarkSource(plan *nexmarkPlan) *nexmarkSource {
	return &nexmarkSource{plan: plan, cur: indexCursor{
		what:         "nexmark source",
		kind:         snapKindNexmark,
		count:        plan.count,
		rate:         plan.rate,
		rateOverNode: true,
	}}
}

// Open positions the subtask at its first event and starts the rate clock.
func (s *nexmarkSource) Open(_ context.Context, info runtime.TaskInfo) error {
	return s.cur.open(info)
}

// Poll generates up to maxRecords events; with a rate it generates only
// those due by now, waiting (on the task clock, up to ctx's deadline) until
// at least one is. Each record has an empty key, the event as its value and
// the event's dateTime as its timestamp.
func (s *nexmarkSource) Poll(ctx context.Context, w runtime.RecordWriter, maxRecords int) (bool, error) {
	n, done, err := s.cur.begin(ctx, maxRecords)
	if n == 0 {
		return done, err
	}
	gen, buf := s.plan.gen, s.buf
	written := uint64(0)
	for ; written < n; written++ {
		idx, ok := s.cur.take()
		if !ok {
			break
		}
		// Event numbers beyond MaxInt64 would take 29,000 years at 10
		// million events per second; AppendRow panics on them.
		event := int64(idx)
		if s.plan.json {
			buf = gen.AppendJSON(buf[:0], event)
		} else {
			buf = gen.AppendRow(buf[:0], event)
		}
		w.Write(nil, buf, gen.Timestamp(event))
	}
	s.buf = buf
	return s.cur.finish(written), nil
}

// Snapshot implements runtime.CheckpointedSource: the count, then the set
// of event numbers generated so far over the node.
func (s *nexmarkSource) Snapshot() ([]byte, error) { return s.cur.snapshot() }

// Restore implements runtime.CheckpointedSource. Every old snapshot must be
// of a nexmark node with the same count; the generator knobs, the rate and
// the format may change (a position is an event number).
func (s *nexmarkSource) Restore(info runtime.TaskInfo, states [][]byte) error {
	return s.cur.restore(info, states)
}

// Close implements runtime.Source.
func (s *nexmarkSource) Close() error { return nil }

var _ runtime.CheckpointedSource = (*nexmarkSource)(nil)

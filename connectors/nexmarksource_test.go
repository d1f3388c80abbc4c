package connectors

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/weirstream/weir/connectors/nexmark"
	"github.com/weirstream/weir/runtime"
	"github.com/weirstream/weir/runtime/clock"
)

// nexmarkRegistry is the registry with the nexmark source.
func nexmarkRegistry(t testing.TB) *runtime.Connectors { return registry(t, RegisterOptions{}) }

func defaultGenerator(t testing.TB, edit func(*nexmark.Config)) *nexmark.Generator {
	t.Helper()
	c := nexmark.DefaultConfig()
	if edit != nil {
		edit(&c)
	}
	g, err := nexmark.NewGenerator(c)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestNexmarkConfigErrors(t *testing.T) {
	c := nexmarkRegistry(t)
	for _, tc := range []struct{ config, want string }{
		{`{"count": -1}`, `config.count: must be >= 0`},
		{`{"count": 1.5}`, `config.count: cannot use`},
		{`{"rate": -2}`, `config.rate: must be a finite number >= 0`},
		{`{"format": "avro"}`, `config.format: must be one of row, json, got "avro"`},
		{`{"events.num": 10}`, `config.events.num: unknown field`},
		{`{"firstEventRate": 0}`, `config.firstEventRate: must be between 1 and 2147483647, got 0`},
		{`{"firstEventRate": "fast"}`, `config.firstEventRate: cannot use`},
		{`{"nextEventRate": 5000}`, `config.nextEventRate: must equal firstEventRate (10000) or be 0, got 5000`},
		{`{"personProportion": -1}`, `config.personProportion: must be between 0 and`},
		{`{"personProportion": 0, "auctionProportion": 0, "bidProportion": 0}`, `config.bidProportion: the proportions must not all be 0`},
		{`{"avgBidByteSize": 1048577}`, `config.avgBidByteSize: must be between 0 and 1048576, got 1048577`},
		{`{"hotAuctionRatio": 0}`, `config.hotAuctionRatio: must be between 1 and`},
		{`{"hotSellersRatio": -3}`, `config.hotSellersRatio: must be between 1 and`},
		{`{"hotBiddersRatio": 0}`, `config.hotBiddersRatio: must be between 1 and`},
		{`{"numActivePeople": -1}`, `config.numActivePeople: must be between 0 and`},
		{`{"numInFlightAuctions": -1}`, `config.numInFlightAuctions: must be between 0 and`},
		{`{"outOfOrderGroupSize": 0}`, `config.outOfOrderGroupSize: must be >= 1, got 0`},
		{`{"baseTime": -5}`, `config.baseTime: must be >= 0`},
		{`{"firstEventId": -1}`, `config.firstEventId: must be >= 0`},
		{`{"firstEventNumber": -1}`, `config.firstEventNumber: must be >= 0`},
		// Valid configs.
		{``, ``},
		{`null`, ``},
		{`{"firstEventRate": 5000}`, ``}, // nextEventRate follows
		{`{"firstEventRate": 5000, "nextEventRate": 5000}`, ``},
		{`{"count": 10, "rate": 0.5, "seed": -3, "format": "json", "baseTime": 0, "personProportion": 0, "auctionProportion": 0, "bidProportion": 1}`, ``},
		{`{"avgPersonByteSize": 0, "avgAuctionByteSize": 1048576, "hotAuctionRatio": 1, "numActivePeople": 0, "numInFlightAuctions": 0, "outOfOrderGroupSize": 1000, "firstEventId": 0, "firstEventNumber": 0}`, ``},
	} {
		t.Run(tc.config, func(t *testing.T) {
			_, err := c.Sources["nexmark"]([]byte(tc.config))
			wantErr(t, err, tc.want)
		})
	}
}

// TestNexmarkRecords: each record is the generator's event n, as a row or
// as JSON, with an empty key and the event's time.
func TestNexmarkRecords(t *testing.T) {
	c := nexmarkRegistry(t)
	for _, tc := range []struct {
		name, config string
		edit         func(*nexmark.Config)
		json         bool
	}{
		{"defaults", `{"count": 200}`, nil, false},
		{"json", `{"count": 200, "format": "json"}`, nil, true},
		{"knobs", `{"count": 200, "seed": 9, "baseTime": 5000, "firstEventRate": 3, "personProportion": 2, "auctionProportion": 2, "bidProportion": 6, "avgBidByteSize": 500, "hotAuctionRatio": 1, "outOfOrderGroupSize": 4, "firstEventId": 0, "firstEventNumber": 0}`,
			func(c *nexmark.Config) {
				c.Seed, c.BaseTime, c.FirstEventRate = 9, 5000, 3
				c.PersonProportion, c.AuctionProportion, c.BidProportion = 2, 2, 6
				c.AvgBidByteSize, c.HotAuctionRatio, c.OutOfOrderGroupSize = 500, 1, 4
				c.FirstEventID, c.FirstEventNumber = 0, 0
			}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := defaultGenerator(t, tc.edit)
			got := drain(t, newSource(t, c, "nexmark", tc.config)(), 0, 1, 7)
			if len(got) != 200 {
				t.Fatalf("%d records, want 200", len(got))
			}
			for n, r := range got {
				want := g.AppendRow(nil, int64(n))
				if tc.json {
					want = g.AppendJSON(nil, int64(n))
				}
				if r.Key != "" || r.Value != string(want) || r.TS != g.Timestamp(int64(n)) {
					t.Fatalf("record %d: %+v\nwant value %q, timestamp %d", n, r, want, g.Timestamp(int64(n)))
				}
			}
			if !tc.json {
				var e nexmark.Event
				if err := e.DecodeRow([]byte(got[0].Value)); err != nil || e.Timestamp() != got[0].TS {
					t.Fatalf("record 0 does not decode to its timestamp: %v", err)
				}
			}
		})
	}
}

// TestNexmarkParallelSplit: subtask s of p generates exactly the events
// n % p == s, in order, with timestamps that never decrease; the union is
// the parallelism-1 output, whatever the batching.
func TestNexmarkParallelSplit(t *testing.T) {
	c := nexmarkRegistry(t)
	for _, count := range []int{1, 7, 100, 1000} {
		mk := newSource(t, c, "nexmark", fmt.Sprintf(`{"count": %d, "firstEventRate": 100}`, count))
		whole := drain(t, mk(), 0, 1, 64)
		if len(whole) != count {
			t.Fatalf("count %d: parallelism 1 generated %d", count, len(whole))
		}
		for _, p := range []int{2, 3, 5} {
			total := 0
			for s := 0; s < p; s++ {
				part := drain(t, mk(), s, p, 1+s*5)
				for j, r := range part {
					n := s + j*p
					if r != whole[n] {
						t.Fatalf("count %d p %d subtask %d: record %d is not event %d", count, p, s, j, n)
					}
					if j > 0 && r.TS < part[j-1].TS {
						t.Fatalf("count %d p %d subtask %d: timestamp %d after %d", count, p, s, r.TS, part[j-1].TS)
					}
				}
				total += len(part)
			}
			if total != count {
				t.Fatalf("count %d p %d: %d records together", count, p, total)
			}
		}
	}
}

// TestNexmarkRescaleExactlyOnce: over random rescale sequences with random
// progress, every event is produced exactly once (see rescaleRun).
func TestNexmarkRescaleExactlyOnce(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	c := nexmarkRegistry(t)
	const max = 300
	// Events are told apart by their bytes: map each to its number.
	g := defaultGenerator(t, nil)
	index := map[string]int{}
	for n := 0; n < max; n++ {
		v := string(g.AppendRow(nil, int64(n)))
		if _, dup := index[v]; dup {
			t.Fatalf("events %d and %d are equal", index[v], n)
		}
		index[v] = n
	}
	for iter := 0; iter < 300; iter++ {
		total := 1 + rng.IntN(max)
		mk := newSource(t, c, "nexmark", fmt.Sprintf(`{"count": %d}`, total))
		counts, maxSnap, trace := rescaleRun(t, rng, mk, func(r rec) int {
			n, ok := index[r.Value]
			if !ok {
				t.Fatalf("unknown event %q", r.Value)
			}
			return n
		}, total)
		checkExactlyOnce(t, counts, trace)
		if maxSnap > 256 {
			t.Fatalf("parallelisms %v: a snapshot of %d bytes", trace, maxSnap)
		}
	}
}

// TestNexmarkRestoreAcrossParallelism: a checkpoint taken at parallelism 3
// restored at 2 completes the stream; the format may change, the count may
// not, and a datagen snapshot is refused.
func TestNexmarkRestoreAcrossParallelism(t *testing.T) {
	c := nexmarkRegistry(t)
	mk := newSource(t, c, "nexmark", `{"count": 60}`)
	clk := clock.NewFake(time.Unix(0, 0))
	rng := rand.New(rand.NewPCG(3, 4))
	got := map[string]int{}
	states := make([][]byte, 3)
	for s := 0; s < 3; s++ {
		src := openRestored(t, mk, s, 3, nil, clk)
		var col collector
		pollN(t, rng, src, 1+s, &col)
		for _, r := range col.recs {
			got[r.Value]++
		}
		var err error
		if states[s], err = src.Snapshot(); err != nil {
			t.Fatal(err)
		}
	}
	for s := 0; s < 2; s++ {
		for _, r := range drainRestored(t, mk, s, 2, states) {
			got[r.Value]++
		}
	}
	whole := drain(t, mk(), 0, 1, 60)
	for n, r := range whole {
		if got[r.Value] != 1 {
			t.Fatalf("event %d produced %d times", n, got[r.Value])
		}
	}
	if len(got) != 60 {
		t.Fatalf("%d distinct events, want 60", len(got))
	}

	// The format may change: the restored subtask continues in JSON.
	jsonSrc := newSource(t, c, "nexmark", `{"count": 60, "format": "json"}`)
	rest := drainRestored(t, jsonSrc, 0, 1, states)
	if len(rest) == 0 || !bytes.HasPrefix([]byte(rest[0].Value), []byte(`{"event_type":`)) {
		t.Fatalf("restored in JSON: %v", rest)
	}

	for _, tc := range []struct {
		name, config string
		states       [][]byte
		want         string
	}{
		{"other count", `{"count": 61}`, states, `nexmark source node "node" subtask 0: restore: snapshot of old subtask 0: count differs: the checkpoint was taken with count 60, the config has 61`},
		{"datagen snapshot", `{"count": 60}`, func() [][]byte {
			src := openRestored(t, newSource(t, c, "datagen", `{"count": 60}`), 0, 1, nil, clk)
			b, err := src.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			return [][]byte{b}
		}(), `snapshot of a datagen source, want a`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := newSource(t, c, "nexmark", tc.config)().(runtime.CheckpointedSource)
			wantErr(t, src.Restore(taskInfo(0, 1, nil), tc.states), tc.want)
		})
	}
}

// TestNexmarkRateOverNode: the rate is over the node, so each of two
// subtasks delivers half of it, on the task clock.
func TestNexmarkRateOverNode(t *testing.T) {
	c := nexmarkRegistry(t)
	fake := clock.NewFake(time.Unix(1000, 0))
	mk := newSource(t, c, "nexmark", `{"rate": 20, "count": 9}`)
	ctx := context.Background()
	src := mk()
	if err := src.Open(ctx, taskInfo(1, 2, fake)); err != nil {
		t.Fatal(err)
	}
	check := func(step string, res pollResult, n int, done bool) {
		t.Helper()
		if res.err != nil || res.n != n || res.done != done {
			t.Fatalf("%s: %d records, done=%v, err=%v; want %d, done=%v", step, res.n, res.done, res.err, n, done)
		}
	}
	// Subtask 1 of 2 owns events 1, 3, 5, 7: one due at once, then one
	// every 100 ms (10/s).
	check("first poll", <-pollAsync(ctx, src, 100), 1, false)
	ch := pollAsync(ctx, src, 100)
	waitForClockWaiter(t, fake, 1)
	fake.Advance(99 * time.Millisecond)
	select {
	case res := <-ch:
		t.Fatalf("Poll returned %+v before the event was due", res)
	default:
	}
	fake.Advance(time.Millisecond)
	check("after 100ms", <-ch, 1, false)
	fake.Advance(time.Second)
	check("the rest", <-pollAsync(ctx, src, 100), 2, true)
}

func TestNexmarkPollWithoutOpen(t *testing.T) {
	c := nexmarkRegistry(t)
	src := newSource(t, c, "nexmark", `{}`)()
	if _, err := src.Poll(context.Background(), &collector{}, 1); err == nil {
		t.Fatal("Poll before Open succeeded")
	}
	if _, err := src.(runtime.CheckpointedSource).Snapshot(); err == nil {
		t.Fatal("Snapshot before Open succeeded")
	}
	wantErr(t, src.Open(context.Background(), taskInfo(2, 2, nil)), "subtask 2 out of range for parallelism 2")
}

// BenchmarkNexmarkPoll measures Poll into a batch encoder: the source's
// events per second, copy into the batch included. One op is one event.
func BenchmarkNexmarkPoll(b *testing.B) {
	for _, bc := range []struct{ name, config string }{
		{"row", `{}`},
		{"json", `{"format": "json"}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			plan, err := newNexmarkPlan([]byte(bc.config))
			if err != nil {
				b.Fatal(err)
			}
			benchPoll(b, newNexmarkSource(plan), "events")
		})
	}
}

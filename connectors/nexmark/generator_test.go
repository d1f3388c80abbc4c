package nexmark

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
)

func mustGenerator(t testing.TB, c Config) *Generator {
	t.Helper()
	g, err := NewGenerator(c)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestProportions: every window of total consecutive events (ids) holds
// exactly the proportions, in the order persons, auctions, bids.
func TestProportions(t *testing.T) {
	for _, tc := range []struct {
		name       string
		p, a, b    int
		firstID    int64
		firstEvent int64
	}{
		{"default", 1, 3, 46, 1, 1},
		{"from zero", 1, 3, 46, 0, 0},
		{"2:5:13", 2, 5, 13, 7, 3},
		{"bids only", 0, 0, 1, 0, 0},
		{"no bids", 1, 1, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.PersonProportion, c.AuctionProportion, c.BidProportion = tc.p, tc.a, tc.b
			c.FirstEventID, c.FirstEventNumber = tc.firstID, tc.firstEvent
			g := mustGenerator(t, c)
			total := int64(tc.p + tc.a + tc.b)
			for start := int64(0); start < 20*total; start += total {
				var count [3]int
				for n := start; n < start+total; n++ {
					count[g.Type(n)]++
				}
				if count != [3]int{tc.p, tc.a, tc.b} {
					t.Fatalf("events %d..%d: %v persons, auctions, bids; want %d:%d:%d", start, start+total-1, count, tc.p, tc.a, tc.b)
				}
			}
			// The type follows the event id: the first ids of each epoch
			// are persons, then auctions, then bids.
			for n := int64(0); n < 3*total; n++ {
				id := c.FirstEventID + c.FirstEventNumber + n
				want := BidType
				switch rem := id % total; {
				case rem < int64(tc.p):
					want = PersonType
				case rem < int64(tc.p+tc.a):
					want = AuctionType
				}
				if got := g.Type(n); got != want {
					t.Fatalf("event %d (id %d): %s, want %s", n, id, got, want)
				}
			}
		})
	}
}

// TestIDsAndRanges checks the invariants the queries rely on over the
// first 200,000 events: people and auctions are numbered consecutively
// from 1000 in event order, references point to existing (or a few ids
// ahead) people and auctions, and the value ranges hold.
func TestIDsAndRanges(t *testing.T) {
	c := DefaultConfig()
	g := mustGenerator(t, c)
	const events = 200_000
	// Ids before the first event's (FirstEventID+FirstEventNumber) count
	// as created: the stream starts there.
	before := c.FirstEventID + c.FirstEventNumber - 1
	nextPerson := FirstPersonID + g.lastPerson(before) + 1
	nextAuction := FirstAuctionID + g.lastAuction(before) + 1
	var e Event
	var hotAuction, hotBidder, hotSeller, hotChannel, bids, auctions int
	for n := int64(0); n < events; n++ {
		g.Event(n, &e)
		switch e.Type {
		case PersonType:
			p := &e.Person
			if p.ID != nextPerson {
				t.Fatalf("event %d: person %d, want %d", n, p.ID, nextPerson)
			}
			nextPerson++
			if !strings.Contains(p.EmailAddress, "@") || !strings.HasSuffix(p.EmailAddress, ".com") || len(p.CreditCard) != 19 {
				t.Fatalf("event %d: %+v", n, p)
			}
		case AuctionType:
			a := &e.Auction
			auctions++
			if a.ID != nextAuction {
				t.Fatalf("event %d: auction %d, want %d", n, a.ID, nextAuction)
			}
			nextAuction++
			// A seller is a person created so far or up to personIDLead
			// ids ahead.
			if a.Seller < FirstPersonID || a.Seller >= nextPerson+personIDLead {
				t.Fatalf("event %d: seller %d, people so far < %d", n, a.Seller, nextPerson)
			}
			if a.Seller == (nextPerson-1-FirstPersonID)/hotSellerRatio*hotSellerRatio+FirstPersonID {
				hotSeller++
			}
			if a.Category < FirstCategoryID || a.Category >= FirstCategoryID+numCategories {
				t.Fatalf("event %d: category %d", n, a.Category)
			}
			if a.InitialBid < 100 || a.InitialBid > 100_000_000 || a.Reserve < a.InitialBid || a.Expires <= a.DateTime {
				t.Fatalf("event %d: %+v", n, a)
			}
		case BidType:
			b := &e.Bid
			bids++
			if b.Auction < FirstAuctionID || b.Auction >= nextAuction+auctionIDLead {
				t.Fatalf("event %d: auction %d, auctions so far < %d", n, b.Auction, nextAuction)
			}
			// Bidders are person ids + 1000 (the reference adds
			// FIRST_PERSON_ID twice).
			if b.Bidder < 2*FirstPersonID || b.Bidder >= nextPerson+FirstPersonID+personIDLead {
				t.Fatalf("event %d: bidder %d, people so far < %d", n, b.Bidder, nextPerson)
			}
			if b.Auction == (nextAuction-1-FirstAuctionID)/hotAuctionRatio*hotAuctionRatio+FirstAuctionID {
				hotAuction++
			}
			if b.Bidder == (nextPerson-1-FirstPersonID)/hotBidderRatio*hotBidderRatio+1+2*FirstPersonID {
				hotBidder++
			}
			switch b.Channel {
			case "Google", "Facebook", "Baidu", "Apple":
				hotChannel++
				if !strings.HasSuffix(b.URL, "/item.htm?query=1") {
					t.Fatalf("event %d: hot channel URL %q", n, b.URL)
				}
			default:
				if !strings.HasPrefix(b.Channel, "channel-") || !strings.HasPrefix(b.URL, "https://www.nexmark.com/") {
					t.Fatalf("event %d: channel %q URL %q", n, b.Channel, b.URL)
				}
			}
			if b.Price < 100 || b.Price > 100_000_000 {
				t.Fatalf("event %d: price %d", n, b.Price)
			}
		}
	}
	// Hot with probability 1 - 1/ratio, plus the few random picks that
	// land on the hot one anyway.
	for _, r := range []struct {
		what      string
		got, of   int
		want, tol float64
	}{
		{"bids for the hot auction (hotAuctionRatio 2)", hotAuction, bids, 0.5, 0.03},
		{"bids by the hot bidder (hotBiddersRatio 4)", hotBidder, bids, 0.75, 0.03},
		{"auctions by the hot seller (hotSellersRatio 4)", hotSeller, auctions, 0.75, 0.03},
		{"bids on a hot channel", hotChannel, bids, 0.5, 0.03},
	} {
		if f := float64(r.got) / float64(r.of); math.Abs(f-r.want) > r.tol {
			t.Errorf("%s: %.3f, want %.2f ± %.2f", r.what, f, r.want, r.tol)
		}
	}
}

// TestEventSizes: extras bring each type to its average size.
func TestEventSizes(t *testing.T) {
	c := DefaultConfig()
	c.AvgBidByteSize, c.AvgPersonByteSize, c.AvgAuctionByteSize = 300, 400, 1000
	g := mustGenerator(t, c)
	var sum, count [3]float64
	var e Event
	for n := int64(0); n < 50_000; n++ {
		g.Event(n, &e)
		var size int
		switch e.Type {
		case PersonType:
			p := &e.Person
			size = 8 + len(p.Name) + len(p.EmailAddress) + len(p.CreditCard) + len(p.City) + len(p.State) + len(p.Extra)
		case AuctionType:
			a := &e.Auction
			size = 48 + len(a.ItemName) + len(a.Description) + len(a.Extra)
		case BidType:
			size = 32 + len(e.Bid.Extra)
		}
		sum[e.Type] += float64(size)
		count[e.Type]++
	}
	for typ, want := range []float64{400, 1000, 300} {
		if avg := sum[typ] / count[typ]; math.Abs(avg-want) > want*0.02 {
			t.Errorf("%s: average size %.1f, want %.0f", Type(typ), avg, want)
		}
	}
}

// TestTimestamps: timestamps follow the event number at FirstEventRate,
// never decrease without out-of-order groups, and within out-of-order
// groups the event numbers are a permutation of the group.
func TestTimestamps(t *testing.T) {
	for _, rate := range []int{1, 7, 1000, 10000, 1234567} {
		c := DefaultConfig()
		c.FirstEventRate = rate
		g := mustGenerator(t, c)
		prev := int64(math.MinInt64)
		for n := int64(0); n < 20000; n++ {
			ts := g.Timestamp(n)
			// (n+1) events of 1e6/rate µs each, in exact arithmetic
			// (the float formula agrees at these magnitudes).
			if want := c.BaseTime + (n+1)*1000000/int64(rate)/1000; ts != want {
				t.Fatalf("rate %d: Timestamp(%d) = %d, want %d", rate, n, ts, want)
			}
			if ts < prev {
				t.Fatalf("rate %d: Timestamp(%d) = %d < %d", rate, n, ts, prev)
			}
			prev = ts
		}
	}
	c := DefaultConfig()
	c.OutOfOrderGroupSize = 10
	c.FirstEventNumber = 0
	g := mustGenerator(t, c)
	for group := int64(0); group < 50; group++ {
		seen := map[int64]bool{}
		var e Event
		for n := group * 10; n < group*10+10; n++ {
			num := g.adjustedNumber(n)
			if num/10 != group || seen[num] {
				t.Fatalf("event %d: number %d (group %d, seen %v)", n, num, group, seen)
			}
			seen[num] = true
			g.Event(n, &e)
			if e.Timestamp() != g.timestampFor(num) {
				t.Fatalf("event %d: time %d, number %d has %d", n, e.Timestamp(), num, g.timestampFor(num))
			}
		}
	}
}

// TestSeed: seed 0 is the reference (TestGolden); other seeds change the
// random fields but not the formulas of the event number.
func TestSeed(t *testing.T) {
	c := DefaultConfig()
	ref := mustGenerator(t, c)
	c.Seed = 42
	seeded := mustGenerator(t, c)
	c.Seed = 43
	other := mustGenerator(t, c)
	var a, b, o Event
	same, sameOther := 0, 0
	for n := int64(0); n < 1000; n++ {
		ref.Event(n, &a)
		seeded.Event(n, &b)
		other.Event(n, &o)
		if a.Type != b.Type || a.Timestamp() != b.Timestamp() {
			t.Fatalf("event %d: seed changed type or time: %v %v", n, a, b)
		}
		switch a.Type {
		case PersonType:
			if a.Person.ID != b.Person.ID {
				t.Fatalf("event %d: seed changed the person id", n)
			}
		case AuctionType:
			if a.Auction.ID != b.Auction.ID {
				t.Fatalf("event %d: seed changed the auction id", n)
			}
		}
		if bytes.Equal(ref.AppendRow(nil, n), seeded.AppendRow(nil, n)) {
			same++
		}
		if bytes.Equal(other.AppendRow(nil, n), seeded.AppendRow(nil, n)) {
			sameOther++
		}
	}
	if same > 0 || sameOther > 0 {
		t.Fatalf("%d events equal with seeds 0 and 42, %d with 42 and 43", same, sameOther)
	}
}

// TestRowRoundTrip: the generated row decodes into the event Event
// returns, and re-encodes to the same bytes; appending keeps dst's prefix.
func TestRowRoundTrip(t *testing.T) {
	g := mustGenerator(t, DefaultConfig())
	prefix := []byte("keep")
	var e Event
	for n := int64(0); n < 5000; n++ {
		b := g.AppendRow(append([]byte(nil), prefix...), n)
		if !bytes.HasPrefix(b, prefix) {
			t.Fatalf("event %d: prefix lost", n)
		}
		g.Event(n, &e)
		if again := e.AppendRow(nil); !bytes.Equal(again, b[len(prefix):]) {
			t.Fatalf("event %d: Event re-encodes differently", n)
		}
		if typ, err := EventType(b[len(prefix):]); err != nil || typ != e.Type {
			t.Fatalf("event %d: EventType %v %v", n, typ, err)
		}
	}
}

// TestJSON: every rendering is valid JSON with the reference's members,
// and holds the event's values.
func TestJSON(t *testing.T) {
	g := mustGenerator(t, DefaultConfig())
	type person struct {
		ID                                   int64
		Name, EmailAddress, CreditCard, City string
		State, DateTime, Extra               string
	}
	type auction struct {
		ID                    int64
		ItemName, Description string
		InitialBid, Reserve   int64
		DateTime, Expires     string
		Seller, Category      int64
		Extra                 string
	}
	type bid struct {
		Auction, Bidder, Price int64
		Channel, URL           string
		DateTime, Extra        string
	}
	var e Event
	for n := int64(0); n < 3000; n++ {
		b := g.AppendJSON([]byte("x"), n)[1:]
		var got struct {
			EventType int      `json:"event_type"`
			Person    *person  `json:"person"`
			Auction   *auction `json:"auction"`
			Bid       *bid     `json:"bid"`
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&got); err != nil {
			t.Fatalf("event %d: %v in %s", n, err, b)
		}
		g.Event(n, &e)
		if got.EventType != int(e.Type) || (got.Person != nil) != (e.Type == PersonType) ||
			(got.Auction != nil) != (e.Type == AuctionType) || (got.Bid != nil) != (e.Type == BidType) {
			t.Fatalf("event %d: %s", n, b)
		}
		switch e.Type {
		case PersonType:
			if got.Person.ID != e.Person.ID || got.Person.Extra != e.Person.Extra || got.Person.Name != e.Person.Name {
				t.Fatalf("event %d: %s", n, b)
			}
		case AuctionType:
			if got.Auction.Reserve != e.Auction.Reserve || got.Auction.Extra != e.Auction.Extra || got.Auction.Description != e.Auction.Description {
				t.Fatalf("event %d: %s", n, b)
			}
		case BidType:
			if got.Bid.Price != e.Bid.Price || got.Bid.Extra != e.Bid.Extra || got.Bid.URL != e.Bid.URL {
				t.Fatalf("event %d: %s", n, b)
			}
		}
	}
}

func TestSQLTimestamp(t *testing.T) {
	// Expected strings printed by java.time with Flink's SQL timestamp
	// formatter (testdata/README.md).
	for _, tc := range []struct {
		ms   int64
		want string
	}{
		{0, "1970-01-01 00:00:00"},
		{1, "1970-01-01 00:00:00.001"},
		{120, "1970-01-01 00:00:00.12"},
		{500, "1970-01-01 00:00:00.5"},
		{999, "1970-01-01 00:00:00.999"},
		{1767225600010, "2026-01-01 00:00:00.01"},
		{253402300799999, "9999-12-31 23:59:59.999"},
		{253402300800000, "+10000-01-01 00:00:00"},
		{9225139262454775, "+294303-01-11 04:00:54.775"},
		{-1, "1969-12-31 23:59:59.999"},
		{-62135596800001, "0000-12-31 23:59:59.999"},
	} {
		if got := string(appendSQLTimestamp(nil, tc.ms)); got != `"`+tc.want+`"` {
			t.Errorf("%d: %s, want %q", tc.ms, got, tc.want)
		}
	}
}

func TestJSONString(t *testing.T) {
	got := string(appendJSONString(nil, []byte("a\"b\\c\n\x01\x7f")))
	if want := `"a\"b\\c\n\u0001` + "\x7f" + `"`; got != want {
		t.Fatalf("%s, want %s", got, want)
	}
	if !json.Valid([]byte(got)) {
		t.Fatal("not valid JSON")
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*Config)
		field string
	}{
		{"default", func(*Config) {}, ""},
		{"rate 0", func(c *Config) { c.FirstEventRate = 0 }, "firstEventRate"},
		{"next rate differs", func(c *Config) { c.NextEventRate = 5 }, "nextEventRate"},
		{"next rate equal", func(c *Config) { c.NextEventRate = 10000 }, ""},
		{"negative proportion", func(c *Config) { c.AuctionProportion = -1 }, "auctionProportion"},
		{"all proportions 0", func(c *Config) { c.PersonProportion, c.AuctionProportion, c.BidProportion = 0, 0, 0 }, "bidProportion"},
		{"huge proportion", func(c *Config) { c.BidProportion = maxProportion + 1 }, "bidProportion"},
		{"negative size", func(c *Config) { c.AvgBidByteSize = -1 }, "avgBidByteSize"},
		{"huge size", func(c *Config) { c.AvgAuctionByteSize = MaxAvgByteSize + 1 }, "avgAuctionByteSize"},
		{"hot ratio 0", func(c *Config) { c.HotSellersRatio = 0 }, "hotSellersRatio"},
		{"negative active people", func(c *Config) { c.NumActivePeople = -1 }, "numActivePeople"},
		{"negative in-flight", func(c *Config) { c.NumInFlightAuctions = -5 }, "numInFlightAuctions"},
		{"group 0", func(c *Config) { c.OutOfOrderGroupSize = 0 }, "outOfOrderGroupSize"},
		{"negative base time", func(c *Config) { c.BaseTime = -1 }, "baseTime"},
		{"negative first id", func(c *Config) { c.FirstEventID = -1 }, "firstEventId"},
		{"negative first number", func(c *Config) { c.FirstEventNumber = -1 }, "firstEventNumber"},
		{"zero config", func(c *Config) { *c = Config{} }, "firstEventRate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(&c)
			_, err := NewGenerator(c)
			var ce *ConfigError
			switch {
			case tc.field == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tc.field != "" && !errors.As(err, &ce):
				t.Fatalf("error %v, want a *ConfigError", err)
			case tc.field != "" && ce.Field != tc.field:
				t.Fatalf("error names %q, want %q: %v", ce.Field, tc.field, err)
			}
		})
	}
}

// TestConcurrentUse: a Generator shared by goroutines gives each the same
// events (run with -race).
func TestConcurrentUse(t *testing.T) {
	g := mustGenerator(t, DefaultConfig())
	want := make([][]byte, 500)
	for n := range want {
		want[n] = g.AppendRow(nil, int64(n))
	}
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for n := len(want) - 1; n >= 0; n-- {
				buf = g.AppendRow(buf[:0], int64(n))
				if !bytes.Equal(buf, want[n]) {
					errs <- "event differs under concurrency"
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

func TestAppendAllocs(t *testing.T) {
	g := mustGenerator(t, DefaultConfig())
	buf := make([]byte, 0, 64<<10)
	n := int64(0)
	if a := testing.AllocsPerRun(2000, func() {
		buf = g.AppendRow(buf[:0], n)
		n++
	}); a != 0 {
		t.Errorf("AppendRow: %v allocations per event", a)
	}
	if a := testing.AllocsPerRun(2000, func() {
		buf = g.AppendJSON(buf[:0], n)
		n++
	}); a != 0 {
		t.Errorf("AppendJSON: %v allocations per event", a)
	}
}

func TestNegativeEventNumberPanics(t *testing.T) {
	g := mustGenerator(t, DefaultConfig())
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	g.AppendRow(nil, -1)
}

// BenchmarkAppendRow measures the generator's hot path, one op per event
// over the default mix (1 person, 3 auctions, 46 bids per 50 events).
func BenchmarkAppendRow(b *testing.B) {
	g := mustGenerator(b, DefaultConfig())
	buf := make([]byte, 0, 64<<10)
	b.ReportAllocs()
	bytes := 0
	for n := int64(0); n < int64(b.N); n++ {
		buf = g.AppendRow(buf[:0], n)
		bytes += len(buf)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(bytes)/float64(b.N), "B/event")
}

// BenchmarkAppendRowByType separates the three generators.
func BenchmarkAppendRowByType(b *testing.B) {
	g := mustGenerator(b, DefaultConfig())
	for _, typ := range []Type{PersonType, AuctionType, BidType} {
		var ns []int64
		for n := int64(0); len(ns) < 1000; n++ {
			if g.Type(n) == typ {
				ns = append(ns, n)
			}
		}
		b.Run(typ.String(), func(b *testing.B) {
			buf := make([]byte, 0, 64<<10)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				buf = g.AppendRow(buf[:0], ns[i%len(ns)]+int64(i/len(ns))*50_000)
			}
		})
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	g := mustGenerator(b, DefaultConfig())
	buf := make([]byte, 0, 64<<10)
	b.ReportAllocs()
	for n := int64(0); n < int64(b.N); n++ {
		buf = g.AppendJSON(buf[:0], n)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

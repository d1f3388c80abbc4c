package nexmark

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestGolden compares events field by field with the reference generator's
// output (testdata/README.md says how the golden files were produced): the
// first events of each config, events far into the stream, and the JSON
// of some of them.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.golden")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			checkGoldenFile(t, file)
		})
	}
}

func checkGoldenFile(t *testing.T, file string) {
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 4<<20)
	var g *Generator
	events, jsons, fails := 0, 0, 0
	for line := 1; sc.Scan(); line++ {
		cols := strings.Split(sc.Text(), "\t")
		where := fmt.Sprintf("%s:%d", file, line)
		if cols[0] == "config" {
			c := DefaultConfig()
			for _, kv := range cols[2:] {
				k, v, _ := strings.Cut(kv, "=")
				if err := setGoldenField(&c, k, v); err != nil {
					t.Fatalf("%s: %v", where, err)
				}
			}
			if g, err = NewGenerator(c); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			continue
		}
		if g == nil {
			t.Fatalf("%s: event before the config line", where)
		}
		n, err := strconv.ParseInt(cols[0], 10, 64)
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		if cols[1] == "json" {
			jsons++
			if got := string(g.AppendJSON([]byte("prefix"), n))[len("prefix"):]; got != cols[2] {
				t.Errorf("%s: event %d JSON\n got %s\nwant %s", where, n, got, cols[2])
				fails++
			}
			continue
		}
		events++
		var e Event
		g.Event(n, &e)
		if got := eventColumns(&e); got != strings.Join(cols[1:], "\t") {
			t.Errorf("%s: event %d\n got %s\nwant %s", where, n, got, strings.Join(cols[1:], "\t"))
			fails++
		}
		if ts := g.Timestamp(n); ts != e.Timestamp() {
			t.Errorf("%s: Timestamp(%d) = %d, the event's is %d", where, n, ts, e.Timestamp())
		}
		if typ := g.Type(n); typ != e.Type {
			t.Errorf("%s: Type(%d) = %s, the event is a %s", where, n, typ, e.Type)
		}
		if fails > 10 {
			t.Fatal("too many differences")
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if events < 200 {
		t.Fatalf("only %d events checked", events)
	}
	t.Logf("%d events, %d JSON renderings equal the reference's", events, jsons)
}

// TestGoldenDigest compares the first million events of the default
// config, every field in full, with digests the reference computed
// (testdata/digest.txt, from Digest.java in testdata/README.md): a
// running hash over the events, printed every 250,000 events. -short
// checks the first 250,000.
func TestGoldenDigest(t *testing.T) {
	f, err := os.Open("testdata/digest.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[int64]int64{}
	last := int64(0)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var n, h int64
		if _, err := fmt.Sscan(sc.Text(), &n, &h); err != nil {
			t.Fatalf("digest.txt: %q: %v", sc.Text(), err)
		}
		want[n] = h
		last = max(last, n)
	}
	if testing.Short() {
		last = 250_000
	}
	g, err := NewGenerator(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	var e Event
	var h int64
	for n := int64(0); n < last; n++ {
		g.Event(n, &e)
		h = h*1000003 + eventDigest(&e)
		if w, ok := want[n+1]; ok && h != w {
			t.Fatalf("the events before %d differ from the reference's (digest %d, want %d)", n+1, h, w)
		}
	}
}

// eventDigest is Digest.java's hash of one event.
func eventDigest(e *Event) int64 {
	switch e.Type {
	case PersonType:
		p := &e.Person
		return p.ID*31 + int64(javaHash(p.Name, "|", p.EmailAddress, "|", p.CreditCard, "|", p.City, "|", p.State, "|", p.Extra)) + p.DateTime
	case AuctionType:
		a := &e.Auction
		return a.ID*31 + int64(javaHash(a.ItemName, "|", a.Description, "|", a.Extra)) + a.InitialBid*7 + a.Reserve*11 +
			a.DateTime*13 + a.Expires*17 + a.Seller*19 + a.Category*23
	default:
		b := &e.Bid
		return b.Auction*31 + b.Bidder*37 + b.Price*41 + int64(javaHash(b.Channel, "|", b.URL, "|", b.Extra)) + b.DateTime*43
	}
}

// javaHash is Java's String.hashCode of the concatenated parts (ASCII).
func javaHash(parts ...string) int32 {
	var h int32
	for _, s := range parts {
		for i := 0; i < len(s); i++ {
			h = 31*h + int32(s[i])
		}
	}
	return h
}

// eventColumns renders e as the golden files do: the type, the fields in
// row order, times in epoch milliseconds, and the extra field as its
// length and Java String.hashCode.
func eventColumns(e *Event) string {
	var f []string
	add := func(vs ...any) {
		for _, v := range vs {
			f = append(f, fmt.Sprint(v))
		}
	}
	switch e.Type {
	case PersonType:
		p := &e.Person
		add("person", p.ID, p.Name, p.EmailAddress, p.CreditCard, p.City, p.State, p.DateTime, extraDigest(p.Extra))
	case AuctionType:
		a := &e.Auction
		add("auction", a.ID, a.ItemName, a.Description, a.InitialBid, a.Reserve, a.DateTime, a.Expires, a.Seller, a.Category, extraDigest(a.Extra))
	default:
		b := &e.Bid
		add("bid", b.Auction, b.Bidder, b.Price, b.Channel, b.URL, b.DateTime, extraDigest(b.Extra))
	}
	return strings.Join(f, "\t")
}

func extraDigest(s string) string {
	return fmt.Sprintf("%d:%d", len(s), javaHash(s))
}

// setGoldenField sets the Config field named as GoldenMain's arguments
// name it (the reference's NexmarkConfiguration names).
func setGoldenField(c *Config, k, v string) error {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return fmt.Errorf("%s: %w", k, err)
	}
	ints := map[string]*int{
		"firstEventRate": &c.FirstEventRate, "personProportion": &c.PersonProportion,
		"auctionProportion": &c.AuctionProportion, "bidProportion": &c.BidProportion,
		"avgPersonByteSize": &c.AvgPersonByteSize, "avgAuctionByteSize": &c.AvgAuctionByteSize,
		"avgBidByteSize": &c.AvgBidByteSize, "hotAuctionRatio": &c.HotAuctionRatio,
		"hotSellersRatio": &c.HotSellersRatio, "hotBiddersRatio": &c.HotBiddersRatio,
		"numActivePeople": &c.NumActivePeople, "numInFlightAuctions": &c.NumInFlightAuctions,
	}
	longs := map[string]*int64{
		"outOfOrderGroupSize": &c.OutOfOrderGroupSize, "baseTime": &c.BaseTime,
		"firstEventId": &c.FirstEventID, "firstEventNumber": &c.FirstEventNumber,
	}
	switch {
	case ints[k] != nil:
		*ints[k] = int(n)
		if k == "firstEventRate" {
			c.NextEventRate = int(n)
		}
	case longs[k] != nil:
		*longs[k] = n
	default:
		return fmt.Errorf("unknown config key %q", k)
	}
	return nil
}

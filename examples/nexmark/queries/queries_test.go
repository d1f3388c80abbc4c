package queries

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/connectors/nexmark"
	"github.com/weirstream/weir/sdk/sdktest"
)

// t0 is a time at a multiple of 10 s (and so of every window size here).
const t0 = 1_700_000_000_000

func bidRow(auction, bidder, price, dateTime int64, extra string) []byte {
	e := nexmark.Event{Type: nexmark.BidType, Bid: nexmark.Bid{Auction: auction, Bidder: bidder, Price: price,
		Channel: "Google", URL: "https://www.nexmark.com/x/y/z/item.htm?query=1", DateTime: dateTime, Extra: extra}}
	return e.AppendRow(nil)
}

func personRow(id int64, name, city, state string, dateTime int64) []byte {
	e := nexmark.Event{Type: nexmark.PersonType, Person: nexmark.Person{ID: id, Name: name, EmailAddress: "a@b.c",
		CreditCard: "1234 5678 9012 3456", City: city, State: state, DateTime: dateTime, Extra: "x"}}
	return e.AppendRow(nil)
}

func auctionRow(id, seller, category, dateTime, expires int64) []byte {
	e := nexmark.Event{Type: nexmark.AuctionType, Auction: nexmark.Auction{ID: id, ItemName: "item", Description: "desc",
		InitialBid: 100, Reserve: 200, DateTime: dateTime, Expires: expires, Seller: seller, Category: category, Extra: "x"}}
	return e.AppendRow(nil)
}

// event is an input record of a test: an event row at its dateTime, or a
// watermark (row nil).
type event struct {
	row []byte
	ts  int64
}

func wm(ts int64) event { return event{ts: ts} }

func bidAt(auction, bidder, price, dateTime int64, extra string) event {
	return event{bidRow(auction, bidder, price, dateTime, extra), dateTime}
}

func personAt(id int64, name, city, state string, dateTime int64) event {
	return event{personRow(id, name, city, state, dateTime), dateTime}
}

func auctionAt(id, seller, category, dateTime, expires int64) event {
	return event{auctionRow(id, seller, category, dateTime, expires), dateTime}
}

// stage is one operator of a pipeline under test.
type stage struct {
	op     string
	config string
}

// run sends the events through the stages, one harness per stage, each
// stage's main output (with its keys and timestamps) becoming the next
// one's input, watermarks passed on after the records before them, and
// finally the last watermark (MaxWatermark, as at the end of bounded
// input). It returns the last stage's output values in order and the
// harnesses (for their state), and fails on late output.
func run(t *testing.T, events []event, stages ...stage) ([]string, []*sdktest.Harness) {
	t.Helper()
	hs := make([]*sdktest.Harness, len(stages))
	for i, s := range stages {
		h, err := sdktest.New(s.op, sdktest.Options{Config: s.config})
		if err != nil {
			t.Fatalf("open %s: %v", s.op, err)
		}
		hs[i] = h
	}
	// deliver hands one event to stage i and what it emits to the stages
	// after it.
	var deliver func(i int, key, value []byte, ts int64, watermark bool)
	deliver = func(i int, key, value []byte, ts int64, watermark bool) {
		t.Helper()
		if i == len(hs) {
			return
		}
		h := hs[i]
		var err error
		if watermark {
			err = h.Watermark(ts)
		} else {
			err = h.Record(string(key), string(value), ts)
		}
		if err != nil {
			t.Fatalf("%s: %v", stages[i].op, err)
		}
		if i == len(hs)-1 {
			return
		}
		for _, o := range h.TakeOutput() {
			if o.Tag != abi.TagMain {
				t.Fatalf("%s: late output %v", stages[i].op, o)
			}
			deliver(i+1, []byte(o.Key), []byte(o.Value), o.Timestamp, false)
		}
		if watermark {
			deliver(i+1, nil, nil, ts, true)
		}
	}
	for _, e := range events {
		deliver(0, nil, e.row, e.ts, e.row == nil)
	}
	deliver(0, nil, nil, abi.MaxWatermark, true)
	var out []string
	for _, o := range hs[len(hs)-1].TakeOutput() {
		if o.Tag != abi.TagMain {
			t.Fatalf("%s: late output %v", stages[len(hs)-1].op, o)
		}
		out = append(out, o.Value)
	}
	return out, hs
}

// noState fails if any stage kept state.
func noState(t *testing.T, hs []*sdktest.Harness) {
	t.Helper()
	for _, h := range hs {
		if d := h.State.Dump(); len(d) > 0 {
			t.Errorf("state left: %v", d)
		}
	}
}

func sorted(s []string) string {
	s = slices.Clone(s)
	slices.Sort(s)
	return strings.Join(s, "\n")
}

func TestStateless(t *testing.T) {
	events := []event{
		personAt(1000, "Ann Smith", "Boise", "ID", t0),
		auctionAt(1000, 1000, 10, t0+1, t0+100),
		bidAt(1230, 1001, 123, t0+2, "plain extra"),
		bidAt(1231, 1002, 7, t0+3, `with, comma and "quotes"`),
		bidAt(0, 1003, 1, t0+4, ""),
		bidAt(-246, -1, -7, -1, "negative"),
		bidAt(1e16, 1e17, 1e16+1, 1<<62, "large"),
	}
	for _, c := range []struct {
		op   string
		want []string
	}{
		{Q0, []string{
			"1230,1001,123,1700000000002,plain extra",
			`1231,1002,7,1700000000003,"with, comma and ""quotes"""`,
			"0,1003,1,1700000000004,",
			"-246,-1,-7,-1,negative",
			"10000000000000000,100000000000000000,10000000000000001,4611686018427387904,large",
		}},
		{Q1, []string{
			"1230,1001,111.684,1700000000002,plain extra",
			`1231,1002,6.356,1700000000003,"with, comma and ""quotes"""`,
			"0,1003,0.908,1700000000004,",
			"-246,-1,-6.356,-1,negative",
			"10000000000000000,100000000000000000,9080000000000000.908,4611686018427387904,large",
		}},
		{Q2, []string{"1230,123", "0,1", "-246,-7"}},
	} {
		t.Run(c.op, func(t *testing.T) {
			got, _ := run(t, events, stage{op: c.op})
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}

func TestBadRow(t *testing.T) {
	for _, op := range []string{Q0, Q3Prep, Q4Prep, Q5Prep, Q7Prep, Q8Prep} {
		h, err := sdktest.New(op, sdktest.Options{})
		if err != nil {
			t.Fatal(err)
		}
		err = h.Record("", "\x01garbage", t0)
		if err == nil || !strings.Contains(err.Error(), op) {
			t.Errorf("%s: a bad row gave %v, want an error naming the operator", op, err)
		}
	}
}

func TestQ3(t *testing.T) {
	events := []event{
		auctionAt(1, 7, 10, t0, t0+1000),  // before its seller
		auctionAt(2, 7, 3, t0+1, t0+1000), // another category
		personAt(7, "Ann", "Portland", "OR", t0+2),
		auctionAt(3, 7, 10, t0+3, t0+1000), // after its seller
		personAt(8, "Bob", "Bend", "WA", t0+4),
		auctionAt(4, 8, 10, t0+5, t0+1000), // seller in another state
		personAt(9, "Cy, Jr", "Los Angeles", "CA", t0+6),
		auctionAt(5, 9, 10, t0+7, t0+1000),
		auctionAt(6, 10, 10, t0+8, t0+1000), // a seller who never comes
	}
	got, _ := run(t, events, stage{op: Q3Prep}, stage{op: Q3Join})
	want := []string{"Ann,Portland,OR,1", "Ann,Portland,OR,3", `"Cy, Jr",Los Angeles,CA,5`}
	if sorted(got) != sorted(want) {
		t.Errorf("got\n%s\nwant\n%s", sorted(got), sorted(want))
	}
}

func TestQ4(t *testing.T) {
	events := []event{
		auctionAt(1, 100, 10, t0+1000, t0+5000),
		bidAt(1, 200, 999, t0+500, ""),   // before the auction started
		bidAt(1, 200, 10, t0+1000, ""),   // first: 10
		bidAt(1, 200, 5, t0+3000, ""),    // below the max
		bidAt(1, 200, 30, t0+5000, ""),   // at expires: 30
		bidAt(1, 200, 100, t0+5001, ""),  // after expires
		bidAt(2, 200, 7, t0+2000, ""),    // before its auction arrives
		bidAt(2, 200, 1000, t0+1400, ""), // before its auction arrives, and before it started
		auctionAt(2, 100, 10, t0+1500, t0+9000),
		bidAt(3, 200, 50, t0+2500, ""), // its auction never comes
		wm(t0 + 2500),                  // drops it
		auctionAt(4, 100, 11, t0+2600, t0+2700),
		bidAt(4, 200, 9, t0+2700, ""),
	}
	got, hs := run(t, events, stage{op: Q4Prep}, stage{op: Q4Max, config: `{"retention": "1s"}`}, stage{op: Q4Avg})
	want := []string{"10,10", "10,30", "10,18", "11,9"} // (30+7)/2 truncates
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The final watermark expired every auction: only the averages remain.
	if d := hs[1].State.Dump(); len(d) > 0 {
		t.Errorf("q4-max kept state: %v", d)
	}
}

func TestQ4EarlyBidDropped(t *testing.T) {
	events := []event{
		bidAt(3, 200, 50, t0+2500, ""),
		wm(t0 + 2500),
	}
	h, err := sdktest.New(Q4Max, sdktest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	prep, err := sdktest.New(Q4Prep, sdktest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := prep.Record("", string(events[0].row), events[0].ts); err != nil {
		t.Fatal(err)
	}
	o := prep.TakeOutput()[0]
	if err := h.Record(o.Key, o.Value, o.Timestamp); err != nil {
		t.Fatal(err)
	}
	if len(h.State.Dump()) == 0 {
		t.Fatal("the early bid was not kept")
	}
	if err := h.Watermark(t0 + 2499); err != nil {
		t.Fatal(err)
	}
	if len(h.State.Dump()) == 0 {
		t.Fatal("the early bid was dropped before the watermark reached it")
	}
	if err := h.Watermark(t0 + 2500); err != nil {
		t.Fatal(err)
	}
	if d := h.State.Dump(); len(d) > 0 {
		t.Errorf("the early bid was kept after the watermark passed it: %v", d)
	}
}

func TestQ4Config(t *testing.T) {
	for _, cfg := range []string{`{"retention": "x"}`, `{"retention": "-1s"}`, `{"retenton": "1s"}`} {
		if _, err := sdktest.New(Q4Max, sdktest.Options{Config: cfg}); err == nil {
			t.Errorf("config %s accepted", cfg)
		}
	}
}

func TestQ5(t *testing.T) {
	events := []event{
		bidAt(1, 9, 1, t0+1000, ""),
		bidAt(2, 9, 1, t0+1500, ""),
		bidAt(1, 9, 1, t0+3000, ""),
		bidAt(2, 9, 1, t0+11000, ""),
	}
	got, hs := run(t, events, stage{op: Q5Prep}, stage{op: Q5Count}, stage{op: Q5Max})
	// Windows [s, s+10 s) by s - t0: -8 s: 1:1 2:1; -6 s to 0: 1:2 2:1;
	// 2 s: 1:1 2:1; 4 s to 10 s: 2:1.
	want := []string{"1,1", "2,1", "1,2", "1,2", "1,2", "1,2", "1,1", "2,1", "2,1", "2,1", "2,1", "2,1"}
	if sorted(got) != sorted(want) {
		t.Errorf("got\n%s\nwant\n%s", sorted(got), sorted(want))
	}
	noState(t, hs)
}

func TestQ5Late(t *testing.T) {
	h, err := sdktest.New(Q5Count, sdktest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var k [16]byte
	key := func(auction, pane int64) string {
		int64Key((*[8]byte)(k[:8]), auction)
		int64Key((*[8]byte)(k[8:]), pane)
		return string(k[:])
	}
	var wk [8]byte
	window := func(end int64) sdktest.Output {
		return sdktest.Output{Key: string(int64Key(&wk, end)), Value: string(rowOf(1, 1)), Timestamp: end - 1}
	}
	if err := h.Watermark(t0 + 5999); err != nil {
		t.Fatal(err)
	}
	// Every window of the pane at t0-4 s ends by t0+6 s: late.
	if err := h.Record(key(1, t0-4000), "", t0-4000); err != nil {
		t.Fatal(err)
	}
	// The pane at t0 is in windows ending at t0+2 s to t0+10 s; those
	// ending by t0+6 s have fired, the bid counts in the other two, at once.
	if err := h.Record(key(1, t0), "", t0); err != nil {
		t.Fatal(err)
	}
	// The pane at t0+6 s has not passed: counted, sent when it does, to
	// its five windows.
	if err := h.Record(key(1, t0+6000), "", t0+6000); err != nil {
		t.Fatal(err)
	}
	if err := h.Watermark(abi.MaxWatermark); err != nil {
		t.Fatal(err)
	}
	want := []sdktest.Output{
		{Tag: abi.TagLate, Key: key(1, t0-4000), Timestamp: t0 - 4000},
		window(t0 + 8000), window(t0 + 10000),
		window(t0 + 8000), window(t0 + 10000), window(t0 + 12000), window(t0 + 14000), window(t0 + 16000),
	}
	if got := h.TakeOutput(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("output\n%v\nwant\n%v", got, want)
	}
	if d := h.State.Dump(); len(d) > 0 {
		t.Errorf("state left: %v", d)
	}
}

func rowOf(vs ...int64) []byte {
	var b []byte
	for _, v := range vs {
		b = appendRowInt(b, v)
	}
	return b
}

func TestQ7(t *testing.T) {
	// Windows end at t0+10 s, t0+20 s, t0+30 s.
	b1 := bidAt(1, 11, 10, t0+1000, "b1")
	b2 := bidAt(2, 12, 50, t0+5000, "b2")
	b3 := bidAt(3, 13, 50, t0+9999, "b3, tied")
	b4 := bidAt(4, 14, 50, t0+10000, "b4") // in window 2, and at the end of window 1
	b5 := bidAt(5, 15, 40, t0+12000, "b5")
	b6 := bidAt(6, 16, 60, t0+20000, "b6") // in window 3, at the end of window 2 above its max
	b7 := bidAt(7, 17, 5, t0+20000, "b7")  // at the end of window 2, below its max
	want := []string{
		"2,50,12,1700000005000,b2", `3,50,13,1700000009999,"b3, tied"`, "4,50,14,1700000010000,b4", // window 1
		"4,50,14,1700000010000,b4", // window 2
		"6,60,16,1700000020000,b6", // window 3
	}
	for _, c := range []struct {
		name   string
		events []event
	}{
		{"in order", []event{b1, b2, b3, b4, b5, b6, b7}},
		// The boundary bid first: it must survive window 1's max rising
		// to its price, and b7 must not be taken for window 2's.
		{"boundary first", []event{b4, b7, b6, b1, b5, b3, b2}},
	} {
		for _, shards := range []int{1, 3, 32} {
			t.Run(fmt.Sprintf("%s/shards=%d", c.name, shards), func(t *testing.T) {
				got, hs := run(t, c.events, stage{op: Q7Prep, config: fmt.Sprintf(`{"shards": %d}`, shards)},
					stage{op: Q7Local}, stage{op: Q7Final})
				if sorted(got) != sorted(want) {
					t.Errorf("got\n%s\nwant\n%s", sorted(got), sorted(want))
				}
				noState(t, hs)
			})
		}
	}
}

func TestQ7Config(t *testing.T) {
	for _, cfg := range []string{`{"shards": 0}`, `{"shards": 257}`, `{"shard": 4}`} {
		if _, err := sdktest.New(Q7Prep, sdktest.Options{Config: cfg}); err == nil {
			t.Errorf("config %s accepted", cfg)
		}
	}
}

func TestQ7TimestampMustBeDateTime(t *testing.T) {
	h, err := sdktest.New(Q7Prep, sdktest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Record("", string(bidRow(1, 2, 3, t0, "")), t0+1); err == nil {
		t.Error("a bid whose timestamp is not its dateTime was accepted")
	}
}

func TestQ8(t *testing.T) {
	events := []event{
		personAt(1, "Ann", "Kent", "WA", t0+100),
		personAt(2, "Bob", "Kent", "WA", t0+200),
		auctionAt(100, 3, 1, t0+300, t0+900), // before its seller
		personAt(3, "Cy, Jr", "Kent", "WA", t0+400),
		auctionAt(101, 1, 1, t0+5000, t0+9000),
		auctionAt(102, 1, 1, t0+6000, t0+9000),   // a second one: Ann once
		auctionAt(103, 2, 1, t0+10500, t0+19000), // Bob, in the next window
		personAt(4, "Dee", "Kent", "WA", t0+9999),
		auctionAt(104, 4, 1, t0+9999, t0+19000),
		auctionAt(105, 5, 1, t0+10000, t0+19000),
		personAt(5, "Eve", "Kent", "WA", t0+20000), // after her auction's window
	}
	got, hs := run(t, events, stage{op: Q8Prep}, stage{op: Q8Join})
	want := []string{"1,Ann,1700000000000", `3,"Cy, Jr",1700000000000`, "4,Dee,1700000000000"}
	if sorted(got) != sorted(want) {
		t.Errorf("got\n%s\nwant\n%s", sorted(got), sorted(want))
	}
	noState(t, hs)
}

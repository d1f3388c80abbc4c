package abi

import (
	"bytes"
	"errors"
	"testing"
)

func TestBatchRoundTrip(t *testing.T) {
	events := []Event{
		{Kind: KindRecord, Tag: TagLate, Key: []byte("k"), Value: []byte("value"), Timestamp: 42},
		{Kind: KindRecord, Key: []byte{}, Value: []byte{}, Timestamp: NoTimestamp},
		{Kind: KindWatermark, Timestamp: -7},
		{Kind: KindTimer, Domain: ProcessingTime, Key: []byte("key"), Timestamp: MaxWatermark},
		{Kind: KindBarrier, ID: 9, Timestamp: 1000, Flags: BarrierSavepoint},
		{Kind: KindIdle, Idle: true},
		{Kind: KindIdle},
		{Kind: KindEndOfInput},
	}
	var enc Encoder
	for i := range events {
		enc.Event(&events[i])
	}
	d := NewDecoder(enc.B)
	for i, want := range events {
		var got Event
		if err := d.Next(&got); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if got.Kind != want.Kind || got.Tag != want.Tag || got.Domain != want.Domain || got.Idle != want.Idle ||
			got.Flags != want.Flags || got.Timestamp != want.Timestamp || got.ID != want.ID ||
			!bytes.Equal(got.Key, want.Key) || !bytes.Equal(got.Value, want.Value) {
			t.Fatalf("event %d: got %+v, want %+v", i, got, want)
		}
	}
	if d.More() {
		t.Fatal("decoder has more events than encoded")
	}
}

func TestDecodeCorrupt(t *testing.T) {
	rec := AppendRecord(nil, 0, []byte("key"), []byte("value"), 1)
	cases := map[string][]byte{
		"unknown kind":      {0xff},
		"truncated header":  rec[:5],
		"truncated value":   rec[:len(rec)-1],
		"huge key length":   append([]byte{byte(KindRecord), 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}, make([]byte, 8)...),
		"truncated wm":      {byte(KindWatermark), 1, 2},
		"bad timer domain":  append([]byte{byte(KindTimer), 7}, make([]byte, 12)...),
		"idle flag 2":       {byte(KindIdle), 2},
		"truncated barrier": {byte(KindBarrier), 1},
	}
	for name, b := range cases {
		d := NewDecoder(b)
		var e Event
		err := d.Next(&e)
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: got %v, want ErrCorrupt", name, err)
		}
	}
}

func TestKeyGroupRangesPartition(t *testing.T) {
	for _, maxP := range []int{1, 7, 128, 300} {
		for p := 1; p <= maxP && p <= 40; p++ {
			next := 0
			for i := 0; i < p; i++ {
				r := KeyGroupRangeForSubtask(i, p, maxP)
				if r.Start != next {
					t.Fatalf("maxP=%d p=%d i=%d: range %v does not start at %d", maxP, p, i, r, next)
				}
				for kg := r.Start; kg < r.End; kg++ {
					if got := OperatorIndexForKeyGroup(kg, p, maxP); got != i {
						t.Fatalf("maxP=%d p=%d: kg %d in range of %d but assigned to %d", maxP, p, kg, i, got)
					}
				}
				next = r.End
			}
			if next != maxP {
				t.Fatalf("maxP=%d p=%d: ranges end at %d", maxP, p, next)
			}
		}
	}
}

func TestKeyHashStable(t *testing.T) {
	// Golden values: savepoints depend on these never changing.
	golden := map[string]uint64{"": 0xefd01f60ba992926, "a": 0x82a2a958a9bece5b, "weir": 0x928ebc5f622cac17}
	for k, want := range golden {
		if got := KeyHash([]byte(k)); got != want {
			t.Fatalf("KeyHash(%q) = %#x, want %#x", k, got, want)
		}
	}
	// Spread: 100k keys over 128 groups stay within 15% of uniform (4 sigma).
	counts := make([]int, 128)
	for i := 0; i < 100000; i++ {
		counts[KeyGroup([]byte{byte(i), byte(i >> 8), byte(i >> 16)}, 128)]++
	}
	for kg, c := range counts {
		if c < 781*85/100 || c > 781*115/100 {
			t.Fatalf("key group %d has %d keys, want about 781", kg, c)
		}
	}
}

func TestOpenInfoAndOperatorTable(t *testing.T) {
	o := OpenInfo{Operator: "count", NodeID: "n1", Config: []byte(`{"a":1}`), Subtask: 2, Parallelism: 4, MaxParallelism: 128, Inputs: 2}
	got, err := DecodeOpenInfo(AppendOpenInfo(nil, &o))
	if err != nil || got.Operator != o.Operator || got.NodeID != o.NodeID || string(got.Config) != string(o.Config) ||
		got.Subtask != 2 || got.Parallelism != 4 || got.MaxParallelism != 128 || got.Inputs != 2 {
		t.Fatalf("open info round trip: %+v, %v", got, err)
	}
	if _, err := DecodeOpenInfo([]byte{1, 0, 0}); err == nil {
		t.Fatal("truncated open info decoded")
	}
	ops := []OperatorInfo{{Name: "split"}, {Name: "count", Flags: FlagKeyed}}
	gotOps, err := DecodeOperatorTable(AppendOperatorTable(nil, ops))
	if err != nil || len(gotOps) != 2 || gotOps[1].Name != "count" || !gotOps[1].Keyed() || gotOps[0].Keyed() {
		t.Fatalf("operator table round trip: %+v, %v", gotOps, err)
	}
	if _, err := DecodeOperatorTable([]byte{0xff, 0xff, 0xff, 0xff}); err == nil {
		t.Fatal("huge operator count accepted")
	}
}

func FuzzDecoder(f *testing.F) {
	var e Encoder
	e.Record(0, []byte("k"), []byte("v"), 1)
	e.Watermark(5)
	e.Timer(EventTime, []byte("k"), 3)
	e.Barrier(1, 2, 0)
	e.Idle(true)
	e.EndOfInput()
	f.Add(e.B)
	f.Add([]byte{1, 0, 255, 255, 255, 127})
	f.Fuzz(func(t *testing.T, b []byte) {
		d := NewDecoder(b)
		var re Encoder
		var ev Event
		for d.More() {
			if err := d.Next(&ev); err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("error does not wrap ErrCorrupt: %v", err)
				}
				return
			}
			re.Event(&ev)
		}
		// A batch that decodes fully re-encodes to the same bytes.
		if !bytes.Equal(re.B, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", re.B, b)
		}
	})
}

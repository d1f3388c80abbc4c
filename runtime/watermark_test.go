package runtime

import (
	"testing"

	"github.com/weirstream/weir/abi"
)

// Each step is applied to a 3-channel tracker; want is the task watermark
// after the step and whether it advanced.
func TestWatermarkTracker(t *testing.T) {
	type step struct {
		op       string // wm, idle, active, record, finish
		ch       int
		ts       int64
		want     int64
		advanced bool
		idle     bool
	}
	const min = abi.MinWatermark
	cases := map[string][]step{
		"minimum over channels": {
			{op: "wm", ch: 0, ts: 10, want: min},
			{op: "wm", ch: 1, ts: 5, want: min},
			{op: "wm", ch: 2, ts: 7, want: 5, advanced: true},
			{op: "wm", ch: 1, ts: 20, want: 7, advanced: true},
			{op: "wm", ch: 1, ts: 3, want: 7}, // a channel never goes back
			{op: "wm", ch: 2, ts: 30, want: 10, advanced: true},
		},
		"idle channel excluded": {
			{op: "wm", ch: 0, ts: 10, want: min},
			{op: "wm", ch: 1, ts: 12, want: min},
			{op: "idle", ch: 2, want: 10, advanced: true},
			{op: "idle", ch: 0, want: 12, advanced: true},
			{op: "idle", ch: 1, want: 12, idle: true}, // all idle: no progress
			{op: "record", ch: 0, want: 12},           // active again at 10: min stays (monotonic)
			{op: "wm", ch: 0, ts: 15, want: 15, advanced: true},
		},
		"finished channels count as max": {
			{op: "wm", ch: 0, ts: 4, want: min},
			{op: "finish", ch: 1, want: min},
			{op: "finish", ch: 2, want: 4, advanced: true},
			{op: "finish", ch: 0, want: abi.MaxWatermark, advanced: true},
		},
		"all finished while idle": {
			{op: "idle", ch: 0, want: min, idle: false},
			{op: "finish", ch: 1, want: min},
			{op: "finish", ch: 2, want: min, idle: true},
			{op: "finish", ch: 0, want: abi.MaxWatermark, advanced: true},
		},
	}
	for name, steps := range cases {
		t.Run(name, func(t *testing.T) {
			tr := newWatermarkTracker(3)
			for i, s := range steps {
				var got int64
				var adv bool
				switch s.op {
				case "wm":
					got, adv = tr.watermark(s.ch, s.ts)
				case "idle":
					got, adv = tr.setIdle(s.ch, true)
				case "record":
					got, adv = tr.activity(s.ch)
				case "finish":
					got, adv = tr.finish(s.ch)
				}
				if got != s.want || adv != s.advanced {
					t.Fatalf("step %d %+v: got (%d, %v), want (%d, %v)", i, s, got, adv, s.want, s.advanced)
				}
				if s.idle && !tr.isIdle {
					t.Fatalf("step %d: tracker should be idle", i)
				}
			}
		})
	}
}

func TestKeepTag(t *testing.T) {
	var all, mixed abi.Encoder
	all.Record(abi.TagMain, []byte("a"), []byte("1"), 1)
	all.Record(abi.TagMain, []byte("b"), []byte("2"), 2)
	mixed.Record(abi.TagLate, []byte("x"), []byte("late"), 0)
	mixed.Record(abi.TagMain, []byte("a"), []byte("1"), 1)
	mixed.Record(abi.TagLate, []byte("y"), []byte("late"), 0)
	mixed.Record(abi.TagMain, []byte("b"), []byte("2"), 2)
	got, dropped := keepTag(nil, all.B, abi.TagMain)
	if dropped != 0 || &got[0] != &all.B[0] || len(got) != len(all.B) {
		t.Fatalf("all-main batch: dropped %d, copied %v", dropped, &got[0] != &all.B[0])
	}
	got, dropped = keepTag(nil, mixed.B, abi.TagMain)
	if dropped != 2 || string(got) != string(all.B) {
		t.Fatalf("mixed batch: dropped %d, kept %x, want %x", dropped, got, all.B)
	}
}

package sdktest_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/sdk"
	"github.com/weirstream/weir/sdk/sdktest"
)

// chain registers, from each event-time timer at t < 30, another at t+5:
// timers registered while a timer batch runs, at or before the watermark,
// fire in a following call (ABI 4.2).
type chain struct{}

func (chain) Process(ctx *sdk.Context, r sdk.Record) error {
	return ctx.RegisterEventTimeTimer(r.Timestamp)
}

func (chain) OnTimer(ctx *sdk.Context, t sdk.Timer) error {
	ctx.Emit(t.Key, fmt.Appendf(nil, "t%d wm%d", t.Timestamp, ctx.Watermark()))
	if t.Timestamp < 30 {
		return ctx.RegisterEventTimeTimer(t.Timestamp + 5)
	}
	return nil
}

func (chain) OnWatermark(ctx *sdk.Context, wm int64) error {
	ctx.Emit(nil, fmt.Appendf(nil, "wm%d", wm))
	return nil
}

func init() {
	sdk.Export("chain", func() sdk.Operator { return chain{} }, sdk.Keyed())
}

func TestWatermarkFiresLaterTimersInFollowingCalls(t *testing.T) {
	h, err := sdktest.New("chain", sdktest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Record("k", "", 10); err != nil {
		t.Fatal(err)
	}
	if err := h.Watermark(22); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range h.TakeOutput() {
		got = append(got, o.Value)
	}
	// The first call holds the timer at 10 and the watermark; 15 and 20 fire
	// in the calls after it; 25 waits for the next watermark.
	if want := "t10 wm22,wm22,t15 wm22,t20 wm22"; strings.Join(got, ",") != want {
		t.Errorf("got %v, want %s", got, want)
	}
	if p := h.Timers.Pending(abi.EventTime); len(p) != 1 || p[0].Timestamp != 25 {
		t.Errorf("pending %v", p)
	}
}

func TestState(t *testing.T) {
	s := sdktest.NewState()
	v, _ := s.Register("v", abi.StateValue)
	m, _ := s.Register("m", abi.StateMap)
	l, _ := s.Register("l", abi.StateList)
	if id, err := s.Register("m", abi.StateMap); id != m || err != nil {
		t.Errorf("re-register: %d %v", id, err)
	}
	if _, err := s.Register("m", abi.StateList); !errors.Is(err, abi.ErrInvalid) {
		t.Errorf("re-register with another kind: %v", err)
	}
	k := []byte("key")
	for _, sub := range []string{"b", "a", "c", "a"} {
		if err := s.Put(m, k, []byte(sub), []byte("v"+sub)); err != nil {
			t.Fatal(err)
		}
	}
	s.Put(v, k, nil, []byte("x"))
	s.Append(l, k, []byte("1"))
	s.Append(l, k, []byte("2"))
	if err := s.Append(m, k, nil); !errors.Is(err, abi.ErrInvalid) {
		t.Errorf("append to map state: %v", err)
	}
	var scan []string
	s.Scan(m, k, func(sub, value []byte) error {
		scan = append(scan, string(sub)+"="+string(value))
		return nil
	})
	if strings.Join(scan, ",") != "a=va,b=vb,c=vc" {
		t.Errorf("map scan %v", scan)
	}
	s.Delete(m, k, []byte("b"))
	s.Clear(l, k)
	if got := fmt.Sprint(s.Dump()); got != `[m["key"]["a"]="va" m["key"]["c"]="vc" v["key"][""]="x"]` {
		t.Errorf("dump %s", got)
	}
	if _, _, err := s.Get(99, k, nil); !errors.Is(err, abi.ErrInvalid) {
		t.Errorf("unknown id: %v", err)
	}
	s.Owns = func(key []byte) bool { return string(key) != "foreign" }
	if err := s.Put(v, []byte("foreign"), nil, nil); !errors.Is(err, abi.ErrKeyNotLocal) {
		t.Errorf("foreign key: %v", err)
	}
}

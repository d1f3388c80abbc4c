package main

import (
	"fmt"
	"testing"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/sdk/sdktest"
)

func TestDetect(t *testing.T) {
	const t0 = 1700000000000
	h, err := sdktest.New("detect", sdktest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tx := func(account string, amount float64, at int64) {
		t.Helper()
		v := fmt.Sprintf(`{"account":%q,"amount":%v,"ts":%d}`, account, amount, t0+at)
		if err := h.Record(account, v, t0+at); err != nil {
			t.Fatal(err)
		}
	}
	wm := func(at int64) {
		t.Helper()
		if err := h.Watermark(t0 + at); err != nil {
			t.Fatal(err)
		}
	}
	tx("a", 0.5, 0)
	tx("a", 600, 30_000) // alert: small then large within a minute
	tx("b", 0.25, 0)
	tx("b", 20, 1_000) // a normal transaction ends the pattern
	tx("b", 700, 2_000)
	tx("c", 0.75, 0)
	tx("c", 900, 60_001) // more than a minute later: too late
	tx("g", 0.5, 0)
	tx("g", 501, 60_000) // exactly a minute later: still within
	tx("d", 0.1, 10_000)
	tx("d", 0.2, 20_000) // a newer small transaction replaces the first
	tx("d", 501, 75_000) // within a minute of the second
	tx("e", 0.3, 5_000)
	wm(65_000) // the timer of e's small transaction fires and clears it
	tx("e", 800, 64_000)
	tx("f", 0.9, 10_000)
	tx("f", 1000, 5_000) // before the small one: not "followed by"
	wm(abi.MaxWatermark - t0)
	want := fmt.Sprintf(`main "a"="alert,a,0.5,600,%d" @%d
main "g"="alert,g,0.5,501,%d" @%d
main "d"="alert,d,0.2,501,%d" @%d
`, t0+30_000, t0+30_000, t0+60_000, t0+60_000, t0+75_000, t0+75_000)
	if got := sdktest.Format(h.TakeOutput()); got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
	if d := h.State.Dump(); len(d) != 0 {
		t.Errorf("state left: %v", d)
	}
	if p := h.Timers.Pending(abi.EventTime); len(p) != 0 {
		t.Errorf("timers left: %v", p)
	}
}

func TestParse(t *testing.T) {
	h, err := sdktest.New("parse", sdktest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{`{"account":"acc-1","amount":0.5,"ts":1}`, `{"amount":1}`, `[`} {
		if err := h.Record("", line, 1); err != nil {
			t.Fatal(err)
		}
	}
	want := `main "acc-1"="{\"account\":\"acc-1\",\"amount\":0.5,\"ts\":1}" @1` + "\n"
	if got := sdktest.Format(h.TakeOutput()); got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
}

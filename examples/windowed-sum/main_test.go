package main

import (
	"fmt"
	"testing"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/sdk/sdktest"
)

func TestParse(t *testing.T) {
	h, err := sdktest.New("parse", sdktest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{`{"key":"a","amount":3,"ts":1700000000000}`, `not json`, `{"key":"b"}`} {
		if err := h.Record("", line, 1700000000000); err != nil {
			t.Fatal(err)
		}
	}
	want := `main "a"="{\"key\":\"a\",\"amount\":3,\"ts\":1700000000000}" @1700000000000` + "\n"
	if got := sdktest.Format(h.TakeOutput()); got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
	if len(h.Logs()) != 2 {
		t.Errorf("logs: %v", h.Logs())
	}
}

func TestSum(t *testing.T) {
	const t0 = 1700000000000 // a multiple of 10 s: windows start at t0, t0+10s...
	h, err := sdktest.New("sum", sdktest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec := func(key string, amount int, at int64) {
		t.Helper()
		if err := h.Record(key, fmt.Sprintf(`{"key":%q,"amount":%d,"ts":%d}`, key, amount, t0+at), t0+at); err != nil {
			t.Fatal(err)
		}
	}
	wm := func(at int64) {
		t.Helper()
		if err := h.Watermark(t0 + at); err != nil {
			t.Fatal(err)
		}
	}
	rec("a", 3, 1000)
	rec("b", 4, 2000)
	rec("a", 5, 12000)
	rec("a", 1, 9999) // out of order, before the watermark: on time
	wm(9999)          // fires [t0, t0+10s): a = 3+1, b = 4
	rec("a", 10, 500) // late, within 5 s of lateness: updates (a = 14) and re-fires
	wm(14999)         // cleans [t0, t0+10s) up
	rec("a", 7, 800)  // too late: side output
	wm(abi.MaxWatermark - t0)
	want := fmt.Sprintf(`main "a"="%[1]d,%[2]d,4" @%[3]d
main "b"="%[1]d,%[2]d,4" @%[3]d
main "a"="%[1]d,%[2]d,14" @%[3]d
late "a"="{\"key\":\"a\",\"amount\":7,\"ts\":%[4]d}" @%[4]d
main "a"="%[2]d,%[5]d,5" @%[6]d
`, t0, t0+10000, t0+9999, t0+800, t0+20000, t0+19999)
	if got := sdktest.Format(h.TakeOutput()); got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
	if d := h.State.Dump(); len(d) != 0 {
		t.Errorf("state left: %v", d)
	}
}

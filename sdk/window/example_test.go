package window_test

import (
	"fmt"
	"strconv"
	"time"

	"github.com/weirstream/weir/sdk"
	"github.com/weirstream/weir/sdk/codec"
	"github.com/weirstream/weir/sdk/sdktest"
	"github.com/weirstream/weir/sdk/window"
)

// sum adds up record values (decimal integers).
type sum struct{}

func (sum) CreateAccumulator() int64 { return 0 }
func (sum) Add(acc int64, r sdk.Record) (int64, error) {
	v, err := strconv.ParseInt(string(r.Value), 10, 64)
	return acc + v, err
}
func (sum) Merge(a, b int64) int64 { return a + b }
func (sum) Result(acc int64) int64 { return acc }

func init() {
	sdk.Export("example-sum", func() sdk.Operator {
		return window.New(window.Tumbling(10*time.Second), sum{}, codec.Int64,
			func(ctx *sdk.Context, w window.Window, total int64) error {
				ctx.Emit(ctx.CurrentKey(), fmt.Appendf(nil, "%v sum=%d", w, total))
				return nil
			},
			window.AllowedLateness(5*time.Second))
	}, sdk.Keyed())
}

// Per-key sums over tumbling windows of 10 s with 5 s of allowed lateness.
func ExampleNew() {
	h, err := sdktest.New("example-sum", sdktest.Options{})
	if err != nil {
		panic(err)
	}
	h.Record("a", "3", 1_000)
	h.Record("a", "4", 9_999)
	h.Record("a", "5", 10_000) // next window
	h.Watermark(9_999)         // fires [0,10000)
	h.Record("a", "1", 2_000)  // late, within lateness: fires again
	h.Watermark(14_999)        // [0,10000) is cleaned up
	h.Record("a", "7", 3_000)  // too late: side output
	h.Watermark(sdk.MaxWatermark)
	for _, o := range h.TakeOutput() {
		fmt.Println(o)
	}
	// Output:
	// main "a"="[0,10000) sum=7" @9999
	// main "a"="[0,10000) sum=8" @9999
	// late "a"="7" @3000
	// main "a"="[10000,20000) sum=5" @19999
}

package sdk_test

import (
	"fmt"
	"strconv"

	"github.com/weirstream/weir/sdk"
	"github.com/weirstream/weir/sdk/codec"
	"github.com/weirstream/weir/sdk/sdktest"
)

// WordCount counts records per key and emits the running count.
type WordCount struct {
	count *sdk.ValueState[int64]
	buf   []byte // reused output buffer: no allocation per record
}

func (w *WordCount) Open(ctx *sdk.Context) (err error) {
	w.count, err = sdk.NewValueState(ctx, "count", codec.Int64)
	return err
}

func (w *WordCount) Process(ctx *sdk.Context, r sdk.Record) error {
	n, _, err := w.count.Get()
	if err != nil {
		return err
	}
	n++
	if err := w.count.Set(n); err != nil {
		return err
	}
	w.buf = strconv.AppendInt(w.buf[:0], n, 10)
	ctx.Emit(r.Key, w.buf)
	return nil
}

func init() {
	sdk.Export("example-count", func() sdk.Operator { return &WordCount{} }, sdk.Keyed())
}

// A keyed operator with value state, run natively with package sdktest.
func Example() {
	h, err := sdktest.New("example-count", sdktest.Options{})
	if err != nil {
		panic(err)
	}
	for _, w := range []string{"weir", "wasm", "weir"} {
		if err := h.Record(w, w, 1000); err != nil {
			panic(err)
		}
	}
	for _, o := range h.TakeOutput() {
		fmt.Println(o)
	}
	// Output:
	// main "weir"="1" @1000
	// main "wasm"="1" @1000
	// main "weir"="2" @1000
}

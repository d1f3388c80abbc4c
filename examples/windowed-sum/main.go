// Command windowed-sum is the Weir windowed-aggregation module: per-key sums
// of amounts in tumbling event-time windows of 10 s, with 5 s of allowed
// lateness, over JSON records such as
//
//	{"key":"a","amount":3,"ts":1700000000000}
//
// The source assigns each record's timestamp from its "ts" field and emits
// the JSON line as the value with an empty key.
//
//   - parse (not keyed): sets the record's key to the "key" field and passes
//     the value and timestamp through. Lines that are not valid JSON records
//     are dropped with a warning (a bad line must not fail the job forever).
//   - sum (keyed by key): sums "amount" per window and emits, when the
//     watermark passes the window's end, key=key and value
//     "<window_start>,<window_end>,<sum>" (epoch milliseconds) with the
//     window's max timestamp (end-1). A record that is late but within the
//     allowed lateness updates the sum and emits the window again; records
//     later than that go to the late side output unchanged.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o windowed-sum.wasm .
package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/weirstream/weir/sdk"
	"github.com/weirstream/weir/sdk/codec"
	"github.com/weirstream/weir/sdk/window"
)

// event is an input record.
type event struct {
	Key    *string `json:"key"`
	Amount *int64  `json:"amount"`
	TS     int64   `json:"ts"`
}

func decode(value []byte) (event, error) {
	var e event
	if err := json.Unmarshal(value, &e); err != nil {
		return e, err
	}
	if e.Key == nil || e.Amount == nil {
		return e, fmt.Errorf("record needs \"key\" and \"amount\"")
	}
	return e, nil
}

type parse struct{}

func (parse) Process(ctx *sdk.Context, r sdk.Record) error {
	e, err := decode(r.Value)
	if err != nil {
		ctx.Logf(sdk.LevelWarn, "parse: dropping %.200q: %v", r.Value, err)
		return nil
	}
	ctx.Emit([]byte(*e.Key), r.Value)
	return nil
}

// sum is the windows' aggregation: the accumulator is the sum so far.
type sum struct{}

func (sum) CreateAccumulator() int64 { return 0 }

func (sum) Add(acc int64, r sdk.Record) (int64, error) {
	e, err := decode(r.Value)
	if err != nil {
		return acc, fmt.Errorf("sum: key %q: %w", r.Key, err)
	}
	return acc + *e.Amount, nil
}

func (sum) Merge(a, b int64) int64 { return a + b }

func (sum) Result(acc int64) int64 { return acc }

func emitSum(ctx *sdk.Context, w window.Window, total int64) error {
	var buf [64]byte
	b := strconv.AppendInt(buf[:0], w.Start, 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, w.End, 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, total, 10)
	ctx.Emit(ctx.CurrentKey(), b)
	return nil
}

func init() {
	sdk.Export("parse", func() sdk.Operator { return parse{} })
	sdk.Export("sum", func() sdk.Operator {
		return window.New(window.Tumbling(10*time.Second), sum{}, codec.Int64, emitSum,
			window.AllowedLateness(5*time.Second))
	}, sdk.Keyed())
}

func main() {}

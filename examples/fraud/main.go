// Command fraud is the Weir fraud-detection module: Flink's fraud-detection
// tutorial (a small transaction followed by a large one on the same account
// is suspicious), in event time, over JSON transactions such as
//
//	{"account":"acc-1","amount":0.5,"ts":1700000000000}
//
// The source assigns each record's timestamp from its "ts" field and emits
// the JSON line as the value with an empty key.
//
//   - parse (not keyed): sets the key to the "account" field. Lines that are
//     not valid transactions are dropped with a warning.
//   - detect (keyed by account): when a transaction under 1.00 is followed,
//     as the account's next transaction and within one minute of event time
//     (0 <= large.ts - small.ts <= 60000), by one over 500.00, emits key =
//     account and value "alert,<account>,<small amount>,<large amount>,<ts of
//     large>" (amounts in Go's shortest decimal form, e.g. 0.5 and 600), with
//     the large transaction's timestamp. Any transaction after a small one
//     ends the pattern; an event-time timer one minute after the small
//     transaction clears it when nothing followed.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o fraud.wasm .
package main

import (
	"encoding/json"
	"errors"
	"strconv"

	"github.com/weirstream/weir/sdk"
	"github.com/weirstream/weir/sdk/codec"
)

const (
	smallAmount = 1.00
	largeAmount = 500.00
	oneMinute   = 60 * 1000 // ms
)

type transaction struct {
	Account *string  `json:"account"`
	Amount  *float64 `json:"amount"`
	TS      int64    `json:"ts"`
}

func decode(value []byte) (transaction, error) {
	var t transaction
	if err := json.Unmarshal(value, &t); err != nil {
		return t, err
	}
	if t.Account == nil || t.Amount == nil {
		return t, errors.New(`transaction needs "account" and "amount"`)
	}
	return t, nil
}

type parse struct{}

func (parse) Process(ctx *sdk.Context, r sdk.Record) error {
	t, err := decode(r.Value)
	if err != nil {
		ctx.Logf(sdk.LevelWarn, "parse: dropping %.200q: %v", r.Value, err)
		return nil
	}
	ctx.Emit([]byte(*t.Account), r.Value)
	return nil
}

// small is the pending small transaction of an account.
type small struct {
	Amount float64
	TS     int64
}

var smallCodec = codec.Struct(
	func(w *codec.Writer, s small) { w.Float64(s.Amount); w.Int64(s.TS) },
	func(r *codec.Reader) small { return small{Amount: r.Float64(), TS: r.Int64()} },
)

type detect struct {
	small *sdk.ValueState[small]
	buf   []byte
}

func (d *detect) Open(ctx *sdk.Context) (err error) {
	d.small, err = sdk.NewValueState(ctx, "small-transaction", smallCodec)
	return err
}

func (d *detect) Process(ctx *sdk.Context, r sdk.Record) error {
	t, err := decode(r.Value)
	if err != nil {
		return err
	}
	ts := r.Timestamp
	if ts == sdk.NoTimestamp {
		ts = t.TS
	}
	prev, ok, err := d.small.Get()
	if err != nil {
		return err
	}
	if ok {
		if *t.Amount > largeAmount && ts >= prev.TS && ts-prev.TS <= oneMinute {
			d.alert(ctx, prev.Amount, *t.Amount, ts)
		}
		// Any transaction ends the pattern.
		if err := ctx.DeleteEventTimeTimer(prev.TS + oneMinute); err != nil {
			return err
		}
		if err := d.small.Clear(); err != nil {
			return err
		}
	}
	if *t.Amount < smallAmount {
		if err := d.small.Set(small{Amount: *t.Amount, TS: ts}); err != nil {
			return err
		}
		return ctx.RegisterEventTimeTimer(ts + oneMinute)
	}
	return nil
}

func (d *detect) alert(ctx *sdk.Context, smallAmt, largeAmt float64, ts int64) {
	b := append(d.buf[:0], "alert,"...)
	b = append(b, ctx.CurrentKey()...)
	b = append(b, ',')
	b = strconv.AppendFloat(b, smallAmt, 'f', -1, 64)
	b = append(b, ',')
	b = strconv.AppendFloat(b, largeAmt, 'f', -1, 64)
	b = append(b, ',')
	b = strconv.AppendInt(b, ts, 10)
	d.buf = b
	ctx.EmitWithTimestamp(ctx.CurrentKey(), b, ts)
}

// OnTimer forgets a small transaction a minute after it happened.
func (d *detect) OnTimer(ctx *sdk.Context, t sdk.Timer) error {
	return d.small.Clear()
}

func init() {
	sdk.Export("parse", func() sdk.Operator { return parse{} })
	sdk.Export("detect", func() sdk.Operator { return &detect{} }, sdk.Keyed())
}

func main() {}

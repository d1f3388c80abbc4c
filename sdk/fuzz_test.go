package sdk_test

import (
	"errors"
	"testing"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/sdk"
	"github.com/weirstream/weir/sdk/codec"
	"github.com/weirstream/weir/sdk/sdktest"
)

// fuzzOp turns each record value into a sequence of state, timer and output
// operations, one per byte; it never panics itself, so a panic status in
// FuzzProcess is a bug of the SDK.
type fuzzOp struct {
	v *sdk.ValueState[[]byte]
	m *sdk.MapState[string, int64]
	l *sdk.ListState[[]byte]
}

func (o *fuzzOp) Open(ctx *sdk.Context) (err error) {
	if o.v, err = sdk.NewValueState(ctx, "v", codec.Raw); err != nil {
		return err
	}
	if o.m, err = sdk.NewMapState(ctx, "m", codec.String, codec.Int64); err != nil {
		return err
	}
	o.l, err = sdk.NewListState(ctx, "l", codec.Raw)
	return err
}

func (o *fuzzOp) Process(ctx *sdk.Context, r sdk.Record) error {
	for i, c := range r.Value {
		arg := r.Value[i:]
		var err error
		switch c % 12 {
		case 0:
			err = o.v.Set(arg)
		case 1:
			_, _, err = o.v.Get()
		case 2:
			err = o.m.Put(string(arg[:min(len(arg), 3)]), int64(c))
		case 3:
			err = o.m.Range(func(k string, v int64) error { return o.m.Delete(k) })
		case 4:
			err = o.l.Append(arg)
		case 5:
			err = o.l.Range(func([]byte) error { return nil })
		case 6:
			err = ctx.RegisterEventTimeTimer(r.Timestamp + int64(c))
		case 7:
			err = ctx.DeleteEventTimeTimer(r.Timestamp + int64(c))
		case 8:
			ctx.Emit(r.Key, arg)
		case 9:
			ctx.EmitLate(r.Key, arg)
		case 10:
			copy(ctx.EmitReserve(arg, int(c)*300), arg)
		case 11:
			err = o.l.Clear()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (o *fuzzOp) OnTimer(ctx *sdk.Context, t sdk.Timer) error {
	ctx.Emit(t.Key, nil)
	return o.v.Clear()
}

func init() {
	sdk.Export("fuzz", func() sdk.Operator { return &fuzzOp{} }, sdk.Keyed())
}

func FuzzProcess(f *testing.F) {
	var e abi.Encoder
	e.Record(0, []byte("k"), []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, 5)
	e.Timer(abi.EventTime, []byte("k"), 7)
	e.Watermark(9)
	f.Add(e.B)
	e.Reset()
	e.Record(0, nil, nil, abi.NoTimestamp)
	e.Barrier(1, 2, 3)
	e.Idle(false)
	e.EndOfInput()
	f.Add(e.B)
	f.Add([]byte{byte(abi.KindRecord), 0, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{byte(abi.KindTimer), 1, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0})
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, batch []byte) {
		n := sdk.NewNative(sdktest.NewState(), sdktest.NewTimers(), nil)
		if err := n.Open(abi.OpenInfo{Operator: "fuzz", Parallelism: 1, MaxParallelism: 128, Inputs: 1}); err != nil {
			t.Fatal(err)
		}
		for range 2 { // a second call sees the state and buffers the first left
			out, err := n.Process(0, batch)
			var ce *sdk.CallError
			if errors.As(err, &ce) && ce.Status == abi.StatusPanic {
				t.Fatalf("SDK panicked: %s", ce.Message)
			}
			if err != nil {
				continue
			}
			d := abi.NewDecoder(out)
			var ev abi.Event
			for d.More() {
				if err := d.Next(&ev); err != nil {
					t.Fatalf("output does not decode: %v", err)
				}
				if ev.Kind != abi.KindRecord || ev.Tag > abi.TagLate {
					t.Fatalf("output holds %v event with tag %d", ev.Kind, ev.Tag)
				}
			}
		}
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

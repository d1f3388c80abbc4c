package codec_test

import (
	"fmt"

	"github.com/weirstream/weir/sdk/codec"
)

// A codec for a small struct, without reflection.
func ExampleStruct() {
	type Acc struct {
		Sum   int64
		Count uint32
		Last  string
	}
	accCodec := codec.Struct(
		func(w *codec.Writer, a Acc) { w.Int64(a.Sum); w.Uint32(a.Count); w.Str(a.Last) },
		func(r *codec.Reader) Acc { return Acc{Sum: r.Int64(), Count: r.Uint32(), Last: r.Str()} },
	)
	b, _ := codec.Marshal(accCodec, Acc{Sum: -3, Count: 2, Last: "x"})
	v, err := codec.Unmarshal(accCodec, b)
	fmt.Printf("%d bytes, %+v, %v\n", len(b), v, err)
	// Output: 14 bytes, {Sum:-3 Count:2 Last:x}, <nil>
}

package connectors_test

import (
	"context"
	"fmt"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/connectors"
	"github.com/weirstream/weir/runtime"
)

// batch is the smallest RecordWriter: it encodes records like the runtime.
type batch struct{ abi.Encoder }

func (b *batch) Write(key, value []byte, ts int64) { b.Record(abi.TagMain, key, value, ts) }

// Wire a datagen source to a print sink by hand, as the runtime does for a
// job with one source and one sink at parallelism 1.
func Example() {
	var c runtime.Connectors
	connectors.Register(&c)

	newSource, err := c.Sources["datagen"]([]byte(`{
		"count": 4,
		"key": {"kind": "oneOf", "values": ["red"]},
		"value": {"kind": "sequence", "start": 10},
		"timestamp": "sequence", "timestampStart": 1000, "timestampInterval": "1s"
	}`))
	if err != nil {
		panic(err)
	}
	newSink, err := c.Sinks["print"]([]byte(`{"format": "json"}`))
	if err != nil {
		panic(err)
	}

	ctx := context.Background()
	info := runtime.TaskInfo{Job: "example", NodeID: "gen", Parallelism: 1}
	src, sink := newSource(), newSink()
	if err := src.Open(ctx, info); err != nil {
		panic(err)
	}
	if err := sink.Open(ctx, info); err != nil {
		panic(err)
	}
	for done := false; !done; {
		var b batch
		if done, err = src.Poll(ctx, &b, 3); err != nil {
			panic(err)
		}
		if err := sink.Write(ctx, b.B); err != nil {
			panic(err)
		}
	}
	if err := sink.Finish(ctx); err != nil {
		panic(err)
	}
	fmt.Println(src.Close(), sink.Close())
	// Output:
	// {"key":"red","value":"10","timestamp":1000}
	// {"key":"red","value":"11","timestamp":2000}
	// {"key":"red","value":"12","timestamp":3000}
	// {"key":"red","value":"13","timestamp":4000}
	// <nil> <nil>
}

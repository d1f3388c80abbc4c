package connectors_test

import (
	"context"
	"fmt"
	"os"

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

// Drive a datagen source and the exactly-once file sink through a
// checkpoint, a failure and a restore, as the runtime does: the committed
// output holds every record once.
func Example_checkpoints() {
	var c runtime.Connectors
	connectors.Register(&c)
	newSource, err := c.Sources["datagen"]([]byte(`{"count": 5}`))
	if err != nil {
		panic(err)
	}
	dir, err := os.MkdirTemp("", "weir-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	newSink, err := c.Sinks["file"]([]byte(fmt.Sprintf(`{"path": %q}`, dir)))
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	info := runtime.TaskInfo{Job: "example", NodeID: "gen", Parallelism: 1}
	poll := func(src runtime.Source, sink runtime.Sink, max int) bool {
		var b batch
		done, err := src.Poll(ctx, &b, max)
		if err != nil {
			panic(err)
		}
		if err := sink.Write(ctx, b.B); err != nil {
			panic(err)
		}
		return done
	}

	// First attempt: records 0 and 1, checkpoint 1 (completed), record 2,
	// then a failure before checkpoint 2.
	src := newSource().(runtime.CheckpointedSource)
	sink := newSink().(runtime.TwoPhaseSink)
	if err := src.Open(ctx, info); err != nil {
		panic(err)
	}
	if err := sink.Open(ctx, info); err != nil {
		panic(err)
	}
	poll(src, sink, 2)
	srcState, err := src.Snapshot()
	if err != nil {
		panic(err)
	}
	sinkState, err := sink.PreCommit(ctx, 1)
	if err != nil {
		panic(err)
	}
	if err := sink.Commit(ctx, 1); err != nil {
		panic(err)
	}
	poll(src, sink, 1)

	// Second attempt, restored from checkpoint 1: runs to the end.
	src = newSource().(runtime.CheckpointedSource)
	sink = newSink().(runtime.TwoPhaseSink)
	if err := src.Restore(info, [][]byte{srcState}); err != nil {
		panic(err)
	}
	if err := sink.Restore(ctx, info, 1, [][]byte{sinkState}); err != nil {
		panic(err)
	}
	if err := src.Open(ctx, info); err != nil {
		panic(err)
	}
	if err := sink.Open(ctx, info); err != nil {
		panic(err)
	}
	for !poll(src, sink, 2) {
	}
	if err := sink.Finish(ctx); err != nil {
		panic(err)
	}
	if _, err := sink.PreCommit(ctx, runtime.FinalCheckpoint); err != nil {
		panic(err)
	}
	if err := sink.Commit(ctx, runtime.FinalCheckpoint); err != nil {
		panic(err)
	}
	fmt.Println(src.Close(), sink.Close())
	fmt.Println(connectors.ReadCommitted(dir))
	// Output:
	// <nil> <nil>
	// [0 1 2 3 4] <nil>
}

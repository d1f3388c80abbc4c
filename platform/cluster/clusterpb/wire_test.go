package clusterpb_test

import (
	"bytes"
	"testing"

	"github.com/weirstream/weir/platform/cluster/clusterpb"
	"google.golang.org/protobuf/proto"
)

// TestFrameWireFormat pins the data plane's wire bytes, written out by hand
// from the protobuf encoding rules (tag = field<<3 | wire type; varints 7
// bits at a time, low first; proto3 zero values omitted). Workers of
// different builds exchange frames during a rolling upgrade: a renumbered or
// retyped field fails here before it fails in a cluster.
func TestFrameWireFormat(t *testing.T) {
	tests := []struct {
		name  string
		frame *clusterpb.Frame
		wire  []byte
	}{
		{
			name:  "data frame",
			frame: &clusterpb.Frame{Attempt: "a1", Channel: 300, Data: []byte{0xde, 0xad}},
			wire: []byte{
				0x0a, 0x02, 'a', '1', // 1 attempt: LEN 2
				0x10, 0xac, 0x02, // 2 channel: varint 300
				0x1a, 0x02, 0xde, 0xad, // 3 data: LEN 2
			},
		},
		{
			name:  "credit frame",
			frame: &clusterpb.Frame{Attempt: "a1", Channel: 7, Credits: 4},
			wire: []byte{
				0x0a, 0x02, 'a', '1', // 1 attempt
				0x10, 0x07, // 2 channel: 7
				0x20, 0x04, // 4 credits: 4
			},
		},
		{
			name:  "empty frame",
			frame: &clusterpb.Frame{},
			wire:  []byte{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := proto.Marshal(tt.frame)
			if err != nil {
				t.Fatalf("marshal %v: %v", tt.frame, err)
			}
			if !bytes.Equal(got, tt.wire) {
				t.Errorf("marshal %v = % x, want % x", tt.frame, got, tt.wire)
			}
			var back clusterpb.Frame
			if err := proto.Unmarshal(tt.wire, &back); err != nil {
				t.Fatalf("unmarshal % x: %v", tt.wire, err)
			}
			if !proto.Equal(&back, tt.frame) {
				t.Errorf("unmarshal % x = %v, want %v", tt.wire, &back, tt.frame)
			}
		})
	}
}

// benchBatch is the size of one data-plane batch in the benchmarks: a
// typical full batch of small records.
const benchBatch = 32 << 10

// BenchmarkFrameMarshal measures encoding one data frame into a reused
// buffer, the floor of what a sender pays per batch on top of the batch
// copy.
func BenchmarkFrameMarshal(b *testing.B) {
	frame := &clusterpb.Frame{Attempt: "job-7/3", Channel: 12, Data: make([]byte, benchBatch)}
	opts := proto.MarshalOptions{}
	buf := make([]byte, 0, benchBatch+64)
	b.SetBytes(benchBatch)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		buf, err = opts.MarshalAppend(buf[:0], frame)
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFrameUnmarshal measures decoding one data frame into a reused
// message. The decoder copies the batch out of the wire buffer (and the
// attempt string), so it allocates per frame unlike Marshal.
func BenchmarkFrameUnmarshal(b *testing.B) {
	wire, err := proto.Marshal(&clusterpb.Frame{Attempt: "job-7/3", Channel: 12, Data: make([]byte, benchBatch)})
	if err != nil {
		b.Fatal(err)
	}
	var frame clusterpb.Frame
	b.SetBytes(benchBatch)
	b.ReportAllocs()
	for b.Loop() {
		frame.Reset()
		if err := proto.Unmarshal(wire, &frame); err != nil {
			b.Fatal(err)
		}
	}
}

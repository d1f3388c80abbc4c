package sdk

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/weirstream/weir/abi"
)

// recordingHost is a host that records emit calls; state and timers are
// not available.
type recordingHost struct {
	emits   [][]byte
	failMsg string
	emitErr int32
}

func (h *recordingHost) log(abi.LogLevel, string) {}
func (h *recordingHost) fail(msg string)          { h.failMsg = msg }
func (h *recordingHost) emit(b []byte) int32 {
	h.emits = append(h.emits, bytes.Clone(b))
	return h.emitErr
}
func (h *recordingHost) stateRegister(string, abi.StateKind) int32    { return int32(abi.ErrNotKeyed) }
func (h *recordingHost) stateGet(int32, []byte, []byte, []byte) int32 { return int32(abi.ErrNotKeyed) }
func (h *recordingHost) statePut(int32, []byte, []byte, []byte) int32 { return int32(abi.ErrNotKeyed) }
func (h *recordingHost) stateDelete(int32, []byte, []byte) int32      { return int32(abi.ErrNotKeyed) }
func (h *recordingHost) stateAppend(int32, []byte, []byte) int32      { return int32(abi.ErrNotKeyed) }
func (h *recordingHost) stateScan(int32, []byte, []byte) int32        { return int32(abi.ErrNotKeyed) }
func (h *recordingHost) stateClear(int32, []byte) int32               { return int32(abi.ErrNotKeyed) }
func (h *recordingHost) timerRegister(abi.TimeDomain, []byte, int64) int32 {
	return int32(abi.ErrNotKeyed)
}
func (h *recordingHost) timerDelete(abi.TimeDomain, []byte, int64) int32 {
	return int32(abi.ErrNotKeyed)
}
func (h *recordingHost) watermark() int64      { return abi.MinWatermark }
func (h *recordingHost) processingTime() int64 { return 0 }

// burst emits, per record, the number of records of the size its value
// says ("count size"), each value filled with the record's index.
type burst struct{}

func (burst) Process(ctx *Context, r Record) error {
	var count, size int
	if _, err := fmt.Sscan(string(r.Value), &count, &size); err != nil {
		return err
	}
	for i := range count {
		v := ctx.EmitReserve(r.Key, size)
		for j := range v {
			v[j] = byte(i)
		}
	}
	return nil
}

func init() {
	Export("burst", func() Operator { return burst{} })
}

func openInternal(t *testing.T, h host, op string) *instance {
	t.Helper()
	in := newInstance(h)
	if st := in.open(abi.AppendOpenInfo(nil, &abi.OpenInfo{Operator: op})); st != abi.StatusOK {
		t.Fatalf("open %s: status %d", op, st)
	}
	return in
}

func TestFlushBoundaries(t *testing.T) {
	const hdr = abi.RecordHeaderSize
	cases := []struct {
		name        string
		batch       []string // values of the input records
		wantRecords int
		wantEmits   []int // sizes of the emit calls
	}{
		{"nothing", []string{"0 0"}, 0, nil},
		{"one small", []string{"1 10"}, 1, []int{hdr + 1 + 10}},
		// 64 KiB exactly fits: records of 1024-hdr-1 bytes (key "k") make
		// 1024-byte records, 64 of them fill the buffer without a flush.
		{"exactly full", []string{"64 1005"}, 64, []int{64 << 10}},
		{"one more", []string{"65 1005"}, 65, []int{64 << 10, 1024}},
		// Output of several records of one batch is gathered across records.
		{"across records", []string{"40 1005", "40 1005"}, 80, []int{64 << 10, 16 << 10}},
		// A record larger than the threshold goes alone.
		{"huge", []string{"1 10", "1 100000", "1 10"}, 3, []int{hdr + 11, hdr + 1 + 100000, hdr + 11}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := &recordingHost{}
			in := openInternal(t, h, "burst")
			var b abi.Encoder
			for _, v := range c.batch {
				b.Record(0, []byte("k"), []byte(v), 7)
			}
			if st := in.process(0, b.B); st != abi.StatusOK {
				t.Fatalf("status %d: %s", st, h.failMsg)
			}
			var sizes []int
			records := 0
			for _, e := range h.emits {
				sizes = append(sizes, len(e))
				d := abi.NewDecoder(e)
				var ev abi.Event
				for d.More() {
					if err := d.Next(&ev); err != nil {
						t.Fatal(err)
					}
					if ev.Kind != abi.KindRecord || ev.Tag != abi.TagMain || ev.Timestamp != 7 || string(ev.Key) != "k" {
						t.Fatalf("bad output record %+v", ev)
					}
					records++
				}
			}
			if fmt.Sprint(sizes) != fmt.Sprint(c.wantEmits) {
				t.Errorf("emit sizes %v, want %v", sizes, c.wantEmits)
			}
			if records != c.wantRecords {
				t.Errorf("%d records, want %d", records, c.wantRecords)
			}
		})
	}
}

func TestEmitFailureFailsCall(t *testing.T) {
	h := &recordingHost{emitErr: int32(abi.ErrNotAllowed)}
	in := openInternal(t, h, "burst")
	b := abi.AppendRecord(nil, 0, []byte("k"), []byte("1 1"), 0)
	if st := in.process(0, b); st != abi.StatusError {
		t.Fatalf("status %d, want %d", st, abi.StatusError)
	}
	if !strings.Contains(h.failMsg, "emit: weir: not allowed now") {
		t.Errorf("fail message %q", h.failMsg)
	}
}

func TestStackExcerpt(t *testing.T) {
	stack := `goroutine 1 [running]:
runtime/debug.Stack()
	/go/src/runtime/debug/stack.go:26 +0x5e
github.com/weirstream/weir/sdk.(*instance).endCall(...)
	/sdk/instance.go:250 +0x45
panic({0x5, 0x6})
	/go/src/runtime/panic.go:783 +0x132
main.(*Op).Process(...)
	/app/main.go:12 +0x1
github.com/weirstream/weir/sdk.(*instance).process(...)
	/sdk/instance.go:170 +0x2
`
	want := "main.(*Op).Process(...)\n\t/app/main.go:12 +0x1\ngithub.com/weirstream/weir/sdk.(*instance).process(...)\n\t/sdk/instance.go:170 +0x2"
	if got := stackExcerpt([]byte(stack)); got != want {
		t.Errorf("excerpt:\n%s\nwant:\n%s", got, want)
	}
	var long strings.Builder
	long.WriteString("goroutine 1 [running]:\npanic(x)\n\tpanic.go:1\n")
	for i := range 100 {
		fmt.Fprintf(&long, "f%d()\n\tfile.go:%d\n", i, i)
	}
	got := strings.Split(stackExcerpt([]byte(long.String())), "\n")
	if len(got) != maxStackLines+1 || got[0] != "f0()" || got[len(got)-1] != "\t..." {
		t.Errorf("long stack cut to %d lines: first %q last %q", len(got), got[0], got[len(got)-1])
	}
}

func TestFailMessageIsBounded(t *testing.T) {
	h := &recordingHost{}
	in := newInstance(h)
	in.failf(abi.StatusError, "%s", strings.Repeat("x", 10*maxFailMessage))
	if len(h.failMsg) != maxFailMessage {
		t.Errorf("fail message of %d bytes", len(h.failMsg))
	}
}

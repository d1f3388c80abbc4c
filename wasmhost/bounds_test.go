package wasmhost

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/weirstream/weir/abi"
)

// importSpec describes where an import of calls.wat takes (ptr, len) pairs.
type importSpec struct {
	sel   uint32
	name  string
	pairs []pairSpec // in parameter order, which is the order the host checks them
}

// pairSpec is one (ptr, len) pair: arguments ptr and ptr+1.
type pairSpec struct {
	ptr  int
	what string
}

var importSpecs = []importSpec{
	{selLog, "weir.log", []pairSpec{{1, "message"}}},
	{selFail, "weir.fail", []pairSpec{{0, "message"}}},
	{selEmit, "weir.emit", []pairSpec{{0, "records"}}},
	{selStateRegister, "weir.state_register", []pairSpec{{0, "name"}}},
	{selStateGet, "weir.state_get", []pairSpec{{1, "key"}, {3, "sub key"}, {5, "output buffer"}}},
	{selStatePut, "weir.state_put", []pairSpec{{1, "key"}, {3, "sub key"}, {5, "value"}}},
	{selStateDelete, "weir.state_delete", []pairSpec{{1, "key"}, {3, "sub key"}}},
	{selStateAppend, "weir.state_append", []pairSpec{{1, "key"}, {3, "value"}}},
	{selStateScan, "weir.state_scan", []pairSpec{{1, "key"}, {3, "output buffer"}}},
	{selStateClear, "weir.state_clear", []pairSpec{{1, "key"}}},
	{selTimerRegister, "weir.timer_register", []pairSpec{{1, "key"}}},
	{selTimerDelete, "weir.timer_delete", []pairSpec{{1, "key"}}},
	{selWatermark, "weir.watermark", nil},
	{selProcessingTime, "weir.processing_time", nil},
}

// callsMemory is the size of calls.wat's memory (it never grows for
// inputs this small).
const callsMemory = 65536

// badPair returns the first (ptr, len) pair of the call that is outside a
// memory of callsMemory bytes: the one the host must report.
func badPair(spec importSpec, args [7]int64) (pairSpec, bool) {
	for _, p := range spec.pairs {
		ptr, n := uint64(uint32(args[p.ptr])), uint64(uint32(args[p.ptr+1]))
		if ptr+n > callsMemory {
			return p, true
		}
	}
	return pairSpec{}, false
}

// checkBounds runs one call and checks the host's verdict against badPair:
// an out-of-bounds pair must trap with a *BoundsError naming the import and
// the range; in-bounds pairs must never produce one.
func checkBounds(t *testing.T, m *Module, spec importSpec, args [7]int64) {
	t.Helper()
	i, err := m.Instantiate(context.Background(), InstanceConfig{
		Name: "bounds", State: newMemState(), Timers: newFakeTimers(), Limits: Limits{MaxOutputBytes: 1 << 20},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer i.Close(context.Background())
	if err := i.Open(context.Background(), abi.OpenInfo{Operator: "calls"}); err != nil {
		t.Fatal(err)
	}
	// A valid record at the very end of memory, so that an in-bounds emit
	// of [end-18, end) is also well-formed.
	i.mod.Memory().Write(callsMemory-abi.RecordHeaderSize, abi.AppendRecord(nil, 0, nil, nil, 0))

	_, err = i.Process(context.Background(), 0, callArgs(spec.sel, args, []byte("k")))
	var be *BoundsError
	gotBounds := errors.As(err, &be)
	want, wantBounds := badPair(spec, args)
	switch {
	case wantBounds && !gotBounds:
		t.Fatalf("%s%v: error %v, want a BoundsError for %s", spec.name, args, err, want.what)
	case !wantBounds && gotBounds:
		t.Fatalf("%s%v: in-bounds call trapped: %v", spec.name, args, err)
	case wantBounds:
		callError(t, err, FailureABI)
		ptr, n := uint32(args[want.ptr]), uint32(args[want.ptr+1])
		if be.Function() != spec.name || be.Ptr() != ptr || be.Len() != n || be.MemorySize() != callsMemory {
			t.Fatalf("%s%v: %v, want function %s range [%d,+%d)", spec.name, args, err, spec.name, ptr, n)
		}
		msg := fmt.Sprintf("%s: %s [%d, %d+%d) is outside the %d-byte guest memory", spec.name, want.what, ptr, ptr, n, callsMemory)
		if be.Error() != msg {
			t.Fatalf("message %q, want %q", be.Error(), msg)
		}
		if _, err := i.Process(context.Background(), 0, callArgs(selWatermark, [7]int64{}, nil)); !errors.Is(err, ErrClosed) {
			t.Fatalf("instance still usable after a bounds trap: %v", err)
		}
	default:
		// Fine outcomes of in-bounds calls: success, a status (fail, or an
		// unknown selector), or emitted bytes that are not records.
		var ce *CallError
		if errors.As(err, &ce) && ce.Kind() != FailureStatus && ce.Kind() != FailureABI {
			t.Fatalf("%s%v: unexpected failure %v", spec.name, args, err)
		}
	}
}

func TestBoundsEveryImport(t *testing.T) {
	r := newTestRuntime(t, Config{})
	m := compile(t, r, "calls")
	const end = callsMemory
	ranges := []struct {
		name     string
		ptr, len int64
	}{
		{"ends exactly at the end", end - 18, 18},
		{"empty at the end", end, 0},
		{"whole memory", 0, end},
		{"empty at zero", 0, 0},
		{"one byte past the end", end - 17, 18},
		{"empty past the end", end + 1, 0},
		{"one byte too long", 0, end + 1},
		{"max pointer", 0xffffffff, 1},
		{"max pointer, empty", 0xffffffff, 0},
		{"negative length", 1, -1},
		{"negative pointer", -16, 8},
		{"wraps to 0 in 32 bits", 0x80000000, 0x80000000},
		{"wraps to 16 in 32 bits", 0xfffffff0, 0x20},
		{"high bits of the i64 argument ignored", 1<<40 | 10, 1<<33 | 5},
	}
	for _, spec := range importSpecs {
		for _, pair := range spec.pairs {
			for _, rg := range ranges {
				t.Run(fmt.Sprintf("%s/%s/%s", spec.name, pair.what, rg.name), func(t *testing.T) {
					// Every other pair points at the 1-byte payload "k".
					var args [7]int64
					for _, p := range spec.pairs {
						args[p.ptr], args[p.ptr+1] = payloadAddr, 1
					}
					args[pair.ptr], args[pair.ptr+1] = rg.ptr, rg.len
					checkBounds(t, m, spec, args)
				})
			}
		}
	}
}

// TestBoundsInOpen checks that bounds traps work in weir_open too, where
// the error names weir_open.
func TestBoundsInOpen(t *testing.T) {
	r := newTestRuntime(t, Config{})
	m := compile(t, r, "calls")
	i := instantiate(t, m, InstanceConfig{Name: "o", State: newMemState(), Timers: newFakeTimers()})
	cfg := callArgs(selStateRegister, [7]int64{callsMemory - 2, 4, int64(abi.StateValue)}, nil)
	err := i.Open(context.Background(), abi.OpenInfo{Operator: "calls", Config: cfg})
	ce := callError(t, err, FailureABI)
	var be *BoundsError
	if ce.Function() != abi.ExportOpen || !errors.As(err, &be) || be.Function() != "weir.state_register" {
		t.Fatalf("error %v", err)
	}
	want := `wasmhost: instance "o": weir_open: weir.state_register: name [65534, 65534+4) is outside the 65536-byte guest memory`
	if err.Error() != want {
		t.Errorf("error\n got %q\nwant %q", err, want)
	}
}

//go:build wasip1

// Command goguest is a minimal Weir operator module written directly
// against the ABI (package abi and //go:wasmimport, //go:wasmexport), without
// the SDK, for the wasmhost tests. Build with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared
//
// Operators:
//
//	echo   emits every input record unchanged
//	count  (KEYED) counts records per key in value state "count", appends
//	       values to list state "seen", registers an event-time timer at
//	       ts+100, and emits (key, count); a fired timer emits
//	       (key, "fired@<ts> count=<n> seen=<values joined by ,>") and clears
//	       both states; a watermark emits ("wm", <watermark()>)
//	panic  panics in weir_process, recovers, reports status 2 via fail
//	crash  panics in weir_process without recovering (the Go runtime exits 2)
//	oom    allocates memory without bound
//	loop   never returns from weir_process
//	logger logs one line per record through weir.log
package main

import (
	"strconv"
	"unsafe"

	"github.com/weirstream/weir/abi"
)

//go:wasmimport weir log
func hostLog(level int32, ptr unsafe.Pointer, n uint32)

//go:wasmimport weir fail
func hostFail(ptr unsafe.Pointer, n uint32)

//go:wasmimport weir emit
func hostEmit(ptr unsafe.Pointer, n uint32) int32

//go:wasmimport weir state_register
func stateRegister(ptr unsafe.Pointer, n uint32, kind int32) int32

//go:wasmimport weir state_get
func stateGet(id int32, kptr unsafe.Pointer, klen uint32, sptr unsafe.Pointer, slen uint32, optr unsafe.Pointer, ocap uint32) int32

//go:wasmimport weir state_put
func statePut(id int32, kptr unsafe.Pointer, klen uint32, sptr unsafe.Pointer, slen uint32, vptr unsafe.Pointer, vlen uint32) int32

//go:wasmimport weir state_delete
func stateDelete(id int32, kptr unsafe.Pointer, klen uint32, sptr unsafe.Pointer, slen uint32) int32

//go:wasmimport weir state_append
func stateAppend(id int32, kptr unsafe.Pointer, klen uint32, vptr unsafe.Pointer, vlen uint32) int32

//go:wasmimport weir state_scan
func stateScan(id int32, kptr unsafe.Pointer, klen uint32, optr unsafe.Pointer, ocap uint32) int32

//go:wasmimport weir state_clear
func stateClear(id int32, kptr unsafe.Pointer, klen uint32) int32

//go:wasmimport weir timer_register
func timerRegister(domain int32, kptr unsafe.Pointer, klen uint32, ts int64) int32

//go:wasmimport weir watermark
func watermark() int64

func main() {}

var (
	table = abi.AppendOperatorTable(nil, []abi.OperatorInfo{
		{Name: "echo"}, {Name: "count", Flags: abi.FlagKeyed}, {Name: "panic"},
		{Name: "crash"}, {Name: "oom"}, {Name: "loop"}, {Name: "logger"},
	})
	in       []byte // the weir_buffer buffer
	out      abi.Encoder
	getBuf   = make([]byte, 16)
	scanBuf  = make([]byte, 16)
	operator string
	countID  int32
	seenID   int32
	sink     [][]byte // keeps oom allocations alive
	spins    uint64
)

func ptr(b []byte) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(b)) }

func fail(msg string) {
	b := []byte(msg)
	hostFail(ptr(b), uint32(len(b)))
}

//go:wasmexport weir_abi_version
func weirABIVersion() int32 { return abi.Version }

//go:wasmexport weir_operators
func weirOperators() int64 {
	return int64(uintptr(ptr(table)))<<32 | int64(len(table))
}

//go:wasmexport weir_buffer
func weirBuffer(size int32) int32 {
	if cap(in) < int(size) {
		in = make([]byte, size)
	}
	in = in[:size]
	return int32(uintptr(ptr(in)))
}

//go:wasmexport weir_open
func weirOpen(p, n int32) int32 {
	info, err := abi.DecodeOpenInfo(in[:n])
	if err != nil {
		fail(err.Error())
		return int32(abi.StatusBadInput)
	}
	switch info.Operator {
	case "echo", "panic", "crash", "oom", "loop", "logger":
	case "count":
		countID = register("count", abi.StateValue)
		seenID = register("seen", abi.StateList)
		if countID < 0 || seenID < 0 {
			fail("state_register failed: " + strconv.Itoa(int(min(countID, seenID))))
			return int32(abi.StatusError)
		}
	default:
		return int32(abi.StatusUnknownOperator)
	}
	operator = info.Operator
	return int32(abi.StatusOK)
}

func register(name string, kind abi.StateKind) int32 {
	b := []byte(name)
	return stateRegister(ptr(b), uint32(len(b)), int32(kind))
}

//go:wasmexport weir_close
func weirClose() int32 { return int32(abi.StatusOK) }

//go:wasmexport weir_process
func weirProcess(input, p, n int32) (status int32) {
	out.Reset()
	switch operator {
	case "panic":
		defer func() {
			if r := recover(); r != nil {
				fail("recovered: " + r.(string))
				status = int32(abi.StatusPanic)
			}
		}()
		panic("boom")
	case "crash":
		panic("crash!")
	case "oom":
		for {
			b := make([]byte, 1<<20)
			b[len(b)-1] = 1
			sink = append(sink, b)
		}
	case "loop":
		for {
			spins++
		}
	}
	d := abi.NewDecoder(in[:n])
	var ev abi.Event
	for d.More() {
		if err := d.Next(&ev); err != nil {
			fail(err.Error())
			return int32(abi.StatusBadInput)
		}
		var err string
		switch operator {
		case "echo":
			if ev.Kind == abi.KindRecord {
				out.Record(abi.TagMain, ev.Key, ev.Value, ev.Timestamp)
			}
		case "logger":
			if ev.Kind == abi.KindRecord {
				hostLog(int32(abi.LogInfo), ptr(ev.Value), uint32(len(ev.Value)))
			}
		case "count":
			err = count(&ev)
		}
		if err != "" {
			fail(err)
			return int32(abi.StatusError)
		}
	}
	if out.Len() > 0 {
		if e := hostEmit(ptr(out.B), uint32(out.Len())); e != 0 {
			fail("emit: " + strconv.Itoa(int(e)))
			return int32(abi.StatusError)
		}
	}
	return int32(abi.StatusOK)
}

func count(ev *abi.Event) string {
	switch ev.Kind {
	case abi.KindRecord:
		var c uint64
		v, e := get(countID, ev.Key)
		switch {
		case e == int32(abi.ErrNotFound):
		case e < 0:
			return "state_get: " + strconv.Itoa(int(e))
		default:
			c, _ = strconv.ParseUint(string(v), 10, 64)
		}
		c++
		cs := []byte(strconv.FormatUint(c, 10))
		if e := statePut(countID, ptr(ev.Key), uint32(len(ev.Key)), nil, 0, ptr(cs), uint32(len(cs))); e != 0 {
			return "state_put: " + strconv.Itoa(int(e))
		}
		if e := stateAppend(seenID, ptr(ev.Key), uint32(len(ev.Key)), ptr(ev.Value), uint32(len(ev.Value))); e != 0 {
			return "state_append: " + strconv.Itoa(int(e))
		}
		if ev.Timestamp != abi.NoTimestamp {
			if e := timerRegister(int32(abi.EventTime), ptr(ev.Key), uint32(len(ev.Key)), ev.Timestamp+100); e != 0 {
				return "timer_register: " + strconv.Itoa(int(e))
			}
		}
		out.Record(abi.TagMain, ev.Key, cs, ev.Timestamp)
	case abi.KindTimer:
		v, e := get(countID, ev.Key)
		switch {
		case e == int32(abi.ErrNotFound):
			v = []byte("0") // an earlier timer of this key cleared it
		case e < 0:
			return "state_get in timer: " + strconv.Itoa(int(e))
		}
		msg := "fired@" + strconv.FormatInt(ev.Timestamp, 10) + " count=" + string(v) + " seen="
		s, e := scan(seenID, ev.Key)
		if e < 0 {
			return "state_scan: " + strconv.Itoa(int(e))
		}
		r := abi.NewScanReader(s)
		for j := 0; ; j++ {
			_, val, ok := r.Next()
			if !ok {
				break
			}
			if j > 0 {
				msg += ","
			}
			msg += string(val)
		}
		if e := stateDelete(countID, ptr(ev.Key), uint32(len(ev.Key)), nil, 0); e != 0 {
			return "state_delete: " + strconv.Itoa(int(e))
		}
		if e := stateClear(seenID, ptr(ev.Key), uint32(len(ev.Key))); e != 0 {
			return "state_clear: " + strconv.Itoa(int(e))
		}
		out.Record(abi.TagMain, ev.Key, []byte(msg), ev.Timestamp)
	case abi.KindWatermark:
		out.Record(abi.TagMain, []byte("wm"), []byte(strconv.FormatInt(watermark(), 10)), ev.Timestamp)
	}
	return ""
}

// get reads a value, growing the buffer when the host reports a longer one.
func get(id int32, key []byte) ([]byte, int32) {
	for {
		n := stateGet(id, ptr(key), uint32(len(key)), nil, 0, ptr(getBuf), uint32(len(getBuf)))
		if n < 0 {
			return nil, n
		}
		if int(n) <= len(getBuf) {
			return getBuf[:n], n
		}
		getBuf = make([]byte, n)
	}
}

func scan(id int32, key []byte) ([]byte, int32) {
	for {
		n := stateScan(id, ptr(key), uint32(len(key)), ptr(scanBuf), uint32(len(scanBuf)))
		if n < 0 {
			return nil, n
		}
		if int(n) <= len(scanBuf) {
			return scanBuf[:n], n
		}
		scanBuf = make([]byte, n)
	}
}

//go:build wasip1

// The exports are called by the host (//go:wasmexport), which staticcheck
// does not know.
//lint:file-ignore U1000 reached from //go:wasmexport functions

package sdk

import (
	"unsafe"

	"github.com/weirstream/weir/abi"
)

// This file is the Wasm side of ABI version 1: the six exports and the
// `weir` imports. A module is one instance of one operator, so the exports
// drive a single package-level instance, created on first use (after every
// init function has run and exported its operators).

var wasm struct {
	in    *instance
	arg   []byte // the weir_buffer buffer
	table []byte // the encoded operator table, built on first use
}

func wasmInstance() *instance {
	if wasm.in == nil {
		wasm.in = newInstance(wasmHost{})
		wasm.in.direct = true
	}
	return wasm.in
}

//go:wasmexport weir_abi_version
func weirABIVersion() int32 { return abi.Version }

//go:wasmexport weir_operators
func weirOperators() int64 {
	if wasm.table == nil {
		wasm.table = abi.AppendOperatorTable(nil, exports.infos())
	}
	t := wasm.table
	return int64(uintptr(unsafe.Pointer(unsafe.SliceData(t))))<<32 | int64(len(t))
}

//go:wasmexport weir_buffer
func weirBuffer(size int32) int32 {
	if size < 0 {
		return 0
	}
	if int(size) > cap(wasm.arg) || cap(wasm.arg) == 0 {
		// Grow geometrically so that slowly growing batches do not
		// reallocate every call; keep at least one byte so that the pointer
		// is never nil.
		n := max(int(size), 2*cap(wasm.arg), 64<<10)
		wasm.arg = make([]byte, n)
	}
	wasm.arg = wasm.arg[:cap(wasm.arg)]
	return int32(uintptr(unsafe.Pointer(unsafe.SliceData(wasm.arg))))
}

// argument returns the bytes the host wrote into the weir_buffer buffer,
// checking that (ptr, n) is that buffer.
func argument(ptr, n int32) ([]byte, bool) {
	if n == 0 {
		return nil, true
	}
	if n < 0 || int(n) > len(wasm.arg) || ptr != int32(uintptr(unsafe.Pointer(unsafe.SliceData(wasm.arg)))) {
		return nil, false
	}
	return wasm.arg[:n], true
}

//go:wasmexport weir_open
func weirOpen(ptr, n int32) int32 {
	in := wasmInstance()
	arg, ok := argument(ptr, n)
	if !ok {
		return int32(in.failf(abi.StatusBadInput, "sdk: weir_open: argument (%d, %d) is not the weir_buffer buffer", ptr, n))
	}
	return int32(in.open(arg))
}

//go:wasmexport weir_process
func weirProcess(input, ptr, n int32) int32 {
	in := wasmInstance()
	arg, ok := argument(ptr, n)
	if !ok {
		return int32(in.failf(abi.StatusBadInput, "sdk: weir_process: argument (%d, %d) is not the weir_buffer buffer", ptr, n))
	}
	return int32(in.process(int(input), arg))
}

//go:wasmexport weir_close
func weirClose() int32 { return int32(wasmInstance().close()) }

// Host imports. Slices are passed as (pointer, length); a nil pointer with
// length 0 is a valid empty range.

//go:wasmimport weir log
func hostLog(level int32, msg string)

//go:wasmimport weir fail
func hostFail(msg string)

//go:wasmimport weir emit
func hostEmit(ptr *byte, n uint32) int32

//go:wasmimport weir state_register
func hostStateRegister(name string, kind int32) int32

//go:wasmimport weir state_get
func hostStateGet(id int32, kp *byte, kn uint32, sp *byte, sn uint32, op *byte, on uint32) int32

//go:wasmimport weir state_put
func hostStatePut(id int32, kp *byte, kn uint32, sp *byte, sn uint32, vp *byte, vn uint32) int32

//go:wasmimport weir state_delete
func hostStateDelete(id int32, kp *byte, kn uint32, sp *byte, sn uint32) int32

//go:wasmimport weir state_append
func hostStateAppend(id int32, kp *byte, kn uint32, vp *byte, vn uint32) int32

//go:wasmimport weir state_scan
func hostStateScan(id int32, kp *byte, kn uint32, op *byte, on uint32) int32

//go:wasmimport weir state_clear
func hostStateClear(id int32, kp *byte, kn uint32) int32

//go:wasmimport weir timer_register
func hostTimerRegister(domain int32, kp *byte, kn uint32, ts int64) int32

//go:wasmimport weir timer_delete
func hostTimerDelete(domain int32, kp *byte, kn uint32, ts int64) int32

//go:wasmimport weir watermark
func hostWatermark() int64

//go:wasmimport weir processing_time
func hostProcessingTime() int64

// wasmBuild reports that this is the Wasm build: the instance of the
// exports calls the state imports directly (instance.direct).
const wasmBuild = true

// importStateGet, importStatePut and importStateDelete call the imports
// with slices; they are inlined into their callers, so that a state access
// costs one Go call (the import's wrapper) besides the host's work.
func importStateGet(id int32, key, sub, out []byte) int32 {
	return hostStateGet(id, unsafe.SliceData(key), uint32(len(key)), unsafe.SliceData(sub), uint32(len(sub)), unsafe.SliceData(out), uint32(len(out)))
}

func importStatePut(id int32, key, sub, value []byte) int32 {
	return hostStatePut(id, unsafe.SliceData(key), uint32(len(key)), unsafe.SliceData(sub), uint32(len(sub)), unsafe.SliceData(value), uint32(len(value)))
}

func importStateDelete(id int32, key, sub []byte) int32 {
	return hostStateDelete(id, unsafe.SliceData(key), uint32(len(key)), unsafe.SliceData(sub), uint32(len(sub)))
}

// wasmHost implements host with the imports.
type wasmHost struct{}

func ptr(b []byte) *byte { return unsafe.SliceData(b) }

func (wasmHost) log(level abi.LogLevel, msg string) { hostLog(int32(level), msg) }
func (wasmHost) fail(msg string)                    { hostFail(msg) }
func (wasmHost) emit(b []byte) int32                { return hostEmit(ptr(b), uint32(len(b))) }

func (wasmHost) stateRegister(name string, kind abi.StateKind) int32 {
	return hostStateRegister(name, int32(kind))
}

func (wasmHost) stateGet(id int32, key, sub, out []byte) int32 {
	return importStateGet(id, key, sub, out)
}

func (wasmHost) statePut(id int32, key, sub, value []byte) int32 {
	return importStatePut(id, key, sub, value)
}

func (wasmHost) stateDelete(id int32, key, sub []byte) int32 {
	return importStateDelete(id, key, sub)
}

func (wasmHost) stateAppend(id int32, key, value []byte) int32 {
	return hostStateAppend(id, ptr(key), uint32(len(key)), ptr(value), uint32(len(value)))
}

func (wasmHost) stateScan(id int32, key, out []byte) int32 {
	return hostStateScan(id, ptr(key), uint32(len(key)), ptr(out), uint32(len(out)))
}

func (wasmHost) stateClear(id int32, key []byte) int32 {
	return hostStateClear(id, ptr(key), uint32(len(key)))
}

func (wasmHost) timerRegister(d abi.TimeDomain, key []byte, ts int64) int32 {
	return hostTimerRegister(int32(d), ptr(key), uint32(len(key)), ts)
}

func (wasmHost) timerDelete(d abi.TimeDomain, key []byte, ts int64) int32 {
	return hostTimerDelete(int32(d), ptr(key), uint32(len(key)), ts)
}

func (wasmHost) watermark() int64      { return hostWatermark() }
func (wasmHost) processingTime() int64 { return hostProcessingTime() }

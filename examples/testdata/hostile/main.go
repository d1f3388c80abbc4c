// Command hostile is a test module written with the SDK whose operator
// misbehaves as each record's value says: loop, panic, oom, flood, badptr,
// exit, error; any other value is echoed.
package main

import (
	"errors"
	"os"
	"unsafe"

	"github.com/weirstream/weir/sdk"
)

//go:wasmimport weir emit
func rawEmit(ptr unsafe.Pointer, n uint32) int32

type hostile struct{ hoard [][]byte }

func (h *hostile) Process(ctx *sdk.Context, r sdk.Record) error {
	switch string(r.Value) {
	case "loop":
		n := 0
		for {
			n++
		}
	case "panic":
		var m map[string]int
		m["x"] = 1 // nil map write: a Go panic
	case "oom":
		for {
			h.hoard = append(h.hoard, make([]byte, 1<<20))
		}
	case "flood":
		big := make([]byte, 64<<10)
		for {
			ctx.Emit(r.Key, big)
		}
	case "badptr":
		rawEmit(unsafe.Pointer(uintptr(0xfffffff0)), 64)
	case "exit":
		os.Exit(3)
	case "error":
		return errors.New("operator refuses this record")
	}
	ctx.Emit(r.Key, r.Value)
	return nil
}

func init() { sdk.Export("hostile", func() sdk.Operator { return &hostile{} }) }

func main() {}

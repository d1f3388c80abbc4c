//go:build !wasip1

package sdk

// Outside the Wasm build there are no imports: instances always call their
// host (instance.direct is never set), and the compiler drops the branches
// that would call these.
const wasmBuild = false

func importStateGet(int32, []byte, []byte, []byte) int32 { panic("sdk: no Wasm imports in this build") }
func importStatePut(int32, []byte, []byte, []byte) int32 { panic("sdk: no Wasm imports in this build") }
func importStateDelete(int32, []byte, []byte) int32      { panic("sdk: no Wasm imports in this build") }

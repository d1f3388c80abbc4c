//go:build !(386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64 || wasm)

package queries

import (
	"encoding/binary"
	"unsafe"
)

// load64, load32 and store64: see endian_le.go. Big-endian machines swap.

func load64(p unsafe.Pointer, i int) uint64 {
	return binary.LittleEndian.Uint64(unsafe.Slice((*byte)(unsafe.Add(p, i)), 8))
}

func load32(p unsafe.Pointer, i int) uint32 {
	return binary.LittleEndian.Uint32(unsafe.Slice((*byte)(unsafe.Add(p, i)), 4))
}

func store64(p unsafe.Pointer, i int, v uint64) {
	binary.LittleEndian.PutUint64(unsafe.Slice((*byte)(unsafe.Add(p, i)), 8), v)
}

//go:build 386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64 || wasm

package queries

import "unsafe"

// load64, load32 and store64 read and write little-endian integers at
// p+i without bounds checks. In Go compiled to Wasm a bounds check costs a
// jump through the function's dispatch table on the path where it passes;
// the callers prove their offsets in range instead. On little-endian
// machines (this file) they are single loads and stores.

func load64(p unsafe.Pointer, i int) uint64 { return *(*uint64)(unsafe.Add(p, i)) }

func load32(p unsafe.Pointer, i int) uint32 { return *(*uint32)(unsafe.Add(p, i)) }

func store64(p unsafe.Pointer, i int, v uint64) { *(*uint64)(unsafe.Add(p, i)) = v }

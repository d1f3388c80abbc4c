//go:build unix

package wasmhost

import (
	"errors"
	"math"
	"syscall"
)

// reserve maps n bytes of anonymous, private memory without reserving swap:
// pages are committed when first touched.
func reserve(n uint64) ([]byte, error) {
	if n == 0 || n > math.MaxInt {
		return nil, errors.New("reservation size out of range")
	}
	return syscall.Mmap(-1, 0, int(n), syscall.PROT_READ|syscall.PROT_WRITE,
		syscall.MAP_PRIVATE|syscall.MAP_ANON|mapNoReserve)
}

func unreserve(b []byte) error { return syscall.Munmap(b) }

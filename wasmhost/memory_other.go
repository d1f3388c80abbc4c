//go:build !unix

package wasmhost

import "errors"

var errNoMmap = errors.New("no mmap on this platform")

// reserve is unavailable here: linear memory lives on the Go heap.
func reserve(uint64) ([]byte, error) { return nil, errNoMmap }

func unreserve([]byte) error { return nil }

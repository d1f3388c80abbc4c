package wasmhost

import (
	"sync"

	"github.com/tetratelabs/wazero/experimental"
)

// pageSize is the WebAssembly page size.
const pageSize = 65536

// linearMemory backs one instance's linear memory (wazero's
// experimental.MemoryAllocator and LinearMemory) and enforces
// Limits.MemoryPages.
//
// Why a custom allocator: wazero's own limit (WithMemoryLimitPages) is per
// runtime and applied when a module is compiled, but the limit is per
// tenant and a module is compiled once for everyone. Reallocate refuses to
// grow past the instance's limit, which wazero turns into memory.grow
// returning -1, exactly as a declared maximum would.
//
// Where the platform allows (unix), the memory is one anonymous mapping
// that reserves the whole limit up front and is committed page by page as
// the guest touches it: growing never copies, untouched pages cost nothing,
// the guest's memory is not part of the Go heap (so it does not inflate the
// GC's heap goal), and Close returns it to the OS at once. Elsewhere, or if
// the mapping fails, it is an ordinary Go slice grown by doubling.
type linearMemory struct {
	max uint64 // bytes

	// mu guards the mapping's lifetime. wazero frees the memory when the
	// module is closed, and Runtime.Close may do that from another
	// goroutine while a call is still executing; unmapping then would
	// fault the host. So Free only unmaps between calls, and a call that
	// ends after a deferred Free unmaps.
	mu          sync.Mutex
	mapped      []byte // the reservation, len = reserved bytes; nil if not mapped
	heap        []byte // the memory when not mapped
	inCall      bool
	freePending bool
	freed       bool
}

// Allocate implements experimental.MemoryAllocator. wazero calls it once per
// instantiation; the instance owns exactly one memory (Weir modules may not
// import one, and multi-memory is not enabled).
func (m *linearMemory) Allocate(capacity, _ uint64) experimental.LinearMemory {
	if b, err := reserve(m.max); err == nil {
		m.mapped = b
		return m
	}
	m.heap = make([]byte, 0, min(capacity, m.max))
	return m
}

// Reallocate implements experimental.LinearMemory: grow to size bytes, or
// nil when that exceeds the limit.
func (m *linearMemory) Reallocate(size uint64) []byte {
	if size > m.max {
		return nil
	}
	if m.mapped != nil {
		// Memory never shrinks and fresh anonymous pages are zero, as Wasm
		// requires of new pages.
		return m.mapped[:size:size]
	}
	if size <= uint64(cap(m.heap)) {
		m.heap = m.heap[:size]
		return m.heap
	}
	// Doubling (capped at the limit) so a guest that grows page by page
	// does not copy its memory on every grow.
	c := max(2*uint64(cap(m.heap)), size)
	c = min(c, m.max)
	nb := make([]byte, size, c)
	copy(nb, m.heap)
	m.heap = nb
	return nb
}

// Free implements experimental.LinearMemory. It is idempotent: the instance
// also calls it when instantiation fails, which wazero does not.
func (m *linearMemory) Free() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.inCall {
		m.freePending = true
		return
	}
	m.release()
}

func (m *linearMemory) release() {
	if m.freed {
		return
	}
	m.freed = true
	if m.mapped != nil {
		_ = unreserve(m.mapped)
		m.mapped = nil
	}
	m.heap = nil
}

// enter marks the start of a guest call (or instantiation).
func (m *linearMemory) enter() {
	m.mu.Lock()
	m.inCall = true
	m.mu.Unlock()
}

// leave marks its end, and performs a Free that arrived meanwhile.
func (m *linearMemory) leave() {
	m.mu.Lock()
	m.inCall = false
	if m.freePending {
		m.release()
	}
	m.mu.Unlock()
}

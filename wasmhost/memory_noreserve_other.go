//go:build unix && !linux

package wasmhost

// mapNoReserve is Linux-only; elsewhere anonymous mappings are lazily
// committed anyway.
const mapNoReserve = 0

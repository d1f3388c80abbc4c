// Package state owns keyed state and timers: the Backend interface, an
// in-memory backend and a Pebble backend, and the conformance suite both pass
// (package statetest).
//
// It knows key groups (the unit of sharding and of rescaling) but nothing of
// jobs, Wasm or the network. The runtime computes key groups with
// abi.KeyGroup and checks ownership before calling a backend.
package state

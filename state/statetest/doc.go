// Package statetest is the conformance suite of state.Backend: the behaviour
// every backend must share (registration, value/map/list state, isolation of
// cells, the lifetime of returned slices, timers). A backend's tests call
// RunConformance with a function that opens a fresh, empty backend.
//
// It knows only the state package's public API; it must not know any
// backend's internals, so that a new backend is tested by the same contract.
package statetest

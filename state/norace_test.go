//go:build !race

package state_test

// raceEnabled: the race detector changes allocation counts.
const raceEnabled = false

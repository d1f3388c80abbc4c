// Command spinguest is a Go guest (GOOS=wasip1, -buildmode=c-shared) whose
// export spin never returns: the interrupt tests build it and stop it with
// the flag. It calls env.started first so that the test knows the call is
// running.
package main

//go:wasmimport env started
func started()

var sink uint64

//go:wasmexport spin
func spin() int32 {
	started()
	x := uint64(1)
	for {
		// Arithmetic the compiler cannot drop: an xorshift that never
		// reaches 0, so the loop never ends.
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		if x == 0 {
			break
		}
	}
	sink = x
	return int32(x)
}

//go:wasmexport fib
func fib(n int32) int32 {
	if n < 2 {
		return n
	}
	return fib(n-1) + fib(n-2)
}

func main() {}

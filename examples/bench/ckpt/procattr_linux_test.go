package main

import "syscall"

// procAttr makes the kernel kill the MinIO server when the benchmark
// process dies without running its cleanups (a timeout panics out of
// them), so that no server outlives `go test`.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

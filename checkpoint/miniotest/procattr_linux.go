package miniotest

import "syscall"

// procAttr makes the kernel kill the server when the test process dies
// without running its cleanups (a test timeout panics out of them), so no
// MinIO outlives `go test`.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

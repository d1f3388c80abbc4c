//go:build !linux

package miniotest

import "syscall"

// procAttr: only Linux can tie the server's life to the test process;
// elsewhere t.Cleanup alone stops it.
func procAttr() *syscall.SysProcAttr { return nil }

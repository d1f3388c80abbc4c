//go:build !linux && !wasip1

package main

import "syscall"

// procAttr: only Linux can tie the server's life to ours; elsewhere the
// benchmark's cleanup is the only thing that stops it.
func procAttr() *syscall.SysProcAttr { return nil }

//go:build !v2 && !mapkind && !renamed

package main

const variant = "v1"

//go:build v2

package main

const variant = "v2"

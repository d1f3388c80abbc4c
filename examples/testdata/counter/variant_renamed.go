//go:build renamed

package main

const variant = "renamed"

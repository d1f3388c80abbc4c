//go:build mapkind

package main

const variant = "mapkind"

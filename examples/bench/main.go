// Command bench is the Weir benchmark module: the operators of
// examples/internal/benchops ("map" and "keyedcount") built for Wasm, to be
// compared with the same code run natively.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o bench.wasm .
package main

import _ "github.com/weirstream/weir/examples/internal/benchops"

func main() {}

// Command nexmark is the Weir Nexmark module: the queries q0, q1, q2, q3,
// q4, q5, q7 and q8 of the Nexmark benchmark as operators (package
// examples/nexmark/queries, which the module's benchmarks also run
// natively), with one job spec per query (q0.yaml ... q8.yaml) reading the
// "nexmark" source. README.md describes the queries and their output.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o nexmark.wasm .
package main

import _ "github.com/weirstream/weir/examples/nexmark/queries"

func main() {}

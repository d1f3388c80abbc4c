// Package kafka holds the Kafka end-to-end benchmarks (kafka_test.go):
// Kafka source → Wasm map operator → Kafka sink through the real runtime,
// at-least-once and exactly-once, against franz-go's kfake broker.
//
//	go test -run '^$' -bench Kafka -benchtime 2x ./examples/bench/kafka/
//
// The broker runs in a child process (the test binary started again with
// WEIR_KFAKE_CHILD set), so that the job's CPU time (getrusage of this
// process) and the broker's (read from /proc) are reported apart: the
// records per CPU-second of Weir are not diluted by the fake broker, whose
// cost says nothing about a real Kafka cluster.
//
// The package has no code of its own besides the benchmarks; the operator
// is examples/internal/benchops' "map", built for Wasm from examples/bench.
package kafka

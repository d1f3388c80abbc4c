package connectors

// Kafka connectors in real jobs: the runtime with checkpoints every 50ms,
// tasks killed at random points, a broker that goes away and comes back;
// a read_committed consumer must then see every record exactly once.

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirstream/weir/checkpoint"
	"github.com/weirstream/weir/runtime"
	"github.com/weirstream/weir/runtime/runtimetest"
)

// kafkaConnectors are the package's connectors plus "throttled-kafka":
// the Kafka source letting at most per records through per millisecond, so
// that a bounded input lasts long enough for checkpoints and failures.
func kafkaConnectors(per int) runtime.Connectors {
	var c runtime.Connectors
	Register(&c)
	c.Sources["throttled-kafka"] = runtimetest.Throttle(c.Sources["kafka"], per, time.Millisecond)
	return c
}

// compileKafkaJob compiles spec (fmt arguments applied) with checkpoints
// in a temporary folder.
func compileKafkaJob(t *testing.T, k *runtimetest.Chaos, per int, events func(runtime.Event), spec string, args ...any) *runtime.Job {
	t.Helper()
	s, err := runtime.ParseSpec([]byte(fmt.Sprintf(spec, args...)))
	if err != nil {
		t.Fatal(err)
	}
	store, err := checkpoint.OpenStorage(t.TempDir(), checkpoint.StorageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	opts := runtime.Options{
		Connectors: kafkaConnectors(per),
		Checkpoint: &runtime.CheckpointOptions{Storage: store},
		OnEvent: func(e runtime.Event) {
			if k != nil {
				k.Event(e)
			}
			if events != nil {
				events(e)
			}
		},
	}
	if k != nil {
		opts.InjectFault = k.Fault
	}
	job, err := runtime.Compile(context.Background(), s, opts)
	if err != nil {
		t.Fatal(err)
	}
	return job
}

// runKafkaJob compiles the job and runs it to its end.
func runKafkaJob(t *testing.T, k *runtimetest.Chaos, per int, spec string, args ...any) {
	t.Helper()
	job := compileKafkaJob(t, k, per, nil, spec, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := job.Run(ctx); err != nil {
		t.Fatalf("job failed: %v", err)
	}
}

// checkSequence checks that recs hold the values 0..n-1, each exactly
// once (atLeast: at least once).
func checkSequence(t *testing.T, recs []*kgo.Record, n int, atLeast bool) {
	t.Helper()
	seen := make([]int, n)
	for _, r := range recs {
		i, err := strconv.Atoi(string(r.Value))
		if err != nil || i < 0 || i >= n {
			t.Fatalf("unexpected record %q", r.Value)
		}
		seen[i]++
	}
	dups := 0
	for i, c := range seen {
		switch {
		case c == 0:
			t.Fatalf("record %d missing (%d records read)", i, len(recs))
		case c > 1 && !atLeast:
			t.Fatalf("record %d read %d times", i, c)
		case c > 1:
			dups++
		}
	}
	t.Logf("%d records, %d distinct, %d duplicated", len(recs), n, dups)
}

const datagenToKafka = `
name: datagen-to-kafka
nodes:
  - id: gen
    source: datagen
    parallelism: 2
    config: {count: %d, rate: %d}
  - id: out
    sink: kafka
    parallelism: 2
    config: {brokers: %s, topic: out, deliveryGuarantee: %s%s}
    inputs: [gen]
checkpoints: {interval: 50ms}
restart: {strategy: fixed, attempts: 1000, delay: 1ms}
`

// TestKafkaSinkJobExactlyOnce: datagen → Kafka sink in exactly-once mode,
// with tasks killed mid-run: a read_committed consumer sees every record
// exactly once. The same job at-least-once sees every record at least
// once (and, with the kills, some twice).
func TestKafkaSinkJobExactlyOnce(t *testing.T) {
	const n = 12000
	for _, mode := range []string{"exactly-once", "at-least-once"} {
		t.Run(mode, func(t *testing.T) {
			_, addrs := newKafkaCluster(t, kfake.SeedTopics(3, "out"))
			prefix := ""
			if mode == "exactly-once" {
				prefix = ", transactionalIdPrefix: gen-out"
			}
			k := runtimetest.NewChaos(11+uint64(len(mode)), 4)
			runKafkaJob(t, k, 0, datagenToKafka, n, n/2, brokersJSON(addrs), mode, prefix)
			if k.Failures() < 2 {
				t.Fatalf("only %d tasks killed", k.Failures())
			}
			checkSequence(t, readTopic(t, addrs, "out", true), n, mode == "at-least-once")
		})
	}
}

const kafkaToKafka = `
name: kafka-to-kafka
nodes:
  - id: in
    source: throttled-kafka
    parallelism: 2
    config: {brokers: %[1]s, topics: [in], stopAtEnd: true, groupId: weir-test}
  - id: out
    sink: kafka
    parallelism: 3
    config: {brokers: %[1]s, topic: out, deliveryGuarantee: exactly-once, transactionalIdPrefix: k2k}
    inputs: [{from: in, partition: rebalance}]
checkpoints: {interval: 50ms}
restart: {strategy: fixed, attempts: 1000, delay: 1ms}
`

// fillSequence writes the values 0..n-1 over the partitions of topic.
func fillSequence(t testing.TB, addrs []string, topic string, partitions int32, n int) {
	t.Helper()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: topic, Partition: int32(i) % partitions, Value: []byte(strconv.Itoa(i))}
	}
	produceTo(t, addrs, recs...)
}

// TestKafkaToKafkaJobExactlyOnce: Kafka source → Kafka sink exactly-once,
// at different parallelisms, with tasks killed mid-run.
func TestKafkaToKafkaJobExactlyOnce(t *testing.T) {
	const n = 12000
	_, addrs := newKafkaCluster(t, kfake.SeedTopics(4, "in", "out"))
	fillSequence(t, addrs, "in", 4, n)
	k := runtimetest.NewChaos(5, 4)
	runKafkaJob(t, k, 8, kafkaToKafka, brokersJSON(addrs))
	if k.Failures() < 2 {
		t.Fatalf("only %d tasks killed", k.Failures())
	}
	checkSequence(t, readTopic(t, addrs, "out", true), n, false)
}

// TestKafkaBrokerRestart: the brokers go away while a Kafka → Kafka
// exactly-once job runs and come back (same ports, same data); the job
// waits for them, goes on and finishes with every record exactly once.
func TestKafkaBrokerRestart(t *testing.T) {
	const n = 12000
	dir := t.TempDir()
	cluster, addrs := newKafkaCluster(t, kfake.DataDir(dir), kfake.SeedTopics(4, "in", "out"))
	ports := portsOf(t, addrs)
	fillSequence(t, addrs, "in", 4, n)
	var failed, checkpoints atomic.Int64
	job := compileKafkaJob(t, nil, 8, func(e runtime.Event) {
		switch e.Kind {
		case runtime.EventFailed:
			failed.Add(1)
		case runtime.EventCheckpoint:
			checkpoints.Add(1)
		}
	}, kafkaToKafka, brokersJSON(addrs))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- job.Run(ctx) }()
	waitFor(t, "three checkpoints", func() bool { return checkpoints.Load() >= 3 })
	cluster.Close()
	before := checkpoints.Load()
	// The brokers stay away until the job noticed (a task failed) or for
	// a second, whichever comes first.
	outage := time.Now().Add(time.Second)
	waitFor(t, "the outage", func() bool { return failed.Load() > 0 || time.Now().After(outage) })
	restarted, err := kfake.NewCluster(kfake.DataDir(dir), kfake.Ports(ports...))
	if err != nil {
		t.Fatalf("restart kfake on %v: %v", ports, err)
	}
	t.Cleanup(restarted.Close)
	if err := <-done; err != nil {
		t.Fatalf("job failed: %v", err)
	}
	t.Logf("checkpoints before the outage %d, in all %d; task failures %d", before, checkpoints.Load(), failed.Load())
	if checkpoints.Load() <= before {
		t.Fatal("no checkpoint completed after the brokers came back")
	}
	checkSequence(t, readTopic(t, addrs, "out", true), n, false)
}

package kafka

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirstream/weir/checkpoint"
	"github.com/weirstream/weir/connectors"
	"github.com/weirstream/weir/runtime"
	"github.com/weirstream/weir/wasmhost"
	"github.com/weirstream/weir/wasmhost/wasmtest"
)

// childEnv makes the test binary a kfake broker process (see doc.go).
const childEnv = "WEIR_KFAKE_CHILD"

// Shape of the benchmark input.
const (
	records    = 1_000_000
	valueSize  = 100
	partitions = 4
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(serveKfake())
	}
	os.Exit(m.Run())
}

// serveKfake runs a kfake cluster with the input topic, prints its
// addresses on one line and serves until its standard input closes.
func serveKfake() int {
	c, err := kfake.NewCluster(kfake.SeedTopics(partitions, "in"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "kfake:", err)
		return 1
	}
	fmt.Println(strings.Join(c.ListenAddrs(), ","))
	_, _ = io.Copy(io.Discard, os.Stdin)
	c.Close()
	return 0
}

// broker is the kfake child process.
type broker struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addrs []string
}

func startBroker(b *testing.B) *broker {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	br := &broker{cmd: cmd, stdin: stdin}
	b.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("kfake child: %v", err)
	}
	br.addrs = strings.Split(strings.TrimSpace(line), ",")
	return br
}

// cpu returns the CPU time (user+system) the broker process used so far,
// from /proc/<pid>/stat (fields 14 and 15, in clock ticks of 1/100 s, the
// USER_HZ of every Linux architecture Go supports).
func (br *broker) cpu(b *testing.B) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", br.cmd.Process.Pid))
	if err != nil {
		b.Fatalf("broker CPU time: %v", err)
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	fields := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// selfCPU is the CPU time (user+system) this process used so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func newClient(b *testing.B, addrs []string, opts ...kgo.Opt) *kgo.Client {
	b.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addrs...), kgo.DisableClientMetrics()}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cl.Close)
	return cl
}

// fill writes the input: records values of valueSize lowercase letters
// (the map operator upper-cases them) with keys k0..k99999.
func fill(b *testing.B, addrs []string) {
	b.Helper()
	cl := newClient(b, addrs, kgo.DefaultProduceTopic("in"), kgo.ProducerLinger(5*time.Millisecond))
	value := []byte(strings.Repeat("abcdefghij", valueSize/10))
	ctx := context.Background()
	var failed atomic.Pointer[error]
	for i := range records {
		cl.Produce(ctx, &kgo.Record{Key: []byte("k" + strconv.Itoa(i%100_000)), Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.CompareAndSwap(nil, &err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
}

func createTopic(b *testing.B, addrs []string, topic string) {
	b.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, partitions, 1
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), newClient(b, addrs))
	if err == nil {
		err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
	}
	if err != nil {
		b.Fatalf("create topic %s: %v", topic, err)
	}
}

// count reads topic to its end (read_committed) and returns how many
// records it holds, checking that the map operator ran on each.
func count(b *testing.B, addrs []string, topic string) int {
	b.Helper()
	cl := newClient(b, addrs, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n := 0
	for n < records {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		var bad error
		fs.EachRecord(func(r *kgo.Record) {
			if n++; bad == nil && !strings.HasPrefix(string(r.Value), "ABCDEFGHIJ") {
				bad = fmt.Errorf("record %q was not mapped", r.Value)
			}
		})
		if bad != nil {
			b.Fatal(bad)
		}
	}
	return n
}

const pipelineSpec = `
name: kafka-bench
modules: {bench: {path: %[1]q}}
nodes:
  - id: in
    source: kafka
    config: {brokers: %[2]s, topics: [in], stopAtEnd: true}
  - {id: op, module: bench, operator: map, inputs: [in]}
  - id: out
    sink: kafka
    config: {brokers: %[2]s, topic: %[3]s, deliveryGuarantee: %[4]s%[5]s}
    inputs: [op]
checkpoints: {interval: 1s}
`

// BenchmarkKafkaPipeline: Kafka source → Wasm map → Kafka sink over a
// pre-filled topic of a million 100-byte records, at-least-once and
// exactly-once (transactions committed by checkpoints every second), at
// parallelism 1. Reported: records/s (wall clock), records/cpu-s of this
// process (Weir: source, operator, sink and the runtime) and including
// the broker process.
func BenchmarkKafkaPipeline(b *testing.B) {
	mods, err := wasmtest.Modules(map[string]wasmtest.Source{"bench": {Pkg: "bench"}})
	if err != nil {
		b.Fatal(err)
	}
	wasmPath := filepath.Join(b.TempDir(), "bench.wasm")
	if err := os.WriteFile(wasmPath, mods["bench"], 0o644); err != nil {
		b.Fatal(err)
	}
	rt, err := wasmhost.NewRuntime(context.Background(), wasmhost.Config{CacheDir: wasmtest.CacheDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer rt.Close(context.Background())
	br := startBroker(b)
	fill(b, br.addrs)
	brokers := `["` + strings.Join(br.addrs, `", "`) + `"]`
	var conns runtime.Connectors
	connectors.Register(&conns)
	conns.Sources["kafka"] = connectors.NewKafkaSourceFactory()
	conns.Sinks["kafka"] = connectors.NewKafkaSinkFactory()
	run := 0
	for _, mode := range []string{"at-least-once", "exactly-once"} {
		b.Run(mode, func(b *testing.B) {
			b.StopTimer()
			var wall, cpu, brokerCPU time.Duration
			for i := 0; i < b.N; i++ {
				run++
				topic := fmt.Sprintf("out-%d", run)
				createTopic(b, br.addrs, topic)
				extra := ""
				if mode == "exactly-once" {
					extra = ", transactionalIdPrefix: " + topic
				}
				spec, err := runtime.ParseSpec([]byte(fmt.Sprintf(pipelineSpec, wasmPath, brokers, topic, mode, extra)))
				if err != nil {
					b.Fatal(err)
				}
				store, err := checkpoint.OpenStorage(b.TempDir(), checkpoint.StorageOptions{})
				if err != nil {
					b.Fatal(err)
				}
				job, err := runtime.Compile(context.Background(), spec, runtime.Options{
					Connectors: conns, LoadModule: runtime.WasmLoader(rt),
					Checkpoint: &runtime.CheckpointOptions{Storage: store},
				})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start, cpu0, bcpu0 := time.Now(), selfCPU(), br.cpu(b)
				if err := job.Run(context.Background()); err != nil {
					b.Fatal(err)
				}
				wall += time.Since(start)
				cpu += selfCPU() - cpu0
				brokerCPU += br.cpu(b) - bcpu0
				b.StopTimer()
				if n := count(b, br.addrs, topic); n != records {
					b.Fatalf("%s holds %d records, want %d", topic, n, records)
				}
			}
			total := float64(records) * float64(b.N)
			b.ReportMetric(total/wall.Seconds(), "records/s")
			b.ReportMetric(total/cpu.Seconds(), "records/cpu-s")
			b.ReportMetric(total/(cpu+brokerCPU).Seconds(), "records/cpu-s-with-broker")
			b.ReportMetric(0, "ns/op")
		})
	}
}

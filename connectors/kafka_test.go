package connectors

// Helpers of the Kafka tests: a kfake cluster served on 127.0.0.1 and
// reached by the real franz-go client over TCP, producing test records,
// and reading a topic back to its end independently of the connectors.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirstream/weir/runtime"
	"github.com/weirstream/weir/runtime/clock"
)

// logRecorder keeps the messages a connector logs at info level and
// above, for tests of what it reports.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string // "LEVEL message key=value ..."
}

// logger returns a logger that records to r.
func (r *logRecorder) logger() *slog.Logger { return slog.New(recordingHandler{r}) }

// connectorErrors returns the error-level messages a connector (not its
// kgo client) logged.
func (r *logRecorder) connectorErrors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, m := range r.msgs {
		if strings.HasPrefix(m, "ERROR kafka s") { // "kafka source:", "kafka sink:"
			out = append(out, m)
		}
	}
	return out
}

type recordingHandler struct{ r *logRecorder }

func (h recordingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }
func (h recordingHandler) WithAttrs([]slog.Attr) slog.Handler           { return h }
func (h recordingHandler) WithGroup(string) slog.Handler                { return h }
func (h recordingHandler) Handle(_ context.Context, rec slog.Record) error {
	h.r.mu.Lock()
	defer h.r.mu.Unlock()
	var b strings.Builder
	b.WriteString(rec.Level.String() + " " + rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	h.r.msgs = append(h.r.msgs, b.String())
	return nil
}

// answerTxnError makes c answer the first n EndTxn or InitProducerID
// requests (key) for transactional id with the error code, as a real
// broker does where kfake would not (kfake completes and aborts
// transactions inline, so it never answers CONCURRENT_TRANSACTIONS, and it
// has no authorization failures unless ACLs are set up). It returns the
// number of requests answered so; later ones kfake handles.
func answerTxnError(c *kfake.Cluster, key kmsg.Key, id string, code int16, n int) *atomic.Int32 {
	var hits atomic.Int32
	c.ControlKey(int16(key), func(req kmsg.Request) (kmsg.Response, error, bool) {
		var resp kmsg.Response
		switch r := req.(type) {
		case *kmsg.EndTxnRequest:
			if r.TransactionalID != id {
				return nil, nil, false
			}
			er := r.ResponseKind().(*kmsg.EndTxnResponse)
			er.ErrorCode = code
			resp = er
		case *kmsg.InitProducerIDRequest:
			if r.TransactionalID == nil || *r.TransactionalID != id {
				return nil, nil, false
			}
			ir := r.ResponseKind().(*kmsg.InitProducerIDResponse)
			ir.ErrorCode, ir.ProducerID, ir.ProducerEpoch = code, -1, -1
			resp = ir
		default:
			return nil, nil, false
		}
		if int(hits.Load()) >= n {
			c.DropControl()
			return nil, nil, false
		}
		c.KeepControl()
		hits.Add(1)
		return resp, nil, true
	})
	return &hits
}

// kafkaTestTimeout bounds every wait of a Kafka test.
const kafkaTestTimeout = 60 * time.Second

// kafkaTaskInfo is taskInfo with a logger: with WEIR_KAFKA_TEST_LOG=debug
// in the environment the connectors and their clients log everything to
// the test's standard error (for chasing a failure), otherwise nothing.
func kafkaTaskInfo(subtask, parallelism int, clk clock.Clock) runtime.TaskInfo {
	info := taskInfo(subtask, parallelism, clk)
	if os.Getenv("WEIR_KAFKA_TEST_LOG") == "debug" {
		info.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return info
}

// newKafkaCluster starts a kfake cluster (three brokers unless opts say
// otherwise) that is closed when t ends, and returns its addresses.
func newKafkaCluster(t testing.TB, opts ...kfake.Opt) (*kfake.Cluster, []string) {
	t.Helper()
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c, c.ListenAddrs()
}

// brokersJSON renders addrs as a JSON list for a connector config.
func brokersJSON(addrs []string) string {
	b, _ := json.Marshal(addrs)
	return string(b)
}

// newKafkaTestClient returns a client that is closed when t ends.
func newKafkaTestClient(t testing.TB, addrs []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addrs...), kgo.DisableClientMetrics()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// createTopic creates topic with partitions partitions.
func createTopic(t testing.TB, addrs []string, topic string, partitions int32) {
	t.Helper()
	cl := newKafkaTestClient(t, addrs)
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, partitions, 1
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), kafkaTestTimeout)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// addPartitions grows topic to total partitions.
func addPartitions(t testing.TB, addrs []string, topic string, total int32) {
	t.Helper()
	cl := newKafkaTestClient(t, addrs)
	req := kmsg.NewPtrCreatePartitionsRequest()
	rt := kmsg.NewCreatePartitionsRequestTopic()
	rt.Topic, rt.Count = topic, total
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 10000
	ctx, cancel := context.WithTimeout(context.Background(), kafkaTestTimeout)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
	}
	if err != nil {
		t.Fatalf("create partitions of %s: %v", topic, err)
	}
}

// produceTo writes recs synchronously; each goes to the partition it
// names (ManualPartitioner).
func produceTo(t testing.TB, addrs []string, recs ...*kgo.Record) {
	t.Helper()
	cl := newKafkaTestClient(t, addrs, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	ctx, cancel := context.WithTimeout(context.Background(), kafkaTestTimeout)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// testRecord is a record of topic partition with value "<partition>-<i>",
// key "k<i>" and timestamp 1000+i.
func testRecord(topic string, partition int32, i int) *kgo.Record {
	return &kgo.Record{
		Topic: topic, Partition: partition,
		Key:       []byte("k" + strconv.Itoa(i)),
		Value:     []byte(fmt.Sprintf("%d-%d", partition, i)),
		Timestamp: time.UnixMilli(int64(1000 + i)),
	}
}

// readTopic reads every record of topic up to the end offsets it finds
// first (the last stable offsets with readCommitted), partition by
// partition in offset order. It uses only kgo, so that it checks the
// connectors rather than repeats them.
func readTopic(t testing.TB, addrs []string, topic string, readCommitted bool) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), kafkaTestTimeout)
	defer cancel()
	admin := newKafkaTestClient(t, addrs)
	meta := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	meta.Topics = append(meta.Topics, mt)
	mresp, err := meta.RequestWith(ctx, admin)
	if err != nil || len(mresp.Topics) != 1 || mresp.Topics[0].ErrorCode != 0 {
		t.Fatalf("metadata of %s: %v %+v", topic, err, mresp)
	}
	lo := kmsg.NewPtrListOffsetsRequest()
	lo.ReplicaID = -1
	if readCommitted {
		lo.IsolationLevel = 1
	}
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = topic
	for _, p := range mresp.Topics[0].Partitions {
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Partition, lp.Timestamp, lp.CurrentLeaderEpoch = p.Partition, -1, -1
		lt.Partitions = append(lt.Partitions, lp)
	}
	lo.Topics = append(lo.Topics, lt)
	lresp, err := lo.RequestWith(ctx, admin)
	if err != nil {
		t.Fatalf("list offsets of %s: %v", topic, err)
	}
	ends := map[int32]int64{}
	consume := map[int32]kgo.Offset{}
	for _, lt := range lresp.Topics {
		for _, lp := range lt.Partitions {
			if err := kerr.ErrorForCode(lp.ErrorCode); err != nil {
				t.Fatalf("list offsets of %s partition %d: %v", topic, lp.Partition, err)
			}
			if lp.Offset > 0 {
				ends[lp.Partition] = lp.Offset
				consume[lp.Partition] = kgo.NewOffset().AtStart()
			}
		}
	}
	if len(ends) == 0 {
		return nil
	}
	opts := []kgo.Opt{kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: consume}), kgo.KeepControlRecords()}
	if readCommitted {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl := newKafkaTestClient(t, addrs, opts...)
	byPartition := map[int32][]*kgo.Record{}
	next := map[int32]int64{}
	for len(ends) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s: partitions %v not read to their ends %v in time (at %v)", topic, slices.Collect(mapKeys(ends)), ends, next)
		}
		for _, e := range fs.Errors() {
			t.Logf("read %s: fetch error (retrying): %v", topic, e.Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := ends[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			next[r.Partition] = r.Offset + 1
			if !r.Attrs.IsControl() {
				byPartition[r.Partition] = append(byPartition[r.Partition], r)
			}
			if r.Offset+1 >= end {
				delete(ends, r.Partition)
			}
		})
	}
	var out []*kgo.Record
	for _, p := range slices.Sorted(mapKeys(byPartition)) {
		out = append(out, byPartition[p]...)
	}
	return out
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// portsOf returns the ports of host:port addresses.
func portsOf(t testing.TB, addrs []string) []int {
	var ports []int
	for _, a := range addrs {
		_, p, err := net.SplitHostPort(a)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(p)
		ports = append(ports, n)
	}
	return ports
}

// waitFor polls cond until it holds or the Kafka test deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(kafkaTestTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval of a condition with a deadline
	}
}

func TestKafkaSourceConfigErrors(t *testing.T) {
	const b = `"brokers": ["127.0.0.1:9092"]`
	for _, tc := range []struct{ config, want string }{
		{`{"topics": ["t"]}`, `config.brokers: required`},
		{`{"brokers": ["localhost"], "topics": ["t"]}`, `config.brokers[0]: "localhost" is not host:port`},
		{`{"brokers": ["a:1", "b:x"], "topics": ["t"]}`, `config.brokers[1]: "b:x" has no valid port`},
		{`{` + b + `}`, `config.topics: required`},
		{`{` + b + `, "topics": ["t", ""]}`, `config.topics[1]: empty topic name`},
		{`{` + b + `, "topics": ["a b"]}`, `config.topics[0]: topic name "a b": only ASCII letters`},
		{`{` + b + `, "topics": ["t"], "format": "avro"}`, `config.format: must be one of raw, json, row, got "avro"`},
		{`{` + b + `, "topics": ["t"], "startFrom": "now"}`, `config.startFrom: must be one of earliest, latest, timestamp, got "now"`},
		{`{` + b + `, "topics": ["t"], "startFrom": "timestamp"}`, `config.startTimestamp: required with startFrom "timestamp"`},
		{`{` + b + `, "topics": ["t"], "startFrom": "timestamp", "startTimestamp": -5}`, `config.startTimestamp: must be >= 0`},
		{`{` + b + `, "topics": ["t"], "startTimestamp": 5}`, `config.startTimestamp: only used with startFrom "timestamp"`},
		{`{` + b + `, "topics": ["t"], "timestamp": "wall"}`, `config.timestamp: must be one of record, field, none, got "wall"`},
		{`{` + b + `, "topics": ["t"], "timestamp": "field"}`, `config.timestamp: "field" needs format json or row`},
		{`{` + b + `, "topics": ["t"], "format": "json", "timestamp": "field"}`, `config.timestampField: required with timestamp "field"`},
		{`{` + b + `, "topics": ["t"], "format": "json", "timestampField": 3}`, `config.timestampField: want a JSON member name for format json, got 3`},
		{`{` + b + `, "topics": ["t"], "format": "row", "timestampField": "ts"}`, `config.timestampField: want a field index (an integer >= 0) for format row, got "ts"`},
		{`{` + b + `, "topics": ["t"], "format": "row", "timestampField": -1}`, `config.timestampField: want a field index`},
		{`{` + b + `, "topics": ["t"], "format": "row", "timestampField": 1, "timestampFormat": "seconds"}`, `config.timestampFormat: not used with format row`},
		{`{` + b + `, "topics": ["t"], "format": "json", "timestampField": "ts", "timestampFormat": "nanos"}`, `config.timestampFormat: must be one of millis, seconds, rfc3339, got "nanos"`},
		{`{` + b + `, "topics": ["t"], "timestamp": "record", "timestampField": "ts"}`, `config.timestampField: only used with timestamp "field"`},
		{`{` + b + `, "topics": ["t"], "timestampFormat": "seconds"}`, `config.timestampFormat: only used with timestamp "field"`},
		{`{` + b + `, "topics": ["t"], "discoveryInterval": "-1s"}`, `config.discoveryInterval: must be >= 0`},
		{`{` + b + `, "topics": ["t"], "discoveryInterval": "1ms"}`, `config.discoveryInterval: must be 0 or at least 10ms`},
		{`{` + b + `, "topics": ["t"], "discoveryInterval": "soon"}`, `config: invalid duration "soon"`},
		{`{` + b + `, "topics": ["t"], "isolation": "serializable"}`, `config.isolation: must be one of read_committed, read_uncommitted, got "serializable"`},
		{`{` + b + `, "topics": ["t"], "groupId": " g"}`, `config.groupId: " g" has leading or trailing spaces`},
		{`{` + b + `, "topics": ["t"], "partitions": [1]}`, `config.partitions: unknown field`},
		{`{` + b + `, "topics": "t"}`, `config.topics: cannot use string as []string`},
		// Valid configs.
		{`{` + b + `, "topics": ["t"]}`, ``},
		{`{` + b + `, "topics": ["t", "u", "t"], "format": "json", "timestampField": "ts", "timestampFormat": "rfc3339", "headers": true, "groupId": "g", "isolation": "read_uncommitted"}`, ``},
		{`{` + b + `, "topics": ["t"], "format": "row", "timestampField": "2", "stopAtEnd": true, "discoveryInterval": 0}`, ``},
		{`{` + b + `, "topics": ["t"], "startFrom": "timestamp", "startTimestamp": 1700000000000, "timestamp": "none"}`, ``},
	} {
		t.Run(tc.config, func(t *testing.T) {
			_, err := NewKafkaSourceFactory()([]byte(tc.config))
			wantErr(t, err, tc.want)
		})
	}
}

func TestKafkaSinkConfigErrors(t *testing.T) {
	const b = `"brokers": ["127.0.0.1:9092"]`
	for _, tc := range []struct{ config, want string }{
		{`{"topic": "t"}`, `config.brokers: required`},
		{`{` + b + `}`, `config.topic: required`},
		{`{` + b + `, "topic": "a/b"}`, `config.topic: topic name "a/b"`},
		{`{` + b + `, "topic": "t", "format": "csv"}`, `config.format: must be one of raw, json, row, got "csv"`},
		{`{` + b + `, "topic": "t", "deliveryGuarantee": "none"}`, `config.deliveryGuarantee: must be one of at-least-once, exactly-once, got "none"`},
		{`{` + b + `, "topic": "t", "deliveryGuarantee": "exactly-once"}`, `config.transactionalIdPrefix: required with deliveryGuarantee "exactly-once"`},
		{`{` + b + `, "topic": "t", "transactionalIdPrefix": "x"}`, `config.transactionalIdPrefix: only used with deliveryGuarantee "exactly-once"`},
		{`{` + b + `, "topic": "t", "transactionTimeout": "1m"}`, `config.transactionTimeout: only used with deliveryGuarantee "exactly-once"`},
		{`{` + b + `, "topic": "t", "deliveryGuarantee": "exactly-once", "transactionalIdPrefix": "x", "transactionTimeout": "10ms"}`, `config.transactionTimeout: must be at least 1s`},
		{`{` + b + `, "topic": "t", "deliveryGuarantee": "exactly-once", "transactionalIdPrefix": "a\u0001"}`, `config.transactionalIdPrefix: "a\x01" must be at most 200 characters without control characters`},
		{`{` + b + `, "topic": "t", "linger": "2m"}`, `config.linger: must be between 0 and 1m, got 2m0s`},
		{`{` + b + `, "topic": "t", "compression": "brotli"}`, `config.compression: must be one of none, gzip, snappy, lz4, zstd, got "brotli"`},
		{`{` + b + `, "topic": "t", "acks": 1}`, `config.acks: unknown field`},
		// Valid configs.
		{`{` + b + `, "topic": "t"}`, ``},
		{`{` + b + `, "topic": "t", "format": "row", "headers": true, "linger": 0, "compression": "zstd"}`, ``},
		{`{` + b + `, "topic": "t", "deliveryGuarantee": "exactly-once", "transactionalIdPrefix": "job-1-out", "transactionTimeout": "5m"}`, ``},
	} {
		t.Run(tc.config, func(t *testing.T) {
			_, err := NewKafkaSinkFactory()([]byte(tc.config))
			wantErr(t, err, tc.want)
		})
	}
}

// TestKafkaSnapshotKinds: envelope errors name the Kafka kinds.
func TestKafkaSnapshotKinds(t *testing.T) {
	datagen := newSnapWriter(snapKindDatagen).finish()
	_, err := openSnapshot(datagen, snapKindKafkaSink)
	wantErr(t, err, "snapshot of a datagen source, want a kafka sink")
	src := newSnapWriter(snapKindKafkaSource).finish()
	_, err = openSnapshot(src, snapKindKafkaSink)
	wantErr(t, err, "snapshot of a kafka source, want a kafka sink")
	future := src[:len(src)-4]
	future[len(snapMagic)+1] = 7
	_, err = openSnapshot((&snapWriter{b: future}).finish(), snapKindKafkaSource)
	wantErr(t, err, "kafka source snapshot version 7 not supported (this build reads version 1)")
	_, err = openSnapshot([]byte("garbage!!!"), snapKindKafkaSource)
	wantErr(t, err, "not a Weir connector snapshot (bad magic)")
}

// TestKafkaHeadersEnvelope: the envelope round-trips values, null values
// and headers, and malformed envelopes are errors.
func TestKafkaHeadersEnvelope(t *testing.T) {
	for _, tc := range []struct {
		value   []byte
		headers []kgo.RecordHeader
	}{
		{[]byte("v"), nil},
		{[]byte{}, []kgo.RecordHeader{{Key: "a", Value: []byte("1")}, {Key: "", Value: nil}, {Key: "b", Value: []byte{}}}},
		{nil, []kgo.RecordHeader{{Key: "trace", Value: []byte{0, 1, 2}}}},
	} {
		env := appendHeadersEnvelope(nil, tc.value, tc.headers)
		v, hs, err := decodeHeadersEnvelope(env, nil)
		if err != nil {
			t.Fatal(err)
		}
		if (v == nil) != (tc.value == nil) || string(v) != string(tc.value) {
			t.Errorf("value %q (nil %v), want %q (nil %v)", v, v == nil, tc.value, tc.value == nil)
		}
		if len(hs) != len(tc.headers) {
			t.Fatalf("headers %v, want %v", hs, tc.headers)
		}
		for i := range hs {
			if hs[i].Key != tc.headers[i].Key || string(hs[i].Value) != string(tc.headers[i].Value) || (hs[i].Value == nil) != (tc.headers[i].Value == nil) {
				t.Errorf("header %d: %+v, want %+v", i, hs[i], tc.headers[i])
			}
		}
	}
	// The layout, written independently: bytes "v", bytes "k", null.
	golden := []byte{3, 1, 0, 0, 0, 'v', 3, 1, 0, 0, 0, 'k', 0}
	if got := appendHeadersEnvelope(nil, []byte("v"), []kgo.RecordHeader{{Key: "k"}}); string(got) != string(golden) {
		t.Errorf("envelope % x, want % x", got, golden)
	}
	for _, tc := range []struct {
		env  []byte
		want string
	}{
		{nil, "headers envelope: field 0: want bytes"},
		{[]byte{1, 0, 0, 0, 0, 0, 0, 0, 0}, "headers envelope: row: field 0: want bytes, got int"},
		{[]byte{3, 1, 0, 0, 0, 'v', 3, 1, 0, 0, 0, 'k'}, `headers envelope: header "k" has no value field`},
		{[]byte{3, 9, 0, 0, 0, 'v'}, "headers envelope: field 0: 9 bytes: row: truncated"},
	} {
		_, _, err := decodeHeadersEnvelope(tc.env, nil)
		wantErr(t, err, tc.want)
	}
}

// kafkaConfig renders a connector config from the broker addresses and
// the other fields (a JSON object's members, without braces).
func kafkaConfig(addrs []string, fields string) []byte {
	return []byte(`{"brokers": ` + brokersJSON(addrs) + `, ` + fields + `}`)
}

// newKafkaSourceT makes a Kafka source from a config.
func newKafkaSourceT(t testing.TB, config []byte) func() runtime.Source {
	t.Helper()
	mk, err := NewKafkaSourceFactory()(config)
	if err != nil {
		t.Fatalf("config %s: %v", config, err)
	}
	return mk
}

// newKafkaSinkT makes a Kafka sink from a config.
func newKafkaSinkT(t testing.TB, config []byte) func() runtime.Sink {
	t.Helper()
	mk, err := NewKafkaSinkFactory()(config)
	if err != nil {
		t.Fatalf("config %s: %v", config, err)
	}
	return mk
}

// TestKafkaPolicy: with a policy, only the listed brokers may be named,
// and the error names the field; without one any broker may.
func TestKafkaPolicy(t *testing.T) {
	source := `{"brokers": [%s], "topics": ["t"]}`
	sink := `{"brokers": [%s], "topic": "t"}`
	tests := []struct {
		name    string
		policy  *KafkaPolicy
		brokers string
		want    string // "" = accepted
	}{
		{"no policy", nil, `"10.0.0.1:9092"`, ""},
		{"allowed", &KafkaPolicy{Brokers: []string{"k1:9092", "k2:9092"}}, `"k2:9092", "k1:9092"`, ""},
		{"one not allowed", &KafkaPolicy{Brokers: []string{"k1:9092"}}, `"k1:9092", "127.0.0.1:8080"`,
			`config.brokers[1]: "127.0.0.1:8080" is not an allowed broker (allowed: k1:9092)`},
		{"none allowed", &KafkaPolicy{}, `"k1:9092"`, "config.brokers: the kafka connectors are not enabled here"},
		{"invalid config first", &KafkaPolicy{}, ``, "config.brokers: required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := registry(t, RegisterOptions{Kafka: tc.policy})
			_, srcErr := c.Sources["kafka"]([]byte(fmt.Sprintf(source, tc.brokers)))
			_, sinkErr := c.Sinks["kafka"]([]byte(fmt.Sprintf(sink, tc.brokers)))
			for what, err := range map[string]error{"source": srcErr, "sink": sinkErr} {
				if tc.want == "" {
					if err != nil {
						t.Errorf("%s: %v", what, err)
					}
					continue
				}
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s: err = %v, want %q", what, err, tc.want)
				}
			}
		})
	}
}

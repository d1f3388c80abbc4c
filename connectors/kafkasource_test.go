package connectors

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/abi/row"
	"github.com/weirstream/weir/runtime"
	"github.com/weirstream/weir/runtime/clock"
)

// fillPartitions writes perPartition test records to each of the
// partitions of topic and returns them.
func fillPartitions(t testing.TB, addrs []string, topic string, partitions int32, perPartition int) []*kgo.Record {
	t.Helper()
	var recs []*kgo.Record
	for i := 0; i < perPartition; i++ {
		for p := int32(0); p < partitions; p++ {
			recs = append(recs, testRecord(topic, p, i))
		}
	}
	produceTo(t, addrs, recs...)
	return recs
}

// openKafkaSource makes, restores (when states is not nil) and opens
// subtask of p.
func openKafkaSource(t testing.TB, mk func() runtime.Source, subtask, p int, states [][]byte, clk clock.Clock) *kafkaSource {
	t.Helper()
	src := mk().(*kafkaSource)
	info := kafkaTaskInfo(subtask, p, clk)
	if states != nil {
		if err := src.Restore(info, states); err != nil {
			t.Fatal(err)
		}
	}
	if err := src.Open(context.Background(), info); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// pollOnce polls src once with a short deadline.
func pollOnce(t testing.TB, src runtime.Source, c *collector, max int) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	done, err := src.Poll(ctx, c, max)
	if err != nil {
		t.Fatal(err)
	}
	return done
}

// drainKafka polls src until it reports done.
func drainKafka(t testing.TB, src runtime.Source, c *collector) {
	t.Helper()
	deadline := time.Now().Add(kafkaTestTimeout)
	for !pollOnce(t, src, c, 7) {
		if time.Now().After(deadline) {
			t.Fatalf("source not done after %v (%d records)", kafkaTestTimeout, len(c.recs))
		}
	}
}

// pollUntil polls src until it collected n records in all.
func pollUntil(t testing.TB, src runtime.Source, c *collector, n int) {
	t.Helper()
	deadline := time.Now().Add(kafkaTestTimeout)
	for len(c.recs) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d records after %v, want %d", len(c.recs), kafkaTestTimeout, n)
		}
		pollOnce(t, src, c, 100)
	}
}

// TestKafkaSourceReadsAllPartitions reads a 5-partition topic at
// parallelism 1, 2 and 3: every record once, in offset order per
// partition, with its key and record timestamp, each partition read by
// the subtask kafkaOwner names.
func TestKafkaSourceReadsAllPartitions(t *testing.T) {
	_, addrs := newKafkaCluster(t, kfake.SeedTopics(5, "events"))
	want := fillPartitions(t, addrs, "events", 5, 40)
	mk := newKafkaSourceT(t, kafkaConfig(addrs, `"topics": ["events"], "stopAtEnd": true`))
	for _, p := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("p%d", p), func(t *testing.T) {
			got := map[string]rec{}
			var order []string
			for s := 0; s < p; s++ {
				var c collector
				drainKafka(t, openKafkaSource(t, mk, s, p, nil, nil), &c)
				for _, r := range c.recs {
					part, _, _ := strings.Cut(r.Value, "-")
					pi, _ := strconv.Atoi(part)
					if owner := pi % p; owner != s {
						t.Fatalf("subtask %d read %q of partition %d, which subtask %d owns", s, r.Value, pi, owner)
					}
					if _, dup := got[r.Value]; dup {
						t.Fatalf("record %q read twice", r.Value)
					}
					got[r.Value] = r
					order = append(order, r.Value)
				}
			}
			for _, w := range want {
				r, ok := got[string(w.Value)]
				if !ok {
					t.Fatalf("record %q not read", w.Value)
				}
				if r.Key != string(w.Key) || r.TS != w.Timestamp.UnixMilli() {
					t.Errorf("record %q: key %q ts %d, want %q %d", w.Value, r.Key, r.TS, w.Key, w.Timestamp.UnixMilli())
				}
			}
			if len(got) != len(want) {
				t.Fatalf("%d records, want %d", len(got), len(want))
			}
			// Per partition, records come in offset (= i) order.
			last := map[string]int{}
			for _, v := range order {
				part, i, _ := strings.Cut(v, "-")
				n, _ := strconv.Atoi(i)
				if prev, ok := last[part]; ok && n != prev+1 {
					t.Fatalf("partition %s: record %d after %d", part, n, prev)
				}
				last[part] = n
			}
		})
	}
}

// TestKafkaSourceOwnership: partitions spread by (topic index +
// partition) % parallelism, independently of partition counts.
func TestKafkaSourceOwnership(t *testing.T) {
	for _, tc := range []struct {
		topic     int
		partition int32
		p, want   int
	}{
		{0, 0, 3, 0}, {0, 4, 3, 1}, {1, 0, 3, 1}, {2, 0, 3, 2}, {2, 2, 3, 1}, {5, 7, 1, 0},
	} {
		if got := kafkaOwner(tc.topic, tc.partition, tc.p); got != tc.want {
			t.Errorf("kafkaOwner(%d, %d, %d) = %d, want %d", tc.topic, tc.partition, tc.p, got, tc.want)
		}
	}
}

// TestKafkaSourceStartPositions: earliest reads everything, timestamp
// from the first record at or after it in each partition, latest only
// what is produced after Open.
func TestKafkaSourceStartPositions(t *testing.T) {
	_, addrs := newKafkaCluster(t, kfake.SeedTopics(3, "events"))
	fillPartitions(t, addrs, "events", 3, 10) // timestamps 1000..1009
	values := func(c *collector) []string {
		var v []string
		for _, r := range c.recs {
			v = append(v, r.Value)
		}
		slices.Sort(v)
		return v
	}
	t.Run("earliest", func(t *testing.T) {
		var c collector
		drainKafka(t, openKafkaSource(t, newKafkaSourceT(t, kafkaConfig(addrs, `"topics": ["events"], "stopAtEnd": true`)), 0, 1, nil, nil), &c)
		if len(c.recs) != 30 {
			t.Fatalf("%d records, want 30", len(c.recs))
		}
	})
	t.Run("timestamp", func(t *testing.T) {
		var c collector
		mk := newKafkaSourceT(t, kafkaConfig(addrs, `"topics": ["events"], "stopAtEnd": true, "startFrom": "timestamp", "startTimestamp": 1007`))
		drainKafka(t, openKafkaSource(t, mk, 0, 1, nil, nil), &c)
		want := []string{"0-7", "0-8", "0-9", "1-7", "1-8", "1-9", "2-7", "2-8", "2-9"}
		if got := values(&c); !slices.Equal(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	})
	t.Run("timestamp after the last record", func(t *testing.T) {
		var c collector
		mk := newKafkaSourceT(t, kafkaConfig(addrs, `"topics": ["events"], "stopAtEnd": true, "startFrom": "timestamp", "startTimestamp": 99999`))
		drainKafka(t, openKafkaSource(t, mk, 0, 1, nil, nil), &c)
		if len(c.recs) != 0 {
			t.Fatalf("got %v, want nothing", values(&c))
		}
	})
	t.Run("latest", func(t *testing.T) {
		mk := newKafkaSourceT(t, kafkaConfig(addrs, `"topics": ["events"], "startFrom": "latest"`))
		src := openKafkaSource(t, mk, 0, 1, nil, nil)
		// A snapshot before any record holds the resolved offsets, so a
		// restore does not skip what was produced meanwhile.
		state, err := src.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		produceTo(t, addrs, testRecord("events", 1, 10), testRecord("events", 2, 11))
		var c collector
		pollUntil(t, src, &c, 2)
		if got, want := values(&c), []string{"1-10", "2-11"}; !slices.Equal(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
		restored := openKafkaSource(t, mk, 0, 1, [][]byte{state}, nil)
		c = collector{}
		pollUntil(t, restored, &c, 2)
		if got, want := values(&c), []string{"1-10", "2-11"}; !slices.Equal(got, want) {
			t.Fatalf("restored from the first snapshot: got %v, want %v", got, want)
		}
	})
}

// TestKafkaSourceEventTime: event time from the record timestamp, a JSON
// member (millis, seconds, RFC 3339), a row field, or none.
func TestKafkaSourceEventTime(t *testing.T) {
	_, addrs := newKafkaCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "json", "row"))
	jsonValues := []string{`{"ts": 1700000000123, "v": 1}`, `{"v": 2, "ts": "1700000000456"}`}
	var recs []*kgo.Record
	for i, v := range jsonValues {
		recs = append(recs, &kgo.Record{Topic: "json", Value: []byte(v), Timestamp: time.UnixMilli(int64(5 + i))})
	}
	rowValue := row.AppendInt(row.AppendString(nil, "bid"), 1700000000789)
	recs = append(recs, &kgo.Record{Topic: "row", Value: rowValue, Timestamp: time.UnixMilli(7)})
	produceTo(t, addrs, recs...)
	secs := `{"ts": 1700000000.5}`
	rfc := `{"ts": "2023-11-14T22:13:20.25Z"}`
	produceTo(t, addrs, &kgo.Record{Topic: "json", Value: []byte(secs)})
	for _, tc := range []struct {
		name, fields string
		want         []int64
	}{
		{"record", `"topics": ["json"], "format": "json"`, []int64{5, 6}},
		{"none", `"topics": ["json"], "timestamp": "none"`, []int64{abi.NoTimestamp, abi.NoTimestamp, abi.NoTimestamp}},
		{"json millis", `"topics": ["json"], "format": "json", "timestampField": "ts"`, nil},
		{"row field", `"topics": ["row"], "format": "row", "timestampField": 1`, []int64{1700000000789}},
		{"row field as string", `"topics": ["row"], "format": "row", "timestamp": "field", "timestampField": "1"`, []int64{1700000000789}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mk := newKafkaSourceT(t, kafkaConfig(addrs, tc.fields+`, "stopAtEnd": true`))
			var c collector
			src := openKafkaSource(t, mk, 0, 1, nil, nil)
			if tc.want == nil {
				// millis: the third record's 1700000000.5 is not millis.
				for {
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
					done, err := src.Poll(ctx, &c, 10)
					cancel()
					if err != nil {
						wantErr(t, err, `topic "json" partition 0 offset 2: timestamp field "ts": cannot parse "1700000000.5" as milliseconds`)
						break
					}
					if done {
						t.Fatal("no error for a seconds timestamp read as millis")
					}
				}
				if len(c.recs) != 2 || c.recs[0].TS != 1700000000123 || c.recs[1].TS != 1700000000456 {
					t.Fatalf("got %+v", c.recs)
				}
				return
			}
			drainKafka(t, src, &c)
			var got []int64
			for _, r := range c.recs {
				got = append(got, r.TS)
			}
			if !slices.Equal(got[:len(tc.want)], tc.want) {
				t.Fatalf("timestamps %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("json seconds and rfc3339", func(t *testing.T) {
		_, addrs := newKafkaCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "s", "r"))
		produceTo(t, addrs, &kgo.Record{Topic: "s", Value: []byte(secs)}, &kgo.Record{Topic: "r", Value: []byte(rfc)})
		for topic, want := range map[string]int64{"s": 1700000000500, "r": 1700000000250} {
			format := map[string]string{"s": "seconds", "r": "rfc3339"}[topic]
			mk := newKafkaSourceT(t, kafkaConfig(addrs, fmt.Sprintf(`"topics": [%q], "format": "json", "timestampField": "ts", "timestampFormat": %q, "stopAtEnd": true`, topic, format)))
			var c collector
			drainKafka(t, openKafkaSource(t, mk, 0, 1, nil, nil), &c)
			if len(c.recs) != 1 || c.recs[0].TS != want {
				t.Errorf("%s: %+v, want ts %d", format, c.recs, want)
			}
		}
	})
}

// TestKafkaSourceMalformed: a value that is not of the format fails the
// task naming topic, partition and offset.
func TestKafkaSourceMalformed(t *testing.T) {
	_, addrs := newKafkaCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(2, "j", "r"))
	produceTo(t, addrs,
		&kgo.Record{Topic: "j", Partition: 1, Value: []byte(`{"ok": true}`)},
		&kgo.Record{Topic: "j", Partition: 1, Value: []byte(`{"broken": `)},
		&kgo.Record{Topic: "r", Partition: 0, Value: row.AppendInt(nil, 1)[:5]},
	)
	for _, tc := range []struct{ fields, want string }{
		{`"topics": ["j"], "format": "json"`, `kafka source node "node" subtask 0: topic "j" partition 1 offset 1: value is not a JSON object: "{\"broken\": "`},
		{`"topics": ["j"], "format": "json", "timestampField": "ts"`, `topic "j" partition 1 offset 0: missing timestamp field "ts"`},
		{`"topics": ["r"], "format": "row"`, `topic "r" partition 0 offset 0: value is not a row: field 0: `},
		{`"topics": ["r"], "format": "json"`, `topic "r" partition 0 offset 0: value is not a JSON object: "\x01\x01\x00\x00\x00"`},
	} {
		mk := newKafkaSourceT(t, kafkaConfig(addrs, `"stopAtEnd": true, `+tc.fields))
		src := openKafkaSource(t, mk, 0, 1, nil, nil)
		var err error
		deadline := time.Now().Add(kafkaTestTimeout)
		for err == nil && time.Now().Before(deadline) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			var done bool
			done, err = src.Poll(ctx, &collector{}, 10)
			cancel()
			if done {
				t.Fatalf("%s: done without an error", tc.fields)
			}
		}
		wantErr(t, err, tc.want)
	}
}

// TestKafkaSourceHeaders: with headers the value is the envelope of the
// Kafka value and its headers.
func TestKafkaSourceHeaders(t *testing.T) {
	_, addrs := newKafkaCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "in"))
	hs := []kgo.RecordHeader{{Key: "trace", Value: []byte("abc")}, {Key: "empty", Value: nil}}
	produceTo(t, addrs, &kgo.Record{Topic: "in", Value: []byte(`{"a": 1}`), Headers: hs}, &kgo.Record{Topic: "in", Value: nil})
	mk := newKafkaSourceT(t, kafkaConfig(addrs, `"topics": ["in"], "stopAtEnd": true, "headers": true`))
	var c collector
	drainKafka(t, openKafkaSource(t, mk, 0, 1, nil, nil), &c)
	if len(c.recs) != 2 {
		t.Fatalf("%d records", len(c.recs))
	}
	want0 := row.AppendNull(row.AppendString(row.AppendBytes(row.AppendString(row.AppendString(nil, `{"a": 1}`), "trace"), []byte("abc")), "empty"))
	if c.recs[0].Value != string(want0) {
		t.Errorf("envelope % x, want % x", c.recs[0].Value, want0)
	}
	if want1 := row.AppendNull(nil); c.recs[1].Value != string(want1) {
		t.Errorf("tombstone envelope % x, want % x", c.recs[1].Value, want1)
	}
}

// TestKafkaSourceRestoreRescale checkpoints a source node at random
// parallelisms with random progress, restores it at others (2 → 3 → 1 →
// 4 ...), losing what was read after each snapshot; over the whole
// history every record is read exactly once.
func TestKafkaSourceRestoreRescale(t *testing.T) {
	_, addrs := newKafkaCluster(t, kfake.SeedTopics(5, "a"), kfake.SeedTopics(2, "b"))
	want := fillPartitions(t, addrs, "a", 5, 30)
	// Topic b's values must differ from a's: records are told apart by value.
	for i := 100; i < 120; i++ {
		want = append(want, testRecord("b", 0, i), testRecord("b", 1, i))
	}
	produceTo(t, addrs, want[150:]...)
	mk := newKafkaSourceT(t, kafkaConfig(addrs, `"topics": ["b", "a"], "stopAtEnd": true`))
	rng := rand.New(rand.NewPCG(3, 4))
	for iter := 0; iter < 4; iter++ {
		counts := map[string]int{}
		var states [][]byte
		var trace []int
		gens := 2 + rng.IntN(2)
		for g := 0; g <= gens; g++ {
			p := 1 + rng.IntN(4)
			trace = append(trace, p)
			srcs := make([]*kafkaSource, p)
			for s := range srcs {
				srcs[s] = openKafkaSource(t, mk, s, p, states, nil)
			}
			cols := make([]collector, p)
			if g == gens {
				for s, src := range srcs {
					drainKafka(t, src, &cols[s])
				}
			} else {
				for s, src := range srcs {
					target := rng.IntN(len(want)/p + 1)
					deadline := time.Now().Add(kafkaTestTimeout)
					for len(cols[s].recs) < target && !pollOnce(t, src, &cols[s], 1+rng.IntN(5)) {
						if time.Now().After(deadline) {
							t.Fatal("no progress")
						}
					}
				}
				states = make([][]byte, p)
				for s, src := range srcs {
					var err error
					if states[s], err = src.Snapshot(); err != nil {
						t.Fatal(err)
					}
					pollOnce(t, src, &collector{}, 3) // read after the checkpoint: lost
				}
			}
			for s, src := range srcs {
				for _, r := range cols[s].recs {
					counts[r.Value]++
				}
				src.Close()
			}
		}
		for _, w := range want {
			if n := counts[string(w.Value)]; n != 1 {
				t.Fatalf("parallelisms %v: record %q read %d times, want once", trace, w.Value, n)
			}
		}
		if len(counts) != len(want) {
			t.Fatalf("parallelisms %v: %d distinct records, want %d", trace, len(counts), len(want))
		}
	}
}

// TestKafkaSourceRestoreRules: after a restore, a partition of a topic the
// checkpoint read but did not list (created after it) starts at the
// earliest offset even with startFrom latest, while a topic new to the
// config starts as configured.
func TestKafkaSourceRestoreRules(t *testing.T) {
	_, addrs := newKafkaCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "old", "new"))
	fillPartitions(t, addrs, "old", 1, 3)
	fillPartitions(t, addrs, "new", 1, 3)
	first := newKafkaSourceT(t, kafkaConfig(addrs, `"topics": ["old"], "startFrom": "latest"`))
	state, err := openKafkaSource(t, first, 0, 1, nil, nil).Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	addPartitions(t, addrs, "old", 2)
	fillPartitions(t, addrs, "old", 2, 2) // 0-0, 1-0, 0-1, 1-1 (partition 0 continues at offset 3)
	produceTo(t, addrs, testRecord("new", 0, 3))
	second := newKafkaSourceT(t, kafkaConfig(addrs, `"topics": ["old", "new"], "startFrom": "latest"`))
	src := openKafkaSource(t, second, 0, 1, [][]byte{state}, nil)
	var c collector
	pollUntil(t, src, &c, 4)
	var got []string
	for _, r := range c.recs {
		got = append(got, r.Value)
	}
	slices.Sort(got)
	// old/0 after the checkpoint: 0-0, 0-1; old/1 (new partition) from
	// earliest: 1-0, 1-1; "new" is a new topic with startFrom latest:
	// nothing of what it held at Open.
	if want := []string{"0-0", "0-1", "1-0", "1-1"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if pollOnce(t, src, &c, 10); len(c.recs) != 4 {
		t.Fatalf("more records: %+v", c.recs[4:])
	}
}

// TestKafkaSourceDiscovery: a partition added while the source runs is
// found at the next discovery (on the task's clock) and read from its
// earliest offset, by the subtask that owns it.
func TestKafkaSourceDiscovery(t *testing.T) {
	_, addrs := newKafkaCluster(t, kfake.SeedTopics(2, "grow"))
	fillPartitions(t, addrs, "grow", 2, 2)
	fake := clock.NewFake(time.Unix(0, 0))
	mk := newKafkaSourceT(t, kafkaConfig(addrs, `"topics": ["grow"], "discoveryInterval": "30s", "startFrom": "latest"`))
	srcs := []*kafkaSource{openKafkaSource(t, mk, 0, 2, nil, fake), openKafkaSource(t, mk, 1, 2, nil, fake)}
	addPartitions(t, addrs, "grow", 4)
	fillPartitions(t, addrs, "grow", 4, 1) // 0-0, 1-0, 2-0, 3-0

	var cols [2]collector
	// Before the discovery: only the old partitions' new records.
	for s, src := range srcs {
		pollUntil(t, src, &cols[s], 1)
	}
	waitFor(t, "both discovery loops to wait on the clock", func() bool { n, _ := fake.Waiters(); return n == 2 })
	fake.Advance(30 * time.Second)
	for s, src := range srcs {
		pollUntil(t, src, &cols[s], 2)
	}
	for s := range srcs {
		var got []string
		for _, r := range cols[s].recs {
			got = append(got, r.Value)
		}
		slices.Sort(got)
		want := []string{fmt.Sprintf("%d-0", s), fmt.Sprintf("%d-0", s+2)}
		if !slices.Equal(got, want) {
			t.Errorf("subtask %d: got %v, want %v", s, got, want)
		}
	}
}

// TestKafkaSourceTransactions: read_committed skips aborted records and
// open transactions, and a bounded read ends past the transaction
// markers; read_uncommitted sees everything.
func TestKafkaSourceTransactions(t *testing.T) {
	_, addrs := newKafkaCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "tx"))
	ctx, cancel := context.WithTimeout(context.Background(), kafkaTestTimeout)
	defer cancel()
	p := newKafkaTestClient(t, addrs, kgo.TransactionalID("test-tx"), kgo.DefaultProduceTopic("tx"))
	for _, commit := range []kgo.TransactionEndTry{kgo.TryCommit, kgo.TryAbort, kgo.TryCommit} {
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("commit=%v", commit))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := p.EndTransaction(ctx, commit); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		isolation string
		want      int
	}{{"read_committed", 2}, {"read_uncommitted", 3}} {
		var c collector
		mk := newKafkaSourceT(t, kafkaConfig(addrs, `"topics": ["tx"], "stopAtEnd": true, "isolation": "`+tc.isolation+`"`))
		drainKafka(t, openKafkaSource(t, mk, 0, 1, nil, nil), &c)
		if len(c.recs) != tc.want {
			t.Errorf("%s: %+v, want %d records", tc.isolation, c.recs, tc.want)
		}
	}
}

// TestKafkaSourceGroupCommit: with a groupId, the snapshot's offsets are
// committed to the group (for monitoring).
func TestKafkaSourceGroupCommit(t *testing.T) {
	_, addrs := newKafkaCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(2, "in"))
	fillPartitions(t, addrs, "in", 2, 5)
	mk := newKafkaSourceT(t, kafkaConfig(addrs, `"topics": ["in"], "groupId": "weir-monitor"`))
	src := mk().(*kafkaSource)
	info := taskInfo(0, 1, nil)
	info.Logger = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	if err := src.Open(context.Background(), info); err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var c collector
	pollUntil(t, src, &c, 10)
	if _, err := src.Snapshot(); err != nil {
		t.Fatal(err)
	}
	cl := newKafkaTestClient(t, addrs)
	waitFor(t, "committed group offsets 5 and 5", func() bool {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Group = "weir-monitor"
		rt := kmsg.NewOffsetFetchRequestTopic()
		rt.Topic, rt.Partitions = "in", []int32{0, 1}
		req.Topics = append(req.Topics, rt)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		resp, err := req.RequestWith(ctx, cl)
		if err != nil || len(resp.Topics) != 1 {
			return false
		}
		for _, p := range resp.Topics[0].Partitions {
			if p.Offset != 5 {
				return false
			}
		}
		return len(resp.Topics[0].Partitions) == 2
	})
}

// TestKafkaSourceRestoreErrors: garbage, another kind, misplaced and
// duplicated snapshots are errors naming the node and what is wrong.
func TestKafkaSourceRestoreErrors(t *testing.T) {
	mk := newKafkaSourceT(t, []byte(`{"brokers": ["127.0.0.1:1"], "topics": ["t"]}`))
	snap := func(p, sub int, offsets map[int]int64) []byte {
		w := newSnapWriter(snapKindKafkaSource)
		w.uvarint(uint64(p))
		w.uvarint(uint64(sub))
		w.uvarint(1)
		w.string("t")
		w.uvarint(uint64(len(offsets)))
		for _, part := range slices.Sorted(mapKeys(offsets)) {
			w.uvarint(0)
			w.uvarint(uint64(part))
			w.uvarint(uint64(offsets[part] + 2))
		}
		return w.finish()
	}
	badTopic := newSnapWriter(snapKindKafkaSource)
	for _, v := range []uint64{1, 0, 1} {
		badTopic.uvarint(v)
	}
	badTopic.string("t")
	badTopic.uvarint(1)
	badTopic.uvarint(3) // topic index 3 of 1
	for _, tc := range []struct {
		name   string
		states [][]byte
		want   string
	}{
		{"garbage", [][]byte{[]byte("no snapshot at all")}, `kafka source node "node" subtask 0: restore: snapshot of old subtask 0: not a Weir connector snapshot (bad magic)`},
		{"other kind", [][]byte{encodeKafkaSinkState(0, nil)}, `snapshot of a kafka sink, want a kafka source`},
		{"misplaced", [][]byte{nil, snap(2, 0, nil)}, `snapshot of old subtask 1: taken by subtask 0 of 2, but it is entry 1 of a checkpoint with 2 subtasks`},
		{"twice", [][]byte{snap(2, 0, map[int]int64{0: 5}), snap(2, 1, map[int]int64{0: 7})}, `topic "t" partition 0 is in the snapshots of old subtasks 0 and 1`},
		{"bad topic index", [][]byte{badTopic.finish()}, `corrupt snapshot: topic index 3 out of range (limit 1)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, mk().(runtime.CheckpointedSource).Restore(taskInfo(0, 1, nil), tc.states), tc.want)
		})
	}
	got, err := decodeKafkaSourceSnapshot(snap(1, 0, map[int]int64{0: -2, 3: 17}), 0, 1)
	if err != nil || got.offsets[tp{"t", 0}] != offsetEarliest || got.offsets[tp{"t", 3}] != 17 || len(got.offsets) != 2 {
		t.Fatalf("decoded %+v, %v", got, err)
	}
}

// TestKafkaSourcePollReturnsAtDeadline: with nothing to read, Poll
// returns at its context's deadline, and a cancelled context is an
// error.
func TestKafkaSourcePollReturnsAtDeadline(t *testing.T) {
	_, addrs := newKafkaCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "idle"))
	for _, p := range []int{1, 3} { // at 3, subtask 2 owns no partition
		src := openKafkaSource(t, newKafkaSourceT(t, kafkaConfig(addrs, `"topics": ["idle"]`)), p-1, p, nil, nil)
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		done, err := src.Poll(ctx, &collector{}, 10)
		cancel()
		if err != nil || done {
			t.Fatalf("p%d: done %v, err %v", p, done, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("p%d: Poll took %v with a 50ms deadline", p, d)
		}
		ctx, cancel = context.WithCancel(context.Background())
		cancel()
		if _, err := src.Poll(ctx, &collector{}, 10); err == nil {
			t.Fatalf("p%d: no error with a cancelled context", p)
		}
	}
}

// kafkaSourceState writes a source snapshot of subtask sub of p by the
// format in doc.go: offsets by topic (an index into topics) and
// partition, offsetEarliest for nothing read yet.
func kafkaSourceState(p, sub int, topics []string, offsets map[tp]int64) []byte {
	w := newSnapWriter(snapKindKafkaSource)
	w.uvarint(uint64(p))
	w.uvarint(uint64(sub))
	w.uvarint(uint64(len(topics)))
	for _, t := range topics {
		w.string(t)
	}
	w.uvarint(uint64(len(offsets)))
	for _, k := range slices.SortedFunc(mapKeys(offsets), func(a, b tp) int {
		return cmp.Or(strings.Compare(a.topic, b.topic), cmp.Compare(a.partition, b.partition))
	}) {
		w.uvarint(uint64(slices.Index(topics, k.topic)))
		w.uvarint(uint64(k.partition))
		w.uvarint(uint64(offsets[k] + 2))
	}
	return w.finish()
}

// snapshotOffsets snapshots src and decodes the offsets.
func snapshotOffsets(t testing.TB, src *kafkaSource) map[tp]int64 {
	t.Helper()
	b, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	snap, err := decodeKafkaSourceSnapshot(b, src.subtask, src.par)
	if err != nil {
		t.Fatal(err)
	}
	return snap.offsets
}

// TestKafkaSourceKeepsUnlistedPartitions: restored offsets of partitions
// the brokers do not list at Open (a lagging broker, a topic briefly
// unknown) stay in the snapshots of the subtask that owns them, and the
// partitions start there once they appear: at the next discovery, or at
// the Open of a later restore.
func TestKafkaSourceKeepsUnlistedPartitions(t *testing.T) {
	_, addrs := newKafkaCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(2, "t"))
	fillPartitions(t, addrs, "t", 2, 2) // t/0: 0-0 0-1, t/1: 1-0 1-1
	// The checkpoint read t/0 and t/1 to offset 1, t/2 (not listed now)
	// to 3 and u/0 (topic u does not exist now) to 4.
	restored := map[tp]int64{{"t", 0}: 1, {"t", 1}: 1, {"t", 2}: 3, {"u", 0}: 4}
	state := kafkaSourceState(1, 0, []string{"t", "u"}, restored)
	fake := clock.NewFake(time.Unix(0, 0))
	mk := newKafkaSourceT(t, kafkaConfig(addrs, `"topics": ["t", "u"], "discoveryInterval": "30s"`))
	src := openKafkaSource(t, mk, 0, 1, [][]byte{state}, fake)
	before, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if got := snapshotOffsets(t, src); !maps.Equal(got, restored) {
		t.Fatalf("snapshot offsets %v, want %v", got, restored)
	}
	// At parallelism 2 each subtask keeps those it owns, by (topic index
	// + partition) % 2, and only those.
	for sub, want := range []map[tp]int64{{{"t", 0}: 1, {"t", 2}: 3}, {{"t", 1}: 1, {"u", 0}: 4}} {
		if got := snapshotOffsets(t, openKafkaSource(t, mk, sub, 2, [][]byte{state}, nil)); !maps.Equal(got, want) {
			t.Errorf("subtask %d of 2: snapshot offsets %v, want %v", sub, got, want)
		}
	}

	addPartitions(t, addrs, "t", 3)
	var t2 []*kgo.Record
	for i := range 5 {
		t2 = append(t2, testRecord("t", 2, i))
	}
	produceTo(t, addrs, t2...) // t/2: 2-0 .. 2-4
	want := []string{"0-1", "1-1", "2-3", "2-4"}
	sorted := func(c *collector) []string {
		var v []string
		for _, r := range c.recs {
			v = append(v, r.Value)
		}
		slices.Sort(v)
		return v
	}
	// A later restore from the snapshot taken before t/2 appeared finds
	// it at Open.
	var c collector
	pollUntil(t, openKafkaSource(t, mk, 0, 1, [][]byte{before}, nil), &c, len(want))
	if got := sorted(&c); !slices.Equal(got, want) {
		t.Errorf("restored from the snapshot: got %v, want %v", got, want)
	}
	// The source itself finds it at its next discovery.
	c = collector{}
	pollUntil(t, src, &c, 2)
	waitFor(t, "the discovery loop to wait on the clock", func() bool { n, _ := fake.Waiters(); return n == 1 })
	fake.Advance(30 * time.Second)
	pollUntil(t, src, &c, len(want))
	if got := sorted(&c); !slices.Equal(got, want) {
		t.Errorf("after the discovery: got %v, want %v", got, want)
	}
	if got, want := snapshotOffsets(t, src), map[tp]int64{{"t", 0}: 2, {"t", 1}: 2, {"t", 2}: 5, {"u", 0}: 4}; !maps.Equal(got, want) {
		t.Errorf("snapshot offsets after the discovery %v, want %v", got, want)
	}
}

// TestKafkaSourceNilRestoreEntries: a nil entry among the restore states
// is an old subtask that read nothing: its partitions start at their
// earliest offset whatever startFrom says, whether or not other entries
// are nil.
func TestKafkaSourceNilRestoreEntries(t *testing.T) {
	_, addrs := newKafkaCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(2, "n"))
	fillPartitions(t, addrs, "n", 2, 3) // n/0: 0-0 .. 0-2, n/1: 1-0 .. 1-2
	mk := newKafkaSourceT(t, kafkaConfig(addrs, `"topics": ["n"], "startFrom": "latest", "stopAtEnd": true`))
	for _, tc := range []struct {
		name   string
		states [][]byte
		want   []string
	}{
		{"every entry nil", [][]byte{nil}, []string{"0-0", "0-1", "0-2", "1-0", "1-1", "1-2"}},
		{"every entry nil, rescaled", [][]byte{nil, nil, nil}, []string{"0-0", "0-1", "0-2", "1-0", "1-1", "1-2"}},
		{"one entry nil", [][]byte{nil, kafkaSourceState(2, 1, []string{"n"}, map[tp]int64{{"n", 1}: 2})}, []string{"0-0", "0-1", "0-2", "1-2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c collector
			drainKafka(t, openKafkaSource(t, mk, 0, 1, tc.states, nil), &c)
			var got []string
			for _, r := range c.recs {
				got = append(got, r.Value)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestKafkaSourceFailedOpen: an Open that fails closes its client and
// forgets it, so that Close does not close it a second time.
func TestKafkaSourceFailedOpen(t *testing.T) {
	_, addrs := newKafkaCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "f"))
	src := newKafkaSourceT(t, kafkaConfig(addrs, `"topics": ["f"]`))().(*kafkaSource)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := src.Open(ctx, taskInfo(0, 1, nil)); err == nil {
		t.Fatal("Open with a cancelled context succeeded")
	}
	if src.client != nil {
		t.Fatal("the failed Open left its closed client set")
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
}

// testWriter writes log lines to the test log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

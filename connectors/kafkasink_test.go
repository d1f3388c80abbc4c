package connectors

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/abi/row"
	"github.com/weirstream/weir/runtime"
)

// openKafkaSink makes, restores (when states is not nil, from checkpoint)
// and opens subtask of p.
func openKafkaSink(t testing.TB, mk func() runtime.Sink, subtask, p int, checkpoint int64, states [][]byte) *kafkaSink {
	t.Helper()
	s := mk().(*kafkaSink)
	info := kafkaTaskInfo(subtask, p, nil)
	ctx := context.Background()
	if states != nil {
		if err := s.Restore(ctx, info, checkpoint, states); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Open(ctx, info); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// openKafkaSinkLogged is openKafkaSink with the sink's log recorded in
// logs; it returns Open's error instead of failing the test.
func openKafkaSinkLogged(t testing.TB, mk func() runtime.Sink, subtask, p int, checkpoint int64, states [][]byte, logs *logRecorder) (*kafkaSink, error) {
	t.Helper()
	s := mk().(*kafkaSink)
	info := taskInfo(subtask, p, nil)
	info.Logger = logs.logger()
	ctx := context.Background()
	if states != nil {
		if err := s.Restore(ctx, info, checkpoint, states); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { s.Close() })
	return s, s.Open(ctx, info)
}

// preCommitted runs a first attempt of subtask 0 of 1 of mk that writes
// values, pre-commits them as checkpoint's transaction and fails before
// the checkpoint's completion is notified; it returns the state.
func preCommitted(t testing.TB, mk func() runtime.Sink, checkpoint int64, values ...string) []byte {
	t.Helper()
	s := openKafkaSink(t, mk, 0, 1, 0, nil)
	for _, v := range values {
		sinkWrite(t, s, rec{Value: v})
	}
	st := preCommit(t, s, checkpoint)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return st
}

func sinkWrite(t testing.TB, s runtime.Sink, recs ...rec) {
	t.Helper()
	if err := s.Write(context.Background(), encode(recs...)); err != nil {
		t.Fatal(err)
	}
}

func preCommit(t testing.TB, s runtime.TwoPhaseSink, checkpoint int64) []byte {
	t.Helper()
	b, err := s.PreCommit(context.Background(), checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func commit(t testing.TB, s runtime.TwoPhaseSink, checkpoint int64) {
	t.Helper()
	if err := s.Commit(context.Background(), checkpoint); err != nil {
		t.Fatal(err)
	}
}

// values returns the values of recs, sorted.
func values(recs []*kgo.Record) []string {
	var v []string
	for _, r := range recs {
		v = append(v, string(r.Value))
	}
	slices.Sort(v)
	return v
}

func wantValues(t testing.TB, what string, recs []*kgo.Record, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := values(recs); !slices.Equal(got, want) {
		t.Fatalf("%s: got %q, want %q", what, got, want)
	}
}

// TestKafkaSinkAtLeastOnce: records reach the topic with their keys
// (empty keys as null keys) and timestamps once the sink pre-commits.
func TestKafkaSinkAtLeastOnce(t *testing.T) {
	_, addrs := newKafkaCluster(t, kfake.SeedTopics(4, "out"))
	mk := newKafkaSinkT(t, kafkaConfig(addrs, `"topic": "out"`))
	s := openKafkaSink(t, mk, 0, 1, 0, nil)
	var recs []rec
	for i := range 50 {
		key := ""
		if i%2 == 0 {
			key = fmt.Sprintf("key-%d", i%5)
		}
		recs = append(recs, rec{Key: key, Value: fmt.Sprintf("v%d", i), TS: int64(1_700_000_000_000 + i)})
	}
	recs = append(recs, rec{Key: "k", Value: "", TS: abi.NoTimestamp})
	sinkWrite(t, s, recs[:20]...)
	sinkWrite(t, s, recs[20:]...)
	if state := preCommit(t, s, 1); state != nil {
		t.Fatalf("at-least-once state %x, want none", state)
	}
	got := readTopic(t, addrs, "out", false)
	if len(got) != len(recs) {
		t.Fatalf("%d records, want %d", len(got), len(recs))
	}
	byValue := map[string]*kgo.Record{}
	partitionOf := map[string]int32{}
	for _, r := range got {
		byValue[string(r.Value)] = r
		if r.Key != nil {
			if p, ok := partitionOf[string(r.Key)]; ok && p != r.Partition {
				t.Errorf("key %q in partitions %d and %d", r.Key, p, r.Partition)
			}
			partitionOf[string(r.Key)] = r.Partition
		}
	}
	for _, w := range recs {
		r := byValue[w.Value]
		switch {
		case r == nil:
			t.Fatalf("record %q missing", w.Value)
		case w.Key == "" && r.Key != nil:
			t.Errorf("record %q: key %q, want a null key", w.Value, r.Key)
		case w.Key != "" && string(r.Key) != w.Key:
			t.Errorf("record %q: key %q, want %q", w.Value, r.Key, w.Key)
		case w.TS != abi.NoTimestamp && r.Timestamp.UnixMilli() != w.TS:
			t.Errorf("record %q: timestamp %d, want %d", w.Value, r.Timestamp.UnixMilli(), w.TS)
		case r.Value == nil:
			t.Errorf("record %q: a null value (tombstone)", w.Value)
		}
	}
	if err := s.Finish(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestKafkaSinkHeadersAndFormats: with headers the envelope's value and
// headers are written (a null envelope value as a tombstone); json and
// row reject values that are not of the format.
func TestKafkaSinkHeadersAndFormats(t *testing.T) {
	_, addrs := newKafkaCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "h", "j"))
	s := openKafkaSink(t, newKafkaSinkT(t, kafkaConfig(addrs, `"topic": "h", "headers": true, "format": "json"`)), 0, 1, 0, nil)
	hs := []kgo.RecordHeader{{Key: "a", Value: []byte("1")}, {Key: "n", Value: nil}, {Key: "e", Value: []byte{}}}
	env := appendHeadersEnvelope(nil, []byte(`{"x": 1}`), hs)
	tomb := appendHeadersEnvelope(nil, nil, nil)
	sinkWrite(t, s, rec{Key: "k", Value: string(env), TS: 5}, rec{Key: "k", Value: string(tomb), TS: 6})
	preCommit(t, s, 1)
	got := readTopic(t, addrs, "h", false)
	if len(got) != 2 || string(got[0].Value) != `{"x": 1}` || got[1].Value != nil {
		t.Fatalf("got %+v", got)
	}
	if len(got[0].Headers) != 3 {
		t.Fatalf("headers %+v, want %+v", got[0].Headers, hs)
	}
	for i, h := range got[0].Headers {
		if h.Key != hs[i].Key || string(h.Value) != string(hs[i].Value) {
			t.Errorf("header %d: %+v, want %+v", i, h, hs[i])
		}
	}
	for _, tc := range []struct {
		config string
		value  []byte
		want   string
	}{
		{`"topic": "j", "format": "json"`, []byte(`[1]`), `kafka sink node "node" subtask 0: record 0 of the batch: value is not a JSON object: "[1]"`},
		{`"topic": "j", "format": "row"`, []byte{9}, `record 0 of the batch: value is not a row: row: field 0: unknown kind 9`},
		{`"topic": "j", "headers": true`, []byte("plain"), `record 0 of the batch: headers envelope:`},
	} {
		s := openKafkaSink(t, newKafkaSinkT(t, kafkaConfig(addrs, tc.config)), 0, 1, 0, nil)
		err := s.Write(context.Background(), encode(rec{Value: string(tc.value)}))
		wantErr(t, err, tc.want)
	}
}

// exactlyOnceConfig is the config of an exactly-once sink to topic.
func exactlyOnceConfig(addrs []string, topic, prefix string) []byte {
	return kafkaConfig(addrs, fmt.Sprintf(`"topic": %q, "deliveryGuarantee": "exactly-once", "transactionalIdPrefix": %q, "transactionTimeout": "1m"`, topic, prefix))
}

// TestKafkaSinkExactlyOnce walks the protocol: records are invisible to
// read_committed readers until the checkpoint that covers them is
// committed; a restore commits the checkpoint's pre-committed
// transactions (again without harm) and aborts what earlier attempts left
// open, so readers are never blocked by it.
func TestKafkaSinkExactlyOnce(t *testing.T) {
	_, addrs := newKafkaCluster(t, kfake.SeedTopics(3, "out"))
	mk := newKafkaSinkT(t, exactlyOnceConfig(addrs, "out", "job-a"))
	s := openKafkaSink(t, mk, 0, 1, 0, nil)
	sinkWrite(t, s, rec{Value: "a1"}, rec{Key: "x", Value: "a2"}, rec{Value: "a3"})
	st1 := preCommit(t, s, 1)
	if st1 == nil {
		t.Fatal("no state for a pre-committed transaction")
	}
	wantValues(t, "read_committed after PreCommit(1)", readTopic(t, addrs, "out", true))
	wantValues(t, "read_uncommitted after PreCommit(1)", readTopic(t, addrs, "out", false), "a1", "a2", "a3")
	sinkWrite(t, s, rec{Value: "b1"}, rec{Value: "b2"})
	commit(t, s, 1)
	wantValues(t, "read_committed after Commit(1)", readTopic(t, addrs, "out", true), "a1", "a2", "a3")
	st2 := preCommit(t, s, 2)
	sinkWrite(t, s, rec{Value: "c1"}) // transaction 3: never pre-committed
	// A transaction an earlier attempt left open under one of this
	// sink's ids (an attempt that crashed without aborting).
	zombie := newKafkaTestClient(t, addrs, kgo.TransactionalID("job-a-0-7"), kgo.DefaultProduceTopic("out"))
	if err := zombie.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := zombie.ProduceSync(ctx, &kgo.Record{Value: []byte("zombie")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// And one of another job's prefix, which must stay untouched.
	other := newKafkaTestClient(t, addrs, kgo.TransactionalID("job-b-0-0"), kgo.DefaultProduceTopic("out"))
	if err := other.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := other.ProduceSync(ctx, &kgo.Record{Value: []byte("other")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// The attempt fails before checkpoint 2 is committed.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The job restarts from checkpoint 2.
	openKafkaSink(t, mk, 0, 1, 2, [][]byte{st2})
	if err := other.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("the other job's transaction was disturbed: %v", err)
	}
	wantValues(t, "read_committed after the restore", readTopic(t, addrs, "out", true), "a1", "a2", "a3", "b1", "b2", "other")
	// The zombie was fenced: its transaction is gone and it cannot commit.
	if err := zombie.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Fatal("the fenced zombie committed")
	}
	// Restoring checkpoint 2 again (another failure before the next
	// checkpoint) commits nothing twice.
	s3 := openKafkaSink(t, mk, 0, 1, 2, [][]byte{st2})
	sinkWrite(t, s3, rec{Value: "d1"})
	preCommit(t, s3, 3)
	commit(t, s3, 3)
	wantValues(t, "read_committed at the end", readTopic(t, addrs, "out", true), "a1", "a2", "a3", "b1", "b2", "other", "d1")
}

// TestKafkaSinkRestoreRescale: the pre-committed transactions of every old
// subtask are committed by the new subtask i % p, at a lower and at a
// higher parallelism.
func TestKafkaSinkRestoreRescale(t *testing.T) {
	_, addrs := newKafkaCluster(t, kfake.SeedTopics(2, "out"))
	for _, newP := range []int{1, 3} {
		t.Run(fmt.Sprintf("2 to %d", newP), func(t *testing.T) {
			topic := fmt.Sprintf("out%d", newP)
			createTopic(t, addrs, topic, 2)
			mk := newKafkaSinkT(t, exactlyOnceConfig(addrs, topic, topic))
			states := make([][]byte, 2)
			for sub := range 2 {
				s := openKafkaSink(t, mk, sub, 2, 0, nil)
				sinkWrite(t, s, rec{Value: fmt.Sprintf("s%d-a", sub)})
				preCommit(t, s, 4)
				commit(t, s, 4)
				sinkWrite(t, s, rec{Value: fmt.Sprintf("s%d-b", sub)})
				states[sub] = preCommit(t, s, 5)
				sinkWrite(t, s, rec{Value: fmt.Sprintf("s%d-lost", sub)})
				s.Close()
			}
			for sub := range newP {
				openKafkaSink(t, mk, sub, newP, 5, states)
			}
			wantValues(t, "after the restore", readTopic(t, addrs, topic, true), "s0-a", "s1-a", "s0-b", "s1-b")
		})
	}
}

// TestKafkaSinkCommitAfterClose: a transaction pre-committed before Close
// is still committed by a later Commit.
func TestKafkaSinkCommitAfterClose(t *testing.T) {
	_, addrs := newKafkaCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "out"))
	mk := newKafkaSinkT(t, exactlyOnceConfig(addrs, "out", "late"))
	s := openKafkaSink(t, mk, 0, 1, 0, nil)
	sinkWrite(t, s, rec{Value: "x"})
	if err := s.Finish(context.Background()); err != nil {
		t.Fatal(err)
	}
	preCommit(t, s, runtime.FinalCheckpoint)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	commit(t, s, runtime.FinalCheckpoint)
	wantValues(t, "after Commit", readTopic(t, addrs, "out", true), "x")
}

// TestKafkaSinkProducerReuse: a producer is reused only after a checkpoint
// later than its commit completed, so a restore of any checkpoint that
// lists its transaction finds it still there; the pool stays small.
func TestKafkaSinkProducerReuse(t *testing.T) {
	_, addrs := newKafkaCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "out"))
	s := openKafkaSink(t, newKafkaSinkT(t, exactlyOnceConfig(addrs, "out", "reuse")), 0, 1, 0, nil)
	var want []string
	lastTxnOf := map[string]int64{} // transactional id -> checkpoint of its last transaction
	completed := int64(0)
	for cp := int64(1); cp <= 12; cp++ {
		v := fmt.Sprintf("v%d", cp)
		want = append(want, v)
		sinkWrite(t, s, rec{Value: v})
		id := s.current.id
		if last, ok := lastTxnOf[id]; ok && completed <= last {
			t.Fatalf("checkpoint %d reuses %s, whose transaction of checkpoint %d may still be restored (last completed checkpoint %d)", cp, id, last, completed)
		}
		lastTxnOf[id] = cp
		preCommit(t, s, cp)
		// Every third checkpoint's completion is notified late, after the
		// next one's records started.
		if cp%3 != 0 {
			commit(t, s, cp)
			completed = cp
		} else if cp > 1 {
			commit(t, s, cp-1)
			completed = cp - 1
		}
	}
	commit(t, s, 12)
	if len(s.pool) > 3 {
		t.Errorf("%d producers, want at most 3", len(s.pool))
	}
	wantValues(t, "committed", readTopic(t, addrs, "out", true), want...)
}

// TestKafkaSinkRestoreErrors: states that are not this sink's, or of a
// later checkpoint, fail the restore naming what is wrong.
func TestKafkaSinkRestoreErrors(t *testing.T) {
	mk := newKafkaSinkT(t, []byte(`{"brokers": ["127.0.0.1:1"], "topic": "t", "deliveryGuarantee": "exactly-once", "transactionalIdPrefix": "p"}`))
	st := func(sub int, txns ...kafkaTxnState) []byte { return encodeKafkaSinkState(sub, txns) }
	for _, tc := range []struct {
		name   string
		states [][]byte
		want   string
	}{
		{"garbage", [][]byte{[]byte("garbage, not a state")}, `kafka sink node "node" subtask 0: restore checkpoint 5: state of old subtask 0: not a Weir connector snapshot`},
		{"source snapshot", [][]byte{newSnapWriter(snapKindKafkaSource).finish()}, `snapshot of a kafka source, want a kafka sink`},
		{"misplaced", [][]byte{st(1)}, `taken by subtask 1, but it is entry 0 of a checkpoint with 1 subtasks`},
		{"later checkpoint", [][]byte{st(0, kafkaTxnState{checkpoint: 6, id: "p-0-0"})}, `state of old subtask 0 holds a transaction of checkpoint 6`},
		{"foreign id", [][]byte{st(0, kafkaTxnState{checkpoint: 5, id: "someone-else"})}, `corrupt state: "someone-else" is not a transactional id of subtask 0`},
		// Subtask 0 of 1 takes over old subtask 1's state, whose id is
		// subtask 0's of a prefix containing "-1-".
		{"another subtask's id", [][]byte{nil, st(1, kafkaTxnState{checkpoint: 5, id: "job-1-x-0-3"})}, `state of old subtask 1: corrupt state: "job-1-x-0-3" is not a transactional id of subtask 1`},
		{"no producer number", [][]byte{st(0, kafkaTxnState{checkpoint: 5, id: "p-0"})}, `corrupt state: "p-0" is not a transactional id of subtask 0`},
		{"producer number beyond the pool", [][]byte{st(0, kafkaTxnState{checkpoint: 5, id: "p-0-32"})}, `corrupt state: "p-0-32" is not a transactional id of subtask 0`},
		{"leading zero", [][]byte{st(0, kafkaTxnState{checkpoint: 5, id: "p-00-1"})}, `corrupt state: "p-00-1" is not a transactional id of subtask 0`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mk().(*kafkaSink)
			wantErr(t, s.Restore(context.Background(), taskInfo(0, 1, nil), 5, tc.states), tc.want)
		})
	}
	// Ids of a prefix containing "-<subtask>-", and of another prefix (a
	// savepoint taken before the prefix changed), are fine.
	s := mk().(*kafkaSink)
	good := [][]byte{st(0, kafkaTxnState{checkpoint: 4, id: "job-1-x-0-3"}, kafkaTxnState{checkpoint: 5, id: "old-prefix-0-31"}), st(1, kafkaTxnState{checkpoint: 5, id: "job-0-x-1-0"})}
	if err := s.Restore(context.Background(), taskInfo(0, 1, nil), 5, good); err != nil {
		t.Fatal(err)
	}
	if len(s.recover) != 3 {
		t.Fatalf("recover %+v", s.recover)
	}
	// A final transaction of a subtask that had finished is fine.
	s = mk().(*kafkaSink)
	if err := s.Restore(context.Background(), taskInfo(0, 1, nil), 5, [][]byte{st(0, kafkaTxnState{checkpoint: runtime.FinalCheckpoint, id: "p-0-1", producerID: 9, epoch: 3})}); err != nil {
		t.Fatal(err)
	}
	if len(s.recover) != 1 || s.recover[0] != (kafkaTxnState{checkpoint: runtime.FinalCheckpoint, id: "p-0-1", producerID: 9, epoch: 3}) {
		t.Fatalf("recover %+v", s.recover)
	}
}

// TestKafkaSinkLostTransactionIsLogged: a restored transaction Kafka will
// not commit (here: never existed) does not fail the restore.
func TestKafkaSinkLostTransactionIsLogged(t *testing.T) {
	_, addrs := newKafkaCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "out"))
	mk := newKafkaSinkT(t, exactlyOnceConfig(addrs, "out", "lost"))
	state := encodeKafkaSinkState(0, []kafkaTxnState{{checkpoint: 3, id: "lost-0-0", producerID: 12345, epoch: 0}})
	s := openKafkaSink(t, mk, 0, 1, 3, [][]byte{state})
	sinkWrite(t, s, rec{Value: "after"})
	preCommit(t, s, 4)
	commit(t, s, 4)
	wantValues(t, "committed", readTopic(t, addrs, "out", true), "after")
}

// TestKafkaParseTxnID: ids split from the right, so that the prefix may
// hold anything, digits and dashes included.
func TestKafkaParseTxnID(t *testing.T) {
	for _, tc := range []struct {
		id     string
		prefix string
		sub, k int
		ok     bool
	}{
		{"p-0-0", "p", 0, 0, true},
		{"job-1-x-0-3", "job-1-x", 0, 3, true},
		{"a-2-7-12", "a-2", 7, 12, true},
		{"--1-2", "-", 1, 2, true},
		{"p-1", "", 0, 0, false},
		{"-1-2", "", 0, 0, false},
		{"p-01-2", "", 0, 0, false},
		{"p-1-+2", "", 0, 0, false},
		{"p-1--2", "", 0, 0, false},
		{"p-1-x", "", 0, 0, false},
		{"p-1-", "", 0, 0, false},
		{"", "", 0, 0, false},
	} {
		prefix, sub, k, ok := parseTxnID(tc.id)
		if prefix != tc.prefix || sub != tc.sub || k != tc.k || ok != tc.ok {
			t.Errorf("parseTxnID(%q) = %q, %d, %d, %v; want %q, %d, %d, %v", tc.id, prefix, sub, k, ok, tc.prefix, tc.sub, tc.k, tc.ok)
		}
	}
}

// TestKafkaSinkConcurrentTransactions: CONCURRENT_TRANSACTIONS, which a
// real broker answers EndTxn and InitProducerID with while it completes or
// aborts the id's previous transaction asynchronously, is retried: by
// Commit (say, a retry after a lost EndTxn response), by the restore's
// commit, and by the abort of a lingering transaction at Open.
func TestKafkaSinkConcurrentTransactions(t *testing.T) {
	c, addrs := newKafkaCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "commit", "restore", "abort"))
	concurrent := kerr.ConcurrentTransactions.Code
	t.Run("commit", func(t *testing.T) {
		s := openKafkaSink(t, newKafkaSinkT(t, exactlyOnceConfig(addrs, "commit", "ct-commit")), 0, 1, 0, nil)
		sinkWrite(t, s, rec{Value: "a"})
		preCommit(t, s, 1)
		hits := answerTxnError(c, kmsg.EndTxn, "ct-commit-0-0", concurrent, 3)
		commit(t, s, 1)
		if n := hits.Load(); n != 3 {
			t.Fatalf("%d EndTxn answered CONCURRENT_TRANSACTIONS, want 3", n)
		}
		wantValues(t, "after Commit", readTopic(t, addrs, "commit", true), "a")
	})
	t.Run("restore", func(t *testing.T) {
		mk := newKafkaSinkT(t, exactlyOnceConfig(addrs, "restore", "ct-restore"))
		st := preCommitted(t, mk, 1, "b")
		hits := answerTxnError(c, kmsg.EndTxn, "ct-restore-0-0", concurrent, 3)
		var logs logRecorder
		if _, err := openKafkaSinkLogged(t, mk, 0, 1, 1, [][]byte{st}, &logs); err != nil {
			t.Fatal(err)
		}
		if n := hits.Load(); n != 3 {
			t.Fatalf("%d EndTxn answered CONCURRENT_TRANSACTIONS, want 3", n)
		}
		if errs := logs.connectorErrors(); len(errs) > 0 {
			t.Fatalf("logged %q", errs)
		}
		wantValues(t, "after the restore", readTopic(t, addrs, "restore", true), "b")
	})
	t.Run("abort lingering", func(t *testing.T) {
		zombie := newKafkaTestClient(t, addrs, kgo.TransactionalID("ct-abort-0-5"), kgo.DefaultProduceTopic("abort"))
		if err := zombie.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if err := zombie.ProduceSync(ctx, &kgo.Record{Value: []byte("zombie")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		hits := answerTxnError(c, kmsg.InitProducerID, "ct-abort-0-5", concurrent, 3)
		openKafkaSink(t, newKafkaSinkT(t, exactlyOnceConfig(addrs, "abort", "ct-abort")), 0, 1, 0, nil)
		if n := hits.Load(); n != 3 {
			t.Fatalf("%d InitProducerID answered CONCURRENT_TRANSACTIONS, want 3", n)
		}
		if err := zombie.EndTransaction(ctx, kgo.TryCommit); err == nil {
			t.Fatal("the lingering transaction was not aborted: its producer committed")
		}
		wantValues(t, "after Open", readTopic(t, addrs, "abort", true))
	})
}

// TestKafkaSinkCommitRefusals: at a restore, a commit that Kafka refuses
// because the transaction is gone for good (fenced, aborted, forgotten) is
// logged and skipped; any other error fails Open, and the next attempt,
// once the broker answers, commits the transaction: nothing is lost.
func TestKafkaSinkCommitRefusals(t *testing.T) {
	c, addrs := newKafkaCluster(t, kfake.NumBrokers(1))
	for i, tc := range []struct {
		code *kerr.Error
		skip bool
	}{
		{kerr.ProducerFenced, true},
		{kerr.InvalidProducerEpoch, true},
		{kerr.InvalidTxnState, true},
		{kerr.InvalidProducerIDMapping, true},
		{kerr.TransactionalIDAuthorizationFailed, false},
		{kerr.ClusterAuthorizationFailed, false},
		{kerr.TransactionAbortable, false},
		{kerr.UnknownServerError, false},
	} {
		t.Run(tc.code.Message, func(t *testing.T) {
			topic := fmt.Sprintf("refused%d", i)
			createTopic(t, addrs, topic, 1)
			mk := newKafkaSinkT(t, exactlyOnceConfig(addrs, topic, topic))
			st := preCommitted(t, mk, 1, "x")
			answerTxnError(c, kmsg.EndTxn, topic+"-0-0", tc.code.Code, 1)
			var logs logRecorder
			_, err := openKafkaSinkLogged(t, mk, 0, 1, 1, [][]byte{st}, &logs)
			if tc.skip {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				if errs := logs.connectorErrors(); len(errs) != 1 || !strings.Contains(errs[0], "could not be committed") {
					t.Fatalf("logged %q, want one error about the transaction", errs)
				}
				// Refused: Open then aborted it as a lingering one.
				wantValues(t, "after the refusal", readTopic(t, addrs, topic, true))
				return
			}
			if !errors.Is(err, tc.code) {
				t.Fatalf("Open: %v, want %v", err, tc.code)
			}
			wantErr(t, err, fmt.Sprintf("commit transaction %s-0-0 of checkpoint 1: end transaction: %s", topic, tc.code.Message))
			// The next attempt (the broker answers again) commits it.
			logs = logRecorder{}
			if _, err := openKafkaSinkLogged(t, mk, 0, 1, 1, [][]byte{st}, &logs); err != nil {
				t.Fatal(err)
			}
			if errs := logs.connectorErrors(); len(errs) > 0 {
				t.Fatalf("logged %q", errs)
			}
			wantValues(t, "after the next attempt", readTopic(t, addrs, topic, true), "x")
		})
	}
}

// TestKafkaSinkTimedOutTransaction: a pre-committed transaction the
// brokers aborted because it outlived transactionTimeout is refused at
// the restore with one of the known answers; it is logged as lost and the
// job goes on.
func TestKafkaSinkTimedOutTransaction(t *testing.T) {
	_, addrs := newKafkaCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "slow"))
	mk := newKafkaSinkT(t, kafkaConfig(addrs, `"topic": "slow", "deliveryGuarantee": "exactly-once", "transactionalIdPrefix": "slow", "transactionTimeout": "1s"`))
	st := preCommitted(t, mk, 1, "late")
	cl := newKafkaTestClient(t, addrs)
	waitFor(t, "the brokers to abort the timed-out transaction", func() bool {
		req := kmsg.NewPtrListTransactionsRequest()
		req.StateFilters = []string{"Ongoing"}
		req.DurationFilterMillis = -1
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		resp, err := req.RequestWith(ctx, cl)
		return err == nil && resp.ErrorCode == 0 && len(resp.TransactionStates) == 0
	})
	var logs logRecorder
	s, err := openKafkaSinkLogged(t, mk, 0, 1, 1, [][]byte{st}, &logs)
	if err != nil {
		t.Fatal(err)
	}
	if errs := logs.connectorErrors(); len(errs) != 1 || !strings.Contains(errs[0], "could not be committed") {
		t.Fatalf("logged %q, want one error about the lost transaction", errs)
	}
	// kfake answers as a broker with KIP-890 does (the abort moved the
	// epoch by one); older brokers answer PRODUCER_FENCED.
	if e := logs.connectorErrors()[0]; !strings.Contains(e, "INVALID_TXN_STATE") && !strings.Contains(e, "PRODUCER_FENCED") {
		t.Fatalf("logged %q, want the refusal INVALID_TXN_STATE or PRODUCER_FENCED", e)
	}
	sinkWrite(t, s, rec{Value: "after"})
	preCommit(t, s, 2)
	commit(t, s, 2)
	wantValues(t, "committed", readTopic(t, addrs, "slow", true), "after")
}

// TestKafkaSinkCoolRecovered: the restored transactions of the subtask's
// own ids cool until a checkpoint after the restored one completes; ids
// between them are free; other subtasks' and other prefixes' ids are not
// this pool's.
func TestKafkaSinkCoolRecovered(t *testing.T) {
	s := newKafkaSinkT(t, []byte(`{"brokers": ["127.0.0.1:1"], "topic": "t", "deliveryGuarantee": "exactly-once", "transactionalIdPrefix": "p-1-"}`))().(*kafkaSink)
	s.subtask, s.par, s.restoredCP = 1, 2, 7
	s.recover = []kafkaTxnState{{id: "p-1--1-2"}, {id: "p-1--3-5"}, {id: "other-1-4"}, {id: "p-1--1-0"}}
	s.coolRecovered()
	var pool, cooling, free []string
	for _, t := range s.pool {
		pool = append(pool, t.id)
	}
	for _, t := range s.cooling {
		cooling = append(cooling, fmt.Sprintf("%s@%d", t.id, t.coolAfter))
	}
	for _, t := range s.free {
		free = append(free, t.id)
	}
	slices.Sort(cooling)
	if want := []string{"p-1--1-0", "p-1--1-1", "p-1--1-2"}; !slices.Equal(pool, want) {
		t.Errorf("pool %q, want %q", pool, want)
	}
	if want := []string{"p-1--1-0@7", "p-1--1-2@7"}; !slices.Equal(cooling, want) {
		t.Errorf("cooling %q, want %q", cooling, want)
	}
	if want := []string{"p-1--1-1"}; !slices.Equal(free, want) {
		t.Errorf("free %q, want %q", free, want)
	}
	// Completing the restored checkpoint again frees nothing; a later
	// one frees them.
	if err := s.Commit(context.Background(), 7); err != nil || len(s.cooling) != 2 {
		t.Fatalf("Commit(7): %v, cooling %d", err, len(s.cooling))
	}
	if err := s.Commit(context.Background(), 8); err != nil || len(s.cooling) != 0 || len(s.free) != 3 {
		t.Fatalf("Commit(8): %v, cooling %d, free %d", err, len(s.cooling), len(s.free))
	}
}

// TestKafkaSinkRestoreKeepsRecoveredIDs: an attempt restored from
// checkpoint n does not begin a transaction under an id whose
// transaction n lists, so that when it fails before a later checkpoint
// completes, the next restore of n commits that transaction again
// without a refusal (no false "records are lost"); once a later
// checkpoint completed, the id is reused.
func TestKafkaSinkRestoreKeepsRecoveredIDs(t *testing.T) {
	_, addrs := newKafkaCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "out"))
	mk := newKafkaSinkT(t, exactlyOnceConfig(addrs, "out", "keep"))
	st := preCommitted(t, mk, 1, "a")
	var logs logRecorder
	s2, err := openKafkaSinkLogged(t, mk, 0, 1, 1, [][]byte{st}, &logs)
	if err != nil {
		t.Fatal(err)
	}
	if s2.current.id == "keep-0-0" {
		t.Fatal("the restored attempt began a transaction under keep-0-0, whose transaction checkpoint 1 lists")
	}
	sinkWrite(t, s2, rec{Value: "b"})
	if err := s2.Close(); err != nil { // fails before checkpoint 2
		t.Fatal(err)
	}
	s3, err := openKafkaSinkLogged(t, mk, 0, 1, 1, [][]byte{st}, &logs)
	if err != nil {
		t.Fatal(err)
	}
	if errs := logs.connectorErrors(); len(errs) > 0 {
		t.Fatalf("logged %q", errs)
	}
	wantValues(t, "after the second restore", readTopic(t, addrs, "out", true), "a")
	sinkWrite(t, s3, rec{Value: "c"})
	preCommit(t, s3, 2)
	commit(t, s3, 2)
	sinkWrite(t, s3, rec{Value: "d"})
	if s3.current.id != "keep-0-0" {
		t.Errorf("after checkpoint 2 completed the next transaction is under %s, want keep-0-0 again", s3.current.id)
	}
	preCommit(t, s3, 3)
	commit(t, s3, 3)
	if len(s3.pool) != 2 {
		t.Errorf("%d producers, want 2", len(s3.pool))
	}
	wantValues(t, "at the end", readTopic(t, addrs, "out", true), "a", "c", "d")
}

// BenchmarkKafkaSinkRecord measures the sink's own per-record work:
// decoding the batch and filling a pooled kgo record (no broker).
func BenchmarkKafkaSinkRecord(b *testing.B) {
	plan, err := newKafkaSinkPlan([]byte(`{"brokers": ["127.0.0.1:1"], "topic": "t"}`))
	if err != nil {
		b.Fatal(err)
	}
	k := newKafkaRecords(plan)
	var e abi.Encoder
	value := make([]byte, 100)
	for i := range 1024 {
		e.Record(abi.TagMain, []byte(fmt.Sprintf("key-%d", i)), value, int64(i))
	}
	batch := e.B
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += 1024 {
		k.dec.Reset(batch)
		for k.dec.More() {
			if err := nextRecord(&k.dec, &k.ev); err != nil {
				b.Fatal(err)
			}
			r, err := k.record(k.ev.Key, k.ev.Value, k.ev.Timestamp)
			if err != nil {
				b.Fatal(err)
			}
			k.done(r, nil)
		}
	}
}

// BenchmarkKafkaSourceEmit measures the source's per-record work between
// kgo and the record writer, for each format and with event time from a
// field.
func BenchmarkKafkaSourceEmit(b *testing.B) {
	jsonValue := []byte(`{"auction": 1000, "bidder": 2001, "price": 123456, "ts": 1700000000123, "extra": "xxxxxxxxxxxxxxxxxxxx"}`)
	rowValue := row.AppendInt(row.AppendInt(row.AppendInt(row.AppendString(nil, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"), 1000), 2001), 1700000000123)
	for _, tc := range []struct {
		name, fields string
		value        []byte
	}{
		{"raw", `"format": "raw"`, make([]byte, 100)},
		{"json", `"format": "json"`, jsonValue},
		{"json-field", `"format": "json", "timestampField": "ts"`, jsonValue},
		{"row-field", `"format": "row", "timestampField": 3`, rowValue},
		{"raw-headers", `"format": "raw", "headers": true`, make([]byte, 100)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			plan, err := newKafkaSourcePlan([]byte(`{"brokers": ["127.0.0.1:1"], "topics": ["t"], ` + tc.fields + `}`))
			if err != nil {
				b.Fatal(err)
			}
			s := &kafkaSource{plan: plan}
			s.tsNames[0] = plan.tsMember
			kp := &kafkaPartition{tp: tp{"t", 0}, end: -1}
			recs := make([]*kgo.Record, 1024)
			for i := range recs {
				recs[i] = &kgo.Record{Key: []byte("key"), Value: tc.value, Offset: int64(i), Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("v")}}}
			}
			var w batchWriter
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.value)))
			b.ResetTimer()
			for i := 0; i < b.N; i += len(recs) {
				w.enc.Reset()
				if err := s.emit(kp, recs, &w); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

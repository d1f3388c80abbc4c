package connectors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/runtime"
)

// kafkaSinkConfig is the config of the Kafka sink (doc.go, "Source and
// sink kafka").
type kafkaSinkConfig struct {
	Brokers               []string          `json:"brokers"`
	Topic                 string            `json:"topic"`
	Format                string            `json:"format"`
	Headers               bool              `json:"headers"`
	DeliveryGuarantee     string            `json:"deliveryGuarantee"`
	TransactionalIDPrefix string            `json:"transactionalIdPrefix"`
	TransactionTimeout    *runtime.Duration `json:"transactionTimeout"`
	Linger                *runtime.Duration `json:"linger"`
	Compression           string            `json:"compression"`
}

// Sink defaults and limits.
const (
	// defaultTransactionTimeout is Kafka's default
	// transaction.max.timeout.ms: as long as brokers allow by default, since
	// a pre-committed transaction must survive until its checkpoint
	// completes, and after a failure until the restored job commits it.
	defaultTransactionTimeout = 15 * time.Minute
	// defaultLinger is how long a partition's records wait for more
	// before a produce request is built (kgo's default).
	defaultLinger = 10 * time.Millisecond
	// maxKafkaTxnProducers bounds the transactional producers of a
	// subtask: one open transaction, the pre-committed ones waiting for
	// their checkpoint to complete, and the committed ones waiting for
	// the next completion before their id may be reused. A few in steady
	// state; this many means checkpoints have not completed for long.
	maxKafkaTxnProducers = 32
	// kafkaAbortTimeout bounds the best-effort abort of an unfinished
	// transaction at Close (the next attempt fences it anyway).
	kafkaAbortTimeout = 5 * time.Second
)

// kafkaSinkPlan is a validated Kafka sink config, shared by the subtasks.
type kafkaSinkPlan struct {
	brokers     []string
	topic       string
	format      kafkaFormat
	headers     bool
	exactlyOnce bool
	txnPrefix   string
	txnTimeout  time.Duration
	linger      time.Duration
	compression kgo.CompressionCodec
}

// NewKafkaSinkFactory returns the factory of the "kafka" sink.
func NewKafkaSinkFactory() runtime.SinkFactory {
	return func(config []byte) (func() runtime.Sink, error) {
		plan, err := newKafkaSinkPlan(config)
		if err != nil {
			return nil, err
		}
		return func() runtime.Sink { return newKafkaSink(plan) }, nil
	}
}

func newKafkaSinkPlan(config []byte) (*kafkaSinkPlan, error) {
	var cfg kafkaSinkConfig
	if err := runtime.DecodeConfig(config, &cfg); err != nil {
		return nil, err
	}
	if err := checkBrokers(cfg.Brokers); err != nil {
		return nil, err
	}
	if cfg.Topic == "" {
		return nil, errors.New("config.topic: required (the topic to write to)")
	}
	if err := checkTopicName(cfg.Topic); err != nil {
		return nil, fmt.Errorf("config.topic: %w", err)
	}
	p := &kafkaSinkPlan{
		brokers:     cfg.Brokers,
		topic:       cfg.Topic,
		headers:     cfg.Headers,
		txnTimeout:  defaultTransactionTimeout,
		linger:      defaultLinger,
		compression: kgo.NoCompression(),
	}
	var err error
	if p.format, err = parseKafkaFormat(cfg.Format); err != nil {
		return nil, err
	}
	switch cfg.DeliveryGuarantee {
	case "", "at-least-once":
	case "exactly-once":
		p.exactlyOnce = true
	default:
		return nil, fmt.Errorf("config.deliveryGuarantee: must be one of at-least-once, exactly-once, got %q", cfg.DeliveryGuarantee)
	}
	if p.exactlyOnce {
		if cfg.TransactionalIDPrefix == "" {
			return nil, errors.New(`config.transactionalIdPrefix: required with deliveryGuarantee "exactly-once" (unique per job and sink: jobs sharing one abort each other's transactions)`)
		}
		if len(cfg.TransactionalIDPrefix) > 200 || strings.ContainsFunc(cfg.TransactionalIDPrefix, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return nil, fmt.Errorf("config.transactionalIdPrefix: %q must be at most 200 characters without control characters", cfg.TransactionalIDPrefix)
		}
		p.txnPrefix = cfg.TransactionalIDPrefix
		if cfg.TransactionTimeout != nil {
			p.txnTimeout = time.Duration(*cfg.TransactionTimeout)
			if p.txnTimeout < time.Second || p.txnTimeout%time.Millisecond != 0 {
				return nil, fmt.Errorf("config.transactionTimeout: must be at least 1s, in whole milliseconds, got %v", p.txnTimeout)
			}
		}
	} else {
		if cfg.TransactionalIDPrefix != "" {
			return nil, errors.New(`config.transactionalIdPrefix: only used with deliveryGuarantee "exactly-once"`)
		}
		if cfg.TransactionTimeout != nil {
			return nil, errors.New(`config.transactionTimeout: only used with deliveryGuarantee "exactly-once"`)
		}
	}
	if cfg.Linger != nil {
		p.linger = time.Duration(*cfg.Linger)
		if p.linger < 0 || p.linger > time.Minute {
			return nil, fmt.Errorf("config.linger: must be between 0 and 1m, got %v", p.linger)
		}
	}
	switch cfg.Compression {
	case "", "none":
	case "gzip":
		p.compression = kgo.GzipCompression()
	case "snappy":
		p.compression = kgo.SnappyCompression()
	case "lz4":
		p.compression = kgo.Lz4Compression()
	case "zstd":
		p.compression = kgo.ZstdCompression()
	default:
		return nil, fmt.Errorf("config.compression: must be one of none, gzip, snappy, lz4, zstd, got %q", cfg.Compression)
	}
	return p, nil
}

// producerOptions are the options of the sink's producing clients.
func (p *kafkaSinkPlan) producerOptions(log *slog.Logger) []kgo.Opt {
	return append(kafkaClientOptions(p.brokers, log),
		kgo.DefaultProduceTopic(p.topic),
		kgo.ProducerLinger(p.linger),
		kgo.ProducerBatchCompression(p.compression),
	)
}

// transactionalID is the id of producer k of subtask.
func (p *kafkaSinkPlan) transactionalID(subtask, k int) string {
	return p.txnPrefix + "-" + strconv.Itoa(subtask) + "-" + strconv.Itoa(k)
}

// kafkaRecords turns sink batches into kgo records and collects the
// outcome of producing them. Records are recycled through a pool once
// their promise ran (kgo owns a record until then), keeping their key,
// value and header buffers, so steady state allocates nothing per record
// (header keys aside: kgo wants strings).
type kafkaRecords struct {
	plan    *kafkaSinkPlan
	dec     abi.Decoder
	ev      abi.Event
	pool    sync.Pool // *kgo.Record
	promise func(*kgo.Record, error)

	mu  sync.Mutex
	err error // the first failed record's error
}

func newKafkaRecords(plan *kafkaSinkPlan) *kafkaRecords {
	k := &kafkaRecords{plan: plan}
	k.promise = k.done
	return k
}

// done is the promise of every record.
func (k *kafkaRecords) done(r *kgo.Record, err error) {
	if err != nil {
		k.mu.Lock()
		if k.err == nil {
			k.err = fmt.Errorf("produce to topic %q: %w", r.Topic, err)
		}
		k.mu.Unlock()
	}
	k.pool.Put(r)
}

// failed returns the first produce error.
func (k *kafkaRecords) failed() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.err
}

// produce hands the records of batch to cl and returns how many.
func (k *kafkaRecords) produce(ctx context.Context, cl *kgo.Client, batch []byte) (int, error) {
	if err := k.failed(); err != nil {
		return 0, err
	}
	n := 0
	k.dec.Reset(batch)
	for k.dec.More() {
		if err := nextRecord(&k.dec, &k.ev); err != nil {
			return n, err
		}
		r, err := k.record(k.ev.Key, k.ev.Value, k.ev.Timestamp)
		if err != nil {
			return n, fmt.Errorf("record %d of the batch: %w", n, err)
		}
		cl.Produce(ctx, r, k.promise)
		n++
	}
	return n, nil
}

// record fills a pooled record: an empty key becomes a null key (so that
// keyless records spread over partitions instead of hashing to one), the
// timestamp becomes the record's (none: kgo's produce time), and with
// headers the value is unwrapped from its envelope.
func (k *kafkaRecords) record(key, value []byte, ts int64) (*kgo.Record, error) {
	r, _ := k.pool.Get().(*kgo.Record)
	if r == nil {
		r = new(kgo.Record)
	}
	kbuf, vbuf, headers := r.Key, r.Value, r.Headers[:0]
	*r = kgo.Record{Topic: k.plan.topic, Key: kbuf[:0], Value: vbuf[:0], Headers: headers}
	null := false // only an envelope can say null (a tombstone)
	if k.plan.headers {
		v, parsed, err := decodeHeadersEnvelope(value, headers)
		r.Headers = parsed
		if err != nil {
			k.pool.Put(r)
			return nil, err
		}
		value, headers, null = v, parsed, v == nil
	}
	if !null {
		if err := k.plan.format.check(value); err != nil {
			k.pool.Put(r)
			return nil, err
		}
	}
	if ts != abi.NoTimestamp {
		r.Timestamp = time.UnixMilli(ts)
	}
	if len(key) > 0 {
		r.Key = append(kbuf[:0], key...)
	} else {
		r.Key = nil
	}
	// The value and the header values are copied into one buffer (the
	// batch is reused after Write); it stays with the record for reuse.
	size := len(value)
	for _, h := range headers {
		size += len(h.Value)
	}
	buf := vbuf[:0]
	if cap(buf) < size {
		buf = make([]byte, 0, size)
	}
	buf = append(buf, value...)
	for i := range headers {
		if headers[i].Value != nil {
			at := len(buf)
			buf = append(buf, headers[i].Value...)
			headers[i].Value = buf[at:len(buf):len(buf)]
		}
	}
	switch {
	case null:
		r.Value = nil // a tombstone
	case buf == nil:
		r.Value = []byte{} // empty, not null: a null value is a tombstone
	default:
		r.Value = buf[:len(value)]
	}
	return r, nil
}

// kafkaTxnState is a pre-committed transaction as a checkpoint holds it:
// enough to commit it without its producer (Restore does that).
type kafkaTxnState struct {
	checkpoint int64
	id         string // transactional id
	producerID int64
	epoch      int16
}

// kafkaTxnProducer is one transactional id of a subtask's pool,
// <prefix>-<subtask>-<k>, and the kgo client writing the open transaction
// under it (nil once the transaction is pre-committed: see PreCommit).
type kafkaTxnProducer struct {
	k       int
	id      string
	client  *kgo.Client
	records int // produced in the open transaction
	kafkaTxnState
	// coolAfter: the transaction was committed while checkpoint coolAfter
	// was the last pre-committed; the id is reused only once a later
	// checkpoint completed (see doc.go: a checkpoint that still lists the
	// transaction could otherwise be restored and commit another one).
	coolAfter int64
}

// kafkaSink is one subtask of a Kafka sink node: at-least-once (one
// idempotent producer, flushed at every checkpoint) or exactly-once
// (Kafka transactions committed when the checkpoint completes). Both are
// runtime.TwoPhaseSinks, the first only to flush at PreCommit.
type kafkaSink struct {
	plan *kafkaSinkPlan
	recs *kafkaRecords

	node         string
	subtask, par int
	log          *slog.Logger
	opened       bool
	closed       bool

	client *kgo.Client // at-least-once: the producer; exactly-once: requests outside transactions

	// exactly-once
	pool          []*kafkaTxnProducer // by k
	current       *kafkaTxnProducer   // the open transaction; nil until the next record
	pending       []*kafkaTxnProducer // pre-committed, by ascending checkpoint
	cooling       []*kafkaTxnProducer // committed, id not reusable yet
	free          []*kafkaTxnProducer // reusable, by ascending k
	lastPreCommit int64

	// Restore: the old subtasks' transactions to commit at Open, and the
	// checkpoint they come from.
	recover    []kafkaTxnState
	restoredCP int64
}

func newKafkaSink(plan *kafkaSinkPlan) *kafkaSink {
	return &kafkaSink{plan: plan, recs: newKafkaRecords(plan), lastPreCommit: -1}
}

func (s *kafkaSink) errorf(format string, args ...any) error {
	return fmt.Errorf("kafka sink node %q subtask %d: %w", s.node, s.subtask, fmt.Errorf(format, args...))
}

// Restore implements runtime.TwoPhaseSink. It only reads the states of
// the old subtasks this subtask takes over (i % parallelism == subtask);
// the commits need the brokers and happen at Open, where a broker that is
// away fails the attempt as any failure does (a failed Restore would fail
// the job for good).
func (s *kafkaSink) Restore(_ context.Context, info runtime.TaskInfo, checkpoint int64, states [][]byte) error {
	subtask, p, err := checkTask(info)
	if err != nil {
		return fmt.Errorf("kafka sink: %w", err)
	}
	s.node, s.subtask = info.NodeID, subtask
	s.recover, s.restoredCP = nil, checkpoint
	for old := subtask; old < len(states); old += p {
		if states[old] == nil {
			continue
		}
		txns, err := decodeKafkaSinkState(states[old], old, len(states))
		if err != nil {
			return s.errorf("restore checkpoint %d: state of old subtask %d: %w", checkpoint, old, err)
		}
		for _, t := range txns {
			if t.checkpoint > checkpoint && t.checkpoint != runtime.FinalCheckpoint {
				return s.errorf("restore checkpoint %d: state of old subtask %d holds a transaction of checkpoint %d", checkpoint, old, t.checkpoint)
			}
		}
		s.recover = append(s.recover, txns...)
	}
	return nil
}

// Open commits the transactions Restore took over, aborts (exactly-once)
// the transactions earlier attempts left open under the transactional ids
// this subtask is responsible for, and starts the producer.
func (s *kafkaSink) Open(ctx context.Context, info runtime.TaskInfo) error {
	subtask, p, err := checkTask(info)
	if err != nil {
		return fmt.Errorf("kafka sink: %w", err)
	}
	s.node, s.subtask, s.par = info.NodeID, subtask, p
	s.log = loggerOrDiscard(info.Logger).With("node", info.NodeID, "subtask", subtask)
	opts := s.plan.producerOptions(s.log)
	if s.client, err = kgo.NewClient(opts...); err != nil {
		return s.errorf("kafka client: %w", err)
	}
	octx, cancel := context.WithTimeout(ctx, kafkaRequestTimeout)
	defer cancel()
	fail := func(err error) error {
		s.client.Close()
		s.client = nil
		return s.errorf("%w", err)
	}
	if err := s.commitRecovered(octx); err != nil {
		return fail(err)
	}
	if s.plan.exactlyOnce {
		s.coolRecovered()
	}
	s.recover = nil
	if s.plan.exactlyOnce {
		if err := s.abortLingering(octx); err != nil {
			return fail(err)
		}
		// The first producer starts now, so that a transaction timeout
		// the brokers refuse fails here rather than at the first record.
		t, err := s.acquire()
		if err != nil {
			return fail(err)
		}
		if _, _, err := t.client.ProducerID(octx); err != nil {
			s.closeCurrent()
			return fail(fmt.Errorf("init transactional producer %s: %w", t.id, err))
		}
	}
	s.opened = true
	return nil
}

// commitRecovered commits the transactions Restore took over. A
// transaction Kafka refuses to commit for one of the known reasons
// (kafkaCommitRefused) is logged, not an error: no retry can change the
// answer. Any other error (authorization, a coordinator away for long, an
// abortable transaction) fails the attempt, whose successor tries again:
// the transaction may still be there to commit.
func (s *kafkaSink) commitRecovered(ctx context.Context) error {
	for _, t := range s.recover {
		err := kafkaEndTxn(ctx, s.client, t, true)
		switch {
		case err == nil:
		case kafkaCommitRefused(err):
			s.log.Error("kafka sink: a transaction of the restored checkpoint could not be committed: it was committed before and its transactional id moved on (a restore from an older checkpoint or savepoint), or the brokers aborted it (it outlived transactionTimeout) or forgot its producer (transactional.id.expiration.ms) and its records are lost",
				"checkpoint", t.checkpoint, "transactionalId", t.id, "producerId", t.producerID, "epoch", t.epoch, "err", err)
		default:
			return fmt.Errorf("commit transaction %s of checkpoint %d: %w", t.id, t.checkpoint, err)
		}
	}
	return nil
}

// kafkaCommitRefused reports whether err is a broker's final refusal to
// commit a transaction by its producer id and epoch, as Flink's committer
// tells them apart: PRODUCER_FENCED (INVALID_PRODUCER_EPOCH from brokers
// before 2.7), the id's epoch moved on, because the id was initialised
// again or the brokers aborted the transaction on timeout (which bumps the
// epoch); INVALID_TXN_STATE, the transaction was aborted (a timeout under
// KIP-890, where the epoch moved by exactly one); INVALID_PRODUCER_ID_MAPPING,
// the coordinator no longer knows the producer (the id expired).
func kafkaCommitRefused(err error) bool {
	for _, known := range []*kerr.Error{kerr.ProducerFenced, kerr.InvalidProducerEpoch, kerr.InvalidTxnState, kerr.InvalidProducerIDMapping} {
		if errors.Is(err, known) {
			return true
		}
	}
	return false
}

// coolRecovered puts the transactional ids of this subtask's own pool
// among the restored transactions into cooling, as if this attempt had
// committed them: the restored checkpoint still lists them, and if this
// attempt fails before a later checkpoint completes, the next restore
// commits them again, which Kafka accepts only while the id has not begun
// another transaction. The ids below them start free.
func (s *kafkaSink) coolRecovered() {
	cool := map[int]bool{}
	top := -1
	for _, t := range s.recover {
		prefix, sub, k, ok := parseTxnID(t.id)
		if ok && prefix == s.plan.txnPrefix && sub == s.subtask {
			cool[k] = true
			top = max(top, k)
		}
	}
	for k := len(s.pool); k <= top; k++ {
		t := &kafkaTxnProducer{k: k, id: s.plan.transactionalID(s.subtask, k)}
		s.pool = append(s.pool, t)
		if cool[k] {
			t.coolAfter = s.restoredCP
			s.cooling = append(s.cooling, t)
		} else {
			s.release(t)
		}
	}
}

// kafkaEndTxn ends the transaction of t's producer id and epoch with a
// raw EndTxn, without initialising the id (that would abort it). Kafka
// answers a repeated commit of a committed transaction with success.
func kafkaEndTxn(ctx context.Context, cl *kgo.Client, t kafkaTxnState, commit bool) error {
	return retryKafkaTxn(ctx, "end transaction", func(ctx context.Context) error {
		req := kmsg.NewPtrEndTxnRequest()
		req.TransactionalID = t.id
		req.ProducerID = t.producerID
		req.ProducerEpoch = t.epoch
		req.Commit = commit
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return err
		}
		return kerr.ErrorForCode(resp.ErrorCode)
	})
}

// abortLingering aborts the open transactions of every transactional id
// <prefix>-<j>-<k> with j % parallelism == subtask: those of this
// subtask's earlier attempts and of old subtasks that no longer exist
// after a rescale. Each such family belongs to exactly one subtask, which
// also committed its restored transactions just before. Initialising an
// id is what aborts its transaction and fences its old producer.
func (s *kafkaSink) abortLingering(ctx context.Context) error {
	var ids []string
	err := retryKafka(ctx, "list transactions", func(ctx context.Context) error {
		req := kmsg.NewPtrListTransactionsRequest()
		req.StateFilters = []string{"Ongoing"}
		req.DurationFilterMillis = -1
		req.TransactionalIDPattern = kmsg.StringPtr("^" + regexp.QuoteMeta(s.plan.txnPrefix) + `-[0-9]+-[0-9]+$`)
		resp, err := req.RequestWith(ctx, s.client)
		if err != nil {
			return err
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return err
		}
		ids = ids[:0]
		for _, st := range resp.TransactionStates {
			if j, ok := s.txnFamily(st.TransactionalID); ok && j%s.par == s.subtask {
				ids = append(ids, st.TransactionalID)
			}
		}
		return nil
	})
	if errors.Is(err, kerr.UnsupportedVersion) {
		s.log.Warn("kafka sink: the brokers cannot list transactions (Kafka < 3.0): transactions of earlier attempts stay open until they time out")
		return nil
	}
	if err != nil {
		return err
	}
	slices.Sort(ids)
	for _, id := range ids {
		if err := kafkaInitProducerID(ctx, s.client, id, s.plan.txnTimeout); err != nil {
			return fmt.Errorf("abort the open transaction of %s: %w", id, err)
		}
		s.log.Info("kafka sink: aborted a transaction an earlier attempt left open", "transactionalId", id)
	}
	return nil
}

// txnFamily returns j of a transactional id <prefix>-<j>-<k> of this
// sink's prefix.
func (s *kafkaSink) txnFamily(id string) (int, bool) {
	prefix, j, _, ok := parseTxnID(id)
	return j, ok && prefix == s.plan.txnPrefix
}

// parseTxnID splits a transactional id <prefix>-<subtask>-<k> from the
// right: subtask and k are canonical decimal numbers, and the prefix (not
// empty) is whatever precedes them, so that a prefix may itself contain
// "-1-" without its ids being mistaken for subtask 1's.
func parseTxnID(id string) (prefix string, subtask, k int, ok bool) {
	rest, ks, ok1 := cutLast(id, "-")
	prefix, subs, ok2 := cutLast(rest, "-")
	subtask, okS := canonicalInt(subs)
	k, okK := canonicalInt(ks)
	if !ok1 || !ok2 || !okS || !okK || prefix == "" {
		return "", 0, 0, false
	}
	return prefix, subtask, k, true
}

// cutLast is strings.Cut at the last sep.
func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}

// canonicalInt parses a non-negative decimal number as strconv.Itoa
// writes it (no sign, no leading zeros).
func canonicalInt(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0 && strconv.Itoa(n) == s
}

// kafkaInitProducerID initialises transactional id, which aborts its open
// transaction and fences the producers that used it.
func kafkaInitProducerID(ctx context.Context, cl *kgo.Client, id string, timeout time.Duration) error {
	return retryKafkaTxn(ctx, "init producer id", func(ctx context.Context) error {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.TransactionalID = kmsg.StringPtr(id)
		req.TransactionTimeoutMillis = int32(timeout / time.Millisecond)
		req.ProducerID = -1
		req.ProducerEpoch = -1
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return err
		}
		return kerr.ErrorForCode(resp.ErrorCode)
	})
}

// acquire starts a transaction on a new client of the free id with the
// lowest k, or of a new id, and makes it the current one. Initialising the
// id (on the client's first request) fences and aborts whatever an older
// client of it left open.
func (s *kafkaSink) acquire() (*kafkaTxnProducer, error) {
	var t *kafkaTxnProducer
	if len(s.free) > 0 {
		t = s.free[0]
		s.free = s.free[1:]
	} else {
		if len(s.pool) >= maxKafkaTxnProducers {
			return nil, fmt.Errorf("%d transactions are waiting for their checkpoints to complete (or their ids to be reusable): checkpoints are not completing", len(s.pool))
		}
		k := len(s.pool)
		t = &kafkaTxnProducer{k: k, id: s.plan.transactionalID(s.subtask, k)}
		s.pool = append(s.pool, t)
	}
	opts := append(s.plan.producerOptions(s.log),
		kgo.TransactionalID(t.id),
		kgo.TransactionTimeout(s.plan.txnTimeout),
	)
	cl, err := kgo.NewClient(opts...)
	if err == nil {
		err = cl.BeginTransaction()
		if err != nil {
			cl.Close()
		}
	}
	if err != nil {
		s.release(t)
		return nil, fmt.Errorf("transactional producer %s: %w", t.id, err)
	}
	t.client, t.records = cl, 0
	s.current = t
	return t, nil
}

// release returns a producer whose transaction ended to the free list.
func (s *kafkaSink) release(t *kafkaTxnProducer) {
	i, _ := slices.BinarySearchFunc(s.free, t.k, func(f *kafkaTxnProducer, k int) int { return f.k - k })
	s.free = slices.Insert(s.free, i, t)
}

// Write produces the batch's records: exactly-once into the current
// transaction, at-least-once with the idempotent producer.
func (s *kafkaSink) Write(ctx context.Context, batch []byte) error {
	if !s.opened {
		return errors.New("kafka sink: Write before Open")
	}
	cl := s.client
	if s.plan.exactlyOnce {
		if s.current == nil {
			if _, err := s.acquire(); err != nil {
				return s.errorf("%w", err)
			}
		}
		cl = s.current.client
	}
	n, err := s.recs.produce(ctx, cl, batch)
	if s.current != nil {
		s.current.records += n
	}
	if err != nil {
		return s.errorf("%w", err)
	}
	return nil
}

// Finish waits until every record is delivered (exactly-once: to the open
// transaction, which PreCommit(FinalCheckpoint) then pre-commits).
func (s *kafkaSink) Finish(ctx context.Context) error {
	if !s.opened {
		return errors.New("kafka sink: Finish before Open")
	}
	return s.flush(ctx)
}

// flush waits for the records produced so far and reports a failed one.
func (s *kafkaSink) flush(ctx context.Context) error {
	cl := s.client
	if s.plan.exactlyOnce {
		if s.current == nil {
			return nil
		}
		cl = s.current.client
	}
	if err := cl.Flush(ctx); err != nil {
		return s.errorf("flush: %w", err)
	}
	if err := s.recs.failed(); err != nil {
		return s.errorf("%w", err)
	}
	return nil
}

// PreCommit implements runtime.TwoPhaseSink. At-least-once it waits until
// every record so far is delivered, so that the checkpoint covers them,
// and returns no state. Exactly-once it also flushes the open transaction,
// leaves it open as checkpoint's, and returns every transaction not
// committed yet; the next record starts a transaction under another id.
//
// The client of the pre-committed transaction is closed (which does not
// end the transaction): Commit ends it with a raw EndTxn carrying the
// producer id and epoch recorded here, the very request a restore sends,
// so that one code path commits in both cases and nothing depends on the
// client's own bookkeeping of what it produced.
func (s *kafkaSink) PreCommit(ctx context.Context, checkpoint int64) ([]byte, error) {
	if !s.opened {
		return nil, errors.New("kafka sink: PreCommit before Open")
	}
	if checkpoint < 0 || checkpoint <= s.lastPreCommit {
		return nil, s.errorf("pre-commit of checkpoint %d after checkpoint %d: checkpoint ids must increase", checkpoint, s.lastPreCommit)
	}
	if err := s.flush(ctx); err != nil {
		return nil, err
	}
	s.lastPreCommit = checkpoint
	if !s.plan.exactlyOnce {
		return nil, nil
	}
	if t := s.current; t != nil && t.records > 0 {
		pid, epoch, err := t.client.ProducerID(ctx)
		if err != nil {
			return nil, s.errorf("producer id of %s: %w", t.id, err)
		}
		t.kafkaTxnState = kafkaTxnState{checkpoint: checkpoint, id: t.id, producerID: pid, epoch: epoch}
		t.client.Close()
		t.client = nil
		s.pending = append(s.pending, t)
		s.current = nil
	}
	if len(s.pending) == 0 {
		return nil, nil
	}
	states := make([]kafkaTxnState, len(s.pending))
	for i, t := range s.pending {
		states[i] = t.kafkaTxnState
	}
	return encodeKafkaSinkState(s.subtask, states), nil
}

// Commit implements runtime.TwoPhaseSink: it commits every pre-committed
// transaction up to checkpoint (raw EndTxn, see PreCommit; after Close
// through a client of its own). Ids committed before an earlier checkpoint
// completed become reusable.
func (s *kafkaSink) Commit(ctx context.Context, checkpoint int64) error {
	if !s.plan.exactlyOnce {
		return nil
	}
	kept := s.cooling[:0]
	for _, t := range s.cooling {
		if t.coolAfter < checkpoint && !s.closed {
			s.release(t)
		} else {
			kept = append(kept, t)
		}
	}
	s.cooling = kept
	if len(s.pending) == 0 || s.pending[0].checkpoint > checkpoint {
		return nil
	}
	cl := s.client
	if cl == nil {
		var err error
		if cl, err = kgo.NewClient(kafkaClientOptions(s.plan.brokers, s.logger())...); err != nil {
			return s.errorf("kafka client: %w", err)
		}
		defer cl.Close()
	}
	// Bounded, so that a coordinator that stays away fails the attempt
	// (whose restore commits the transaction) rather than hangs it.
	ctx, cancel := context.WithTimeout(ctx, kafkaRequestTimeout)
	defer cancel()
	n := 0
	for _, t := range s.pending {
		if t.checkpoint > checkpoint {
			break
		}
		if err := kafkaEndTxn(ctx, cl, t.kafkaTxnState, true); err != nil {
			s.pending = s.pending[n:]
			return s.errorf("commit transaction %s of checkpoint %d: %w", t.id, t.checkpoint, err)
		}
		t.coolAfter = s.lastPreCommit
		s.cooling = append(s.cooling, t)
		n++
	}
	s.pending = slices.Delete(s.pending, 0, n)
	return nil
}

func (s *kafkaSink) logger() *slog.Logger { return loggerOrDiscard(s.log) }

// Close closes the clients. Exactly-once it first aborts the open
// transaction (best effort: the next attempt would fence it anyway);
// pre-committed transactions stay open for Commit or a restore.
func (s *kafkaSink) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	s.opened = false
	if t := s.current; t != nil && t.records > 0 && t.client != nil {
		ctx, cancel := context.WithTimeout(context.Background(), kafkaAbortTimeout)
		err := t.client.AbortBufferedRecords(ctx)
		if err == nil {
			err = t.client.EndTransaction(ctx, kgo.TryAbort)
		}
		cancel()
		if err != nil {
			s.logger().Warn("kafka sink: could not abort the unfinished transaction; it stays open until the next attempt fences it or it times out", "transactionalId", t.id, "err", err)
		}
	}
	s.closeCurrent()
	if s.client != nil {
		s.client.Close()
		s.client = nil
	}
	return nil
}

// closeCurrent closes the client of the open transaction, if any.
func (s *kafkaSink) closeCurrent() {
	if t := s.current; t != nil && t.client != nil {
		t.client.Close()
		t.client = nil
	}
	s.current = nil
}

// encodeKafkaSinkState writes the pending transactions of a subtask
// (doc.go, "Source and sink kafka").
func encodeKafkaSinkState(subtask int, txns []kafkaTxnState) []byte {
	w := newSnapWriter(snapKindKafkaSink)
	w.uvarint(uint64(subtask))
	w.uvarint(uint64(len(txns)))
	for _, t := range txns {
		w.uvarint(uint64(t.checkpoint))
		w.string(t.id)
		w.uvarint(uint64(t.producerID))
		w.uvarint(uint64(t.epoch))
	}
	return w.finish()
}

// decodeKafkaSinkState reads the state of old subtask old of oldP,
// checking that every transactional id is one of that subtask's
// (<prefix>-<old>-<k>, k within the pool's limit), so that a state cannot
// make a restore commit another writer's transaction. The prefix may
// differ from the configured one: a restore from a savepoint taken under
// another prefix commits that prefix's transactions.
func decodeKafkaSinkState(b []byte, old, oldP int) ([]kafkaTxnState, error) {
	r, err := openSnapshot(b, snapKindKafkaSink)
	if err != nil {
		return nil, err
	}
	sub := r.int("subtask", maxSnapshotParallelism)
	n := r.int("transaction count", maxKafkaTxnProducers+1)
	var txns []kafkaTxnState
	for i := 0; i < n && r.err == nil; i++ {
		t := kafkaTxnState{checkpoint: r.int64("checkpoint"), id: r.string("transactional id"), producerID: r.int64("producer id")}
		t.epoch = int16(r.int("producer epoch", 1<<15))
		if r.err == nil {
			if _, idSub, k, ok := parseTxnID(t.id); !ok || idSub != sub || k >= maxKafkaTxnProducers {
				r.fail("corrupt state: %q is not a transactional id of subtask %d", t.id, sub)
			}
		}
		txns = append(txns, t)
	}
	if err := r.done(); err != nil {
		return nil, err
	}
	if sub != old {
		return nil, fmt.Errorf("taken by subtask %d, but it is entry %d of a checkpoint with %d subtasks", sub, old, oldP)
	}
	return txns, nil
}

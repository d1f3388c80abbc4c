package connectors

// What the Kafka source (kafkasource.go) and sink (kafkasink.go) share:
// broker list and format validation, the headers envelope, the kgo logger
// adapter, raw-request helpers and the snapshot kinds. The user-facing
// documentation is in doc.go, "Source and sink kafka".

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirstream/weir/abi/row"
)

// kafkaFormat is what a Kafka connector checks record values against.
// Neither connector converts: a value goes through byte for byte.
type kafkaFormat uint8

const (
	kafkaRaw  kafkaFormat = iota // any bytes
	kafkaJSON                    // one JSON object
	kafkaRow                     // an abi/row row
)

// parseKafkaFormat decodes the `format` field; empty means raw.
func parseKafkaFormat(s string) (kafkaFormat, error) {
	switch s {
	case "", "raw":
		return kafkaRaw, nil
	case "json":
		return kafkaJSON, nil
	case "row":
		return kafkaRow, nil
	}
	return 0, fmt.Errorf("config.format: must be one of raw, json, row, got %q", s)
}

// check reports why v is not a value of format f, or nil.
func (f kafkaFormat) check(v []byte) error {
	switch f {
	case kafkaJSON:
		if !validJSONObject(v) {
			return fmt.Errorf("value is not a JSON object: %s", excerpt(v))
		}
	case kafkaRow:
		if _, err := row.Valid(v); err != nil {
			return fmt.Errorf("value is not a row: %w", err)
		}
	}
	return nil
}

// checkBrokers validates the `brokers` field: a non-empty list of
// host:port with a port in 1..65535.
func checkBrokers(brokers []string) error {
	if len(brokers) == 0 {
		return errors.New(`config.brokers: required (a list of "host:port")`)
	}
	for i, b := range brokers {
		host, port, err := net.SplitHostPort(b)
		if err != nil || host == "" {
			return fmt.Errorf("config.brokers[%d]: %q is not host:port", i, b)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("config.brokers[%d]: %q has no valid port", i, b)
		}
	}
	return nil
}

// KafkaPolicy restricts the Kafka clusters jobs may use
// (RegisterOptions.Kafka).
type KafkaPolicy struct {
	// Brokers are the bootstrap brokers, "host:port" compared exactly, that
	// a kafka source or sink may list in its brokers field. Empty: the
	// kafka connectors are refused. The addresses a cluster advertises in
	// its metadata are not checked: the operator who allows a cluster
	// trusts it.
	Brokers []string
}

// check refuses a valid kafka config whose brokers are not all allowed.
func (p *KafkaPolicy) check(config []byte) error {
	var c struct {
		Brokers []string `json:"brokers"`
	}
	if err := json.Unmarshal(config, &c); err != nil {
		return fmt.Errorf("config: %w", err) // not reached: the factory decoded it
	}
	if len(p.Brokers) == 0 {
		return errors.New("config.brokers: the kafka connectors are not enabled here (no broker is allowed; the operator lists them with --kafka-brokers)")
	}
	for i, b := range c.Brokers {
		if !slices.Contains(p.Brokers, b) {
			return fmt.Errorf("config.brokers[%d]: %q is not an allowed broker (allowed: %s)", i, b, strings.Join(p.Brokers, ", "))
		}
	}
	return nil
}

// kafkaClientOptions are the kgo options both connectors start from.
func kafkaClientOptions(brokers []string, log *slog.Logger) []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ClientID("weir"),
		kgo.WithLogger(kgoLogger{log}),
		// Client telemetry (KIP-714) would only add a goroutine and up to
		// a second to every Close.
		kgo.DisableClientMetrics(),
		// Kafka's Java defaults (retry.backoff.ms 100, .max.ms 1000)
		// rather than kgo's 250ms..5s: a broker that comes back is seen
		// within a second, not five, and a stalled job resumes as soon.
		kgo.RetryBackoffFn(kafkaBackoff),
		// After a broker failure the clients need fresh metadata (who
		// leads which partition now); kgo refreshes at most every 5s by
		// default, which would stall a job for as long after the broker
		// is back. New partitions the source adds need it too.
		kgo.MetadataMinAge(250 * time.Millisecond),
	}
}

// kafkaBackoff is the wait before retry number fails (from 1): doubling
// from 100ms up to 1s, with up to a fifth of jitter so that the clients
// of a job do not retry in lockstep.
func kafkaBackoff(fails int) time.Duration {
	d := time.Second
	if fails < 5 {
		d = min(d, 100*time.Millisecond<<max(fails-1, 0))
	}
	return d - time.Duration(rand.Int64N(int64(d/5)))
}

// kgoLogger passes franz-go's log lines to the task's logger: those at
// warning level and above, and all of them when the logger is enabled for
// debug (in between, the client is chatty: every connection, metadata
// refresh and transaction).
type kgoLogger struct{ l *slog.Logger }

func (k kgoLogger) Level() kgo.LogLevel {
	if k.l.Enabled(context.Background(), slog.LevelDebug) {
		return kgo.LogLevelDebug
	}
	return kgo.LogLevelWarn
}

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	l := slog.LevelInfo
	switch level {
	case kgo.LogLevelError:
		l = slog.LevelError
	case kgo.LogLevelWarn:
		l = slog.LevelWarn
	case kgo.LogLevelDebug:
		l = slog.LevelDebug
	}
	k.l.Log(context.Background(), l, "kafka client: "+msg, keyvals...)
}

// loggerOrDiscard returns l, or a logger that discards for a connector
// opened without one (tests, tools).
func loggerOrDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// The headers envelope (doc.go, "Source and sink kafka"): an abi/row row
// whose field 0 is the Kafka value and whose following fields are the
// header keys and values in pairs, each a bytes field, or null for a null
// value (a tombstone, or a header without value), so that the envelope is
// lossless.

// appendHeadersEnvelope appends the envelope of value and headers to dst.
func appendHeadersEnvelope(dst, value []byte, headers []kgo.RecordHeader) []byte {
	dst = appendNullableBytes(dst, value)
	for i := range headers {
		dst = row.AppendString(dst, headers[i].Key)
		dst = appendNullableBytes(dst, headers[i].Value)
	}
	return dst
}

func appendNullableBytes(dst, b []byte) []byte {
	if b == nil {
		return row.AppendNull(dst)
	}
	return row.AppendBytes(dst, b)
}

// decodeHeadersEnvelope splits an envelope into the value (nil when null)
// and its headers, appended to hs (reusing its storage). Header values
// alias env; keys are copied into strings, as kgo wants them.
func decodeHeadersEnvelope(env []byte, hs []kgo.RecordHeader) ([]byte, []kgo.RecordHeader, error) {
	r := row.NewReader(env)
	value := readNullableBytes(&r)
	hs = hs[:0]
	for {
		if _, ok := r.Next(); !ok {
			break
		}
		k := r.Bytes()
		if _, ok := r.Next(); !ok && r.Err() == nil {
			return nil, hs, fmt.Errorf("headers envelope: header %s has no value field", excerpt(k))
		}
		v := readNullableBytes(&r)
		if r.Err() != nil {
			break
		}
		hs = append(hs, kgo.RecordHeader{Key: string(k), Value: v})
	}
	if err := r.Err(); err != nil {
		return nil, hs, fmt.Errorf("headers envelope: %w", err)
	}
	return value, hs, nil
}

// readNullableBytes reads a bytes field (never nil, also when empty), or
// a null field as nil.
func readNullableBytes(r *row.Reader) []byte {
	if r.IsNull() {
		return nil
	}
	return r.Bytes()
}

// kafkaRequestTimeout bounds how long Open keeps retrying the metadata,
// offset and transaction requests it cannot start without. Beyond it the
// task fails and the job's restart strategy takes over, which also covers
// a broker that stays away.
const kafkaRequestTimeout = 60 * time.Second

// retryKafka runs op until it succeeds, fails with an error that is not
// retriable, or ctx ends; between attempts it waits a short, growing
// back-off. op reports a Kafka error code as a kerr error so that its
// retriability is known.
func retryKafka(ctx context.Context, what string, op func(context.Context) error) error {
	return retryKafkaIf(ctx, what, retriableKafkaError, op)
}

// retryKafkaTxn is retryKafka for the requests of the transaction
// protocol (InitProducerID, EndTxn): it also retries
// CONCURRENT_TRANSACTIONS, which kerr marks non-retriable because franz-go
// retries it only inside its own transaction code. A broker answers it
// while it completes or aborts the id's previous transaction
// asynchronously (after a lost EndTxn response, or an InitProducerID that
// takes over an open transaction), and the same request succeeds once
// that is done. The retries are bounded like any others, by ctx.
func retryKafkaTxn(ctx context.Context, what string, op func(context.Context) error) error {
	return retryKafkaIf(ctx, what, func(err error) bool {
		return errors.Is(err, kerr.ConcurrentTransactions) || retriableKafkaError(err)
	}, op)
}

// retryKafkaIf is retryKafka with retriable deciding which errors are
// worth another attempt.
func retryKafkaIf(ctx context.Context, what string, retriable func(error) bool, op func(context.Context) error) error {
	backoff := 50 * time.Millisecond
	for {
		err := op(ctx)
		if err == nil {
			return nil
		}
		if !retriable(err) || ctx.Err() != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: gave up retrying: %w (last error: %w)", what, ctx.Err(), err)
		}
		backoff = min(2*backoff, time.Second)
	}
}

// retriableKafkaError reports whether a request may succeed when tried
// again: a retriable Kafka error code, or a failure of the connection
// rather than of the request (kgo retries those itself a few times, then
// gives up with the dial or I/O error), which a broker that restarts
// produces.
func retriableKafkaError(err error) bool {
	var ke *kerr.Error
	switch {
	case errors.As(err, &ke):
		return ke.Retriable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.Is(err, kgo.ErrClientClosed):
		return false
	}
	return true
}

package connectors

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"time"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/runtime"
)

// datagenConfig is the config of the datagen source (documented in doc.go).
type datagenConfig struct {
	Count             int64             `json:"count"`
	Rate              float64           `json:"rate"`
	Seed              int64             `json:"seed"`
	Key               *generatorConfig  `json:"key"`
	Value             *generatorConfig  `json:"value"`
	ValueSize         *int              `json:"valueSize"`
	Timestamp         string            `json:"timestamp"`
	TimestampStart    *int64            `json:"timestampStart"`
	TimestampInterval *runtime.Duration `json:"timestampInterval"`
	TimestampJitter   *runtime.Duration `json:"timestampJitter"`
}

// Salts of the random streams of each field (arbitrary distinct constants).
const (
	saltKey       = 0x6b6579 // "key"
	saltValue     = 0x76616c // "val"
	saltTimestamp = 0x747370 // "tsp"
)

// timestampMode is how datagen assigns event time.
type timestampMode uint8

const (
	tsNone       timestampMode = iota // abi.NoTimestamp
	tsSequence                        // start + idx*interval - jitter
	tsProcessing                      // the task clock, read once per Poll
)

// datagenPlan is a validated datagen config. It is immutable and shared by
// all subtasks of the node.
type datagenPlan struct {
	count      uint64 // 0: unbounded
	rate       float64
	key        generator // nil: empty key
	value      generator // nil: fixedValue
	fixedValue []byte
	tsMode     timestampMode
	tsStart    int64
	intervalNs int64
	jitterMs   uint64 // 0: none
	tsStream   uint64
}

// NewDatagenFactory returns the datagen source factory.
func NewDatagenFactory() runtime.SourceFactory {
	return func(config []byte) (func() runtime.Source, error) {
		plan, err := newDatagenPlan(config)
		if err != nil {
			return nil, err
		}
		return func() runtime.Source { return newDatagenSource(plan) }, nil
	}
}

func newDatagenPlan(config []byte) (*datagenPlan, error) {
	var cfg datagenConfig
	if err := runtime.DecodeConfig(config, &cfg); err != nil {
		return nil, err
	}
	if err := checkCountRate(cfg.Count, cfg.Rate); err != nil {
		return nil, err
	}
	p := &datagenPlan{count: uint64(cfg.Count), rate: cfg.Rate}
	var err error
	if cfg.Key != nil {
		if p.key, err = newGenerator("config.key", cfg.Key, cfg.Seed, saltKey); err != nil {
			return nil, err
		}
	}
	switch {
	case cfg.ValueSize != nil && cfg.Value != nil:
		return nil, errors.New("config.valueSize: cannot be combined with config.value")
	case cfg.ValueSize != nil:
		n := *cfg.ValueSize
		if n < 0 || n > abi.MaxFieldLen {
			return nil, fmt.Errorf("config.valueSize: must be between 0 and %d, got %d", abi.MaxFieldLen, n)
		}
		// Printable filler derived from the seed, built once: the hot loop
		// then only hands the same slice to the writer.
		p.fixedValue = make([]byte, n)
		s := mix64(uint64(cfg.Seed) ^ saltValue)
		for i := range p.fixedValue {
			p.fixedValue[i] = 'a' + byte(below(random(s, uint64(i), 0), 26))
		}
	case cfg.Value != nil:
		if p.value, err = newGenerator("config.value", cfg.Value, cfg.Seed, saltValue); err != nil {
			return nil, err
		}
	default:
		p.value = &sequenceGen{}
	}
	switch cfg.Timestamp {
	case "", "none":
		p.tsMode = tsNone
	case "sequence":
		p.tsMode = tsSequence
	case "processing":
		p.tsMode = tsProcessing
	default:
		return nil, fmt.Errorf("config.timestamp: must be one of none, sequence, processing, got %q", cfg.Timestamp)
	}
	if p.tsMode != tsSequence {
		for name, set := range map[string]bool{
			"timestampStart":    cfg.TimestampStart != nil,
			"timestampInterval": cfg.TimestampInterval != nil,
			"timestampJitter":   cfg.TimestampJitter != nil,
		} {
			if set {
				return nil, fmt.Errorf("config.%s: only used with timestamp \"sequence\"", name)
			}
		}
		return p, nil
	}
	if cfg.TimestampStart != nil {
		p.tsStart = *cfg.TimestampStart
	}
	p.intervalNs = int64(time.Millisecond)
	if cfg.TimestampInterval != nil {
		p.intervalNs = int64(*cfg.TimestampInterval)
		if p.intervalNs < 0 {
			return nil, fmt.Errorf("config.timestampInterval: must be >= 0, got %v", time.Duration(p.intervalNs))
		}
	}
	if cfg.TimestampJitter != nil {
		j := time.Duration(*cfg.TimestampJitter)
		if j < 0 {
			return nil, fmt.Errorf("config.timestampJitter: must be >= 0, got %v", j)
		}
		p.jitterMs = uint64(j.Milliseconds())
		p.tsStream = mix64(uint64(cfg.Seed) ^ saltTimestamp)
	}
	return p, nil
}

// sequenceTimestamp is start + idx*interval (interval may be below a
// millisecond), minus a random jitter in [0, jitter]. The product is taken
// in 128 bits so that long runs with long intervals cannot overflow before
// the millisecond division.
func (p *datagenPlan) sequenceTimestamp(idx uint64) int64 {
	var ms uint64
	if p.intervalNs%int64(time.Millisecond) == 0 {
		ms = idx * uint64(p.intervalNs/int64(time.Millisecond))
	} else {
		hi, lo := bits.Mul64(idx, uint64(p.intervalNs))
		if hi >= uint64(time.Millisecond) {
			return math.MaxInt64 // beyond any representable time: saturate
		}
		ms, _ = bits.Div64(hi, lo, uint64(time.Millisecond))
	}
	ts := p.tsStart + int64(ms)
	if p.jitterMs != 0 {
		ts -= int64(below(random(p.tsStream, idx, 0), p.jitterMs+1))
	}
	return ts
}

// datagenSource is one subtask of a datagen node: it generates the global
// indices i with i % parallelism == subtask below count, in ascending order,
// except those a restored checkpoint says were generated already.
type datagenSource struct {
	plan *datagenPlan
	cur  indexCursor

	kbuf, vbuf []byte
}

func newDatagenSource(plan *datagenPlan) *datagenSource {
	return &datagenSource{plan: plan, cur: indexCursor{
		what:  "datagen source",
		kind:  snapKindDatagen,
		count: plan.count,
		rate:  plan.rate,
	}}
}

// Open positions the subtask at its first index and starts the rate clock.
func (s *datagenSource) Open(_ context.Context, info runtime.TaskInfo) error {
	return s.cur.open(info)
}

// Poll generates up to maxRecords records; with a rate it generates only
// those due by now, waiting (on the task clock, up to ctx's deadline) until
// at least one is.
func (s *datagenSource) Poll(ctx context.Context, w runtime.RecordWriter, maxRecords int) (bool, error) {
	n, done, err := s.cur.begin(ctx, maxRecords)
	if n == 0 {
		return done, err
	}
	p := s.plan
	ts := abi.NoTimestamp
	if p.tsMode == tsProcessing {
		ts = s.cur.clock.Now().UnixMilli()
	}
	key, value := s.kbuf[:0], p.fixedValue
	written := uint64(0)
	for ; written < n; written++ {
		idx, ok := s.cur.take()
		if !ok {
			break
		}
		if p.key != nil {
			key = p.key.appendField(key[:0], idx)
		}
		if p.value != nil {
			value = p.value.appendField(s.vbuf[:0], idx)
			s.vbuf = value
		}
		if p.tsMode == tsSequence {
			ts = p.sequenceTimestamp(idx)
		}
		w.Write(key, value, ts)
	}
	s.kbuf = key
	return s.cur.finish(written), nil
}

// Snapshot implements runtime.CheckpointedSource: the count, then the set
// of indices generated so far over the node (see doc.go, "Checkpoint
// formats").
func (s *datagenSource) Snapshot() ([]byte, error) { return s.cur.snapshot() }

// Restore implements runtime.CheckpointedSource. Every old snapshot must be
// of a datagen node with the same count (the index space); seed, rate and
// generators may change, since a position is an index, not a record.
func (s *datagenSource) Restore(info runtime.TaskInfo, states [][]byte) error {
	return s.cur.restore(info, states)
}

// Close implements runtime.Source.
func (s *datagenSource) Close() error { return nil }

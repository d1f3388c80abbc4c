package connectors

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/abi/row"
	"github.com/weirstream/weir/runtime"
	"github.com/weirstream/weir/runtime/clock"
)

// kafkaSourceConfig is the config of the Kafka source (doc.go, "Source and
// sink kafka").
type kafkaSourceConfig struct {
	Brokers           []string          `json:"brokers"`
	Topics            []string          `json:"topics"`
	Format            string            `json:"format"`
	StartFrom         string            `json:"startFrom"`
	StartTimestamp    *int64            `json:"startTimestamp"`
	Timestamp         string            `json:"timestamp"`
	TimestampField    json.RawMessage   `json:"timestampField"`
	TimestampFormat   string            `json:"timestampFormat"`
	Headers           bool              `json:"headers"`
	DiscoveryInterval *runtime.Duration `json:"discoveryInterval"`
	GroupID           string            `json:"groupId"`
	StopAtEnd         bool              `json:"stopAtEnd"`
	Isolation         string            `json:"isolation"`
}

// kafkaStart is where a partition without a checkpointed offset starts.
type kafkaStart uint8

const (
	startEarliest kafkaStart = iota
	startLatest
	startTimestamp
)

// kafkaTimestamp is how the source assigns event time.
type kafkaTimestamp uint8

const (
	kafkaTSRecord kafkaTimestamp = iota // the Kafka record's timestamp
	kafkaTSField                        // a member (json) or field (row) of the value
	kafkaTSNone                         // abi.NoTimestamp
)

// Kafka's special offsets, as ListOffsets takes them and as the snapshot
// stores a partition nothing was read from yet.
const (
	offsetLatest   int64 = -1
	offsetEarliest int64 = -2
	// offsetAtStartTimestamp marks a partition whose start resolveStarts
	// looks up by startTimestamp (never stored).
	offsetAtStartTimestamp int64 = -3
)

// defaultDiscoveryInterval is how often a source looks for new partitions.
const defaultDiscoveryInterval = 10 * time.Second

// kafkaSourcePlan is a validated Kafka source config, shared by the
// subtasks of the node.
type kafkaSourcePlan struct {
	brokers       []string
	topics        []string // sorted, distinct: the topic index is a position here
	format        kafkaFormat
	start         kafkaStart
	startTS       int64
	tsMode        kafkaTimestamp
	tsMember      string // json: the member holding event time
	tsIndex       int    // row: the field holding event time
	tsFormat      timestampFormat
	headers       bool
	discovery     time.Duration // 0: off
	groupID       string
	stopAtEnd     bool
	readCommitted bool
}

// NewKafkaSourceFactory returns the factory of the "kafka" source.
func NewKafkaSourceFactory() runtime.SourceFactory {
	return func(config []byte) (func() runtime.Source, error) {
		plan, err := newKafkaSourcePlan(config)
		if err != nil {
			return nil, err
		}
		return func() runtime.Source { return &kafkaSource{plan: plan} }, nil
	}
}

func newKafkaSourcePlan(config []byte) (*kafkaSourcePlan, error) {
	var cfg kafkaSourceConfig
	if err := runtime.DecodeConfig(config, &cfg); err != nil {
		return nil, err
	}
	if err := checkBrokers(cfg.Brokers); err != nil {
		return nil, err
	}
	if len(cfg.Topics) == 0 {
		return nil, errors.New("config.topics: required (a list of topic names)")
	}
	for i, t := range cfg.Topics {
		if err := checkTopicName(t); err != nil {
			return nil, fmt.Errorf("config.topics[%d]: %w", i, err)
		}
	}
	p := &kafkaSourcePlan{
		brokers:       cfg.Brokers,
		topics:        slices.Compact(slices.Sorted(slices.Values(cfg.Topics))),
		headers:       cfg.Headers,
		discovery:     defaultDiscoveryInterval,
		groupID:       cfg.GroupID,
		stopAtEnd:     cfg.StopAtEnd,
		readCommitted: true,
	}
	var err error
	if p.format, err = parseKafkaFormat(cfg.Format); err != nil {
		return nil, err
	}
	switch cfg.StartFrom {
	case "", "earliest":
		p.start = startEarliest
	case "latest":
		p.start = startLatest
	case "timestamp":
		p.start = startTimestamp
		if cfg.StartTimestamp == nil {
			return nil, errors.New(`config.startTimestamp: required with startFrom "timestamp" (epoch milliseconds)`)
		}
		if *cfg.StartTimestamp < 0 {
			return nil, fmt.Errorf("config.startTimestamp: must be >= 0 (epoch milliseconds), got %d", *cfg.StartTimestamp)
		}
		p.startTS = *cfg.StartTimestamp
	default:
		return nil, fmt.Errorf("config.startFrom: must be one of earliest, latest, timestamp, got %q", cfg.StartFrom)
	}
	if cfg.StartTimestamp != nil && p.start != startTimestamp {
		return nil, errors.New(`config.startTimestamp: only used with startFrom "timestamp"`)
	}
	hasField := len(cfg.TimestampField) > 0 && string(cfg.TimestampField) != "null"
	switch cfg.Timestamp {
	case "":
		if hasField {
			p.tsMode = kafkaTSField
		}
	case "record":
		p.tsMode = kafkaTSRecord
	case "field":
		p.tsMode = kafkaTSField
	case "none":
		p.tsMode = kafkaTSNone
	default:
		return nil, fmt.Errorf("config.timestamp: must be one of record, field, none, got %q", cfg.Timestamp)
	}
	if p.tsMode != kafkaTSField {
		if hasField {
			return nil, errors.New(`config.timestampField: only used with timestamp "field"`)
		}
		if cfg.TimestampFormat != "" {
			return nil, errors.New(`config.timestampFormat: only used with timestamp "field"`)
		}
	} else if err := p.parseTimestampField(cfg.TimestampField, cfg.TimestampFormat); err != nil {
		return nil, err
	}
	if cfg.DiscoveryInterval != nil {
		d := time.Duration(*cfg.DiscoveryInterval)
		if d < 0 {
			return nil, fmt.Errorf("config.discoveryInterval: must be >= 0 (0 = no discovery), got %v", d)
		}
		if d > 0 && d < 10*time.Millisecond {
			return nil, fmt.Errorf("config.discoveryInterval: must be 0 or at least 10ms, got %v", d)
		}
		p.discovery = d
	}
	switch cfg.Isolation {
	case "", "read_committed":
	case "read_uncommitted":
		p.readCommitted = false
	default:
		return nil, fmt.Errorf("config.isolation: must be one of read_committed, read_uncommitted, got %q", cfg.Isolation)
	}
	if strings.TrimSpace(cfg.GroupID) != cfg.GroupID {
		return nil, fmt.Errorf("config.groupId: %q has leading or trailing spaces", cfg.GroupID)
	}
	return p, nil
}

// parseTimestampField reads timestampField (and timestampFormat) for
// timestamp "field": a member name for json, a field index for row (a
// number, or a string of digits, as YAML may give either).
func (p *kafkaSourcePlan) parseTimestampField(raw json.RawMessage, format string) error {
	if p.format == kafkaRaw {
		return errors.New(`config.timestamp: "field" needs format json or row (a raw value has no fields)`)
	}
	if len(raw) == 0 || string(raw) == "null" {
		return errors.New(`config.timestampField: required with timestamp "field"`)
	}
	var name string
	var index int
	isString := json.Unmarshal(raw, &name) == nil
	isIndex := json.Unmarshal(raw, &index) == nil
	if isString && !isIndex {
		if n, err := strconv.Atoi(name); err == nil && strconv.Itoa(n) == name {
			index, isIndex = n, true
		}
	}
	switch p.format {
	case kafkaJSON:
		if !isString || name == "" {
			return fmt.Errorf("config.timestampField: want a JSON member name for format json, got %s", raw)
		}
		p.tsMember = name
		switch format {
		case "", "millis":
			p.tsFormat = tsMillis
		case "seconds":
			p.tsFormat = tsSeconds
		case "rfc3339":
			p.tsFormat = tsRFC3339
		default:
			return fmt.Errorf("config.timestampFormat: must be one of millis, seconds, rfc3339, got %q", format)
		}
	case kafkaRow:
		if !isIndex || index < 0 {
			return fmt.Errorf("config.timestampField: want a field index (an integer >= 0) for format row, got %s", raw)
		}
		if format != "" {
			return errors.New("config.timestampFormat: not used with format row (the field is an int of epoch milliseconds)")
		}
		p.tsIndex = index
	}
	return nil
}

// checkTopicName applies Kafka's rules for topic names, so that a typo
// fails at submission rather than as a broker error at run time.
func checkTopicName(t string) error {
	if t == "" {
		return errors.New("empty topic name")
	}
	if t == "." || t == ".." {
		return fmt.Errorf("%q is not a valid topic name", t)
	}
	if len(t) > 249 {
		return fmt.Errorf("topic name of %d characters, the limit is 249", len(t))
	}
	for _, c := range t {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("topic name %q: only ASCII letters, digits, '.', '_' and '-' are allowed", t)
		}
	}
	return nil
}

// kafkaOwner is the subtask of par that reads partition of the topic at
// topicIndex (in the sorted topic list): (topicIndex + partition) % par.
// It depends only on the config and the partition, never on how many
// partitions exist, so partitions added while the job runs never move
// existing ones between subtasks; the topic offset spreads the partitions
// 0 of several topics over subtasks.
func kafkaOwner(topicIndex int, partition int32, par int) int {
	return (topicIndex + int(partition)) % par
}

// tp names a partition.
type tp struct {
	topic     string
	partition int32
}

// kafkaPartition is the progress of one partition a subtask owns.
type kafkaPartition struct {
	tp
	topicIndex int
	// next is the offset of the next record to read: one past the last
	// record (or control record) read, or offsetEarliest before any.
	next int64
	// end (stopAtEnd) is the offset the partition is read up to,
	// exclusive; -1 without stopAtEnd.
	end  int64
	done bool // stopAtEnd: next reached end
}

// kafkaSource is one subtask of a Kafka source node (doc.go).
type kafkaSource struct {
	plan *kafkaSourcePlan

	node          string
	subtask, par  int
	log           *slog.Logger
	clock         clock.Clock
	client        *kgo.Client
	opened        bool
	parts         map[tp]*kafkaPartition
	owned         []*kafkaPartition   // sorted by (topic index, partition)
	known         map[string]int32    // partition counts seen, by topic
	topicIDs      map[string][16]byte // OffsetCommit v10 names topics by id
	remaining     int                 // owned partitions being read (not done)
	lastFetchErr  string              // the last fetch error logged, to log each once
	envelope      []byte              // headers envelope of the current record
	tsNames       [2]string           // jsonMembers' arguments
	tsRaws        [][]byte
	restored      map[tp]int64    // Restore: the offsets of the checkpoint
	restoredTopic map[string]bool // Restore: the topics the checkpoint knew
	// carried are the restored partitions this subtask owns that the
	// brokers did not list yet (a lagging broker, a topic briefly
	// unknown): snapshots keep their offsets until they appear, or a later
	// restore would read them from the earliest offset again.
	carried []*kafkaPartition

	// Background work: partition discovery and offset commits for
	// monitoring. The task goroutine takes discovery results from
	// discovered; commits are handed to the committer through commits.
	stop       chan struct{}
	wg         sync.WaitGroup
	discovered chan map[string]topicMeta
	commits    chan groupCommit
}

// groupCommit is what Snapshot hands the committer: offsets, and the topic
// ids that newer OffsetCommit versions name topics by.
type groupCommit struct {
	offsets map[tp]int64
	ids     map[string][16]byte
}

func (s *kafkaSource) errorf(format string, args ...any) error {
	return fmt.Errorf("kafka source node %q subtask %d: %w", s.node, s.subtask, fmt.Errorf(format, args...))
}

// Restore implements runtime.CheckpointedSource: it merges the offsets of
// every old subtask's snapshot (each lists the partitions it owned); Open
// then takes those of the partitions this subtask owns now.
//
// A nil entry is an old subtask that read nothing (runtime contract): as
// a snapshot without offsets, whose partitions therefore start at their
// earliest offset. The other entries name the topics the checkpoint read;
// when every entry is nil, the configured topics count as read, so that
// the rule does not change with how many entries are nil.
func (s *kafkaSource) Restore(info runtime.TaskInfo, states [][]byte) error {
	subtask, _, err := checkTask(info)
	if err != nil {
		return fmt.Errorf("kafka source: %w", err)
	}
	s.node, s.subtask = info.NodeID, subtask
	offsets := map[tp]int64{}
	topics := map[string]bool{}
	from := map[tp]int{} // which old subtask listed a partition
	anySnapshot := false
	for i, b := range states {
		if b == nil {
			continue
		}
		anySnapshot = true
		snap, err := decodeKafkaSourceSnapshot(b, i, len(states))
		if err != nil {
			return s.errorf("restore: snapshot of old subtask %d: %w", i, err)
		}
		for _, t := range snap.topics {
			topics[t] = true
		}
		for k, off := range snap.offsets {
			if j, dup := from[k]; dup {
				return s.errorf("restore: topic %q partition %d is in the snapshots of old subtasks %d and %d", k.topic, k.partition, j, i)
			}
			from[k] = i
			offsets[k] = off
		}
	}
	if !anySnapshot {
		for _, t := range s.plan.topics {
			topics[t] = true
		}
	}
	s.restored, s.restoredTopic = offsets, topics
	return nil
}

// Open finds the topics' partitions, takes those this subtask owns,
// resolves where each starts, and starts consuming them.
func (s *kafkaSource) Open(ctx context.Context, info runtime.TaskInfo) error {
	subtask, par, err := checkTask(info)
	if err != nil {
		return fmt.Errorf("kafka source: %w", err)
	}
	s.node, s.subtask, s.par = info.NodeID, subtask, par
	s.log = loggerOrDiscard(info.Logger).With("node", info.NodeID, "subtask", subtask)
	s.clock = info.Clock
	if s.clock == nil {
		s.clock = clock.Real{}
	}
	p := s.plan
	opts := kafkaClientOptions(p.brokers, s.log)
	opts = append(opts,
		// Control records are kept so that the position after a
		// transaction marker is known: a bounded read must get past the
		// marker at the end of a partition to see that it is done.
		kgo.KeepControlRecords(),
		// An offset that retention deleted resumes at the log start:
		// nothing older exists any more.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// A partition added to the consumer joins the next fetch, which
		// waits for the broker's long poll to end: Kafka's Java default
		// of 500ms rather than kgo's 5s.
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	if p.readCommitted {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return s.errorf("kafka client: %w", err)
	}
	s.client = cl
	fail := func(err error) error {
		// Closed here and forgotten, so that Close does not close it again.
		cl.Close()
		s.client = nil
		return s.errorf("%w", err)
	}
	s.parts = map[tp]*kafkaPartition{}
	s.known = map[string]int32{}
	s.topicIDs = map[string][16]byte{}
	s.tsNames[0] = p.tsMember
	octx, cancel := context.WithTimeout(ctx, kafkaRequestTimeout)
	defer cancel()
	counts, err := kafkaTopicMetadata(octx, cl, p.topics)
	if err != nil {
		return fail(err)
	}
	for _, t := range p.topics {
		if counts[t].partitions == 0 {
			s.log.Warn("kafka source: topic does not exist (yet); its partitions will be read from the earliest offset once discovered", "topic", t)
		}
	}
	added := s.takePartitions(counts, false)
	if err := s.resolveStarts(octx, added); err != nil {
		return fail(err)
	}
	s.consume(added)
	s.carryUnseen()
	s.stop = make(chan struct{})
	if p.discovery > 0 && !p.stopAtEnd {
		s.discovered = make(chan map[string]topicMeta, 1)
		s.wg.Add(1)
		go s.discoverLoop()
	}
	if p.groupID != "" {
		s.commits = make(chan groupCommit, 1)
		s.wg.Add(1)
		go s.commitLoop()
	}
	s.opened = true
	return nil
}

// takePartitions records counts and returns the partitions this subtask
// owns that it did not have, with next set from the checkpoint when there
// is one. discovered says they were found after Open: they start from the
// earliest offset.
func (s *kafkaSource) takePartitions(counts map[string]topicMeta, discovered bool) []*kafkaPartition {
	var added []*kafkaPartition
	for ti, t := range s.plan.topics {
		n := counts[t].partitions
		if n > 0 {
			s.topicIDs[t] = counts[t].id
		}
		for part := s.known[t]; part < n; part++ {
			if kafkaOwner(ti, part, s.par) != s.subtask {
				continue
			}
			kp := &kafkaPartition{tp: tp{t, part}, topicIndex: ti, next: offsetEarliest, end: -1}
			if off, ok := s.restored[kp.tp]; ok {
				kp.next = off
			} else if !discovered && !s.restoredTopic[t] {
				// A partition of the first look, of a topic the checkpoint
				// (if any) did not read: the configured start. Partitions
				// found later, or missing from a checkpoint that read
				// their topic, were created after it: all their records
				// are new.
				switch s.plan.start {
				case startLatest:
					kp.next = offsetLatest
				case startTimestamp:
					kp.next = offsetAtStartTimestamp
				}
			}
			added = append(added, kp)
		}
		s.known[t] = max(s.known[t], n)
	}
	return added
}

// resolveStarts turns the symbolic starts of added (latest, timestamp)
// into offsets, so that a snapshot taken before a partition's first record
// still restores to the same position; with stopAtEnd it also sets the
// end of each partition (and resolves earliest, to know whether an empty
// partition is done already).
func (s *kafkaSource) resolveStarts(ctx context.Context, added []*kafkaPartition) error {
	p := s.plan
	want := map[int64][]*kafkaPartition{}
	for _, kp := range added {
		switch {
		case kp.next == offsetLatest:
			want[offsetLatest] = append(want[offsetLatest], kp)
		case kp.next == offsetAtStartTimestamp:
			want[p.startTS] = append(want[p.startTS], kp)
		case kp.next == offsetEarliest && p.stopAtEnd:
			want[offsetEarliest] = append(want[offsetEarliest], kp)
		}
	}
	if p.stopAtEnd {
		want[offsetLatest] = added
	}
	resolved := map[int64]map[tp]int64{}
	for ts, kps := range want {
		offs, err := kafkaListOffsets(ctx, s.client, p.readCommitted, ts, kps)
		if err != nil {
			return err
		}
		resolved[ts] = offs
	}
	for _, kp := range added {
		latest, hasLatest := resolved[offsetLatest][kp.tp]
		switch {
		case kp.next == offsetLatest:
			kp.next = latest
		case kp.next == offsetAtStartTimestamp:
			off := resolved[p.startTS][kp.tp]
			if off < 0 { // no record at or after the timestamp
				off = latest
				if !hasLatest {
					l, err := kafkaListOffsets(ctx, s.client, p.readCommitted, offsetLatest, []*kafkaPartition{kp})
					if err != nil {
						return err
					}
					off = l[kp.tp]
				}
			}
			kp.next = off
		case kp.next == offsetEarliest && p.stopAtEnd:
			kp.next = resolved[offsetEarliest][kp.tp]
		}
		if p.stopAtEnd {
			kp.end = latest
			if kp.next >= kp.end {
				kp.done = true
			}
		}
	}
	return nil
}

// carryUnseen collects the restored partitions this subtask owns that
// Open did not find (see carried).
func (s *kafkaSource) carryUnseen() {
	for k, off := range s.restored {
		ti, ok := slices.BinarySearch(s.plan.topics, k.topic)
		if !ok || s.parts[k] != nil || kafkaOwner(ti, k.partition, s.par) != s.subtask {
			continue
		}
		s.carried = append(s.carried, &kafkaPartition{tp: k, topicIndex: ti, next: off, end: -1})
	}
	if len(s.carried) == 0 {
		return
	}
	slices.SortFunc(s.carried, func(a, b *kafkaPartition) int {
		return cmp.Or(cmp.Compare(a.topicIndex, b.topicIndex), cmp.Compare(a.partition, b.partition))
	})
	s.log.Warn("kafka source: the checkpoint holds offsets of partitions the brokers do not list (yet); they are kept and read from there once discovered",
		"partitions", len(s.carried), "first", fmt.Sprintf("%s/%d", s.carried[0].topic, s.carried[0].partition))
}

// consume adds partitions to this subtask's set and to the client's.
func (s *kafkaSource) consume(added []*kafkaPartition) {
	offsets := map[string]map[int32]kgo.Offset{}
	for _, kp := range added {
		s.parts[kp.tp] = kp
		s.owned = append(s.owned, kp)
		if kp.done {
			continue
		}
		s.remaining++
		o := kgo.NewOffset().AtStart()
		if kp.next >= 0 {
			o = kgo.NewOffset().At(kp.next)
		}
		if offsets[kp.topic] == nil {
			offsets[kp.topic] = map[int32]kgo.Offset{}
		}
		offsets[kp.topic][kp.partition] = o
	}
	slices.SortFunc(s.owned, func(a, b *kafkaPartition) int {
		return cmp.Or(cmp.Compare(a.topicIndex, b.topicIndex), cmp.Compare(a.partition, b.partition))
	})
	if len(s.carried) > 0 && len(added) > 0 {
		s.carried = slices.DeleteFunc(s.carried, func(kp *kafkaPartition) bool { return s.parts[kp.tp] != nil })
	}
	if len(offsets) > 0 {
		s.client.AddConsumePartitions(offsets)
	}
}

// Poll writes the records fetched so far, up to maxRecords, waiting for
// some until ctx's deadline.
func (s *kafkaSource) Poll(ctx context.Context, w runtime.RecordWriter, maxRecords int) (bool, error) {
	if !s.opened {
		return false, errors.New("kafka source: Poll before Open")
	}
	select {
	case counts := <-s.discovered:
		s.consume(s.takePartitions(counts, true))
	default:
	}
	if s.plan.stopAtEnd && s.remaining == 0 {
		return true, nil
	}
	if s.remaining == 0 {
		// Nothing to read (yet): wait for new partitions or the deadline.
		select {
		case counts := <-s.discovered:
			s.consume(s.takePartitions(counts, true))
			return false, nil
		case <-ctx.Done():
			return false, pollCtxErr(ctx)
		}
	}
	fetches := s.client.PollRecords(ctx, max(maxRecords, 1))
	for fi := range fetches {
		for ti := range fetches[fi].Topics {
			ft := &fetches[fi].Topics[ti]
			for pi := range ft.Partitions {
				fp := &ft.Partitions[pi]
				if fp.Err != nil {
					if err := s.fetchError(ctx, ft.Topic, fp.Partition, fp.Err); err != nil {
						return false, err
					}
				}
				kp := s.parts[tp{ft.Topic, fp.Partition}]
				if kp == nil || kp.done {
					continue
				}
				if err := s.emit(kp, fp.Records, w); err != nil {
					return false, err
				}
			}
		}
	}
	return s.plan.stopAtEnd && s.remaining == 0, nil
}

// emit writes the records of one partition's fetch.
func (s *kafkaSource) emit(kp *kafkaPartition, recs []*kgo.Record, w runtime.RecordWriter) error {
	p := s.plan
	for _, r := range recs {
		if kp.end >= 0 && r.Offset >= kp.end {
			break
		}
		kp.next = r.Offset + 1
		if r.Attrs.IsControl() {
			continue
		}
		if err := p.format.check(r.Value); err != nil {
			return s.recordError(kp, r, err)
		}
		ts := abi.NoTimestamp
		switch p.tsMode {
		case kafkaTSRecord:
			if ms := r.Timestamp.UnixMilli(); ms >= 0 {
				ts = ms
			}
		case kafkaTSField:
			var err error
			if ts, err = s.fieldTimestamp(r.Value); err != nil {
				return s.recordError(kp, r, err)
			}
		}
		value := r.Value
		if p.headers {
			s.envelope = appendHeadersEnvelope(s.envelope[:0], r.Value, r.Headers)
			value = s.envelope
		}
		w.Write(r.Key, value, ts)
	}
	if kp.end >= 0 && kp.next >= kp.end && !kp.done {
		kp.done = true
		s.remaining--
		// Paused rather than removed: removing restarts the client's
		// fetch session, and under test (franz-go v1.22.2) the other
		// partitions of a fetch buffered at that moment were then never
		// fetched again, stalling the bounded read.
		s.client.PauseFetchPartitions(map[string][]int32{kp.topic: {kp.partition}})
	}
	return nil
}

// fieldTimestamp reads event time from a value that passed the format
// check.
func (s *kafkaSource) fieldTimestamp(v []byte) (int64, error) {
	if s.plan.format == kafkaRow {
		ts, err := row.IntField(v, s.plan.tsIndex)
		if err != nil {
			return 0, fmt.Errorf("timestamp field %d: %w", s.plan.tsIndex, err)
		}
		return ts, nil
	}
	raws, found := jsonMembers(v, s.tsNames[:], s.tsRaws)
	s.tsRaws = raws
	if !found[0] {
		return 0, fmt.Errorf("missing timestamp field %q", s.plan.tsMember)
	}
	ts, err := parseJSONTimestamp(raws[0], s.plan.tsFormat)
	if err != nil {
		return 0, fmt.Errorf("timestamp field %q: %w", s.plan.tsMember, err)
	}
	return ts, nil
}

func (s *kafkaSource) recordError(kp *kafkaPartition, r *kgo.Record, err error) error {
	return s.errorf("topic %q partition %d offset %d: %w", kp.topic, kp.partition, r.Offset, err)
}

// fetchError decides what a fetch error means: the end of the poll's
// deadline and retriable conditions (a broker away, a leader moving) are
// not errors, the client retries; records lost to retention are a
// warning; anything else fails the task.
func (s *kafkaSource) fetchError(ctx context.Context, topic string, partition int32, err error) error {
	var loss *kgo.ErrDataLoss
	var ke *kerr.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		return pollCtxErr(ctx)
	case errors.Is(err, kgo.ErrClientClosed):
		return s.errorf("kafka client closed")
	case errors.As(err, &loss):
		s.log.Warn("kafka source: records were lost before being read (retention?); reading on from the first that exists",
			"topic", loss.Topic, "partition", loss.Partition, "from", loss.ConsumedTo, "resumed", loss.ResetTo)
		return nil
	case errors.As(err, &ke) && !ke.Retriable && ke != kerr.UnknownTopicOrPartition:
		return s.errorf("fetch topic %q partition %d: %w", topic, partition, err)
	}
	if msg := err.Error(); msg != s.lastFetchErr {
		s.lastFetchErr = msg
		s.log.Warn("kafka source: fetch failed; retrying", "topic", topic, "partition", partition, "err", err)
	}
	return nil
}

// pollCtxErr is what Poll returns when ctx ended: nothing at its deadline
// (Poll's normal return to the task loop), the error when cancelled.
func pollCtxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// Snapshot implements runtime.CheckpointedSource: the next offset of every
// owned partition, those restored but not listed by the brokers yet
// included (doc.go, "Source and sink kafka"). With a groupId it also hands
// the offsets of the partitions being read to the committer.
func (s *kafkaSource) Snapshot() ([]byte, error) {
	if !s.opened {
		return nil, errors.New("kafka source: Snapshot before Open")
	}
	w := newSnapWriter(snapKindKafkaSource)
	w.uvarint(uint64(s.par))
	w.uvarint(uint64(s.subtask))
	w.uvarint(uint64(len(s.plan.topics)))
	for _, t := range s.plan.topics {
		w.string(t)
	}
	w.uvarint(uint64(len(s.owned) + len(s.carried)))
	for _, list := range [2][]*kafkaPartition{s.owned, s.carried} {
		for _, kp := range list {
			w.uvarint(uint64(kp.topicIndex))
			w.uvarint(uint64(kp.partition))
			w.uvarint(uint64(kp.next - offsetEarliest))
		}
	}
	if s.commits != nil {
		offsets := make(map[tp]int64, len(s.owned))
		for _, kp := range s.owned {
			if kp.next >= 0 {
				offsets[kp.tp] = kp.next
			}
		}
		select { // the newest offsets replace any not sent yet
		case <-s.commits:
		default:
		}
		s.commits <- groupCommit{offsets, maps.Clone(s.topicIDs)}
	}
	return w.finish(), nil
}

// kafkaSourceSnapshot is a decoded snapshot.
type kafkaSourceSnapshot struct {
	topics  []string
	offsets map[tp]int64
}

// decodeKafkaSourceSnapshot reads the snapshot of old subtask old of oldP.
func decodeKafkaSourceSnapshot(b []byte, old, oldP int) (kafkaSourceSnapshot, error) {
	var snap kafkaSourceSnapshot
	r, err := openSnapshot(b, snapKindKafkaSource)
	if err != nil {
		return snap, err
	}
	p := r.int("parallelism", maxSnapshotParallelism+1)
	sub := r.int("subtask", maxSnapshotParallelism)
	n := r.int("topic count", 1<<16)
	for i := 0; i < n && r.err == nil; i++ {
		snap.topics = append(snap.topics, r.string("topic"))
	}
	m := r.int("partition count", 1<<24)
	snap.offsets = make(map[tp]int64, min(m, 1<<10))
	for i := 0; i < m && r.err == nil; i++ {
		ti := r.int("topic index", n)
		part := r.int("partition", math.MaxInt32)
		next := r.int64("offset")
		if r.err != nil {
			break
		}
		snap.offsets[tp{snap.topics[ti], int32(part)}] = next + offsetEarliest
	}
	if err := r.done(); err != nil {
		return snap, err
	}
	if p != oldP || sub != old {
		return snap, fmt.Errorf("taken by subtask %d of %d, but it is entry %d of a checkpoint with %d subtasks", sub, p, old, oldP)
	}
	return snap, nil
}

// Close stops the background work and the client.
func (s *kafkaSource) Close() error {
	if s.stop != nil {
		close(s.stop)
		s.wg.Wait()
		s.stop = nil
	}
	if s.client != nil {
		s.client.Close()
		s.client = nil
	}
	s.opened = false
	return nil
}

// discoverLoop looks for new partitions every discovery interval (on the
// task clock) and hands the counts to the task goroutine; a result not
// taken yet is replaced by the newer one.
func (s *kafkaSource) discoverLoop() {
	defer s.wg.Done()
	base, cancel := s.stopContext()
	defer cancel()
	for {
		select {
		case <-s.clock.After(s.plan.discovery):
		case <-s.stop:
			return
		}
		ctx, cancelReq := context.WithTimeout(base, kafkaRequestTimeout)
		counts, err := kafkaTopicMetadata(ctx, s.client, s.plan.topics)
		cancelReq()
		if base.Err() != nil {
			return
		}
		if err != nil {
			s.log.Warn("kafka source: partition discovery failed; trying again at the next interval", "err", err)
			continue
		}
		select {
		case <-s.discovered:
		default:
		}
		s.discovered <- counts
	}
}

// stopContext returns a context cancelled when Close stops the background
// work, so that no request outlives the source.
func (s *kafkaSource) stopContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	stop := s.stop
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// commitLoop commits the offsets Snapshot hands it to the consumer group,
// for monitoring: the checkpoint, not the group, is where the source
// resumes. A commit that fails is logged and superseded by the next.
func (s *kafkaSource) commitLoop() {
	defer s.wg.Done()
	ctx, cancel := s.stopContext()
	defer cancel()
	for {
		var gc groupCommit
		select {
		case gc = <-s.commits:
		case <-s.stop:
			return
		}
		if len(gc.offsets) == 0 {
			continue
		}
		if err := kafkaCommitOffsets(ctx, s.client, s.plan.groupID, gc); err != nil && ctx.Err() == nil {
			s.log.Warn("kafka source: committing offsets to the consumer group failed (they are for monitoring only)", "group", s.plan.groupID, "err", err)
		}
	}
}

// topicMeta is what the source needs to know of a topic.
type topicMeta struct {
	partitions int32 // 0: the topic does not exist
	id         [16]byte
}

// kafkaTopicMetadata asks for the partition count and id of each topic.
func kafkaTopicMetadata(ctx context.Context, cl *kgo.Client, topics []string) (map[string]topicMeta, error) {
	counts := make(map[string]topicMeta, len(topics))
	err := retryKafka(ctx, "metadata", func(ctx context.Context) error {
		req := kmsg.NewPtrMetadataRequest()
		req.AllowAutoTopicCreation = false
		for _, t := range topics {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(t)
			req.Topics = append(req.Topics, rt)
		}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return err
		}
		for _, t := range resp.Topics {
			if t.Topic == nil {
				continue
			}
			switch err := kerr.ErrorForCode(t.ErrorCode); err {
			case nil:
			case kerr.UnknownTopicOrPartition:
				counts[*t.Topic] = topicMeta{}
				continue
			default:
				return fmt.Errorf("topic %q: %w", *t.Topic, err)
			}
			var n int32
			for _, p := range t.Partitions {
				n = max(n, p.Partition+1)
			}
			counts[*t.Topic] = topicMeta{partitions: n, id: t.TopicID}
		}
		return nil
	})
	return counts, err
}

// kafkaListOffsets resolves ts (offsetLatest, offsetEarliest or epoch
// milliseconds) for each partition; for a timestamp after the last record
// Kafka answers -1.
func kafkaListOffsets(ctx context.Context, cl *kgo.Client, readCommitted bool, ts int64, kps []*kafkaPartition) (map[tp]int64, error) {
	out := make(map[tp]int64, len(kps))
	if len(kps) == 0 {
		return out, nil
	}
	err := retryKafka(ctx, "list offsets", func(ctx context.Context) error {
		req := kmsg.NewPtrListOffsetsRequest()
		req.ReplicaID = -1
		if readCommitted {
			req.IsolationLevel = 1
		}
		byTopic := map[string]int{}
		for _, kp := range kps {
			i, ok := byTopic[kp.topic]
			if !ok {
				i = len(req.Topics)
				byTopic[kp.topic] = i
				rt := kmsg.NewListOffsetsRequestTopic()
				rt.Topic = kp.topic
				req.Topics = append(req.Topics, rt)
			}
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition = kp.partition
			rp.Timestamp = ts
			rp.CurrentLeaderEpoch = -1
			req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
		}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return err
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					return fmt.Errorf("topic %q partition %d: %w", t.Topic, p.Partition, err)
				}
				out[tp{t.Topic, p.Partition}] = p.Offset
			}
		}
		for _, kp := range kps {
			if _, ok := out[kp.tp]; !ok {
				return fmt.Errorf("topic %q partition %d: no answer: %w", kp.topic, kp.partition, kerr.UnknownTopicOrPartition)
			}
		}
		return nil
	})
	return out, err
}

// kafkaCommitOffsets commits offsets for group as a standalone consumer
// (generation -1, no member): Kafka accepts that for a group without
// active members, which is what monitoring tools read lag from.
func kafkaCommitOffsets(ctx context.Context, cl *kgo.Client, group string, gc groupCommit) error {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group = group
	req.Generation = -1
	byTopic := map[string]int{}
	for k, off := range gc.offsets {
		i, ok := byTopic[k.topic]
		if !ok {
			i = len(req.Topics)
			byTopic[k.topic] = i
			rt := kmsg.NewOffsetCommitRequestTopic()
			rt.Topic = k.topic
			rt.TopicID = gc.ids[k.topic]
			req.Topics = append(req.Topics, rt)
		}
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition = k.partition
		rp.Offset = off
		rp.LeaderEpoch = -1
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				errs = append(errs, fmt.Errorf("topic %q partition %d: %w", t.Topic, p.Partition, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Package connectors owns Weir's built-in sources and sinks: the datagen,
// nexmark, file and Kafka sources, and the print, blackhole, file and Kafka
// sinks. Register adds them to a runtime.Connectors under the names a job
// spec uses.
//
// The package knows only the runtime's connector contract (runtime.Source,
// runtime.Sink, runtime.CheckpointedSource, runtime.TwoPhaseSink,
// runtime.TaskInfo, runtime.DecodeConfig) and the abi record encoding. It
// must not know job graphs, tasks, channels, state backends, checkpoint
// storage, the coordinator or Wasm: a source writes records to a
// RecordWriter and hands out its position as opaque bytes, a sink reads
// records-only batches and hands out its pending transactions as opaque
// bytes; where those bytes are stored, and when a checkpoint completes, is
// the runtime's business. Sources assign event timestamps; watermarks are
// the runtime's business too.
//
// Guarantees: datagen, nexmark, file and kafka are rewindable sources, and
// the file sink and the kafka sink in exactly-once mode are exactly-once
// (two-phase commit tied to checkpoints), so a job from these connectors
// has exactly-once output in those sinks. print is
// at-least-once: lines printed before a failure are printed again when the
// job replays from its last checkpoint.
//
// Every config error names its field, as in
//
//	config.format: must be one of lines, jsonl, csv, got "xml"
//
// and unknown fields are errors. Configs are validated when the job is
// submitted (the factory); anything that needs the file system (does the
// input exist?) is checked at Open.
//
// # Source "datagen"
//
// Generates records from a seed. Bounded when count > 0, unbounded otherwise.
//
//	count              integer, default 0. Total number of records over all
//	                   subtasks; 0 means unbounded.
//	rate               number, default 0. Records per second per subtask
//	                   (fractions allowed, 0.5 = one every 2 s); 0 means as
//	                   fast as possible.
//	seed               integer, default 0. Seeds every random field.
//	key                generator (below); default: an empty key.
//	value              generator (below); default {"kind": "sequence"}, the
//	                   record's index in decimal.
//	valueSize          integer 0..67108864. Every value is the same valueSize
//	                   bytes of lowercase letters (derived from the seed),
//	                   built once: the cheapest records there are, for
//	                   benchmarks. Cannot be combined with value.
//	timestamp          "none" (default: no event time), "sequence" or
//	                   "processing".
//	timestampStart     integer, epoch milliseconds, default 0.  } only with
//	timestampInterval  duration, default "1ms".                 } timestamp
//	timestampJitter    duration, default 0 (none).              } "sequence"
//
// Durations are Go duration strings ("250us", "1s", "5m") or numbers of
// milliseconds. With "sequence", record i gets start + i*interval (computed
// in nanoseconds, truncated to the millisecond, so intervals below a
// millisecond work), minus a random delay in [0, jitter] when a jitter is
// set: out-of-order data for exercising watermarks. With "processing" the
// timestamp is the task clock's time, read once per Poll, so the records of
// one batch share it.
//
// A generator is an object with a "kind" and that kind's fields. Every kind
// produces text (UTF-8) bytes:
//
//	{"kind": "sequence", "start": 0, "end": 9}
//	    start + i in decimal; start defaults to 0. With an end (>= start)
//	    the values cycle start, ..., end, start, ...: a fixed key space.
//	{"kind": "random", "min": 0, "max": 2147483647}
//	    a uniform integer in [min, max] in decimal (defaults as shown).
//	{"kind": "string", "length": 10, "charset": "abc"}
//	    length (0..1048576, default 10) characters drawn uniformly from
//	    charset (Unicode characters, no duplicates; default a-z, A-Z, 0-9).
//	{"kind": "constant", "value": "x"}
//	    the same value for every record (value is required).
//	{"kind": "uuid"}
//	    a random version-4 UUID, e.g. "0f8c3c4e-6d43-4d8f-9a44-3b1e2f0a9c11".
//	{"kind": "oneOf", "values": ["a", "b"]}
//	    one of the values (non-empty list), picked uniformly.
//
// A field given for the wrong kind is an error (config.key.length: not used
// by kind sequence).
//
// Determinism and parallelism. Record i (its global index) is a pure
// function of (config, seed, i): its key, value and (except with
// "processing") timestamp do not depend on how many subtasks there are, how
// Poll calls are batched, or on anything generated before. Subtask s of p generates indices s, s+p,
// s+2p, ... below count, so the union over subtasks is exactly the
// parallelism-1 output. The key and the value use separate random streams.
//
// Rate limiting uses TaskInfo.Clock only (never the wall clock directly):
// one record is due at Open and then one every 1/rate s, computed from the
// Open time, so rounding never accumulates. Poll returns the records due
// now (at most maxRecords) and, when none is due, waits on the clock for the
// next one, returning early with no records at ctx's deadline. It is an
// average rate: after a stall (backpressure) the records that fell due are
// generated at once, as events that arrived meanwhile would be.
//
// Checkpoints. datagen is a runtime.CheckpointedSource: its snapshot is
// the set of global indices generated so far over the node (see "Exactly
// once across rescaling" below), so a job restored from a checkpoint or
// savepoint, at any parallelism, generates every index not yet generated,
// once. Because records are pure functions of their index, the restored
// job's output is the one an uninterrupted run would have produced
// (processing-time timestamps aside). The rate restarts at the restore: the
// first record is due at Open and records due while the job was down are
// not made up in a burst. A restore checks the snapshot's count against the
// config (a different count is another index space, an error); seed, rate
// and generators may change between a savepoint and its restore.
//
// # Source "nexmark"
//
// Generates the events of the Nexmark benchmark (people, auctions and bids)
// with package connectors/nexmark, a port of the generator of
// github.com/nexmark/nexmark: for the same knobs, event n is the event the
// reference generator emits after n others (see that package for the
// fidelity argument, and for the one change that makes it deterministic).
// Bounded when count > 0, unbounded otherwise.
//
//	count                integer, default 0. Total number of events over all
//	                     subtasks (the reference's events.num); 0 means
//	                     unbounded.
//	rate                 number, default 0. Events per second over the node
//	                     (each of p subtasks delivers rate/p); 0 means as
//	                     fast as possible. Fractions allowed.
//	format               "row" (default): the event in the row layout of
//	                     nexmark.Event (package abi/row); "json": the
//	                     reference's Kafka JSON, {"event_type":2,
//	                     "person":null,"auction":null,"bid":{...}}, with
//	                     timestamps as "2026-01-01 00:00:00.001" (UTC, as
//	                     Flink's json format writes TIMESTAMP(3)).
//	seed                 integer, default 0. 0 is the reference's events;
//	                     any other seed changes every random choice but
//	                     not event types, ids or times.
//	baseTime             integer, epoch milliseconds, default 1767225600000
//	                     (2026-01-01T00:00:00Z): the time of event number 0
//	                     (the reference uses the wall clock at start).
//	firstEventRate       integer, default 10000. Event-time rate: event
//	                     timestamps advance 1/firstEventRate s per event,
//	                     whatever the delivery rate.
//	nextEventRate        integer, default firstEventRate. Must equal it:
//	                     the reference declares it but never uses it.
//	personProportion     integers, default 1, 3, 46: the shares of each
//	auctionProportion    type; event ids cycle through persons, auctions,
//	bidProportion        then bids.
//	avgPersonByteSize    integers 0..1048576, default 200, 500, 100: the
//	avgAuctionByteSize   average event sizes the extra fields pad events
//	avgBidByteSize       to.
//	hotAuctionRatio      integers >= 1, default 2, 4, 4: a bid is for a hot
//	hotSellersRatio      auction, an auction by a hot seller, a bid by a
//	hotBiddersRatio      hot bidder with probability 1 - 1/ratio.
//	numActivePeople      integer, default 1000: people picked from for
//	                     non-hot sellers and bidders.
//	numInFlightAuctions  integer, default 100: auctions picked from for
//	                     non-hot bids; sets auction lengths too.
//	outOfOrderGroupSize  integer >= 1, default 1: event numbers are shuffled
//	                     within groups of this many (1: timestamps in order).
//	firstEventId         integers >= 0, default 1 and 1, as the reference's
//	firstEventNumber     "nexmark" table source sets them: event 0 has id 2.
//
// Each record has an empty key, the event as its value and the event's
// dateTime as its timestamp (epoch milliseconds). Subtask s of p generates
// the event numbers n with n % p == s in ascending order, so the union over
// subtasks is exactly the parallelism-1 stream and, with outOfOrderGroupSize
// 1, every subtask's timestamps never decrease. All subtasks share one
// event-time timeline: the reference instead gives each of its p
// generators a timeline p times slower (numEventGenerators); both have
// firstEventRate events per second of event time over the node.
//
// Rate limiting and checkpoints work exactly as datagen's (with the rate
// over the node instead of per subtask): the snapshot (kind 4, the datagen
// payload: parallelism, subtask, count, set) holds the set of event
// numbers generated over the node, so a restore at any parallelism
// generates every event not generated yet, once, and since events are pure
// functions of their number the output is the one an uninterrupted run
// would have produced. count must not change across a restore; every other
// field may.
//
// # Source "file"
//
// Reads files once. Bounded: Poll reports done after the last record.
//
//	path             required. A file, or a glob (filepath.Match syntax:
//	                 *, ?, [a-z], \ escapes). Relative paths are resolved
//	                 against the job spec's directory (RegisterWithBase);
//	                 matches are read in lexical order; directories among
//	                 them are skipped. A missing file or a glob without
//	                 matches fails the task at Open.
//	format           "lines" (default), "jsonl" or "csv".
//	timestampField   jsonl: a top-level member name; csv: a column name.
//	                 Default: no event time. Not for lines.
//	timestampFormat  "millis" (default), "seconds" or "rfc3339"; only with
//	                 timestampField.
//	keyField         jsonl: a top-level member name; csv: a column name.
//	                 Default: empty keys. Not for lines.
//	header           csv only, default true: the first row names the columns.
//	delimiter        csv only, one character, default ",". Use "\t" for TSV.
//
// Formats:
//
//   - lines: each line is a record value, without its "\n" or "\r\n".
//     Empty lines are records (empty values). A last line needs no newline.
//   - jsonl: each line must be one JSON object; the value is the line as is.
//     Blank lines are skipped (they are not records).
//   - csv: RFC 4180 (encoding/csv): quoted fields may hold delimiters, ""
//     for a quote and line breaks. Each row becomes a JSON object
//     {"<column>": "<field>", ...} in column order, every field a JSON
//     string (no type guessing: "007" stays "007"; operators parse numbers
//     themselves, or use `json:",string"`), so downstream operators see the
//     same shape as from jsonl. Header names must be non-empty and
//     distinct. Without a header the columns are named f0,
//     f1, ... after the first row's width. Every file of a glob has its own
//     header. Invalid UTF-8 in a field becomes U+FFFD, as with
//     encoding/json.
//
// A UTF-8 byte order mark at the start of a file is dropped in every format.
// Lines may be up to 64 MiB (the record value limit).
//
// Timestamps: millis is an integer of milliseconds; seconds is a decimal
// number of seconds (1700000000, 1.5, -2.25), truncated to the millisecond,
// without exponent; rfc3339 is a string such as "2024-01-02T03:04:05.678Z"
// or "2024-01-02T04:04:05+01:00". In jsonl a numeric timestamp may be a JSON
// number or a string holding it. Keys: a JSON string member gives its text,
// any other member its JSON text (42, true, {"id": 7}); a csv column gives
// the field. Where a member appears twice the last wins, as in
// encoding/json.
//
// Malformed input fails the task with the file, the line and the problem:
//
//	data/events.jsonl:12: not a JSON object: "{\"user\": "
//	data/events.jsonl:13: missing timestamp field "ts"
//	data/events.csv:7: 3 fields, but the header has 4
//	data/events.csv:9: timestamp field "ts": cannot parse "x" as milliseconds
//
// Parallelism: every subtask reads all files and keeps records i, i+p, ...
// of its own (subtask i of p), counting records over all files in order
// (blank jsonl lines and csv headers are not records). The subtasks' outputs
// therefore partition the input, deterministically; each malformed line in
// jsonl is reported by the subtask that owns it, csv structure errors by all.
//
// Checkpoints. The file source is a runtime.CheckpointedSource. Its
// snapshot holds the set of global record indices read so far over the node
// (as datagen's), the subtask's cursor (file, byte offset, line number and
// the global index of the record at that offset) and the input's identity:
// format, csv header and delimiter, and the files' names (relative to the
// pattern's fixed directory, so a savepoint survives moving the job spec's
// directory) and sizes. A restored subtask resumes reading at the cursor of
// the old subtasks that is nearest before its first unread record, so it
// rescans at most the gap between the slowest old subtask and that record,
// never the input from its start; a csv file resumed mid-way rereads only
// its first row, for the column names. Line numbers in errors stay those of
// the whole file. A restore fails, naming the node and what differs, when
// the format, csv header or delimiter changed, when the pattern matches
// other files, or when a file's size changed (the offsets would be
// meaningless). timestampField, timestampFormat and keyField may change.
//
// # Sink "print"
//
// Writes each record as one line to standard output (RegisterOptions.Stdout
// in tests).
//
//	format         "value" (default), "kv" or "json" (see Output formats).
//	identifier     string, default "". A label put before every line.
//	subtaskPrefix  boolean, default true. When parallelism > 1, put the
//	               subtask number before every line.
//
// Lines are prefixed as by Flink's print sink: "3> " (subtask number, which
// like Flink's is 1-based: subtask index 2 prints "3> "), "out:3> " with an
// identifier, "out> " with an identifier at parallelism 1, nothing at
// parallelism 1 without one. All print sinks of one registration share a
// lock around the writer, and each batch is written with one Write, so
// lines of concurrent subtasks never mix within a line; the order between
// subtasks is arbitrary.
//
// Guarantee: at-least-once, also with checkpoints. Write returns only
// after the batch's lines were handed to the writer, so every record the
// runtime considers delivered was printed; but printed lines cannot be
// taken back, so after a failure the records the job replays since the last
// completed checkpoint are printed a second time. print is not a
// runtime.TwoPhaseSink. (blackhole has no output to duplicate; its counters
// do count replayed records again.)
//
// # Sink "blackhole"
//
// Discards records after counting them. It still decodes
// every batch, so the cost of a real sink's decoding is measured. The counts
// of all blackhole sinks of a registration accumulate in
// RegisterOptions.Blackhole (BlackholeCounters: records, key+value payload
// bytes, batches), which is how benchmarks read throughput.
//
//	rate  number, default 0 (unlimited). Records per second per subtask on
//	      the task clock: a deliberately slow sink, whose backpressure
//	      slows the sources (the cluster's slow-sink test uses it).
//
// # Sink "file"
//
//	path    required. The output directory, created if missing. Relative
//	        paths are resolved against the job spec's directory.
//	format  "value" (default), "kv" or "json" (see Output formats).
//
// Guarantee: exactly-once end to end. The file sink is a
// runtime.TwoPhaseSink: each subtask writes the records between two
// checkpoints, one line per record in arrival order, to a pending file, and
// a pending file becomes visible only when the checkpoint covering it has
// completed. What a reader of the directory sees of each subtask is
// therefore always its output up to a completed checkpoint, with no record
// twice after any number of failures and restores (subtasks commit one
// after the other, so for a moment some may show one more checkpoint than
// others). Like Flink's FileSink it commits by
// checkpoints only: a job that runs without checkpoints has one
// transaction, FinalCheckpoint, and its output appears when the job has
// finished (a failed or cancelled job without checkpoints leaves nothing
// visible).
//
// Files, in the output directory:
//
//	part-<subtask>-<checkpoint>  committed: what subtask wrote up to the
//	                             barrier of checkpoint (an id zero-padded to
//	                             19 digits, PartFileName), after what its
//	                             earlier files hold
//	part-<subtask>-final         committed: the last transaction of a
//	                             bounded job (FinalCheckpoint)
//	.pending/part-<subtask>-<token>-<seq>
//	                             pending: transaction seq of one attempt
//	                             (token: 16 random hex digits per sink
//	                             instance, so attempts never share a name)
//
// A sorted listing gives each subtask's files in commit order, the final
// one last; ReadCommitted reads them back in that order (subtasks by
// number). A subtask whose transaction is empty (no record since the last
// checkpoint) writes no file. After a rescale the committed files keep the
// subtask number of the subtask that wrote them.
//
// The protocol. The pending file is created at a transaction's first
// record. Lines are gathered in a 256 KiB buffer and written when it fills.
// PreCommit(n) writes the buffer out, fsyncs and closes the file, fsyncs
// .pending, and returns the state of every transaction not committed yet
// (normally just n's: checkpoint, pending name, size). Commit(n) renames
// each pending file up to n to its committed name and fsyncs the directory.
// Commit is idempotent: a pending file that is gone while its committed
// file exists with the recorded size was committed before. It never
// overwrites a committed file (two transactions with one name mean a reused
// checkpoint id, which is an error), never commits a pending file whose
// size differs from the recorded one, and reports a transaction whose
// pending and committed files are both missing as lost data. Restore(n)
// commits the transactions in the states of the old subtasks it takes over
// (i % parallelism == subtask), then deletes every other pending file of
// those old subtasks: transactions of checkpoints after n, which never
// completed, and unfinished files of the failed attempt. A state written
// for another output directory (a savepoint started with a new path) has
// its transactions committed where they were written, best effort: that
// output normally committed them when the savepoint completed, and when
// its directory is gone or changed the restore logs a warning (through
// TaskInfo.Logger) instead of failing; nothing is removed there, as a job
// still running from the same savepoint may own it. Close deletes the
// unfinished pending file (its records are in no transaction and will be
// replayed) and keeps pre-committed ones for Commit or a restore; Commit
// may come after Close.
//
// Fresh start. Open without a Restore (a new job, or a restart before the
// first completed checkpoint) removes the earlier output that the subtask
// replaces: every file, committed or pending, of subtask numbers j with
// j % parallelism == subtask, including the part-<j> files of Weir versions
// before checkpoints. So a directory holds one run's output, as before,
// whatever the earlier run's parallelism was, and no subtask removes a file
// another subtask of the same run writes. Files with other names are left
// alone. Hence one directory per sink node: two jobs or nodes writing to
// one directory would remove each other's files. After a Restore, Open removes nothing: the committed output of
// the earlier attempt is the first part of this run's output.
//
// # Source and sink "kafka"
//
// Read from and write to Apache Kafka with franz-go (any broker speaking
// the Kafka protocol; exactly-once needs Kafka 3.0 or later). Tested
// against franz-go's kfake broker over TCP. TLS and SASL are not
// configurable yet. RegisterOptions.Kafka (a KafkaPolicy) restricts the
// bootstrap brokers a config may name; the platform sets it from its
// operator's --kafka-brokers, so a tenant's job cannot make the process
// connect to arbitrary hosts (the addresses an allowed cluster advertises
// are trusted).
//
// Source config:
//
//	brokers            required. Bootstrap brokers, a list of "host:port".
//	topics             required. Topic names; every partition is read.
//	format             "raw" (default), "json" or "row". Values pass
//	                   through byte for byte; json checks that each is one
//	                   JSON object, row that it is an abi/row row.
//	startFrom          "earliest" (default), "latest" or "timestamp": where
//	                   a partition starts when no checkpoint says.
//	startTimestamp     epoch milliseconds, required with "timestamp": each
//	                   partition starts at its first record at or after it
//	                   (at its end when there is none).
//	timestamp          "record" (default: the Kafka record's timestamp),
//	                   "field" (implied by timestampField) or "none".
//	timestampField     json: a top-level member name; row: the index of an
//	                   int field (epoch milliseconds).
//	timestampFormat    json only: "millis" (default), "seconds" or
//	                   "rfc3339", as the file source's.
//	headers            boolean, default false: the value becomes the
//	                   headers envelope (below) of the Kafka value and its
//	                   headers.
//	isolation          "read_committed" (default) or "read_uncommitted".
//	discoveryInterval  duration, default "10s", at least 10ms; 0 turns
//	                   discovery off.
//	groupId            string, default none: commit offsets to this
//	                   consumer group, for monitoring only.
//	stopAtEnd          boolean, default false: bounded (below).
//
// Records: the key is the Kafka key (a null key is empty), the value the
// Kafka value (a null value is empty, or null inside the envelope), the
// timestamp as configured (a Kafka timestamp of -1 gives none). A value
// that is not of the format, or whose timestamp field is missing or does
// not parse, fails the task naming where it is:
//
//	kafka source node "in" subtask 1: topic "bids" partition 3 offset 17: value is not a JSON object: "{\"price\": "
//
// Isolation: read_committed (the default, so that the output of an
// exactly-once sink is read as committed) skips the records of aborted
// transactions and holds back those of open ones; transaction markers are
// consumed, so offsets move past them.
//
// Partitions and subtasks. Subtask s of p reads the partitions whose
// (topic index + partition) % p == s, the topic index being the topic's
// place in the sorted list of distinct configured topics: for a single
// topic, partition i goes to subtask i % p. The rule depends only on the
// config and the partition, never on how many partitions exist, so that
// partitions added while the job runs never move existing ones between
// subtasks (an index over all partitions sorted by topic and partition
// would shift when an earlier topic grows), and the topic offset spreads
// the first partitions of several small topics over subtasks. A subtask
// may own no partition; it then only waits for new ones.
//
// Discovery. Every discoveryInterval, on the task's clock (TaskInfo.Clock),
// each subtask asks the brokers for the topics' partition counts in the
// background; Poll takes the result. New partitions it owns are read from
// their earliest offset, since all their records are new. A topic that
// does not exist at Open is logged and, with discovery on, read once it
// appears, from the earliest offset too.
//
// Bounded input (stopAtEnd: true). At Open each subtask lists the end
// offsets of its partitions (the last stable offsets under read_committed,
// the high watermarks otherwise), reads up to them, and Poll reports done
// once every partition reached its end: records produced later are not
// read. After a restore the ends are listed again at its Open. No
// discovery. A compacted partition whose last offsets were compacted away
// never reaches its end; stopAtEnd is for tests, benchmarks and backfills
// of ordinary topics.
//
// Checkpoints. The source is a runtime.CheckpointedSource: a snapshot
// holds the offset of the next record of every partition the subtask
// owns, and the list of configured topics. Offsets in checkpoints, not
// consumer group commits, are where the source resumes, and a restore
// always wins over startFrom. Restore merges the offsets of every old
// subtask's snapshot and each new subtask takes those of the partitions it
// owns under the new parallelism, so a rescaled job reads every record the
// checkpoint had not covered exactly once. A partition missing from the
// snapshots of a topic the checkpoint read (created after it) starts at
// its earliest offset; a topic new to the config starts per startFrom.
// latest and timestamp starts are resolved to offsets at Open, so a
// checkpoint taken before a partition's first record restores to the same
// place rather than to a later "latest". An offset that retention deleted
// meanwhile resumes at the log start, with a warning.
//
// A restored partition the brokers do not list at Open (a broker whose
// metadata lags, a topic briefly unknown) keeps its offset: the subtask
// that owns it carries the offset in its snapshots, with a warning, and
// reads from there once the partition appears, at a discovery or at the
// Open of a later restore (read from its earliest offset, it would be read
// twice). A nil entry among the restored states, which the runtime passes
// for an old subtask that snapshotted nothing, counts as a snapshot that
// read nothing: the partitions that subtask owned start at their earliest
// offset, whatever startFrom says, since none of their records were
// produced (this may read records older than the job's first start with
// startFrom latest or timestamp: the offsets those resolved to are not
// known). When every entry is nil, the configured topics count as the
// checkpoint's, so every partition starts at its earliest offset: the
// rule does not depend on how many entries are nil.
//
// Consumer group (groupId). At each snapshot the subtask commits its
// offsets to the group in the background, as a standalone consumer
// (generation -1), so that lag monitoring works. The commits are best
// effort, may be ahead of the last completed checkpoint, and are never
// read back.
//
// Sink config:
//
//	brokers                required. Bootstrap brokers, as the source's.
//	topic                  required. Every record goes to it.
//	format                 "raw" (default), "json" or "row": values are
//	                       checked as the source checks them, not converted.
//	headers                boolean, default false: every value is a headers
//	                       envelope; its value and headers are written.
//	deliveryGuarantee      "at-least-once" (default) or "exactly-once".
//	transactionalIdPrefix  required with exactly-once (see below), not
//	                       allowed otherwise.
//	transactionTimeout     exactly-once only; duration, default "15m".
//	linger                 duration 0..1m, default "10ms": how long a
//	                       partition's records wait for more before a
//	                       produce request is built.
//	compression            "none" (default), "gzip", "snappy", "lz4" or
//	                       "zstd".
//
// Records: the key is the Kafka key, except that an empty key is written
// as a null key, so that keyless records spread over partitions (franz-go's
// sticky partitioner) instead of hashing to one; keyed records go to the
// partition of Kafka's default (murmur2) partitioner, as from a Java
// producer. The record's timestamp is the Kafka timestamp (none: the
// produce time). An empty value is written as an empty value, not as a
// null one: only a null value in an envelope writes a tombstone.
//
// At-least-once: one idempotent producer per subtask (retries never
// duplicate a record); PreCommit waits until every record written so far
// is acknowledged, so a completed checkpoint covers delivered records, and
// after a failure the records since the last completed checkpoint are
// written again. It is a runtime.TwoPhaseSink only to flush at the
// barrier; it has no transactions and no state.
//
// Exactly-once: Kafka transactions tied to checkpoints (two-phase commit).
// Subtask s writes through a small pool of transactional producers with
// ids "<prefix>-<s>-<k>", k = 0, 1, ...
//
//   - The records between two barriers form one transaction. PreCommit(n)
//     flushes it and leaves it open as checkpoint n's; its state lists every
//     pre-committed transaction not committed yet (normally one) with its
//     transactional id, producer id and epoch. The producer's client is
//     closed (which does not end the transaction) and the next record
//     starts a transaction under another id of the pool, with a new client.
//   - Commit(n) commits every pending transaction up to n with a raw EndTxn
//     carrying the producer id and epoch of the state: the very request a
//     restore sends, so one code path commits in both cases, also after
//     Close, and nothing depends on the client's own bookkeeping (franz-go
//     v1.22.2 was seen to end a transaction whose records it had written
//     as an abort, believing nothing was produced).
//   - Restore takes the states of the old subtasks i with i % p == s and
//     Open commits their transactions with a raw EndTxn carrying the
//     producer id and epoch from the state, without initialising the
//     transactional id, which would abort them. Kafka answers a repeated
//     commit of a committed transaction with success, so it is idempotent.
//     The commits happen at Open rather than in Restore because a failed
//     Restore fails the job for good, while a broker that is away at Open
//     fails only the attempt.
//   - A transaction Kafka refuses to commit because it is gone for good is
//     logged as an error and the job goes on; these are the answers
//     PRODUCER_FENCED (INVALID_PRODUCER_EPOCH from brokers before 2.7),
//     INVALID_TXN_STATE and INVALID_PRODUCER_ID_MAPPING, as Flink's
//     committer tells them apart. Either the brokers aborted it (it outlived
//     transactionTimeout: the epoch was bumped, or under KIP-890 the
//     transaction ended as an abort) or forgot its producer
//     (transactional.id.expiration.ms), and its records are lost, or it was
//     committed long ago and its id moved on (a restore from an older
//     checkpoint or savepoint). Any other error (an authorization failure,
//     TRANSACTION_ABORTABLE, a coordinator away for longer than the
//     retries) fails the attempt, and the next attempt tries the commit
//     again: the transaction may still be there to commit, so skipping it
//     could lose records that a fixed ACL or a returning broker would have
//     saved. A refusal that persists keeps the job restarting until the
//     cause is fixed or the transaction times out.
//   - EndTxn and InitProducerID requests are retried while the brokers
//     answer CONCURRENT_TRANSACTIONS (they do while they complete or abort
//     the id's previous transaction asynchronously, after a lost EndTxn
//     response or when an id with an open transaction is initialised),
//     with the usual back-off and within the usual bounds.
//   - Open then aborts what earlier attempts left open: it lists the open
//     transactions (ListTransactions) and initialises every id
//     "<prefix>-<j>-<k>" with j % p == s, which aborts its transaction and
//     fences its producer. Each family j belongs to exactly one new subtask,
//     the one that committed j's transactions just before, so no subtask
//     aborts what another must commit. A fresh start does the same, so
//     transactions of an attempt that failed before its first checkpoint
//     do not block readers until they time out.
//   - A producer whose transaction was committed is reused only once a
//     checkpoint later than the commit has completed. Until then a restore
//     may still resend that transaction's commit (its checkpoint can be the
//     latest completed one), and had the id begun another transaction
//     meanwhile the commit would be refused or, on brokers without KIP-890,
//     commit the wrong one. The same holds across a restore: the ids of the
//     subtask's own pool whose transactions Open committed from restored
//     checkpoint n are reused only once a checkpoint after n completed
//     (lower ids of the pool are free at once), so that an attempt that
//     fails before that leaves the next restore of n a commit Kafka
//     accepts. In steady state a subtask cycles through two or three ids.
//   - Close aborts the unfinished transaction (best effort) and leaves the
//     pre-committed ones for Commit or the next attempt.
//
// Why a transactionalIdPrefix? Transactional ids identify a sink's
// producers across attempts, which is what lets a restarted job commit and
// abort its predecessors' transactions; two jobs (or two sinks) sharing a
// prefix would fence and abort each other's. Use one prefix per job and
// sink, stable across restarts and savepoints. Changing it between a
// savepoint and its restore works (states hold whole ids), but
// transactions left open under the old prefix are not aborted: they time
// out.
//
// Readers with read_committed see a checkpoint's records when it completes
// (latency about a checkpoint interval); an open transaction holds back
// read_committed readers of its partitions until then. transactionTimeout
// must exceed the checkpoint interval plus the time a checkpoint takes
// and a failed job takes to restore; it may not exceed the brokers'
// transaction.max.timeout.ms (15m by default, the default here). A job
// cancelled for good leaves its pre-committed transactions open until they
// time out. Without checkpoints the whole output is one transaction,
// FinalCheckpoint's, visible when the job has finished.
//
// The headers envelope is an abi/row row: field 0 is the value (a bytes
// field, or null for a null value), then each header's key (bytes) and
// value (bytes, or null) in pairs. An operator reads it with row.Reader
// (IsNull or Bytes for the value, then Bytes per key and value); a sink
// with headers: true takes every value in this form, so headers written by
// a source with headers: true reach the output unchanged. The envelope is
// lossless (null and empty are told apart).
//
// Client settings. Both connectors retry with Kafka's Java back-off (100ms
// doubling to 1s, not franz-go's 250ms to 5s) and refresh metadata at
// most every 250ms (not 5s), so that a broker that comes back or a
// partition that moves is seen within a second; the source's fetches wait
// at most 500ms (Kafka's fetch.max.wait.ms) so that newly added partitions
// join the next fetch promptly. Open retries what it needs from the brokers
// (metadata, offsets, transactions) for up to a minute before it fails the
// attempt. While a job runs, fetches and produce requests are retried
// without limit, so a broker that goes away and comes back stalls the job
// (checkpoints wait for the flush); a transaction commit that cannot reach
// its coordinator fails the attempt instead, and the restored attempt
// commits the transaction at its Open. Either way nothing is lost or
// written twice.
//
// Snapshot formats (the envelope of "Checkpoint formats", kinds 5 and 6):
//
//	kafka source  parallelism, subtask, topic count, per topic its name,
//	              partition count, per partition its topic index, number
//	              and next offset + 2 (0: nothing read yet, start at the
//	              earliest offset); the partitions are those the subtask
//	              reads and those restored that it owns but the brokers
//	              did not list yet
//	kafka sink    subtask, transaction count, per transaction its
//	              checkpoint id, transactional id, producer id and epoch;
//	              an id is "<prefix>-<subtask>-<k>", read from the right
//	              (subtask and k decimal, k below 32, the prefix any
//	              non-empty string, also one other than the configured
//	              one, see "Why a transactionalIdPrefix?")
//
// # Output formats (print and file sinks)
//
//   - value: the value's bytes.
//   - kv: the key, a TAB, the value.
//   - json: {"key":"...","value":"...","timestamp":1700000000000}, with
//     "timestamp":null for records without event time. A key or value that
//     is valid UTF-8 is a JSON string member "key"/"value"; otherwise it is
//     base64 (standard, padded) in "keyBase64"/"valueBase64", so a reader
//     knows which by the name. Values that hold JSON are strings too (they
//     are not embedded), so the format is lossless for any bytes.
//
// In value and kv, LF becomes the two characters \n and CR becomes \r, and
// in kv's key TAB becomes \t, so a record is always exactly one line and the
// first TAB separates key from value. Nothing else is escaped (backslashes
// included), so text and JSON values pass through unchanged; the escaping is
// therefore not reversible for values with both line breaks and literal
// "\n" text. Use json when the output must be read back exactly.
//
// # Checkpoint formats
//
// Source snapshots and file sink states share one envelope, so that a
// restore can tell garbage, a corrupt snapshot, another connector's
// snapshot and a future format apart and say which:
//
//	"WEIR"   4 bytes, magic
//	kind     1 byte: 1 datagen source, 2 file source, 3 file sink,
//	         4 nexmark source (the datagen payload), 5 kafka source,
//	         6 kafka sink
//	version  1 byte: the payload's version, 1 for every kind today; a
//	         reader accepts only versions it knows
//	payload  uvarints (encoding/binary) and strings (uvarint length, bytes)
//	crc      4 bytes, little endian: CRC-32C (Castagnoli) of all before
//
// Payloads, version 1:
//
//	datagen source  parallelism, subtask (which must match the snapshot's
//	                place in the checkpoint), count, set
//	file source     parallelism, subtask, format (0 lines, 1 jsonl, 2 csv),
//	                csv header (0/1), csv delimiter (a rune), file count,
//	                per file its name and size, cursor (file index, byte
//	                offset, line, global index), set
//	file sink       subtask, output directory (absolute), transaction
//	                count, per transaction its checkpoint id, pending file
//	                name and size
//
// A set is low, a stripe count and per stripe its modulus, residue and end
// (see "Exactly once across rescaling").
//
// # Decisions
//
// Why are generated fields pure functions of the index? So that output is
// reproducible for a seed regardless of parallelism, batching or restarts
// (a source rewound to index i regenerates exactly the same records), and
// so subtasks share one immutable generator without locks. SplitMix64
// hashes (seed, field, index) to the random words.
//
// Why does Poll return done=true together with the last records? The
// contract says done means no records will follow; the records already
// written to the RecordWriter are part of this poll. It saves a Poll per
// subtask and the runtime must flush w either way.
//
// Why do the file source's subtasks read every file? Splitting by global
// record index is deterministic and balanced whatever the file sizes, with
// no coordination; the cost is that each subtask scans (but does not
// decode) the others' records. Split assignment by file or byte range is a
// later optimisation for large inputs.
//
// Exactly once across rescaling. Both sources give subtask s of p the
// global indices i with i % p == s, produced in ascending order. A snapshot
// holds the set of indices produced so far over the node, normalised as
// "every index below low, plus stripes", a stripe (m, r, e) being the
// indices i < e with i % m == r: exactly what one subtask of parallelism m
// that reached index e has produced. Each subtask's snapshot carries the
// set it was restored from plus its own stripe, so the union of the
// snapshots of any checkpoint is the set produced over the whole history,
// whatever parallelisms came before (2 → 3 → 1 → 4 ...). A restored subtask
// produces its indices (under the new parallelism) that are not in the
// union, in ascending order. Normalising advances low over the prefix the
// stripes cover and drops the stripes that end below it, so a snapshot
// holds a few numbers per subtask of the last one or two parallelisms,
// however uneven the subtasks' progress: a bitmap of the uneven part would
// grow by a bit per record of the gap between the slowest and the fastest
// subtask. Skipping produced indices costs one comparison per record once
// a subtask is past the restored stripes, and stretches that the stripes
// cover completely are jumped over, not walked (indexset.go).
//
// Why must a file sink state name its pending files? A checkpoint's state
// of a subtask lists every transaction not committed when it was taken
// (normally one): if the notification that checkpoint n-1 completed was
// lost, checkpoint n's restore must commit n-1's file too, and only the
// state says which files those are. Names carry a random token per attempt
// so that a restarted attempt never appends to, or truncates, a file an
// earlier attempt pre-committed.
//
// Why its own JSON validator? The jsonl path validates every line it
// decodes, and encoding/json.Valid drives a state machine through a function
// call per byte. A recursive descent that accepts exactly what json.Valid
// accepts (checked by FuzzValidJSONObject), plus a one-pass member finder,
// more than doubles jsonl records per second and allocates nothing.
//
// Why do sinks reject non-record events instead of skipping them? The Sink
// contract promises records-only batches; a watermark in one is a runtime
// bug and is reported where it is visible.
package connectors

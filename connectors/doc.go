// Package connectors owns Weir's built-in sources and sinks: the datagen and
// file sources, and the print, blackhole and file sinks. Register adds them
// to a runtime.Connectors under the names a job spec uses.
//
// The package knows only the runtime's connector contract (runtime.Source,
// runtime.Sink, runtime.TaskInfo, runtime.DecodeConfig) and the abi record
// encoding. It must not know job graphs, tasks, channels, state backends,
// checkpoint storage or Wasm: a source writes records to a RecordWriter, a
// sink reads records-only batches, and everything else is the runtime's.
// Sources assign event timestamps; watermarks are the runtime's business.
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
// Guarantee: at-least-once. Write returns only after the batch's lines were
// handed to the writer, so every record the runtime considers delivered was
// printed; after a failure the records since the last completed checkpoint
// are printed again.
//
// # Sink "blackhole"
//
// Discards records after counting them (no config fields). It still decodes
// every batch, so the cost of a real sink's decoding is measured. The counts
// of all blackhole sinks of a registration accumulate in
// RegisterOptions.Blackhole (BlackholeCounters: records, key+value payload
// bytes, batches), which is how benchmarks read throughput.
//
// # Sink "file"
//
//	path    required. The output directory, created if missing. Relative
//	        paths are resolved against the job spec's directory.
//	format  "value" (default), "kv" or "json" (see Output formats).
//
// Subtask i writes the file part-<i> (PartFileName) in that directory, one
// line per record in arrival order. Open truncates the part file: a
// directory holds one run's output. Lines are gathered in a 256 KiB buffer
// and written when it fills, on Finish (which also fsyncs: a finished
// bounded job's output is durable) and on Close.
//
// Guarantee: none across failures yet. A restarted subtask truncates its
// part file (the rewound source does not replay what was written before the
// checkpoint), and buffered lines die with a crashed process. It is exact
// for jobs that finish without failure (bounded jobs, tests, examples).
// Exactly-once comes with two-phase commit tied to checkpoints (a later
// issue): on checkpoint n's barrier each subtask will flush, fsync and close
// its current part as a pending file (.part-<i>-<n>.pending) and start a new
// one; when the coordinator reports checkpoint n complete it will rename the
// pending files to their final names; on restore it will commit the pending
// files of the restored checkpoint and delete later ones. All file handling
// is in partFile for that reason, and the runtime.Sink contract will need
// the checkpoint hooks (see the report that introduced this package).
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
// later optimisation for large inputs. A subtask's position is (file index,
// record index), which is all a checkpointed version will need to store.
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

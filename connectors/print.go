package connectors

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/runtime"
)

// printConfig is the config of the print sink.
type printConfig struct {
	Format        string `json:"format"`
	Identifier    string `json:"identifier"`
	SubtaskPrefix *bool  `json:"subtaskPrefix"`
}

// NewPrintFactory returns the print sink factory writing to w. The sink is
// at-least-once: after a failure, replayed records are printed again.
// Writes are whole batches; concurrent subtasks of sinks sharing w must
// serialise through w itself (Register wraps os.Stdout or
// RegisterOptions.Stdout in a lock).
func NewPrintFactory(w io.Writer) runtime.SinkFactory {
	return newPrintFactory(&lockedWriter{w: w})
}

func newPrintFactory(w io.Writer) runtime.SinkFactory {
	return func(config []byte) (func() runtime.Sink, error) {
		var cfg printConfig
		if err := runtime.DecodeConfig(config, &cfg); err != nil {
			return nil, err
		}
		format, err := parseOutputFormat(cfg.Format)
		if err != nil {
			return nil, err
		}
		withSubtask := cfg.SubtaskPrefix == nil || *cfg.SubtaskPrefix
		return func() runtime.Sink {
			return &printSink{out: w, format: format, identifier: cfg.Identifier, withSubtask: withSubtask}
		}, nil
	}
}

// printSink renders each record as a line and hands every batch to the
// writer in one Write before returning, which is what makes it
// at-least-once: a record whose batch was acknowledged has been written.
// It is deliberately not a runtime.TwoPhaseSink: printed lines cannot be
// withdrawn, so after a failure the records replayed since the last
// completed checkpoint are printed again (duplicates, never losses).
type printSink struct {
	out         io.Writer
	format      outputFormat
	identifier  string
	withSubtask bool

	prefix []byte
	buf    []byte
	dec    abi.Decoder
	ev     abi.Event
}

// Open computes the line prefix, as Flink's print sink does: "id:n> " or
// "n> " with n the 1-based subtask number when parallelism > 1, "id> " with
// only an identifier, nothing otherwise.
func (s *printSink) Open(_ context.Context, info runtime.TaskInfo) error {
	subtask, p, err := checkTask(info)
	if err != nil {
		return fmt.Errorf("print sink: %w", err)
	}
	s.prefix = s.prefix[:0]
	s.prefix = append(s.prefix, s.identifier...)
	if s.withSubtask && p > 1 {
		if s.identifier != "" {
			s.prefix = append(s.prefix, ':')
		}
		s.prefix = strconv.AppendInt(s.prefix, int64(subtask+1), 10)
	}
	if len(s.prefix) > 0 {
		s.prefix = append(s.prefix, "> "...)
	}
	return nil
}

// Write prints the batch's records, one line each.
func (s *printSink) Write(_ context.Context, batch []byte) error {
	s.buf = s.buf[:0]
	s.dec.Reset(batch)
	for s.dec.More() {
		if err := nextRecord(&s.dec, &s.ev); err != nil {
			return fmt.Errorf("print sink: %w", err)
		}
		s.buf = append(s.buf, s.prefix...)
		s.buf = appendRecordLine(s.buf, s.format, s.ev.Key, s.ev.Value, s.ev.Timestamp)
	}
	if len(s.buf) == 0 {
		return nil
	}
	if _, err := s.out.Write(s.buf); err != nil {
		return fmt.Errorf("print sink: write: %w", err)
	}
	return nil
}

// Finish has nothing to flush: Write does not buffer across batches.
func (s *printSink) Finish(context.Context) error { return nil }

// Close releases nothing; the writer belongs to the registration.
func (s *printSink) Close() error { return nil }

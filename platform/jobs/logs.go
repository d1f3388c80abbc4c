package jobs

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/weirstream/weir/runtime/clock"
)

// LogLine is one line of a job's log: a system event, a guest's log or
// stdout/stderr line, or a print sink's output.
type LogLine struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Level   string    `json:"level"`
	Source  string    `json:"source"` // system, guest, print
	Task    string    `json:"task,omitempty"`
	Message string    `json:"message"`
}

// logRing keeps a job's newest log lines.
type logRing struct {
	clock clock.Clock // stamps lines that come without a time
	mu    sync.Mutex
	lines []LogLine // circular, len == cap once full
	next  int       // index of the oldest once full
	seq   uint64    // sequence number of the newest line
}

// newLogRing keeps the newest n lines; c stamps lines without a time (nil:
// the wall clock).
func newLogRing(n int, c clock.Clock) *logRing {
	if c == nil {
		c = clock.Real{}
	}
	return &logRing{clock: c, lines: make([]LogLine, 0, n)}
}

func (r *logRing) add(l LogLine) {
	r.mu.Lock()
	r.seq++
	l.Seq = r.seq
	if l.Time.IsZero() {
		l.Time = r.clock.Now().UTC()
	}
	if len(r.lines) < cap(r.lines) {
		r.lines = append(r.lines, l)
	} else {
		r.lines[r.next] = l
		r.next = (r.next + 1) % len(r.lines)
	}
	r.mu.Unlock()
}

func (r *logRing) system(level slog.Level, msg string) {
	r.add(LogLine{Level: strings.ToLower(level.String()), Source: "system", Message: msg})
}

// page returns up to limit lines (all when limit <= 0) with Seq > after,
// oldest first, and the sequence number to ask for next (0 when these are
// the newest lines).
func (r *logRing) page(after uint64, limit int) ([]LogLine, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(r.lines)
	var out []LogLine
	for i := 0; i < n && (limit <= 0 || len(out) < limit); i++ {
		l := r.lines[(r.next+i)%n]
		if l.Seq > after {
			out = append(out, l)
		}
	}
	if len(out) == 0 || out[len(out)-1].Seq == r.seq {
		return out, 0
	}
	return out, out[len(out)-1].Seq
}

// writer returns an io.Writer whose lines become log lines of a source.
func (r *logRing) writer(source string) *lineWriter { return &lineWriter{ring: r, source: source} }

// lineWriter splits writes into lines (a write is one or more whole lines
// from the print sink, which writes under its own lock).
type lineWriter struct {
	ring   *logRing
	source string
}

func (w *lineWriter) Write(b []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n")) {
		w.ring.add(LogLine{Level: "info", Source: w.source, Message: string(line)})
	}
	return len(b), nil
}

// handler returns a slog.Handler that appends records to the ring: the
// runtime's job and task logs, and guest logs (attribute source=guest).
func (r *logRing) handler(min slog.Level) slog.Handler { return &ringHandler{ring: r, min: min} }

type ringHandler struct {
	ring  *logRing
	min   slog.Level
	attrs []slog.Attr
}

func (h *ringHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.min }

func (h *ringHandler) Handle(_ context.Context, rec slog.Record) error {
	l := LogLine{Time: rec.Time.UTC(), Level: strings.ToLower(rec.Level.String()), Source: "system", Message: rec.Message}
	var extra strings.Builder
	add := func(a slog.Attr) bool {
		switch a.Key {
		case "source":
			l.Source = a.Value.String()
		case "task":
			l.Task = a.Value.String()
		case "job":
		default:
			fmt.Fprintf(&extra, " %s=%v", a.Key, a.Value)
		}
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	rec.Attrs(add)
	l.Message += extra.String()
	h.ring.add(l)
	return nil
}

func (h *ringHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &ringHandler{ring: h.ring, min: h.min, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

// WithGroup flattens groups: log lines are for people, not machines.
func (h *ringHandler) WithGroup(string) slog.Handler { return h }

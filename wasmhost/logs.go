package wasmhost

import (
	"bytes"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/weirstream/weir/abi"
)

// MaxLogLine is the longest guest log line; longer lines (the log import,
// stdout, stderr) are cut to it (ABI.md section 3).
const MaxLogLine = 4 << 10

// logLimiter is a token bucket over log bytes: rate bytes per second, with
// a burst of one second's worth. A tenant that logs in a loop costs the
// host a counter increment per line, not a log write.
type logLimiter struct {
	rate         float64
	tokens       float64
	last         time.Time
	now          func() time.Time
	droppedLines int
	droppedBytes int
}

func newLogLimiter(bytesPerSecond int, now func() time.Time) logLimiter {
	return logLimiter{rate: float64(bytesPerSecond), tokens: float64(bytesPerSecond), now: now, last: now()}
}

// allow reports whether a line of n bytes may be logged now.
func (l *logLimiter) allow(n int) bool {
	t := l.now()
	if dt := t.Sub(l.last); dt > 0 {
		l.tokens += dt.Seconds() * l.rate
		if l.tokens > l.rate {
			l.tokens = l.rate
		}
	}
	l.last = t
	// A line costs at most the bucket size, so a rate below MaxLogLine
	// still lets long lines through, just rarely.
	cost := min(float64(n), l.rate)
	if l.tokens >= cost {
		l.tokens -= cost
		return true
	}
	l.droppedLines++
	l.droppedBytes += n
	return false
}

// reportDropped logs how many lines were dropped since the last report.
func (l *logLimiter) reportDropped(lg Logger) {
	if l.droppedLines == 0 || lg == nil {
		return
	}
	lg.GuestLog(abi.LogWarn, fmt.Sprintf("wasmhost: dropped %d guest log lines (%d bytes) over the limit of %d bytes/s",
		l.droppedLines, l.droppedBytes, int(l.rate)))
	l.droppedLines, l.droppedBytes = 0, 0
}

// guestLog cuts, rate-limits and forwards one line.
func (i *Instance) guestLog(level abi.LogLevel, b []byte) {
	if i.logger == nil {
		return
	}
	b = cutLine(b)
	if !i.logs.allow(len(b)) {
		return
	}
	i.logs.reportDropped(i.logger)
	i.logger.GuestLog(level, string(b))
}

// cutLine cuts b to MaxLogLine bytes, backing off to a UTF-8 boundary.
func cutLine(b []byte) []byte {
	if len(b) <= MaxLogLine {
		return b
	}
	n := MaxLogLine
	for n > MaxLogLine-utf8.UTFMax && n > 0 && !utf8.RuneStart(b[n]) {
		n--
	}
	return b[:n]
}

// lineWriter splits a captured guest stream (WASI stdout or stderr) into
// log lines. wazero calls Write from fd_write on the goroutine of the guest
// call, so it needs no locking.
type lineWriter struct {
	inst   *Instance
	level  abi.LogLevel
	stderr bool
	buf    []byte
	cut    bool // the current line reached MaxLogLine; drop the rest
}

// Write implements io.Writer. It never fails: a guest must not be able to
// make the host's log path return errors into its WASI calls.
func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		seg := p
		j := bytes.IndexByte(p, '\n')
		if j >= 0 {
			seg, p = p[:j], p[j+1:]
		} else {
			p = nil
		}
		if !w.cut {
			if room := MaxLogLine - len(w.buf); len(seg) > room {
				w.buf = append(w.buf, seg[:room]...)
				w.cut = true
			} else {
				w.buf = append(w.buf, seg...)
			}
		}
		if j >= 0 {
			w.line()
		}
	}
	return n, nil
}

// flush emits a pending partial line; called when each guest call returns,
// so output is attributed to the call that wrote it.
func (w *lineWriter) flush() {
	if len(w.buf) > 0 || w.cut {
		w.line()
	}
}

func (w *lineWriter) line() {
	b := cutLine(w.buf)
	w.buf, w.cut = w.buf[:0], false
	if w.stderr {
		w.inst.noteStderr(b)
	}
	w.inst.guestLog(w.level, b)
}

// noteStderr keeps what ExitError.Stderr reports.
func (i *Instance) noteStderr(line []byte) {
	if len(bytes.TrimSpace(line)) == 0 {
		return
	}
	if i.stderrPanic == "" && (bytes.HasPrefix(line, []byte("panic: ")) || bytes.HasPrefix(line, []byte("fatal error: "))) {
		i.stderrPanic = string(line)
	}
	i.stderrLast = string(line)
}

func (i *Instance) stderrSummary() string {
	s := i.stderrPanic
	if s == "" {
		s = i.stderrLast
	}
	return strings.TrimSpace(s)
}

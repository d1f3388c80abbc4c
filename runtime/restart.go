package runtime

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Failure is one task failure of a job, kept in its failure history.
type Failure struct {
	Time    time.Time
	Attempt int    // the attempt that failed, from 1
	Task    string // the task that failed first, when known
	Err     error
}

// JobFailedError ends a job whose restart strategy gave up: it carries
// every failure of the run.
type JobFailedError struct {
	Reason  string
	History []Failure
}

func (e *JobFailedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "job failed: %s; %d failure(s):", e.Reason, len(e.History))
	for _, f := range e.History {
		fmt.Fprintf(&b, "\n  %s attempt %d: %v", f.Time.Format(time.RFC3339Nano), f.Attempt, f.Err)
	}
	return b.String()
}

// Unwrap returns the last failure.
func (e *JobFailedError) Unwrap() error {
	if len(e.History) == 0 {
		return nil
	}
	return e.History[len(e.History)-1].Err
}

// permanentError marks a failure no restart can fix (a savepoint whose
// state the job cannot take): the job fails at once.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return &permanentError{err} }

func isPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// restartStrategy decides whether and when to restart after a failure:
// fixed delay with a bounded number of consecutive attempts, or
// exponential back-off; either with a failure-rate limit (Flink's
// failure-rate strategy folded in).
type restartStrategy struct {
	spec     RestartSpec
	failures []time.Time // within the failure-rate window
	streak   int         // restarts since the last attempt that made progress
	delay    time.Duration
}

func newRestartStrategy(spec RestartSpec) *restartStrategy {
	return &restartStrategy{spec: spec, delay: time.Duration(spec.Delay)}
}

// progress tells the strategy that an attempt completed a checkpoint: the
// consecutive-attempts count and the back-off start over.
func (r *restartStrategy) progress() {
	r.streak = 0
	r.delay = time.Duration(r.spec.Delay)
}

// next records a failure at now and returns the delay before the restart,
// or ok=false and why the job must fail.
func (r *restartStrategy) next(now time.Time) (time.Duration, bool, string) {
	r.streak++
	if r.spec.MaxFailures > 0 {
		window := time.Duration(r.spec.FailureInterval)
		keep := r.failures[:0]
		for _, t := range r.failures {
			if now.Sub(t) < window {
				keep = append(keep, t)
			}
		}
		r.failures = append(keep, now)
		if len(r.failures) > r.spec.MaxFailures {
			return 0, false, fmt.Sprintf("%d failures within %v (restart.maxFailures is %d)",
				len(r.failures), window, r.spec.MaxFailures)
		}
	}
	switch r.spec.Strategy {
	case RestartFixed:
		if r.streak > r.spec.Attempts {
			return 0, false, fmt.Sprintf("%d restarts in a row without a completed checkpoint (restart.attempts is %d)",
				r.streak-1, r.spec.Attempts)
		}
		return time.Duration(r.spec.Delay), true, ""
	case RestartExponential:
		if r.spec.Attempts > 0 && r.streak > r.spec.Attempts {
			return 0, false, fmt.Sprintf("%d restarts in a row without a completed checkpoint (restart.attempts is %d)",
				r.streak-1, r.spec.Attempts)
		}
		d := r.delay
		r.delay = min(time.Duration(float64(r.delay)*r.spec.Multiplier), time.Duration(r.spec.MaxDelay))
		return d, true, ""
	}
	return 0, false, "restart.strategy is none"
}

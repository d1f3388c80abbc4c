package tenants

import (
	"sync/atomic"
	"time"
)

// limiter is one tenant's request rate limit, a token bucket in its GCRA
// form: instead of a token count refilled over time it keeps one number, the
// theoretical arrival time (tat) at which the bucket would be full again, in
// Unix nanoseconds of the service's clock. One int64 means a request is one
// compare-and-swap: no lock, no allocation.
type limiter struct{ tat atomic.Int64 }

// Allow takes one request from the tenant's token bucket: requests_per_second
// refill it, request_burst is its size, and it starts full. When the bucket
// is empty it returns false and how long until a token is available. Quota
// changes apply from the next call, without resetting the bucket.
//
// Admin keys (tenant "") are not limited, and neither is an unknown tenant:
// it has no keys, so its requests fail authentication before they get here.
func (s *Service) Allow(tenant string) (ok bool, retryAfter time.Duration) {
	if tenant == "" {
		return true, 0
	}
	e, found := s.snap.Load().tenants[tenant]
	if !found {
		return true, 0
	}
	now := s.now().UnixNano()
	for {
		tat := e.limiter.tat.Load()
		if tat > now+e.window {
			// Only a clock that stepped back, or a quota lowered, puts tat
			// beyond a full window: treat the bucket as just empty rather
			// than refusing for as long as the clock stepped back.
			e.limiter.tat.CompareAndSwap(tat, now+e.window)
			continue
		}
		// Each request moves tat one interval on; a request is allowed while
		// tat stays within window (burst intervals) of now, that is while
		// the bucket holds a token.
		next := max(tat, now) + e.interval
		if over := next - now - e.window; over > 0 {
			return false, time.Duration(over)
		}
		if e.limiter.tat.CompareAndSwap(tat, next) {
			return true, 0
		}
	}
}

package tenants

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// step is one Allow call at the fake clock's time after advancing it.
type step struct {
	advance    time.Duration
	tenant     string
	ok         bool
	retryAfter time.Duration
}

func runSteps(t *testing.T, f *fixture, steps []step) {
	t.Helper()
	for i, s := range steps {
		f.clk.Advance(s.advance)
		ok, retry := f.svc.Allow(s.tenant)
		if ok != s.ok || retry != s.retryAfter {
			t.Fatalf("step %d (%s at +%v): Allow = %v, %v; want %v, %v", i, s.tenant, f.clk.Now().Sub(t0), ok, retry, s.ok, s.retryAfter)
		}
	}
}

func TestAllowBurstRefillAndRetryAfter(t *testing.T) {
	f := newFixture(t)
	// 10 per second: a token every 100ms, at most 3 at once.
	f.mustTenant(t, "acme", &Quotas{RequestsPerSecond: 10, RequestBurst: 3})
	ms := time.Millisecond
	runSteps(t, f, []step{
		// The bucket starts full: the burst passes, the next waits a token.
		{0, "acme", true, 0},
		{0, "acme", true, 0},
		{0, "acme", true, 0},
		{0, "acme", false, 100 * ms},
		{40 * ms, "acme", false, 60 * ms}, // refusals take nothing
		{59 * ms, "acme", false, 1 * ms},
		{1 * ms, "acme", true, 0}, // one token after 100ms
		{0, "acme", false, 100 * ms},
		// Idle for a long time: the bucket fills up to the burst, no more.
		{time.Hour, "acme", true, 0},
		{0, "acme", true, 0},
		{0, "acme", true, 0},
		{0, "acme", false, 100 * ms},
		// A steady 10/s is always allowed.
		{100 * ms, "acme", true, 0},
		{100 * ms, "acme", true, 0},
		{100 * ms, "acme", true, 0},
		{100 * ms, "acme", true, 0},
		{0, "acme", false, 100 * ms},
		// Half a refill and a half: 250ms gives two tokens and half a third.
		{250 * ms, "acme", true, 0},
		{0, "acme", true, 0},
		{0, "acme", false, 50 * ms},
	})
}

func TestAllowPerTenant(t *testing.T) {
	f := newFixture(t)
	f.mustTenant(t, "a", &Quotas{RequestsPerSecond: 1, RequestBurst: 1})
	f.mustTenant(t, "b", &Quotas{RequestsPerSecond: 2, RequestBurst: 2})
	runSteps(t, f, []step{
		{0, "a", true, 0},
		{0, "a", false, time.Second},
		{0, "b", true, 0}, // a's refusal does not touch b
		{0, "b", true, 0},
		{0, "b", false, 500 * time.Millisecond},
		{0, "", true, 0},    // admin keys are not limited
		{0, "zzz", true, 0}, // nor unknown tenants (they have no keys)
		{500 * time.Millisecond, "b", true, 0},
		{0, "a", false, 500 * time.Millisecond},
	})
}

func TestAllowQuotaChange(t *testing.T) {
	f := newFixture(t)
	f.mustTenant(t, "acme", &Quotas{RequestsPerSecond: 1, RequestBurst: 2})
	runSteps(t, f, []step{
		{0, "acme", true, 0},
		{0, "acme", true, 0},
		{0, "acme", false, time.Second},
	})
	// A bigger burst applies at the next call, the bucket not reset: the two
	// tokens taken stay taken, the third is new room.
	if _, err := f.svc.SetQuotas("acme", Quotas{RequestsPerSecond: 1, RequestBurst: 3}); err != nil {
		t.Fatal(err)
	}
	runSteps(t, f, []step{
		{0, "acme", true, 0},
		{0, "acme", false, time.Second},
	})
	// A faster rate and a smaller burst: the 3s of debt at the old rate is
	// clamped to one full window of the new quota, so the wait is one new
	// interval (250ms), not the old debt.
	if _, err := f.svc.SetQuotas("acme", Quotas{RequestsPerSecond: 4, RequestBurst: 1}); err != nil {
		t.Fatal(err)
	}
	runSteps(t, f, []step{
		{0, "acme", false, 250 * time.Millisecond},
		{250 * time.Millisecond, "acme", true, 0},
		{0, "acme", false, 250 * time.Millisecond},
	})
	// Deleting and recreating a tenant starts a fresh bucket.
	if err := f.svc.DeleteTenant("acme"); err != nil {
		t.Fatal(err)
	}
	f.mustTenant(t, "acme", &Quotas{RequestsPerSecond: 4, RequestBurst: 1})
	runSteps(t, f, []step{{0, "acme", true, 0}})
}

// TestAllowClockStepsBack: a wall clock stepped back must not lock a tenant
// out for as long as the step.
func TestAllowClockStepsBack(t *testing.T) {
	f := newFixture(t)
	f.mustTenant(t, "acme", &Quotas{RequestsPerSecond: 10, RequestBurst: 2})
	var now atomic.Int64
	now.Store(t0.Add(time.Hour).UnixNano())
	svc, err := New(f.store, func() time.Time { return time.Unix(0, now.Load()) })
	if err != nil {
		t.Fatal(err)
	}
	svc.Allow("acme")
	svc.Allow("acme")
	now.Store(t0.UnixNano()) // an hour back
	if ok, retry := svc.Allow("acme"); ok || retry != 100*time.Millisecond {
		t.Fatalf("after stepping back: %v, %v; want a refusal of one interval", ok, retry)
	}
	now.Add(int64(100 * time.Millisecond))
	if ok, _ := svc.Allow("acme"); !ok {
		t.Fatal("refused one interval after stepping back")
	}
}

// TestAllowHammer: many goroutines on one bucket at one instant get exactly
// the burst, never more (run with -race).
func TestAllowHammer(t *testing.T) {
	f := newFixture(t)
	const burst = 1000
	f.mustTenant(t, "acme", &Quotas{RequestsPerSecond: 100, RequestBurst: burst})
	f.mustTenant(t, "beta", &Quotas{RequestsPerSecond: 100, RequestBurst: burst})
	for round := range 3 {
		var allowed atomic.Int64
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tenant := "acme"
				if g%4 == 3 {
					tenant = "beta" // a neighbour hammering its own bucket
				}
				for range 500 {
					if ok, _ := f.svc.Allow(tenant); ok && tenant == "acme" {
						allowed.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		// Round 0 starts full; later rounds refill the whole bucket.
		if got := allowed.Load(); got != burst {
			t.Fatalf("round %d: %d allowed, want exactly %d", round, got, burst)
		}
		f.clk.Advance(10 * time.Second)
	}
}

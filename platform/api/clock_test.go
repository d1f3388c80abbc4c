package api_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/weirstream/weir/platform"
	"github.com/weirstream/weir/runtime/clock"
)

// TestKeyExpiry runs on a platform of its own with a fake clock (it runs no
// jobs, which would wait on that clock): a key works until its expires_at
// and is 401 key-expired from that instant on, on every route.
func TestKeyExpiry(t *testing.T) {
	start := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	clk := clock.NewFake(start)
	s := newServer(t, platform.Options{Clock: clk})
	s.newTenant(t, "exp", nil)

	expires := start.Add(time.Hour)
	token, id := s.newKey(t, "exp", "developer", &expires)
	var me struct {
		KeyID     string    `json:"key_id"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	s.get(t, token, "/v1/me").ok(t, http.StatusOK, &me)
	if me.KeyID != id || !me.ExpiresAt.Equal(expires) {
		t.Fatalf("me %+v, want key %s expiring at %v", me, id, expires)
	}
	clk.Advance(time.Hour - time.Nanosecond)
	s.get(t, token, "/v1/modules").want(t, http.StatusOK)
	clk.Advance(time.Nanosecond)
	for _, p := range []string{"/v1/me", "/v1/modules", "/v1/quotas"} {
		s.get(t, token, p).problem(t, http.StatusUnauthorized, "key-expired")
	}
	// The key is still listed, with its expiry.
	var keys page[struct {
		ID        string     `json:"id"`
		ExpiresAt *time.Time `json:"expires_at"`
	}]
	s.get(t, s.admin, "/v1/tenants/exp/keys").ok(t, http.StatusOK, &keys)
	found := false
	for _, k := range keys.Items {
		found = found || k.ID == id && k.ExpiresAt != nil && k.ExpiresAt.Equal(expires)
	}
	if !found {
		t.Fatalf("keys %+v lack %s with its expiry", keys.Items, id)
	}
	// A new key cannot expire in the past (of the platform's clock).
	past := clk.Now().Add(-time.Second)
	p := s.send(t, "POST", s.admin, "/v1/tenants/exp/keys", map[string]any{"name": "x", "role": "viewer", "expires_at": past.Format(time.RFC3339)}).
		problem(t, http.StatusBadRequest, "invalid-request")
	if p.Detail == "" {
		t.Fatal("no detail for an expiry in the past")
	}
}

// TestRateLimit checks the requests_per_second quota on a fake clock: the
// bucket holds request_burst requests, then answers 429 rate-limited with
// Retry-After and the quota named, refills at the rate, and limits each
// tenant on its own. A refused request does nothing.
func TestRateLimit(t *testing.T) {
	clk := clock.NewFake(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	s := newServer(t, platform.Options{Clock: clk})
	limited := s.newTenant(t, "slow", map[string]any{"requests_per_second": 0.5, "request_burst": 3})
	other := s.newTenant(t, "other", map[string]any{"requests_per_second": 0.5, "request_burst": 3})

	for range 3 {
		s.get(t, limited.viewer, "/v1/me").want(t, http.StatusOK)
	}
	a := s.do(t, req{method: "POST", path: "/v1/modules/counter", token: limited.dev, ctype: "application/wasm", body: fx.modules["counter"]})
	p := a.problem(t, http.StatusTooManyRequests, "rate-limited")
	if p.Quota != "requests_per_second" {
		t.Fatalf("%v: quota %q, want requests_per_second", a, p.Quota)
	}
	// One request per 2 s refills the bucket: the next is due in 2 s.
	if ra := a.Header.Get("Retry-After"); ra != "2" {
		t.Fatalf("Retry-After %q, want 2", ra)
	}
	// The bucket is the tenant's, not the key's, and not another tenant's.
	s.get(t, limited.owner, "/v1/me").problem(t, http.StatusTooManyRequests, "rate-limited")
	s.get(t, other.viewer, "/v1/me").want(t, http.StatusOK)
	// Admin requests are not limited; the refused upload stored nothing.
	var tn struct {
		Usage struct {
			Modules int `json:"modules"`
		} `json:"usage"`
	}
	s.get(t, s.admin, "/v1/tenants/slow").ok(t, http.StatusOK, &tn)
	if tn.Usage.Modules != 0 {
		t.Fatalf("a rate-limited upload stored a module: usage %+v", tn.Usage)
	}

	clk.Advance(2*time.Second - time.Millisecond)
	a = s.get(t, limited.viewer, "/v1/me")
	a.problem(t, http.StatusTooManyRequests, "rate-limited")
	if ra, _ := strconv.Atoi(a.Header.Get("Retry-After")); ra != 1 {
		t.Fatalf("Retry-After %q a millisecond before the refill, want 1 (rounded up)", a.Header.Get("Retry-After"))
	}
	clk.Advance(time.Millisecond)
	s.get(t, limited.viewer, "/v1/me").want(t, http.StatusOK)
	s.get(t, limited.viewer, "/v1/me").problem(t, http.StatusTooManyRequests, "rate-limited")

	// Raising the quota takes effect at once: the emptied bucket is cut
	// to the new size (by the first request after the change, which may
	// itself be refused: the bucket is empty), and refills at the new
	// rate.
	s.send(t, "PUT", s.admin, "/v1/tenants/slow/quotas", unlimited).want(t, http.StatusOK)
	if a := s.get(t, limited.viewer, "/v1/me"); a.Status != http.StatusOK {
		a.problem(t, http.StatusTooManyRequests, "rate-limited")
	}
	clk.Advance(time.Millisecond)
	for range 50 {
		s.get(t, limited.viewer, "/v1/me").want(t, http.StatusOK)
	}
}

package console_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/weirstream/weir/console"
	"github.com/weirstream/weir/platform"
	"github.com/weirstream/weir/platform/client"
	"github.com/weirstream/weir/platform/client/clienttest"
	"github.com/weirstream/weir/runtime/clock"
	"github.com/weirstream/weir/tenants"
)

// browser is an HTTP client with a cookie jar that does not follow
// redirects (tests look at them).
type browser struct {
	t    *testing.T
	base string
	http *http.Client
}

func newBrowser(t *testing.T, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, http: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(method, path string, form url.Values) (int, http.Header, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.http.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(out)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf scrapes the form token from a page.
func (b *browser) csrf(path string) string {
	b.t.Helper()
	code, _, page := b.do("GET", path, nil)
	m := csrfRE.FindStringSubmatch(page)
	if code != 200 || m == nil {
		b.t.Fatalf("GET %s: %d, no csrf token in the page", path, code)
	}
	return m[1]
}

// TestSessions: sign-in with a key, the cookie's attributes, redirects for
// signed-out pages (and back), CSRF on sign-out, a revoked key ends the
// session, sessions expire on the platform's clock.
func TestSessions(t *testing.T) {
	fake := clock.NewFake(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	srv := clienttest.Start(t, platform.Options{Clock: fake})
	ctx := context.Background()
	admin := client.New(srv.URL, srv.AdminToken, nil)
	if _, err := admin.CreateTenant(ctx, "acme", nil); err != nil {
		t.Fatal(err)
	}
	created, err := admin.CreateKey(ctx, "acme", "owner key", tenants.RoleOwner, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, srv.URL)

	// Signed out: pages redirect to the sign-in page, remembering where to.
	code, h, _ := b.do("GET", "/jobs?x=1", nil)
	if code != http.StatusSeeOther || h.Get("Location") != "/signin?next="+url.QueryEscape("/jobs?x=1") {
		t.Fatalf("signed-out GET /jobs: %d to %q", code, h.Get("Location"))
	}
	if code, _, page := b.do("GET", "/signin", nil); code != 200 || !strings.Contains(page, `<label for="token">API key</label>`) {
		t.Fatalf("sign-in page: %d", code)
	}
	// A wrong key is refused, naming why, and starts no session.
	code, _, page := b.do("POST", "/signin", url.Values{"token": {"weir_nope"}})
	if code != http.StatusUnauthorized || !strings.Contains(page, "Sign-in failed") {
		t.Fatalf("wrong key: %d", code)
	}
	// The right key signs in and goes back to the page asked for; an
	// off-site "next" is ignored.
	code, h, _ = b.do("POST", "/signin", url.Values{"token": {created.Token}, "next": {"//evil.example/x"}})
	if code != http.StatusSeeOther || h.Get("Location") != "/jobs" {
		t.Fatalf("sign-in: %d to %q", code, h.Get("Location"))
	}
	ck := h.Get("Set-Cookie")
	for _, want := range []string{console.CookieName + "=", "HttpOnly", "SameSite=Lax", "Path=/"} {
		if !strings.Contains(ck, want) {
			t.Errorf("session cookie %q lacks %s", ck, want)
		}
	}
	if strings.Contains(ck, created.Token) {
		t.Fatal("the session cookie holds the API key")
	}
	if code, _, page := b.do("GET", "/signin?next=/jobs", nil); code != 200 || strings.Contains(page, created.Token) {
		t.Fatalf("a page shows the key (%d)", code)
	}
	// Sign-out needs the CSRF token.
	if code, _, _ := b.do("POST", "/signout", url.Values{}); code != http.StatusForbidden {
		t.Fatalf("sign-out without a CSRF token: %d, want 403", code)
	}
	tok := b.csrf("/tenant")
	if code, h, _ := b.do("POST", "/signout", url.Values{"csrf": {tok}}); code != http.StatusSeeOther || h.Get("Location") != "/signin" {
		t.Fatalf("sign-out: %d to %q", code, h.Get("Location"))
	}
	if code, _, _ := b.do("GET", "/tenant", nil); code != http.StatusSeeOther {
		t.Fatalf("after sign-out GET /tenant: %d, want a redirect", code)
	}

	// A revoked key ends its session at the next page.
	b.do("POST", "/signin", url.Values{"token": {created.Token}})
	if err := admin.RevokeKey(ctx, "acme", created.Key.ID); err != nil {
		t.Fatal(err)
	}
	if code, h, _ := b.do("GET", "/tenant", nil); code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/signin") {
		t.Fatalf("revoked key: %d to %q, want the sign-in page", code, h.Get("Location"))
	}

	// Sessions expire on the platform's clock.
	other, err := admin.CreateKey(ctx, "acme", "viewer", tenants.RoleViewer, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.do("POST", "/signin", url.Values{"token": {other.Token}})
	if code, _, _ := b.do("GET", "/tenant", nil); code != 200 {
		t.Fatalf("signed in: GET /tenant %d", code)
	}
	fake.Advance(12*time.Hour + time.Second)
	if code, _, _ := b.do("GET", "/tenant", nil); code != http.StatusSeeOther {
		t.Fatalf("after 12 h: GET /tenant %d, want a redirect to sign in", code)
	}
}

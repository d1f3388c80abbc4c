package tenants

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

var tokenRE = regexp.MustCompile(`^weir_([a-z2-7]{12})_([A-Za-z0-9_-]{43})$`)

func TestCreateKeyTokenAndRecord(t *testing.T) {
	f := newFixture(t)
	f.mustTenant(t, "acme", nil)
	exp := t0.Add(time.Hour)
	k, token, err := f.svc.CreateKey("acme", RoleDeveloper, "ci deploy", &exp)
	if err != nil {
		t.Fatal(err)
	}
	m := tokenRE.FindStringSubmatch(token)
	if m == nil || m[1] != k.ID {
		t.Fatalf("token %q does not match the format with id %q", token, k.ID)
	}
	if k.Tenant != "acme" || k.Role != RoleDeveloper || k.Name != "ci deploy" || !k.CreatedAt.Equal(t0) ||
		k.ExpiresAt == nil || !k.ExpiresAt.Equal(exp) || k.RevokedAt != nil {
		t.Fatalf("key = %+v", k)
	}
	// The store holds the SHA-256 of the secret's bytes, never the secret.
	raw, ok, err := f.store.Get("keys/" + k.ID)
	if err != nil || !ok {
		t.Fatalf("record: ok=%v err=%v", ok, err)
	}
	secret, err := base64.RawURLEncoding.DecodeString(m[2])
	if err != nil || len(secret) != 32 {
		t.Fatalf("secret %q: %d bytes, %v", m[2], len(secret), err)
	}
	sum := sha256.Sum256(secret)
	var rec map[string]any
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	if rec["secret_sha256"] != hex.EncodeToString(sum[:]) {
		t.Fatalf("stored hash %v, want sha256 of the secret", rec["secret_sha256"])
	}
	if strings.Contains(string(raw), m[2]) {
		t.Fatal("the store holds the secret")
	}
	// The API's Key never shows a hash.
	b, _ := json.Marshal(k)
	want := `{"id":"` + k.ID + `","tenant":"acme","role":"developer","name":"ci deploy",` +
		`"created_at":"2026-03-01T12:00:00Z","expires_at":"2026-03-01T13:00:00Z"}`
	if string(b) != want {
		t.Fatalf("Key JSON\n got %s\nwant %s", b, want)
	}
}

func TestAuthenticate(t *testing.T) {
	f := newFixture(t)
	f.mustTenant(t, "acme", nil)
	f.mustTenant(t, "gone", nil)
	exp := t0.Add(time.Hour)
	owner, ownerTok := f.mustKey(t, "acme", RoleOwner, nil)
	expiring, expiringTok := f.mustKey(t, "acme", RoleViewer, &exp)
	revoked, revokedTok := f.mustKey(t, "acme", RoleDeveloper, nil)
	admin, adminTok := f.mustKey(t, "", RoleAdmin, nil)
	_, goneTok := f.mustKey(t, "gone", RoleOwner, nil)
	if err := f.svc.RevokeKey("acme", revoked.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.DeleteTenant("gone"); err != nil {
		t.Fatal(err)
	}
	// A token with another key's secret, and one with the secret's first
	// character changed: both well formed, both wrong.
	wrongSecret := tokenPrefix + owner.ID + adminTok[len(tokenPrefix)+keyIDLen:]
	flipped := []byte(ownerTok)
	if flipped[18] == 'A' {
		flipped[18] = 'B'
	} else {
		flipped[18] = 'A'
	}
	unknownID := tokenPrefix + "zzzzzzzzzzzz" + ownerTok[len(tokenPrefix)+keyIDLen:]

	check := func(t *testing.T, cases []struct {
		name, token string
		want        Principal
		err         error
	}) {
		for _, tc := range cases {
			p, err := f.svc.Authenticate(tc.token)
			if tc.err != nil {
				if !errors.Is(err, tc.err) || !errors.Is(err, ErrUnauthenticated) {
					t.Errorf("%s: err %v, want %v", tc.name, err, tc.err)
				}
				if tc.err == ErrUnauthenticated && (errors.Is(err, ErrRevoked) || errors.Is(err, ErrExpired) || err.Error() != "unauthenticated") {
					t.Errorf("%s: %q reveals more than unauthenticated", tc.name, err)
				}
				if p != (Principal{}) {
					t.Errorf("%s: principal %+v with an error", tc.name, p)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
				continue
			}
			if p.KeyID != tc.want.KeyID || p.Tenant != tc.want.Tenant || p.Role != tc.want.Role ||
				(p.ExpiresAt == nil) != (tc.want.ExpiresAt == nil) || p.ExpiresAt != nil && !p.ExpiresAt.Equal(*tc.want.ExpiresAt) {
				t.Errorf("%s: principal %+v, want %+v", tc.name, p, tc.want)
			}
		}
	}
	type tcase = struct {
		name, token string
		want        Principal
		err         error
	}
	check(t, []tcase{
		{"owner", ownerTok, Principal{KeyID: owner.ID, Tenant: "acme", Role: RoleOwner}, nil},
		{"admin", adminTok, Principal{KeyID: admin.ID, Role: RoleAdmin}, nil},
		{"expiring, in force", expiringTok, Principal{KeyID: expiring.ID, Tenant: "acme", Role: RoleViewer, ExpiresAt: &exp}, nil},
		{"revoked", revokedTok, Principal{}, ErrRevoked},
		{"deleted tenant", goneTok, Principal{}, ErrUnauthenticated},
		{"wrong secret", wrongSecret, Principal{}, ErrUnauthenticated},
		{"one character changed", string(flipped), Principal{}, ErrUnauthenticated},
		{"unknown id", unknownID, Principal{}, ErrUnauthenticated},
		{"empty", "", Principal{}, ErrUnauthenticated},
		{"garbage", "hello", Principal{}, ErrUnauthenticated},
		{"bearer prefix", "Bearer " + ownerTok, Principal{}, ErrUnauthenticated},
		{"truncated", ownerTok[:len(ownerTok)-1], Principal{}, ErrUnauthenticated},
		{"extended", ownerTok + "A", Principal{}, ErrUnauthenticated},
		{"other prefix", "wier_" + ownerTok[5:], Principal{}, ErrUnauthenticated},
		{"no separator", ownerTok[:17] + "x" + ownerTok[18:], Principal{}, ErrUnauthenticated},
		{"not base64", ownerTok[:18] + strings.Repeat("!", 43), Principal{}, ErrUnauthenticated},
		{"padded", ownerTok[:len(ownerTok)-1] + "=", Principal{}, ErrUnauthenticated},
	})
	// Expiry follows the injected clock: in force until the instant of
	// expiry, expired from then on.
	f.clk.Advance(time.Hour - time.Nanosecond)
	check(t, []tcase{{"just before expiry", expiringTok, Principal{KeyID: expiring.ID, Tenant: "acme", Role: RoleViewer, ExpiresAt: &exp}, nil}})
	f.clk.Advance(time.Nanosecond)
	check(t, []tcase{
		{"at expiry", expiringTok, Principal{}, ErrExpired},
		{"owner still", ownerTok, Principal{KeyID: owner.ID, Tenant: "acme", Role: RoleOwner}, nil},
	})
	// Everything holds after a restart.
	f.reopen(t)
	check(t, []tcase{
		{"owner after reopen", ownerTok, Principal{KeyID: owner.ID, Tenant: "acme", Role: RoleOwner}, nil},
		{"admin after reopen", adminTok, Principal{KeyID: admin.ID, Role: RoleAdmin}, nil},
		{"revoked after reopen", revokedTok, Principal{}, ErrRevoked},
		{"expired after reopen", expiringTok, Principal{}, ErrExpired},
		{"deleted tenant after reopen", goneTok, Principal{}, ErrUnauthenticated},
	})
}

// TestNonCanonicalSecret: a secret spelled with different trailing bits
// decodes to the same bytes under lax base64, so it must be refused.
func TestNonCanonicalSecret(t *testing.T) {
	f := newFixture(t)
	_, token := f.mustKey(t, "", RoleAdmin, nil)
	last := token[len(token)-1]
	// 43 characters carry 258 bits; the last character's low 2 bits are
	// padding. Flip one of them.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	alt := token[:len(token)-1] + string(alphabet[strings.IndexByte(alphabet, last)^1])
	lax, err := base64.RawURLEncoding.DecodeString(alt[18:])
	orig, _ := base64.RawURLEncoding.DecodeString(token[18:])
	if err != nil || string(lax) != string(orig) {
		t.Fatalf("test premise: lax decoding of %q differs (%v)", alt, err)
	}
	if _, err := f.svc.Authenticate(alt); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("non-canonical secret: %v", err)
	}
}

func TestCreateKeyValidation(t *testing.T) {
	f := newFixture(t)
	f.mustTenant(t, "acme", nil)
	past := t0.Add(-time.Second)
	now := t0
	future := t0.Add(time.Second)
	for _, tc := range []struct {
		name   string
		tenant string
		role   Role
		key    string
		exp    *time.Time
		err    error
	}{
		{"owner", "acme", RoleOwner, "k", nil, nil},
		{"developer", "acme", RoleDeveloper, "", nil, nil},
		{"viewer expiring", "acme", RoleViewer, "k", &future, nil},
		{"admin", "", RoleAdmin, "root", nil, nil},
		{"100 characters", "acme", RoleViewer, strings.Repeat("é", 100), nil, nil},
		{"tenant admin", "acme", RoleAdmin, "k", nil, ErrInvalid},
		{"admin key not admin", "", RoleOwner, "k", nil, ErrInvalid},
		{"unknown role", "acme", Role("root"), "k", nil, ErrInvalid},
		{"empty role", "acme", "", "k", nil, ErrInvalid},
		{"unknown tenant", "nope", RoleOwner, "k", nil, ErrNotFound},
		{"expired", "acme", RoleOwner, "k", &past, ErrInvalid},
		{"expires now", "acme", RoleOwner, "k", &now, ErrInvalid},
		{"101 characters", "acme", RoleOwner, strings.Repeat("x", 101), nil, ErrInvalid},
		{"control character", "acme", RoleOwner, "a\nb", nil, ErrInvalid},
		{"not UTF-8", "acme", RoleOwner, "\xff", nil, ErrInvalid},
	} {
		k, token, err := f.svc.CreateKey(tc.tenant, tc.role, tc.key, tc.exp)
		if tc.err == nil {
			if err != nil || token == "" || k.ID == "" {
				t.Errorf("%s: %+v %q %v", tc.name, k, token, err)
			}
			continue
		}
		if !errors.Is(err, tc.err) || token != "" {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.err)
		}
	}
}

func TestKeysListGetRevoke(t *testing.T) {
	f := newFixture(t)
	f.mustTenant(t, "acme", nil)
	f.mustTenant(t, "beta", nil)
	a1, _ := f.mustKey(t, "acme", RoleOwner, nil)
	a2, _ := f.mustKey(t, "acme", RoleViewer, nil)
	b1, b1Tok := f.mustKey(t, "beta", RoleOwner, nil)
	adm, _ := f.mustKey(t, "", RoleAdmin, nil)

	ids := func(keys []Key) []string {
		var out []string
		for _, k := range keys {
			out = append(out, k.ID)
		}
		return out
	}
	if got, want := ids(f.svc.Keys("acme")), sortedStrings(a1.ID, a2.ID); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("Keys(acme) = %v, want %v", got, want)
	}
	if got := ids(f.svc.Keys("")); len(got) != 1 || got[0] != adm.ID {
		t.Fatalf("Keys(\"\") = %v", got)
	}
	if got := f.svc.Keys("nope"); len(got) != 0 {
		t.Fatalf("Keys(nope) = %v", got)
	}
	if k, err := f.svc.Key("acme", a1.ID); err != nil || k.ID != a1.ID || k.Role != RoleOwner {
		t.Fatalf("Key(acme, a1) = %+v, %v", k, err)
	}
	// Another tenant's key does not exist for the caller.
	for _, tc := range []struct{ tenant, id string }{
		{"acme", b1.ID}, {"", b1.ID}, {"acme", adm.ID}, {"beta", "zzzzzzzzzzzz"},
	} {
		if _, err := f.svc.Key(tc.tenant, tc.id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Key(%q, %q) = %v, want ErrNotFound", tc.tenant, tc.id, err)
		}
		if err := f.svc.RevokeKey(tc.tenant, tc.id); !errors.Is(err, ErrNotFound) {
			t.Errorf("RevokeKey(%q, %q) = %v, want ErrNotFound", tc.tenant, tc.id, err)
		}
	}
	if _, err := f.svc.Authenticate(b1Tok); err != nil {
		t.Fatalf("beta's key after acme tried to revoke it: %v", err)
	}

	f.clk.Advance(time.Minute)
	if err := f.svc.RevokeKey("beta", b1.ID); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(time.Minute)
	if err := f.svc.RevokeKey("beta", b1.ID); err != nil {
		t.Fatalf("second revoke: %v", err)
	}
	k, _ := f.svc.Key("beta", b1.ID)
	if k.RevokedAt == nil || !k.RevokedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("revoked_at = %v, want the first revocation's time", k.RevokedAt)
	}
	// Returned keys are copies: changing one does not change the service.
	*k.RevokedAt = time.Time{}
	if k2, _ := f.svc.Key("beta", b1.ID); !k2.RevokedAt.Equal(t0.Add(time.Minute)) {
		t.Fatal("caller changed the service's key")
	}
	f.reopen(t)
	if k2, _ := f.svc.Key("beta", b1.ID); k2.RevokedAt == nil || !k2.RevokedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("revocation lost on reopen: %+v", k2)
	}
}

func TestHasAdminKey(t *testing.T) {
	f := newFixture(t)
	f.mustTenant(t, "acme", nil)
	if f.svc.HasAdminKey() {
		t.Fatal("empty service has an admin key")
	}
	f.mustKey(t, "acme", RoleOwner, nil)
	if f.svc.HasAdminKey() {
		t.Fatal("an owner key counts as admin")
	}
	exp := t0.Add(time.Hour)
	f.mustKey(t, "", RoleAdmin, &exp)
	if !f.svc.HasAdminKey() {
		t.Fatal("expiring admin key in force not seen")
	}
	f.clk.Advance(time.Hour)
	if f.svc.HasAdminKey() {
		t.Fatal("expired admin key counts")
	}
	k, _ := f.mustKey(t, "", RoleAdmin, nil)
	f.reopen(t)
	if !f.svc.HasAdminKey() {
		t.Fatal("admin key lost on reopen")
	}
	if err := f.svc.RevokeKey("", k.ID); err != nil {
		t.Fatal(err)
	}
	if f.svc.HasAdminKey() {
		t.Fatal("revoked admin key counts")
	}
}

// TestConcurrentKeys hammers authentication while keys are created and
// revoked and tenants change (run with -race).
func TestConcurrentKeys(t *testing.T) {
	f := newFixture(t)
	f.mustTenant(t, "acme", nil)
	_, stable := f.mustKey(t, "acme", RoleOwner, nil)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 4)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := f.svc.Authenticate(stable); err != nil {
					errs <- err
					return
				}
				f.svc.Allow("acme")
			}
		}()
	}
	for i := range 20 {
		k, tok, err := f.svc.CreateKey("acme", RoleViewer, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Authenticate(tok); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.RevokeKey("acme", k.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Authenticate(tok); !errors.Is(err, ErrRevoked) {
			t.Fatalf("revoked key %d: %v", i, err)
		}
		if _, err := f.svc.SetQuotas("acme", Quotas{RequestBurst: i + 1}); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatalf("stable key failed during writes: %v", err)
	default:
	}
}

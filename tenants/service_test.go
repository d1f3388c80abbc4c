package tenants

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestTenantCRUDAndReopen(t *testing.T) {
	f := newFixture(t)
	custom := Quotas{Slots: 2, Modules: 7}
	a := f.mustTenant(t, "acme", nil)
	f.clk.Advance(time.Minute)
	b := f.mustTenant(t, "beta-1", &custom)

	if a.ID != "acme" || !a.CreatedAt.Equal(t0) || a.Quotas != DefaultQuotas() {
		t.Fatalf("acme = %+v", a)
	}
	wantB := DefaultQuotas()
	wantB.Slots, wantB.Modules = 2, 7
	if !b.CreatedAt.Equal(t0.Add(time.Minute)) || b.Quotas != wantB {
		t.Fatalf("beta-1 = %+v", b)
	}
	if _, err := f.svc.CreateTenant("acme", nil); !errors.Is(err, ErrExists) {
		t.Fatalf("second acme: %v, want ErrExists", err)
	}
	if got, err := f.svc.Tenant("acme"); err != nil || !reflect.DeepEqual(got, a) {
		t.Fatalf("Tenant(acme) = %+v, %v", got, err)
	}
	if _, err := f.svc.Tenant("nope"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("Tenant(nope) = %v, want ErrNotFound naming it", err)
	}

	// SetQuotas: zero fields take their default, so this resets modules.
	c, err := f.svc.SetQuotas("beta-1", Quotas{Slots: 3})
	if err != nil {
		t.Fatal(err)
	}
	wantB.Slots, wantB.Modules = 3, DefaultQuotas().Modules
	if c.Quotas != wantB || !c.CreatedAt.Equal(b.CreatedAt) {
		t.Fatalf("after SetQuotas = %+v", c)
	}
	if _, err := f.svc.SetQuotas("beta-1", Quotas{MemoryPages: 1 << 20}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "memory_pages") {
		t.Fatalf("bad SetQuotas: %v", err)
	}
	if _, err := f.svc.SetQuotas("nope", Quotas{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("SetQuotas(nope): %v", err)
	}
	f.mustTenant(t, "0zed", nil)
	if err := f.svc.DeleteTenant("0zed"); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.DeleteTenant("0zed"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}

	before := f.svc.Tenants()
	if ids := tenantIDs(before); ids != "acme beta-1" {
		t.Fatalf("Tenants = %s", ids)
	}
	f.reopen(t)
	if after := f.svc.Tenants(); !reflect.DeepEqual(after, before) {
		t.Fatalf("after reopen\n got %+v\nwant %+v", after, before)
	}
	if got := keysIn(t, f.store, "tenants/"); fmt.Sprint(got) != "[tenants/acme tenants/beta-1]" {
		t.Fatalf("store holds %v", got)
	}
}

func tenantIDs(ts []Tenant) string {
	var ids []string
	for _, t := range ts {
		ids = append(ids, t.ID)
	}
	return strings.Join(ids, " ")
}

func TestTenantsSorted(t *testing.T) {
	f := newFixture(t)
	for _, id := range []string{"m", "a", "z9", "b_", "0"} {
		f.mustTenant(t, id, nil)
	}
	if got := tenantIDs(f.svc.Tenants()); got != "0 a b_ m z9" {
		t.Fatalf("Tenants = %s", got)
	}
}

func TestTenantIDValidation(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"a", true},
		{"0", true},
		{"acme-corp_2", true},
		{strings.Repeat("x", 63), true},
		{"", false},
		{strings.Repeat("x", 64), false},
		{"Acme", false},
		{"-acme", false},
		{"_acme", false},
		{"ac me", false},
		{"ac/me", false},
		{"..", false},
		{"acmé", false},
	} {
		_, err := f.svc.CreateTenant(tc.id, nil)
		if tc.ok != (err == nil) {
			t.Errorf("CreateTenant(%q) = %v, want ok=%v", tc.id, err, tc.ok)
		}
		if !tc.ok && !errors.Is(err, ErrInvalid) {
			t.Errorf("CreateTenant(%q) = %v, want ErrInvalid", tc.id, err)
		}
	}
}

func TestCreateTenantInvalidQuotas(t *testing.T) {
	f := newFixture(t)
	_, err := f.svc.CreateTenant("acme", &Quotas{Slots: -1, CallTimeout: Duration(time.Hour)})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	for _, field := range []string{"slots", "call_timeout"} {
		if !strings.Contains(err.Error(), "quota "+field+":") {
			t.Errorf("error %q does not name %s", err, field)
		}
	}
	if _, err := f.svc.Tenant("acme"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("invalid tenant was created: %v", err)
	}
}

// TestWriteThrough: a failed commit leaves memory as it was, and memory
// never holds what the store does not.
func TestWriteThrough(t *testing.T) {
	f := newFixture(t)
	kv := &failingKV{KV: f.store}
	svc, err := New(kv, f.clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateTenant("acme", nil); err != nil {
		t.Fatal(err)
	}
	k, token, err := svc.CreateKey("acme", RoleOwner, "k", nil)
	if err != nil {
		t.Fatal(err)
	}
	kv.fail = true
	if _, err := svc.CreateTenant("beta", nil); !errors.Is(err, errCommit) {
		t.Fatalf("CreateTenant: %v", err)
	}
	if _, err := svc.SetQuotas("acme", Quotas{Slots: 1}); !errors.Is(err, errCommit) {
		t.Fatalf("SetQuotas: %v", err)
	}
	if _, _, err := svc.CreateKey("acme", RoleViewer, "v", nil); !errors.Is(err, errCommit) {
		t.Fatalf("CreateKey: %v", err)
	}
	if err := svc.RevokeKey("acme", k.ID); !errors.Is(err, errCommit) {
		t.Fatalf("RevokeKey: %v", err)
	}
	if err := svc.DeleteTenant("acme"); !errors.Is(err, errCommit) {
		t.Fatalf("DeleteTenant: %v", err)
	}
	if got := tenantIDs(svc.Tenants()); got != "acme" {
		t.Fatalf("tenants after failures: %s", got)
	}
	if tn, _ := svc.Tenant("acme"); tn.Quotas != DefaultQuotas() {
		t.Fatalf("quotas changed by a failed commit: %+v", tn.Quotas)
	}
	if keys := svc.Keys("acme"); len(keys) != 1 || keys[0].RevokedAt != nil {
		t.Fatalf("keys after failures: %+v", keys)
	}
	if _, err := svc.Authenticate(token); err != nil {
		t.Fatalf("key stopped working after failed revoke/delete: %v", err)
	}
}

// TestDeleteTenantDeletesKeys: the tenant's keys go in the same commit, the
// other tenants' and the admin keys stay.
func TestDeleteTenantDeletesKeys(t *testing.T) {
	f := newFixture(t)
	f.mustTenant(t, "acme", nil)
	f.mustTenant(t, "beta", nil)
	_, acmeTok := f.mustKey(t, "acme", RoleOwner, nil)
	f.mustKey(t, "acme", RoleViewer, nil)
	beta, betaTok := f.mustKey(t, "beta", RoleOwner, nil)
	admin, _ := f.mustKey(t, "", RoleAdmin, nil)

	if err := f.svc.DeleteTenant("acme"); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprint(sortedStrings("keys/"+beta.ID, "keys/"+admin.ID))
	if got := fmt.Sprint(keysIn(t, f.store, "keys/")); got != want {
		t.Fatalf("store keys %s, want %s", got, want)
	}
	if _, err := f.svc.Authenticate(acmeTok); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("deleted tenant's key: %v", err)
	}
	if len(f.svc.Keys("acme")) != 0 {
		t.Fatal("deleted tenant still lists keys")
	}
	// A tenant of the same name later starts with no keys.
	f.mustTenant(t, "acme", nil)
	if _, err := f.svc.Authenticate(acmeTok); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("old key works for a new tenant of the same id: %v", err)
	}
	if _, err := f.svc.Authenticate(betaTok); err != nil {
		t.Fatal(err)
	}
}

func sortedStrings(s ...string) []string {
	if s[0] > s[1] {
		s[0], s[1] = s[1], s[0]
	}
	return s
}

// TestLoadIgnoresOtherRecords: other packages' records nested under a tenant
// are not tenants.
func TestLoadIgnoresOtherRecords(t *testing.T) {
	f := newFixture(t)
	f.mustTenant(t, "acme", nil)
	if err := f.store.Commit(map[string][]byte{"tenants/acme/modules/x": []byte("not json")}, nil); err != nil {
		t.Fatal(err)
	}
	f.reopen(t)
	if got := tenantIDs(f.svc.Tenants()); got != "acme" {
		t.Fatalf("tenants = %q", got)
	}
}

// TestLoadDefaultsNewQuotas: a record from before a quota existed (the field
// missing) loads with that quota's default.
func TestLoadDefaultsNewQuotas(t *testing.T) {
	f := newFixture(t)
	rec := `{"id":"old","created_at":"2025-01-01T00:00:00Z","quotas":{"slots":3}}`
	if err := f.store.Commit(map[string][]byte{"tenants/old": []byte(rec)}, nil); err != nil {
		t.Fatal(err)
	}
	f.reopen(t)
	tn, err := f.svc.Tenant("old")
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultQuotas()
	want.Slots = 3
	if tn.Quotas != want {
		t.Fatalf("quotas = %+v", tn.Quotas)
	}
}

func TestLoadRejectsCorruptRecords(t *testing.T) {
	for _, tc := range []struct {
		key, value, want string
	}{
		{"tenants/acme", `{`, `tenants: record "tenants/acme": unexpected end of JSON input`},
		{"tenants/acme", `{"id":"beta"}`, `tenants: record "tenants/acme" holds tenant "beta"`},
		{"tenants/Acme", `{"id":"Acme"}`, `tenants: record "tenants/Acme": tenant id "Acme" is invalid at byte 0`},
		{"tenants/acme", `{"id":"acme","quotas":{"slots":-1}}`, `tenants: record "tenants/acme": quota slots: -1 is negative`},
		{"keys/aaaaaaaaaaaa", `{"id":"bbbbbbbbbbbb"}`, `tenants: record "keys/aaaaaaaaaaaa": holds key "bbbbbbbbbbbb"`},
		{"keys/aaaaaaaaaaaa", `{"id":"aaaaaaaaaaaa","role":"root"}`, `tenants: record "keys/aaaaaaaaaaaa": role "root" is unknown`},
		{"keys/aaaaaaaaaaaa", `{"id":"aaaaaaaaaaaa","role":"viewer"}`, `tenants: record "keys/aaaaaaaaaaaa": key of tenant "" has role viewer`},
		{"keys/aaaaaaaaaaaa", `{"id":"aaaaaaaaaaaa","tenant":"acme","role":"admin"}`, `tenants: record "keys/aaaaaaaaaaaa": key of tenant "acme" has role admin`},
		{"keys/aaaaaaaaaaaa", `{"id":"aaaaaaaaaaaa","role":"admin","secret_sha256":"abcd"}`, `tenants: record "keys/aaaaaaaaaaaa": secret_sha256 is not 32 hex bytes`},
	} {
		t.Run(tc.key+tc.value, func(t *testing.T) {
			f := newFixture(t)
			if err := f.store.Commit(map[string][]byte{tc.key: []byte(tc.value)}, nil); err != nil {
				t.Fatal(err)
			}
			_, err := New(f.store, f.clk.Now)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("New = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestNewNeedsKVAndClock(t *testing.T) {
	f := newFixture(t)
	if _, err := New(nil, f.clk.Now); err == nil {
		t.Fatal("New(nil kv) succeeded")
	}
	if _, err := New(f.store, nil); err == nil {
		t.Fatal("New(nil clock) succeeded")
	}
}

func TestTenantJSON(t *testing.T) {
	b, err := json.Marshal(Tenant{ID: "acme", CreatedAt: t0, Quotas: DefaultQuotas()})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"id":"acme","created_at":"2026-03-01T12:00:00Z","quotas":{"slots":8,`; !strings.HasPrefix(string(b), want) {
		t.Fatalf("Tenant JSON %s", b)
	}
}

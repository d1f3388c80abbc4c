package console

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/weirstream/weir/platform/api"
	"github.com/weirstream/weir/tenants"
)

// The tenant's own pages: its quotas next to what it uses, its API keys
// (owners only: list, create, revoke) and its savepoints.

// tenantRoutes are the tenant page, its key forms and the savepoints page.
func (c *Console) tenantRoutes() []route {
	reveals := newTokenReveals(c.cfg.Now)
	return []route{
		{http.MethodGet, "/tenant", func(r *request) error { return c.showTenant(r, reveals, http.StatusOK, nil) }},
		{http.MethodPost, "/tenant/keys", func(r *request) error { return c.createOwnKey(r, reveals) }},
		{http.MethodPost, "/tenant/keys/:key/revoke", func(r *request) error { return c.revokeOwnKey(r, reveals) }},
		{http.MethodGet, "/savepoints", func(r *request) error { return c.showSavepoints(r, http.StatusOK, nil) }},
		{http.MethodPost, "/savepoints/:savepoint/delete", c.deleteSavepoint},
	}
}

// showTenant renders the caller's quotas and usage and, for an owner, the
// tenant's keys with the key form.
func (c *Console) showTenant(r *request, reveals *tokenReveals, status int, extra map[string]any) error {
	q, err := r.API.Quotas(r.Ctx())
	if err != nil {
		return r.fail(0, err)
	}
	data := map[string]any{"Tenant": q.Tenant, "Quotas": quotaRows(q.Quotas, &q.Usage), "Jobs": q.Usage.Jobs,
		"CanKeys": callerCan(r, tenants.ActManageKeys), "Problem": (*shownProblem)(nil)}
	if callerCan(r, tenants.ActManageKeys) {
		keys, err := r.API.Keys(r.Ctx(), "")
		if err != nil {
			return r.fail(0, err)
		}
		data["Keys"] = keyRows(keys, r.sess.me.KeyID, r.c.cfg.Now())
		data["KeyForm"] = keyForm{Role: string(tenants.RoleDeveloper)}
		data["KeyAction"] = "/tenant/keys"
		data["RevokeBase"] = "/tenant/keys/"
		if tok, ok := reveals.take(r.sid, "tenant"); ok {
			data["Reveal"] = tok
		}
	}
	for k, v := range extra {
		data[k] = v
	}
	return r.render(status, "tenant", data)
}

// createOwnKey takes the key form of an owner.
func (c *Console) createOwnKey(r *request, reveals *tokenReveals) error {
	f := readKeyForm(r)
	again := func(p *shownProblem) error {
		return c.showTenant(r, reveals, p.Status, map[string]any{"Problem": p, "KeyForm": f})
	}
	exp, p := f.expiry()
	if p != nil {
		return again(p)
	}
	k, err := r.API.CreateKey(r.Ctx(), "", f.Name, tenants.Role(f.Role), exp)
	if err != nil {
		return showOrFail(r, err, again)
	}
	reveals.put(r.sid, tokenReveal{Scope: "tenant", Name: k.Key.Name, KeyID: k.Key.ID, Role: string(k.Key.Role), Token: k.Token})
	return flashRedirect(r, "/tenant", fmt.Sprintf("Created key %s (%s, %s).", k.Key.Name, k.Key.ID, k.Key.Role))
}

// revokeOwnKey revokes a key of the owner's tenant, after a confirmation.
func (c *Console) revokeOwnKey(r *request, reveals *tokenReveals) error {
	id := r.Param("key")
	if !confirmedForm(r) {
		q := fmt.Sprintf("Revoke key %s? Programs and sessions using it stop working at once.", id)
		if id == r.sess.me.KeyID {
			q = fmt.Sprintf("Revoke key %s? It is the key of this session: you will be signed out.", id)
		}
		return askConfirmation(r, confirmation{Title: "Revoke an API key", Question: q, Button: "Revoke key " + id, Back: "/tenant"})
	}
	if err := r.API.RevokeKey(r.Ctx(), "", id); err != nil {
		return showOrFail(r, err, func(p *shownProblem) error {
			return c.showTenant(r, reveals, p.Status, map[string]any{"Problem": p})
		})
	}
	return flashRedirect(r, "/tenant", "Revoked key "+id+".")
}

// showSavepoints renders the tenant's savepoints.
func (c *Console) showSavepoints(r *request, status int, extra map[string]any) error {
	sps, err := r.API.Savepoints(r.Ctx(), "")
	if err != nil {
		return r.fail(0, err)
	}
	data := map[string]any{"Savepoints": sps, "CanWrite": callerCan(r, tenants.ActWrite)}
	for k, v := range extra {
		data[k] = v
	}
	return r.render(status, "savepoints", data)
}

// deleteSavepoint deletes a savepoint and its files, after a confirmation.
func (c *Console) deleteSavepoint(r *request) error {
	id := r.Param("savepoint")
	if !confirmedForm(r) {
		return askConfirmation(r, confirmation{Title: "Delete a savepoint",
			Question: fmt.Sprintf("Delete savepoint %s and its files? No job can start from it afterwards.", id),
			Button:   "Delete savepoint", Back: "/savepoints"})
	}
	if err := r.API.DeleteSavepoint(r.Ctx(), id); err != nil {
		return showOrFail(r, err, func(p *shownProblem) error {
			return c.showSavepoints(r, p.Status, map[string]any{"Problem": p})
		})
	}
	return flashRedirect(r, "/savepoints", "Deleted savepoint "+id+".")
}

// ---- Quotas and keys, shared with the admin pages.

// quotaRow is one quota with what is used of it.
type quotaRow struct {
	// Field is the quota's JSON name (the quotas form's input name).
	Field, Label, Hint string
	// Limit is the quota's value as shown, Value as a form field holds it.
	Limit, Value string
	// Used is "" where a use cannot be counted.
	Used string
}

// quotaRows lists every quota in the API's order; u (nil: not shown) adds
// the usage.
func quotaRows(q tenants.Quotas, u *tenants.Usage) []quotaRow {
	itoa := func(n int) string { return strconv.Itoa(n) }
	rows := []quotaRow{
		{Field: tenants.QuotaSlots, Label: "Task slots", Hint: "slots the running jobs may hold together", Limit: itoa(q.Slots), Value: itoa(q.Slots)},
		{Field: tenants.QuotaMemoryPages, Label: "Memory per Wasm instance", Hint: "64 KiB pages",
			Limit: fmt.Sprintf("%d pages (%s)", q.MemoryPages, humanBytes(int64(q.MemoryPages)*64<<10)), Value: strconv.FormatUint(uint64(q.MemoryPages), 10)},
		{Field: tenants.QuotaCallTimeout, Label: "Guest call timeout", Hint: "a Go duration, e.g. 5s", Limit: q.CallTimeout.String(), Value: q.CallTimeout.String()},
		{Field: tenants.QuotaModules, Label: "Module versions", Hint: "versions kept, all names together", Limit: itoa(q.Modules), Value: itoa(q.Modules)},
		{Field: tenants.QuotaModuleBytes, Label: "Module size", Hint: "bytes, per module", Limit: humanBytes(q.ModuleBytes), Value: strconv.FormatInt(q.ModuleBytes, 10)},
		{Field: tenants.QuotaStateBytes, Label: "State per job", Hint: "bytes, a job's newest checkpoint", Limit: humanBytes(q.StateBytes), Value: strconv.FormatInt(q.StateBytes, 10)},
		{Field: tenants.QuotaRetainedCheckpoints, Label: "Retained checkpoints", Hint: "per job", Limit: itoa(q.RetainedCheckpoints), Value: itoa(q.RetainedCheckpoints)},
		{Field: tenants.QuotaSavepoints, Label: "Savepoints", Hint: "kept, all jobs together", Limit: itoa(q.Savepoints), Value: itoa(q.Savepoints)},
		{Field: tenants.QuotaRequestsPerSecond, Label: "API requests per second", Hint: "sustained rate", Limit: formatRate(q.RequestsPerSecond), Value: formatRate(q.RequestsPerSecond)},
		{Field: tenants.QuotaRequestBurst, Label: "API request burst", Hint: "requests at once above the rate", Limit: itoa(q.RequestBurst), Value: itoa(q.RequestBurst)},
	}
	if u != nil {
		for i := range rows {
			switch rows[i].Field {
			case tenants.QuotaSlots:
				rows[i].Used = itoa(u.Slots)
			case tenants.QuotaModules:
				rows[i].Used = itoa(u.Modules)
			case tenants.QuotaSavepoints:
				rows[i].Used = itoa(u.Savepoints)
			case tenants.QuotaStateBytes:
				rows[i].Used = humanBytes(u.StateBytes) + " (largest job)"
			}
		}
	}
	return rows
}

func formatRate(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// humanBytes is a size in binary units, as the templates' bytes helper
// writes it.
func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// keyRow is an API key as the key tables show it.
type keyRow struct {
	tenants.Key
	// Status is "active", "revoked" or "expired".
	Status string
	// Mine: the key of this session.
	Mine bool
}

func keyRows(keys []tenants.Key, mine string, now time.Time) []keyRow {
	out := make([]keyRow, len(keys))
	for i, k := range keys {
		st := "active"
		switch {
		case k.RevokedAt != nil:
			st = "revoked"
		case k.ExpiresAt != nil && !now.Before(*k.ExpiresAt):
			st = "expired"
		}
		out[i] = keyRow{Key: k, Status: st, Mine: k.ID == mine}
	}
	return out
}

// keyForm is the create-key form.
type keyForm struct {
	Name, Role string
	// Expires is the datetime-local field: "2026-12-31T23:59" in UTC, or "".
	Expires string
}

func readKeyForm(r *request) keyForm {
	return keyForm{Name: strings.TrimSpace(r.FormValue("name")), Role: r.FormValue("role"), Expires: strings.TrimSpace(r.FormValue("expires_at"))}
}

// expiry parses the form's expiry (UTC); a bad one is a problem at the
// expires_at field.
func (f keyForm) expiry() (*time.Time, *shownProblem) {
	if f.Expires == "" {
		return nil, nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339, "2006-01-02"} {
		if t, err := time.Parse(layout, f.Expires); err == nil {
			return &t, nil
		}
	}
	return nil, &shownProblem{Status: http.StatusBadRequest, Title: "The request is malformed",
		Fields: []api.FieldProblem{{Field: "expires_at", Problem: fmt.Sprintf("%q is not a date and time (2026-12-31T23:59, UTC)", f.Expires)}}}
}

// tokenReveal is a key just created, whose token the next page shows
// once.
type tokenReveal struct {
	// Scope is the page that shows it: "tenant", or "admin:<tenant>".
	Scope                    string
	Name, KeyID, Role, Token string
	at                       time.Time
}

// tokenReveals keeps a new key's token from the POST that created it to
// the GET after the redirect, which takes it: the token never travels in
// a URL, and reloading the page does not show it again. One per session;
// unclaimed ones are dropped after revealTTL.
type tokenReveals struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]tokenReveal // by session id
}

// revealTTL bounds how long an unclaimed token stays in memory.
const revealTTL = 5 * time.Minute

func newTokenReveals(now func() time.Time) *tokenReveals {
	return &tokenReveals{now: now, m: map[string]tokenReveal{}}
}

func (s *tokenReveals) put(sid string, t tokenReveal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for k, v := range s.m {
		if now.Sub(v.at) > revealTTL {
			delete(s.m, k)
		}
	}
	t.at = now
	s.m[sid] = t
}

// take returns and forgets the session's token if scope's page shows it.
func (s *tokenReveals) take(sid, scope string) (tokenReveal, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.m[sid]
	if !ok || t.Scope != scope || s.now().Sub(t.at) > revealTTL {
		return tokenReveal{}, false
	}
	delete(s.m, sid)
	return t, true
}

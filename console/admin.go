package console

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/weirstream/weir/platform/api"
	"github.com/weirstream/weir/tenants"
)

// The admin pages: tenants with their usage, a tenant's quotas, keys and
// deletion. They are for admin keys; any other key gets the API's 403
// (the API decides, as for every page), shown as the error page.

// adminRoutes are the admin pages and forms.
func (c *Console) adminRoutes() []route {
	reveals := newTokenReveals(c.cfg.Now)
	return []route{
		{http.MethodGet, "/admin", func(r *request) error { return c.showAdmin(r, http.StatusOK, nil) }},
		{http.MethodPost, "/admin/tenants", c.createTenant},
		{http.MethodGet, "/admin/tenants/:tenant", func(r *request) error { return c.showAdminTenant(r, reveals, http.StatusOK, nil) }},
		{http.MethodPost, "/admin/tenants/:tenant/quotas", func(r *request) error { return c.setTenantQuotas(r, reveals) }},
		{http.MethodPost, "/admin/tenants/:tenant/keys", func(r *request) error { return c.createTenantKey(r, reveals) }},
		{http.MethodPost, "/admin/tenants/:tenant/keys/:key/revoke", func(r *request) error { return c.revokeTenantKey(r, reveals) }},
		{http.MethodPost, "/admin/tenants/:tenant/delete", func(r *request) error { return c.deleteTenant(r, reveals) }},
	}
}

// adminTenantRow is a tenant in the admin's list.
type adminTenantRow struct {
	tenants.Tenant
	Usage tenants.Usage
}

// showAdmin renders every tenant with its usage, and the create form.
func (c *Console) showAdmin(r *request, status int, extra map[string]any) error {
	list, err := r.API.Tenants(r.Ctx())
	if err != nil {
		return r.fail(0, err)
	}
	rows := make([]adminTenantRow, 0, len(list))
	for _, t := range list {
		v, err := r.API.Tenant(r.Ctx(), t.ID)
		if err != nil {
			return r.fail(0, err)
		}
		row := adminTenantRow{Tenant: v.Tenant}
		if v.Usage != nil {
			row.Usage = *v.Usage
		}
		rows = append(rows, row)
	}
	data := map[string]any{"Tenants": rows, "Problem": (*shownProblem)(nil)}
	for k, v := range extra {
		data[k] = v
	}
	return r.render(status, "admin", data)
}

// createTenant takes the create form: a tenant with the default quotas.
func (c *Console) createTenant(r *request) error {
	id := strings.TrimSpace(r.FormValue("id"))
	t, err := r.API.CreateTenant(r.Ctx(), id, nil)
	if err != nil {
		return showOrFail(r, err, func(p *shownProblem) error {
			return c.showAdmin(r, p.Status, map[string]any{"Problem": p, "NewID": id})
		})
	}
	return flashRedirect(r, "/admin/tenants/"+url.PathEscape(t.ID), "Created tenant "+t.ID+" with the default quotas.")
}

// showAdminTenant renders one tenant: quotas form, usage, keys, delete.
// submitted (on a refused quotas form) keeps what was typed.
func (c *Console) showAdminTenant(r *request, reveals *tokenReveals, status int, extra map[string]any) error {
	id := r.Param("tenant")
	t, err := r.API.Tenant(r.Ctx(), id)
	if err != nil {
		return r.fail(0, err)
	}
	keys, err := r.API.Keys(r.Ctx(), id)
	if err != nil {
		return r.fail(0, err)
	}
	rows := quotaRows(t.Quotas, t.Usage)
	if sub, ok := extra["Submitted"].(map[string]string); ok {
		for i := range rows {
			if v, ok := sub[rows[i].Field]; ok {
				rows[i].Value = v
			}
		}
	}
	var usage tenants.Usage
	if t.Usage != nil {
		usage = *t.Usage
	}
	base := "/admin/tenants/" + url.PathEscape(id)
	data := map[string]any{
		"Tenant": t.Tenant, "Usage": usage, "Quotas": rows, "Problem": (*shownProblem)(nil), "Base": base,
		"Keys": keyRows(keys, r.sess.me.KeyID, c.cfg.Now()), "KeyForm": keyForm{Role: string(tenants.RoleOwner)},
		"KeyAction": base + "/keys", "RevokeBase": base + "/keys/",
	}
	if tok, ok := reveals.take(r.sid, "admin:"+id); ok {
		data["Reveal"] = tok
	}
	for k, v := range extra {
		data[k] = v
	}
	return r.render(status, "admin_tenant", data)
}

// setTenantQuotas takes the quotas form: every field, an empty one (or 0)
// meaning the default, as PUT /v1/tenants/{t}/quotas does.
func (c *Console) setTenantQuotas(r *request, reveals *tokenReveals) error {
	id := r.Param("tenant")
	sub := map[string]string{}
	for _, row := range quotaRows(tenants.Quotas{}, nil) { // the form's fields
		sub[row.Field] = strings.TrimSpace(r.FormValue(row.Field))
	}
	again := func(p *shownProblem) error {
		return c.showAdminTenant(r, reveals, p.Status, map[string]any{"Problem": p, "Submitted": sub})
	}
	q, bad := parseQuotas(sub)
	if len(bad) > 0 {
		return again(&shownProblem{Status: http.StatusBadRequest, Title: "Some quotas are not numbers", Fields: bad})
	}
	if _, err := r.API.SetQuotas(r.Ctx(), id, q); err != nil {
		return showOrFail(r, err, again)
	}
	return flashRedirect(r, "/admin/tenants/"+url.PathEscape(id), "Saved the quotas of "+id+".")
}

// parseQuotas reads the quotas form. It only checks syntax (a number, a
// duration); whether a value is allowed is the API's to say.
func parseQuotas(f map[string]string) (tenants.Quotas, []api.FieldProblem) {
	var (
		q   tenants.Quotas
		bad []api.FieldProblem
	)
	integer := func(field string, bits int) int64 {
		s := f[field]
		if s == "" {
			return 0
		}
		n, err := strconv.ParseInt(s, 10, bits)
		if err != nil {
			bad = append(bad, api.FieldProblem{Field: field, Problem: fmt.Sprintf("%q is not a whole number", s)})
		}
		return n
	}
	q.Slots = int(integer(tenants.QuotaSlots, 32))
	if s := f[tenants.QuotaMemoryPages]; s != "" {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			bad = append(bad, api.FieldProblem{Field: tenants.QuotaMemoryPages, Problem: fmt.Sprintf("%q is not a whole number of pages", s)})
		}
		q.MemoryPages = uint32(n)
	}
	if s := f[tenants.QuotaCallTimeout]; s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			bad = append(bad, api.FieldProblem{Field: tenants.QuotaCallTimeout, Problem: fmt.Sprintf("%q is not a duration (5s, 1m30s)", s)})
		}
		q.CallTimeout = tenants.Duration(d)
	}
	q.Modules = int(integer(tenants.QuotaModules, 32))
	q.ModuleBytes = integer(tenants.QuotaModuleBytes, 64)
	q.StateBytes = integer(tenants.QuotaStateBytes, 64)
	q.RetainedCheckpoints = int(integer(tenants.QuotaRetainedCheckpoints, 32))
	q.Savepoints = int(integer(tenants.QuotaSavepoints, 32))
	if s := f[tenants.QuotaRequestsPerSecond]; s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			bad = append(bad, api.FieldProblem{Field: tenants.QuotaRequestsPerSecond, Problem: fmt.Sprintf("%q is not a number", s)})
		}
		q.RequestsPerSecond = v
	}
	q.RequestBurst = int(integer(tenants.QuotaRequestBurst, 32))
	return q, bad
}

// createTenantKey creates a key of the tenant; the next page shows its
// token once.
func (c *Console) createTenantKey(r *request, reveals *tokenReveals) error {
	id := r.Param("tenant")
	f := readKeyForm(r)
	again := func(p *shownProblem) error {
		return c.showAdminTenant(r, reveals, p.Status, map[string]any{"Problem": p, "KeyForm": f})
	}
	exp, p := f.expiry()
	if p != nil {
		return again(p)
	}
	k, err := r.API.CreateKey(r.Ctx(), id, f.Name, tenants.Role(f.Role), exp)
	if err != nil {
		return showOrFail(r, err, again)
	}
	reveals.put(r.sid, tokenReveal{Scope: "admin:" + id, Name: k.Key.Name, KeyID: k.Key.ID, Role: string(k.Key.Role), Token: k.Token})
	return flashRedirect(r, "/admin/tenants/"+url.PathEscape(id), fmt.Sprintf("Created key %s (%s, %s) of %s.", k.Key.Name, k.Key.ID, k.Key.Role, id))
}

// revokeTenantKey revokes a key of the tenant, after a confirmation.
func (c *Console) revokeTenantKey(r *request, reveals *tokenReveals) error {
	id, key := r.Param("tenant"), r.Param("key")
	back := "/admin/tenants/" + url.PathEscape(id)
	if !confirmedForm(r) {
		return askConfirmation(r, confirmation{Title: "Revoke an API key", Back: back, Button: "Revoke key " + key,
			Question: fmt.Sprintf("Revoke key %s of tenant %s? Whatever uses it stops working at once.", key, id)})
	}
	if err := r.API.RevokeKey(r.Ctx(), id, key); err != nil {
		return showOrFail(r, err, func(p *shownProblem) error {
			return c.showAdminTenant(r, reveals, p.Status, map[string]any{"Problem": p})
		})
	}
	return flashRedirect(r, back, "Revoked key "+key+" of "+id+".")
}

// deleteTenant deletes a tenant and everything it owns, after a
// confirmation; the API refuses (409) while it has running jobs.
func (c *Console) deleteTenant(r *request, reveals *tokenReveals) error {
	id := r.Param("tenant")
	if !confirmedForm(r) {
		return askConfirmation(r, confirmation{Title: "Delete a tenant", Back: "/admin/tenants/" + url.PathEscape(id), Button: "Delete tenant " + id,
			Question: fmt.Sprintf("Delete tenant %s with its modules, jobs, savepoints, keys and files? This cannot be undone.", id)})
	}
	if err := r.API.DeleteTenant(r.Ctx(), id); err != nil {
		return showOrFail(r, err, func(p *shownProblem) error {
			return c.showAdminTenant(r, reveals, p.Status, map[string]any{"Problem": p})
		})
	}
	return flashRedirect(r, "/admin", "Deleted tenant "+id+".")
}

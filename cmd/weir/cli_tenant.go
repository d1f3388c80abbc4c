package main

// me, quotas, tenant and key commands.

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/weirstream/weir/platform/api"
	"github.com/weirstream/weir/tenants"
)

func cmdMe(ctx context.Context, r *runCtx) error {
	me, err := r.api.Me(ctx)
	if err != nil {
		return err
	}
	return r.emit(me, func(w io.Writer) {
		tenant := me.Tenant
		if tenant == "" {
			tenant = "- (an admin key belongs to no tenant)"
		}
		fmt.Fprintf(w, "key\t%s\n", me.KeyID)
		fmt.Fprintf(w, "tenant\t%s\n", tenant)
		fmt.Fprintf(w, "role\t%s\n", me.Role)
		fmt.Fprintf(w, "expires\t%s\n", expiry(me.ExpiresAt))
	})
}

func cmdQuotas(ctx context.Context, r *runCtx) error {
	q, err := r.api.Quotas(ctx)
	if err != nil {
		return err
	}
	return r.emit(q, func(w io.Writer) {
		fmt.Fprintf(w, "tenant\t%s\n\n", q.Tenant)
		quotaTable(w, q.Quotas, &q.Usage)
	})
}

func expiry(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return formatTime(t)
}

// quotaTable lists quotas, with what is used next to them when u is set.
func quotaTable(w io.Writer, q tenants.Quotas, u *tenants.Usage) {
	row := func(name, limit string, used func(u *tenants.Usage) string) {
		if u == nil {
			fmt.Fprintf(w, "%s\t%s\n", name, limit)
			return
		}
		usedText := "-"
		if used != nil {
			usedText = used(u)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", name, limit, usedText)
	}
	if u == nil {
		fmt.Fprintln(w, "QUOTA\tLIMIT")
	} else {
		fmt.Fprintln(w, "QUOTA\tLIMIT\tUSED")
	}
	itoa := strconv.Itoa
	row(tenants.QuotaSlots, itoa(q.Slots), func(u *tenants.Usage) string { return itoa(u.Slots) })
	row(tenants.QuotaMemoryPages, fmt.Sprintf("%d (%s per instance)", q.MemoryPages, formatSize(int64(q.MemoryPages)<<16)), nil)
	row(tenants.QuotaCallTimeout, q.CallTimeout.String(), nil)
	row(tenants.QuotaModules, itoa(q.Modules), func(u *tenants.Usage) string { return itoa(u.Modules) })
	row(tenants.QuotaModuleBytes, formatSize(q.ModuleBytes), nil)
	row(tenants.QuotaStateBytes, formatSize(q.StateBytes), func(u *tenants.Usage) string { return formatSize(u.StateBytes) + " (largest job)" })
	row(tenants.QuotaRetainedCheckpoints, itoa(q.RetainedCheckpoints), nil)
	row(tenants.QuotaSavepoints, itoa(q.Savepoints), func(u *tenants.Usage) string { return itoa(u.Savepoints) })
	row(tenants.QuotaRequestsPerSecond, strconv.FormatFloat(q.RequestsPerSecond, 'g', -1, 64), nil)
	row(tenants.QuotaRequestBurst, itoa(q.RequestBurst), nil)
	if u != nil {
		row("jobs", "-", func(u *tenants.Usage) string { return itoa(u.Jobs) + " running" })
	}
}

func tenantCommands() []command {
	quotaFlags := func(fs *flag.FlagSet, o *opts) { o.quotas.register(fs) }
	return []command{
		{verb: "create", args: "ID", summary: "create a tenant; quota flags override the defaults", minArgs: 1, maxArgs: 1, flags: quotaFlags, run: cmdTenantCreate},
		{verb: "list", summary: "list tenants", maxArgs: 0, run: cmdTenantList},
		{verb: "get", args: "ID", summary: "show a tenant with its quotas and usage", minArgs: 1, maxArgs: 1, run: cmdTenantGet},
		{verb: "quotas", args: "ID", summary: "change a tenant's quotas: the flags given, the others stay (0: the default)", minArgs: 1, maxArgs: 1, flags: quotaFlags, run: cmdTenantQuotas},
		{verb: "delete", args: "ID", summary: "delete a tenant with its keys, modules, jobs and savepoints (refused while a job runs)", minArgs: 1, maxArgs: 1, run: cmdTenantDelete},
	}
}

func printTenant(w io.Writer, t api.TenantView) {
	fmt.Fprintf(w, "tenant\t%s\n", t.ID)
	fmt.Fprintf(w, "created\t%s\n\n", formatTime(&t.CreatedAt))
	quotaTable(w, t.Quotas, t.Usage)
}

func cmdTenantCreate(ctx context.Context, r *runCtx) error {
	var quotas *tenants.Quotas
	if q, set := r.o.quotas.apply(r.fs, tenants.Quotas{}); set {
		quotas = &q
	}
	t, err := r.api.CreateTenant(ctx, r.args[0], quotas)
	if err != nil {
		return err
	}
	return r.emit(t, func(w io.Writer) { printTenant(w, t) })
}

func cmdTenantList(ctx context.Context, r *runCtx) error {
	ts, err := r.api.Tenants(ctx)
	if err != nil {
		return err
	}
	return r.emit(ts, func(w io.Writer) {
		fmt.Fprintln(w, "ID\tCREATED\tSLOTS\tMODULES\tSAVEPOINTS\tREQ/S")
		for _, t := range ts {
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%g\n", t.ID, formatTime(&t.CreatedAt), t.Quotas.Slots, t.Quotas.Modules, t.Quotas.Savepoints, t.Quotas.RequestsPerSecond)
		}
	})
}

func cmdTenantGet(ctx context.Context, r *runCtx) error {
	t, err := r.api.Tenant(ctx, r.args[0])
	if err != nil {
		return err
	}
	return r.emit(t, func(w io.Writer) { printTenant(w, t) })
}

// cmdTenantQuotas changes only the quotas named: the API replaces them all,
// so the current ones are read first.
func cmdTenantQuotas(ctx context.Context, r *runCtx) error {
	if _, set := r.o.quotas.apply(r.fs, tenants.Quotas{}); !set {
		return usagef("name at least one quota to change (--slots N, --module-bytes 64MiB, ...; -h lists them)")
	}
	cur, err := r.api.Tenant(ctx, r.args[0])
	if err != nil {
		return err
	}
	q, _ := r.o.quotas.apply(r.fs, cur.Quotas)
	t, err := r.api.SetQuotas(ctx, r.args[0], q)
	if err != nil {
		return err
	}
	return r.emit(t, func(w io.Writer) { printTenant(w, t) })
}

func cmdTenantDelete(ctx context.Context, r *runCtx) error {
	if err := r.api.DeleteTenant(ctx, r.args[0]); err != nil {
		return err
	}
	return r.done("tenant %s deleted", r.args[0])
}

func keyCommands() []command {
	tenantFlag := func(fs *flag.FlagSet, o *opts) {
		fs.StringVar(&o.tenant, "tenant", "", "another tenant's keys (admin key); default: the key's own tenant")
	}
	return []command{
		{verb: "create", summary: "create an API key and print its token, which is shown only this once", maxArgs: 0,
			flags: func(fs *flag.FlagSet, o *opts) {
				tenantFlag(fs, o)
				fs.StringVar(&o.name, "name", "", "a name for the key (who or what uses it)")
				fs.StringVar(&o.role, "role", "", "owner, developer or viewer (required)")
				fs.StringVar(&o.expires, "expires", "", "expiry: a duration from now (720h, 30d) or an RFC 3339 time; default never")
			}, run: cmdKeyCreate},
		{verb: "list", summary: "list API keys (never their tokens)", maxArgs: 0, flags: tenantFlag, run: cmdKeyList},
		{verb: "revoke", args: "ID", summary: "revoke an API key", minArgs: 1, maxArgs: 1, flags: tenantFlag, run: cmdKeyRevoke},
	}
}

// parseExpiry reads --expires: a duration from now (Go syntax, or whole
// days "30d") or an RFC 3339 time.
func parseExpiry(v string, now time.Time) (*time.Time, error) {
	if v == "" {
		return nil, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return &t, nil
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 {
			return nil, usagef("--expires %q: use a duration (720h, 30d) or an RFC 3339 time", v)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(v); err != nil || d <= 0 {
			return nil, usagef("--expires %q: use a positive duration (720h, 30d) or an RFC 3339 time", v)
		}
	}
	t := now.Add(d).UTC().Truncate(time.Second)
	return &t, nil
}

func cmdKeyCreate(ctx context.Context, r *runCtx) error {
	if r.o.role == "" {
		return usagef("--role is required: owner, developer or viewer")
	}
	role, err := tenants.ParseRole(r.o.role)
	if err != nil {
		return usagef("--role: %v", err)
	}
	exp, err := parseExpiry(r.o.expires, r.clock.Now())
	if err != nil {
		return err
	}
	k, err := r.api.CreateKey(ctx, r.o.tenant, r.o.name, role, exp)
	if err != nil {
		return err
	}
	if r.o.output == "json" {
		return writeJSON(r.stdout, k)
	}
	w := r.stdout
	fmt.Fprintf(w, "key %s created: role %s, tenant %s, name %q, expires %s\n\n", k.Key.ID, k.Key.Role, orDash(k.Key.Tenant), k.Key.Name, expiry(k.Key.ExpiresAt))
	fmt.Fprintf(w, "token (shown only now; the server keeps only its hash):\n\n    %s\n\n", k.Token)
	fmt.Fprintf(w, "use it with: export WEIR_TOKEN=%s\n", k.Token)
	return nil
}

func cmdKeyList(ctx context.Context, r *runCtx) error {
	keys, err := r.api.Keys(ctx, r.o.tenant)
	if err != nil {
		return err
	}
	return r.emit(keys, func(w io.Writer) {
		fmt.Fprintln(w, "ID\tNAME\tROLE\tTENANT\tCREATED\tEXPIRES\tREVOKED")
		for _, k := range keys {
			revoked := "-"
			if k.RevokedAt != nil {
				revoked = formatTime(k.RevokedAt)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, orDash(k.Name), k.Role, orDash(k.Tenant), formatTime(&k.CreatedAt), expiry(k.ExpiresAt), revoked)
		}
	})
}

func cmdKeyRevoke(ctx context.Context, r *runCtx) error {
	if err := r.api.RevokeKey(ctx, r.o.tenant, r.args[0]); err != nil {
		return err
	}
	return r.done("key %s revoked", r.args[0])
}

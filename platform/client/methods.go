package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/weirstream/weir/checkpoint"
	"github.com/weirstream/weir/platform/api"
	"github.com/weirstream/weir/platform/jobs"
	"github.com/weirstream/weir/platform/registry"
	"github.com/weirstream/weir/tenants"
)

// Health checks that the server answers (GET /v1/healthz, no key needed).
func (c *Client) Health(ctx context.Context) error {
	return c.get(ctx, "/v1/healthz", nil, nil)
}

// OpenAPI returns the server's OpenAPI document.
func (c *Client) OpenAPI(ctx context.Context) (json.RawMessage, error) {
	var doc json.RawMessage
	err := c.get(ctx, "/v1/openapi.json", nil, &doc)
	return doc, err
}

// Me describes the caller's key.
func (c *Client) Me(ctx context.Context) (api.Me, error) {
	var me api.Me
	err := c.get(ctx, "/v1/me", nil, &me)
	return me, err
}

// Quotas returns the caller's tenant's quotas and usage.
func (c *Client) Quotas(ctx context.Context) (api.QuotasAndUsage, error) {
	var q api.QuotasAndUsage
	err := c.get(ctx, "/v1/quotas", nil, &q)
	return q, err
}

// CreateTenant creates a tenant (admin). Nil quotas, and zero fields of
// quotas, take the defaults.
func (c *Client) CreateTenant(ctx context.Context, id string, quotas *tenants.Quotas) (api.TenantView, error) {
	var t api.TenantView
	_, err := c.sendJSON(ctx, http.MethodPost, "/v1/tenants", "", api.CreateTenant{ID: id, Quotas: quotas}, &t)
	return t, err
}

// Tenants lists every tenant (admin).
func (c *Client) Tenants(ctx context.Context) ([]tenants.Tenant, error) {
	return listAll[tenants.Tenant](ctx, c, "/v1/tenants")
}

// Tenant returns a tenant with its usage (admin).
func (c *Client) Tenant(ctx context.Context, id string) (api.TenantView, error) {
	var t api.TenantView
	err := c.get(ctx, "/v1/tenants/"+seg(id), nil, &t)
	return t, err
}

// SetQuotas replaces a tenant's quotas (admin): every field, a zero one
// meaning the default.
func (c *Client) SetQuotas(ctx context.Context, id string, q tenants.Quotas) (api.TenantView, error) {
	var t api.TenantView
	_, err := c.sendJSON(ctx, http.MethodPut, "/v1/tenants/"+seg(id)+"/quotas", "", q, &t)
	return t, err
}

// DeleteTenant deletes a tenant and everything it owns (admin).
func (c *Client) DeleteTenant(ctx context.Context, id string) error {
	_, err := c.sendJSON(ctx, http.MethodDelete, "/v1/tenants/"+seg(id), "", nil, nil)
	return err
}

// keysPath is the keys collection of tenant, or of the caller's tenant
// when tenant is "".
func keysPath(tenant string) string {
	if tenant == "" {
		return "/v1/keys"
	}
	return "/v1/tenants/" + seg(tenant) + "/keys"
}

// CreateKey creates an API key of tenant ("" : the caller's own, as an
// owner; another tenant's needs an admin key). The answer holds the token,
// which the server never shows again. A nil expiresAt never expires.
func (c *Client) CreateKey(ctx context.Context, tenant, name string, role tenants.Role, expiresAt *time.Time) (api.CreatedKey, error) {
	req := api.CreateKey{Name: name, Role: role}
	if expiresAt != nil {
		s := expiresAt.UTC().Format(time.RFC3339)
		req.ExpiresAt = &s
	}
	var k api.CreatedKey
	_, err := c.sendJSON(ctx, http.MethodPost, keysPath(tenant), "", req, &k)
	return k, err
}

// Keys lists the keys of tenant ("" : the caller's own).
func (c *Client) Keys(ctx context.Context, tenant string) ([]tenants.Key, error) {
	return listAll[tenants.Key](ctx, c, keysPath(tenant))
}

// RevokeKey revokes a key of tenant ("" : the caller's own).
func (c *Client) RevokeKey(ctx context.Context, tenant, keyID string) error {
	_, err := c.sendJSON(ctx, http.MethodDelete, keysPath(tenant)+"/"+seg(keyID), "", nil, nil)
	return err
}

// UploadModule uploads wasm as the next version of the module name. created
// is false when these bytes already are a version of name (that version is
// returned and nothing was stored).
func (c *Client) UploadModule(ctx context.Context, name string, wasm []byte) (v registry.Version, created bool, err error) {
	if wasm == nil {
		wasm = []byte{} // an empty body is still a body: the server names the problem
	}
	status, err := c.call(ctx, request{method: http.MethodPost, path: "/v1/modules/" + seg(name), body: wasm, contentType: "application/wasm"}, &v)
	return v, status == http.StatusCreated, err
}

// Modules lists the tenant's module names with their latest versions.
func (c *Client) Modules(ctx context.Context) ([]registry.NameSummary, error) {
	return listAll[registry.NameSummary](ctx, c, "/v1/modules")
}

// Module returns a module name's versions.
func (c *Client) Module(ctx context.Context, name string) (api.ModuleVersions, error) {
	var m api.ModuleVersions
	err := c.get(ctx, "/v1/modules/"+seg(name), nil, &m)
	return m, err
}

func versionPath(name, version string) string {
	return "/v1/modules/" + seg(name) + "/versions/" + seg(version)
}

// ModuleVersion returns one version of a module: version is a number,
// "latest" or a digest "sha256:<hex>".
func (c *Client) ModuleVersion(ctx context.Context, name, version string) (registry.Version, error) {
	var v registry.Version
	err := c.get(ctx, versionPath(name, version), nil, &v)
	return v, err
}

// ModuleWasm returns the bytes of a module version.
func (c *Client) ModuleWasm(ctx context.Context, name, version string) ([]byte, error) {
	_, b, err := c.send(ctx, request{method: http.MethodGet, path: versionPath(name, version) + "/wasm", accept: "application/wasm, application/problem+json"})
	return b, err
}

// DeleteModule deletes every version of a module; the server refuses
// (module-in-use) while a job uses any.
func (c *Client) DeleteModule(ctx context.Context, name string) error {
	_, err := c.sendJSON(ctx, http.MethodDelete, "/v1/modules/"+seg(name), "", nil, nil)
	return err
}

// DeleteModuleVersion deletes one version of a module.
func (c *Client) DeleteModuleVersion(ctx context.Context, name, version string) error {
	_, err := c.sendJSON(ctx, http.MethodDelete, versionPath(name, version), "", nil, nil)
	return err
}

// Deploy deploys a job from its spec (YAML or JSON text), from a savepoint
// of the tenant when fromSavepoint is not "".
func (c *Client) Deploy(ctx context.Context, spec []byte, fromSavepoint string, allowNonRestored bool) (jobs.Job, error) {
	text, err := json.Marshal(string(spec))
	if err != nil {
		return jobs.Job{}, err
	}
	var j jobs.Job
	_, err = c.sendJSON(ctx, http.MethodPost, "/v1/jobs", "", api.DeployJob{
		Spec: text, FromSavepoint: fromSavepoint, AllowNonRestoredState: allowNonRestored,
	}, &j)
	return j, err
}

// Jobs lists the tenant's jobs, newest first.
func (c *Client) Jobs(ctx context.Context) ([]jobs.Job, error) {
	return listAll[jobs.Job](ctx, c, "/v1/jobs")
}

func jobPath(id string) string { return "/v1/jobs/" + seg(id) }

// Job returns a job with its graph, per-vertex metrics and checkpoint
// summary.
func (c *Client) Job(ctx context.Context, id string) (jobs.Detail, error) {
	var d jobs.Detail
	err := c.get(ctx, jobPath(id), nil, &d)
	return d, err
}

// Cancel cancels a job; the answer is the job once its tasks stopped.
func (c *Client) Cancel(ctx context.Context, id string) (jobs.Job, error) {
	var j jobs.Job
	_, err := c.sendJSON(ctx, http.MethodPost, jobPath(id)+"/cancel", "", nil, &j)
	return j, err
}

// operation starts a long operation.
func (c *Client) operation(ctx context.Context, path, requestID string, body any) (jobs.Operation, error) {
	var op jobs.Operation
	_, err := c.sendJSON(ctx, http.MethodPost, path, requestID, body, &op)
	return op, err
}

// Savepoint starts a savepoint of a running job. A request id ("" : none)
// makes a retry return the same operation; its result is a jobs.Savepoint.
func (c *Client) Savepoint(ctx context.Context, job, requestID string) (jobs.Operation, error) {
	return c.operation(ctx, jobPath(job)+"/savepoints", requestID, nil)
}

// Stop stops a job with a savepoint; the operation's result is the
// savepoint.
func (c *Client) Stop(ctx context.Context, job, requestID string) (jobs.Operation, error) {
	return c.operation(ctx, jobPath(job)+"/stop", requestID, nil)
}

// Upgrade moves a job to other module versions through a savepoint; the
// server rolls back (Operation.RolledBack) if the new version fails to
// start.
func (c *Client) Upgrade(ctx context.Context, job, requestID string, req jobs.UpgradeRequest) (jobs.Operation, error) {
	return c.operation(ctx, jobPath(job)+"/upgrade", requestID, req)
}

// Rescale restarts a job with other parallelism through a savepoint.
func (c *Client) Rescale(ctx context.Context, job, requestID string, req jobs.RescaleRequest) (jobs.Operation, error) {
	return c.operation(ctx, jobPath(job)+"/rescale", requestID, req)
}

// Exceptions returns a job's failures, newest first.
func (c *Client) Exceptions(ctx context.Context, job string) ([]jobs.Exception, error) {
	return listAll[jobs.Exception](ctx, c, jobPath(job)+"/exceptions")
}

// Logs returns up to pageSize (0: the server's default) log lines of a job
// with sequence numbers above after (0: from the oldest the server keeps),
// oldest first, and the sequence number to continue from: 0 when these are
// the newest lines (a follower then continues after the last line's Seq).
func (c *Client) Logs(ctx context.Context, job string, after uint64, pageSize int) ([]jobs.LogLine, uint64, error) {
	q := url.Values{}
	if after > 0 {
		q.Set("page_token", strconv.FormatUint(after, 10))
	}
	if pageSize > 0 {
		q.Set("page_size", strconv.Itoa(pageSize))
	}
	var p Page[jobs.LogLine]
	if err := c.get(ctx, jobPath(job)+"/logs", q, &p); err != nil {
		return nil, 0, err
	}
	var next uint64
	if p.NextPageToken != "" {
		n, err := strconv.ParseUint(p.NextPageToken, 10, 64)
		if err != nil {
			return nil, 0, fmt.Errorf("GET %s/logs: page token %q is not a sequence number", jobPath(job), p.NextPageToken)
		}
		next = n
	}
	return p.Items, next, nil
}

// Checkpoints returns the stats of a job's recent checkpoints and
// savepoints, newest first.
func (c *Client) Checkpoints(ctx context.Context, job string) ([]checkpoint.Stats, error) {
	return listAll[checkpoint.Stats](ctx, c, jobPath(job)+"/checkpoints")
}

// Savepoints lists the savepoints of a job, or of the whole tenant when job
// is "", newest first.
func (c *Client) Savepoints(ctx context.Context, job string) ([]jobs.Savepoint, error) {
	if job == "" {
		return listAll[jobs.Savepoint](ctx, c, "/v1/savepoints")
	}
	return listAll[jobs.Savepoint](ctx, c, jobPath(job)+"/savepoints")
}

// GetSavepoint returns one savepoint.
func (c *Client) GetSavepoint(ctx context.Context, id string) (jobs.Savepoint, error) {
	var sp jobs.Savepoint
	err := c.get(ctx, "/v1/savepoints/"+seg(id), nil, &sp)
	return sp, err
}

// DeleteSavepoint deletes a savepoint and its files.
func (c *Client) DeleteSavepoint(ctx context.Context, id string) error {
	_, err := c.sendJSON(ctx, http.MethodDelete, "/v1/savepoints/"+seg(id), "", nil, nil)
	return err
}

// DeleteJob forgets a job that is not running, with its checkpoints.
func (c *Client) DeleteJob(ctx context.Context, id string) error {
	_, err := c.sendJSON(ctx, http.MethodDelete, jobPath(id), "", nil, nil)
	return err
}

// Operation returns a long operation's progress.
func (c *Client) Operation(ctx context.Context, id string) (jobs.Operation, error) {
	var op jobs.Operation
	err := c.get(ctx, "/v1/operations/"+seg(id), nil, &op)
	return op, err
}

// OperationError is an operation that ended with an error.
type OperationError struct {
	Op jobs.Operation
}

func (e *OperationError) Error() string {
	s := fmt.Sprintf("%s of job %s (operation %s) failed: %s", e.Op.Kind, e.Op.Job, e.Op.ID, e.Op.Error)
	if e.Op.RolledBack {
		s += "; rolled back: the job runs its previous version again"
	}
	return s
}

// ErrOperationPending is wrapped by WaitOperation's error when ctx ended
// before the operation was done.
var ErrOperationPending = errors.New("operation still in progress")

// WaitOperation polls an operation every PollInterval until it is done and
// returns it. An operation that ended with an error is returned with an
// *OperationError; when ctx ends first, the last state seen is returned
// with an error wrapping ErrOperationPending and ctx's error.
func (c *Client) WaitOperation(ctx context.Context, id string) (jobs.Operation, error) {
	interval := c.PollInterval
	if interval <= 0 {
		interval = 250 * time.Millisecond
	}
	var last jobs.Operation
	for {
		op, err := c.Operation(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return last, fmt.Errorf("operation %s: %w (%w)", id, ErrOperationPending, ctx.Err())
			}
			return last, err
		}
		last = op
		if op.Done {
			if op.Error != "" {
				return op, &OperationError{Op: op}
			}
			return op, nil
		}
		if err := c.wait(ctx, interval); err != nil {
			return op, fmt.Errorf("operation %s: %w (%w)", id, ErrOperationPending, err)
		}
	}
}

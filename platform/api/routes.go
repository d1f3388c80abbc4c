package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/weirstream/weir/checkpoint"
	"github.com/weirstream/weir/platform/jobs"
	"github.com/weirstream/weir/platform/registry"
	"github.com/weirstream/weir/tenants"
)

// routeTable is every route of the API.
func routeTable() []route {
	return []route{
		{"GET", "/v1/healthz", public, "health", "Is the server up", "", 200, "Health", (*Server).health},
		{"GET", "/v1/openapi.json", public, "openapi", "This API's OpenAPI document", "", 200, "", (*Server).openapi},
		{"GET", "/v1/me", anyKey, "getMe", "The caller's key, tenant and role", "", 200, "Me", (*Server).me},
		{"GET", "/v1/quotas", tenantRead, "getQuotas", "The caller's tenant's quotas and usage", "", 200, "QuotasAndUsage", (*Server).quotas},

		{"POST", "/v1/tenants", adminOnly, "createTenant", "Create a tenant", "CreateTenant", 201, "Tenant", (*Server).createTenant},
		{"GET", "/v1/tenants", adminOnly, "listTenants", "List tenants", "", 200, "TenantPage", (*Server).listTenants},
		{"GET", "/v1/tenants/:tenant", adminOnly, "getTenant", "A tenant with its usage", "", 200, "Tenant", (*Server).getTenant},
		{"PUT", "/v1/tenants/:tenant/quotas", adminOnly, "setQuotas", "Set a tenant's quotas", "Quotas", 200, "Tenant", (*Server).setQuotas},
		{"DELETE", "/v1/tenants/:tenant", adminOnly, "deleteTenant", "Delete a tenant and everything it owns", "", 204, "", (*Server).deleteTenant},
		{"POST", "/v1/tenants/:tenant/keys", adminOnly, "createTenantKey", "Create an API key of a tenant (admin)", "CreateKey", 201, "CreatedKey", (*Server).createKey},
		{"GET", "/v1/tenants/:tenant/keys", adminOnly, "listTenantKeys", "List a tenant's API keys (admin)", "", 200, "KeyPage", (*Server).listKeys},
		{"DELETE", "/v1/tenants/:tenant/keys/:key", adminOnly, "revokeTenantKey", "Revoke a tenant's API key (admin)", "", 204, "", (*Server).revokeKey},
		{"POST", "/v1/keys", tenantKeys, "createKey", "Create an API key of the caller's tenant", "CreateKey", 201, "CreatedKey", (*Server).createKey},
		{"GET", "/v1/keys", tenantKeys, "listKeys", "List the caller's tenant's API keys", "", 200, "KeyPage", (*Server).listKeys},
		{"DELETE", "/v1/keys/:key", tenantKeys, "revokeKey", "Revoke an API key of the caller's tenant", "", 204, "", (*Server).revokeKey},

		{"POST", "/v1/modules/:name", tenantWrite, "uploadModule", "Upload a module version (raw application/wasm or multipart field \"module\")", "wasm", 201, "ModuleVersion", (*Server).uploadModule},
		{"GET", "/v1/modules", tenantRead, "listModules", "List module names with their latest version", "", 200, "ModuleNamePage", (*Server).listModules},
		{"GET", "/v1/modules/:name", tenantRead, "getModule", "A module name and its versions", "", 200, "ModuleVersions", (*Server).getModule},
		{"DELETE", "/v1/modules/:name", tenantWrite, "deleteModule", "Delete every version of a module", "", 204, "", (*Server).deleteModule},
		{"GET", "/v1/modules/:name/versions/:version", tenantRead, "getModuleVersion", "A module version (number, latest or sha256 digest)", "", 200, "ModuleVersion", (*Server).getModuleVersion},
		{"GET", "/v1/modules/:name/versions/:version/wasm", tenantRead, "getModuleWasm", "A module version's bytes", "", 200, "wasm", (*Server).getModuleWasm},
		{"DELETE", "/v1/modules/:name/versions/:version", tenantWrite, "deleteModuleVersion", "Delete a module version", "", 204, "", (*Server).deleteModuleVersion},

		{"POST", "/v1/jobs", tenantWrite, "deployJob", "Deploy a job (YAML spec, or JSON with spec)", "spec", 201, "Job", (*Server).deployJob},
		{"GET", "/v1/jobs", tenantRead, "listJobs", "List jobs, newest first", "", 200, "JobPage", (*Server).listJobs},
		{"GET", "/v1/jobs/:job", tenantRead, "getJob", "A job with its graph, metrics and checkpoints", "", 200, "JobDetail", (*Server).getJob},
		{"DELETE", "/v1/jobs/:job", tenantWrite, "deleteJob", "Forget a job that is over, with its checkpoints", "", 204, "", (*Server).deleteJob},
		{"POST", "/v1/jobs/:job/cancel", tenantWrite, "cancelJob", "Cancel a job", "", 200, "Job", (*Server).cancelJob},
		{"POST", "/v1/jobs/:job/savepoints", tenantWrite, "triggerSavepoint", "Take a savepoint", "OperationRequest", 202, "Operation", (*Server).triggerSavepoint},
		{"POST", "/v1/jobs/:job/stop", tenantWrite, "stopJob", "Stop a job with a savepoint", "OperationRequest", 202, "Operation", (*Server).stopJob},
		{"POST", "/v1/jobs/:job/upgrade", tenantWrite, "upgradeJob", "Upgrade a job's modules through a savepoint", "Upgrade", 202, "Operation", (*Server).upgradeJob},
		{"POST", "/v1/jobs/:job/rescale", tenantWrite, "rescaleJob", "Change a job's parallelism through a savepoint", "Rescale", 202, "Operation", (*Server).rescaleJob},
		{"GET", "/v1/jobs/:job/exceptions", tenantRead, "listExceptions", "A job's failures, newest first", "", 200, "ExceptionPage", (*Server).listExceptions},
		{"GET", "/v1/jobs/:job/logs", tenantRead, "listLogs", "A job's log lines, oldest first", "", 200, "LogPage", (*Server).listLogs},
		{"GET", "/v1/jobs/:job/checkpoints", tenantRead, "listCheckpoints", "A job's recent checkpoints, newest first", "", 200, "CheckpointPage", (*Server).listCheckpoints},
		{"GET", "/v1/jobs/:job/savepoints", tenantRead, "listJobSavepoints", "A job's savepoints, newest first", "", 200, "SavepointPage", (*Server).listJobSavepoints},

		{"GET", "/v1/savepoints", tenantRead, "listSavepoints", "The tenant's savepoints, newest first", "", 200, "SavepointPage", (*Server).listSavepoints},
		{"GET", "/v1/savepoints/:savepoint", tenantRead, "getSavepoint", "A savepoint", "", 200, "Savepoint", (*Server).getSavepoint},
		{"DELETE", "/v1/savepoints/:savepoint", tenantWrite, "deleteSavepoint", "Delete a savepoint and its files", "", 204, "", (*Server).deleteSavepoint},
		{"GET", "/v1/operations/:operation", tenantRead, "getOperation", "An operation's progress", "", 200, "Operation", (*Server).getOperation},
	}
}

func (s *Server) health(c echo.Context, _ tenants.Principal) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) openapi(c echo.Context, _ tenants.Principal) error {
	return c.JSON(http.StatusOK, s.OpenAPI())
}

// Me is the caller.
type Me struct {
	KeyID     string       `json:"key_id"`
	Tenant    string       `json:"tenant"`
	Role      tenants.Role `json:"role"`
	ExpiresAt *time.Time   `json:"expires_at,omitempty"`
}

func (s *Server) me(c echo.Context, p tenants.Principal) error {
	return c.JSON(http.StatusOK, Me{KeyID: p.KeyID, Tenant: p.Tenant, Role: p.Role, ExpiresAt: p.ExpiresAt})
}

// QuotasAndUsage is a tenant's quotas next to what it uses.
type QuotasAndUsage struct {
	Tenant string         `json:"tenant"`
	Quotas tenants.Quotas `json:"quotas"`
	Usage  tenants.Usage  `json:"usage"`
}

func (s *Server) quotas(c echo.Context, p tenants.Principal) error {
	t, err := s.cfg.Tenants.Tenant(p.Tenant)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, QuotasAndUsage{Tenant: t.ID, Quotas: t.Quotas, Usage: s.usage(t.ID)})
}

// TenantView is a tenant with its usage.
type TenantView struct {
	tenants.Tenant
	Usage *tenants.Usage `json:"usage,omitempty"`
}

// CreateTenant is the body of POST /v1/tenants.
type CreateTenant struct {
	ID     string          `json:"id"`
	Quotas *tenants.Quotas `json:"quotas,omitempty"`
}

func (s *Server) createTenant(c echo.Context, _ tenants.Principal) error {
	var req CreateTenant
	if err := s.decodeJSON(c, &req, false); err != nil {
		return err
	}
	if err := checkpoint.ValidateID("tenant", req.ID); err != nil {
		return fieldProblem("id", err.Error())
	}
	t, err := s.cfg.Tenants.CreateTenant(req.ID, req.Quotas)
	if errors.Is(err, tenants.ErrInvalid) {
		// What is left to be invalid is a quota, named by its JSON name.
		p := problemOf(err)
		for i := range p.Errors {
			p.Errors[i].Field = "quotas." + p.Errors[i].Field
		}
		return p
	}
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/v1/tenants/"+t.ID)
	return c.JSON(http.StatusCreated, TenantView{Tenant: t})
}

func (s *Server) listTenants(c echo.Context, _ tenants.Principal) error {
	return paginate(c, s.cfg.Tenants.Tenants())
}

func (s *Server) getTenant(c echo.Context, _ tenants.Principal) error {
	t, err := s.cfg.Tenants.Tenant(c.Param("tenant"))
	if err != nil {
		return err
	}
	u := s.usage(t.ID)
	return c.JSON(http.StatusOK, TenantView{Tenant: t, Usage: &u})
}

func (s *Server) setQuotas(c echo.Context, _ tenants.Principal) error {
	var q tenants.Quotas
	if err := s.decodeJSON(c, &q, false); err != nil {
		return err
	}
	t, err := s.cfg.Tenants.SetQuotas(c.Param("tenant"), q)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, TenantView{Tenant: t})
}

func (s *Server) deleteTenant(c echo.Context, _ tenants.Principal) error {
	id := c.Param("tenant")
	if _, err := s.cfg.Tenants.Tenant(id); err != nil {
		return err
	}
	ctx := c.Request().Context()
	// Jobs first: it refuses while any runs, before anything is deleted,
	// and refuses the tenant's deploys until the rest is deleted too.
	err := s.cfg.Jobs.DeleteTenant(ctx, id, func() error {
		if err := s.cfg.Registry.DeleteTenant(ctx, id); err != nil {
			return err
		}
		if err := s.cfg.Tenants.DeleteTenant(id); err != nil {
			return err
		}
		if s.cfg.TenantCleanup != nil {
			return s.cfg.TenantCleanup(id)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// CreateKey is the body of a key creation.
type CreateKey struct {
	Name      string       `json:"name"`
	Role      tenants.Role `json:"role"`
	ExpiresAt *string      `json:"expires_at,omitempty"`
}

// CreatedKey is a new key with its token, shown this once.
type CreatedKey struct {
	Key   tenants.Key `json:"key"`
	Token string      `json:"token"`
}

// keyTenant is the tenant a key route acts on: the path's (admin) or the
// caller's (owner).
func (s *Server) keyTenant(c echo.Context, p tenants.Principal) (string, error) {
	if t := c.Param("tenant"); t != "" {
		_, err := s.cfg.Tenants.Tenant(t)
		return t, err
	}
	return p.Tenant, nil
}

func (s *Server) createKey(c echo.Context, p tenants.Principal) error {
	tenant, err := s.keyTenant(c, p)
	if err != nil {
		return err
	}
	var req CreateKey
	if err := s.decodeJSON(c, &req, false); err != nil {
		return err
	}
	role, err := tenants.ParseRole(string(req.Role))
	if err != nil {
		return fieldProblem("role", err.Error())
	}
	if role == tenants.RoleAdmin {
		// Every key this API creates belongs to a tenant.
		return fieldProblem("role", "a tenant key cannot have role admin: admin keys belong to no tenant")
	}
	exp, err := timeParam("expires_at", req.ExpiresAt)
	if err != nil {
		return err
	}
	k, token, err := s.cfg.Tenants.CreateKey(tenant, role, req.Name, exp)
	if errors.Is(err, tenants.ErrInvalid) {
		// The role was checked above; the service judges the name and the
		// expiry (against its clock), and says which by naming expires_at.
		field := "name"
		if strings.Contains(err.Error(), "expires_at") {
			field = "expires_at"
		}
		return fieldProblem(field, err.Error())
	}
	if err != nil {
		return err
	}
	// The key's resource is the path that revokes it.
	loc := "/v1/keys/" + k.ID
	if c.Param("tenant") != "" {
		loc = "/v1/tenants/" + tenant + "/keys/" + k.ID
	}
	c.Response().Header().Set(echo.HeaderLocation, loc)
	return c.JSON(http.StatusCreated, CreatedKey{Key: k, Token: token})
}

func (s *Server) listKeys(c echo.Context, p tenants.Principal) error {
	tenant, err := s.keyTenant(c, p)
	if err != nil {
		return err
	}
	return paginate(c, s.cfg.Tenants.Keys(tenant))
}

func (s *Server) revokeKey(c echo.Context, p tenants.Principal) error {
	tenant, err := s.keyTenant(c, p)
	if err != nil {
		return err
	}
	if err := s.cfg.Tenants.RevokeKey(tenant, c.Param("key")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// uploadModule takes the module as the raw body or a multipart file field
// "module". The body is bounded by the tenant's module_bytes quota.
func (s *Server) uploadModule(c echo.Context, p tenants.Principal) error {
	t, err := s.cfg.Tenants.Tenant(p.Tenant)
	if err != nil {
		return err
	}
	name := c.Param("name")
	if err := registry.ValidateName(name); err != nil {
		return fieldProblem("name", err.Error())
	}
	limit := t.Quotas.ModuleBytes
	tooLarge := func(n int64) error {
		return &registry.LimitError{Quota: registry.QuotaModuleBytes, Limit: limit, Requested: n}
	}
	var wasm []byte
	switch mt := mediaType(c); mt {
	case "application/wasm", "application/octet-stream":
		// The body is the module: its length, when announced, is the
		// module's size.
		if cl := c.Request().ContentLength; cl > limit {
			return tooLarge(cl)
		}
		wasm, err = io.ReadAll(io.LimitReader(c.Request().Body, limit+1))
	case "multipart/form-data":
		// The form is larger than its module (boundaries, headers, maybe
		// other fields): allow it a MiB of that.
		const formOverhead = 1 << 20
		c.Request().Body = http.MaxBytesReader(c.Response(), c.Request().Body, limit+formOverhead)
		fh, ferr := c.FormFile("module")
		if ferr != nil {
			if mbe := (*http.MaxBytesError)(nil); errors.As(ferr, &mbe) || strings.Contains(ferr.Error(), "request body too large") {
				p := quotaProblem(ProbQuotaExceeded, registry.QuotaModuleBytes, limit, 0,
					fmt.Errorf("the multipart body is larger than a module of the %s quota of %d bytes can be", registry.QuotaModuleBytes, limit))
				p.Status = http.StatusRequestEntityTooLarge
				return p
			}
			return fieldProblem("module", "the multipart form needs a file field named \"module\": "+ferr.Error())
		}
		if fh.Size > limit {
			return tooLarge(fh.Size)
		}
		f, ferr := fh.Open()
		if ferr != nil {
			return ferr
		}
		wasm, err = io.ReadAll(io.LimitReader(f, limit+1))
		f.Close()
	default:
		return ProbUnsupportedMedia.problem(fmt.Sprintf("upload the module as application/wasm (or application/octet-stream) or multipart/form-data, not %q", mt))
	}
	if err != nil {
		return ProbInvalidRequest.problem("reading the module: " + err.Error())
	}
	if int64(len(wasm)) > limit {
		return tooLarge(int64(len(wasm)))
	}
	if len(wasm) == 0 {
		return fieldProblem("module", "the module is empty")
	}
	v, created, err := s.cfg.Registry.Upload(c.Request().Context(), p.Tenant, name, wasm,
		registry.Limits{MaxModules: t.Quotas.Modules, MaxBytes: limit})
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, fmt.Sprintf("/v1/modules/%s/versions/%d", v.Name, v.Version))
	if !created {
		return c.JSON(http.StatusOK, v)
	}
	return c.JSON(http.StatusCreated, v)
}

func (s *Server) listModules(c echo.Context, p tenants.Principal) error {
	names, err := s.cfg.Registry.Names(p.Tenant)
	if err != nil {
		return err
	}
	return paginate(c, names)
}

// ModuleVersions is a module name with its versions.
type ModuleVersions struct {
	Name     string             `json:"name"`
	Versions []registry.Version `json:"versions"`
}

func (s *Server) getModule(c echo.Context, p tenants.Principal) error {
	vs, err := s.cfg.Registry.Versions(p.Tenant, c.Param("name"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ModuleVersions{Name: c.Param("name"), Versions: vs})
}

func (s *Server) inUse(tenant string) func(string) bool {
	return func(digest string) bool { return s.cfg.Jobs.ModuleInUse(tenant, digest) }
}

func (s *Server) deleteModule(c echo.Context, p tenants.Principal) error {
	if err := s.cfg.Registry.DeleteName(c.Request().Context(), p.Tenant, c.Param("name"), s.inUse(p.Tenant)); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) getModuleVersion(c echo.Context, p tenants.Principal) error {
	v, err := s.cfg.Registry.Get(p.Tenant, c.Param("name"), c.Param("version"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

func (s *Server) getModuleWasm(c echo.Context, p tenants.Principal) error {
	v, err := s.cfg.Registry.Get(p.Tenant, c.Param("name"), c.Param("version"))
	if err != nil {
		return err
	}
	b, err := s.cfg.Registry.Bytes(c.Request().Context(), p.Tenant, v)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-%d.wasm"`, v.Name, v.Version))
	c.Response().Header().Set("ETag", `"`+v.Digest+`"`)
	return c.Blob(http.StatusOK, "application/wasm", b)
}

func (s *Server) deleteModuleVersion(c echo.Context, p tenants.Principal) error {
	if err := s.cfg.Registry.Delete(c.Request().Context(), p.Tenant, c.Param("name"), c.Param("version"), s.inUse(p.Tenant)); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// DeployJob is the JSON body of POST /v1/jobs.
type DeployJob struct {
	// Spec is the job spec as a JSON object or a YAML string.
	Spec                  json.RawMessage `json:"spec"`
	FromSavepoint         string          `json:"from_savepoint,omitempty"`
	AllowNonRestoredState bool            `json:"allow_non_restored_state,omitempty"`
}

func (s *Server) deployJob(c echo.Context, p tenants.Principal) error {
	var req jobs.DeployRequest
	switch mt := mediaType(c); mt {
	case "application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml":
		b, err := readBody(c, s.cfg.MaxBodyBytes)
		if err != nil {
			return err
		}
		req.Spec = b
		req.FromSavepoint = c.QueryParam("from_savepoint")
		req.AllowNonRestoredState = c.QueryParam("allow_non_restored_state") == "true"
	case "application/json":
		var body DeployJob
		if err := s.decodeJSON(c, &body, false); err != nil {
			return err
		}
		req.FromSavepoint, req.AllowNonRestoredState = body.FromSavepoint, body.AllowNonRestoredState
		var yamlText string
		switch {
		case len(body.Spec) == 0 || string(body.Spec) == "null":
			return fieldProblem("spec", "required: the job spec as an object or a YAML string")
		case json.Unmarshal(body.Spec, &yamlText) == nil:
			req.Spec = []byte(yamlText)
		case body.Spec[0] == '{':
			// One key a line: the parser reports problems by line, and
			// locateSpecErrors turns the line into the field.
			var b bytes.Buffer
			if err := json.Indent(&b, body.Spec, "", "  "); err != nil {
				return fieldProblem("spec", "is not valid JSON: "+err.Error())
			}
			req.Spec = b.Bytes()
		default:
			return fieldProblem("spec", "must be an object or a YAML string")
		}
	default:
		return ProbUnsupportedMedia.problem(fmt.Sprintf("send the job spec as application/yaml, or application/json {\"spec\": ...}, not %q", mt))
	}
	job, err := s.cfg.Jobs.Deploy(p.Tenant, req)
	if errors.Is(err, jobs.ErrNotFound) && req.FromSavepoint != "" {
		// The savepoint the body names (nothing else Deploy looks up by
		// id): a bad field of the request, not a missing route.
		return fieldProblem("from_savepoint", fmt.Sprintf("the tenant has no savepoint %q", req.FromSavepoint))
	}
	if err != nil {
		return locateSpecErrors(req.Spec, err)
	}
	c.Response().Header().Set(echo.HeaderLocation, "/v1/jobs/"+job.ID)
	return c.JSON(http.StatusCreated, job)
}

func (s *Server) listJobs(c echo.Context, p tenants.Principal) error {
	return paginate(c, s.cfg.Jobs.List(p.Tenant))
}

func (s *Server) getJob(c echo.Context, p tenants.Principal) error {
	d, err := s.cfg.Jobs.Get(p.Tenant, c.Param("job"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

func (s *Server) deleteJob(c echo.Context, p tenants.Principal) error {
	if err := s.cfg.Jobs.Delete(c.Request().Context(), p.Tenant, c.Param("job")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) cancelJob(c echo.Context, p tenants.Principal) error {
	j, err := s.cfg.Jobs.Cancel(p.Tenant, c.Param("job"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, j)
}

// OperationRequest is the optional body of savepoint and stop, and part
// of upgrade's and rescale's.
type OperationRequest struct {
	RequestID string `json:"request_id,omitempty"`
}

func (o *OperationRequest) requestID() string { return o.RequestID }

// startOperation decodes an operation's body (optional for savepoint and
// stop), reads its request id (header or body) and answers the operation
// start began, or the earlier one of the same request id.
func startOperation[B any, PB interface {
	*B
	requestID() string
}](s *Server, c echo.Context, optional bool, start func(body *B, requestID string) (jobs.Operation, error)) error {
	body := PB(new(B))
	if err := s.decodeJSON(c, body, optional); err != nil {
		return err
	}
	rid, err := requestID(c, body.requestID())
	if err != nil {
		return err
	}
	op, err := start((*B)(body), rid)
	if err != nil {
		return err
	}
	return accepted(c, op)
}

func (s *Server) triggerSavepoint(c echo.Context, p tenants.Principal) error {
	return startOperation(s, c, true, func(_ *OperationRequest, rid string) (jobs.Operation, error) {
		return s.cfg.Jobs.TriggerSavepoint(p.Tenant, c.Param("job"), rid)
	})
}

func (s *Server) stopJob(c echo.Context, p tenants.Principal) error {
	return startOperation(s, c, true, func(_ *OperationRequest, rid string) (jobs.Operation, error) {
		return s.cfg.Jobs.Stop(p.Tenant, c.Param("job"), rid)
	})
}

// Upgrade is the body of POST /v1/jobs/{job}/upgrade.
type Upgrade struct {
	jobs.UpgradeRequest
	OperationRequest
}

func (s *Server) upgradeJob(c echo.Context, p tenants.Principal) error {
	return startOperation(s, c, false, func(b *Upgrade, rid string) (jobs.Operation, error) {
		return s.cfg.Jobs.Upgrade(p.Tenant, c.Param("job"), rid, b.UpgradeRequest)
	})
}

// Rescale is the body of POST /v1/jobs/{job}/rescale.
type Rescale struct {
	jobs.RescaleRequest
	OperationRequest
}

func (s *Server) rescaleJob(c echo.Context, p tenants.Principal) error {
	return startOperation(s, c, false, func(b *Rescale, rid string) (jobs.Operation, error) {
		return s.cfg.Jobs.Rescale(p.Tenant, c.Param("job"), rid, b.RescaleRequest)
	})
}

func (s *Server) listExceptions(c echo.Context, p tenants.Principal) error {
	ex, err := s.cfg.Jobs.Exceptions(p.Tenant, c.Param("job"))
	if err != nil {
		return err
	}
	return paginate(c, ex)
}

// listLogs pages by sequence number: page_token is the last seq seen.
func (s *Server) listLogs(c echo.Context, p tenants.Principal) error {
	size, err := pageSize(c)
	if err != nil {
		return err
	}
	var after uint64
	if tok := c.QueryParam("page_token"); tok != "" {
		if after, err = strconv.ParseUint(tok, 10, 64); err != nil {
			return fieldProblem("page_token", "is not a token this server gave")
		}
	}
	lines, next, err := s.cfg.Jobs.Logs(p.Tenant, c.Param("job"), after, size)
	if err != nil {
		return err
	}
	out := page[jobs.LogLine]{Items: lines}
	if out.Items == nil {
		out.Items = []jobs.LogLine{}
	}
	if next != 0 {
		out.NextPageToken = strconv.FormatUint(next, 10)
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) listCheckpoints(c echo.Context, p tenants.Principal) error {
	h, err := s.cfg.Jobs.Checkpoints(p.Tenant, c.Param("job"))
	if err != nil {
		return err
	}
	return paginate(c, h)
}

func (s *Server) listJobSavepoints(c echo.Context, p tenants.Principal) error {
	if _, err := s.cfg.Jobs.Get(p.Tenant, c.Param("job")); err != nil {
		return err
	}
	sps, err := s.cfg.Jobs.Savepoints(p.Tenant, c.Param("job"))
	if err != nil {
		return err
	}
	return paginate(c, sps)
}

func (s *Server) listSavepoints(c echo.Context, p tenants.Principal) error {
	sps, err := s.cfg.Jobs.Savepoints(p.Tenant, "")
	if err != nil {
		return err
	}
	return paginate(c, sps)
}

func (s *Server) getSavepoint(c echo.Context, p tenants.Principal) error {
	sp, err := s.cfg.Jobs.Savepoint(p.Tenant, c.Param("savepoint"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, sp)
}

func (s *Server) deleteSavepoint(c echo.Context, p tenants.Principal) error {
	if err := s.cfg.Jobs.DeleteSavepoint(c.Request().Context(), p.Tenant, c.Param("savepoint")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) getOperation(c echo.Context, p tenants.Principal) error {
	op, err := s.cfg.Jobs.Operation(p.Tenant, c.Param("operation"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, op)
}

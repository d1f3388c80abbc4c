package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/weirstream/weir/platform/jobs"
	"github.com/weirstream/weir/platform/registry"
	"github.com/weirstream/weir/runtime"
	"github.com/weirstream/weir/tenants"
	"github.com/weirstream/weir/wasmhost"
)

// ProblemTypePrefix starts every problem type: "urn:weir:problem:not-found".
const ProblemTypePrefix = "urn:weir:problem:"

// Problem is an RFC 9457 problem document with Weir's extension members.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Errors lists job spec problems, each at its field.
	Errors []FieldProblem `json:"errors,omitempty"`
	// Quota, Limit and Used describe a quota-exceeded problem.
	Quota string `json:"quota,omitempty"`
	Limit *int64 `json:"limit,omitempty"`
	Used  *int64 `json:"used,omitempty"`
	// ModuleError is the stable reason of an invalid-module problem.
	ModuleError string `json:"module_error,omitempty"`
	retryAfter  time.Duration
}

// FieldProblem is one problem at one field.
type FieldProblem struct {
	Field   string `json:"field"`
	Problem string `json:"problem"`
}

// ProblemKind is one entry of the error catalogue.
type ProblemKind struct {
	Code   string
	Status int
	Title  string
}

// The error catalogue: every problem the API answers. Codes are stable.
var (
	ProbUnauthenticated  = ProblemKind{"unauthenticated", http.StatusUnauthorized, "Missing or invalid API key"}
	ProbKeyRevoked       = ProblemKind{"key-revoked", http.StatusUnauthorized, "The API key was revoked"}
	ProbKeyExpired       = ProblemKind{"key-expired", http.StatusUnauthorized, "The API key has expired"}
	ProbForbidden        = ProblemKind{"forbidden", http.StatusForbidden, "The API key's role does not allow this"}
	ProbNeedsTenantKey   = ProblemKind{"tenant-key-required", http.StatusForbidden, "This resource belongs to a tenant; use a tenant's key"}
	ProbNotFound         = ProblemKind{"not-found", http.StatusNotFound, "Not found"}
	ProbMethodNotAllowed = ProblemKind{"method-not-allowed", http.StatusMethodNotAllowed, "Method not allowed"}
	ProbInvalidRequest   = ProblemKind{"invalid-request", http.StatusBadRequest, "The request is malformed"}
	ProbInvalidJobSpec   = ProblemKind{"invalid-job-spec", http.StatusBadRequest, "The job spec is invalid"}
	ProbInvalidModule    = ProblemKind{"invalid-module", http.StatusBadRequest, "The module is not a valid Weir module"}
	ProbUnsupportedMedia = ProblemKind{"unsupported-media-type", http.StatusUnsupportedMediaType, "Unsupported content type"}
	ProbTooLarge         = ProblemKind{"payload-too-large", http.StatusRequestEntityTooLarge, "The request body is too large"}
	ProbQuotaExceeded    = ProblemKind{"quota-exceeded", http.StatusForbidden, "A quota of the tenant would be exceeded"}
	ProbRateLimited      = ProblemKind{"rate-limited", http.StatusTooManyRequests, "Too many requests"}
	ProbAlreadyExists    = ProblemKind{"already-exists", http.StatusConflict, "It already exists"}
	ProbConflict         = ProblemKind{"conflict", http.StatusConflict, "The resource's state does not allow this"}
	ProbModuleInUse      = ProblemKind{"module-in-use", http.StatusConflict, "A job uses the module"}
	ProbRequestIDReused  = ProblemKind{"request-id-reused", http.StatusConflict, "The request id was used for another operation"}
	ProbNoCapacity       = ProblemKind{"insufficient-slots", http.StatusServiceUnavailable, "Not enough free slots"}
	ProbCorrupt          = ProblemKind{"corrupt-object", http.StatusInternalServerError, "A stored object is damaged"}
	ProbInternal         = ProblemKind{"internal", http.StatusInternalServerError, "Internal error"}
)

// Catalogue lists every problem kind (docs and the OpenAPI document).
var Catalogue = []ProblemKind{
	ProbUnauthenticated, ProbKeyRevoked, ProbKeyExpired, ProbForbidden, ProbNeedsTenantKey, ProbNotFound,
	ProbMethodNotAllowed, ProbInvalidRequest, ProbInvalidJobSpec, ProbInvalidModule, ProbUnsupportedMedia,
	ProbTooLarge, ProbQuotaExceeded, ProbRateLimited, ProbAlreadyExists, ProbConflict, ProbModuleInUse,
	ProbRequestIDReused, ProbNoCapacity, ProbCorrupt, ProbInternal,
}

func (k ProblemKind) problem(detail string) *Problem {
	return &Problem{Type: ProblemTypePrefix + k.Code, Title: k.Title, Status: k.Status, Detail: detail}
}

func (p *Problem) Error() string { return p.Type + ": " + p.Detail }

// problemOf maps an error of the domain packages to its problem.
func problemOf(err error) *Problem {
	var (
		p     *Problem
		specs runtime.SpecErrors
		spec  *runtime.SpecError
		qe    *tenants.QuotaError
		le    *registry.LimitError
		me    *wasmhost.ModuleError
		ce    *jobs.CapacityError
		ie    *registry.InUseError
		re    *jobs.RequestIDError
		he    *echo.HTTPError
		mbe   *http.MaxBytesError
	)
	switch {
	case errors.As(err, &p):
		return p
	case errors.As(err, &specs):
		p := ProbInvalidJobSpec.problem(err.Error())
		for _, s := range specs {
			p.Errors = append(p.Errors, specFieldProblem(s))
		}
		return p
	case errors.As(err, &spec):
		p := ProbInvalidJobSpec.problem(err.Error())
		p.Errors = []FieldProblem{specFieldProblem(spec)}
		return p
	case errors.As(err, &qe):
		return quotaProblem(ProbQuotaExceeded, qe.Quota, qe.Limit, qe.Used, err)
	case errors.As(err, &le):
		kind := ProbQuotaExceeded
		if le.Quota == registry.QuotaModuleBytes {
			kind.Status = http.StatusRequestEntityTooLarge
		}
		return quotaProblem(kind, le.Quota, le.Limit, le.Used, err)
	case errors.As(err, &me):
		p := ProbInvalidModule.problem(me.Message())
		p.ModuleError = me.Code().String()
		return p
	case errors.As(err, &ce):
		return ProbNoCapacity.problem(err.Error())
	case errors.As(err, &ie):
		return ProbModuleInUse.problem(err.Error())
	case errors.As(err, &re):
		return ProbRequestIDReused.problem(err.Error())
	case errors.As(err, &mbe):
		return ProbTooLarge.problem(fmt.Sprintf("the body is larger than %d bytes", mbe.Limit))
	case errors.Is(err, tenants.ErrRevoked):
		return ProbKeyRevoked.problem("the key was revoked")
	case errors.Is(err, tenants.ErrExpired):
		return ProbKeyExpired.problem("the key has expired")
	case errors.Is(err, tenants.ErrUnauthenticated):
		return ProbUnauthenticated.problem("the token is malformed or unknown")
	case errors.Is(err, tenants.ErrNotFound), errors.Is(err, registry.ErrNotFound), errors.Is(err, jobs.ErrNotFound):
		return ProbNotFound.problem(err.Error())
	case errors.Is(err, tenants.ErrExists):
		return ProbAlreadyExists.problem(err.Error())
	case errors.Is(err, tenants.ErrInvalid):
		p := ProbInvalidRequest.problem(err.Error())
		for _, fe := range fieldErrors(err) {
			p.Errors = append(p.Errors, FieldProblem{Field: fe.Field, Problem: fe.Problem})
		}
		return p
	case errors.Is(err, registry.ErrInvalidName):
		// Job specs' references are spec errors; what reaches here is a
		// route's {name} or {version}.
		return fieldProblem("name", err.Error())
	case errors.Is(err, registry.ErrBadRef):
		return fieldProblem("version", err.Error())
	case errors.Is(err, jobs.ErrConflict):
		return ProbConflict.problem(err.Error())
	case errors.Is(err, registry.ErrCorrupt):
		return ProbCorrupt.problem(err.Error())
	case errors.As(err, &he):
		switch he.Code {
		case http.StatusNotFound:
			return ProbNotFound.problem("no such route")
		case http.StatusMethodNotAllowed:
			return ProbMethodNotAllowed.problem("the route does not take this method")
		case http.StatusRequestEntityTooLarge:
			return ProbTooLarge.problem(fmt.Sprint(he.Message))
		case http.StatusUnsupportedMediaType:
			return ProbUnsupportedMedia.problem(fmt.Sprint(he.Message))
		}
		if he.Code >= 400 && he.Code < 500 {
			return ProbInvalidRequest.problem(fmt.Sprint(he.Message))
		}
	}
	return ProbInternal.problem(err.Error())
}

// specFieldProblem is a spec error as a field problem. Connector config
// errors name their field at the start of the problem ("config.count:
// cannot use string as int64", connectors/doc.go), under the node the
// engine names: the field is the node's config field.
func specFieldProblem(e *runtime.SpecError) FieldProblem {
	field, problem := e.Field, e.Problem
	if head, rest, ok := strings.Cut(problem, ": "); ok && field != "" &&
		(head == "config" || strings.HasPrefix(head, "config.") || strings.HasPrefix(head, "config[")) && !strings.ContainsAny(head, " \t\n") {
		field, problem = field+"."+head, rest
	}
	return FieldProblem{Field: field, Problem: problem}
}

func quotaProblem(kind ProblemKind, quota string, limit, used int64, err error) *Problem {
	p := kind.problem(err.Error())
	p.Quota, p.Limit, p.Used = quota, &limit, &used
	return p
}

// handleError is echo's error handler: every error becomes a problem.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	p := problemOf(err)
	if p.Status >= 500 {
		s.cfg.Logger.Error("request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
		if p.Type == ProblemTypePrefix+ProbInternal.Code {
			p.Detail = "the server failed to handle the request; it is logged"
		}
	}
	// The path as requested: instance is a URI reference.
	p.Instance = c.Request().URL.EscapedPath()
	if p.retryAfter > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(int((p.retryAfter+time.Second-1)/time.Second)))
	}
	b, _ := json.Marshal(p)
	c.Response().Header().Set(echo.HeaderContentType, "application/problem+json")
	c.Response().WriteHeader(p.Status)
	_, _ = c.Response().Write(b)
}

// fieldErrors collects the quota field errors in an error tree.
func fieldErrors(err error) []*tenants.FieldError {
	var out []*tenants.FieldError
	var walk func(error)
	walk = func(e error) {
		if fe, ok := e.(*tenants.FieldError); ok {
			out = append(out, fe)
			return
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			if x := u.Unwrap(); x != nil {
				walk(x)
			}
		}
	}
	walk(err)
	return out
}

package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/weirstream/weir/platform/jobs"
	"github.com/weirstream/weir/platform/registry"
	"github.com/weirstream/weir/tenants"
)

// Config is what the API serves.
type Config struct {
	Tenants  *tenants.Service
	Registry *registry.Registry
	Jobs     *jobs.Manager
	// TenantCleanup, if set, runs when a tenant is deleted, after its jobs,
	// modules and records are gone (the platform removes its file area).
	TenantCleanup func(tenant string) error
	// MaxBodyBytes bounds request bodies other than module uploads
	// (default 4 MiB).
	MaxBodyBytes int64
	Logger       *slog.Logger
}

// Server is the REST API.
type Server struct {
	cfg    Config
	echo   *echo.Echo
	routes []route
}

// principalKey is where the auth middleware leaves the caller.
const principalKey = "weir.principal"

// access says who may call a route.
type access int

const (
	public      access = iota // no key
	anyKey                    // any valid key
	tenantRead                // a tenant key of any role
	tenantWrite               // owner or developer
	tenantKeys                // owner
	adminOnly
)

// route is one entry of the route table: the server registers it and the
// OpenAPI document describes it.
type route struct {
	method, path string // echo path (":param")
	access       access
	id, summary  string
	request      string // schema of the JSON body ("" none; "spec", "wasm" special)
	status       int    // success status
	response     string // schema of the success body ("" none)
	handler      func(*Server, echo.Context, tenants.Principal) error
}

// New builds the API server.
func New(cfg Config) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 4 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	s := &Server{cfg: cfg, echo: e, routes: routeTable()}
	e.HTTPErrorHandler = s.handleError
	for _, r := range s.routes {
		e.Add(r.method, r.path, s.wrap(r))
	}
	return s
}

// Echo is the underlying server: the console registers its pages on it.
func (s *Server) Echo() *echo.Echo { return s.echo }

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

// Authenticate checks a bearer token as the API does (the console signs
// in with it).
func (s *Server) Authenticate(token string) (tenants.Principal, error) {
	return s.cfg.Tenants.Authenticate(token)
}

// wrap adds authentication, authorisation and the rate limit to a route.
func (s *Server) wrap(r route) echo.HandlerFunc {
	return func(c echo.Context) error {
		// echo matches on the escaped path when the request's escaping is
		// not the default one ("sha256%3A...": URL.RawPath is set), and
		// then hands out the parameters still escaped: unescape them, so
		// that a client that escapes more than it must is served the same.
		if vals := c.ParamValues(); len(vals) > 0 && c.Request().URL.RawPath != "" {
			for i, v := range vals {
				u, err := url.PathUnescape(v)
				if err != nil {
					return ProbInvalidRequest.problem(fmt.Sprintf("path parameter %s: %v", c.ParamNames()[i], err))
				}
				vals[i] = u
			}
			c.SetParamValues(vals...)
		}
		if r.access == public {
			return r.handler(s, c, tenants.Principal{})
		}
		token, ok := BearerToken(c.Request())
		if !ok {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="weir"`)
			return ProbUnauthenticated.problem("send the API key as: Authorization: Bearer <token>")
		}
		p, err := s.cfg.Tenants.Authenticate(token)
		if err != nil {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="weir", error="invalid_token"`)
			return err
		}
		if p.Tenant != "" {
			if ok, wait := s.cfg.Tenants.Allow(p.Tenant); !ok {
				prob := ProbRateLimited.problem(fmt.Sprintf("tenant %q is over its requests_per_second quota", p.Tenant))
				prob.Quota, prob.retryAfter = "requests_per_second", wait
				return prob
			}
		}
		if err := authorize(r.access, p); err != nil {
			return err
		}
		return r.handler(s, c, p)
	}
}

// BearerToken returns the API key of a request's Authorization header
// (the scheme is case-insensitive, RFC 9110 section 11.1).
func BearerToken(r *http.Request) (string, bool) {
	scheme, token, _ := strings.Cut(r.Header.Get(echo.HeaderAuthorization), " ")
	token = strings.TrimSpace(token)
	return token, strings.EqualFold(scheme, "Bearer") && token != ""
}

func authorize(a access, p tenants.Principal) error {
	switch a {
	case anyKey:
		return nil
	case adminOnly:
		if !p.Role.Can(tenants.ActAdmin) {
			return ProbForbidden.problem(fmt.Sprintf("role %s cannot manage tenants; an admin key can", p.Role))
		}
		return nil
	}
	if p.Tenant == "" {
		return ProbNeedsTenantKey.problem("admin keys manage tenants; modules and jobs need a key of their tenant")
	}
	need := map[access]tenants.Action{tenantRead: tenants.ActRead, tenantWrite: tenants.ActWrite, tenantKeys: tenants.ActManageKeys}[a]
	if !p.Role.Can(need) {
		return ProbForbidden.problem(fmt.Sprintf("role %s cannot do this", p.Role))
	}
	return nil
}

// page is a list answer.
type page[T any] struct {
	Items         []T    `json:"items"`
	NextPageToken string `json:"next_page_token"`
}

const (
	defaultPageSize = 50
	maxPageSize     = 500
)

// pageSize reads page_size.
func pageSize(c echo.Context) (int, error) {
	v := c.QueryParam("page_size")
	if v == "" {
		return defaultPageSize, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxPageSize {
		return 0, fieldProblem("page_size", fmt.Sprintf("must be an integer from 1 to %d, not %q", maxPageSize, v))
	}
	return n, nil
}

// paginate answers one page of items (in a stable order) by offset.
func paginate[T any](c echo.Context, items []T) error {
	size, err := pageSize(c)
	if err != nil {
		return err
	}
	off := 0
	if tok := c.QueryParam("page_token"); tok != "" {
		b, err := base64.RawURLEncoding.DecodeString(tok)
		n, err2 := strconv.Atoi(strings.TrimPrefix(string(b), "o"))
		if err != nil || err2 != nil || !strings.HasPrefix(string(b), "o") || n < 0 {
			return fieldProblem("page_token", "is not a token this server gave")
		}
		off = n
	}
	p := page[T]{Items: []T{}}
	if off < len(items) {
		end := min(off+size, len(items))
		p.Items = items[off:end]
		if end < len(items) {
			p.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte("o" + strconv.Itoa(end)))
		}
	}
	return c.JSON(http.StatusOK, p)
}

func fieldProblem(field, problem string) *Problem {
	p := ProbInvalidRequest.problem(field + ": " + problem)
	p.Errors = []FieldProblem{{Field: field, Problem: problem}}
	return p
}

// mediaType is the request's content type without parameters.
func mediaType(c echo.Context) string {
	mt, _, err := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	if err != nil {
		return ""
	}
	return mt
}

// readBody reads the whole body up to limit bytes.
func readBody(c echo.Context, limit int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		return nil, ProbInvalidRequest.problem("reading the body: " + err.Error())
	}
	return b, nil
}

// decodeJSON decodes a JSON body strictly into v. An empty body is allowed
// when optional (v keeps its zero value).
func (s *Server) decodeJSON(c echo.Context, v any, optional bool) error {
	b, err := readBody(c, s.cfg.MaxBodyBytes)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		if optional {
			return nil
		}
		return ProbInvalidRequest.problem("the request needs a JSON body")
	}
	if mt := mediaType(c); mt != "application/json" {
		return ProbUnsupportedMedia.problem(fmt.Sprintf("send application/json, not %q", mt))
	}
	return strictJSON(b, v)
}

func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF) {
			return ProbInvalidRequest.problem("the body is not valid JSON: " + err.Error())
		}
		msg := strings.TrimPrefix(err.Error(), "json: ")
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te) && te.Field == "":
			return ProbInvalidRequest.problem("the body must be a JSON object, not a JSON " + te.Value)
		case te != nil:
			msg = fmt.Sprintf("must be %s, not a JSON %s", te.Type, te.Value)
		case strings.HasPrefix(msg, "unknown field "):
			msg = "unknown field"
		}
		// encoding/json names the field of a type error only, and then by
		// the Go path through embedded structs; find it by JSON names.
		if field := jsonErrorField(b, reflect.TypeOf(v)); field != "" {
			return fieldProblem(field, msg)
		}
		return ProbInvalidRequest.problem("the body does not fit the request: " + msg)
	}
	if dec.More() {
		return ProbInvalidRequest.problem("the body has more than one JSON value")
	}
	return nil
}

// jsonErrorField finds the member of a JSON object that fails to decode
// into t, as a path of JSON names ("quotas.call_timeout"): each member is
// decoded alone, in document order, and the members of a failing object
// are searched in turn. "" when b is not an object or nothing fails alone.
func jsonErrorField(b []byte, t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct && (t.Kind() != reflect.Map || t.Key().Kind() != reflect.String) {
		return ""
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return ""
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		name, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return ""
		}
		var ft reflect.Type
		if t.Kind() == reflect.Map {
			ft = t.Elem()
		} else if ft = jsonFieldType(t, name); ft == nil {
			return name // unknown
		}
		one := reflect.New(ft)
		d := json.NewDecoder(bytes.NewReader(raw))
		d.DisallowUnknownFields()
		if d.Decode(one.Interface()) == nil {
			continue
		}
		if sub := jsonErrorField(raw, ft); sub != "" {
			return name + "." + sub
		}
		return name
	}
	return ""
}

// jsonFieldType is the type of t's field that encoding/json fills from the
// member name (embedded structs included), or nil.
func jsonFieldType(t reflect.Type, name string) reflect.Type {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if f.Anonymous && tag == "" && f.Type.Kind() == reflect.Struct {
			if ft := jsonFieldType(f.Type, name); ft != nil {
				return ft
			}
			continue
		}
		if !f.IsExported() || tag == "-" {
			continue
		}
		n, _, _ := strings.Cut(tag, ",")
		if n == "" {
			n = f.Name
		}
		if n == name {
			return f.Type
		}
	}
	return nil
}

// requestID is the client's id of a long operation: the Idempotency-Key
// header or the body's request_id.
func requestID(c echo.Context, body string) (string, error) {
	id := c.Request().Header.Get("Idempotency-Key")
	if id == "" {
		id = body
	}
	if len(id) > 200 {
		return "", fieldProblem("request_id", "is longer than 200 characters")
	}
	for _, r := range id {
		if r < 0x21 || r > 0x7e {
			return "", fieldProblem("request_id", "must be printable ASCII without spaces")
		}
	}
	return id, nil
}

// accepted answers a started (or earlier) operation.
func accepted(c echo.Context, op jobs.Operation) error {
	c.Response().Header().Set(echo.HeaderLocation, "/v1/operations/"+op.ID)
	return c.JSON(http.StatusAccepted, op)
}

// usage counts what a tenant uses.
func (s *Server) usage(tenant string) tenants.Usage {
	slots, running, sps := s.cfg.Jobs.Usage(tenant)
	return tenants.Usage{Slots: slots, Jobs: running, Modules: s.cfg.Registry.Count(tenant), Savepoints: sps, StateBytes: s.cfg.Jobs.StateBytes(tenant)}
}

// timeParam parses an optional RFC 3339 time.
func timeParam(field string, v *string) (*time.Time, error) {
	if v == nil || *v == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339, *v)
	if err != nil {
		return nil, fieldProblem(field, "must be an RFC 3339 time such as 2027-01-02T15:04:05Z")
	}
	return &t, nil
}

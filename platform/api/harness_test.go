package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weirstream/weir/platform"
	"github.com/weirstream/weir/platform/api"
)

// server is a platform behind a real HTTP server on 127.0.0.1, with the
// bootstrap admin token and the problem types its OpenAPI document lists.
type server struct {
	p      *platform.Platform
	hs     *httptest.Server
	url    string
	admin  string
	data   string
	client *http.Client
	// catalogue is the Problem schema's type enum of /v1/openapi.json:
	// every problem answer must have one of these types.
	catalogue map[string]bool

	mu sync.Mutex
	// seen counts the problem types answered, for the report that every
	// type the suite provoked is in the catalogue (it is checked at once).
	seen map[string]int
}

// startServer opens a platform and serves its API.
func startServer(ctx context.Context, o platform.Options) (*server, error) {
	p, err := platform.Open(ctx, o)
	if err != nil {
		return nil, err
	}
	admin, err := p.Bootstrap()
	if err != nil {
		p.Close()
		return nil, err
	}
	hs := httptest.NewServer(p.API)
	s := &server{p: p, hs: hs, url: hs.URL, admin: admin, data: o.DataDir, client: hs.Client(), seen: map[string]int{}}
	s.client.Timeout = time.Minute
	doc, err := s.openAPI()
	if err != nil {
		s.close()
		return nil, err
	}
	s.catalogue = map[string]bool{}
	for _, code := range problemEnum(doc) {
		s.catalogue[code] = true
	}
	if len(s.catalogue) == 0 {
		s.close()
		return nil, fmt.Errorf("the OpenAPI document lists no problem types")
	}
	return s, nil
}

// newServer starts a platform of the test's own (in t.TempDir).
func newServer(t *testing.T, o platform.Options) *server {
	t.Helper()
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	s, err := startServer(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	return s
}

func (s *server) close() {
	s.hs.Close()
	s.p.Close()
}

func (s *server) openAPI() (map[string]any, error) {
	resp, err := s.client.Get(s.url + "/v1/openapi.json")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var doc map[string]any
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /v1/openapi.json: %s", resp.Status)
	}
	return doc, json.NewDecoder(resp.Body).Decode(&doc)
}

// problemEnum is the type enum of the document's Problem schema.
func problemEnum(doc map[string]any) []string {
	var out []string
	typ, _ := dig(doc, "components", "schemas", "Problem", "properties", "type").(map[string]any)
	enum, _ := typ["enum"].([]any)
	for _, v := range enum {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// dig walks nested JSON objects.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// req is one HTTP request of a test.
type req struct {
	method, path string
	token        string
	ctype        string
	body         []byte
	header       map[string]string
}

// answer is a response, read whole.
type answer struct {
	method, path string // as requested (path without the query)
	Status       int
	Header       http.Header
	Body         []byte
}

func (a *answer) String() string {
	b := a.Body
	if len(b) > 600 {
		b = append(b[:600:600], "..."...)
	}
	return fmt.Sprintf("%s %s: %d %s", a.method, a.path, a.Status, b)
}

// do sends r and checks what every answer must satisfy: an error answer
// is an RFC 9457 problem of the catalogue whose status is the HTTP status
// and whose instance is the request's path.
func (s *server) do(t testing.TB, r req) *answer {
	t.Helper()
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	hr, err := http.NewRequest(r.method, s.url+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if r.token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	if r.ctype != "" {
		hr.Header.Set("Content-Type", r.ctype)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	resp, err := s.client.Do(hr)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", r.method, r.path, err)
	}
	path, _, _ := strings.Cut(r.path, "?")
	a := &answer{method: r.method, path: path, Status: resp.StatusCode, Header: resp.Header, Body: b}
	if a.Status >= 400 {
		s.checkProblem(t, a)
	}
	return a
}

// checkProblem checks an error answer's form.
func (s *server) checkProblem(t testing.TB, a *answer) {
	t.Helper()
	if ct := a.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("%v: Content-Type %q, want application/problem+json", a, ct)
	}
	var p problem
	if err := json.Unmarshal(a.Body, &p); err != nil {
		t.Errorf("%v: not a JSON problem: %v", a, err)
		return
	}
	if !s.catalogue[p.Type] {
		t.Errorf("%v: type %q is not in the OpenAPI document's Problem enum", a, p.Type)
	}
	if p.Status != a.Status {
		t.Errorf("%v: problem status %d, HTTP status %d", a, p.Status, a.Status)
	}
	if p.Instance != a.path {
		t.Errorf("%v: instance %q, want the request path %q", a, p.Instance, a.path)
	}
	if p.Title == "" {
		t.Errorf("%v: the problem has no title", a)
	}
	s.mu.Lock()
	s.seen[p.Type]++
	s.mu.Unlock()
}

// problem is a problem document as a client reads it.
type problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
	Instance string `json:"instance"`
	Errors   []struct {
		Field   string `json:"field"`
		Problem string `json:"problem"`
	} `json:"errors"`
	Quota       string `json:"quota"`
	Limit       *int64 `json:"limit"`
	Used        *int64 `json:"used"`
	ModuleError string `json:"module_error"`
}

// fields lists the problem's error fields.
func (p *problem) fields() []string {
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Field)
	}
	return out
}

func (p *problem) hasField(f string) bool {
	for _, e := range p.Errors {
		if e.Field == f {
			return true
		}
	}
	return false
}

// want fails unless the answer has the status.
func (a *answer) want(t testing.TB, status int) *answer {
	t.Helper()
	if a.Status != status {
		t.Fatalf("%v: want status %d", a, status)
	}
	return a
}

// decode decodes the JSON body into v.
func (a *answer) decode(t testing.TB, v any) {
	t.Helper()
	if ct := a.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%v: Content-Type %q, want application/json", a, ct)
	}
	dec := json.NewDecoder(bytes.NewReader(a.Body))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%v: decoding: %v", a, err)
	}
}

// ok checks the status and decodes the body into v (unless nil).
func (a *answer) ok(t testing.TB, status int, v any) *answer {
	t.Helper()
	a.want(t, status)
	if v != nil {
		a.decode(t, v)
	}
	return a
}

// problem checks that the answer is the problem code with the status.
func (a *answer) problem(t testing.TB, status int, code string) *problem {
	t.Helper()
	if a.Status != status {
		t.Fatalf("%v: want status %d (%s)", a, status, code)
	}
	var p problem
	if err := json.Unmarshal(a.Body, &p); err != nil {
		t.Fatalf("%v: %v", a, err)
	}
	if p.Type != api.ProblemTypePrefix+code {
		t.Fatalf("%v: type %q, want %s%s", a, p.Type, api.ProblemTypePrefix, code)
	}
	return &p
}

// get, del, postJSON and friends are the requests the tests make most.
func (s *server) get(t testing.TB, token, path string) *answer {
	t.Helper()
	return s.do(t, req{method: "GET", path: path, token: token})
}

func (s *server) del(t testing.TB, token, path string) *answer {
	t.Helper()
	return s.do(t, req{method: "DELETE", path: path, token: token})
}

// send sends v as JSON (nil: no body).
func (s *server) send(t testing.TB, method, token, path string, v any, header ...string) *answer {
	t.Helper()
	r := req{method: method, path: path, token: token, header: map[string]string{}}
	if v != nil {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		r.body, r.ctype = b, "application/json"
	}
	for i := 0; i+1 < len(header); i += 2 {
		r.header[header[i]] = header[i+1]
	}
	return s.do(t, r)
}

// tenant is a tenant with a key of every tenant role.
type tenant struct {
	id                     string
	owner, dev, viewer     string // tokens
	ownerID, devID, viewID string // key ids
}

// unlimited quotas keep the rate limit out of the way of tests that make
// many requests; quota tests set what they test.
var unlimited = map[string]any{"requests_per_second": 1e6, "request_burst": 1000000}

// newTenant creates a tenant (quotas: unlimited when nil) and its keys.
func (s *server) newTenant(t testing.TB, id string, quotas map[string]any) tenant {
	t.Helper()
	if quotas == nil {
		quotas = unlimited
	}
	s.send(t, "POST", s.admin, "/v1/tenants", map[string]any{"id": id, "quotas": quotas}).want(t, http.StatusCreated)
	tn := tenant{id: id}
	for _, k := range []struct {
		role       string
		token, kid *string
	}{{"owner", &tn.owner, &tn.ownerID}, {"developer", &tn.dev, &tn.devID}, {"viewer", &tn.viewer, &tn.viewID}} {
		*k.token, *k.kid = s.newKey(t, id, k.role, nil)
	}
	return tn
}

// newKey creates a key of a tenant and returns its token and id.
func (s *server) newKey(t testing.TB, tenant, role string, expires *time.Time) (token, id string) {
	t.Helper()
	body := map[string]any{"name": role + " key", "role": role}
	if expires != nil {
		body["expires_at"] = expires.Format(time.RFC3339Nano)
	}
	var ck struct {
		Key struct {
			ID string `json:"id"`
		} `json:"key"`
		Token string `json:"token"`
	}
	s.send(t, "POST", s.admin, "/v1/tenants/"+tenant+"/keys", body).ok(t, http.StatusCreated, &ck)
	return ck.Token, ck.Key.ID
}

// moduleVersion is a ModuleVersion as a client reads it.
type moduleVersion struct {
	Name       string `json:"name"`
	Version    int    `json:"version"`
	Digest     string `json:"digest"`
	Size       int64  `json:"size"`
	ABIVersion int    `json:"abi_version"`
	Operators  []struct {
		Name  string `json:"name"`
		Keyed bool   `json:"keyed"`
	} `json:"operators"`
	CreatedAt time.Time `json:"created_at"`
}

// upload uploads a module raw and returns the version (201 or 200).
func (s *server) upload(t testing.TB, token, name string, wasm []byte) moduleVersion {
	t.Helper()
	a := s.do(t, req{method: "POST", path: "/v1/modules/" + name, token: token, ctype: "application/wasm", body: wasm})
	if a.Status != http.StatusCreated && a.Status != http.StatusOK {
		t.Fatalf("%v: want 201 or 200", a)
	}
	var v moduleVersion
	a.decode(t, &v)
	return v
}

// multipartBody is a multipart form with one file field.
func multipartBody(t testing.TB, field string, content []byte) (ctype string, body []byte) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	fw, err := w.CreateFormFile(field, "module.wasm")
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(content)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return w.FormDataContentType(), b.Bytes()
}

// job is a Job (or JobDetail) as a client reads it.
type job struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	State       string            `json:"state"`
	Error       string            `json:"error"`
	Modules     map[string]string `json:"modules"`
	Slots       int               `json:"slots"`
	Generation  int               `json:"generation"`
	Savepoint   string            `json:"from_savepoint"`
	StoppedWith string            `json:"stopped_with_savepoint"`
	Graph       []struct {
		ID          string `json:"id"`
		Kind        string `json:"kind"`
		Parallelism int    `json:"parallelism"`
		Connector   string `json:"connector"`
		Module      string `json:"module"`
		Operator    string `json:"operator"`
		Inputs      []struct {
			From      string `json:"from"`
			Partition string `json:"partition"`
		} `json:"inputs"`
	} `json:"graph"`
	Vertices []struct {
		Nodes       []string `json:"nodes"`
		Parallelism int      `json:"parallelism"`
		RecordsIn   int64    `json:"records_in"`
		RecordsOut  int64    `json:"records_out"`
		Watermark   *int64   `json:"watermark"`
	} `json:"vertices"`
	Checkpoints *struct {
		Completed int             `json:"completed"`
		Latest    json.RawMessage `json:"latest"`
	} `json:"checkpoints"`
	Spec json.RawMessage `json:"spec"`
}

// deployYAML deploys a YAML spec and returns the job (201).
func (s *server) deployYAML(t testing.TB, token, spec string) job {
	t.Helper()
	var j job
	a := s.do(t, req{method: "POST", path: "/v1/jobs", token: token, ctype: "application/yaml", body: []byte(spec)}).ok(t, http.StatusCreated, &j)
	if loc := a.Header.Get("Location"); loc != "/v1/jobs/"+j.ID {
		t.Fatalf("%v: Location %q, want /v1/jobs/%s", a, loc, j.ID)
	}
	return j
}

// operation is an Operation as a client reads it.
type operation struct {
	ID         string          `json:"id"`
	Kind       string          `json:"kind"`
	Job        string          `json:"job"`
	Done       bool            `json:"done"`
	Error      string          `json:"error"`
	RolledBack bool            `json:"rolled_back"`
	Result     json.RawMessage `json:"result"`
	RequestID  string          `json:"request_id"`
	CreatedAt  time.Time       `json:"created_at"`
}

// savepoint is a Savepoint as a client reads it.
type savepoint struct {
	ID         string    `json:"id"`
	Job        string    `json:"job"`
	Checkpoint int64     `json:"checkpoint"`
	CreatedAt  time.Time `json:"created_at"`
	Size       int64     `json:"size"`
	Path       string    `json:"path"`
}

// accepted checks a 202 answer with its Location and returns the operation.
func accepted(t testing.TB, a *answer) operation {
	t.Helper()
	var op operation
	a.ok(t, http.StatusAccepted, &op)
	if loc := a.Header.Get("Location"); loc != "/v1/operations/"+op.ID || op.ID == "" {
		t.Fatalf("%v: Location %q, want /v1/operations/%s", a, loc, op.ID)
	}
	return op
}

// waitOp polls an operation until it is done.
func (s *server) waitOp(t testing.TB, token, id string) operation {
	t.Helper()
	var op operation
	defer func() {
		if t.Failed() && !op.Done && op.Job != "" {
			s.dumpJob(t, token, op.Job)
		}
	}()
	waitFor(t, 60*time.Second, "operation "+id+" done", func() bool {
		s.get(t, token, "/v1/operations/"+id).ok(t, http.StatusOK, &op)
		return op.Done
	})
	return op
}

// dumpJob logs a job's state and its system log lines, to see why a test
// waited in vain.
func (s *server) dumpJob(t testing.TB, token, id string) {
	t.Helper()
	a := s.get(t, token, "/v1/jobs/"+id)
	t.Logf("job %s: %s", id, a.Body)
	var pg page[struct {
		Seq     uint64 `json:"seq"`
		Source  string `json:"source"`
		Message string `json:"message"`
	}]
	s.get(t, token, "/v1/jobs/"+id+"/logs?page_size=500").ok(t, http.StatusOK, &pg)
	for _, l := range pg.Items {
		if l.Source != "print" {
			t.Logf("log %d %s: %s", l.Seq, l.Source, l.Message)
		}
	}
}

// getJob returns a job's detail.
func (s *server) getJob(t testing.TB, token, id string) job {
	t.Helper()
	var j job
	s.get(t, token, "/v1/jobs/"+id).ok(t, http.StatusOK, &j)
	return j
}

// waitJob polls a job until cond holds.
func (s *server) waitJob(t testing.TB, token, id, what string, cond func(job) bool) job {
	t.Helper()
	var j job
	defer func() {
		if t.Failed() {
			s.dumpJob(t, token, id)
		}
	}()
	waitFor(t, 60*time.Second, "job "+id+" "+what, func() bool {
		j = s.getJob(t, token, id)
		return cond(j)
	})
	return j
}

func inState(states ...string) func(job) bool {
	return func(j job) bool {
		for _, s := range states {
			if j.State == s {
				return true
			}
		}
		return false
	}
}

// waitFor polls cond until it holds or the deadline passes. The poll
// interval is short: each poll is one request to a local server.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", timeout, what)
		}
		<-tick.C
	}
}

// page is a list answer.
type page[T any] struct {
	Items         []T    `json:"items"`
	NextPageToken string `json:"next_page_token"`
}

// list reads every page of a list route.
func list[T any](t testing.TB, s *server, token, path string) []T {
	t.Helper()
	var all []T
	tok := ""
	for range 1000 {
		p := path
		if tok != "" {
			sep := "?"
			if strings.Contains(p, "?") {
				sep = "&"
			}
			p += sep + "page_token=" + tok
		}
		var pg page[T]
		s.get(t, token, p).ok(t, http.StatusOK, &pg)
		if pg.Items == nil {
			t.Fatalf("GET %s: items is null, want a list", p)
		}
		all = append(all, pg.Items...)
		if pg.NextPageToken == "" {
			return all
		}
		tok = pg.NextPageToken
	}
	t.Fatalf("GET %s: more than 1000 pages", path)
	return nil
}

// ids lists the "id" (or "name") members of list items.
func ids(t testing.TB, s *server, token, path string) []string {
	t.Helper()
	var out []string
	for _, it := range list[map[string]any](t, s, token, path) {
		switch {
		case it["id"] != nil:
			out = append(out, fmt.Sprint(it["id"]))
		case it["name"] != nil:
			out = append(out, fmt.Sprint(it["name"]))
		}
	}
	return out
}

// tenantFiles is a tenant's file area, where file connectors' paths are.
func (s *server) tenantFiles(t testing.TB, tenant string) string {
	t.Helper()
	dir := filepath.Join(s.data, "files", tenant)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// tree lists the files below dir with their sizes ("" when it is missing).
func tree(t testing.TB, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		lines = append(lines, fmt.Sprintf("%s %d", rel, info.Size()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// tenantStorage is the tenant's folder of the platform's storage.
func (s *server) tenantStorage(tenant string) string {
	return filepath.Join(s.data, "storage", "tenants", tenant)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

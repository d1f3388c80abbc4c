package platform_test

// Test wiring for the platform's end-to-end tests and benchmarks: a real
// platform (metadata store, local storage, registry, job manager, wazero)
// served by a real HTTP server on 127.0.0.1, driven through the REST API
// with net/http exactly as a tenant's client would, and real Wasm modules
// built from examples/ with the Go toolchain.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/weirstream/weir/platform"
	"github.com/weirstream/weir/platform/jobs"
	"github.com/weirstream/weir/platform/registry"
	"github.com/weirstream/weir/tenants"
	"github.com/weirstream/weir/wasmhost/wasmtest"
)

// testModules are the Wasm modules the tests use, by name.
var testModules = map[string]wasmtest.Source{
	"wordcount": {Pkg: "wordcount"},
	"hostile":   {Pkg: "testdata/hostile"},
}

// Modules are built once per test binary, all at once.
var (
	buildOnce sync.Once
	builtWasm map[string][]byte
	buildErr  error
)

// moduleBytes returns the bytes of a test module (a key of testModules).
func moduleBytes(tb testing.TB, name string) []byte {
	tb.Helper()
	buildOnce.Do(func() { builtWasm, buildErr = wasmtest.Modules(testModules) })
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	b, ok := builtWasm[name]
	if !ok {
		tb.Fatalf("no test module %q", name)
	}
	return b
}

// variant returns wasm with a custom section appended (id 0, LEB128 size,
// name, payload: valid anywhere after the header, and ignored by the
// engine): the same module with other bytes, so another digest, and an
// upload that really validates instead of finding an existing version.
func variant(wasm []byte, n int) []byte {
	const name = "weir-variant"
	body := append([]byte{byte(len(name))}, name...)
	body = fmt.Appendf(body, "%d", n)
	out := append([]byte(nil), wasm...)
	out = append(out, 0)
	for size := uint(len(body)); ; size >>= 7 { // unsigned LEB128
		if size < 0x80 {
			out = append(out, byte(size))
			break
		}
		out = append(out, byte(size&0x7f|0x80))
	}
	return append(out, body...)
}

// harness is a platform served on 127.0.0.1 with its admin key.
type harness struct {
	tb    testing.TB
	p     *platform.Platform
	srv   *httptest.Server
	admin *client
}

// newHarness opens a platform on a fresh data directory and serves its API
// with httptest (a real listener on 127.0.0.1).
func newHarness(tb testing.TB, o platform.Options) *harness {
	tb.Helper()
	if o.DataDir == "" {
		o.DataDir = tb.TempDir()
	}
	p, err := platform.Open(context.Background(), o)
	if err != nil {
		tb.Fatalf("opening the platform: %v", err)
	}
	token, err := p.Bootstrap()
	if err != nil || token == "" {
		p.Close()
		tb.Fatalf("bootstrap admin key: %q, %v", token, err)
	}
	srv := httptest.NewServer(p.API)
	h := &harness{tb: tb, p: p, srv: srv}
	// Cleanups run last-in first-out: the server stops before the platform.
	tb.Cleanup(p.Close)
	tb.Cleanup(srv.Close)
	h.admin = h.client(token)
	return h
}

// client returns a client of the API with a token and its own keep-alive
// connections.
func (h *harness) client(token string) *client {
	return &client{tb: h.tb, base: h.srv.URL, token: token, http: &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: 4},
		Timeout:   time.Minute,
	}}
}

// tenant creates a tenant with quotas (zero fields: defaults), and a
// developer key of it, through the admin API.
func (h *harness) tenant(id string, q tenants.Quotas) *client {
	h.tb.Helper()
	h.admin.call("POST", "/v1/tenants", "application/json", jsonBody(h.tb, map[string]any{"id": id}), http.StatusCreated, nil)
	h.setQuotas(id, q)
	var key struct {
		Token string `json:"token"`
	}
	h.admin.call("POST", "/v1/tenants/"+id+"/keys", "application/json",
		jsonBody(h.tb, map[string]any{"name": "test", "role": "developer"}), http.StatusCreated, &key)
	if key.Token == "" {
		h.tb.Fatalf("creating a key of tenant %s: no token in the answer", id)
	}
	return h.client(key.Token)
}

// setQuotas sets a tenant's quotas through the admin API.
func (h *harness) setQuotas(id string, q tenants.Quotas) {
	h.tb.Helper()
	h.admin.call("PUT", "/v1/tenants/"+id+"/quotas", "application/json", jsonBody(h.tb, q), http.StatusOK, nil)
}

// filesDir is a tenant's file area.
func (h *harness) filesDir(tenant string) string { return h.p.Jobs.FilesDir(tenant) }

func jsonBody(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// client calls the API with one token.
type client struct {
	tb    testing.TB
	base  string
	token string
	http  *http.Client
}

// do sends a request and returns the status and body. Transport errors
// are returned, not fatal, so that it may run off the test goroutine.
func (c *client) do(method, path, contentType string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	return resp.StatusCode, b, nil
}

// call sends a request, fails unless the answer has status want, and
// decodes a JSON answer into out (if not nil). Test goroutine only.
func (c *client) call(method, path, contentType string, body []byte, want int, out any) []byte {
	c.tb.Helper()
	status, b, err := c.do(method, path, contentType, body)
	if err != nil {
		c.tb.Fatal(err)
	}
	if status != want {
		c.tb.Fatalf("%s %s: status %d, want %d: %s", method, path, status, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.tb.Fatalf("%s %s: decoding %s: %v", method, path, b, err)
		}
	}
	return b
}

// upload uploads a module version.
func (c *client) upload(name string, wasm []byte) registry.Version {
	c.tb.Helper()
	var v registry.Version
	c.call("POST", "/v1/modules/"+name, "application/wasm", wasm, http.StatusCreated, &v)
	return v
}

// deploy deploys a YAML job spec.
func (c *client) deploy(spec string) jobs.Job {
	c.tb.Helper()
	var j jobs.Job
	c.call("POST", "/v1/jobs", "application/yaml", []byte(spec), http.StatusCreated, &j)
	return j
}

// job gets a job with its metrics.
func (c *client) job(id string) jobs.Detail {
	c.tb.Helper()
	var d jobs.Detail
	c.call("GET", "/v1/jobs/"+id, "", nil, http.StatusOK, &d)
	return d
}

// exceptions gets a job's failure history, newest first.
func (c *client) exceptions(id string) []jobs.Exception {
	c.tb.Helper()
	var page struct {
		Items []jobs.Exception `json:"items"`
	}
	c.call("GET", "/v1/jobs/"+id+"/exceptions", "", nil, http.StatusOK, &page)
	return page.Items
}

// waitJob polls a job until cond holds, and fails after timeout. A job
// that ends in a state cond does not accept fails at once, naming it.
func (c *client) waitJob(id, what string, timeout time.Duration, cond func(jobs.Detail) bool) jobs.Detail {
	c.tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		d := c.job(id)
		if cond(d) {
			return d
		}
		if over(d.State) {
			c.tb.Fatalf("job %s (%s) is %s (error %q) while waiting for %s", id, d.Name, d.State, d.Error, what)
		}
		if time.Now().After(deadline) {
			c.tb.Fatalf("job %s (%s): timed out after %v waiting for %s; it is %s", id, d.Name, timeout, what, d.State)
		}
		time.Sleep(10 * time.Millisecond) // the poll interval of a condition with a deadline
	}
}

// waitState waits until a job is in state.
func (c *client) waitState(id string, state jobs.State, timeout time.Duration) jobs.Detail {
	c.tb.Helper()
	return c.waitJob(id, "state "+string(state), timeout, func(d jobs.Detail) bool { return d.State == state })
}

// over reports whether a job state is final.
func over(s jobs.State) bool {
	switch s {
	case jobs.StateFinished, jobs.StateFailed, jobs.StateCanceled, jobs.StateStopped:
		return true
	}
	return false
}

// recordsIn sums the records_in of the vertices that hold node.
func recordsIn(d jobs.Detail, node string) int64 {
	var n int64
	for _, v := range d.Vertices {
		for _, id := range v.Nodes {
			if id == node {
				n += v.RecordsIn
			}
		}
	}
	return n
}

package api_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

// quotaProblem checks a quota-exceeded answer naming the quota, with its
// limit and use.
func quotaProblem(t *testing.T, a *answer, status int, quota string, limit int64) *problem {
	t.Helper()
	p := a.problem(t, status, "quota-exceeded")
	if p.Quota != quota {
		t.Fatalf("%v: quota %q, want %s", a, p.Quota, quota)
	}
	if p.Limit == nil || *p.Limit != limit || p.Used == nil {
		t.Fatalf("%v: limit %v used %v, want limit %d and the use", a, p.Limit, p.Used, limit)
	}
	if !strings.Contains(p.Detail, quota) {
		t.Errorf("%v: the detail does not name %s", a, quota)
	}
	return p
}

// unchanged records what a tenant has (lists and storage) and checks
// later that a refused request changed none of it.
type unchanged struct {
	lists, storage string
}

func snapshot(t *testing.T, s *server, tn tenant) unchanged {
	t.Helper()
	return unchanged{lists: tenantLists(t, s, tn.viewer), storage: tree(t, s.tenantStorage(tn.id))}
}

func (u unchanged) check(t *testing.T, s *server, tn tenant) {
	t.Helper()
	if now := tenantLists(t, s, tn.viewer); now != u.lists {
		t.Errorf("a refused request changed the tenant's resources:\nbefore:\n%s\nafter:\n%s", u.lists, now)
	}
	if now := tree(t, s.tenantStorage(tn.id)); now != u.storage {
		t.Errorf("a refused request changed the tenant's storage:\nbefore:\n%s\nafter:\n%s", u.storage, now)
	}
}

// quotas is a tenant's quotas for a test: small values of what it tests,
// and no rate limit in the way.
func quotas(kv ...any) map[string]any {
	q := map[string]any{}
	for k, v := range unlimited {
		q[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		q[kv[i].(string)] = kv[i+1]
	}
	return q
}

// TestQuotas exceeds each quota: the answer is a problem naming it (403,
// or 413 for module_bytes; requests_per_second is TestRateLimit's), and
// nothing is half-created.
func TestQuotas(t *testing.T) {
	s := fx.srv
	// A job that checkpoints nowhere unless asked (savepoints), so the
	// storage snapshot holds still while it runs.
	quiet := isolationSpec

	t.Run("slots", func(t *testing.T) {
		t.Parallel()
		tn := s.newTenant(t, "q-slots", quotas("slots", 2))
		s.upload(t, tn.dev, "counter", fx.modules["counter"])
		u := snapshot(t, s, tn)
		wide := strings.Replace(quiet, "name: iso", "name: wide\nparallelism: 3", 1)
		quotaProblem(t, s.do(t, req{method: "POST", path: "/v1/jobs", token: tn.dev, ctype: "application/yaml", body: []byte(wide)}),
			http.StatusForbidden, "slots", 2)
		u.check(t, s, tn)

		two := s.deployYAML(t, tn.dev, strings.Replace(quiet, "name: iso", "name: two\nparallelism: 2", 1))
		u = snapshot(t, s, tn)
		p := quotaProblem(t, s.do(t, req{method: "POST", path: "/v1/jobs", token: tn.dev, ctype: "application/yaml", body: []byte(quiet)}),
			http.StatusForbidden, "slots", 2)
		if *p.Used != 2 {
			t.Errorf("used %d, want the 2 slots of the running job", *p.Used)
		}
		quotaProblem(t, s.send(t, "POST", tn.dev, "/v1/jobs/"+two.ID+"/rescale", map[string]any{"parallelism": 3}), http.StatusForbidden, "slots", 2)
		u.check(t, s, tn)
		if d := s.getJob(t, tn.viewer, two.ID); d.State != "running" || d.Slots != 2 {
			t.Fatalf("after a refused rescale the job is %s with %d slots", d.State, d.Slots)
		}
		var q struct {
			Usage struct {
				Slots, Jobs int
			} `json:"usage"`
		}
		s.get(t, tn.viewer, "/v1/quotas").ok(t, http.StatusOK, &q)
		if q.Usage.Slots != 2 || q.Usage.Jobs != 1 {
			t.Fatalf("usage %+v, want 2 slots and 1 job", q.Usage)
		}
		s.send(t, "POST", tn.dev, "/v1/jobs/"+two.ID+"/cancel", nil).want(t, http.StatusOK)
		// The slots are free again.
		j := s.deployYAML(t, tn.dev, strings.Replace(quiet, "name: iso", "name: again\nparallelism: 2", 1))
		s.send(t, "POST", tn.dev, "/v1/jobs/"+j.ID+"/cancel", nil).want(t, http.StatusOK)
	})

	// Sandbox limits and retention a spec asks for beyond the quota.
	for _, c := range []struct {
		quota string
		value any
		limit int64
		spec  string
	}{
		{"memory_pages", 64, 64, "limits: {memoryPages: 65}\n"},
		{"call_timeout", "1s", 1e9, "limits: {callTimeout: 1001ms}\n"},
		{"retained_checkpoints", 2, 2, "checkpoints: {interval: 1s, retain: 3}\n"},
	} {
		t.Run(c.quota, func(t *testing.T) {
			t.Parallel()
			tn := s.newTenant(t, "q-"+strings.ReplaceAll(c.quota, "_", "-"), quotas(c.quota, c.value))
			s.upload(t, tn.dev, "counter", fx.modules["counter"])
			u := snapshot(t, s, tn)
			quotaProblem(t, s.do(t, req{method: "POST", path: "/v1/jobs", token: tn.dev, ctype: "application/yaml", body: []byte(quiet + c.spec)}),
				http.StatusForbidden, c.quota, c.limit)
			u.check(t, s, tn)
		})
	}

	t.Run("modules", func(t *testing.T) {
		t.Parallel()
		tn := s.newTenant(t, "q-modules", quotas("modules", 2))
		s.upload(t, tn.dev, "counter", fx.modules["counter"])
		s.upload(t, tn.dev, "other", fx.modules["counter-v2"])
		u := snapshot(t, s, tn)
		p := quotaProblem(t, s.do(t, req{method: "POST", path: "/v1/modules/counter", token: tn.dev, ctype: "application/wasm", body: fx.modules["counter-mapkind"]}),
			http.StatusForbidden, "modules", 2)
		if *p.Used != 2 {
			t.Errorf("used %d, want 2", *p.Used)
		}
		ct, body := multipartBody(t, "module", fx.modules["counter-mapkind"])
		quotaProblem(t, s.do(t, req{method: "POST", path: "/v1/modules/third", token: tn.dev, ctype: ct, body: body}), http.StatusForbidden, "modules", 2)
		u.check(t, s, tn)
		// Bytes that already are a version cost nothing.
		s.do(t, req{method: "POST", path: "/v1/modules/counter", token: tn.dev, ctype: "application/wasm", body: fx.modules["counter"]}).want(t, http.StatusOK)
		// Deleting one makes room.
		s.del(t, tn.dev, "/v1/modules/other").want(t, http.StatusNoContent)
		s.do(t, req{method: "POST", path: "/v1/modules/third", token: tn.dev, ctype: "application/wasm", body: fx.modules["counter-mapkind"]}).want(t, http.StatusCreated)
	})

	t.Run("module_bytes", func(t *testing.T) {
		t.Parallel()
		tn := s.newTenant(t, "q-module-bytes", quotas("module_bytes", 1000))
		u := snapshot(t, s, tn)
		wasm := fx.modules["counter"]
		quotaProblem(t, s.do(t, req{method: "POST", path: "/v1/modules/big", token: tn.dev, ctype: "application/wasm", body: wasm}),
			http.StatusRequestEntityTooLarge, "module_bytes", 1000)
		ct, body := multipartBody(t, "module", wasm)
		quotaProblem(t, s.do(t, req{method: "POST", path: "/v1/modules/big", token: tn.dev, ctype: ct, body: body}),
			http.StatusRequestEntityTooLarge, "module_bytes", 1000)
		// Without a Content-Length (chunked), the server counts.
		hr, err := http.NewRequest("POST", s.url+"/v1/modules/big", io.MultiReader(bytes.NewReader(wasm)))
		if err != nil {
			t.Fatal(err)
		}
		hr.ContentLength = -1
		hr.Header.Set("Authorization", "Bearer "+tn.dev)
		hr.Header.Set("Content-Type", "application/wasm")
		resp, err := s.client.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		a := &answer{method: "POST", path: "/v1/modules/big", Status: resp.StatusCode, Header: resp.Header, Body: b}
		if a.Status >= 400 {
			s.checkProblem(t, a)
		}
		quotaProblem(t, a, http.StatusRequestEntityTooLarge, "module_bytes", 1000)
		// 1001 bytes of an otherwise acceptable size class: still the quota,
		// before any validation.
		quotaProblem(t, s.do(t, req{method: "POST", path: "/v1/modules/big", token: tn.dev, ctype: "application/wasm", body: wasm[:1001]}),
			http.StatusRequestEntityTooLarge, "module_bytes", 1000)
		u.check(t, s, tn)
	})

	t.Run("module_bytes at the limit", func(t *testing.T) {
		t.Parallel()
		wasm := fx.modules["counter"]
		tn := s.newTenant(t, "q-module-bytes-exact", quotas("module_bytes", len(wasm)))
		// A module of exactly the quota fits, as a multipart form too,
		// whose body is larger than the module.
		ct, body := multipartBody(t, "module", wasm)
		s.do(t, req{method: "POST", path: "/v1/modules/exact", token: tn.dev, ctype: ct, body: body}).want(t, http.StatusCreated)
		s.do(t, req{method: "POST", path: "/v1/modules/exact", token: tn.dev, ctype: "application/wasm", body: wasm}).want(t, http.StatusOK)
		quotaProblem(t, s.do(t, req{method: "POST", path: "/v1/modules/more", token: tn.dev, ctype: "application/wasm", body: append(wasm[:len(wasm):len(wasm)], 0)}),
			http.StatusRequestEntityTooLarge, "module_bytes", int64(len(wasm)))
	})

	t.Run("savepoints", func(t *testing.T) {
		t.Parallel()
		tn := s.newTenant(t, "q-savepoints", quotas("savepoints", 1))
		s.upload(t, tn.dev, "counter", fx.modules["counter"])
		s.upload(t, tn.dev, "counter", fx.modules["counter-v2"])
		j := s.deployYAML(t, tn.dev, quiet)
		// A savepoint needs the tasks running, which "running" does not
		// promise yet right after the deploy.
		s.waitJob(t, tn.viewer, j.ID, "running with output", func(d job) bool {
			return len(d.Vertices) > 0 && d.Vertices[0].RecordsOut > 0
		})
		op := accepted(t, s.send(t, "POST", tn.dev, "/v1/jobs/"+j.ID+"/savepoints", nil))
		if d := s.waitOp(t, tn.viewer, op.ID); d.Error != "" {
			t.Fatalf("the first savepoint: %s", d.Error)
		}
		u := snapshot(t, s, tn)
		quotaProblem(t, s.send(t, "POST", tn.dev, "/v1/jobs/"+j.ID+"/savepoints", nil), http.StatusForbidden, "savepoints", 1)
		// Stop, upgrade and rescale go through a savepoint too.
		quotaProblem(t, s.send(t, "POST", tn.dev, "/v1/jobs/"+j.ID+"/stop", nil), http.StatusForbidden, "savepoints", 1)
		quotaProblem(t, s.send(t, "POST", tn.dev, "/v1/jobs/"+j.ID+"/upgrade", map[string]any{"modules": map[string]string{"c": "counter@2"}}),
			http.StatusForbidden, "savepoints", 1)
		quotaProblem(t, s.send(t, "POST", tn.dev, "/v1/jobs/"+j.ID+"/rescale", map[string]any{"parallelism": 2}), http.StatusForbidden, "savepoints", 1)
		u.check(t, s, tn)
		if d := s.getJob(t, tn.viewer, j.ID); d.State != "running" || d.Modules["c"] != "counter@1" || d.Generation != 1 {
			t.Fatalf("after refused operations the job is %+v", d)
		}
		s.send(t, "POST", tn.dev, "/v1/jobs/"+j.ID+"/cancel", nil).want(t, http.StatusOK)
	})

	t.Run("state_bytes", func(t *testing.T) {
		t.Parallel()
		tn := s.newTenant(t, "q-state-bytes", quotas("state_bytes", 16))
		s.upload(t, tn.dev, "counter", fx.modules["counter"])
		j := s.deployYAML(t, tn.dev, counterSpec("fat", "counter@1"))
		d := s.waitJob(t, tn.viewer, j.ID, "failed", inState("failed", "finished", "canceled"))
		if d.State != "failed" || !strings.Contains(d.Error, "state_bytes") {
			t.Fatalf("job %s: %q; want failed naming state_bytes", d.State, d.Error)
		}
		var ex page[struct {
			Error string `json:"error"`
		}]
		s.get(t, tn.viewer, "/v1/jobs/"+j.ID+"/exceptions").ok(t, http.StatusOK, &ex)
		named := false
		for _, e := range ex.Items {
			named = named || strings.Contains(e.Error, "state_bytes")
		}
		if !named && !strings.Contains(d.Error, "state_bytes") {
			t.Fatalf("no exception names state_bytes: %+v", ex.Items)
		}
	})
}

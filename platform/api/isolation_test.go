package api_test

import (
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weirstream/weir/platform/api"
)

// isolationSpec is tenant A's job in the isolation test: stateful and
// unbounded, but without periodic checkpoints, so that nothing writes to
// A's storage unless A asks for a savepoint.
const isolationSpec = `name: iso
modules: {c: counter@1}
nodes:
  - {id: gen, source: datagen, config: {rate: 20, key: {kind: sequence, end: 4}}}
  - {id: count, module: c, operator: count, inputs: [gen]}
  - {id: out, sink: blackhole, inputs: [count]}
`

// boundedSpec finishes at once: what the matrix deploys on the own-tenant
// pass, so it leaves nothing running.
const boundedSpec = `name: bounded
modules: {c: counter@1}
nodes:
  - {id: gen, source: datagen, config: {count: 5, key: {kind: sequence, end: 4}}}
  - {id: count, module: c, operator: count, inputs: [gen]}
  - {id: out, sink: blackhole, inputs: [count]}
`

// matrixBody is what the matrix sends to a route (by operation id): the
// own-tenant pass should reach the handler's real work, so bodies are
// valid. Routes without an entry get no body.
func matrixBody(id string, wasm []byte) (ctype string, body []byte) {
	js := func(v any) (string, []byte) {
		b, _ := json.Marshal(v)
		return "application/json", b
	}
	switch id {
	case "uploadModule":
		return "application/wasm", wasm
	case "deployJob":
		return "application/yaml", []byte(boundedSpec)
	case "createKey", "createTenantKey":
		return js(map[string]any{"name": "matrix", "role": "viewer"})
	case "createTenant":
		return js(map[string]any{"id": "iso-matrix"})
	case "setQuotas":
		return js(unlimited)
	case "upgradeJob":
		return js(map[string]any{"modules": map[string]string{"c": "counter@2"}})
	case "rescaleJob":
		return js(map[string]any{"parallelism": 2})
	}
	return "", nil
}

// TestIsolation is the isolation matrix: every route of the table × (no
// key, a revoked key, an expired key, the admin key, a viewer, a
// developer, another tenant's key, the tenant's own key). Another tenant's
// resources are 404, exactly as if they did not exist, never in its lists,
// never usable by id or digest, and its operations leave the first
// tenant's storage untouched.
func TestIsolation(t *testing.T) {
	s := fx.srv
	a := s.newTenant(t, "iso-a", nil)
	b := s.newTenant(t, "iso-b", nil)

	// A's keys that must fail: revoked, and expiring a second from now
	// (the clock is real here; TestKeyExpiry checks expiry exactly on a
	// fake clock).
	revoked, revokedID := s.newKey(t, a.id, "owner", nil)
	s.del(t, s.admin, "/v1/tenants/"+a.id+"/keys/"+revokedID).want(t, http.StatusNoContent)
	soon := time.Now().Add(time.Second)
	expired, _ := s.newKey(t, a.id, "owner", &soon)
	_, spareKey := s.newKey(t, a.id, "viewer", nil) // what DELETE /v1/keys/:key revokes

	// A's resources.
	s.upload(t, a.dev, "counter", fx.modules["counter"])
	s.upload(t, a.dev, "counter", fx.modules["counter-v2"])
	private := s.upload(t, a.dev, "private", fx.modules["counter-v2"]) // bytes B never uploads
	j := s.deployYAML(t, a.dev, isolationSpec)
	s.waitJob(t, a.viewer, j.ID, "running with output", func(d job) bool {
		return len(d.Vertices) > 0 && d.Vertices[0].RecordsOut > 0
	})
	op := accepted(t, s.send(t, "POST", a.dev, "/v1/jobs/"+j.ID+"/savepoints", nil))
	done := s.waitOp(t, a.viewer, op.ID)
	var sp savepoint
	if err := json.Unmarshal(done.Result, &sp); err != nil || done.Error != "" {
		t.Fatalf("A's savepoint: %+v", done)
	}
	params := map[string]string{
		"tenant": a.id, "name": "private", "version": "1", "job": j.ID,
		"savepoint": sp.ID, "operation": op.ID, "key": spareKey,
	}
	secrets := []string{j.ID, sp.ID, op.ID, a.ownerID, a.devID, a.viewID, spareKey, private.Digest, `"iso-a"`}

	// The expired key has expired (a second has passed by now, or soon).
	waitFor(t, 10*time.Second, "the key to expire", func() bool {
		return s.get(t, expired, "/v1/me").Status == http.StatusUnauthorized
	})
	s.get(t, expired, "/v1/me").problem(t, http.StatusUnauthorized, "key-expired")

	storageBefore, filesBefore := tree(t, s.tenantStorage(a.id)), tree(t, s.tenantFiles(t, a.id))
	if storageBefore == "" {
		t.Fatal("A has no storage files: the snapshot would prove nothing")
	}
	listsBefore := tenantLists(t, s, a.viewer)

	routes := api.Routes()
	path := func(t *testing.T, r api.RouteInfo, override map[string]string) string {
		segs := strings.Split(r.Path, "/")
		for i, seg := range segs {
			if name, ok := strings.CutPrefix(seg, ":"); ok {
				v, ok := override[name]
				if !ok {
					v, ok = params[name]
				}
				if !ok {
					t.Fatalf("route %s %s: the matrix has no value for :%s; add A's resource to params", r.Method, r.Path, name)
				}
				segs[i] = v
			}
		}
		return strings.Join(segs, "/")
	}
	callWith := func(t *testing.T, r api.RouteInfo, token string, override map[string]string) *answer {
		ct, body := matrixBody(r.ID, fx.modules["counter"])
		return s.do(t, req{method: r.Method, path: path(t, r, override), token: token, ctype: ct, body: body})
	}
	call := func(t *testing.T, r api.RouteInfo, token string) *answer { return callWith(t, r, token, nil) }
	hasParams := func(r api.RouteInfo) bool { return strings.Contains(r.Path, ":") }

	for _, r := range routes {
		switch r.Access {
		case "public", "any-key", "tenant-read", "tenant-write", "tenant-keys", "admin":
		default:
			t.Fatalf("route %s %s has access %q the matrix does not know", r.Method, r.Path, r.Access)
		}
	}

	t.Run("no key", func(t *testing.T) {
		for _, r := range routes {
			if r.Access == "public" {
				continue
			}
			ans := call(t, r, "")
			ans.problem(t, http.StatusUnauthorized, "unauthenticated")
			if !strings.HasPrefix(ans.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%v: WWW-Authenticate %q", ans, ans.Header.Get("WWW-Authenticate"))
			}
			// A malformed or unknown token is the same answer.
			call(t, r, "weir_aaaaaaaaaaaa_"+strings.Repeat("A", 43)).problem(t, http.StatusUnauthorized, "unauthenticated")
			call(t, r, "not-a-token").problem(t, http.StatusUnauthorized, "unauthenticated")
		}
	})
	t.Run("revoked key", func(t *testing.T) {
		for _, r := range routes {
			if r.Access != "public" {
				call(t, r, revoked).problem(t, http.StatusUnauthorized, "key-revoked")
			}
		}
	})
	t.Run("expired key", func(t *testing.T) {
		for _, r := range routes {
			if r.Access != "public" {
				call(t, r, expired).problem(t, http.StatusUnauthorized, "key-expired")
			}
		}
	})
	t.Run("admin key", func(t *testing.T) {
		for _, r := range routes {
			switch r.Access {
			case "tenant-read", "tenant-write", "tenant-keys":
				call(t, r, s.admin).problem(t, http.StatusForbidden, "tenant-key-required")
			}
		}
	})
	t.Run("viewer", func(t *testing.T) {
		for _, r := range routes {
			switch r.Access {
			case "tenant-write", "tenant-keys", "admin":
				call(t, r, a.viewer).problem(t, http.StatusForbidden, "forbidden")
			case "tenant-read", "any-key":
				call(t, r, a.viewer).want(t, http.StatusOK)
			}
		}
	})
	t.Run("developer", func(t *testing.T) {
		for _, r := range routes {
			switch r.Access {
			case "tenant-keys", "admin":
				call(t, r, a.dev).problem(t, http.StatusForbidden, "forbidden")
			case "tenant-read":
				call(t, r, a.dev).want(t, http.StatusOK)
			}
		}
	})
	t.Run("owner on admin routes", func(t *testing.T) {
		for _, r := range routes {
			if r.Access == "admin" {
				call(t, r, a.owner).problem(t, http.StatusForbidden, "forbidden")
			}
		}
	})

	t.Run("another tenant", func(t *testing.T) {
		for _, r := range routes {
			switch r.Access {
			case "public", "admin":
				continue
			}
			var override map[string]string
			if r.ID == "uploadModule" {
				// Module names are per tenant: B uploading under a name is
				// B's business, whatever A has (checked below).
				override = map[string]string{"name": "b-own"}
			}
			ans := callWith(t, r, b.owner, override)
			for _, secret := range secrets {
				// An id the request itself sent may come back in the detail.
				if strings.Contains(string(ans.Body), secret) && !strings.Contains(ans.path, secret) {
					t.Errorf("%v: B's answer shows A's %s", ans, secret)
				}
			}
			switch {
			case r.ID == "uploadModule":
				// A name is per tenant: B's upload is B's version 1.
				var v moduleVersion
				ans.ok(t, http.StatusCreated, &v)
				if v.Version != 1 || v.Name != "b-own" {
					t.Errorf("B's first upload is %s version %d, want b-own version 1", v.Name, v.Version)
				}
			case hasParams(r):
				ans.problem(t, http.StatusNotFound, "not-found")
			case ans.Status == http.StatusUnauthorized || ans.Status == http.StatusForbidden:
				t.Errorf("%v: B's own key refused", ans)
			}
		}
		// Lists of B never contain A's resources.
		for _, p := range []string{"/v1/modules", "/v1/jobs", "/v1/savepoints", "/v1/keys"} {
			for _, id := range ids(t, s, b.owner, p) {
				if contains(secrets, id) {
					t.Errorf("B's %s lists A's %s", p, id)
				}
			}
		}
		// A's digest is not B's: neither as a deploy reference nor as a version.
		hex := strings.TrimPrefix(private.Digest, "sha256:")
		for _, ref := range []string{private.Digest, "private", "private@1", "private@" + private.Digest} {
			spec := strings.Replace(isolationSpec, "counter@1", ref, 1)
			p := s.do(t, req{method: "POST", path: "/v1/jobs", token: b.dev, ctype: "application/yaml", body: []byte(spec)}).
				problem(t, http.StatusBadRequest, "invalid-job-spec")
			if !p.hasField("modules.c.ref") {
				t.Errorf("deploying %s in B: errors %v, want modules.c.ref", ref, p.fields())
			}
		}
		s.get(t, b.viewer, "/v1/modules/private/versions/"+private.Digest).problem(t, http.StatusNotFound, "not-found")
		s.get(t, b.viewer, "/v1/modules/b-own/versions/"+private.Digest).problem(t, http.StatusNotFound, "not-found")
		s.get(t, b.viewer, "/v1/modules/b-own/versions/sha256:"+hex).problem(t, http.StatusNotFound, "not-found")
		s.get(t, b.viewer, "/v1/modules/private/versions/"+private.Digest+"/wasm").problem(t, http.StatusNotFound, "not-found")
		// Nor is A's savepoint a place for B to start from.
		for _, from := range []string{sp.ID, "sp-000000000000"} {
			p := s.send(t, "POST", b.dev, "/v1/jobs", map[string]any{"spec": strings.Replace(isolationSpec, "counter@1", "b-own@1", 1), "from_savepoint": from}).
				problem(t, http.StatusBadRequest, "invalid-request")
			if !p.hasField("from_savepoint") {
				t.Errorf("deploying from savepoint %s in B: errors %v, want from_savepoint", from, p.fields())
			}
		}
	})

	t.Run("another tenant's operations leave A's storage alone", func(t *testing.T) {
		// B does everything A did, with the same module bytes (whose digest
		// A's objects are named by), and deletes it again.
		s.upload(t, b.dev, "counter", fx.modules["counter"])
		bj := s.deployYAML(t, b.dev, isolationSpec)
		s.waitJob(t, b.viewer, bj.ID, "running with output", func(d job) bool {
			return len(d.Vertices) > 0 && d.Vertices[0].RecordsOut > 0
		})
		bop := accepted(t, s.send(t, "POST", b.dev, "/v1/jobs/"+bj.ID+"/savepoints", nil))
		var bsp savepoint
		if d := s.waitOp(t, b.viewer, bop.ID); d.Error != "" || json.Unmarshal(d.Result, &bsp) != nil {
			t.Fatalf("B's savepoint: %+v", d)
		}
		s.del(t, b.dev, "/v1/savepoints/"+bsp.ID).want(t, http.StatusNoContent)
		sop := accepted(t, s.send(t, "POST", b.dev, "/v1/jobs/"+bj.ID+"/stop", nil))
		if d := s.waitOp(t, b.viewer, sop.ID); d.Error != "" {
			t.Fatalf("B's stop: %+v", d)
		}
		s.del(t, b.dev, "/v1/jobs/"+bj.ID).want(t, http.StatusNoContent)
		for _, jid := range ids(t, s, b.viewer, "/v1/jobs") {
			if d := s.getJob(t, b.viewer, jid); d.State == "running" {
				s.send(t, "POST", b.dev, "/v1/jobs/"+jid+"/cancel", nil).want(t, http.StatusOK)
			}
		}
		s.del(t, b.dev, "/v1/modules/counter").want(t, http.StatusNoContent)

		if after := tree(t, s.tenantStorage(a.id)); after != storageBefore {
			t.Errorf("A's storage changed while only B and refused callers worked:\nbefore:\n%s\nafter:\n%s", storageBefore, after)
		}
		if after := tree(t, s.tenantFiles(t, a.id)); after != filesBefore {
			t.Errorf("A's file area changed:\nbefore:\n%s\nafter:\n%s", filesBefore, after)
		}
		if after := tenantLists(t, s, a.viewer); after != listsBefore {
			t.Errorf("A's resources changed:\nbefore:\n%s\nafter:\n%s", listsBefore, after)
		}
		if d := s.getJob(t, a.viewer, j.ID); d.State != "running" {
			t.Errorf("A's job is %s after B's operations", d.State)
		}
	})

	t.Run("own tenant", func(t *testing.T) {
		// Reads first, then writes, then deletes, the more specific first:
		// each must reach the handler (no 401, 403 or 404), and a delete
		// must not remove what a later call needs.
		order := func(r api.RouteInfo) int {
			switch r.Method {
			case "GET":
				return 0
			case "DELETE":
				return 2
			}
			return 1
		}
		own := append([]api.RouteInfo(nil), routes...)
		sort.SliceStable(own, func(i, j int) bool {
			oi, oj := order(own[i]), order(own[j])
			if oi != oj {
				return oi < oj
			}
			return oi == 2 && len(own[i].Path) > len(own[j].Path)
		})
		for _, r := range own {
			switch r.Access {
			case "public", "admin":
				continue
			}
			ans := call(t, r, a.owner)
			switch {
			case ans.Status == http.StatusUnauthorized || ans.Status == http.StatusForbidden || ans.Status == http.StatusNotFound:
				t.Errorf("%v: refused the tenant's own owner key", ans)
			case r.Method == "GET" && ans.Status != http.StatusOK:
				t.Errorf("%v: want 200", ans)
			}
		}
	})
	// Leave nothing running.
	for _, jid := range ids(t, s, a.viewer, "/v1/jobs") {
		if d := s.getJob(t, a.viewer, jid); d.State == "running" {
			s.send(t, "POST", a.dev, "/v1/jobs/"+jid+"/cancel", nil)
		}
	}
}

// tenantLists describes what a tenant has: its modules with their
// versions, jobs and savepoints.
func tenantLists(t *testing.T, s *server, token string) string {
	t.Helper()
	var out []string
	for _, p := range []string{"/v1/jobs", "/v1/savepoints"} {
		out = append(out, p+": "+strings.Join(ids(t, s, token, p), " "))
	}
	for _, m := range list[struct {
		Name     string `json:"name"`
		Versions int    `json:"versions"`
	}](t, s, token, "/v1/modules") {
		out = append(out, m.Name+"@"+strconv.Itoa(m.Versions))
	}
	return strings.Join(out, "\n")
}

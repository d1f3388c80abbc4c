package api_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// counterSpec is a stateful, unbounded job of the counter module: a slow
// datagen with five keys, the keyed counter (value state "count"),
// checkpoints every 100 ms, and a print sink (its lines are the job's log).
func counterSpec(name, ref string) string {
	return fmt.Sprintf(`name: %s
modules: {c: %s}
checkpoints: {interval: 100ms}
nodes:
  - {id: gen, source: datagen, config: {rate: 20, key: {kind: sequence, end: 4}}}
  - {id: count, module: c, operator: count, inputs: [gen]}
  - {id: out, sink: print, inputs: [count]}
`, name, ref)
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestRoutes calls every route on its success path and checks the status,
// the headers and the shape of the answer. The steps build on each other
// (an upload, a job of it, its savepoints), so the first failure stops it.
func TestRoutes(t *testing.T) {
	s := fx.srv
	tn := s.newTenant(t, "routes", nil)
	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	step("health and openapi", func(t *testing.T) {
		var h map[string]string
		s.get(t, "", "/v1/healthz").ok(t, http.StatusOK, &h)
		if h["status"] != "ok" {
			t.Fatalf("healthz: %v", h)
		}
		var doc map[string]any
		s.get(t, "", "/v1/openapi.json").ok(t, http.StatusOK, &doc)
		if !strings.HasPrefix(fmt.Sprint(doc["openapi"]), "3.") || doc["paths"] == nil {
			t.Fatalf("openapi.json is not an OpenAPI 3 document: openapi=%v", doc["openapi"])
		}
	})

	step("me", func(t *testing.T) {
		var me struct {
			KeyID     string     `json:"key_id"`
			Tenant    string     `json:"tenant"`
			Role      string     `json:"role"`
			ExpiresAt *time.Time `json:"expires_at"`
		}
		s.get(t, tn.dev, "/v1/me").ok(t, http.StatusOK, &me)
		if me.KeyID != tn.devID || me.Tenant != tn.id || me.Role != "developer" || me.ExpiresAt != nil {
			t.Fatalf("me: %+v, want key %s of tenant %s, developer, no expiry", me, tn.devID, tn.id)
		}
		s.get(t, s.admin, "/v1/me").ok(t, http.StatusOK, &me)
		if me.Tenant != "" || me.Role != "admin" {
			t.Fatalf("me of the admin key: %+v", me)
		}
	})

	step("quotas", func(t *testing.T) {
		var q struct {
			Tenant string         `json:"tenant"`
			Quotas map[string]any `json:"quotas"`
			Usage  map[string]any `json:"usage"`
		}
		s.get(t, tn.viewer, "/v1/quotas").ok(t, http.StatusOK, &q)
		if q.Tenant != tn.id {
			t.Fatalf("quotas of %q, want %q", q.Tenant, tn.id)
		}
		for _, k := range []string{"slots", "memory_pages", "call_timeout", "modules", "module_bytes", "state_bytes",
			"retained_checkpoints", "savepoints", "requests_per_second"} {
			if _, ok := q.Quotas[k]; !ok {
				t.Errorf("quotas lack %s: %v", k, q.Quotas)
			}
		}
		if q.Quotas["slots"] != 8.0 || q.Quotas["call_timeout"] != "5s" {
			t.Errorf("default quotas: slots %v, call_timeout %v; want 8 and \"5s\"", q.Quotas["slots"], q.Quotas["call_timeout"])
		}
		for _, k := range []string{"slots", "jobs", "modules", "savepoints", "state_bytes"} {
			if v, ok := q.Usage[k]; !ok || v != 0.0 {
				t.Errorf("usage %s = %v, want 0 for a new tenant", k, v)
			}
		}
	})

	step("tenants", func(t *testing.T) {
		a := s.send(t, "POST", s.admin, "/v1/tenants", map[string]any{"id": "routes-2", "quotas": map[string]any{"slots": 3}})
		var created struct {
			ID        string         `json:"id"`
			CreatedAt time.Time      `json:"created_at"`
			Quotas    map[string]any `json:"quotas"`
		}
		a.ok(t, http.StatusCreated, &created)
		if loc := a.Header.Get("Location"); loc != "/v1/tenants/routes-2" {
			t.Errorf("Location %q", loc)
		}
		if created.ID != "routes-2" || created.Quotas["slots"] != 3.0 || created.Quotas["modules"] != 100.0 || created.CreatedAt.IsZero() {
			t.Fatalf("created %+v: want id routes-2, slots 3 and the default modules 100", created)
		}
		s.send(t, "POST", s.admin, "/v1/tenants", map[string]any{"id": "routes-2"}).problem(t, http.StatusConflict, "already-exists")

		// Every page of the list, one at a time: both tenants appear once.
		all := ids(t, s, s.admin, "/v1/tenants?page_size=1")
		if !contains(all, "routes") || !contains(all, "routes-2") || !sort.StringsAreSorted(all) {
			t.Fatalf("tenants %v: want routes and routes-2, sorted", all)
		}

		var got struct {
			ID    string         `json:"id"`
			Usage map[string]any `json:"usage"`
		}
		s.get(t, s.admin, "/v1/tenants/routes-2").ok(t, http.StatusOK, &got)
		if got.ID != "routes-2" || got.Usage == nil {
			t.Fatalf("tenant %+v: want routes-2 with usage", got)
		}

		var set struct {
			Quotas map[string]any `json:"quotas"`
		}
		s.send(t, "PUT", s.admin, "/v1/tenants/routes-2/quotas", map[string]any{"savepoints": 2, "call_timeout": "1.5s"}).ok(t, http.StatusOK, &set)
		if set.Quotas["savepoints"] != 2.0 || set.Quotas["call_timeout"] != "1.5s" || set.Quotas["slots"] != 8.0 {
			t.Fatalf("quotas after PUT: %v; want savepoints 2, call_timeout 1.5s and slots back to its default 8 (PUT sets all)", set.Quotas)
		}

		// Keys, by the admin.
		a = s.send(t, "POST", s.admin, "/v1/tenants/routes-2/keys", map[string]any{"name": "ci", "role": "owner"})
		var ck struct {
			Key   map[string]any `json:"key"`
			Token string         `json:"token"`
		}
		a.ok(t, http.StatusCreated, &ck)
		kid, _ := ck.Key["id"].(string)
		if kid == "" || ck.Key["role"] != "owner" || ck.Key["tenant"] != "routes-2" || ck.Key["name"] != "ci" ||
			!strings.HasPrefix(ck.Token, "weir_"+kid+"_") {
			t.Fatalf("created key %v with token %q", ck.Key, ck.Token)
		}
		if loc := a.Header.Get("Location"); loc != "/v1/tenants/routes-2/keys/"+kid {
			t.Errorf("Location %q, want /v1/tenants/routes-2/keys/%s", loc, kid)
		}
		keys := s.get(t, s.admin, "/v1/tenants/routes-2/keys").want(t, http.StatusOK)
		if strings.Contains(string(keys.Body), ck.Token[len(ck.Token)-43:]) || strings.Contains(string(keys.Body), "sha256") ||
			strings.Contains(string(keys.Body), `"token"`) || strings.Contains(string(keys.Body), "secret") {
			t.Fatalf("the key list shows a secret: %s", keys.Body)
		}
		if l := ids(t, s, s.admin, "/v1/tenants/routes-2/keys"); !contains(l, kid) {
			t.Fatalf("keys %v lack %s", l, kid)
		}

		// Keys, by the tenant's owner.
		a = s.send(t, "POST", ck.Token, "/v1/keys", map[string]any{"name": "reader", "role": "viewer", "expires_at": time.Now().Add(time.Hour).Format(time.RFC3339)})
		var ck2 struct {
			Key struct {
				ID        string     `json:"id"`
				Tenant    string     `json:"tenant"`
				ExpiresAt *time.Time `json:"expires_at"`
			} `json:"key"`
			Token string `json:"token"`
		}
		a.ok(t, http.StatusCreated, &ck2)
		if ck2.Key.Tenant != "routes-2" || ck2.Key.ExpiresAt == nil {
			t.Fatalf("owner-created key %+v", ck2.Key)
		}
		if loc := a.Header.Get("Location"); loc != "/v1/keys/"+ck2.Key.ID {
			t.Errorf("Location %q, want /v1/keys/%s", loc, ck2.Key.ID)
		}
		if l := ids(t, s, ck.Token, "/v1/keys"); !contains(l, ck2.Key.ID) || !contains(l, kid) {
			t.Fatalf("owner's key list %v lacks %s or %s", l, ck2.Key.ID, kid)
		}
		s.get(t, ck2.Token, "/v1/me").want(t, http.StatusOK)
		// The scheme is case-insensitive.
		s.do(t, req{method: "GET", path: "/v1/me", header: map[string]string{"Authorization": "bearer " + ck2.Token}}).want(t, http.StatusOK)
		s.del(t, ck.Token, "/v1/keys/"+ck2.Key.ID).want(t, http.StatusNoContent)
		s.get(t, ck2.Token, "/v1/me").problem(t, http.StatusUnauthorized, "key-revoked")
		for _, k := range list[map[string]any](t, s, ck.Token, "/v1/keys") {
			if k["id"] == ck2.Key.ID && k["revoked_at"] == nil {
				t.Fatalf("revoked key listed without revoked_at: %v", k)
			}
		}
		s.del(t, s.admin, "/v1/tenants/routes-2/keys/"+kid).want(t, http.StatusNoContent)
		s.get(t, ck.Token, "/v1/me").problem(t, http.StatusUnauthorized, "key-revoked")

		s.del(t, s.admin, "/v1/tenants/routes-2").want(t, http.StatusNoContent)
		s.get(t, s.admin, "/v1/tenants/routes-2").problem(t, http.StatusNotFound, "not-found")
		if all := ids(t, s, s.admin, "/v1/tenants"); contains(all, "routes-2") {
			t.Fatalf("deleted tenant still listed: %v", all)
		}
	})

	counter := fx.modules["counter"]
	var v1 moduleVersion
	step("modules", func(t *testing.T) {
		a := s.do(t, req{method: "POST", path: "/v1/modules/counter", token: tn.dev, ctype: "application/wasm", body: counter})
		a.ok(t, http.StatusCreated, &v1)
		if loc := a.Header.Get("Location"); loc != "/v1/modules/counter/versions/1" {
			t.Errorf("Location %q", loc)
		}
		if v1.Name != "counter" || v1.Version != 1 || v1.Digest != "sha256:"+sha256Hex(counter) || v1.Size != int64(len(counter)) ||
			v1.ABIVersion != 1 || len(v1.Operators) != 1 || v1.Operators[0].Name != "count" || !v1.Operators[0].Keyed || v1.CreatedAt.IsZero() {
			t.Fatalf("uploaded %+v; want counter v1, digest sha256:%s, %d bytes, ABI 1, operator count (keyed)", v1, sha256Hex(counter), len(counter))
		}

		// The same bytes again, raw and as a multipart form: the same version.
		var again moduleVersion
		s.do(t, req{method: "POST", path: "/v1/modules/counter", token: tn.dev, ctype: "application/octet-stream", body: counter}).ok(t, http.StatusOK, &again)
		if again.Version != 1 || again.Digest != v1.Digest {
			t.Fatalf("re-upload gave %+v, want version 1", again)
		}
		ct, body := multipartBody(t, "module", counter)
		s.do(t, req{method: "POST", path: "/v1/modules/counter", token: tn.dev, ctype: ct, body: body}).ok(t, http.StatusOK, &again)
		if again.Version != 1 {
			t.Fatalf("multipart re-upload gave version %d, want 1", again.Version)
		}
		// New bytes as a multipart form: version 2.
		ct, body = multipartBody(t, "module", fx.modules["counter-v2"])
		var v2 moduleVersion
		a = s.do(t, req{method: "POST", path: "/v1/modules/counter", token: tn.dev, ctype: ct, body: body}).ok(t, http.StatusCreated, &v2)
		if v2.Version != 2 || v2.Digest != "sha256:"+sha256Hex(fx.modules["counter-v2"]) || a.Header.Get("Location") != "/v1/modules/counter/versions/2" {
			t.Fatalf("multipart upload of new bytes: %+v (Location %q), want version 2", v2, a.Header.Get("Location"))
		}

		var names page[struct {
			Name     string        `json:"name"`
			Latest   moduleVersion `json:"latest"`
			Versions int           `json:"versions"`
		}]
		s.get(t, tn.viewer, "/v1/modules").ok(t, http.StatusOK, &names)
		if len(names.Items) != 1 || names.Items[0].Name != "counter" || names.Items[0].Latest.Version != 2 || names.Items[0].Versions != 2 {
			t.Fatalf("module list %+v: want counter with latest 2 of 2 versions", names.Items)
		}
		var mv struct {
			Name     string          `json:"name"`
			Versions []moduleVersion `json:"versions"`
		}
		s.get(t, tn.viewer, "/v1/modules/counter").ok(t, http.StatusOK, &mv)
		if mv.Name != "counter" || len(mv.Versions) != 2 || mv.Versions[0].Version != 1 || mv.Versions[1].Version != 2 {
			t.Fatalf("module %+v: want versions 1 and 2", mv)
		}
		for sel, want := range map[string]int{"1": 1, "2": 2, "latest": 2, v1.Digest: 1, v2.Digest: 2} {
			var got moduleVersion
			s.get(t, tn.viewer, "/v1/modules/counter/versions/"+sel).ok(t, http.StatusOK, &got)
			if got.Version != want || got.Name != "counter" {
				t.Errorf("version %s: got version %d, want %d", sel, got.Version, want)
			}
		}
		s.get(t, tn.viewer, "/v1/modules/counter/versions/3").problem(t, http.StatusNotFound, "not-found")
		// A digest escaped as a client library may escape it.
		var esc moduleVersion
		s.get(t, tn.viewer, "/v1/modules/counter/versions/"+strings.Replace(v1.Digest, ":", "%3A", 1)).ok(t, http.StatusOK, &esc)
		if esc.Version != 1 {
			t.Fatalf("the escaped digest found version %d, want 1", esc.Version)
		}
		for _, bad := range []string{"x1", "0", "sha256:zz", "latest2"} {
			p := s.get(t, tn.viewer, "/v1/modules/counter/versions/"+bad).problem(t, http.StatusBadRequest, "invalid-request")
			if !p.hasField("version") {
				t.Errorf("version %s: errors %v, want the field version", bad, p.fields())
			}
		}

		w := s.get(t, tn.viewer, "/v1/modules/counter/versions/1/wasm").want(t, http.StatusOK)
		if ct := w.Header.Get("Content-Type"); ct != "application/wasm" {
			t.Errorf("wasm Content-Type %q", ct)
		}
		if got := sha256Hex(w.Body); got != sha256Hex(counter) || len(w.Body) != len(counter) {
			t.Fatalf("downloaded %d bytes with sha256 %s, uploaded %d with %s", len(w.Body), got, len(counter), sha256Hex(counter))
		}

		// Deleting: a version, then a whole name.
		s.upload(t, tn.dev, "scratch", fx.modules["counter-v2"])
		s.upload(t, tn.dev, "scratch", fx.modules["counter"])
		s.del(t, tn.dev, "/v1/modules/scratch/versions/1").want(t, http.StatusNoContent)
		s.get(t, tn.viewer, "/v1/modules/scratch/versions/1").problem(t, http.StatusNotFound, "not-found")
		s.del(t, tn.dev, "/v1/modules/scratch").want(t, http.StatusNoContent)
		s.get(t, tn.viewer, "/v1/modules/scratch").problem(t, http.StatusNotFound, "not-found")
		if got := ids(t, s, tn.viewer, "/v1/modules"); len(got) != 1 || got[0] != "counter" {
			t.Fatalf("modules after deleting scratch: %v", got)
		}
	})

	var j job
	step("deploy and get", func(t *testing.T) {
		j = s.deployYAML(t, tn.dev, counterSpec("counter", "counter@1"))
		if j.ID == "" || j.Name != "counter" || j.State != "running" || j.Modules["c"] != "counter@1" || j.Slots != 1 {
			t.Fatalf("deployed %+v", j)
		}
		if l := ids(t, s, tn.viewer, "/v1/jobs"); !contains(l, j.ID) {
			t.Fatalf("jobs %v lack %s", l, j.ID)
		}
		// Running, with a completed checkpoint and records through every vertex.
		d := s.waitJob(t, tn.viewer, j.ID, "with a checkpoint and output", func(d job) bool {
			out := len(d.Vertices) > 0
			for _, v := range d.Vertices {
				out = out && (v.RecordsIn > 0 || v.RecordsOut > 0)
			}
			return d.Checkpoints != nil && d.Checkpoints.Completed > 0 && out
		})
		if d.State != "running" {
			t.Fatalf("job %s is %s (%s)", j.ID, d.State, d.Error)
		}
		var kinds []string
		for _, g := range d.Graph {
			kinds = append(kinds, g.ID+":"+g.Kind)
		}
		if strings.Join(kinds, ",") != "gen:source,count:operator,out:sink" {
			t.Fatalf("graph %v", kinds)
		}
		if d.Graph[1].Module != "c" || d.Graph[1].Operator != "count" || len(d.Graph[1].Inputs) != 1 || d.Graph[1].Inputs[0].From != "gen" {
			t.Fatalf("graph node count: %+v", d.Graph[1])
		}
		var spec struct {
			Modules map[string]map[string]string `json:"modules"`
		}
		if err := json.Unmarshal(d.Spec, &spec); err != nil || spec.Modules["c"]["ref"] != "counter@1" {
			t.Fatalf("spec %s: want module c pinned to counter@1 (%v)", d.Spec, err)
		}
		var latest map[string]any
		if err := json.Unmarshal(d.Checkpoints.Latest, &latest); err != nil || latest["status"] != "completed" {
			t.Fatalf("latest checkpoint %s: want a completed checkpoint (%v)", d.Checkpoints.Latest, err)
		}
	})

	step("checkpoints", func(t *testing.T) {
		cps := list[map[string]any](t, s, tn.viewer, "/v1/jobs/"+j.ID+"/checkpoints")
		if len(cps) == 0 {
			t.Fatal("no checkpoints listed")
		}
		completed := 0
		for _, c := range cps {
			for _, k := range []string{"id", "status", "triggered_at", "duration", "duration_ms", "size", "uploaded", "alignment_ms"} {
				if _, ok := c[k]; !ok {
					t.Fatalf("checkpoint %v lacks %s", c, k)
				}
			}
			if c["status"] == "completed" {
				completed++
			}
		}
		if completed == 0 {
			t.Fatalf("no completed checkpoint in %v", cps)
		}
		if first, last := cps[0]["id"].(float64), cps[len(cps)-1]["id"].(float64); first < last {
			t.Fatalf("checkpoints not newest first: %v then %v", first, last)
		}
	})

	step("logs", func(t *testing.T) {
		type line struct {
			Seq     uint64    `json:"seq"`
			Time    time.Time `json:"time"`
			Level   string    `json:"level"`
			Source  string    `json:"source"`
			Message string    `json:"message"`
		}
		// The print sink writes a line per record: wait for a few.
		waitFor(t, 30*time.Second, "10 log lines", func() bool {
			var pg page[line]
			s.get(t, tn.viewer, "/v1/jobs/"+j.ID+"/logs?page_size=500").ok(t, http.StatusOK, &pg)
			return len(pg.Items) >= 10
		})
		var pg page[line]
		s.get(t, tn.viewer, "/v1/jobs/"+j.ID+"/logs?page_size=3").ok(t, http.StatusOK, &pg)
		if len(pg.Items) != 3 || pg.NextPageToken != strconv.FormatUint(pg.Items[2].Seq, 10) {
			t.Fatalf("first page: %d lines, next_page_token %q; want 3 and the last seq", len(pg.Items), pg.NextPageToken)
		}
		if pg.Items[0].Source != "system" || pg.Items[0].Time.IsZero() || pg.Items[0].Level == "" || pg.Items[0].Message == "" {
			t.Fatalf("first line %+v: want a system event", pg.Items[0])
		}
		seq := pg.Items[2].Seq
		var next page[line]
		s.get(t, tn.viewer, "/v1/jobs/"+j.ID+"/logs?page_size=3&page_token="+pg.NextPageToken).ok(t, http.StatusOK, &next)
		if len(next.Items) == 0 || next.Items[0].Seq != seq+1 {
			t.Fatalf("second page starts at %v, want seq %d", next.Items, seq+1)
		}
		sources := map[string]bool{}
		prev := uint64(0)
		for _, l := range list[line](t, s, tn.viewer, "/v1/jobs/"+j.ID+"/logs?page_size=7") {
			if l.Seq <= prev {
				t.Fatalf("seq %d after %d", l.Seq, prev)
			}
			prev = l.Seq
			sources[l.Source] = true
		}
		if !sources["print"] || !sources["system"] {
			t.Fatalf("log sources %v: want print and system", sources)
		}
	})

	var sp savepoint
	step("savepoint", func(t *testing.T) {
		op := accepted(t, s.send(t, "POST", tn.dev, "/v1/jobs/"+j.ID+"/savepoints", nil, "Idempotency-Key", "sp-1"))
		if op.Kind != "savepoint" || op.Job != j.ID || op.RequestID != "sp-1" || op.CreatedAt.IsZero() {
			t.Fatalf("operation %+v", op)
		}
		// A retry, with the header or the body field, is the same operation.
		if again := accepted(t, s.send(t, "POST", tn.dev, "/v1/jobs/"+j.ID+"/savepoints", nil, "Idempotency-Key", "sp-1")); again.ID != op.ID {
			t.Fatalf("retry with the same Idempotency-Key started %s, want %s", again.ID, op.ID)
		}
		if again := accepted(t, s.send(t, "POST", tn.dev, "/v1/jobs/"+j.ID+"/savepoints", map[string]any{"request_id": "sp-1"})); again.ID != op.ID {
			t.Fatalf("retry with request_id started %s, want %s", again.ID, op.ID)
		}
		// The same id for another kind of operation is a conflict.
		s.send(t, "POST", tn.dev, "/v1/jobs/"+j.ID+"/stop", nil, "Idempotency-Key", "sp-1").problem(t, http.StatusConflict, "request-id-reused")

		done := s.waitOp(t, tn.viewer, op.ID)
		if done.Error != "" {
			t.Fatalf("savepoint failed: %s", done.Error)
		}
		if err := json.Unmarshal(done.Result, &sp); err != nil || sp.ID == "" || sp.Job != j.ID || sp.Size <= 0 || sp.Path == "" {
			t.Fatalf("result %s: want a savepoint of %s (%v)", done.Result, j.ID, err)
		}
		if l := ids(t, s, tn.viewer, "/v1/savepoints"); !contains(l, sp.ID) {
			t.Fatalf("savepoints %v lack %s", l, sp.ID)
		}
		if l := ids(t, s, tn.viewer, "/v1/jobs/"+j.ID+"/savepoints"); !contains(l, sp.ID) {
			t.Fatalf("job savepoints %v lack %s", l, sp.ID)
		}
		var got savepoint
		s.get(t, tn.viewer, "/v1/savepoints/"+sp.ID).ok(t, http.StatusOK, &got)
		if got != sp {
			t.Fatalf("GET savepoint %+v, the operation's result %+v", got, sp)
		}
		// A second request id is a second operation.
		op2 := accepted(t, s.send(t, "POST", tn.dev, "/v1/jobs/"+j.ID+"/savepoints", map[string]any{"request_id": "sp-2"}))
		if op2.ID == op.ID {
			t.Fatal("another request id returned the same operation")
		}
		if d := s.waitOp(t, tn.viewer, op2.ID); d.Error != "" {
			t.Fatalf("second savepoint: %s", d.Error)
		}
	})

	upload := func(t *testing.T, variant string) moduleVersion {
		return s.upload(t, tn.dev, "counter", fx.modules[variant])
	}

	step("upgrade", func(t *testing.T) {
		op := accepted(t, s.send(t, "POST", tn.dev, "/v1/jobs/"+j.ID+"/upgrade", map[string]any{"modules": map[string]string{"c": "counter@2"}}))
		if op.Kind != "upgrade" {
			t.Fatalf("operation %+v", op)
		}
		if done := s.waitOp(t, tn.viewer, op.ID); done.Error != "" || done.RolledBack {
			t.Fatalf("upgrade to counter@2: %+v", done)
		}
		d := s.getJob(t, tn.viewer, j.ID)
		if d.State != "running" || d.Modules["c"] != "counter@2" || d.Generation != 2 {
			t.Fatalf("after the upgrade: %+v; want running counter@2 in generation 2", d)
		}
	})

	step("upgrade rolled back", func(t *testing.T) {
		bad := upload(t, "counter-mapkind")
		op := accepted(t, s.send(t, "POST", tn.dev, "/v1/jobs/"+j.ID+"/upgrade",
			map[string]any{"modules": map[string]string{"c": "counter@" + strconv.Itoa(bad.Version)}}, "Idempotency-Key", "up-bad"))
		done := s.waitOp(t, tn.viewer, op.ID)
		if done.Error == "" || !done.RolledBack || !strings.Contains(done.Error, `"count"`) {
			t.Fatalf("upgrade to the mapkind variant: %+v; want an error naming state \"count\" and rolled_back", done)
		}
		d := s.waitJob(t, tn.viewer, j.ID, "running again", inState("running", "failed", "canceled"))
		if d.State != "running" || d.Modules["c"] != "counter@2" {
			t.Fatalf("after the rollback: %+v; want running counter@2", d)
		}
		// It keeps running: a new checkpoint completes.
		before := d.Checkpoints.Completed
		s.waitJob(t, tn.viewer, j.ID, "checkpointing after the rollback", func(d job) bool {
			return d.State == "running" && d.Checkpoints != nil && d.Checkpoints.Completed > before
		})
	})

	step("rescale", func(t *testing.T) {
		op := accepted(t, s.send(t, "POST", tn.dev, "/v1/jobs/"+j.ID+"/rescale", map[string]any{"parallelism": 2}))
		if done := s.waitOp(t, tn.viewer, op.ID); done.Error != "" {
			t.Fatalf("rescale: %+v", done)
		}
		d := s.getJob(t, tn.viewer, j.ID)
		if d.State != "running" || d.Slots != 2 {
			t.Fatalf("after rescaling: %+v", d)
		}
		for _, g := range d.Graph {
			if g.Parallelism != 2 {
				t.Fatalf("node %s has parallelism %d after rescaling to 2", g.ID, g.Parallelism)
			}
		}
		op = accepted(t, s.send(t, "POST", tn.dev, "/v1/jobs/"+j.ID+"/rescale", map[string]any{"nodes": map[string]int{"out": 1}}))
		if done := s.waitOp(t, tn.viewer, op.ID); done.Error != "" {
			t.Fatalf("rescale of one node: %+v", done)
		}
	})

	step("module in use", func(t *testing.T) {
		s.del(t, tn.dev, "/v1/modules/counter/versions/2").problem(t, http.StatusConflict, "module-in-use")
		s.del(t, tn.dev, "/v1/modules/counter").problem(t, http.StatusConflict, "module-in-use")
		s.get(t, tn.viewer, "/v1/modules/counter/versions/2").want(t, http.StatusOK)
	})

	var stoppedWith string
	step("stop", func(t *testing.T) {
		op := accepted(t, s.send(t, "POST", tn.dev, "/v1/jobs/"+j.ID+"/stop", map[string]any{"request_id": "stop-1"}))
		done := s.waitOp(t, tn.viewer, op.ID)
		if done.Error != "" {
			t.Fatalf("stop: %s", done.Error)
		}
		var res savepoint
		if err := json.Unmarshal(done.Result, &res); err != nil || res.ID == "" {
			t.Fatalf("stop result %s (%v)", done.Result, err)
		}
		d := s.getJob(t, tn.viewer, j.ID)
		if d.State != "stopped" || d.StoppedWith != res.ID {
			t.Fatalf("after stop: %+v; want stopped with %s", d, res.ID)
		}
		stoppedWith = res.ID
		s.send(t, "POST", tn.dev, "/v1/jobs/"+j.ID+"/cancel", nil).problem(t, http.StatusConflict, "conflict")
	})

	var resumed job
	step("deploy JSON from a savepoint", func(t *testing.T) {
		spec := map[string]any{
			"name":        "counter",
			"modules":     map[string]any{"c": "counter@2"},
			"checkpoints": map[string]any{"interval": "100ms"},
			"nodes": []any{
				map[string]any{"id": "gen", "source": "datagen", "config": map[string]any{"rate": 20, "key": map[string]any{"kind": "sequence", "end": 4}}},
				map[string]any{"id": "count", "module": "c", "operator": "count", "inputs": []string{"gen"}},
				map[string]any{"id": "out", "sink": "blackhole", "inputs": []string{"count"}},
			},
		}
		a := s.send(t, "POST", tn.dev, "/v1/jobs", map[string]any{"spec": spec, "from_savepoint": stoppedWith})
		a.ok(t, http.StatusCreated, &resumed)
		if a.Header.Get("Location") != "/v1/jobs/"+resumed.ID || resumed.Savepoint != stoppedWith || resumed.Modules["c"] != "counter@2" {
			t.Fatalf("deployed %+v (Location %q); want from_savepoint %s", resumed, a.Header.Get("Location"), stoppedWith)
		}
		s.waitJob(t, tn.viewer, resumed.ID, "checkpointing", func(d job) bool { return d.Checkpoints != nil && d.Checkpoints.Completed > 0 })
		// A YAML body takes from_savepoint as a query parameter.
		y := s.do(t, req{method: "POST", path: "/v1/jobs?from_savepoint=" + stoppedWith, token: tn.dev, ctype: "application/yaml",
			body: []byte(counterSpec("counter", "counter@2"))})
		var fromYAML job
		y.ok(t, http.StatusCreated, &fromYAML)
		if fromYAML.Savepoint != stoppedWith {
			t.Fatalf("YAML deploy with ?from_savepoint: %+v", fromYAML)
		}
		s.send(t, "POST", tn.dev, "/v1/jobs/"+fromYAML.ID+"/cancel", nil).want(t, http.StatusOK)
		// The savepoint it started from stays while it runs.
		s.del(t, tn.dev, "/v1/savepoints/"+stoppedWith).problem(t, http.StatusConflict, "conflict")
	})

	step("cancel", func(t *testing.T) {
		var c job
		s.send(t, "POST", tn.dev, "/v1/jobs/"+resumed.ID+"/cancel", nil).ok(t, http.StatusOK, &c)
		if c.ID != resumed.ID || c.State != "canceled" {
			t.Fatalf("cancel answered %+v", c)
		}
	})

	step("exceptions", func(t *testing.T) {
		f := s.deployYAML(t, tn.dev, `name: broken
nodes:
  - {id: in, source: file, config: {path: missing.txt}}
  - {id: out, sink: blackhole, inputs: [in]}
`)
		d := s.waitJob(t, tn.viewer, f.ID, "failed", inState("failed", "finished"))
		if d.State != "failed" || !strings.Contains(d.Error, "missing.txt") {
			t.Fatalf("job %+v: want failed naming missing.txt", d)
		}
		var ex page[struct {
			Time    time.Time `json:"time"`
			Attempt int       `json:"attempt"`
			Error   string    `json:"error"`
		}]
		s.get(t, tn.viewer, "/v1/jobs/"+f.ID+"/exceptions").ok(t, http.StatusOK, &ex)
		if len(ex.Items) == 0 || !strings.Contains(ex.Items[0].Error, "missing.txt") || ex.Items[0].Attempt != 1 || ex.Items[0].Time.IsZero() {
			t.Fatalf("exceptions %+v: want attempt 1 naming missing.txt", ex.Items)
		}
		s.del(t, tn.dev, "/v1/jobs/"+f.ID).want(t, http.StatusNoContent)
	})

	step("deploy JSON with a YAML string, file connectors, a digest reference", func(t *testing.T) {
		files := s.tenantFiles(t, tn.id)
		in := `{"k": "a"}` + "\n" + `{"k": "b"}` + "\n" + `{"k": "a"}` + "\n" + `{"k": "c"}` + "\n" + `{"k": "a"}` + "\n" + `{"k": "b"}` + "\n"
		if err := os.WriteFile(filepath.Join(files, "input.jsonl"), []byte(in), 0o644); err != nil {
			t.Fatal(err)
		}
		// By digest: the lowest version with these bytes, counter@1.
		spec := `name: files
parallelism: 2
modules: {c: ` + v1.Digest + `}
nodes:
  - {id: in, source: file, parallelism: 1, config: {path: input.jsonl, format: jsonl, keyField: k}}
  - {id: count, module: c, operator: count, inputs: [in]}
  - {id: out, sink: file, config: {path: out, format: kv}, inputs: [count]}
`
		var w job
		s.send(t, "POST", tn.dev, "/v1/jobs", map[string]any{"spec": spec}).ok(t, http.StatusCreated, &w)
		if w.Modules["c"] != "counter@1" {
			t.Fatalf("a digest reference pinned to %q, want counter@1", w.Modules["c"])
		}
		d := s.waitJob(t, tn.viewer, w.ID, "finished", inState("finished", "failed"))
		if d.State != "finished" {
			t.Fatalf("the file job %s: %s", d.State, d.Error)
		}
		final := map[string]int{}
		parts, _ := filepath.Glob(filepath.Join(files, "out", "part-*"))
		for _, p := range parts {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				k, v, _ := strings.Cut(l, "\t")
				_, n, _ := strings.Cut(v, "=")
				c, _ := strconv.Atoi(n)
				final[k] = max(final[k], c)
			}
		}
		if fmt.Sprint(final) != "map[a:3 b:2 c:1]" {
			t.Fatalf("counts %v (files %v)", final, parts)
		}
	})

	step("delete savepoint and job", func(t *testing.T) {
		s.del(t, tn.dev, "/v1/savepoints/"+sp.ID).want(t, http.StatusNoContent)
		s.get(t, tn.viewer, "/v1/savepoints/"+sp.ID).problem(t, http.StatusNotFound, "not-found")
		if l := ids(t, s, tn.viewer, "/v1/savepoints"); contains(l, sp.ID) {
			t.Fatalf("deleted savepoint listed: %v", l)
		}
		if _, err := os.Stat(filepath.Join(s.data, "storage", filepath.FromSlash(sp.Path))); !os.IsNotExist(err) {
			t.Fatalf("the deleted savepoint's folder %s: %v", sp.Path, err)
		}
		s.del(t, tn.dev, "/v1/jobs/"+resumed.ID).want(t, http.StatusNoContent)
		s.get(t, tn.viewer, "/v1/jobs/"+resumed.ID).problem(t, http.StatusNotFound, "not-found")
		if l := ids(t, s, tn.viewer, "/v1/jobs"); contains(l, resumed.ID) {
			t.Fatalf("deleted job listed: %v", l)
		}
		// Savepoints outlive their job.
		s.get(t, tn.viewer, "/v1/savepoints/"+stoppedWith).want(t, http.StatusOK)
	})

	step("delete a tenant with everything it has", func(t *testing.T) {
		d := s.newTenant(t, "routes-del", nil)
		s.upload(t, d.dev, "counter", counter)
		j := s.deployYAML(t, d.dev, counterSpec("doomed", "counter@1"))
		s.waitJob(t, d.viewer, j.ID, "checkpointing", func(d job) bool { return d.Checkpoints != nil && d.Checkpoints.Completed > 0 })
		op := accepted(t, s.send(t, "POST", d.dev, "/v1/jobs/"+j.ID+"/savepoints", nil))
		if done := s.waitOp(t, d.viewer, op.ID); done.Error != "" {
			t.Fatalf("savepoint: %s", done.Error)
		}
		files := s.tenantFiles(t, d.id)
		if err := os.WriteFile(filepath.Join(files, "data.txt"), []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if tree(t, s.tenantStorage(d.id)) == "" {
			t.Fatal("the tenant has nothing in storage: deleting it would prove nothing")
		}
		s.del(t, s.admin, "/v1/tenants/"+d.id).problem(t, http.StatusConflict, "conflict")
		s.get(t, d.viewer, "/v1/me").want(t, http.StatusOK)
		s.send(t, "POST", d.dev, "/v1/jobs/"+j.ID+"/cancel", nil).want(t, http.StatusOK)
		s.del(t, s.admin, "/v1/tenants/"+d.id).want(t, http.StatusNoContent)
		for _, dir := range []string{s.tenantStorage(d.id), files, filepath.Join(s.data, "state", d.id)} {
			if left := tree(t, dir); left != "" {
				t.Errorf("%s still holds:\n%s", dir, left)
			}
		}
		s.get(t, d.owner, "/v1/me").problem(t, http.StatusUnauthorized, "unauthenticated")
		// A new tenant of the same id starts empty.
		again := s.newTenant(t, "routes-del", nil)
		for _, p := range []string{"/v1/modules", "/v1/jobs", "/v1/savepoints"} {
			if l := ids(t, s, again.viewer, p); len(l) != 0 {
				t.Errorf("the new tenant routes-del inherited %s %v", p, l)
			}
		}
		s.get(t, again.viewer, "/v1/jobs/"+j.ID).problem(t, http.StatusNotFound, "not-found")
		s.get(t, again.viewer, "/v1/operations/"+op.ID).problem(t, http.StatusNotFound, "not-found")
	})

	step("usage", func(t *testing.T) {
		var q struct {
			Usage map[string]float64 `json:"usage"`
		}
		s.get(t, tn.viewer, "/v1/quotas").ok(t, http.StatusOK, &q)
		sps := len(ids(t, s, tn.viewer, "/v1/savepoints"))
		if q.Usage["modules"] != 3 || q.Usage["jobs"] != 0 || q.Usage["slots"] != 0 || q.Usage["savepoints"] != float64(sps) {
			t.Fatalf("usage %v; want 3 modules (counter 1-3), no jobs, %d savepoints", q.Usage, sps)
		}
	})
}

package api_test

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
)

// specCases are invalid job specs: each engine (or platform) spec error
// must surface as 400 invalid-job-spec naming its field.
var specCases = []struct {
	name, spec, field string
}{
	{"unknown source connector", `
modules: {c: counter@1}
nodes:
  - {id: gen, source: teleport}
  - {id: out, sink: blackhole, inputs: [gen]}`, "nodes[0] (gen).source"},
	{"no node kind", `
nodes:
  - {id: gen}
  - {id: out, sink: blackhole, inputs: [gen]}`, "nodes[0] (gen)"},
	{"two node kinds", `
nodes:
  - {id: gen, source: datagen, sink: print}
  - {id: out, sink: blackhole, inputs: [gen]}`, "nodes[0] (gen)"},
	{"bad partition", `
modules: {c: counter@1}
nodes:
  - {id: gen, source: datagen}
  - {id: count, module: c, operator: count, inputs: [{from: gen, partition: sideways}]}
  - {id: out, sink: blackhole, inputs: [count]}`, "nodes[1] (count).inputs[0].partition"},
	{"keyed operator without key partition", `
modules: {c: counter@1}
nodes:
  - {id: gen, source: datagen}
  - {id: count, module: c, operator: count, inputs: [{from: gen, partition: rebalance}]}
  - {id: out, sink: blackhole, inputs: [count]}`, "nodes[1] (count).inputs[0].partition"},
	{"missing inputs", `
modules: {c: counter@1}
nodes:
  - {id: gen, source: datagen}
  - {id: count, module: c, operator: count}
  - {id: out, sink: blackhole, inputs: [gen]}`, "nodes[1] (count).inputs"},
	{"unknown input", `
nodes:
  - {id: gen, source: datagen}
  - {id: out, sink: blackhole, inputs: [nowhere]}`, "nodes[1] (out).inputs[0].from"},
	{"unknown module alias", `
modules: {c: counter@1}
nodes:
  - {id: gen, source: datagen}
  - {id: count, module: nope, operator: count, inputs: [gen]}
  - {id: out, sink: blackhole, inputs: [count]}`, "nodes[1] (count).module"},
	{"unknown operator", `
modules: {c: counter@1}
nodes:
  - {id: gen, source: datagen}
  - {id: count, module: c, operator: sum, inputs: [gen]}
  - {id: out, sink: blackhole, inputs: [count]}`, "nodes[1] (count).operator"},
	{"unknown module version", `
modules: {c: counter@9}
nodes:
  - {id: gen, source: datagen}
  - {id: count, module: c, operator: count, inputs: [gen]}
  - {id: out, sink: blackhole, inputs: [count]}`, "modules.c.ref"},
	{"malformed module reference", `
modules: {c: "counter@@1"}
nodes:
  - {id: gen, source: datagen}
  - {id: count, module: c, operator: count, inputs: [gen]}
  - {id: out, sink: blackhole, inputs: [count]}`, "modules.c.ref"},
	{"module path instead of a reference", `
modules: {c: {path: /tmp/counter.wasm}}
nodes:
  - {id: gen, source: datagen}
  - {id: count, module: c, operator: count, inputs: [gen]}
  - {id: out, sink: blackhole, inputs: [count]}`, "modules.c.path"},
	{"cycle", `
modules: {c: counter@1}
nodes:
  - {id: gen, source: datagen}
  - {id: a, module: c, operator: count, inputs: [gen, b]}
  - {id: b, module: c, operator: count, inputs: [a]}
  - {id: out, sink: blackhole, inputs: [b]}`, "nodes"},
	{"no source", `
nodes:
  - {id: out, sink: blackhole, inputs: [out]}`, "nodes"},
	{"duplicate node id", `
nodes:
  - {id: gen, source: datagen}
  - {id: gen, sink: blackhole, inputs: [gen]}`, "nodes[1] (gen).id"},
	{"bad duration", `
checkpoints: {interval: soon}
nodes:
  - {id: gen, source: datagen}
  - {id: out, sink: blackhole, inputs: [gen]}`, "checkpoints.interval"},
	{"bad duration, block style", `
checkpoints:
  timeout: 1m
  interval: soon
nodes:
  - {id: gen, source: datagen}
  - {id: out, sink: blackhole, inputs: [gen]}`, "checkpoints.interval"},
	{"negative parallelism", `
parallelism: -1
nodes:
  - {id: gen, source: datagen}
  - {id: out, sink: blackhole, inputs: [gen]}`, "parallelism"},
	{"parallelism not a number", `
parallelism: two
nodes:
  - {id: gen, source: datagen}
  - {id: out, sink: blackhole, inputs: [gen]}`, "parallelism"},
	{"state.dir set", `
state: {dir: /tmp/mine}
nodes:
  - {id: gen, source: datagen}
  - {id: out, sink: blackhole, inputs: [gen]}`, "state.dir"},
	{"checkpoints.storage set", `
checkpoints: {interval: 1s, storage: /tmp/cp}
nodes:
  - {id: gen, source: datagen}
  - {id: out, sink: blackhole, inputs: [gen]}`, "checkpoints.storage"},
	{"unknown top-level field", `
colour: red
nodes:
  - {id: gen, source: datagen}
  - {id: out, sink: blackhole, inputs: [gen]}`, "colour"},
	{"unknown node field", `
nodes:
  - {id: gen, source: datagen, speed: 3}
  - {id: out, sink: blackhole, inputs: [gen]}`, "nodes[0] (gen).speed"},
	{"unknown input field", `
nodes:
  - {id: gen, source: datagen}
  - {id: out, sink: blackhole, inputs: [{from: gen, via: x}]}`, "nodes[1] (out).inputs[0].via"},
	{"bad connector config", `
nodes:
  - {id: gen, source: datagen, config: {count: many}}
  - {id: out, sink: blackhole, inputs: [gen]}`, "nodes[0] (gen).config.count"},
	{"unknown connector config field", `
nodes:
  - {id: gen, source: datagen, config: {colour: red}}
  - {id: out, sink: blackhole, inputs: [gen]}`, "nodes[0] (gen).config.colour"},
	{"file path leaving the tenant's area", `
nodes:
  - {id: gen, source: datagen, config: {count: 1}}
  - {id: out, sink: file, config: {path: ../iso-a/out}, inputs: [gen]}`, "nodes[1] (out).config.path"},
	{"absolute file path", `
nodes:
  - {id: in, source: file, config: {path: /etc/passwd}}
  - {id: out, sink: blackhole, inputs: [in]}`, "nodes[0] (in).config.path"},
	{"no nodes", `
parallelism: 1`, "nodes"},
}

// TestBadInput sends malformed, oversized and invalid requests: each is a
// clear 4xx problem, nothing is stored, and the server keeps serving.
func TestBadInput(t *testing.T) {
	s := fx.srv
	tn := s.newTenant(t, "bad", quotas("module_bytes", 4<<20))
	// The one module the job specs refer to; what follows must add nothing.
	s.upload(t, tn.dev, "counter", fx.modules["counter"])
	before := snapshot(t, s, tn)

	upload := func(t *testing.T, name, ctype string, body []byte) *answer {
		t.Helper()
		return s.do(t, req{method: "POST", path: "/v1/modules/" + name, token: tn.dev, ctype: ctype, body: body})
	}
	wantField := func(t *testing.T, p *problem, field string) {
		t.Helper()
		if !p.hasField(field) {
			t.Errorf("%s: errors %v, want the field %s", p.Detail, p.fields(), field)
		}
	}

	t.Run("uploads", func(t *testing.T) {
		wantField(t, upload(t, "m", "multipart/form-data; boundary=xyz", []byte("garbage")).problem(t, http.StatusBadRequest, "invalid-request"), "module")
		wantField(t, upload(t, "m", "multipart/form-data", []byte("--x\r\n")).problem(t, http.StatusBadRequest, "invalid-request"), "module")
		ct, body := multipartBody(t, "file", fx.modules["counter"])
		wantField(t, upload(t, "m", ct, body).problem(t, http.StatusBadRequest, "invalid-request"), "module")
		ct, body = multipartBody(t, "module", nil)
		wantField(t, upload(t, "m", ct, body).problem(t, http.StatusBadRequest, "invalid-request"), "module")
		wantField(t, upload(t, "m", "application/wasm", nil).problem(t, http.StatusBadRequest, "invalid-request"), "module")

		for _, c := range []struct {
			name string
			wasm []byte
		}{
			{"text", []byte("hello, world")},
			{"wasm header only", []byte("\x00asm\x01\x00\x00\x00")},
			{"wasm version 2", []byte("\x00asm\x02\x00\x00\x00")},
			{"truncated module", fx.modules["counter"][:len(fx.modules["counter"])/3]},
		} {
			p := upload(t, "m", "application/wasm", c.wasm).problem(t, http.StatusBadRequest, "invalid-module")
			if p.ModuleError == "" || p.Detail == "" {
				t.Errorf("%s: module_error %q, detail %q; want both", c.name, p.ModuleError, p.Detail)
			}
			ct, body := multipartBody(t, "module", c.wasm)
			upload(t, "m", ct, body).problem(t, http.StatusBadRequest, "invalid-module")
		}
		// Over the tenant's module_bytes (4 MiB here), raw and multipart.
		big := bytes.Repeat([]byte{0}, 4<<20+1)
		quotaProblem(t, upload(t, "m", "application/wasm", big), http.StatusRequestEntityTooLarge, "module_bytes", 4<<20)
		ct, body = multipartBody(t, "module", big)
		quotaProblem(t, upload(t, "m", ct, body), http.StatusRequestEntityTooLarge, "module_bytes", 4<<20)

		upload(t, "m", "text/plain", fx.modules["counter"]).problem(t, http.StatusUnsupportedMediaType, "unsupported-media-type")
		upload(t, "m", "", fx.modules["counter"]).problem(t, http.StatusUnsupportedMediaType, "unsupported-media-type")
		for _, name := range []string{"Counter", "-x", "a@1", strings.Repeat("a", 64)} {
			wantField(t, upload(t, name, "application/wasm", fx.modules["counter"]).problem(t, http.StatusBadRequest, "invalid-request"), "name")
		}
	})

	t.Run("job specs", func(t *testing.T) {
		for _, c := range specCases {
			t.Run(c.name, func(t *testing.T) {
				a := s.do(t, req{method: "POST", path: "/v1/jobs", token: tn.dev, ctype: "application/yaml", body: []byte("name: bad" + c.spec + "\n")})
				p := a.problem(t, http.StatusBadRequest, "invalid-job-spec")
				wantField(t, p, c.field)
				// The same spec as a YAML string in JSON.
				p = s.send(t, "POST", tn.dev, "/v1/jobs", map[string]any{"spec": "name: bad" + c.spec + "\n"}).problem(t, http.StatusBadRequest, "invalid-job-spec")
				wantField(t, p, c.field)
			})
		}
		// JSON specs: fields are found in JSON objects too, one line or not.
		for _, c := range []struct {
			spec  string
			field string
		}{
			{`{"name": "bad", "colour": "red", "nodes": [{"id": "gen", "source": "datagen"}, {"id": "out", "sink": "blackhole", "inputs": ["gen"]}]}`, "colour"},
			{`{"name": "bad", "checkpoints": {"interval": "soon"}, "nodes": [{"id": "gen", "source": "datagen"}, {"id": "out", "sink": "blackhole", "inputs": ["gen"]}]}`, "checkpoints.interval"},
			{`{"name": "bad", "nodes": [{"id": "gen", "source": "datagen", "speed": 1}, {"id": "out", "sink": "blackhole", "inputs": ["gen"]}]}`, "nodes[0] (gen).speed"},
			{`{"name": "bad", "nodes": [{"id": "gen", "source": "datagen"}, {"id": "out", "sink": "blackhole", "inputs": ["nowhere"]}]}`, "nodes[1] (out).inputs[0].from"},
		} {
			a := s.do(t, req{method: "POST", path: "/v1/jobs", token: tn.dev, ctype: "application/json", body: []byte(`{"spec": ` + c.spec + `}`)})
			wantField(t, a.problem(t, http.StatusBadRequest, "invalid-job-spec"), c.field)
		}
		// Not a spec at all.
		for _, body := range []string{"", "   \n", "- a\n- b\n", "name: [unclosed\n"} {
			s.do(t, req{method: "POST", path: "/v1/jobs", token: tn.dev, ctype: "application/yaml", body: []byte(body)}).problem(t, http.StatusBadRequest, "invalid-job-spec")
		}
		wantField(t, s.send(t, "POST", tn.dev, "/v1/jobs", map[string]any{"from_savepoint": ""}).problem(t, http.StatusBadRequest, "invalid-request"), "spec")
		wantField(t, s.send(t, "POST", tn.dev, "/v1/jobs", map[string]any{"spec": 42}).problem(t, http.StatusBadRequest, "invalid-request"), "spec")
	})

	t.Run("unknown and mistyped JSON fields", func(t *testing.T) {
		for _, c := range []struct {
			method, path, token string
			body                string
			field               string
		}{
			{"POST", "/v1/tenants", s.admin, `{"id": "bad-2", "colour": "red"}`, "colour"},
			{"POST", "/v1/tenants", s.admin, `{"id": "bad-2", "quotas": {"slotz": 1}}`, "quotas.slotz"},
			{"POST", "/v1/tenants", s.admin, `{"id": "bad-2", "quotas": {"call_timeout": "soon"}}`, "quotas.call_timeout"},
			{"POST", "/v1/tenants", s.admin, `{"id": "bad-2", "quotas": {"slots": -1}}`, "quotas.slots"},
			{"POST", "/v1/jobs/j-000000000000/upgrade", tn.dev, `{"modules": {"c": 1}}`, "modules.c"},
			{"POST", "/v1/tenants", s.admin, `{"id": 7}`, "id"},
			{"PUT", "/v1/tenants/bad/quotas", s.admin, `{"slots": 1, "colour": "red"}`, "colour"},
			{"PUT", "/v1/tenants/bad/quotas", s.admin, `{"slots": "many"}`, "slots"},
			{"PUT", "/v1/tenants/bad/quotas", s.admin, `{"slots": -1}`, "slots"},
			{"PUT", "/v1/tenants/bad/quotas", s.admin, `{"call_timeout": "soon"}`, "call_timeout"},
			{"PUT", "/v1/tenants/bad/quotas", s.admin, `{"memory_pages": 70000}`, "memory_pages"},
			{"POST", "/v1/tenants/bad/keys", s.admin, `{"name": "x", "role": "viewer", "scope": "all"}`, "scope"},
			{"POST", "/v1/keys", tn.owner, `{"name": "x", "role": "viewer", "expires": "never"}`, "expires"},
			{"POST", "/v1/jobs", tn.dev, `{"spec": "name: x", "savepoint": "sp-1"}`, "savepoint"},
			{"POST", "/v1/jobs/j-000000000000/savepoints", tn.dev, `{"request": "x"}`, "request"},
			{"POST", "/v1/jobs/j-000000000000/stop", tn.dev, `{"drain": true}`, "drain"},
			{"POST", "/v1/jobs/j-000000000000/upgrade", tn.dev, `{"modules": {"c": "counter@1"}, "force": true}`, "force"},
			{"POST", "/v1/jobs/j-000000000000/upgrade", tn.dev, `{"modules": "counter@1"}`, "modules"},
			{"POST", "/v1/jobs/j-000000000000/rescale", tn.dev, `{"parallelism": 2, "nodez": {}}`, "nodez"},
			{"POST", "/v1/jobs/j-000000000000/rescale", tn.dev, `{"parallelism": "two"}`, "parallelism"},
		} {
			a := s.do(t, req{method: c.method, path: c.path, token: c.token, ctype: "application/json", body: []byte(c.body)})
			wantField(t, a.problem(t, http.StatusBadRequest, "invalid-request"), c.field)
		}
		// Not JSON, or two values.
		for _, body := range []string{`{"id": `, `{"id": "x"} {"id": "y"}`, `[1]`} {
			s.do(t, req{method: "POST", path: "/v1/tenants", token: s.admin, ctype: "application/json", body: []byte(body)}).problem(t, http.StatusBadRequest, "invalid-request")
		}
		// A request id must be printable ASCII.
		for _, h := range []string{"has space", strings.Repeat("x", 201)} {
			a := s.send(t, "POST", tn.dev, "/v1/jobs/j-000000000000/savepoints", nil, "Idempotency-Key", h)
			wantField(t, a.problem(t, http.StatusBadRequest, "invalid-request"), "request_id")
		}
	})

	t.Run("empty bodies", func(t *testing.T) {
		for _, c := range []struct{ method, path, token string }{
			{"POST", "/v1/tenants", s.admin},
			{"PUT", "/v1/tenants/bad/quotas", s.admin},
			{"POST", "/v1/tenants/bad/keys", s.admin},
			{"POST", "/v1/keys", tn.owner},
			{"POST", "/v1/jobs", tn.dev},
		} {
			s.do(t, req{method: c.method, path: c.path, token: c.token, ctype: "application/json"}).problem(t, http.StatusBadRequest, "invalid-request")
		}
	})

	t.Run("oversized bodies", func(t *testing.T) {
		huge := []byte(`{"id": "` + strings.Repeat("x", 5<<20) + `"}`)
		s.do(t, req{method: "POST", path: "/v1/tenants", token: s.admin, ctype: "application/json", body: huge}).problem(t, http.StatusRequestEntityTooLarge, "payload-too-large")
		spec := []byte("name: " + strings.Repeat("x", 5<<20) + "\n")
		s.do(t, req{method: "POST", path: "/v1/jobs", token: tn.dev, ctype: "application/yaml", body: spec}).problem(t, http.StatusRequestEntityTooLarge, "payload-too-large")
	})

	t.Run("wrong content types", func(t *testing.T) {
		for _, c := range []struct{ method, path, token, ctype, body string }{
			{"POST", "/v1/tenants", s.admin, "text/plain", `{"id": "bad-2"}`},
			{"POST", "/v1/tenants", s.admin, "", `{"id": "bad-2"}`},
			{"PUT", "/v1/tenants/bad/quotas", s.admin, "application/x-www-form-urlencoded", "slots=1"},
			{"POST", "/v1/keys", tn.owner, "application/yaml", "name: x\nrole: viewer\n"},
			{"POST", "/v1/jobs", tn.dev, "text/plain", "name: x\n"},
			{"POST", "/v1/jobs", tn.dev, "application/wasm", "name: x\n"},
			{"POST", "/v1/jobs/j-000000000000/savepoints", tn.dev, "text/plain", "now"},
			{"POST", "/v1/jobs/j-000000000000/upgrade", tn.dev, "application/yaml", "modules: {c: counter@1}\n"},
		} {
			s.do(t, req{method: c.method, path: c.path, token: c.token, ctype: c.ctype, body: []byte(c.body)}).
				problem(t, http.StatusUnsupportedMediaType, "unsupported-media-type")
		}
	})

	t.Run("paging", func(t *testing.T) {
		for _, path := range []string{"/v1/modules", "/v1/jobs", "/v1/savepoints", "/v1/keys"} {
			for _, q := range []string{"page_size=0", "page_size=501", "page_size=ten", "page_size=-1", "page_size=1.5"} {
				wantField(t, s.get(t, tn.owner, path+"?"+q).problem(t, http.StatusBadRequest, "invalid-request"), "page_size")
			}
			for _, tok := range []string{"!!!", base64.RawURLEncoding.EncodeToString([]byte("x")), base64.RawURLEncoding.EncodeToString([]byte("o-5")), "o1"} {
				wantField(t, s.get(t, tn.owner, path+"?page_token="+tok).problem(t, http.StatusBadRequest, "invalid-request"), "page_token")
			}
		}
		wantField(t, s.get(t, s.admin, "/v1/tenants?page_size=0").problem(t, http.StatusBadRequest, "invalid-request"), "page_size")
		// Logs page by sequence number.
		logs := "/v1/jobs/j-000000000000/logs"
		wantField(t, s.get(t, tn.viewer, logs+"?page_size=0").problem(t, http.StatusBadRequest, "invalid-request"), "page_size")
		for _, tok := range []string{"abc", "-1", "1.5"} {
			wantField(t, s.get(t, tn.viewer, logs+"?page_token="+tok).problem(t, http.StatusBadRequest, "invalid-request"), "page_token")
		}
		// The largest page is fine.
		s.get(t, tn.owner, "/v1/modules?page_size=500").want(t, http.StatusOK)
	})

	t.Run("unknown routes and methods", func(t *testing.T) {
		// ("/" and other paths outside /v1 belong to the web console.)
		for _, p := range []string{"/v1/nope", "/nope", "/v1/jobs/x/y/z", "/v2/jobs", "/v1/modules/counter/versions/1/wasm/x", "/v1/n%20pe"} {
			s.get(t, tn.owner, p).problem(t, http.StatusNotFound, "not-found")
		}
		// instance is the path as requested, escapes and all.
		wantField(t, s.get(t, tn.owner, "/v1/modules/a%20b/versions/1").problem(t, http.StatusBadRequest, "invalid-request"), "name")
		s.get(t, tn.owner, "/v1/jobs/j%2F1").problem(t, http.StatusNotFound, "not-found")
		for _, c := range []struct{ method, path string }{
			{"PUT", "/v1/jobs"}, {"DELETE", "/v1/me"}, {"PATCH", "/v1/tenants"}, {"POST", "/v1/healthz"},
			{"PUT", "/v1/modules/counter/versions/1"}, {"GET", "/v1/jobs/j-000000000000/cancel"},
		} {
			a := s.do(t, req{method: c.method, path: c.path, token: tn.owner})
			a.problem(t, http.StatusMethodNotAllowed, "method-not-allowed")
			if a.Header.Get("Allow") == "" {
				t.Errorf("%v: no Allow header", a)
			}
		}
	})

	t.Run("tenants and keys", func(t *testing.T) {
		for _, id := range []string{"", "Bad", "bad!", "-bad", "_bad", "a/b", strings.Repeat("a", 64), "über"} {
			wantField(t, s.send(t, "POST", s.admin, "/v1/tenants", map[string]any{"id": id}).problem(t, http.StatusBadRequest, "invalid-request"), "id")
		}
		for _, role := range []string{"", "superuser", "Admin", "admin"} {
			wantField(t, s.send(t, "POST", s.admin, "/v1/tenants/bad/keys", map[string]any{"name": "x", "role": role}).problem(t, http.StatusBadRequest, "invalid-request"), "role")
			wantField(t, s.send(t, "POST", tn.owner, "/v1/keys", map[string]any{"name": "x", "role": role}).problem(t, http.StatusBadRequest, "invalid-request"), "role")
		}
		for _, exp := range []string{"2001-01-01T00:00:00Z", "tomorrow", "2030-01-01"} {
			wantField(t, s.send(t, "POST", tn.owner, "/v1/keys", map[string]any{"name": "x", "role": "viewer", "expires_at": exp}).problem(t, http.StatusBadRequest, "invalid-request"), "expires_at")
		}
		wantField(t, s.send(t, "POST", tn.owner, "/v1/keys", map[string]any{"name": strings.Repeat("n", 101), "role": "viewer"}).problem(t, http.StatusBadRequest, "invalid-request"), "name")
		s.send(t, "POST", s.admin, "/v1/tenants/nobody/keys", map[string]any{"name": "x", "role": "viewer"}).problem(t, http.StatusNotFound, "not-found")
		s.send(t, "PUT", s.admin, "/v1/tenants/nobody/quotas", map[string]any{}).problem(t, http.StatusNotFound, "not-found")
		s.del(t, s.admin, "/v1/tenants/nobody").problem(t, http.StatusNotFound, "not-found")
		s.del(t, tn.owner, "/v1/keys/nosuchkey").problem(t, http.StatusNotFound, "not-found")
	})

	t.Run("nothing stored, still serving", func(t *testing.T) {
		before.check(t, s, tn)
		var h map[string]string
		s.get(t, "", "/v1/healthz").ok(t, http.StatusOK, &h)
		s.get(t, s.admin, "/v1/tenants/bad-2").problem(t, http.StatusNotFound, "not-found")
		keys := list[map[string]any](t, s, tn.owner, "/v1/keys")
		if len(keys) != 3 {
			t.Fatalf("the tenant has %d keys, want its 3: %v", len(keys), keys)
		}
	})
}

package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weirstream/weir/connectors"
	"github.com/weirstream/weir/platform"
	"github.com/weirstream/weir/platform/client"
	"github.com/weirstream/weir/platform/client/clienttest"
	"github.com/weirstream/weir/platform/jobs"
	"github.com/weirstream/weir/tenants"
)

// The test modules, built once per test binary. Few, because every
// upload is compiled, which takes seconds under -race: wordcount's keyed
// "count" keeps the same state as counter's, so it is also the compatible
// upgrade of counter; counter-mapkind is the incompatible one.
var (
	modulesOnce sync.Once
	modules     map[string][]byte
	modulesErr  error
)

func module(t *testing.T, name string) []byte {
	t.Helper()
	modulesOnce.Do(func() {
		modules, modulesErr = clienttest.Modules(map[string]clienttest.Source{
			"wordcount":       {Pkg: "wordcount"},
			"counter-v1":      {Pkg: "testdata/counter"},
			"counter-mapkind": {Pkg: "testdata/counter", Tags: "mapkind"},
		})
	})
	if modulesErr != nil {
		t.Fatal(modulesErr)
	}
	return modules[name]
}

// timeout bounds every wait of the tests.
const timeout = 60 * time.Second

func newClient(srv *clienttest.Server, token string) *client.Client {
	c := client.New(srv.URL, token, nil)
	c.PollInterval = 20 * time.Millisecond
	return c
}

// waitJob polls a job until it is in one of states.
func waitJob(t *testing.T, c *client.Client, id string, states ...jobs.State) jobs.Detail {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		d, err := c.Job(ctx, id)
		if err != nil {
			t.Fatalf("waiting for job %s to be %v: %v", id, states, err)
		}
		for _, s := range states {
			if d.State == s {
				return d
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("job %s is %s (error %q) after %v, want %v", id, d.State, d.Error, timeout, states)
		case <-tick.C:
		}
	}
}

// waitRecords polls a job until the vertex holding node took n records in.
func waitRecords(t *testing.T, c *client.Client, id, node string, n int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		d, err := c.Job(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range d.Vertices {
			for _, nd := range v.Nodes {
				if nd == node && v.RecordsIn >= n {
					return
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("job %s: %d records did not reach %s in %v (state %s)", id, n, node, timeout, d.State)
		case <-tick.C:
		}
	}
}

func problem(t *testing.T, err error, code string, status int) *client.ProblemError {
	t.Helper()
	var pe *client.ProblemError
	if !errors.As(err, &pe) {
		t.Fatalf("got %v (%T), want a %d %s problem", err, err, status, code)
	}
	if pe.Code() != code || pe.Status != status {
		t.Fatalf("got problem %d %s (%v), want %d %s", pe.Status, pe.Code(), pe, status, code)
	}
	if pe.Title == "" || pe.Instance == "" {
		t.Fatalf("problem %v lacks title or instance: %+v", pe, pe.Problem)
	}
	return pe
}

// wordCounts counts the words of text as the wordcount module does for
// ASCII input: runs of letters and digits, lower-cased.
func wordCounts(text string) map[string]int {
	out := map[string]int{}
	for _, w := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
	}) {
		out[w]++
	}
	return out
}

// checkRunningCounts checks the wordcount job's output: for every word
// exactly the counts 1..n, where n is its number of occurrences.
func checkRunningCounts(t *testing.T, lines []string, want map[string]int) {
	t.Helper()
	got := map[string][]int{}
	for _, l := range lines {
		k, v, ok := strings.Cut(l, "\t")
		n, err := strconv.Atoi(v)
		if !ok || err != nil {
			t.Fatalf("output line %q is not word<TAB>count", l)
		}
		got[k] = append(got[k], n)
	}
	if len(got) != len(want) {
		t.Fatalf("output has %d words, want %d: %v", len(got), len(want), got)
	}
	for w, n := range want {
		cs := got[w]
		sort.Ints(cs)
		if len(cs) != n {
			t.Fatalf("word %q: counts %v, want 1..%d", w, cs, n)
		}
		for i, c := range cs {
			if c != i+1 {
				t.Fatalf("word %q: counts %v, want 1..%d", w, cs, n)
			}
		}
	}
}

const inputText = "The quick brown fox\njumps over the lazy dog\nthe dog sleeps, the fox runs 42 times\n"

// TestScenario drives every method of the client against a real server:
// an admin sets up a tenant and its keys, the owner uploads modules, runs
// a bounded job to its correct output and operates an unbounded one
// through savepoints, upgrades, rescales and stops, and everything is
// deleted again.
func TestScenario(t *testing.T) {
	srv := clienttest.Start(t, platform.Options{})
	ctx := context.Background()
	admin := newClient(srv, srv.AdminToken)

	// Public routes need no key.
	anon := newClient(srv, "")
	if err := anon.Health(ctx); err != nil {
		t.Fatal(err)
	}
	doc, err := anon.OpenAPI(ctx)
	if err != nil || !bytes.Contains(doc, []byte(`"/v1/jobs/{job}/upgrade"`)) {
		t.Fatalf("openapi: %v, %.200s", err, doc)
	}
	_, err = anon.Me(ctx)
	problem(t, err, "unauthenticated", 401)

	// Admin: tenants, quotas, keys.
	me, err := admin.Me(ctx)
	if err != nil || me.Role != tenants.RoleAdmin || me.Tenant != "" {
		t.Fatalf("admin me: %+v, %v", me, err)
	}
	tv, err := admin.CreateTenant(ctx, "acme", &tenants.Quotas{Slots: 6})
	if err != nil {
		t.Fatal(err)
	}
	if def := tenants.DefaultQuotas(); tv.Quotas.Slots != 6 || tv.Quotas.Modules != def.Modules {
		t.Fatalf("created tenant quotas %+v: want slots 6, the rest default", tv.Quotas)
	}
	_, err = admin.CreateTenant(ctx, "acme", nil)
	problem(t, err, "already-exists", 409)
	if _, err := admin.CreateTenant(ctx, "other", nil); err != nil {
		t.Fatal(err)
	}
	ts, err := admin.Tenants(ctx)
	if err != nil || len(ts) != 2 || ts[0].ID != "acme" && ts[1].ID != "acme" {
		t.Fatalf("tenants: %+v, %v", ts, err)
	}
	q := tv.Quotas
	q.Savepoints = 5
	if tv, err = admin.SetQuotas(ctx, "acme", q); err != nil || tv.Quotas.Savepoints != 5 || tv.Quotas.Slots != 6 {
		t.Fatalf("set quotas: %+v, %v", tv.Quotas, err)
	}
	q.Slots = -1
	_, err = admin.SetQuotas(ctx, "acme", q)
	if pe := problem(t, err, "invalid-request", 400); len(pe.Errors) != 1 || pe.Errors[0].Field != "slots" || !strings.Contains(pe.Error(), "400 invalid-request: slots: ") {
		t.Fatalf("bad quota: %v, errors %+v", pe, pe.Errors)
	}
	if tv, err = admin.Tenant(ctx, "acme"); err != nil || tv.Usage == nil {
		t.Fatalf("tenant: %+v, %v", tv, err)
	}
	created, err := admin.CreateKey(ctx, "acme", "ops", tenants.RoleOwner, nil)
	if err != nil || created.Key.Tenant != "acme" || !strings.HasPrefix(created.Token, "weir_") {
		t.Fatalf("create key: %+v, %v", created, err)
	}
	spare, err := admin.CreateKey(ctx, "acme", "spare", tenants.RoleViewer, nil)
	if err != nil {
		t.Fatal(err)
	}
	if keys, err := admin.Keys(ctx, "acme"); err != nil || len(keys) != 2 {
		t.Fatalf("keys of acme: %+v, %v", keys, err)
	}
	if err := admin.RevokeKey(ctx, "acme", spare.Key.ID); err != nil {
		t.Fatal(err)
	}
	_, err = newClient(srv, spare.Token).Me(ctx)
	problem(t, err, "key-revoked", 401)

	// The owner: its own keys and quotas.
	owner := newClient(srv, created.Token)
	if me, err := owner.Me(ctx); err != nil || me.Tenant != "acme" || me.Role != tenants.RoleOwner {
		t.Fatalf("owner me: %+v, %v", me, err)
	}
	if qu, err := owner.Quotas(ctx); err != nil || qu.Tenant != "acme" || qu.Quotas.Slots != 6 {
		t.Fatalf("owner quotas: %+v, %v", qu, err)
	}
	_, err = owner.Tenants(ctx)
	problem(t, err, "forbidden", 403)
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	viewer, err := owner.CreateKey(ctx, "", "dashboard", tenants.RoleViewer, &exp)
	if err != nil || viewer.Key.ExpiresAt == nil || !viewer.Key.ExpiresAt.Equal(exp) {
		t.Fatalf("owner's key: %+v, %v", viewer, err)
	}
	if keys, err := owner.Keys(ctx, ""); err != nil || len(keys) != 3 {
		t.Fatalf("owner's keys: %d, %v", len(keys), err)
	}
	viewerClient := newClient(srv, viewer.Token)
	if me, err := viewerClient.Me(ctx); err != nil || me.Role != tenants.RoleViewer || me.ExpiresAt == nil {
		t.Fatalf("viewer me: %+v, %v", me, err)
	}

	// Modules.
	wc := module(t, "wordcount")
	v, isNew, err := owner.UploadModule(ctx, "wordcount", wc)
	if err != nil || !isNew || v.Version != 1 || v.Size != int64(len(wc)) {
		t.Fatalf("upload: %+v, new %v, %v", v, isNew, err)
	}
	if again, isNew, err := owner.UploadModule(ctx, "wordcount", wc); err != nil || isNew || again.Digest != v.Digest {
		t.Fatalf("upload again: %+v, new %v, %v", again, isNew, err)
	}
	_, _, err = viewerClient.UploadModule(ctx, "wordcount", wc)
	problem(t, err, "forbidden", 403)
	_, _, err = owner.UploadModule(ctx, "junk", []byte("not wasm at all"))
	if pe := problem(t, err, "invalid-module", 400); pe.ModuleError == "" {
		t.Fatalf("invalid module problem without module_error: %+v", pe.Problem)
	}
	for i, name := range []string{"counter-v1", "counter-mapkind"} {
		if v, _, err := owner.UploadModule(ctx, "counter", module(t, name)); err != nil || v.Version != i+1 {
			t.Fatalf("upload %s: %+v, %v", name, v, err)
		}
	}
	names, err := owner.Modules(ctx)
	if err != nil || len(names) != 2 {
		t.Fatalf("modules: %+v, %v", names, err)
	}
	if m, err := owner.Module(ctx, "counter"); err != nil || len(m.Versions) != 2 {
		t.Fatalf("module counter: %+v, %v", m, err)
	}
	if lv, err := owner.ModuleVersion(ctx, "counter", "latest"); err != nil || lv.Version != 2 {
		t.Fatalf("counter@latest: %+v, %v", lv, err)
	}
	if b, err := owner.ModuleWasm(ctx, "wordcount", v.Digest); err != nil || !bytes.Equal(b, wc) {
		t.Fatalf("download: %d bytes, %v", len(b), err)
	}
	_, err = owner.ModuleVersion(ctx, "nope", "1")
	problem(t, err, "not-found", 404)

	// An invalid spec: every field error is decoded and in the one-liner.
	_, err = owner.Deploy(ctx, []byte(`
name: bad
modules: {wc: wordcount@9}
nodes:
  - {id: lines, source: file, config: {path: in/input.txt}}
  - {id: out, sink: file, config: {path: out}, inputs: [{from: lines, partition: hash}]}
checkpoints: {storage: /tmp/x}
`), "", false)
	pe := problem(t, err, "invalid-job-spec", 400)
	if len(pe.Errors) < 2 {
		t.Fatalf("spec problem with %d field errors, want every one: %+v", len(pe.Errors), pe.Errors)
	}
	for _, f := range pe.Errors {
		if f.Field == "" || !strings.Contains(pe.Error(), f.Field+": "+f.Problem) {
			t.Fatalf("one-liner %q lacks field error %+v", pe.Error(), f)
		}
	}

	// A bounded job, to its correct output.
	srv.WriteFile(t, "acme", "in/input.txt", inputText)
	job, err := owner.Deploy(ctx, []byte(clienttest.WordcountSpec), "", false)
	if err != nil {
		t.Fatal(err)
	}
	if job.Modules["wc"] != "wordcount@1" {
		t.Fatalf("deployed job modules %v", job.Modules)
	}
	d := waitJob(t, owner, job.ID, jobs.StateFinished)
	if len(d.Graph) != 4 || d.Graph[2].ID != "count" || d.Graph[2].Parallelism != 2 {
		t.Fatalf("graph %+v", d.Graph)
	}
	lines, err := connectors.ReadCommitted(filepath.Join(srv.FilesDir("acme"), "out"))
	if err != nil {
		t.Fatal(err)
	}
	checkRunningCounts(t, lines, wordCounts(inputText))
	if js, err := viewerClient.Jobs(ctx); err != nil || len(js) != 1 || js[0].ID != job.ID {
		t.Fatalf("jobs: %+v, %v", js, err)
	}
	logs, next, err := owner.Logs(ctx, job.ID, 0, 1)
	if err != nil || len(logs) != 1 || next == 0 {
		t.Fatalf("first log page of 1: %+v, next %d, %v", logs, next, err)
	}
	rest, next2, err := owner.Logs(ctx, job.ID, next, 0)
	if err != nil || len(rest) == 0 || next2 != 0 || rest[0].Seq <= logs[0].Seq {
		t.Fatalf("rest of the log after %d: %+v, next %d, %v", next, rest, next2, err)
	}
	if ex, err := owner.Exceptions(ctx, job.ID); err != nil || len(ex) != 0 {
		t.Fatalf("exceptions of a clean job: %+v, %v", ex, err)
	}
	if _, err := owner.Checkpoints(ctx, job.ID); err != nil {
		t.Fatal(err)
	}
	_, err = owner.Cancel(ctx, job.ID)
	problem(t, err, "conflict", 409)
	if err := owner.DeleteJob(ctx, job.ID); err != nil {
		t.Fatal(err)
	}
	_, err = owner.Job(ctx, job.ID)
	problem(t, err, "not-found", 404)

	// An unbounded job through savepoint, upgrade, a failed upgrade, rescale
	// and stop.
	job, err = owner.Deploy(ctx, []byte(clienttest.CounterSpec), "", false)
	if err != nil {
		t.Fatal(err)
	}
	waitRecords(t, owner, job.ID, "count", 50)
	op, err := owner.Savepoint(ctx, job.ID, "sp-1")
	if err != nil {
		t.Fatal(err)
	}
	if same, err := owner.Savepoint(ctx, job.ID, "sp-1"); err != nil || same.ID != op.ID {
		t.Fatalf("retried savepoint request: %+v, %v; want operation %s", same, err, op.ID)
	}
	_, err = owner.Stop(ctx, job.ID, "sp-1")
	problem(t, err, "request-id-reused", 409)
	op, err = owner.WaitOperation(ctx, op.ID)
	if err != nil || !op.Done || op.Kind != jobs.OpSavepoint {
		t.Fatalf("savepoint operation: %+v, %v", op, err)
	}
	var sp jobs.Savepoint
	if err := json.Unmarshal(op.Result, &sp); err != nil || sp.ID == "" || sp.Job != job.ID {
		t.Fatalf("savepoint result %s: %v", op.Result, err)
	}
	if got, err := owner.GetSavepoint(ctx, sp.ID); err != nil || got.ID != sp.ID || got.Dir != sp.Dir {
		t.Fatalf("get savepoint: %+v, %v", got, err)
	}
	for _, of := range []string{"", job.ID} {
		if sps, err := owner.Savepoints(ctx, of); err != nil || len(sps) != 1 || sps[0].ID != sp.ID {
			t.Fatalf("savepoints of %q: %+v, %v", of, sps, err)
		}
	}

	op, err = owner.Upgrade(ctx, job.ID, "", jobs.UpgradeRequest{Modules: map[string]string{"counter": "wordcount@1"}})
	if err != nil {
		t.Fatal(err)
	}
	if op, err = owner.WaitOperation(ctx, op.ID); err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	d = waitJob(t, owner, job.ID, jobs.StateRunning)
	if d.Modules["counter"] != "wordcount@1" || d.Generation < 2 {
		t.Fatalf("after the upgrade: modules %v, generation %d", d.Modules, d.Generation)
	}
	// counter@2 keeps its state as a map: it cannot start from the
	// savepoint and the job goes back to wordcount@1.
	op, err = owner.Upgrade(ctx, job.ID, "", jobs.UpgradeRequest{Modules: map[string]string{"counter": "counter@2"}})
	if err != nil {
		t.Fatal(err)
	}
	op, err = owner.WaitOperation(ctx, op.ID)
	var oe *client.OperationError
	if !errors.As(err, &oe) || !op.RolledBack || op.Error == "" || !strings.Contains(err.Error(), "rolled back") {
		t.Fatalf("incompatible upgrade: %+v, %v; want a rolled-back OperationError", op, err)
	}
	d = waitJob(t, owner, job.ID, jobs.StateRunning)
	if d.Modules["counter"] != "wordcount@1" {
		t.Fatalf("after the rollback: modules %v", d.Modules)
	}

	op, err = owner.Rescale(ctx, job.ID, "", jobs.RescaleRequest{Parallelism: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err = owner.WaitOperation(ctx, op.ID); err != nil {
		t.Fatalf("rescale: %v", err)
	}
	d = waitJob(t, owner, job.ID, jobs.StateRunning)
	if d.Slots != 2 || d.Graph[1].Parallelism != 2 {
		t.Fatalf("after the rescale: slots %d, graph %+v", d.Slots, d.Graph)
	}
	if h, err := owner.Checkpoints(ctx, job.ID); err != nil {
		t.Fatal(err)
	} else {
		for _, s := range h {
			if s.Status == "" || s.TriggeredAt.IsZero() {
				t.Fatalf("checkpoint stats without status or time: %+v", s)
			}
		}
	}
	if got, err := owner.Operation(ctx, op.ID); err != nil || got.ID != op.ID || !got.Done {
		t.Fatalf("operation: %+v, %v", got, err)
	}
	_, err = owner.Operation(ctx, "op-nope")
	problem(t, err, "not-found", 404)
	// Another tenant sees none of it.
	otherKey, err := admin.CreateKey(ctx, "other", "o", tenants.RoleOwner, nil)
	if err != nil {
		t.Fatal(err)
	}
	other := newClient(srv, otherKey.Token)
	_, err = other.Operation(ctx, op.ID)
	problem(t, err, "not-found", 404)
	if js, err := other.Jobs(ctx); err != nil || len(js) != 0 {
		t.Fatalf("other tenant's jobs: %+v, %v", js, err)
	}

	op, err = owner.Stop(ctx, job.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if op, err = owner.WaitOperation(ctx, op.ID); err != nil {
		t.Fatalf("stop: %v", err)
	}
	var stopSP jobs.Savepoint
	if err := json.Unmarshal(op.Result, &stopSP); err != nil || stopSP.ID == "" {
		t.Fatalf("stop result %s: %v", op.Result, err)
	}
	d = waitJob(t, owner, job.ID, jobs.StateStopped)
	if d.StoppedWith != stopSP.ID {
		t.Fatalf("stopped job names savepoint %q, want %q", d.StoppedWith, stopSP.ID)
	}

	// Start again from the stop's savepoint, then cancel.
	resumed, err := owner.Deploy(ctx, []byte(clienttest.CounterSpec), stopSP.ID, false)
	if err != nil || resumed.Savepoint != stopSP.ID {
		t.Fatalf("deploy from savepoint: %+v, %v", resumed, err)
	}
	waitJob(t, owner, resumed.ID, jobs.StateRunning)
	err = owner.DeleteModuleVersion(ctx, "counter", "1")
	problem(t, err, "module-in-use", 409)
	if j, err := owner.Cancel(ctx, resumed.ID); err != nil || j.State != jobs.StateCanceled {
		t.Fatalf("cancel: %+v, %v", j, err)
	}

	// Deletes.
	if err := owner.DeleteSavepoint(ctx, sp.ID); err != nil {
		t.Fatal(err)
	}
	_, err = owner.GetSavepoint(ctx, sp.ID)
	problem(t, err, "not-found", 404)
	if err := owner.DeleteModuleVersion(ctx, "counter", "1"); err != nil {
		t.Fatal(err)
	}
	if err := owner.DeleteModule(ctx, "wordcount"); err != nil {
		t.Fatal(err)
	}
	if names, err := owner.Modules(ctx); err != nil || len(names) != 1 || names[0].Versions != 1 {
		t.Fatalf("modules after deletes: %+v, %v", names, err)
	}
	if err := owner.RevokeKey(ctx, "", viewer.Key.ID); err != nil {
		t.Fatal(err)
	}
	if err := admin.DeleteTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	_, err = owner.Me(ctx)
	problem(t, err, "unauthenticated", 401)
	_, err = admin.Tenant(ctx, "acme")
	problem(t, err, "not-found", 404)
}

// TestRateLimitRetry: a 429 is retried after its Retry-After; without
// retries the problem names the quota and the delay.
func TestRateLimitRetry(t *testing.T) {
	srv := clienttest.Start(t, platform.Options{})
	ctx := context.Background()
	admin := newClient(srv, srv.AdminToken)
	if _, err := admin.CreateTenant(ctx, "slow", &tenants.Quotas{RequestsPerSecond: 5, RequestBurst: 1}); err != nil {
		t.Fatal(err)
	}
	k, err := admin.CreateKey(ctx, "slow", "k", tenants.RoleViewer, nil)
	if err != nil {
		t.Fatal(err)
	}
	impatient := newClient(srv, k.Token)
	impatient.MaxRetries = -1
	var pe *client.ProblemError
	for i := 0; i < 5 && pe == nil; i++ {
		_, err := impatient.Me(ctx)
		errors.As(err, &pe)
	}
	if pe == nil || pe.Code() != "rate-limited" || pe.Status != 429 || pe.RetryAfter <= 0 || pe.Quota != "requests_per_second" {
		t.Fatalf("5 requests at once over a burst of 1: %+v, want a 429 with Retry-After", pe)
	}
	patient := newClient(srv, k.Token)
	for i := 0; i < 3; i++ {
		if _, err := patient.Me(ctx); err != nil {
			t.Fatalf("request %d with retries: %v", i, err)
		}
	}
}

// TestProblemError checks the one-liner and the decoding of problem
// documents and of answers that are none.
func TestProblemError(t *testing.T) {
	limit, used := int64(8), int64(8)
	cases := []struct {
		name        string
		status      int
		contentType string
		body        string
		want        string
		check       func(*client.ProblemError) bool
	}{
		{"field errors replace the detail", 400, "application/problem+json",
			`{"type":"urn:weir:problem:invalid-job-spec","title":"The job spec is invalid","status":400,"detail":"invalid job spec: 2 problems",
			  "errors":[{"field":"nodes[1].inputs[0].partition","problem":"unknown partitioning \"hash\""},{"field":"name","problem":"required"}]}`,
			`400 invalid-job-spec: nodes[1].inputs[0].partition: unknown partitioning "hash"; name: required`,
			func(pe *client.ProblemError) bool { return len(pe.Errors) == 2 && pe.Errors[1].Field == "name" }},
		{"detail", 404, "application/problem+json",
			`{"type":"urn:weir:problem:not-found","title":"Not found","status":404,"detail":"job \"j-1\": job not found","instance":"/v1/jobs/j-1"}`,
			`404 not-found: job "j-1": job not found`,
			func(pe *client.ProblemError) bool { return pe.Instance == "/v1/jobs/j-1" }},
		{"quota named when the detail does not", 403, "application/problem+json",
			fmt.Sprintf(`{"type":"urn:weir:problem:quota-exceeded","title":"A quota","status":403,"detail":"too many","quota":"slots","limit":%d,"used":%d}`, limit, used),
			`403 quota-exceeded: too many (quota slots)`,
			func(pe *client.ProblemError) bool { return pe.Quota == "slots" && *pe.Limit == 8 && *pe.Used == 8 }},
		{"not a problem document", 502, "text/html", "<html>\n  bad   gateway\n</html>",
			`502 bad gateway: <html> bad gateway </html>`,
			func(pe *client.ProblemError) bool { return pe.Code() == "" && pe.Title == "Bad Gateway" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.contentType)
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			_, err := client.New(srv.URL, "t", nil).Job(context.Background(), "j-1")
			var pe *client.ProblemError
			if !errors.As(err, &pe) {
				t.Fatalf("got %v (%T), want a *ProblemError", err, err)
			}
			if pe.Error() != tc.want {
				t.Fatalf("Error() = %q\nwant      %q", pe.Error(), tc.want)
			}
			if pe.Status != tc.status || !tc.check(pe) {
				t.Fatalf("decoded %+v", pe.Problem)
			}
		})
	}
}

// TestRetryOnlyWhatIsSafe: a dropped connection is retried for a GET and
// for an operation with a request id, never for a deploy.
func TestRetryOnlyWhatIsSafe(t *testing.T) {
	cases := []struct {
		name     string
		call     func(*client.Client) error
		attempts int32
	}{
		{"get", func(c *client.Client) error { _, err := c.Job(context.Background(), "j"); return err }, 2},
		{"operation with request id", func(c *client.Client) error {
			_, err := c.Savepoint(context.Background(), "j", "rid")
			return err
		}, 2},
		{"operation without request id", func(c *client.Client) error {
			_, err := c.Savepoint(context.Background(), "j", "")
			return err
		}, 1},
		{"deploy", func(c *client.Client) error {
			_, err := c.Deploy(context.Background(), []byte("name: x"), "", false)
			return err
		}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if n.Add(1) == 1 {
					conn, _, err := w.(http.Hijacker).Hijack()
					if err == nil {
						conn.Close() // the connection drops without an answer
					}
					return
				}
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte(`{"id":"x"}`))
			}))
			defer srv.Close()
			c := client.New(srv.URL, "t", nil)
			err := tc.call(c)
			if got := n.Load(); got != tc.attempts {
				t.Fatalf("%d attempts (err %v), want %d", got, err, tc.attempts)
			}
			if (tc.attempts == 2) != (err == nil) {
				t.Fatalf("err = %v after %d attempts", err, tc.attempts)
			}
		})
	}
}

// TestWaitOperationBounded: WaitOperation ends with the context, naming the
// operation as still pending.
func TestWaitOperationBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(jobs.Operation{ID: "op-1", Kind: "savepoint", Job: "j"})
	}))
	defer srv.Close()
	c := client.New(srv.URL, "t", nil)
	c.PollInterval = 5 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	op, err := c.WaitOperation(ctx, "op-1")
	if !errors.Is(err, client.ErrOperationPending) || !errors.Is(err, context.DeadlineExceeded) || op.ID != "op-1" {
		t.Fatalf("got %+v, %v; want the pending operation and ErrOperationPending", op, err)
	}
}

// BenchmarkGetJob measures one authenticated GET of a job's detail
// through the client against a real server on 127.0.0.1 (client, HTTP and
// server together), sequentially.
func BenchmarkGetJob(b *testing.B) {
	srv := clienttest.Start(b, platform.Options{})
	ctx := context.Background()
	admin := client.New(srv.URL, srv.AdminToken, nil)
	if _, err := admin.CreateTenant(ctx, "bench", &tenants.Quotas{RequestsPerSecond: 1e6, RequestBurst: 1e6}); err != nil {
		b.Fatal(err)
	}
	k, err := admin.CreateKey(ctx, "bench", "b", tenants.RoleOwner, nil)
	if err != nil {
		b.Fatal(err)
	}
	c := client.New(srv.URL, k.Token, nil)
	if _, _, err := c.UploadModule(ctx, "counter", benchModule(b)); err != nil {
		b.Fatal(err)
	}
	job, err := c.Deploy(ctx, []byte(clienttest.CounterSpec), "", false)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Job(ctx, job.ID); err != nil {
			b.Fatal(err)
		}
	}
}

func benchModule(b *testing.B) []byte {
	b.Helper()
	mods, err := clienttest.Modules(map[string]clienttest.Source{"counter": {Pkg: "testdata/counter"}})
	if err != nil {
		b.Fatal(err)
	}
	return mods["counter"]
}

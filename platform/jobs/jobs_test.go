package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weirstream/weir/checkpoint"
	"github.com/weirstream/weir/runtime"
	"github.com/weirstream/weir/tenants"
)

// countingSpec is an unbounded job: datagen (one subtask, keys "0".."4" in
// turn, rate records per second) into the counter module (alias c, module
// reference ref) into a file sink at out; extra is appended (YAML).
func countingSpec(ref, out string, rate int, extra string) string {
	return fmt.Sprintf(`
name: counting
modules: {c: %s}
nodes:
  - {id: gen, source: datagen, parallelism: 1, config: {rate: %d, key: {kind: sequence, end: 4}}}
  - {id: count, module: c, operator: count, inputs: [gen]}
  - {id: out, sink: file, config: {path: %s}, inputs: [count]}
%s`, ref, rate, out, extra)
}

const countingKeys = 5

func TestBoundedJobFinishesWithItsOutput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	v1 := e.upload("acme", "counter", "counter-v1")
	const n, keys = 1000, 7
	j := e.deploy("acme", fmt.Sprintf(`
name: bounded
parallelism: 2
modules: {c: counter}
nodes:
  - {id: gen, source: datagen, parallelism: 1, config: {count: %d, key: {kind: sequence, end: %d}}}
  - {id: count, module: c, operator: count, inputs: [gen]}
  - {id: out, sink: file, config: {path: out/counts}, inputs: [count]}
`, n, keys-1))
	if j.State != StateRunning || j.Name != "bounded" || j.Slots != 2 || j.Generation != 1 || j.Modules["c"] != "counter@1" {
		t.Fatalf("deployed job = %+v", j)
	}
	d := e.waitState("acme", j.ID, StateFinished)
	if d.FinishedAt == nil || d.Error != "" {
		t.Fatalf("finished job = %+v", d.Job)
	}

	// The expected output, computed independently: record i has key i%7
	// and the counter emits the key's running count.
	seen := map[int]int{}
	var want []string
	for i := range n {
		seen[i%keys]++
		want = append(want, fmt.Sprintf("%d=%d", i%keys, seen[i%keys]))
	}
	sort.Strings(want)
	got := e.committed("acme", "out/counts")
	sort.Strings(got)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("output: %d lines, want %d; first %q", len(got), len(want), got[:min(5, len(got))])
	}

	// The detail: the pinned spec, the graph, no host paths.
	var spec runtime.JobSpec
	if err := json.Unmarshal(d.Spec, &spec); err != nil {
		t.Fatal(err)
	}
	if spec.Modules["c"].Ref != "counter@1" || spec.State.Dir != "" || spec.Checkpoints.Storage != "" {
		t.Fatalf("stored spec: modules %v, state %+v, checkpoints %+v", spec.Modules, spec.State, spec.Checkpoints)
	}
	q := tenants.DefaultQuotas()
	if spec.Limits.MemoryPages != q.MemoryPages || time.Duration(spec.Limits.CallTimeout) != time.Duration(q.CallTimeout) || spec.Checkpoints.Retain != 3 {
		t.Fatalf("the quotas' limits were not applied: %+v, retain %d", spec.Limits, spec.Checkpoints.Retain)
	}
	if len(d.Graph) != 3 || d.Graph[1].ID != "count" || d.Graph[1].Kind != "operator" || d.Graph[1].Parallelism != 2 ||
		d.Graph[0].Connector != "datagen" || d.Graph[0].Parallelism != 1 || d.Graph[2].Inputs[0].From != "count" {
		t.Fatalf("graph = %+v", d.Graph)
	}
	if l := e.m.List("acme"); len(l) != 1 || l[0].ID != j.ID || l[0].State != StateFinished {
		t.Fatalf("list = %+v", l)
	}
	if slots, running, _ := e.m.Usage("acme"); slots != 0 || running != 0 {
		t.Fatalf("a finished job holds %d slots, %d running", slots, running)
	}
	if e.m.ModuleInUse("acme", v1.Digest) || e.m.Running("acme") {
		t.Fatal("a finished job still uses its module")
	}
	if _, err := e.m.Cancel("acme", j.ID); !errors.Is(err, ErrConflict) {
		t.Fatalf("cancel of a finished job: %v, want ErrConflict", err)
	}
	if _, err := e.m.TriggerSavepoint("acme", j.ID, ""); !errors.Is(err, ErrConflict) {
		t.Fatalf("savepoint of a finished job: %v, want ErrConflict", err)
	}
}

func TestDeploySpecErrorsNameTheField(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.upload("acme", "counter", "counter-v1")
	e.upload("other", "theirs", "counter-v1")
	base := func(mod, count, out, extra string) string {
		return fmt.Sprintf(`
name: bad
modules: {c: %s}
nodes:
  - {id: gen, source: datagen, config: {count: 10}}
  - %s
  - %s
%s`, mod, count, out, extra)
	}
	count := "{id: count, module: c, operator: count, inputs: [gen]}"
	out := "{id: out, sink: blackhole, inputs: [count]}"
	cases := []struct {
		name, spec string
		field      string // a SpecError's field starts with it
		problem    string // and its problem contains this
	}{
		{"checkpoint storage", base("counter@1", count, out, "checkpoints: {storage: /tmp/elsewhere}"), "checkpoints.storage", "platform"},
		{"state dir", base("counter@1", count, out, "state: {dir: /tmp/state}"), "state.dir", "platform"},
		{"module path", base("{path: /tmp/counter.wasm}", count, out, ""), "modules.c.path", "reference"},
		{"unknown module", base("nosuch@1", count, out, ""), "modules.c.ref", "nosuch"},
		{"unknown version", base("counter@9", count, out, ""), "modules.c.ref", "counter@9"},
		{"another tenant's module", base("theirs", count, out, ""), "modules.c.ref", "theirs"},
		{"bad ref", base("'counter@@x'", count, out, ""), "modules.c.ref", ""},
		{"bad partition", base("counter@1", "{id: count, module: c, operator: count, inputs: [{from: gen, partition: sideways}]}", out, ""),
			"nodes[1] (count).inputs[0].partition", "sideways"},
		{"keyed operator fed by forward", base("counter@1", "{id: count, module: c, operator: count, inputs: [{from: gen, partition: forward}]}", out, ""),
			"nodes[1] (count).inputs[0].partition", "keyed"},
		{"unknown operator", base("counter@1", "{id: count, module: c, operator: nope, inputs: [gen]}", out, ""), "nodes[1] (count).operator", "nope"},
		{"unknown sink", base("counter@1", count, "{id: out, sink: pulsar, inputs: [count]}", ""), "nodes[2] (out).sink", "pulsar"},
		{"bad source config", base("counter@1", count, out, "") + "\n", "", ""}, // replaced below
		{"unknown field", "name: x\nnodez: []\n", "", "nodez"},
		{"empty spec", "", "", "empty"},
		// The manager allows no Kafka broker (Config.KafkaBrokers is empty).
		{"kafka not enabled", base("counter@1", count, "{id: out, sink: kafka, config: {brokers: ['127.0.0.1:9092'], topic: t}, inputs: [count]}", ""),
			"nodes[2] (out)", "config.brokers: the kafka connectors are not enabled here"},
	}
	cases[11].spec = strings.Replace(cases[11].spec, "{count: 10}", "{count: ten}", 1)
	cases[11].field, cases[11].problem = "nodes[0] (gen)", "config.count"
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.m.Deploy("acme", DeployRequest{Spec: []byte(c.spec)})
			var errs runtime.SpecErrors
			if !errors.As(err, &errs) {
				t.Fatalf("error %v (%T) is not runtime.SpecErrors", err, err)
			}
			for _, se := range errs {
				if strings.HasPrefix(se.Field, c.field) && strings.Contains(se.Problem, c.problem) {
					return
				}
			}
			t.Fatalf("no error names %q with %q: %v", c.field, c.problem, err)
		})
	}
	// Every field of a spec is reported at once.
	_, err := e.m.Deploy("acme", DeployRequest{Spec: []byte(base("{path: x.wasm}", count, out, "checkpoints: {storage: s3://b}\nstate: {dir: d}"))})
	var errs runtime.SpecErrors
	if !errors.As(err, &errs) || len(errs) != 3 {
		t.Fatalf("three bad fields: %v", err)
	}
	if l := e.m.List("acme"); len(l) != 0 {
		t.Fatalf("refused deploys left jobs: %+v", l)
	}
	if keys := e.metaKeys(recordsPrefix); len(keys) != 0 {
		t.Fatalf("refused deploys left records: %v", keys)
	}
	if slots, _, _ := e.m.Usage("acme"); slots != 0 {
		t.Fatalf("refused deploys hold %d slots", slots)
	}
}

func TestFileConnectorsStayInTheTenantArea(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.upload("acme", "counter", "counter-v1")
	for _, p := range []string{"../other/out", "/tmp/out", "a/../../b", ".."} {
		t.Run(p, func(t *testing.T) {
			spec := fmt.Sprintf(`
name: escape
modules: {c: counter@1}
nodes:
  - {id: gen, source: datagen, config: {count: 10}}
  - {id: count, module: c, operator: count, inputs: [gen]}
  - {id: out, sink: file, config: {path: %q}, inputs: [count]}
`, p)
			_, err := e.m.Deploy("acme", DeployRequest{Spec: []byte(spec)})
			var errs runtime.SpecErrors
			if !errors.As(err, &errs) || !strings.Contains(err.Error(), "tenant's file area") || !strings.Contains(err.Error(), "nodes[2] (out)") {
				t.Fatalf("file sink at %q: %v", p, err)
			}
			spec = `
name: escape
nodes:
  - {id: in, source: file, config: {path: "` + p + `/x.txt"}}
  - {id: out, sink: blackhole, inputs: [in]}
`
			if _, err = e.m.Deploy("acme", DeployRequest{Spec: []byte(spec)}); !errors.As(err, &errs) || !strings.Contains(err.Error(), "nodes[0] (in)") {
				t.Fatalf("file source at %q: %v", p, err)
			}
		})
	}
	if l := e.m.List("acme"); len(l) != 0 {
		t.Fatalf("refused deploys left jobs: %+v", l)
	}
}

func TestDeployQuotas(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.Slots = 5 })
	e.upload("acme", "counter", "counter-v1")
	e.upload("beta", "counter", "counter-v1")
	unbounded := func(extra string) string { return countingSpec("counter@1", "out", 50, extra) }
	cases := []struct {
		name, extra, quota string
	}{
		{"memory pages", "limits: {memoryPages: 2000}", tenants.QuotaMemoryPages},
		{"call timeout", "limits: {callTimeout: 1m}", tenants.QuotaCallTimeout},
		{"retained checkpoints", "checkpoints: {retain: 9}", tenants.QuotaRetainedCheckpoints},
		{"slots of the tenant", "parallelism: 9", tenants.QuotaSlots},
	}
	for _, c := range cases {
		_, err := e.m.Deploy("acme", DeployRequest{Spec: []byte(unbounded(c.extra))})
		if !isQuota(err, c.quota) {
			t.Fatalf("%s: %v, want a quota error naming %s", c.name, err, c.quota)
		}
	}
	// At the quota is fine.
	j := e.deploy("acme", unbounded("limits: {memoryPages: 1024, callTimeout: 5s}\ncheckpoints: {retain: 5}"))
	if _, err := e.m.Cancel("acme", j.ID); err != nil {
		t.Fatal(err)
	}

	// Slots already held count: 3 of acme's 4.
	e.setQuotas("acme", func(q *tenants.Quotas) { q.Slots = 4 })
	first := e.deploy("acme", unbounded("parallelism: 3"))
	_, err := e.m.Deploy("acme", DeployRequest{Spec: []byte(unbounded("parallelism: 2"))})
	var qe *tenants.QuotaError
	if !errors.As(err, &qe) || qe.Quota != tenants.QuotaSlots || qe.Used != 3 || qe.Limit != 4 || qe.Requested != 2 {
		t.Fatalf("second job over the slot quota: %v", err)
	}
	// The process has 5 slots: beta gets 2, not 3.
	_, err = e.m.Deploy("beta", DeployRequest{Spec: []byte(unbounded("parallelism: 3"))})
	var ce *CapacityError
	if !errors.As(err, &ce) || ce.Needed != 3 || ce.Free != 2 {
		t.Fatalf("over the process's slots: %v, want CapacityError{3, 2}", err)
	}
	second := e.deploy("beta", unbounded("parallelism: 2"))
	if slots, running, _ := e.m.Usage("beta"); slots != 2 || running != 1 {
		t.Fatalf("beta usage: %d slots, %d running", slots, running)
	}
	if n := len(e.m.List("acme")); n != 2 {
		t.Fatalf("acme has %d jobs, want 2 (the refused ones are not stored)", n)
	}
	// Cancelling frees the slots at once.
	if c, err := e.m.Cancel("acme", first.ID); err != nil || c.State != StateCanceled {
		t.Fatalf("cancel: %+v, %v", c, err)
	}
	third := e.deploy("acme", unbounded("parallelism: 3"))
	for _, j := range []struct{ tenant, id string }{{"acme", third.ID}, {"beta", second.ID}} {
		if _, err := e.m.Cancel(j.tenant, j.id); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCancelEndsTheJobAndFreesItsSlots(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	v1 := e.upload("acme", "counter", "counter-v1")
	j := e.deploy("acme", countingSpec("counter@1", "out", 500, "parallelism: 2"))
	e.waitRecords("acme", j.ID, 50)
	if !e.m.ModuleInUse("acme", v1.Digest) || !e.m.Running("acme") {
		t.Fatal("a running job does not use its module")
	}
	if slots, running, _ := e.m.Usage("acme"); slots != 2 || running != 1 {
		t.Fatalf("usage while running: %d slots, %d jobs", slots, running)
	}
	c, err := e.m.Cancel("acme", j.ID)
	if err != nil || c.State != StateCanceled || c.FinishedAt == nil {
		t.Fatalf("cancel returned %+v, %v; want the job canceled", c, err)
	}
	if slots, running, _ := e.m.Usage("acme"); slots != 0 || running != 0 {
		t.Fatalf("usage after cancel: %d slots, %d jobs", slots, running)
	}
	if e.m.ModuleInUse("acme", v1.Digest) {
		t.Fatal("a canceled job still uses its module")
	}
	if _, err := e.m.Cancel("acme", j.ID); !errors.Is(err, ErrConflict) {
		t.Fatalf("second cancel: %v, want ErrConflict", err)
	}
	// The record says so too, durably.
	v, ok, err := e.meta.Get(recordKey("acme", j.ID))
	var rec record
	if err != nil || !ok || json.Unmarshal(v, &rec) != nil || rec.State != StateCanceled {
		t.Fatalf("stored record: %s, %v, %v", v, ok, err)
	}
}

func TestSavepointsStopAndRequestIDs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.upload("acme", "counter", "counter-v1")
	j := e.deploy("acme", countingSpec("counter@1", "out", 500, ""))
	e.waitRecords("acme", j.ID, 100)

	op, err := e.m.TriggerSavepoint("acme", j.ID, "req-1")
	if err != nil || op.Kind != OpSavepoint || op.Job != j.ID || op.RequestID != "req-1" {
		t.Fatalf("savepoint: %+v, %v", op, err)
	}
	again, err := e.m.TriggerSavepoint("acme", j.ID, "req-1")
	if err != nil || again.ID != op.ID {
		t.Fatalf("a retry with the same request id started %+v (%v), want operation %s", again, err, op.ID)
	}
	op = e.waitOp("acme", op.ID)
	if op.Error != "" {
		t.Fatalf("savepoint failed: %s", op.Error)
	}
	var sp Savepoint
	if err := json.Unmarshal(op.Result, &sp); err != nil || sp.ID == "" || sp.Job != j.ID || sp.Size <= 0 {
		t.Fatalf("savepoint result %s: %v", op.Result, err)
	}
	if _, err := e.store.Stat(context.Background(), path.Join(sp.Dir, checkpoint.MetadataName)); err != nil {
		t.Fatalf("the savepoint's metadata is not in storage: %v", err)
	}
	if !strings.HasPrefix(sp.Dir, "tenants/acme/jobs/"+j.ID+"/savepoints/") {
		t.Fatalf("savepoint folder %q", sp.Dir)
	}
	if again, err := e.m.TriggerSavepoint("acme", j.ID, "req-1"); err != nil || again.ID != op.ID || !again.Done {
		t.Fatalf("a retry after completion: %+v, %v", again, err)
	}
	sps, err := e.m.Savepoints("acme", j.ID)
	if err != nil || len(sps) != 1 || sps[0].ID != sp.ID {
		t.Fatalf("savepoints = %+v, %v; want exactly %s", sps, err, sp.ID)
	}
	if got, err := e.m.Savepoint("acme", sp.ID); err != nil || got != sp {
		t.Fatalf("Savepoint(%s) = %+v, %v", sp.ID, got, err)
	}
	// A request id names one operation, whatever is asked with it.
	var rie *RequestIDError
	if _, err := e.m.Stop("acme", j.ID, "req-1"); !errors.As(err, &rie) || rie.Existing.ID != op.ID {
		t.Fatalf("stop with a savepoint's request id: %v", err)
	}

	// The savepoint quota: one is kept, one is allowed.
	e.setQuotas("acme", func(q *tenants.Quotas) { q.Savepoints = 1 })
	if _, err := e.m.TriggerSavepoint("acme", j.ID, ""); !isQuota(err, tenants.QuotaSavepoints) {
		t.Fatalf("savepoint over quota: %v", err)
	}
	if _, err := e.m.Stop("acme", j.ID, ""); !isQuota(err, tenants.QuotaSavepoints) {
		t.Fatalf("stop over the savepoint quota: %v", err)
	}
	if _, err := e.m.Upgrade("acme", j.ID, "", UpgradeRequest{Modules: map[string]string{"c": "counter@1"}}); !isQuota(err, tenants.QuotaSavepoints) {
		t.Fatalf("upgrade over the savepoint quota: %v", err)
	}
	e.setQuotas("acme", func(q *tenants.Quotas) { q.Savepoints = 3 })

	stop, err := e.m.Stop("acme", j.ID, "req-2")
	if err != nil {
		t.Fatal(err)
	}
	stop = e.waitOp("acme", stop.ID)
	var stopSP Savepoint
	if stop.Error != "" || json.Unmarshal(stop.Result, &stopSP) != nil {
		t.Fatalf("stop: %+v", stop)
	}
	d, err := e.m.Get("acme", j.ID)
	if err != nil || d.State != StateStopped || d.StoppedWith != stopSP.ID || d.FinishedAt == nil {
		t.Fatalf("stopped job = %+v, %v", d.Job, err)
	}
	if _, err := e.m.Stop("acme", j.ID, ""); !errors.Is(err, ErrConflict) {
		t.Fatalf("stopping a stopped job: %v", err)
	}
	if again, err := e.m.Stop("acme", j.ID, "req-2"); err != nil || again.ID != stop.ID {
		t.Fatalf("a retried stop: %+v, %v", again, err)
	}
	before, _ := counts(t, e.committed("acme", "out"), countingKeys)
	if before < 100 {
		t.Fatalf("only %d records committed by the stop", before)
	}

	// A new job from the stop's savepoint continues every count.
	j2, err := e.m.Deploy("acme", DeployRequest{Spec: []byte(countingSpec("counter@1", "out2", 500, "")), FromSavepoint: stopSP.ID})
	if err != nil || j2.Savepoint != stopSP.ID {
		t.Fatalf("deploy from savepoint: %+v, %v", j2, err)
	}
	e.waitRecords("acme", j2.ID, 100)
	if err := e.m.DeleteSavepoint(context.Background(), "acme", stopSP.ID); !errors.Is(err, ErrConflict) {
		t.Fatalf("deleting the savepoint a running job started from: %v", err)
	}
	stop2, err := e.m.Stop("acme", j2.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if op := e.waitOp("acme", stop2.ID); op.Error != "" {
		t.Fatal(op.Error)
	}
	total, _ := counts(t, append(e.committed("acme", "out"), e.committed("acme", "out2")...), countingKeys)
	if total <= before {
		t.Fatalf("the second job added nothing: %d then %d", before, total)
	}
	if sps, _ := e.m.Savepoints("acme", ""); len(sps) != 3 {
		t.Fatalf("%d savepoints, want 3", len(sps))
	}
	if err := e.m.DeleteSavepoint(context.Background(), "acme", sp.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Stat(context.Background(), path.Join(sp.Dir, checkpoint.MetadataName)); !errors.Is(err, checkpoint.ErrNotFound) {
		t.Fatalf("a deleted savepoint's files: %v", err)
	}
	if _, err := e.m.Savepoint("acme", sp.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a deleted savepoint: %v", err)
	}
}

func TestConcurrentRetriesMakeOneSavepoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.upload("acme", "counter", "counter-v1")
	j := e.deploy("acme", countingSpec("counter@1", "out", 200, ""))
	e.waitRecords("acme", j.ID, 10)
	ids := make([]string, 8)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			op, err := e.m.TriggerSavepoint("acme", j.ID, "same")
			if err != nil {
				t.Error(err)
			}
			ids[i] = op.ID
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("one request id started operations %v", ids)
		}
	}
	e.waitOp("acme", ids[0])
	if sps, _ := e.m.Savepoints("acme", ""); len(sps) != 1 {
		t.Fatalf("%d savepoints, want 1", len(sps))
	}
	if _, err := e.m.Cancel("acme", j.ID); err != nil {
		t.Fatal(err)
	}
}

func TestUpgradeKeepsState(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.UpgradeGrace = time.Second })
	v1, v2, _ := e.counters("acme")
	j := e.deploy("acme", countingSpec("counter@1", "out", 500, ""))
	e.waitRecords("acme", j.ID, 200)

	if _, err := e.m.Upgrade("acme", j.ID, "", UpgradeRequest{Modules: map[string]string{"x": "counter@2"}}); !runtime.IsSpecError(err) ||
		!strings.Contains(err.Error(), "modules.x") {
		t.Fatalf("upgrading an unknown alias: %v", err)
	}
	if _, err := e.m.Upgrade("acme", j.ID, "", UpgradeRequest{Modules: map[string]string{"c": "counter@7"}}); !runtime.IsSpecError(err) ||
		!strings.Contains(err.Error(), "modules.c") {
		t.Fatalf("upgrading to an unknown version: %v", err)
	}
	if _, err := e.m.Upgrade("acme", j.ID, "", UpgradeRequest{}); !runtime.IsSpecError(err) {
		t.Fatalf("an upgrade without modules: %v", err)
	}

	op, err := e.m.Upgrade("acme", j.ID, "up-1", UpgradeRequest{Modules: map[string]string{"c": "counter@2"}})
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := e.m.Get("acme", j.ID); d.State != StateUpgrading {
		t.Fatalf("a job being upgraded is %s", d.State)
	}
	if _, err := e.m.Rescale("acme", j.ID, "", RescaleRequest{Parallelism: 2}); !errors.Is(err, ErrConflict) {
		t.Fatalf("rescaling during an upgrade: %v", err)
	}
	if !e.m.ModuleInUse("acme", v2.Digest) {
		t.Fatal("the version an upgrade moves to may be deleted during the upgrade")
	}
	// While the new version proves itself, both versions are in use.
	sawBoth := false
	waitFor(t, "the upgrade", func() bool {
		o, err := e.m.Operation("acme", op.ID)
		if err != nil {
			t.Fatal(err)
		}
		if o.Done {
			return true
		}
		d, _ := e.m.Get("acme", j.ID)
		if d.Modules["c"] == "counter@2" {
			if !e.m.ModuleInUse("acme", v1.Digest) || !e.m.ModuleInUse("acme", v2.Digest) {
				t.Fatal("during the upgrade's grace period a version is not in use")
			}
			sawBoth = true
		}
		return false
	})
	if !sawBoth {
		t.Fatal("never saw the upgrade's grace period")
	}
	op = e.waitOp("acme", op.ID)
	if op.Error != "" || op.RolledBack {
		t.Fatalf("upgrade: %+v", op)
	}
	d, _ := e.m.Get("acme", j.ID)
	if d.State != StateRunning || d.Modules["c"] != "counter@2" || d.Generation != 2 || d.Savepoint == "" {
		t.Fatalf("upgraded job = %+v", d.Job)
	}
	if e.m.ModuleInUse("acme", v1.Digest) || !e.m.ModuleInUse("acme", v2.Digest) {
		t.Fatal("after the upgrade only v2 is in use")
	}
	e.waitRecords("acme", j.ID, 100)
	stop, err := e.m.Stop("acme", j.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if op := e.waitOp("acme", stop.ID); op.Error != "" {
		t.Fatal(op.Error)
	}
	lines := e.committed("acme", "out")
	total, fromV2 := counts(t, lines, countingKeys)
	if fromV2 == 0 || fromV2 == total {
		t.Fatalf("%d of %d records came from v2", fromV2, total)
	}
	// Per key, v2 continued where v1 stopped.
	lastV1, firstV2 := map[string]int{}, map[string]int{}
	for _, l := range lines {
		s, isV2 := strings.CutSuffix(l, " (v2)")
		k, n, _ := strings.Cut(s, "=")
		c, _ := strconv.Atoi(n)
		if isV2 {
			if f, ok := firstV2[k]; !ok || c < f {
				firstV2[k] = c
			}
		} else {
			lastV1[k] = max(lastV1[k], c)
		}
	}
	for k, f := range firstV2 {
		if f != lastV1[k]+1 {
			t.Fatalf("key %s: v1 counted to %d, v2 started at %d", k, lastV1[k], f)
		}
	}
	if e.m.ModuleInUse("acme", v2.Digest) {
		t.Fatal("a stopped job still uses its module")
	}
}

func TestIncompatibleUpgradeRollsBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	v1, _, mapkind := e.counters("acme")
	j := e.deploy("acme", countingSpec("counter@1", "out", 500, ""))
	e.waitRecords("acme", j.ID, 200)
	op, err := e.m.Upgrade("acme", j.ID, "", UpgradeRequest{Modules: map[string]string{"c": "counter@3"}})
	if err != nil {
		t.Fatal(err)
	}
	op = e.waitOp("acme", op.ID)
	if op.Error == "" || !op.RolledBack || !strings.Contains(op.Error, `"count"`) {
		t.Fatalf("an incompatible upgrade: %+v; want an error naming the state and rolled_back", op)
	}
	d, _ := e.m.Get("acme", j.ID)
	if d.State != StateRunning || d.Modules["c"] != "counter@1" || d.Generation != 3 {
		t.Fatalf("rolled back job = %+v", d.Job)
	}
	if e.m.ModuleInUse("acme", mapkind.Digest) || !e.m.ModuleInUse("acme", v1.Digest) {
		t.Fatal("after a rollback only v1 is in use")
	}
	var spec runtime.JobSpec
	if err := json.Unmarshal(d.Spec, &spec); err != nil || spec.Modules["c"].Ref != "counter@1" {
		t.Fatalf("rolled back spec modules %v", spec.Modules)
	}
	ex, _ := e.m.Exceptions("acme", j.ID)
	if len(ex) == 0 || ex[0].Generation != 2 || !strings.Contains(ex[0].Error, "count") {
		t.Fatalf("the failed generation's exception: %+v", ex)
	}
	// It still runs, and goes on counting.
	e.waitRecords("acme", j.ID, 100)
	stop, err := e.m.Stop("acme", j.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if op := e.waitOp("acme", stop.ID); op.Error != "" {
		t.Fatal(op.Error)
	}
	if total, v2 := counts(t, e.committed("acme", "out"), countingKeys); total < 300 || v2 != 0 {
		t.Fatalf("%d records, %d from v2", total, v2)
	}
}

func TestRescaleKeepsKeyedState(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.counters("acme")
	j := e.deploy("acme", countingSpec("counter@1", "out", 500, ""))
	e.waitRecords("acme", j.ID, 100)

	for _, c := range []struct {
		req  RescaleRequest
		want func(error) bool
	}{
		{RescaleRequest{}, runtime.IsSpecError},
		{RescaleRequest{Parallelism: -1}, runtime.IsSpecError},
		{RescaleRequest{Nodes: map[string]int{"nope": 2}}, runtime.IsSpecError},
		{RescaleRequest{Nodes: map[string]int{"count": 0}}, runtime.IsSpecError},
		{RescaleRequest{Parallelism: 9}, func(err error) bool { return isQuota(err, tenants.QuotaSlots) }},
	} {
		if _, err := e.m.Rescale("acme", j.ID, "", c.req); !c.want(err) {
			t.Fatalf("rescale %+v: %v", c.req, err)
		}
	}
	// An upgrade first: the spec it stores must still rescale.
	up, err := e.m.Upgrade("acme", j.ID, "", UpgradeRequest{Modules: map[string]string{"c": "counter@2"}})
	if err != nil {
		t.Fatal(err)
	}
	if op := e.waitOp("acme", up.ID); op.Error != "" {
		t.Fatal(op.Error)
	}
	op, err := e.m.Rescale("acme", j.ID, "", RescaleRequest{Parallelism: 3})
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := e.m.Get("acme", j.ID); d.State != StateRescaling {
		t.Fatalf("a job being rescaled is %s", d.State)
	}
	if op = e.waitOp("acme", op.ID); op.Error != "" || op.RolledBack {
		t.Fatalf("rescale: %+v", op)
	}
	d, _ := e.m.Get("acme", j.ID)
	if d.State != StateRunning || d.Slots != 3 || d.Generation != 3 {
		t.Fatalf("rescaled job = %+v", d.Job)
	}
	for _, g := range d.Graph {
		want := 3
		if g.ID == "gen" {
			want = 1
		}
		if g.Parallelism != want {
			t.Fatalf("node %s has parallelism %d, want %d", g.ID, g.Parallelism, want)
		}
	}
	if slots, _, _ := e.m.Usage("acme"); slots != 3 {
		t.Fatalf("the rescaled job holds %d slots", slots)
	}
	e.waitRecords("acme", j.ID, 100)
	// One node back to one subtask.
	op, err = e.m.Rescale("acme", j.ID, "", RescaleRequest{Nodes: map[string]int{"count": 1, "out": 1}})
	if err != nil {
		t.Fatal(err)
	}
	if op = e.waitOp("acme", op.ID); op.Error != "" {
		t.Fatal(op.Error)
	}
	if d, _ := e.m.Get("acme", j.ID); d.Slots != 1 {
		t.Fatalf("slots after scaling in: %d", d.Slots)
	}
	e.waitRecords("acme", j.ID, 100)
	stop, err := e.m.Stop("acme", j.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if op := e.waitOp("acme", stop.ID); op.Error != "" {
		t.Fatal(op.Error)
	}
	if total, _ := counts(t, e.committed("acme", "out"), countingKeys); total < 300 {
		t.Fatalf("only %d records", total)
	}
}

func TestFailingModuleRecordsExceptionsAndLogs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.upload("acme", "hostile", "hostile")
	j := e.deploy("acme", `
name: hostile
modules: {h: hostile}
nodes:
  - {id: gen, source: datagen, config: {count: 10, value: {kind: constant, value: panic}}}
  - {id: op, module: h, operator: hostile, inputs: [gen]}
  - {id: out, sink: blackhole, inputs: [op]}
restart: {strategy: fixed, attempts: 2, delay: 1s}
`)
	d := e.waitState("acme", j.ID, StateFailed)
	if !strings.Contains(d.Error, "nil map") || d.Restarts != 2 {
		t.Fatalf("failed job = %+v", d.Job)
	}
	ex, err := e.m.Exceptions("acme", j.ID)
	if err != nil || len(ex) != 3 {
		t.Fatalf("exceptions = %+v, %v; want 3", ex, err)
	}
	for i, x := range ex {
		if x.Attempt != 3-i || x.Generation != 1 || !strings.Contains(x.Error, "nil map") || x.Task != "gen+op+out[0]" || x.Time.IsZero() {
			t.Fatalf("exception %d = %+v", i, x)
		}
	}
	lines, _, err := e.m.Logs("acme", j.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var system []string
	for _, l := range lines {
		if l.Source == "system" {
			system = append(system, l.Message)
		}
	}
	all := strings.Join(system, "\n")
	for _, want := range []string{"generation 1 starting", "attempt 1 failed", "restarting (attempt 2)", "attempt 3 failed", "job failed"} {
		if !strings.Contains(all, want) {
			t.Fatalf("system log lines lack %q:\n%s", want, all)
		}
	}
}

func TestLogsPaging(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.upload("acme", "ws", "windowed-sum")
	// parse logs a warning for every record that is not its JSON; the
	// print sink's lines are logs too.
	j := e.deploy("acme", `
name: printing
modules: {ws: ws}
nodes:
  - {id: gen, source: datagen, config: {count: 30}}
  - {id: parse, module: ws, operator: parse, inputs: [gen]}
  - {id: drop, sink: blackhole, inputs: [parse]}
  - {id: out, sink: print, config: {identifier: p}, inputs: [gen]}
`)
	e.waitState("acme", j.ID, StateFinished)
	all, next, err := e.m.Logs("acme", j.ID, 0, 0)
	if err != nil || next != 0 {
		t.Fatalf("all logs: next %d, %v", next, err)
	}
	var printed, guest []string
	for i, l := range all {
		if l.Seq != uint64(i+1) {
			t.Fatalf("line %d has seq %d", i, l.Seq)
		}
		switch l.Source {
		case "print":
			printed = append(printed, l.Message)
		case "guest":
			guest = append(guest, l.Message)
			if l.Level != "warn" || l.Task == "" {
				t.Fatalf("guest line %+v", l)
			}
		}
	}
	sort.Strings(printed)
	if len(printed) != 30 || printed[0] != "p> 0" || printed[29] != "p> 9" {
		t.Fatalf("printed lines %q", printed)
	}
	if len(guest) != 30 || !strings.Contains(guest[0], "parse: dropping") {
		t.Fatalf("guest lines %q", guest)
	}
	for _, size := range []int{1, 7, len(all) - 1, len(all), len(all) + 5} {
		var got []LogLine
		after := uint64(0)
		for pages := 0; ; pages++ {
			page, next, err := e.m.Logs("acme", j.ID, after, size)
			if err != nil || len(page) > size || pages > len(all) {
				t.Fatalf("page size %d: %d lines, %v", size, len(page), err)
			}
			got = append(got, page...)
			if next == 0 {
				break
			}
			if len(page) == 0 || next != page[len(page)-1].Seq {
				t.Fatalf("page size %d: next %d after %d lines", size, next, len(page))
			}
			after = next
		}
		if len(got) != len(all) {
			t.Fatalf("page size %d: %d lines, want %d", size, len(got), len(all))
		}
	}
	if _, _, err := e.m.Logs("other", j.ID, 0, 10); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another tenant's logs: %v", err)
	}
}

func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.counters("acme")
	e.upload("beta", "counter", "counter-v1")
	j := e.deploy("acme", countingSpec("counter@1", "out", 200, ""))
	e.waitRecords("acme", j.ID, 20)
	op, err := e.m.TriggerSavepoint("acme", j.ID, "shared-id")
	if err != nil {
		t.Fatal(err)
	}
	op = e.waitOp("acme", op.ID)
	var sp Savepoint
	if err := json.Unmarshal(op.Result, &sp); err != nil {
		t.Fatal(err)
	}

	notFound := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("beta %s acme's: %v, want ErrNotFound", what, err)
		}
	}
	_, err = e.m.Get("beta", j.ID)
	notFound("gets", err)
	_, err = e.m.Cancel("beta", j.ID)
	notFound("cancels", err)
	_, err = e.m.TriggerSavepoint("beta", j.ID, "")
	notFound("savepoints", err)
	_, err = e.m.Stop("beta", j.ID, "")
	notFound("stops", err)
	_, err = e.m.Upgrade("beta", j.ID, "", UpgradeRequest{Modules: map[string]string{"c": "counter@1"}})
	notFound("upgrades", err)
	_, err = e.m.Rescale("beta", j.ID, "", RescaleRequest{Parallelism: 2})
	notFound("rescales", err)
	_, err = e.m.Exceptions("beta", j.ID)
	notFound("reads exceptions of", err)
	_, err = e.m.Checkpoints("beta", j.ID)
	notFound("reads checkpoints of", err)
	notFound("deletes", e.m.Delete(context.Background(), "beta", j.ID))
	_, err = e.m.Savepoint("beta", sp.ID)
	notFound("reads the savepoint of", err)
	notFound("deletes the savepoint of", e.m.DeleteSavepoint(context.Background(), "beta", sp.ID))
	_, err = e.m.Operation("beta", op.ID)
	notFound("reads the operation of", err)
	_, err = e.m.Deploy("beta", DeployRequest{Spec: []byte(countingSpec("counter@1", "out", 200, "")), FromSavepoint: sp.ID})
	notFound("deploys from the savepoint of", err)
	if l := e.m.List("beta"); len(l) != 0 {
		t.Fatalf("beta lists %+v", l)
	}
	if sps, _ := e.m.Savepoints("beta", ""); len(sps) != 0 {
		t.Fatalf("beta lists savepoints %+v", sps)
	}
	if e.m.Running("beta") {
		t.Fatal("beta runs acme's job")
	}
	// acme's modules are not beta's: beta's counter has one version.
	if _, err := e.m.Deploy("beta", DeployRequest{Spec: []byte(countingSpec("counter@2", "out", 200, ""))}); !runtime.IsSpecError(err) {
		t.Fatalf("beta deploying acme's counter@2: %v", err)
	}
	// Request ids are per tenant.
	bj := e.deploy("beta", countingSpec("counter@1", "out", 200, ""))
	e.waitRecords("beta", bj.ID, 10)
	bop, err := e.m.TriggerSavepoint("beta", bj.ID, "shared-id")
	if err != nil || bop.ID == op.ID {
		t.Fatalf("beta's request id %q returned acme's operation: %+v, %v", "shared-id", bop, err)
	}
	e.waitOp("beta", bop.ID)
	for _, x := range []struct{ tenant, id string }{{"acme", j.ID}, {"beta", bj.ID}} {
		if _, err := e.m.Cancel(x.tenant, x.id); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.m.DeleteTenant(context.Background(), "beta", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Get("acme", j.ID); err != nil {
		t.Fatalf("deleting beta removed acme's job: %v", err)
	}
	if sps, _ := e.m.Savepoints("acme", ""); len(sps) != 1 {
		t.Fatalf("deleting beta removed acme's savepoints: %+v", sps)
	}
}

func TestRestartResumesFromTheLatestCheckpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.upload("acme", "counter", "counter-v1")
	j := e.deploy("acme", countingSpec("counter@1", "out", 500, "checkpoints: {interval: 50ms}"))
	waitFor(t, "two checkpoints", func() bool {
		d, _ := e.m.Get("acme", j.ID)
		return d.Checkpoints.Completed >= 2
	})
	before, _ := counts(t, e.committed("acme", "out"), countingKeys)
	if before == 0 {
		t.Fatal("nothing committed by two checkpoints")
	}
	e.restart()
	d, err := e.m.Get("acme", j.ID)
	if err != nil || d.State != StateRunning || d.Generation != 2 {
		t.Fatalf("after a restart: %+v, %v", d.Job, err)
	}
	lines, _, _ := e.m.Logs("acme", j.ID, 0, 0)
	var msgs []string
	for _, l := range lines {
		msgs = append(msgs, l.Message)
	}
	waitFor(t, "the resumed job to restore and checkpoint", func() bool {
		d, _ := e.m.Get("acme", j.ID)
		return d.Checkpoints.Completed >= 1
	})
	lines, _, _ = e.m.Logs("acme", j.ID, 0, 0)
	msgs = msgs[:0]
	for _, l := range lines {
		msgs = append(msgs, l.Message)
	}
	if all := strings.Join(msgs, "\n"); !strings.Contains(all, "resuming after a restart") || !strings.Contains(all, "restored from") {
		t.Fatalf("logs of the resumed job:\n%s", all)
	}
	stop, err := e.m.Stop("acme", j.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if op := e.waitOp("acme", stop.ID); op.Error != "" {
		t.Fatal(op.Error)
	}
	total, _ := counts(t, e.committed("acme", "out"), countingKeys)
	if total <= before {
		t.Fatalf("the resumed job added nothing: %d then %d", before, total)
	}
	// An operation the closed manager left unfinished is interrupted.
	j2 := e.deploy("acme", countingSpec("counter@1", "out2", 200, ""))
	e.waitRecords("acme", j2.ID, 10)
	e.setQuotas("acme", func(q *tenants.Quotas) { q.Savepoints = 100 })
	op, err := e.m.Upgrade("acme", j2.ID, "", UpgradeRequest{Modules: map[string]string{"c": "counter@1"}})
	if err != nil {
		t.Fatal(err)
	}
	e.restart()
	if o, err := e.m.Operation("acme", op.ID); err != nil || !o.Done || (o.Error == "" && o.Result == nil) {
		t.Fatalf("operation after a restart: %+v, %v", o, err)
	}
	if d, err := e.m.Get("acme", j2.ID); err != nil || d.State != StateRunning {
		t.Fatalf("job upgraded during a restart: %+v, %v", d.Job, err)
	}
	if _, err := e.m.Cancel("acme", j2.ID); err != nil {
		t.Fatal(err)
	}
}

func TestDeleteKeepsSavepoints(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.upload("acme", "counter", "counter-v1")
	ctx := context.Background()
	j := e.deploy("acme", countingSpec("counter@1", "out", 500, "checkpoints: {interval: 30ms}\nstate: {backend: pebble}"))
	waitFor(t, "a checkpoint", func() bool {
		d, _ := e.m.Get("acme", j.ID)
		return d.Checkpoints.Completed >= 1
	})
	op, err := e.m.TriggerSavepoint("acme", j.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	op = e.waitOp("acme", op.ID)
	var sp Savepoint
	if err := json.Unmarshal(op.Result, &sp); err != nil {
		t.Fatal(err)
	}
	if e.m.StateBytes("acme") <= 0 || e.m.StateBytes("beta") != 0 {
		t.Fatalf("state bytes: acme %d, beta %d", e.m.StateBytes("acme"), e.m.StateBytes("beta"))
	}
	if err := e.m.Delete(ctx, "acme", j.ID); !errors.Is(err, ErrConflict) {
		t.Fatalf("deleting a running job: %v", err)
	}
	if _, err := e.m.Cancel("acme", j.ID); err != nil {
		t.Fatal(err)
	}
	prefix, _ := checkpoint.JobPrefix("acme", j.ID)
	objs, err := e.store.List(ctx, prefix+"/checkpoints")
	if err != nil || len(objs) == 0 {
		t.Fatalf("no retained checkpoints to delete: %v", err)
	}
	if err := e.m.Delete(ctx, "acme", j.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Get("acme", j.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a deleted job: %v", err)
	}
	if keys := e.metaKeys(recordsPrefix); len(keys) != 0 {
		t.Fatalf("records left: %v", keys)
	}
	for _, dir := range []string{"/checkpoints", "/shared"} {
		if objs, err := e.store.List(ctx, prefix+dir); err != nil || len(objs) != 0 {
			t.Fatalf("%s left %d objects (%v)", dir, len(objs), err)
		}
	}
	if _, err := e.store.Stat(ctx, path.Join(sp.Dir, checkpoint.MetadataName)); err != nil {
		t.Fatalf("the savepoint's files went with the job: %v", err)
	}
	if got, err := e.m.Savepoint("acme", sp.ID); err != nil || got.ID != sp.ID {
		t.Fatalf("the savepoint went with the job: %v", err)
	}
	// It still starts a job.
	j2, err := e.m.Deploy("acme", DeployRequest{Spec: []byte(countingSpec("counter@1", "out2", 500, "")), FromSavepoint: sp.ID})
	if err != nil {
		t.Fatal(err)
	}
	e.waitRecords("acme", j2.ID, 10)
	if _, err := e.m.Cancel("acme", j2.ID); err != nil {
		t.Fatal(err)
	}
}

func TestDeleteTenant(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	e.upload("acme", "counter", "counter-v1")
	e.upload("beta", "counter", "counter-v1")
	j := e.deploy("acme", countingSpec("counter@1", "out", 200, ""))
	other := e.deploy("beta", countingSpec("counter@1", "out", 200, ""))
	e.waitRecords("acme", j.ID, 10)
	op, err := e.m.TriggerSavepoint("acme", j.ID, "r")
	if err != nil {
		t.Fatal(err)
	}
	e.waitOp("acme", op.ID)
	if err := e.m.DeleteTenant(ctx, "acme", nil); !errors.Is(err, ErrConflict) {
		t.Fatalf("deleting a tenant with a running job: %v", err)
	}
	if _, err := e.m.Get("acme", j.ID); err != nil {
		t.Fatalf("a refused tenant delete removed its job: %v", err)
	}
	if _, err := e.m.Cancel("acme", j.ID); err != nil {
		t.Fatal(err)
	}
	// While the tenant is being deleted (its modules and keys go in the
	// callback), a deploy for it is refused: nothing slips in between.
	var during error
	if err := e.m.DeleteTenant(ctx, "acme", func() error {
		_, during = e.m.Deploy("acme", DeployRequest{Spec: []byte(countingSpec("counter@1", "late", 200, ""))})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(during, ErrConflict) || !strings.Contains(during.Error(), "being deleted") {
		t.Fatalf("a deploy during the tenant's deletion: %v, want a conflict", during)
	}
	if l := e.m.List("acme"); len(l) != 0 {
		t.Fatalf("jobs left: %+v", l)
	}
	if _, err := e.m.Operation("acme", op.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("operation left: %v", err)
	}
	for _, p := range []string{recordPrefix("acme"), savepointPrefix("acme"), opPrefix("acme"), opRequestPrefix("acme")} {
		if keys := e.metaKeys(p); len(keys) != 0 {
			t.Fatalf("keys left: %v", keys)
		}
	}
	if objs, err := e.store.List(ctx, "tenants/acme/jobs"); err != nil || len(objs) != 0 {
		t.Fatalf("storage left: %d objects, %v", len(objs), err)
	}
	if d, err := e.m.Get("beta", other.ID); err != nil || d.State != StateRunning {
		t.Fatalf("beta's job after deleting acme: %+v, %v", d.Job, err)
	}
	// The request id can be used again.
	j = e.deploy("acme", countingSpec("counter@1", "out", 200, ""))
	e.waitRecords("acme", j.ID, 10)
	if op2, err := e.m.TriggerSavepoint("acme", j.ID, "r"); err != nil || op2.ID == op.ID {
		t.Fatalf("request id after deleting the tenant: %+v, %v", op2, err)
	}
	for _, x := range []struct{ tenant, id string }{{"acme", j.ID}, {"beta", other.ID}} {
		if _, err := e.m.Cancel(x.tenant, x.id); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCancelDuringUpgrade(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.UpgradeGrace = 2 * time.Second })
	v1, v2, _ := e.counters("acme")
	for _, when := range []string{"at once", "in the grace period"} {
		t.Run(when, func(t *testing.T) {
			j := e.deploy("acme", countingSpec("counter@1", "out-"+strings.ReplaceAll(when, " ", "-"), 500, ""))
			e.waitRecords("acme", j.ID, 50)
			op, err := e.m.Upgrade("acme", j.ID, "", UpgradeRequest{Modules: map[string]string{"c": "counter@2"}})
			if err != nil {
				t.Fatal(err)
			}
			if when != "at once" {
				waitFor(t, "the new generation", func() bool {
					d, _ := e.m.Get("acme", j.ID)
					return d.Generation == 2
				})
			}
			c, err := e.m.Cancel("acme", j.ID)
			if err != nil || c.State != StateCanceled {
				t.Fatalf("cancel during an upgrade: %+v, %v", c, err)
			}
			op = e.waitOp("acme", op.ID)
			if op.Error == "" || op.RolledBack {
				t.Fatalf("the cancelled upgrade: %+v", op)
			}
			if d, _ := e.m.Get("acme", j.ID); d.State != StateCanceled {
				t.Fatalf("after the upgrade gave up the job is %s", d.State)
			}
			if e.m.ModuleInUse("acme", v1.Digest) || e.m.ModuleInUse("acme", v2.Digest) {
				t.Fatal("a canceled job uses modules")
			}
		})
	}
}

func TestStateQuotaFailsTheJob(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.upload("acme", "counter", "counter-v1")
	e.setQuotas("acme", func(q *tenants.Quotas) { q.StateBytes = 10 })
	j := e.deploy("acme", countingSpec("counter@1", "out", 500, "checkpoints: {interval: 30ms}"))
	d := e.waitState("acme", j.ID, StateFailed)
	if !strings.Contains(d.Error, tenants.QuotaStateBytes) {
		t.Fatalf("job over its state quota: %+v", d.Job)
	}
	if slots, _, _ := e.m.Usage("acme"); slots != 0 {
		t.Fatalf("a failed job holds %d slots", slots)
	}
}

func TestLogRing(t *testing.T) {
	r := newLogRing(5, nil)
	for i := range 12 {
		r.system(0, strconv.Itoa(i+1))
	}
	page := func(after uint64, limit int) string {
		lines, next := r.page(after, limit)
		var s []string
		for _, l := range lines {
			s = append(s, fmt.Sprintf("%d:%s", l.Seq, l.Message))
		}
		return fmt.Sprintf("%v next %d", s, next)
	}
	for _, c := range []struct {
		after uint64
		limit int
		want  string
	}{
		{0, 100, "[8:8 9:9 10:10 11:11 12:12] next 0"},
		{0, 0, "[8:8 9:9 10:10 11:11 12:12] next 0"},
		{0, 2, "[8:8 9:9] next 9"},
		{9, 2, "[10:10 11:11] next 11"},
		{11, 2, "[12:12] next 0"},
		{12, 2, "[] next 0"},
		{3, 1, "[8:8] next 8"},
	} {
		if got := page(c.after, c.limit); got != c.want {
			t.Errorf("page(%d, %d) = %s, want %s", c.after, c.limit, got, c.want)
		}
	}
	w := r.writer("print")
	if _, err := w.Write([]byte("a\nb\n")); err != nil {
		t.Fatal(err)
	}
	if got := page(12, 10); got != "[13:a 14:b] next 0" {
		t.Fatalf("print lines: %s", got)
	}
}

// TestResumeStartsFromANewerSavepoint: a process that stopped between an
// upgrade's stop-with-savepoint and the new generation's start left the
// previous generation's checkpoints, older than the savepoint the record
// names. Resuming must start from the savepoint: restoring an older
// checkpoint would count the records after it twice.
func TestResumeStartsFromANewerSavepoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.upload("acme", "counter", "counter-v1")
	j := e.deploy("acme", countingSpec("counter@1", "out", 500, "checkpoints: {interval: 30ms}"))
	waitFor(t, "two checkpoints", func() bool {
		d, _ := e.m.Get("acme", j.ID)
		return d.Checkpoints.Completed >= 2
	})
	stop, err := e.m.Stop("acme", j.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	stop = e.waitOp("acme", stop.ID)
	var sp Savepoint
	if err := json.Unmarshal(stop.Result, &sp); err != nil {
		t.Fatal(err)
	}
	before, _ := counts(t, e.committed("acme", "out"), countingKeys)
	prefix, _ := checkpoint.JobPrefix("acme", j.ID)
	if objs, _ := e.store.List(context.Background(), prefix+"/checkpoints"); len(objs) == 0 {
		t.Fatal("the stopped job retained no checkpoints")
	}
	e.m.Close()
	// The record as replace leaves it right after the stop.
	v, _, err := e.meta.Get(recordKey("acme", j.ID))
	if err != nil {
		t.Fatal(err)
	}
	var rec record
	if err := json.Unmarshal(v, &rec); err != nil {
		t.Fatal(err)
	}
	rec.State, rec.StoppedWith, rec.FinishedAt = StateUpgrading, "", nil
	rec.Savepoint, rec.SavepointDir = sp.ID, sp.Dir
	b, _ := json.Marshal(rec)
	if err := e.meta.Commit(map[string][]byte{recordKey("acme", j.ID): b}, nil); err != nil {
		t.Fatal(err)
	}
	e.start()
	if d, err := e.m.Get("acme", j.ID); err != nil || d.State != StateRunning {
		t.Fatalf("resumed job: %+v, %v", d.Job, err)
	}
	e.waitRecords("acme", j.ID, 100)
	stop, err = e.m.Stop("acme", j.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if op := e.waitOp("acme", stop.ID); op.Error != "" {
		t.Fatal(op.Error)
	}
	if total, _ := counts(t, e.committed("acme", "out"), countingKeys); total <= before {
		t.Fatalf("the resumed job added nothing: %d then %d", before, total)
	}
}

func TestVertexMetrics(t *testing.T) {
	var mt metrics
	t0 := time.Unix(1_700_000_000, 0)
	stats := func(in int64, bp time.Duration) []runtime.TaskStats {
		return []runtime.TaskStats{
			{Nodes: []string{"src"}, Subtask: 0, RecordsOut: in, Watermark: minWatermark},
			{Nodes: []string{"a", "b"}, Subtask: 0, RecordsIn: in, Watermark: 100, Backpressure: bp},
			{Nodes: []string{"a", "b"}, Subtask: 1, RecordsIn: in / 2, Watermark: 50, Finished: true},
		}
	}
	// Vertices come in the engine's task order (the graph's, sources first).
	first := mt.vertices(stats(100, 0), t0)
	if len(first) != 2 || first[1].RecordsInPerSecond != 0 || first[1].Parallelism != 2 || first[1].Finished != 1 ||
		first[1].RecordsIn != 150 || *first[1].Watermark != 50 || first[0].Watermark != nil || first[0].Nodes[0] != "src" {
		t.Fatalf("first = %+v", first)
	}
	second := mt.vertices(stats(300, time.Second), t0.Add(2*time.Second))
	src, ab := second[0], second[1]
	if ab.RecordsInPerSecond != 150 || src.RecordsOutPerSecond != 100 || ab.BackpressureRatio != 0.5 {
		t.Fatalf("rates: %+v %+v", ab, src)
	}
	// A restarted attempt counts from zero: no negative rates.
	third := mt.vertices(stats(10, 0), t0.Add(3*time.Second))
	if third[1].RecordsInPerSecond != 0 || third[1].BackpressureRatio != 0 {
		t.Fatalf("after a restart: %+v", third[1])
	}
}

func TestConcurrentDeploysShareTheSlots(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.Slots = 3 })
	e.upload("acme", "counter", "counter-v1")
	const n = 6
	errs := make([]error, n)
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j, err := e.m.Deploy("acme", DeployRequest{Spec: []byte(countingSpec("counter@1", fmt.Sprintf("out%d", i), 100, ""))})
			ids[i], errs[i] = j.ID, err
		}()
	}
	wg.Wait()
	var ok, full int
	for i, err := range errs {
		var ce *CapacityError
		switch {
		case err == nil:
			ok++
			if _, err := e.m.Cancel("acme", ids[i]); err != nil {
				t.Fatal(err)
			}
		case errors.As(err, &ce):
			full++
		default:
			t.Fatalf("deploy %d: %v", i, err)
		}
	}
	if ok != 3 || full != 3 {
		t.Fatalf("%d deploys ran and %d were refused for capacity, want 3 and 3", ok, full)
	}
	if n := len(e.m.List("acme")); n != 3 {
		t.Fatalf("%d jobs stored, want 3", n)
	}
}

func TestFailedTask(t *testing.T) {
	for msg, want := range map[string]string{
		"task src+map[2]: operator map: boom":      "src+map[2]",
		"restoring chk-3: task a[0]: missing file": "a[0]",
		"subtask 3: no": "",
		"the job has no running generation after an operation": "",
		"task : x": "",
		"":         "",
	} {
		if got := failedTask(msg); got != want {
			t.Errorf("failedTask(%q) = %q, want %q", msg, got, want)
		}
	}
}

// TestSavepointRightAfterDeploy: a savepoint asked for before the job's
// tasks run waits for them rather than being aborted.
func TestSavepointRightAfterDeploy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.upload("acme", "counter", "counter-v1")
	for i := 0; i < 3; i++ {
		j := e.deploy("acme", countingSpec("counter@1", fmt.Sprintf("out%d", i), 500, ""))
		op, err := e.m.TriggerSavepoint("acme", j.ID, "")
		if err != nil {
			t.Fatal(err)
		}
		if op = e.waitOp("acme", op.ID); op.Error != "" {
			t.Fatalf("a savepoint right after deploy failed: %s", op.Error)
		}
		if _, err := e.m.Cancel("acme", j.ID); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRestartDelayFloor: a tenant's job may not restart faster than
// MinRestartDelay (a spinning job would take a core from other tenants).
func TestRestartDelayFloor(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.upload("acme", "hostile", "hostile")
	_, err := e.m.Deploy("acme", DeployRequest{Spec: []byte(`
name: fast
modules: {h: hostile}
nodes:
  - {id: gen, source: datagen, config: {count: 10, value: {kind: constant, value: loop}}}
  - {id: op, module: h, operator: hostile, inputs: [gen]}
  - {id: out, sink: blackhole, inputs: [op]}
restart: {strategy: fixed, attempts: 1000, delay: 20ms}
`)})
	var se runtime.SpecErrors
	if !errors.As(err, &se) || len(se) != 1 || se[0].Field != "restart.delay" || !strings.Contains(se[0].Problem, "at least 1s") {
		t.Fatalf("deploy with a 20ms restart delay: %v; want a restart.delay spec error", err)
	}
	if jobs := e.m.List("acme"); len(jobs) != 0 {
		t.Fatalf("a refused deploy left jobs: %+v", jobs)
	}
}

// TestSpecErrorsTogether: the platform's rules and the engine's structural
// checks are reported in one answer.
func TestSpecErrorsTogether(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.upload("acme", "counter", "counter-v1")
	_, err := e.m.Deploy("acme", DeployRequest{Spec: []byte(`
name: both
state: {dir: /tmp/mine}
modules: {c: counter@1}
nodes:
  - {id: gen, source: datagen, config: {count: 10}}
  - {id: count, module: c, operator: count, inputs: [{from: gen, partition: hash}]}
  - {id: out, sink: blackhole, inputs: [nope]}
`)})
	var se runtime.SpecErrors
	if !errors.As(err, &se) {
		t.Fatalf("deploy: %v, want spec errors", err)
	}
	fields := map[string]bool{}
	for _, x := range se {
		fields[x.Field] = true
	}
	for _, want := range []string{"state.dir", "nodes[1] (count).inputs[0].partition", "nodes[2] (out).inputs[0].from"} {
		if !fields[want] {
			t.Errorf("spec errors %v lack %s", se, want)
		}
	}
	if jobs := e.m.List("acme"); len(jobs) != 0 {
		t.Fatalf("a refused deploy left jobs: %+v", jobs)
	}
}

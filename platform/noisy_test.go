package platform_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weirstream/weir/connectors"
	"github.com/weirstream/weir/platform"
	"github.com/weirstream/weir/platform/jobs"
	"github.com/weirstream/weir/runtime"
	"github.com/weirstream/weir/tenants"
	"github.com/weirstream/weir/wasmhost/wasmtest"
)

// Tenant A's sandbox quotas in the noisy-neighbour test and benchmark:
// small enough that its hostile jobs hit them fast.
const (
	noisyCallTimeout = 500 * time.Millisecond
	noisyMemoryPages = 256 // 16 MiB per instance
)

// noisyQuotas are tenant A's quotas. The request rate is raised because
// the tests poll jobs: the rate limit is not what they are about.
func noisyQuotas() tenants.Quotas {
	return tenants.Quotas{
		CallTimeout:       tenants.Duration(noisyCallTimeout),
		MemoryPages:       noisyMemoryPages,
		RequestsPerSecond: 10_000,
		RequestBurst:      10_000,
	}
}

// hostileSpec is a job of tenant A whose operator misbehaves on its one
// record: the hostile module's mode is the record's value (loop, oom, ...).
func hostileSpec(mode, restart string) string {
	return fmt.Sprintf(`
name: a-%[1]s
restart: %[2]s
modules: {h: hostile@1}
nodes:
  - {id: src, source: datagen, config: {count: 1, value: {kind: constant, value: %[1]s}}}
  - {id: op, module: h, operator: hostile, inputs: [src]}
  - {id: out, sink: blackhole, inputs: [op]}
`, mode, restart)
}

// The words of tenant B's job: datagen's record i has the value
// i % wordsInB in decimal (a cycling sequence generator), a one-word line.
const wordsInB = 500

// wordcountSpecB is tenant B's job: an unbounded, rate-limited datagen
// source of one-word lines, the wordcount module's split and keyed count,
// and an exactly-once file sink in B's file area; checkpoints every 200 ms
// so that the sink commits while the job runs.
const wordcountSpecB = `
name: b-wordcount
parallelism: 2
checkpoints: {interval: 200ms}
modules: {wc: wordcount@1}
nodes:
  - id: lines
    source: datagen
    parallelism: 1
    config: {rate: 2000, value: {kind: sequence, start: 0, end: 499}}
  - {id: split, module: wc, operator: split, inputs: [{from: lines, partition: rebalance}]}
  - {id: count, module: wc, operator: count, inputs: [{from: split, partition: key}]}
  - {id: out, sink: file, config: {path: counts, format: kv}, inputs: [count]}
`

// TestNoisyNeighbour is the noisy-neighbour test, from the tenants'
// side of the REST API: while tenant B's word count runs, tenant A deploys
// an operator that loops forever and one that allocates without bound,
// under small call_timeout and memory_pages quotas set by the admin. A's
// jobs must fail with errors that name the reason, A cannot raise its own
// limits in a job spec, the API keeps serving, and B's job must make
// progress all along and end with exactly the right output.
//
// How overlap and correctness are established: B's source is unbounded and
// rate-limited, so B is certainly running when A's jobs start and fail (its
// records_in is sampled before A deploys and after A's jobs failed, and
// must grow in between, and again after). B is then stopped with a
// savepoint (stop-with-savepoint commits the file sink), and its committed
// output is checked against the records the source produced: datagen at
// parallelism 1 produces a prefix 0..M-1 of its index space, record i is
// the word i%500, so the word w must have exactly the counts 1..n_w, where
// n_w is the number of i < M with i%500 == w — computed here, not by the
// engine. A lost or repeated record breaks it.
func TestNoisyNeighbour(t *testing.T) {
	hostile, wordcount := moduleBytes(t, "hostile"), moduleBytes(t, "wordcount")
	h := newHarness(t, platform.Options{CacheDir: wasmtest.CacheDir()})
	a := h.tenant("tenant-a", noisyQuotas())
	b := h.tenant("tenant-b", tenants.Quotas{RequestsPerSecond: 10_000, RequestBurst: 10_000})
	b.upload("wordcount", wordcount)
	a.upload("hostile", hostile)

	// B's job runs and has committed output before A does anything.
	bj := b.deploy(wordcountSpecB)
	b.waitJob(bj.ID, "a completed checkpoint and records counted", time.Minute, func(d jobs.Detail) bool {
		return d.State == jobs.StateRunning && d.Checkpoints.Completed > 0 && recordsIn(d, "count") > 0
	})
	before := recordsIn(b.job(bj.ID), "count")

	// A cannot lift its sandbox limits in a spec: the quota is the ceiling,
	// and nothing is created.
	for _, c := range []struct{ limits, quota string }{
		{"{callTimeout: 1m}", tenants.QuotaCallTimeout},
		{"{memoryPages: 65535}", tenants.QuotaMemoryPages},
	} {
		spec := strings.Replace(hostileSpec("loop", "{strategy: none}"), "restart:", "limits: "+c.limits+"\nrestart:", 1)
		var prob struct {
			Type  string `json:"type"`
			Quota string `json:"quota"`
		}
		a.call("POST", "/v1/jobs", "application/yaml", []byte(spec), http.StatusForbidden, &prob)
		if prob.Type != "urn:weir:problem:quota-exceeded" || prob.Quota != c.quota {
			t.Errorf("limits %s: problem %+v, want quota-exceeded naming %s", c.limits, prob, c.quota)
		}
	}
	var list struct {
		Items []jobs.Job `json:"items"`
	}
	a.call("GET", "/v1/jobs", "", nil, http.StatusOK, &list)
	if len(list.Items) != 0 {
		t.Fatalf("refused deploys left jobs behind: %+v", list.Items)
	}

	// A's hostile jobs, no restarts: each must fail, naming why.
	hostileJobs := []struct {
		mode, reason string
		id           string
	}{
		{mode: "loop", reason: "deadline exceeded after " + noisyCallTimeout.String()},
		{mode: "oom", reason: "out of memory"},
	}
	for i := range hostileJobs {
		hostileJobs[i].id = a.deploy(hostileSpec(hostileJobs[i].mode, "{strategy: none}")).ID
	}
	var lastFailure time.Time
	for _, hj := range hostileJobs {
		d := a.waitState(hj.id, jobs.StateFailed, time.Minute)
		if !strings.Contains(d.Error, hj.reason) {
			t.Errorf("A's %s job failed with %q, want it to name %q", hj.mode, d.Error, hj.reason)
		}
		var spec runtime.JobSpec
		if err := json.Unmarshal(d.Spec, &spec); err != nil {
			t.Fatal(err)
		}
		if spec.Limits.MemoryPages != noisyMemoryPages || time.Duration(spec.Limits.CallTimeout) != noisyCallTimeout {
			t.Errorf("A's %s job ran with limits %+v, want the tenant's quotas (%d pages, %v)", hj.mode, spec.Limits, noisyMemoryPages, noisyCallTimeout)
		}
		ex := a.exceptions(hj.id)
		if len(ex) != 1 || !strings.Contains(ex[0].Error, hj.reason) {
			t.Errorf("A's %s job: exception history %+v, want one failure naming %q", hj.mode, ex, hj.reason)
		}
		if len(ex) > 0 && ex[0].Time.After(lastFailure) {
			lastFailure = ex[0].Time
		}
	}

	// B ran through A's failures without a hitch.
	during := b.job(bj.ID)
	if during.State != jobs.StateRunning || during.Restarts != 0 {
		t.Fatalf("B's job is %s after %d restarts while A's jobs failed (error %q)", during.State, during.Restarts, during.Error)
	}
	if !during.CreatedAt.Before(lastFailure) {
		t.Fatalf("B's job (created %v) did not run when A's jobs failed (%v)", during.CreatedAt, lastFailure)
	}
	if n := recordsIn(during, "count"); n <= before {
		t.Fatalf("B's job made no progress while A's jobs ran: %d records counted before, %d after", before, n)
	}
	if ex := b.exceptions(bj.ID); len(ex) != 0 {
		t.Fatalf("B's job has failures: %+v", ex)
	}

	// The platform keeps serving both tenants; A's failed jobs hold nothing.
	h.admin.call("GET", "/v1/healthz", "", nil, http.StatusOK, nil)
	var qa struct {
		Usage tenants.Usage `json:"usage"`
	}
	a.call("GET", "/v1/quotas", "", nil, http.StatusOK, &qa)
	if qa.Usage.Jobs != 0 || qa.Usage.Slots != 0 {
		t.Errorf("A's failed jobs still count as running: usage %+v", qa.Usage)
	}
	after := recordsIn(during, "count")
	b.waitJob(bj.ID, "progress after A's failures", time.Minute, func(d jobs.Detail) bool {
		return recordsIn(d, "count") >= after+1000
	})

	// Stop B with a savepoint; its committed output is then final.
	var op jobs.Operation
	b.call("POST", "/v1/jobs/"+bj.ID+"/stop", "", nil, http.StatusAccepted, &op)
	deadline := time.Now().Add(time.Minute)
	for !op.Done {
		if time.Now().After(deadline) {
			t.Fatalf("stop of B's job not done after a minute: %+v", op)
		}
		time.Sleep(10 * time.Millisecond) // poll interval
		b.call("GET", "/v1/operations/"+op.ID, "", nil, http.StatusOK, &op)
	}
	if op.Error != "" {
		t.Fatalf("stopping B's job: %s", op.Error)
	}
	final := b.waitState(bj.ID, jobs.StateStopped, time.Minute)
	if final.Restarts != 0 {
		t.Fatalf("B's job restarted %d times", final.Restarts)
	}
	lines, err := connectors.ReadCommitted(filepath.Join(h.filesDir("tenant-b"), "counts"))
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(lines)) < after+1000 {
		t.Fatalf("B's committed output has %d lines, but %d records had been counted before the stop", len(lines), after+1000)
	}
	if err := prefixCountsError(lines, wordsInB); err != nil {
		t.Fatalf("B's output is wrong: %v", err)
	}
	t.Logf("B counted %d records (%d before A's jobs, %d when they had failed); A's jobs failed with: %q / %q",
		len(lines), before, after, a.job(hostileJobs[0].id).Error, a.job(hostileJobs[1].id).Error)
}

// prefixCountsError checks word-count output lines "word\tcount" of the
// records 0..len(lines)-1 of a source whose record i is the word
// i % words: word w must have exactly the counts 1..n_w, with n_w the
// number of such i with i % words == w. It says what is wrong, or nil.
func prefixCountsError(lines []string, words int) error {
	m := len(lines)
	seen := make(map[string][]bool, words)
	for _, l := range lines {
		w, c, ok := strings.Cut(l, "\t")
		n, err := strconv.Atoi(c)
		if !ok || err != nil || n < 1 {
			return fmt.Errorf("output line %q is not word<TAB>count", l)
		}
		if seen[w] == nil {
			seen[w] = make([]bool, m+1)
		}
		if n > m || seen[w][n] {
			return fmt.Errorf("word %q has count %d twice or out of range (%d lines): a record was repeated", w, n, m)
		}
		seen[w][n] = true
	}
	for w := range words {
		word := strconv.Itoa(w)
		want := m / words
		if w < m%words {
			want++
		}
		for n := 1; n <= want; n++ {
			if seen[word] == nil || !seen[word][n] {
				return fmt.Errorf("word %q lacks count %d (want 1..%d after %d records): a record was lost", word, n, want, m)
			}
		}
		delete(seen, word)
	}
	for w := range seen {
		return fmt.Errorf("word %q is not one of the source's words", w)
	}
	return nil
}

// TestPrefixCountsError shows that the noisy-neighbour test's output check
// catches lost, repeated and foreign records.
func TestPrefixCountsError(t *testing.T) {
	// Records 0..6 of a source of 3 words: 0 1 2 0 1 2 0.
	good := []string{"0\t1", "1\t1", "2\t1", "0\t2", "1\t2", "2\t2", "0\t3"}
	cases := []struct {
		name  string
		lines []string
		want  string // "" : valid
	}{
		{"exact", good, ""},
		{"reordered", []string{"2\t1", "0\t1", "0\t2", "1\t1", "2\t2", "0\t3", "1\t2"}, ""},
		{"empty", nil, ""},
		{"shorter prefix", good[:6:6], ""}, // records 0..5: consistent
		{"lost middle", append(append([]string{}, good[:3]...), good[4:]...), "lacks count"},
		{"repeated", append(append([]string{}, good[:6]...), "1\t2"), "twice"},
		{"foreign", append(append([]string{}, good[:6]...), "7\t1"), "lacks count"}, // then 0's third count is missing
		{"not a count", []string{"0\tx"}, "not word<TAB>count"},
	}
	for _, c := range cases {
		err := prefixCountsError(c.lines, 3)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: unexpected error %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want one saying %q", c.name, err, c.want)
		}
	}
}

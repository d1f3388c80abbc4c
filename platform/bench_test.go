package platform_test

// Platform benchmarks, all through the REST API of a real server on
// 127.0.0.1 (the load generators share the machine with the server):
//
//	make bench-platform
//
//   - BenchmarkNoisyNeighbour: tenant B's CPU-bound keyed job alone and next
//     to tenant A's hostile jobs, in the same run, and the drop.
//   - BenchmarkAPILatency: p50/p99 of get/list requests from 200 concurrent
//     keep-alive clients, and what the default rate quota does to them.
//   - BenchmarkModuleUpload: uploading (validating, storing) a Go-SDK
//     module, and validation alone for comparison.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weirstream/weir/platform"
	"github.com/weirstream/weir/platform/jobs"
	"github.com/weirstream/weir/tenants"
	"github.com/weirstream/weir/wasmhost"
	"github.com/weirstream/weir/wasmhost/wasmtest"
)

// cpuTime is the CPU time (user+sys) the process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchTimeout bounds every wait of the benchmarks.
const benchTimeout = 5 * time.Minute

// noisyRecords is the size of tenant B's bounded job in the benchmark: a
// few seconds of work on this machine.
const noisyRecords = 3_000_000

// benchSpecB is tenant B's CPU-bound keyed job: datagen (one-word lines
// over 10,000 words) chained with wordcount's split, the keyed count in its
// own task (key partitioning), a blackhole sink. No checkpoints: the
// benchmark is about CPU, not storage.
const benchSpecB = `
name: b-bench
modules: {wc: wordcount@1}
nodes:
  - {id: lines, source: datagen, config: {count: %d, value: {kind: sequence, start: 0, end: 9999}}}
  - {id: split, module: wc, operator: split, inputs: [lines]}
  - {id: count, module: wc, operator: count, inputs: [{from: split, partition: key}]}
  - {id: out, sink: blackhole, inputs: [count]}
`

// runB runs tenant B's bounded job to its end and returns its records per
// second (the platform's created_at to finished_at: deploy, compile,
// instantiate, run) and the process's CPU use in cores meanwhile.
func runB(b *testing.B, c *client, records int) (perSecond, cores float64) {
	b.Helper()
	cpu0, wall0 := cpuTime(), time.Now()
	j := c.deploy(fmt.Sprintf(benchSpecB, records))
	d := c.waitState(j.ID, jobs.StateFinished, benchTimeout)
	cpu, wall := cpuTime()-cpu0, time.Since(wall0)
	if d.FinishedAt == nil {
		b.Fatalf("B's job %s finished without finished_at", j.ID)
	}
	took := d.FinishedAt.Sub(d.CreatedAt)
	return float64(records) / took.Seconds(), cpu.Seconds() / wall.Seconds()
}

// BenchmarkNoisyNeighbour measures tenant B's throughput alone and while
// tenant A's hostile jobs (an infinite loop, killed by A's 500 ms
// call_timeout, and a memory bomb, stopped by A's 16 MiB memory_pages) run
// and are restarted by their restart strategy for the whole measurement.
// Each iteration runs B alone and B with A, alternating which goes first,
// so both see the same machine; drop-% is 1 - with/alone over the run.
//
//   - fixed-1s/loop+oom: A restarts both jobs after 1 s (the platform's
//     MinRestartDelay; shorter delays are refused), without limit: the
//     worst case A may ask for; the loop burns a core for call_timeout out
//     of every ~1.5 s, the memory bomb is instantiated, fills 16 MiB and
//     dies about once a second. fixed-1s/loop and fixed-1s/oom: one job
//     each, to tell their costs apart.
//   - backoff-1s/loop+oom: A restarts with exponential back-off from 1 s
//     (x2, up to 1 m), what a platform default should look like. A's jobs
//     are deployed afresh for every run of B, so each run still sees the
//     first, closely spaced failures (the loop burns call_timeout at t ≈
//     0.5, 2, 4.5, 9 s, ... of A's job).
func BenchmarkNoisyNeighbour(b *testing.B) {
	hostile, wordcount := moduleBytes(b, "hostile"), moduleBytes(b, "wordcount")
	h := newHarness(b, platform.Options{CacheDir: wasmtest.CacheDir()})
	a := h.tenant("tenant-a", noisyQuotas())
	bc := h.tenant("tenant-b", tenants.Quotas{RequestsPerSecond: 10_000, RequestBurst: 10_000})
	bc.upload("wordcount", wordcount)
	a.upload("hostile", hostile)
	runB(b, bc, 10_000) // warm up: compile, first instances
	const (
		fixed   = "{strategy: fixed, delay: 1s, attempts: 1000000}" // the platform's shortest delay
		backoff = "{strategy: exponential, delay: 1s, maxDelay: 1m, multiplier: 2}"
	)
	cases := []struct {
		name, restart string
		modes         []string
	}{
		{"fixed-1s/loop+oom", fixed, []string{"loop", "oom"}},
		{"fixed-1s/loop", fixed, []string{"loop"}},
		{"fixed-1s/oom", fixed, []string{"oom"}},
		{"backoff-1s/loop+oom", backoff, []string{"loop", "oom"}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var aloneRate, noisyRate, aloneCores, noisyCores float64
			var kills int
			noisy := func() {
				var ids []string
				for _, mode := range c.modes {
					j := a.deploy(hostileSpec(mode, c.restart))
					a.waitJob(j.ID, "its first restart", benchTimeout, func(d jobs.Detail) bool { return d.Restarts > 0 })
					ids = append(ids, j.ID)
				}
				before := 0
				for _, id := range ids {
					before += a.job(id).Restarts
				}
				r, cores := runB(b, bc, noisyRecords)
				noisyRate += r
				noisyCores += cores
				for _, id := range ids {
					var j jobs.Job
					a.call("POST", "/v1/jobs/"+id+"/cancel", "", nil, http.StatusOK, &j)
					if j.State != jobs.StateCanceled {
						b.Fatalf("A's job %s is %s after cancel", id, j.State)
					}
					kills += j.Restarts
				}
				kills -= before
			}
			alone := func() {
				r, cores := runB(b, bc, noisyRecords)
				aloneRate += r
				aloneCores += cores
			}
			b.ResetTimer()
			for i := range b.N {
				if i%2 == 0 {
					alone()
					noisy()
				} else {
					noisy()
					alone()
				}
			}
			b.StopTimer()
			n := float64(b.N)
			b.ReportMetric(aloneRate/n, "alone-records/s")
			b.ReportMetric(noisyRate/n, "noisy-records/s")
			b.ReportMetric(100*(1-noisyRate/aloneRate), "drop-%")
			b.ReportMetric(aloneCores/n, "alone-cores")
			b.ReportMetric(noisyCores/n, "noisy-cores")
			b.ReportMetric(float64(kills)/n, "A-failures/run")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// Load of BenchmarkAPILatency: apiClients clients send apiPerClient
// requests each per iteration; for comparison, one client sends
// apiSequential requests one after another.
const (
	apiClients    = 200
	apiPerClient  = 100
	apiSequential = 2000
)

// loadResult is what one round of load saw.
type loadResult struct {
	latency  map[string][]time.Duration // by request kind, of 200 answers
	statuses map[int]int
	retry    int // 429 answers with a Retry-After header
	wall     time.Duration
	errs     []error
}

// apiLoad is a number of clients, each with its own keep-alive connection
// (a Transport of one connection), against one server.
type apiLoad struct {
	base, token string
	clients     []*http.Client
}

func newAPILoad(b *testing.B, base, token string, clients int) *apiLoad {
	l := &apiLoad{base: base, token: token}
	for range clients {
		l.clients = append(l.clients, &http.Client{Timeout: time.Minute, Transport: &http.Transport{
			MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1, DisableCompression: true,
		}})
	}
	// Open every connection before anything is measured; healthz is
	// public, so this spends none of the tenant's rate quota.
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for _, c := range l.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := l.get(c, "/v1/healthz", false); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		for _, c := range l.clients {
			c.CloseIdleConnections()
		}
	})
	return l
}

// get sends one GET (with the token if auth) and reads the whole answer,
// so that the connection is reused; the response's body is closed.
func (l *apiLoad) get(c *http.Client, path string, auth bool) (*http.Response, error) {
	req, err := http.NewRequest("GET", l.base+path, nil)
	if err != nil {
		return nil, err
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+l.token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("GET %s: reading the answer: %w", path, err)
	}
	return resp, nil
}

// round lets every client send perClient requests as fast as answers
// come, cycling through the kinds of request from a different start each,
// and records each request's latency.
func (l *apiLoad) round(kinds []apiRequest, perClient int) loadResult {
	type sample struct {
		kind   int
		took   time.Duration
		status int
		retry  bool
	}
	samples := make([][]sample, len(l.clients))
	errs := make([]error, len(l.clients))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for ci, c := range l.clients {
		samples[ci] = make([]sample, 0, perClient)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range perClient {
				k := (ci + i) % len(kinds)
				t0 := time.Now()
				resp, err := l.get(c, kinds[k].path(ci+i), true)
				took := time.Since(t0)
				if err != nil {
					errs[ci] = err
					return
				}
				samples[ci] = append(samples[ci], sample{k, took, resp.StatusCode, resp.Header.Get("Retry-After") != ""})
			}
		}()
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	res := loadResult{latency: map[string][]time.Duration{}, statuses: map[int]int{}, wall: time.Since(t0)}
	for ci := range l.clients {
		if errs[ci] != nil {
			res.errs = append(res.errs, errs[ci])
		}
		for _, s := range samples[ci] {
			res.statuses[s.status]++
			if s.status == http.StatusOK {
				res.latency[kinds[s.kind].name] = append(res.latency[kinds[s.kind].name], s.took)
			}
			if s.status == http.StatusTooManyRequests && s.retry {
				res.retry++
			}
		}
	}
	return res
}

// apiRequest is one kind of request of the load.
type apiRequest struct {
	name string
	path func(i int) string
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// percentile returns the p-th percentile (0..1) of sorted durations, in ms.
func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := min(int(p*float64(len(sorted))), len(sorted)-1)
	return ms(sorted[i])
}

// BenchmarkAPILatency measures the API under 200 concurrent clients, each
// with its own keep-alive connection, sending 100 requests per iteration as
// fast as the answers come (a closed loop: the offered load is what the
// server and the clients, on the same two cores, manage): GET
// /v1/jobs/{job} (of five jobs, three of them running), GET /v1/jobs and
// GET /v1/modules (five names, seven versions), in turn.
//
// The tenant's requests_per_second quota is raised out of the way (it is a
// quota, not a capacity), so every request is served: p50/p99 over all
// requests and by kind, and requests/s.
//
//   - 200-clients: the load.
//   - 1-client: one client, 2,000 requests one after another: the latency
//     of a request without queueing, for comparison.
//
// Then, logged once: the same load at the default quota (100/s, burst
// 200), how many requests are answered and how many get 429 with
// Retry-After.
func BenchmarkAPILatency(b *testing.B) {
	wordcount, hostile := moduleBytes(b, "wordcount"), moduleBytes(b, "hostile")
	h := newHarness(b, platform.Options{CacheDir: wasmtest.CacheDir()})
	raised := tenants.Quotas{RequestsPerSecond: 1_000_000, RequestBurst: 1_000_000}
	c := h.tenant("bench", raised)
	for i := range 3 {
		c.upload("wordcount", variant(wordcount, i))
	}
	c.upload("hostile", hostile)
	c.upload("wc-copy", variant(wordcount, 10))
	c.upload("wc-old", variant(wordcount, 11))
	c.upload("wc-new", variant(wordcount, 12))
	var ids []string
	for i := range 5 {
		// Three running at a low rate (their metrics are live), two finished.
		source := "{rate: 20, value: {kind: sequence, start: 0, end: 99}}"
		if i >= 3 {
			source = "{count: 100, value: {kind: sequence, start: 0, end: 99}}"
		}
		j := c.deploy(fmt.Sprintf(`
name: job-%d
modules: {wc: wordcount@%d}
nodes:
  - {id: lines, source: datagen, config: %s}
  - {id: split, module: wc, operator: split, inputs: [lines]}
  - {id: count, module: wc, operator: count, inputs: [{from: split, partition: key}]}
  - {id: out, sink: blackhole, inputs: [count]}
`, i, i%3+1, source))
		ids = append(ids, j.ID)
	}
	for i, id := range ids {
		want := jobs.StateRunning
		if i >= 3 {
			want = jobs.StateFinished
		}
		c.waitState(id, want, benchTimeout)
	}
	kinds := []apiRequest{
		{"get-job", func(i int) string { return "/v1/jobs/" + ids[i%len(ids)] }},
		{"list-jobs", func(int) string { return "/v1/jobs" }},
		{"list-modules", func(int) string { return "/v1/modules" }},
	}
	load := newAPILoad(b, h.srv.URL, c.token, apiClients)
	b.Run("200-clients", func(b *testing.B) { measureAPI(b, load, kinds, apiPerClient) })
	b.Run("1-client", func(b *testing.B) {
		measureAPI(b, newAPILoad(b, h.srv.URL, c.token, 1), kinds, apiSequential)
	})

	// The default quota, once (the parent of sub-benchmarks runs once):
	// a round from a full token bucket, then one from the empty bucket it
	// leaves.
	h.setQuotas("bench", tenants.Quotas{})
	defer h.setQuotas("bench", raised)
	def := tenants.DefaultQuotas()
	for _, round := range []string{"first round (full bucket)", "next round (empty bucket)"} {
		res := load.round(kinds, apiPerClient)
		if len(res.errs) > 0 {
			b.Fatalf("%d clients failed, first: %v", len(res.errs), res.errs[0])
		}
		ok, limited := res.statuses[http.StatusOK], res.statuses[http.StatusTooManyRequests]
		if ok+limited != apiClients*apiPerClient {
			b.Fatalf("answers by status %v: only 200 and 429 expected", res.statuses)
		}
		if res.retry != limited {
			b.Errorf("%d of %d 429 answers had no Retry-After", limited-res.retry, limited)
		}
		b.Logf("default quota (%v requests/s, burst %d), %s: %d clients × %d requests in %v: %d answered (%.0f/s), %d got 429 rate-limited with Retry-After",
			def.RequestsPerSecond, def.RequestBurst, round, apiClients, apiPerClient, res.wall.Round(time.Millisecond),
			ok, float64(ok)/res.wall.Seconds(), limited)
	}
}

// measureAPI runs b.N rounds of load (every request must be answered 200)
// and reports latency percentiles, overall and by kind, and requests/s.
func measureAPI(b *testing.B, load *apiLoad, kinds []apiRequest, perClient int) {
	want := len(load.clients) * perClient
	all := map[string][]time.Duration{}
	var wall time.Duration
	b.ResetTimer()
	for range b.N {
		res := load.round(kinds, perClient)
		if len(res.errs) > 0 {
			b.Fatalf("%d clients failed, first: %v", len(res.errs), res.errs[0])
		}
		if res.statuses[http.StatusOK] != want {
			b.Fatalf("answers by status %v, want %d × 200", res.statuses, want)
		}
		for k, v := range res.latency {
			all[k] = append(all[k], v...)
		}
		wall += res.wall
	}
	b.StopTimer()
	var every []time.Duration
	for _, k := range kinds {
		v := all[k.name]
		slices.Sort(v)
		b.ReportMetric(percentile(v, 0.50), k.name+"-p50-ms")
		b.ReportMetric(percentile(v, 0.99), k.name+"-p99-ms")
		every = append(every, v...)
	}
	slices.Sort(every)
	b.ReportMetric(percentile(every, 0.50), "p50-ms")
	b.ReportMetric(percentile(every, 0.99), "p99-ms")
	b.ReportMetric(float64(len(every))/wall.Seconds(), "requests/s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkModuleUpload measures POST /v1/modules/{name} of the wordcount
// module (a Go-SDK module, ~2.8 MB), each iteration other bytes (a custom
// section with a counter), so that every upload is validated, stored and
// recorded as a new version; and, for comparison, validation alone
// (wasmhost Runtime.Compile):
//
//   - api: the whole upload through HTTP on 127.0.0.1: read the body, hash,
//     compile and validate (an instance runs to read the operator table),
//     write the object (fsync) and commit the records (fsync).
//   - compile-warm: Runtime.Compile of new bytes on a runtime that has
//     compiled the module before (as the platform's has, after the first
//     upload of a module: wazero keys its compiled code by the instrumented
//     module, which drops custom sections).
//   - compile-cold: Runtime.Compile on a fresh runtime without a cache:
//     what the first upload of new code costs (machine-code generation).
func BenchmarkModuleUpload(b *testing.B) {
	wc := moduleBytes(b, "wordcount")
	ctx := context.Background()
	b.Run("api", func(b *testing.B) {
		h := newHarness(b, platform.Options{})
		c := h.tenant("bench", tenants.Quotas{Modules: 1_000_000, RequestsPerSecond: 10_000, RequestBurst: 10_000})
		c.upload("wordcount", wc) // the first upload compiles the code
		b.SetBytes(int64(len(wc)))
		b.ResetTimer()
		for i := range b.N {
			v := c.upload("wordcount", variant(wc, i+1))
			if v.Version != i+2 {
				b.Fatalf("upload %d became version %d", i+1, v.Version)
			}
		}
		b.StopTimer()
		b.ReportMetric(ms(b.Elapsed())/float64(b.N), "ms/upload")
	})
	b.Run("compile-warm", func(b *testing.B) {
		rt, err := wasmhost.NewRuntime(ctx, wasmhost.Config{})
		if err != nil {
			b.Fatal(err)
		}
		defer rt.Close(ctx)
		m, err := rt.Compile(ctx, wc)
		if err != nil {
			b.Fatal(err)
		}
		defer m.Close(ctx)
		b.SetBytes(int64(len(wc)))
		b.ResetTimer()
		for i := range b.N {
			m, err := rt.Compile(ctx, variant(wc, i+1))
			if err != nil {
				b.Fatal(err)
			}
			_ = m.Close(ctx)
		}
		b.StopTimer()
		b.ReportMetric(ms(b.Elapsed())/float64(b.N), "ms/compile")
	})
	b.Run("compile-cold", func(b *testing.B) {
		b.SetBytes(int64(len(wc)))
		var took time.Duration
		for i := range b.N {
			b.StopTimer()
			rt, err := wasmhost.NewRuntime(ctx, wasmhost.Config{})
			if err != nil {
				b.Fatal(err)
			}
			bin := variant(wc, i+1)
			b.StartTimer()
			t0 := time.Now()
			m, err := rt.Compile(ctx, bin)
			took += time.Since(t0)
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			_ = m.Close(ctx)
			_ = rt.Close(ctx)
			b.StartTimer()
		}
		b.ReportMetric(ms(took)/float64(b.N), "ms/compile")
	})
}

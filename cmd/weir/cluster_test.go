package main

// Cluster mode end to end, with real processes: a `weir coordinator` and
// `weir worker`s on 127.0.0.1, tenants and jobs through the REST API, the
// Wasm examples as operators.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weirstream/weir/connectors"
	"github.com/weirstream/weir/platform/client"
	"github.com/weirstream/weir/tenants"
)

var weirBinary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// buildWeir builds the weir binary once per test run (without the race
// detector: the processes are the system under test, the test drives them).
func buildWeir(t testing.TB) string {
	t.Helper()
	weirBinary.once.Do(func() {
		weirBinary.dir, weirBinary.err = os.MkdirTemp("", "weir-bin-")
		if weirBinary.err != nil {
			return
		}
		weirBinary.path = filepath.Join(weirBinary.dir, "weir")
		out, err := exec.Command("go", "build", "-o", weirBinary.path, ".").CombinedOutput()
		if err != nil {
			weirBinary.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if weirBinary.err != nil {
		t.Fatal(weirBinary.err)
	}
	return weirBinary.path
}

var wasmBuilds sync.Map // example name -> path

// buildExample builds examples/<name> for Wasm once per test run.
func buildExample(t testing.TB, name string) []byte {
	t.Helper()
	p, ok := wasmBuilds.Load(name)
	if !ok {
		out := filepath.Join(buildWeirDir(t), name+".wasm")
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "../../examples/"+name)
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", name, err, b)
		}
		wasmBuilds.Store(name, out)
		p = out
	}
	b, err := os.ReadFile(p.(string))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func buildWeirDir(t testing.TB) string { buildWeir(t); return weirBinary.dir }

// proc is a weir process whose output the test reads.
type proc struct {
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	code int
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func startProc(t testing.TB, name string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, done: make(chan struct{})}
	p.cmd = exec.Command(buildWeir(t), args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("--- %s output:\n%s", p.name, tail(p.output(), 60))
		}
	})
	return p
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// waitFor waits until the process printed a match of re, and returns its
// submatches.
func (p *proc) waitFor(t testing.TB, re string, timeout time.Duration) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(timeout)
	for {
		if m := rx.FindStringSubmatch(p.output()); m != nil {
			return m
		}
		select {
		case <-p.done:
			if m := rx.FindStringSubmatch(p.output()); m != nil {
				return m
			}
			t.Fatalf("%s exited (%d) before printing %q:\n%s", p.name, p.code, re, tail(p.output(), 40))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not print %q within %s:\n%s", p.name, re, timeout, tail(p.output(), 40))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// rss returns the resident memory of the process in bytes.
func (p *proc) rss(t testing.TB) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`VmRSS:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no VmRSS in /proc/%d/status", p.cmd.Process.Pid)
	}
	kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return kb << 10
}

type testCluster struct {
	coord       *proc
	workers     []*proc
	url         string // REST API
	addr        string // cluster address
	admin       *client.Client
	token       string // admin key
	tenant      *client.Client
	tenantToken string
	data        string // coordinator data dir
	cache       string
	secret      string
}

const clusterSecret = "test-cluster-secret"

// startCluster starts a coordinator and workers workers of slots slots
// each, creates tenant "acme" with an owner key, and waits for the slots.
func startCluster(t testing.TB, workers, slots int, coordArgs ...string) *testCluster {
	t.Helper()
	c := &testCluster{data: t.TempDir(), cache: t.TempDir(), secret: clusterSecret}
	args := append([]string{"coordinator", "--listen", "127.0.0.1:0", "--cluster-listen", "127.0.0.1:0",
		"--data-dir", c.data, "--cache-dir", c.cache, "--heartbeat-timeout", "3s"}, coordArgs...)
	c.coord = startProc(t, "coordinator", []string{"WEIR_CLUSTER_SECRET=" + c.secret}, args...)
	m := c.coord.waitFor(t, `API (http://\S+)/v1`, 60*time.Second)
	c.url = m[1]
	c.addr = c.coord.waitFor(t, `--coordinator (\S+)`, 10*time.Second)[1]
	token := c.coord.waitFor(t, `admin API key[^\n]*\n\s+(\S+)`, 10*time.Second)[1]
	c.admin, c.token = client.New(c.url, token, nil), token
	for i := range workers {
		c.addWorker(t, fmt.Sprintf("w%d", i+1), slots, "WEIR_CLUSTER_SECRET="+c.secret)
	}
	c.waitSlots(t)
	ctx := context.Background()
	if _, err := c.admin.CreateTenant(ctx, "acme", testQuotas()); err != nil {
		t.Fatal(err)
	}
	k, err := c.admin.CreateKey(ctx, "acme", "test", tenants.RoleOwner, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.tenant, c.tenantToken = client.New(c.url, k.Token, nil), k.Token
	return c
}

func (c *testCluster) addWorker(t testing.TB, id string, slots int, env string, extra ...string) *proc {
	t.Helper()
	args := append([]string{"worker", "--coordinator", c.addr, "--slots", strconv.Itoa(slots), "--id", id,
		"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--cache-dir", c.cache}, extra...)
	p := startProc(t, "worker "+id, []string{env}, args...)
	c.workers = append(c.workers, p)
	return p
}

// waitSlots waits until the coordinator has registered every worker.
func (c *testCluster) waitSlots(t testing.TB) {
	t.Helper()
	re := fmt.Sprintf(`(?s)(cluster: worker registered.*){%d}`, len(c.workers))
	c.coord.waitFor(t, re, 60*time.Second)
}

// deploy uploads module name (an example) as tenant acme and deploys spec.
func (c *testCluster) deploy(t testing.TB, module string, spec string) string {
	t.Helper()
	ctx := context.Background()
	if _, _, err := c.tenant.UploadModule(ctx, module, buildExample(t, module)); err != nil {
		t.Fatal(err)
	}
	j, err := c.tenant.Deploy(ctx, []byte(spec), "", false)
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	return j.ID
}

// waitState waits until job id is in state want (failing on "failed").
func waitState(t testing.TB, cl *client.Client, id, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		d, err := cl.Job(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if string(d.State) == want {
			return
		}
		if d.State == "failed" || time.Now().After(deadline) {
			ex, _ := cl.Exceptions(context.Background(), id)
			t.Fatalf("job %s is %s, want %s (error %q; exceptions %+v)", id, d.State, want, d.Error, ex)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// windowedEvents writes n windowed-sum events over keys keys into the
// tenant file area, in event-time order up to a jitter below the job's
// out-of-orderness (so no record is late and output does not depend on
// timing).
func windowedEvents(t testing.TB, filesDir string, n, keys int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 5))
	var b strings.Builder
	const start = 1_700_000_000_000
	for i := range n {
		ts := int64(start + i*3 - rng.IntN(1500))
		fmt.Fprintf(&b, `{"key":"k%d","amount":%d,"ts":%d}`+"\n", rng.IntN(keys), rng.IntN(1000), ts)
	}
	if err := os.MkdirAll(filepath.Join(filesDir, "in"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(filesDir, "in", "events.jsonl"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// windowedSpec is a keyed windowed job at parallelism p.
func windowedSpec(p int) string {
	return fmt.Sprintf(`
name: windows
parallelism: %d
checkpoints: {interval: 300ms}
modules: {ws: windowed-sum@latest}
nodes:
  - id: events
    source: file
    parallelism: 1
    config: {path: in/events.jsonl, format: jsonl, timestampField: ts}
    watermarks: {outOfOrderness: 2s, interval: 0}
  - {id: parse, module: ws, operator: parse, inputs: [{from: events, partition: rebalance}]}
  - {id: sum, module: ws, operator: sum, inputs: [{from: parse, partition: key}]}
  - {id: out, sink: file, config: {path: out/windows, format: kv}, inputs: [sum]}
`, p)
}

func committedLines(t testing.TB, dir string) []string {
	t.Helper()
	recs, err := connectors.ReadCommitted(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = string(r)
	}
	sort.Strings(out)
	return out
}

// TestClusterMatchesStandalone: a keyed windowed job at parallelism 6 on a
// coordinator and 3 worker processes writes exactly what the same job
// writes in `weir standalone`.
func TestClusterMatchesStandalone(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	const events, keys = 40000, 60
	c := startCluster(t, 3, 3)
	windowedEvents(t, filepath.Join(c.data, "files", "acme"), events, keys)
	id := c.deploy(t, "windowed-sum", windowedSpec(6))
	waitState(t, c.tenant, id, "finished", 120*time.Second)
	got := committedLines(t, filepath.Join(c.data, "files", "acme", "out", "windows"))
	// Every worker ran tasks of the job (spread placement: 2 slots each).
	for _, w := range c.workers {
		if !strings.Contains(w.output(), "cluster: deployed") {
			t.Errorf("%s ran no task of the job", w.name)
		}
	}

	// The same job in standalone.
	sdata := t.TempDir()
	s := startProc(t, "standalone", nil, "standalone", "--listen", "127.0.0.1:0", "--data-dir", sdata, "--cache-dir", c.cache)
	url := s.waitFor(t, `API (http://\S+)/v1`, 60*time.Second)[1]
	token := s.waitFor(t, `admin API key[^\n]*\n\s+(\S+)`, 10*time.Second)[1]
	sc := &testCluster{admin: client.New(url, token, nil), data: sdata}
	ctx := context.Background()
	if _, err := sc.admin.CreateTenant(ctx, "acme", testQuotas()); err != nil {
		t.Fatal(err)
	}
	k, err := sc.admin.CreateKey(ctx, "acme", "test", tenants.RoleOwner, nil)
	if err != nil {
		t.Fatal(err)
	}
	sc.tenant = client.New(url, k.Token, nil)
	windowedEvents(t, filepath.Join(sdata, "files", "acme"), events, keys)
	sid := sc.deploy(t, "windowed-sum", windowedSpec(6))
	waitState(t, sc.tenant, sid, "finished", 120*time.Second)
	want := committedLines(t, filepath.Join(sdata, "files", "acme", "out", "windows"))
	if len(want) < keys {
		t.Fatalf("standalone wrote %d windows, expected at least one per key", len(want))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("cluster output (%d lines) differs from standalone (%d lines)", len(got), len(want))
	}
}

// countSpec: datagen → keyedcount (keyed state) → exactly-once file sink.
func countSpec(p, count, rate, keys int) string {
	return fmt.Sprintf(`
name: counts
parallelism: %d
checkpoints: {interval: 200ms}
restart: {strategy: fixed, attempts: 10, delay: 1s}
modules: {b: bench@latest}
nodes:
  - id: gen
    source: datagen
    config: {count: %d, rate: %d, key: {kind: sequence, start: 0, end: %d}}
  - {id: count, module: b, operator: keyedcount, inputs: [{from: gen, partition: key}]}
  - {id: out, sink: file, config: {path: out/counts, format: json}, inputs: [count]}
`, p, count, rate, keys-1)
}

// checkCounts verifies exactly-once output of countSpec: for every key the
// running counts 1..n appear once each, and the n add up to count.
func checkKeyedCounts(t testing.TB, dir string, count, keys int) {
	t.Helper()
	recs, err := connectors.ReadCommitted(dir)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]map[uint64]int{}
	for _, r := range recs {
		var line struct {
			Key         string `json:"key"`
			Value       string `json:"value"`
			ValueBase64 []byte `json:"valueBase64"`
		}
		if err := json.Unmarshal([]byte(r), &line); err != nil {
			t.Fatalf("output line %q: %v", r, err)
		}
		v := []byte(line.Value)
		if line.ValueBase64 != nil {
			v = line.ValueBase64
		}
		if len(v) != 8 {
			t.Fatalf("output line %q: value of %d bytes, want 8", r, len(v))
		}
		if seen[line.Key] == nil {
			seen[line.Key] = map[uint64]int{}
		}
		seen[line.Key][binary.BigEndian.Uint64(v)]++
	}
	total := 0
	for k, counts := range seen {
		n := uint64(len(counts))
		for i := uint64(1); i <= n; i++ {
			if counts[i] != 1 {
				t.Fatalf("key %s: count %d written %d times (exactly once expected); %d distinct counts", k, i, counts[i], n)
			}
		}
		total += int(n)
	}
	if len(seen) != keys || total != count {
		t.Fatalf("%d keys and %d records in the output, want %d and %d", len(seen), total, keys, count)
	}
}

// TestClusterKillWorkerExactlyOnce: kill -9 of a worker mid-job; the job
// restarts from its latest checkpoint on the other workers and its output
// is exactly once.
func TestClusterKillWorkerExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	const count, keys = 60000, 100
	c := startCluster(t, 3, 3)
	id := c.deploy(t, "bench", countSpec(6, count, 1500, keys))
	waitCheckpoints(t, c, id, 2) // then kill a worker running tasks
	victim := c.workers[1]
	if !strings.Contains(victim.output(), "cluster: deployed") {
		t.Fatal("the worker to kill runs no task")
	}
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-victim.done
	waitState(t, c.tenant, id, "finished", 180*time.Second)
	ex, err := c.tenant.Exceptions(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(ex) == 0 {
		t.Fatal("no failure recorded after a worker was killed")
	}
	if !strings.Contains(c.coord.output(), "cluster: worker lost") {
		t.Error("the coordinator logged no lost worker")
	}
	checkKeyedCounts(t, filepath.Join(c.data, "files", "acme", "out", "counts"), count, keys)
}

// scrape reads a /metrics endpoint and sums the samples of metric whose
// labels contain every want label.
func scrape(t testing.TB, url, token string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, b)
	}
	return string(b)
}

func sumMetric(text, metric string, labels ...string) (sum float64, n int) {
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, metric+"{") {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(line, l) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err == nil {
			sum += v
			n++
		}
	}
	return sum, n
}

// slowSpec: a fast source into a slow sink across workers, with small
// exchange buffers so that the in-flight bound is tight.
func slowSpec(count, sinkRate int) string {
	return fmt.Sprintf(`
name: slow
parallelism: 2
exchange: {batchBytes: 4096, buffers: 2}
nodes:
  - id: gen
    source: datagen
    config: {count: %d, valueSize: 100, key: {kind: sequence, start: 0, end: 999}}
  - {id: sink, sink: blackhole, config: {rate: %d}, inputs: [{from: gen, partition: key}]}
`, count, sinkRate)
}

// TestClusterSlowSinkBackpressure: a slow sink slows the sources across
// the network; records in flight stay within the channels' credits, the
// workers' memory stays bounded, and every record arrives. Meanwhile
// members with a wrong secret or protocol version are refused without
// disturbing the job.
func TestClusterSlowSinkBackpressure(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	const count, rate = 24000, 2000 // per sink subtask: 6 s
	c := startCluster(t, 2, 1)      // one slot each: subtask 0 on one worker, 1 on the other
	metricsURL := func(p *proc) string {
		return "http://" + p.waitFor(t, `metrics: http://(\S+)/metrics`, 10*time.Second)[1] + "/metrics"
	}
	urls := []string{metricsURL(c.workers[0]), metricsURL(c.workers[1])}
	ctx := context.Background()
	j, err := c.tenant.Deploy(ctx, []byte(slowSpec(count, rate)), "", false)
	if err != nil {
		t.Fatal(err)
	}
	// Bound on records between the sources and the sinks: 4 channels of
	// (2 credits + the batch being filled + the batch the sink holds) of
	// 4096-byte batches of records of at least 100 bytes.
	const inFlight = 4 * (2 + 2) * (4096/100 + 1)
	var maxGap float64
	var rss0 [2]int64
	var rssMax [2]int64
	refused := false
	deadline := time.Now().Add(90 * time.Second)
	start := time.Now()
	for {
		var produced, consumed float64
		for _, u := range urls {
			m := scrape(t, u, "")
			p, _ := sumMetric(m, "weir_task_records_out_total", `task="gen[`)
			s, _ := sumMetric(m, "weir_task_records_in_total", `task="sink[`)
			produced += p
			consumed += s
		}
		maxGap = max(maxGap, produced-consumed)
		for i, w := range c.workers[:2] {
			r := w.rss(t)
			if rss0[i] == 0 && consumed > 0 {
				rss0[i] = r
			}
			rssMax[i] = max(rssMax[i], r)
		}
		if !refused && consumed > count/4 {
			refused = true
			// The coordinator's /metrics (admin) shows the remote tasks.
			cm := scrape(t, c.url+"/metrics", c.token)
			if _, n := sumMetric(cm, "weir_task_records_in_total", `job="`+j.ID+`"`); n != 4 {
				t.Errorf("coordinator /metrics has %d task series of the job, want 4:\n%s", n, cm)
			}
			refuseMembers(t, c)
		}
		if consumed >= count {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %v of %d records consumed within 90 s", consumed, count)
		}
		time.Sleep(50 * time.Millisecond)
	}
	elapsed := time.Since(start)
	waitState(t, c.tenant, j.ID, "finished", 30*time.Second)
	if maxGap > inFlight {
		t.Errorf("up to %.0f records between sources and sinks, credits allow %d", maxGap, inFlight)
	}
	if min := time.Duration(float64(count/2) / rate * float64(time.Second)); elapsed < min*8/10 {
		t.Errorf("the job took %s; a sink of %d records/s per subtask needs %s", elapsed, rate, min)
	}
	for i := range rssMax {
		if grow := rssMax[i] - rss0[i]; grow > 48<<20 || rssMax[i] > 512<<20 {
			t.Errorf("worker %d memory: %d MiB at first, up to %d MiB (bound: +48 MiB, 512 MiB)", i+1, rss0[i]>>20, rssMax[i]>>20)
		}
		t.Logf("worker %d RSS: %d MiB → max %d MiB", i+1, rss0[i]>>20, rssMax[i]>>20)
	}
	t.Logf("max records in flight %.0f (bound %d), elapsed %s", maxGap, inFlight, elapsed.Round(time.Millisecond))
	// Every record arrived, and the source was held back (backpressure).
	var consumed, bp float64
	for _, u := range urls {
		m := scrape(t, u, "")
		s, _ := sumMetric(m, "weir_task_records_in_total", `task="sink[`)
		b, _ := sumMetric(m, "weir_task_backpressure_seconds_total", `task="gen[`)
		consumed += s
		bp += b
	}
	if consumed != count {
		t.Errorf("sinks consumed %.0f records, want %d", consumed, count)
	}
	if bp < 1 {
		t.Errorf("sources were blocked on output for %.2f s in all; a slow sink must hold them back", bp)
	}
	ex, _ := c.tenant.Exceptions(ctx, j.ID)
	if len(ex) != 0 {
		t.Errorf("the job failed meanwhile: %+v", ex)
	}
}

// refuseMembers starts a worker with a wrong secret and one speaking
// another protocol version: both are refused and exit, with a log line
// that says why, on their side and on the coordinator's.
func refuseMembers(t testing.TB, c *testCluster) {
	t.Helper()
	cases := []struct {
		name, env string
		args      []string
		worker    string // in the refused worker's log
		coord     string // in the coordinator's log
	}{
		{"wrong-secret", "WEIR_CLUSTER_SECRET=not-the-secret", nil, "refused: wrong cluster secret", "refused a peer with a wrong cluster secret"},
		{"old-protocol", "WEIR_CLUSTER_SECRET=" + c.secret, []string{"--protocol-version", "0"}, "protocol version 0 is not supported", "refused a peer speaking another protocol version"},
	}
	for _, tc := range cases {
		p := startProc(t, "worker "+tc.name, []string{tc.env}, append([]string{"worker", "--coordinator", c.addr, "--slots", "2", "--id", tc.name,
			"--listen", "127.0.0.1:0", "--metrics-listen", "", "--data-dir", t.TempDir(), "--cache-dir", c.cache}, tc.args...)...)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: the refused worker did not exit", tc.name)
		}
		if p.code == 0 {
			t.Errorf("%s: the refused worker exited 0", tc.name)
		}
		if !strings.Contains(p.output(), tc.worker) {
			t.Errorf("%s: the worker's log does not say %q:\n%s", tc.name, tc.worker, p.output())
		}
		if !strings.Contains(c.coord.output(), tc.coord) {
			t.Errorf("%s: the coordinator's log does not say %q", tc.name, tc.coord)
		}
	}
}

// testQuotas are the default quotas with room for the tests' polling.
func testQuotas() *tenants.Quotas {
	q := tenants.DefaultQuotas()
	q.Slots, q.RequestsPerSecond, q.RequestBurst = 16, 1000, 1000
	return &q
}

// TestCoordinatorRestartRecoversJobs: the coordinator is killed mid-job and
// started again on the same data directory and address; the workers
// register again and the job resumes from its latest checkpoint, exactly
// once.
func TestCoordinatorRestartRecoversJobs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	const count, keys = 40000, 50
	c := startCluster(t, 2, 3)
	id := c.deploy(t, "bench", countSpec(4, count, 1500, keys))
	waitCheckpoints(t, c, id, 2)
	if err := c.coord.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-c.coord.done
	// Same data directory, same cluster address: the workers find it again.
	c.coord = startProc(t, "coordinator (restarted)", []string{"WEIR_CLUSTER_SECRET=" + c.secret}, "coordinator",
		"--listen", "127.0.0.1:0", "--cluster-listen", c.addr, "--data-dir", c.data, "--cache-dir", c.cache, "--heartbeat-timeout", "3s")
	url := c.coord.waitFor(t, `API (http://\S+)/v1`, 60*time.Second)[1]
	tenant := client.New(url, c.tenantToken, nil)
	waitState(t, tenant, id, "finished", 180*time.Second)
	if !strings.Contains(c.coord.output(), "cluster: worker registered") {
		t.Error("no worker registered with the restarted coordinator")
	}
	checkKeyedCounts(t, filepath.Join(c.data, "files", "acme", "out", "counts"), count, keys)
}

// BenchmarkClusterKeyedCount compares a keyed count (datagen → keyedcount
// in Wasm → blackhole, parallelism 2) on a coordinator with 2 worker
// processes (one slot each: half of the records cross the network) with
// the same job in one `weir standalone` process. It reports records/s of
// both, their ratio, and the exchange overhead per record crossing.
//
//	go test -run '^$' -bench BenchmarkClusterKeyedCount -benchtime 3x ./cmd/weir/
func BenchmarkClusterKeyedCount(b *testing.B) {
	const records = 3_000_000
	spec := fmt.Sprintf(`
name: keyedcount
parallelism: 2
modules: {b: bench@latest}
nodes:
  - id: gen
    source: datagen
    config: {count: %d, valueSize: 100, key: {kind: sequence, start: 0, end: 99999}}
  - {id: count, module: b, operator: keyedcount, inputs: [{from: gen, partition: key}]}
  - {id: sink, sink: blackhole, inputs: [count]}
`, records)
	run := func(b *testing.B, cl *client.Client) time.Duration {
		j, err := cl.Deploy(context.Background(), []byte(spec), "", false)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for {
			d, err := cl.Job(context.Background(), j.ID)
			if err != nil {
				b.Fatal(err)
			}
			if d.State == "finished" {
				return time.Since(start)
			}
			if d.State == "failed" {
				b.Fatalf("job failed: %s", d.Error)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	tb := testing.TB(b)
	c := startCluster(tb, 2, 1)
	if _, _, err := c.tenant.UploadModule(context.Background(), "bench", buildExample(tb, "bench")); err != nil {
		b.Fatal(err)
	}
	sdata := b.TempDir()
	s := startProc(tb, "standalone", nil, "standalone", "--listen", "127.0.0.1:0", "--data-dir", sdata, "--cache-dir", c.cache)
	url := s.waitFor(tb, `API (http://\S+)/v1`, 60*time.Second)[1]
	token := s.waitFor(tb, `admin API key[^\n]*\n\s+(\S+)`, 10*time.Second)[1]
	admin := client.New(url, token, nil)
	if _, err := admin.CreateTenant(context.Background(), "acme", testQuotas()); err != nil {
		b.Fatal(err)
	}
	k, err := admin.CreateKey(context.Background(), "acme", "bench", tenants.RoleOwner, nil)
	if err != nil {
		b.Fatal(err)
	}
	single := client.New(url, k.Token, nil)
	if _, _, err := single.UploadModule(context.Background(), "bench", buildExample(tb, "bench")); err != nil {
		b.Fatal(err)
	}
	run(b, c.tenant) // warm up both (compilation caches)
	run(b, single)
	var tc, ts time.Duration
	b.ResetTimer()
	for range b.N {
		tc += run(b, c.tenant)
		ts += run(b, single)
	}
	b.StopTimer()
	n := float64(b.N)
	cr := records * n / tc.Seconds()
	sr := records * n / ts.Seconds()
	b.ReportMetric(cr, "cluster-rec/s")
	b.ReportMetric(sr, "single-rec/s")
	b.ReportMetric(cr/sr, "ratio")
	// Half of the records cross from one worker to the other.
	b.ReportMetric(float64(tc-ts)/n/(records/2), "ns/crossing-rec")
}

// waitCheckpoints waits until job id has completed n checkpoints while
// running.
func waitCheckpoints(t testing.TB, c *testCluster, id string, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		d, err := c.tenant.Job(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if d.Checkpoints.Completed >= n {
			return
		}
		if d.State == "failed" || d.State == "finished" || d.State == "canceled" || time.Now().After(deadline) {
			ex, _ := c.tenant.Exceptions(context.Background(), id)
			t.Fatalf("job is %s with %d checkpoints (want %d); exceptions %+v", d.State, d.Checkpoints.Completed, n, ex)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weirstream/weir/connectors"
	"github.com/weirstream/weir/platform"
	"github.com/weirstream/weir/platform/client/clienttest"
	"github.com/weirstream/weir/platform/jobs"
	"github.com/weirstream/weir/platform/registry"
	"github.com/weirstream/weir/runtime/clock"
	"github.com/weirstream/weir/tenants"
)

// The client tests' modules, built once per test binary. Two, because
// every upload is compiled (seconds under -race): wordcount's keyed
// "count" keeps the same state as counter's, so it is also counter's
// compatible upgrade.
var (
	cliModulesOnce sync.Once
	cliModules     map[string][]byte
	cliModulesErr  error
)

// cliModule writes a test module into dir and returns its path.
func cliModule(t *testing.T, dir, name string) string {
	t.Helper()
	cliModulesOnce.Do(func() {
		cliModules, cliModulesErr = clienttest.Modules(map[string]clienttest.Source{
			"wordcount":  {Pkg: "wordcount"},
			"counter-v1": {Pkg: "testdata/counter"},
		})
	})
	if cliModulesErr != nil {
		t.Fatal(cliModulesErr)
	}
	path := filepath.Join(dir, name+".wasm")
	if err := os.WriteFile(path, cliModules[name], 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// cliTimeout bounds every command and every wait of the tests.
const cliTimeout = 60 * time.Second

// weirCLI runs client commands against one server.
type weirCLI struct {
	t   *testing.T
	url string
}

// result is one command's outcome.
type result struct {
	code           int
	stdout, stderr string
}

// run runs `weir args...` with WEIR_TOKEN=token.
func (w weirCLI) run(token string, args ...string) result {
	w.t.Helper()
	return w.runCtx(context.Background(), token, args...)
}

func (w weirCLI) runCtx(ctx context.Context, token string, args ...string) result {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, cliTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	env := map[string]string{"WEIR_URL": w.url, "WEIR_TOKEN": token}
	c := &cli{stdout: &stdout, stderr: &stderr, getenv: func(k string) string { return env[k] }, clock: clock.Real{}, poll: 20 * time.Millisecond}
	code := c.run(ctx, args)
	return result{code, stdout.String(), stderr.String()}
}

// ok runs a command that must succeed.
func (w weirCLI) ok(token string, args ...string) string {
	w.t.Helper()
	r := w.run(token, args...)
	if r.code != exitOK {
		w.t.Fatalf("weir %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// json runs a command with -o json that must succeed and decodes its output.
func (w weirCLI) json(token string, v any, args ...string) {
	w.t.Helper()
	out := w.ok(token, append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		w.t.Fatalf("weir %s -o json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// fails runs a command that must exit with code and say want on stderr.
func (w weirCLI) fails(code int, want, token string, args ...string) result {
	w.t.Helper()
	r := w.run(token, args...)
	if r.code != code || !strings.Contains(r.stderr, want) {
		w.t.Fatalf("weir %s: exit %d, stderr %q; want exit %d saying %q", strings.Join(args, " "), r.code, r.stderr, code, want)
	}
	return r
}

// waitJob polls `job get -o json` until the job is in state.
func (w weirCLI) waitJob(token, id string, state jobs.State) jobs.Detail {
	w.t.Helper()
	deadline := time.Now().Add(cliTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var d jobs.Detail
		w.json(token, &d, "job", "get", id)
		if d.State == state {
			return d
		}
		if terminal(d.State) || time.Now().After(deadline) {
			w.t.Fatalf("job %s is %s (error %q), want %s", id, d.State, d.Error, state)
		}
		<-tick.C
	}
}

// waitRecords polls until the vertex holding node took n records in.
func (w weirCLI) waitRecords(token, id, node string, n int64) {
	w.t.Helper()
	deadline := time.Now().Add(cliTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var d jobs.Detail
		w.json(token, &d, "job", "get", id)
		for _, v := range d.Vertices {
			if v.RecordsIn >= n && strings.Contains("+"+strings.Join(v.Nodes, "+")+"+", "+"+node+"+") {
				return
			}
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("job %s: %d records did not reach %s (state %s)", id, n, node, d.State)
		}
		<-tick.C
	}
}

var tokenRE = regexp.MustCompile(`weir_[a-z2-7]{12}_[A-Za-z0-9_-]{43}`)

// wordCounts counts words as the wordcount module does for ASCII text.
func wordCounts(text string) map[string]int {
	out := map[string]int{}
	for _, w := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
	}) {
		out[w]++
	}
	return out
}

const cliInput = "To be or not to be\nthat is the question\nwhether tis nobler in the mind to suffer\n"

// TestClientCommands is a tenant's day through the CLI against a real
// server: an admin creates the tenant and its owner's key, the owner
// uploads a module, runs a word count to its correct output, and operates
// an unbounded job through savepoints, a rescale, an upgrade and a stop,
// watching its log.
func TestClientCommands(t *testing.T) {
	srv := clienttest.Start(t, platform.Options{})
	w := weirCLI{t: t, url: srv.URL}
	dir := t.TempDir()
	admin := srv.AdminToken

	// Admin: the tenant, its quotas and the owner's key.
	out := w.ok(admin, "tenant", "create", "acme", "--slots", "6", "--module-bytes", "32MiB")
	if !regexp.MustCompile(`slots\s+6\n`).MatchString(out) || !strings.Contains(out, "32.0 MiB") {
		t.Fatalf("tenant create output:\n%s", out)
	}
	var ts []tenants.Tenant
	w.json(admin, &ts, "tenant", "list")
	if len(ts) != 1 || ts[0].ID != "acme" || ts[0].Quotas.Slots != 6 {
		t.Fatalf("tenant list: %+v", ts)
	}
	w.ok(admin, "tenant", "quotas", "acme", "--savepoints", "7")
	var tv struct {
		tenants.Tenant
		Usage *tenants.Usage `json:"usage"`
	}
	w.json(admin, &tv, "tenant", "get", "acme")
	if tv.Quotas.Savepoints != 7 || tv.Quotas.Slots != 6 || tv.Quotas.ModuleBytes != 32<<20 || tv.Usage == nil {
		t.Fatalf("tenant quotas changed more than --savepoints: %+v", tv)
	}
	out = w.ok(admin, "key", "create", "--tenant", "acme", "--name", "ops", "--role", "owner")
	owner := tokenRE.FindString(out)
	if owner == "" || !strings.Contains(out, "shown only now") {
		t.Fatalf("key create printed no token:\n%s", out)
	}
	w.fails(exitFailed, "403 forbidden", owner, "tenant", "list")

	out = w.ok(owner, "me")
	if !regexp.MustCompile(`tenant\s+acme\n`).MatchString(out) || !regexp.MustCompile(`role\s+owner\n`).MatchString(out) {
		t.Fatalf("me:\n%s", out)
	}
	out = w.ok(owner, "quotas")
	if !regexp.MustCompile(`savepoints\s+7\s+0\n`).MatchString(out) {
		t.Fatalf("quotas:\n%s", out)
	}
	out = w.ok(owner, "key", "create", "--name", "ci", "--role", "viewer", "--expires", "720h")
	viewer := tokenRE.FindString(out)
	var keys []tenants.Key
	w.json(owner, &keys, "key", "list")
	if len(keys) != 2 {
		t.Fatalf("key list: %+v", keys)
	}
	for _, k := range keys {
		if k.Name == "ci" && (k.ExpiresAt == nil || time.Until(*k.ExpiresAt) < 719*time.Hour) {
			t.Fatalf("--expires 720h gave key %+v", k)
		}
	}

	// Modules.
	wcPath := cliModule(t, dir, "wordcount")
	out = w.ok(owner, "module", "upload", "wordcount", wcPath)
	if !strings.Contains(out, "wordcount@1") || !strings.Contains(out, "count (keyed)") {
		t.Fatalf("module upload:\n%s", out)
	}
	if out = w.ok(owner, "module", "upload", "wordcount", wcPath); !strings.Contains(out, "already are wordcount@1") {
		t.Fatalf("second upload of the same bytes:\n%s", out)
	}
	w.fails(exitFailed, "403 forbidden", viewer, "module", "upload", "x", wcPath)
	w.ok(owner, "module", "upload", "counter", cliModule(t, dir, "counter-v1"))
	out = w.ok(owner, "module", "list")
	if !regexp.MustCompile(`(?m)^counter\s+1\s+1\s`).MatchString(out) || !regexp.MustCompile(`(?m)^wordcount\s+1\s+1\s`).MatchString(out) {
		t.Fatalf("module list:\n%s", out)
	}
	var mv registry.Version
	w.json(owner, &mv, "module", "get", "wordcount", "1")
	if mv.Name != "wordcount" || mv.Version != 1 || len(mv.Operators) != 2 {
		t.Fatalf("module get: %+v", mv)
	}
	dl := filepath.Join(dir, "downloaded.wasm")
	w.ok(owner, "module", "download", "wordcount", "latest", "--out", dl)
	if a, b := mustRead(t, dl), mustRead(t, wcPath); !bytes.Equal(a, b) {
		t.Fatalf("downloaded %d bytes, uploaded %d", len(a), len(b))
	}

	// A bounded job to its correct output.
	srv.WriteFile(t, "acme", "in/input.txt", cliInput)
	spec := filepath.Join(dir, "wc.yaml")
	writeFile(t, spec, clienttest.WordcountSpec)
	var job jobs.Job
	w.json(owner, &job, "job", "deploy", spec)
	if job.ID == "" || job.Modules["wc"] != "wordcount@1" {
		t.Fatalf("deploy: %+v", job)
	}
	var list []jobs.Job
	w.json(owner, &list, "job", "list")
	if len(list) != 1 || list[0].ID != job.ID {
		t.Fatalf("job list -o json: %+v", list)
	}
	if out = w.ok(viewer, "job", "list"); !regexp.MustCompile(`(?m)^` + job.ID + `\s+wc\s+\w+\s+wc=wordcount@1\s+2\s`).MatchString(out) {
		t.Fatalf("job list table:\n%s", out)
	}
	w.waitJob(owner, job.ID, jobs.StateFinished)
	lines, err := connectors.ReadCommitted(filepath.Join(srv.FilesDir("acme"), "out"))
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, lines, wordCounts(cliInput))
	out = w.ok(owner, "job", "get", job.ID)
	for _, want := range []string{`(?m)^state\s+finished$`, `(?m)^graph:$`, `(?m)^  split\s+operator wc/split\s+parallelism 2\s+<- lines \(rebalance\)$`,
		`(?m)^  count\s+operator wc/count\s+parallelism 2\s+<- split \(key\)$`, `(?m)^  lines\s+source file\s+parallelism 1$`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Fatalf("job get lacks %q:\n%s", want, out)
		}
	}
	// A finished job's log ends a follow at once.
	if out = w.ok(owner, "job", "logs", job.ID, "--follow"); !strings.Contains(out, "job finished") {
		t.Fatalf("logs of the finished job:\n%s", out)
	}
	w.ok(owner, "job", "exceptions", job.ID)

	// Errors: the server's problem as a one-liner, exit 1.
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, "name: bad\nmodules: {wc: wordcount@1}\nstate: {backend: rocksdb}\ncheckpoints: {mode: sometimes}\nnodes:\n  - {id: a, source: file, config: {path: x}}\n  - {id: b, sink: print, inputs: [a]}\n")
	r := w.fails(exitFailed, "weir: 400 invalid-job-spec: ", owner, "job", "deploy", bad)
	if !strings.Contains(r.stderr, `state.backend: must be memory or pebble, got "rocksdb"; `) || !strings.Contains(r.stderr, `checkpoints.mode: `) || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("invalid spec: want one line naming every field:\n%s", r.stderr)
	}
	w.fails(exitFailed, `weir: 404 not-found: job "j-nope"`, owner, "job", "get", "j-nope")
	w.fails(exitFailed, "409 conflict", owner, "job", "cancel", job.ID)
	w.ok(owner, "job", "delete", job.ID)

	// An unbounded job: savepoint, idempotent retries, rescale, upgrade,
	// stop, with its log followed to the end.
	spec = filepath.Join(dir, "counter.yaml")
	writeFile(t, spec, clienttest.CounterSpec)
	w.json(owner, &job, "job", "deploy", spec)
	w.waitRecords(owner, job.ID, "count", 50)

	out = w.ok(owner, "job", "savepoint", job.ID, "--wait")
	spID := regexp.MustCompile(`savepoint\s+(\S+) \(checkpoint`).FindStringSubmatch(out)
	if spID == nil || !regexp.MustCompile(`state\s+done`).MatchString(out) {
		t.Fatalf("savepoint --wait:\n%s", out)
	}
	var op1, op2 jobs.Operation
	w.json(owner, &op1, "job", "savepoint", job.ID, "--request-id", "nightly-1")
	w.json(owner, &op2, "job", "savepoint", "--request-id", "nightly-1", job.ID, "--wait")
	if op1.ID == "" || op2.ID != op1.ID || !op2.Done || op2.Error != "" {
		t.Fatalf("the same request id gave operations %+v and %+v", op1, op2)
	}
	var sps []jobs.Savepoint
	w.json(owner, &sps, "savepoint", "list", "--job", job.ID)
	if len(sps) != 2 {
		t.Fatalf("savepoint list: %+v", sps)
	}
	w.ok(owner, "savepoint", "get", spID[1])

	w.ok(owner, "job", "rescale", job.ID, "count=2", "--wait")
	d := w.waitJob(owner, job.ID, jobs.StateRunning)
	if d.Graph[1].ID != "count" || d.Graph[1].Parallelism != 2 || d.Graph[0].Parallelism != 1 {
		t.Fatalf("after rescale count=2: %+v", d.Graph)
	}
	if out = w.ok(owner, "job", "upgrade", job.ID, "counter=wordcount@1", "--wait"); !regexp.MustCompile(`state\s+done\n(.*\n)*through savepoint\s+sp-`).MatchString(out) {
		t.Fatalf("upgrade --wait:\n%s", out)
	}
	if d = w.waitJob(owner, job.ID, jobs.StateRunning); d.Modules["counter"] != "wordcount@1" {
		t.Fatalf("after the upgrade: %v", d.Modules)
	}
	w.fails(exitFailed, "409 module-in-use", owner, "module", "delete", "wordcount", "1")
	if out = w.ok(owner, "job", "checkpoints", job.ID); !strings.Contains(out, "completed") {
		t.Fatalf("checkpoints:\n%s", out)
	}

	var follow result
	following := make(chan struct{})
	go func() {
		defer close(following)
		follow = w.run(owner, "job", "logs", job.ID, "--follow")
	}()
	var stop jobs.Operation
	w.json(owner, &stop, "job", "stop", job.ID, "--wait")
	var stopSP jobs.Savepoint
	if err := json.Unmarshal(stop.Result, &stopSP); err != nil || stopSP.ID == "" || !stop.Done {
		t.Fatalf("stop --wait -o json: %+v (%v)", stop, err)
	}
	select {
	case <-following:
	case <-time.After(cliTimeout):
		t.Fatal("job logs --follow did not end with the job")
	}
	if follow.code != exitOK || !strings.Contains(follow.stdout, "stop requested") || !strings.Contains(follow.stdout, "job stopped") {
		t.Fatalf("followed log: exit %d\n%s\n%s", follow.code, follow.stdout, follow.stderr)
	}
	var ops jobs.Operation
	w.json(owner, &ops, "operation", "get", stop.ID)
	if !ops.Done || ops.Kind != jobs.OpStop {
		t.Fatalf("operation get: %+v", ops)
	}

	// Deletes.
	w.ok(owner, "job", "delete", job.ID)
	w.ok(owner, "savepoint", "delete", spID[1])
	w.ok(owner, "module", "delete", "counter")
	w.ok(owner, "module", "delete", "wordcount", "1")
	w.ok(owner, "key", "revoke", keys[0].ID)
	w.ok(admin, "tenant", "delete", "acme")
	w.fails(exitFailed, "401 unauthenticated", owner, "me")
}

func checkCounts(t *testing.T, lines []string, want map[string]int) {
	t.Helper()
	got := map[string][]int{}
	for _, l := range lines {
		k, v, _ := strings.Cut(l, "\t")
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("output line %q is not word<TAB>count", l)
		}
		got[k] = append(got[k], n)
	}
	if len(got) != len(want) {
		t.Fatalf("%d words in the output, want %d: %v", len(got), len(want), got)
	}
	for word, n := range want {
		cs := got[word]
		sort.Ints(cs)
		for i := range n {
			if len(cs) != n || cs[i] != i+1 {
				t.Fatalf("word %q: running counts %v, want 1..%d", word, cs, n)
			}
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestClientUsage: command-line mistakes exit 2 with a message, before any
// request; help exits 0.
func TestClientUsage(t *testing.T) {
	spec := filepath.Join(t.TempDir(), "job.yaml")
	writeFile(t, spec, "name: x\n")
	// Port 1 refuses connections: a case that reached the network would
	// exit 1, not 2.
	const nowhere = "http://127.0.0.1:1"
	cases := []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string // in stderr, or in stdout for exit 0
	}{
		{"no token", map[string]string{}, []string{"me"}, exitUsage, "WEIR_TOKEN is not set"},
		{"no token, job list", map[string]string{"WEIR_URL": nowhere}, []string{"job", "list"}, exitUsage, "WEIR_TOKEN is not set"},
		{"bad url", map[string]string{"WEIR_URL": "ftp://x", "WEIR_TOKEN": "t"}, []string{"me"}, exitUsage, `WEIR_URL="ftp://x"`},
		{"no command", nil, []string{}, exitUsage, "job <command>"},
		{"group alone", nil, []string{"job"}, exitUsage, "usage: weir job <command>"},
		{"unknown verb", nil, []string{"job", "frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{"unknown group", nil, []string{"jobs"}, exitUsage, `unknown command "jobs"`},
		{"missing argument", nil, []string{"job", "get"}, exitUsage, "wrong number of arguments (0)"},
		{"extra argument", nil, []string{"job", "get", "a", "b"}, exitUsage, "wrong number of arguments (2)"},
		{"unknown flag", nil, []string{"job", "list", "--bogus"}, exitUsage, "flag provided but not defined: -bogus"},
		{"bad output", nil, []string{"job", "list", "-o", "yaml"}, exitUsage, `-o "yaml": use table or json`},
		{"flag value missing", nil, []string{"job", "stop", "j", "--request-id"}, exitUsage, "flag needs an argument"},
		{"bad int flag", nil, []string{"tenant", "create", "t", "--slots", "many"}, exitUsage, "invalid value"},
		{"bad size flag", nil, []string{"tenant", "create", "t", "--module-bytes", "lots"}, exitUsage, "is not a size"},
		{"quotas without a quota", nil, []string{"tenant", "quotas", "t"}, exitUsage, "name at least one quota"},
		{"key without role", nil, []string{"key", "create", "--name", "x"}, exitUsage, "--role is required"},
		{"key with a bad role", nil, []string{"key", "create", "--role", "boss"}, exitUsage, `role "boss" is unknown`},
		{"key with a bad expiry", nil, []string{"key", "create", "--role", "viewer", "--expires", "soon"}, exitUsage, `--expires "soon"`},
		{"upgrade without modules", nil, []string{"job", "upgrade", "j"}, exitUsage, "wrong number of arguments (1)"},
		{"upgrade with a bad pair", nil, []string{"job", "upgrade", "j", "wc"}, exitUsage, `"wc" is not ALIAS=REF`},
		{"rescale without a change", nil, []string{"job", "rescale", "j"}, exitUsage, "give --parallelism N and/or NODE=N"},
		{"rescale with a bad number", nil, []string{"job", "rescale", "j", "count=x"}, exitUsage, "count=x: the parallelism must be a positive integer"},
		{"missing spec file", nil, []string{"job", "deploy", "/nonexistent/job.yaml"}, exitUsage, "no such file"},
		{"allow-non-restored alone", nil, []string{"job", "deploy", spec, "--allow-non-restored-state"}, exitUsage, "needs --from-savepoint"},
		{"missing module file", nil, []string{"module", "upload", "m", "/nonexistent.wasm"}, exitUsage, "no such file"},
		{"download without --out", nil, []string{"module", "download", "m", "1"}, exitUsage, "--out FILE is required"},
		{"command help", nil, []string{"job", "get", "-h"}, exitOK, ""},
		{"group help", nil, []string{"job", "help"}, exitOK, "rescale ID [NODE=N...]"},
		{"unreachable server", nil, []string{"me"}, exitFailed, "cannot reach the Weir server (WEIR_URL=http://127.0.0.1:1)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := tc.env
			if env == nil {
				env = map[string]string{"WEIR_URL": nowhere, "WEIR_TOKEN": "weir_test"}
			}
			var stdout, stderr bytes.Buffer
			code := clientCommand(tc.args, &stdout, &stderr, func(k string) string { return env[k] })
			out := stderr.String()
			if tc.code == exitOK {
				out = stdout.String()
			}
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s\nwant %q", code, tc.code, stdout.String(), stderr.String(), tc.want)
			}
		})
	}
}

// TestInterleave: flags may follow positional arguments; values are
// taken only by flags that have one, and "--" ends the flags.
func TestInterleave(t *testing.T) {
	fs := flagSetFor(t, "job", "upgrade")
	cases := []struct {
		in, want string
	}{
		{"j wc=a@2 --wait --request-id r1", "--wait --request-id r1 j wc=a@2"},
		{"--wait j -o json wc=a@2", "--wait -o json j wc=a@2"},
		{"j --request-id=r1 --allow-non-restored-state x=y", "--request-id=r1 --allow-non-restored-state j x=y"},
		{"j -- --wait", "-- j --wait"},
	}
	for _, tc := range cases {
		args, err := interleave(fs, strings.Fields(tc.in))
		if got := strings.Join(args, " "); err != nil || got != tc.want {
			t.Errorf("interleave(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	// A value flag at the end would take a positional argument as its value.
	if args, err := interleave(fs, []string{"j", "--request-id"}); err == nil {
		t.Errorf("interleave(j --request-id) = %q, want an error", args)
	}
}

// flagSetFor builds the flag set of one command as runCommand does.
func flagSetFor(t *testing.T, groupName, verb string) *flag.FlagSet {
	t.Helper()
	for _, g := range clientGroups() {
		for i := range g.commands {
			if g.name == groupName && g.commands[i].verb == verb {
				return newFlagSet("weir "+groupName+" "+verb, &g.commands[i], &opts{}, io.Discard)
			}
		}
	}
	t.Fatalf("no command %s %s", groupName, verb)
	return nil
}

// TestSizesAndExpiry checks the parsers of size flags and --expires.
func TestSizesAndExpiry(t *testing.T) {
	sizes := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1048576", 1 << 20, true}, {"64MiB", 64 << 20, true}, {"1.5GiB", 3 << 29, true}, {"10MB", 10e6, true},
		{"2 KiB", 2048, true}, {"-1", 0, false}, {"MiB", 0, false}, {"1XB", 0, false},
	}
	for _, s := range sizes {
		got, err := parseSize(s.in)
		if (err == nil) != s.ok || got != s.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, ok %v", s.in, got, err, s.want, s.ok)
		}
	}
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	expiries := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"720h", now.Add(720 * time.Hour), true},
		{"30d", now.Add(30 * 24 * time.Hour), true},
		{"2031-01-01T00:00:00Z", time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{"-1h", time.Time{}, false}, {"0d", time.Time{}, false}, {"tomorrow", time.Time{}, false},
	}
	for _, e := range expiries {
		got, err := parseExpiry(e.in, now)
		if (err == nil) != e.ok || e.ok && !got.Equal(e.want) {
			t.Errorf("parseExpiry(%q) = %v, %v; want %v, ok %v", e.in, got, err, e.want, e.ok)
		}
	}
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 64 << 20: "64.0 MiB"} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
	}
}

// fakeOps is a server of long operations for the CLI's --wait: every
// operation it starts ends as end says, after one poll in progress.
type fakeOps struct {
	end        jobs.Operation
	mu         sync.Mutex
	requestIDs []string
	polls      int
}

func (f *fakeOps) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	f.mu.Lock()
	defer f.mu.Unlock()
	op := f.end
	switch {
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/v1/jobs/j-1/"):
		f.requestIDs = append(f.requestIDs, r.Header.Get("Idempotency-Key"))
		op.Done, op.Error, op.RolledBack = false, "", false
		w.WriteHeader(http.StatusAccepted)
	case r.Method == http.MethodGet && r.URL.Path == "/v1/operations/"+op.ID:
		f.polls++
		if f.polls == 1 || op.ID == "op-forever" {
			op.Done, op.Error, op.RolledBack = false, "", false
		}
	default:
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(map[string]any{"type": "urn:weir:problem:not-found", "title": "Not found", "status": 404, "detail": "no " + r.URL.Path})
		return
	}
	json.NewEncoder(w).Encode(op)
}

// TestWaitOutcomes: --wait prints the operation's end, exits 1 when it
// failed (saying "rolled back" when it was), and 130 when the wait is
// interrupted; the request id is random per command unless given.
func TestWaitOutcomes(t *testing.T) {
	base := jobs.Operation{ID: "op-1", Kind: jobs.OpUpgrade, Job: "j-1", Done: true}
	cases := []struct {
		name       string
		end        func(*jobs.Operation)
		args       []string
		code       int
		stdout     string // a regular expression
		stderr     string
		requestIDs []string // "" : any random one
	}{
		{"done", func(*jobs.Operation) {}, []string{"job", "upgrade", "j-1", "wc=wordcount@2", "--wait"}, exitOK,
			`state\s+done`, "", []string{""}},
		{"rolled back", func(op *jobs.Operation) {
			op.Error, op.RolledBack = "attempt 1 failed: state \"count\" is map state", true
		},
			[]string{"job", "upgrade", "j-1", "wc=wordcount@2", "--wait", "--request-id", "up-7"}, exitFailed,
			`state\s+failed, rolled back to the previous version`, `failed: attempt 1 failed: state "count" is map state; rolled back`, []string{"up-7"}},
		{"failed", func(op *jobs.Operation) { op.Kind, op.Error = jobs.OpRescale, "no slots" }, []string{"job", "rescale", "j-1", "--parallelism", "4", "--wait"}, exitFailed,
			`state\s+failed\n`, "rescale of job j-1 (operation op-1) failed: no slots", []string{""}},
		{"operation wait", func(op *jobs.Operation) { op.Error = "boom" }, []string{"operation", "wait", "op-1"}, exitFailed,
			`error\s+boom`, "failed: boom", nil},
		{"interrupted", func(op *jobs.Operation) { op.ID = "op-forever" }, []string{"job", "stop", "j-1", "--wait"}, exitStopped,
			"", "stopped waiting; operation op-forever goes on", []string{""}},
		{"no wait", func(op *jobs.Operation) {}, []string{"job", "savepoint", "j-1"}, exitOK,
			`weir operation wait op-1`, "", []string{""}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeOps{end: base}
			tc.end(&f.end)
			srv := httptest.NewServer(f)
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			r := weirCLI{t: t, url: srv.URL}.runCtx(ctx, "weir_test", tc.args...)
			if r.code != tc.code || !regexp.MustCompile(tc.stdout).MatchString(r.stdout) || !strings.Contains(r.stderr, tc.stderr) {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s\nwant stdout %q, stderr %q", r.code, tc.code, r.stdout, r.stderr, tc.stdout, tc.stderr)
			}
			if len(f.requestIDs) != len(tc.requestIDs) {
				t.Fatalf("request ids %q, want %d", f.requestIDs, len(tc.requestIDs))
			}
			for i, want := range tc.requestIDs {
				got := f.requestIDs[i]
				if want == "" && !regexp.MustCompile(`^req-[0-9a-f]{32}$`).MatchString(got) || want != "" && got != want {
					t.Fatalf("request id %q, want %q (empty: a random one)", got, want)
				}
			}
		})
	}
}

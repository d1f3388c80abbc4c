package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weirstream/weir/console"
	"github.com/weirstream/weir/platform"
	"github.com/weirstream/weir/platform/client"
	"github.com/weirstream/weir/platform/client/clienttest"
	"github.com/weirstream/weir/platform/jobs"
	"github.com/weirstream/weir/tenants"
)

// ---- The graph layout, as a pure function ----

// layoutNode builds a graph node with inputs "from" or "from:partition" or
// "from:partition:output".
func layoutNode(id, kind string, inputs ...string) jobs.GraphNode {
	n := jobs.GraphNode{ID: id, Kind: kind, Parallelism: 1}
	for _, in := range inputs {
		f := strings.Split(in, ":")
		e := jobs.GraphEdge{From: f[0]}
		if len(f) > 1 {
			e.Partition = f[1]
		}
		if len(f) > 2 {
			e.Output = f[2]
		}
		n.Inputs = append(n.Inputs, e)
	}
	return n
}

// layoutPlace is a node's expected column and row.
type layoutPlace struct{ layer, row int }

func TestLayoutGraph(t *testing.T) {
	tests := []struct {
		name  string
		nodes []jobs.GraphNode
		want  map[string]layoutPlace
		// lanes: edges (from->to) that must pass skipped columns through
		// lanes clear of every node.
		lanes []string
	}{
		{
			name: "chain",
			nodes: []jobs.GraphNode{
				layoutNode("src", "source"), layoutNode("a", "operator", "src:rebalance"), layoutNode("b", "operator", "a:key"), layoutNode("out", "sink", "b"),
			},
			want: map[string]layoutPlace{"src": {0, 0}, "a": {1, 0}, "b": {2, 0}, "out": {3, 0}},
		},
		{
			name: "chain listed backwards",
			nodes: []jobs.GraphNode{
				layoutNode("out", "sink", "b"), layoutNode("b", "operator", "a"), layoutNode("a", "operator", "src"), layoutNode("src", "source"),
			},
			want: map[string]layoutPlace{"src": {0, 0}, "a": {1, 0}, "b": {2, 0}, "out": {3, 0}},
		},
		{
			name: "diamond",
			nodes: []jobs.GraphNode{
				layoutNode("src", "source"), layoutNode("left", "operator", "src:key"), layoutNode("right", "operator", "src:broadcast"),
				layoutNode("join", "operator", "left", "right"), layoutNode("out", "sink", "join"),
			},
			want: map[string]layoutPlace{"src": {0, 0}, "left": {1, 0}, "right": {1, 1}, "join": {2, 0}, "out": {3, 0}},
		},
		{
			name: "two sources",
			nodes: []jobs.GraphNode{
				layoutNode("clicks", "source"), layoutNode("views", "source"), layoutNode("join", "operator", "clicks:key", "views:key"), layoutNode("out", "sink", "join"),
			},
			want: map[string]layoutPlace{"clicks": {0, 0}, "views": {0, 1}, "join": {1, 0}, "out": {2, 0}},
		},
		{
			name: "side output",
			nodes: []jobs.GraphNode{
				layoutNode("src", "source"), layoutNode("win", "operator", "src:key"), layoutNode("out", "sink", "win"), layoutNode("late", "sink", "win:forward:late"),
			},
			want: map[string]layoutPlace{"src": {0, 0}, "win": {1, 0}, "out": {2, 0}, "late": {2, 1}},
		},
		{
			// The longest path decides: b waits for a, so it is in column 2
			// although src feeds it directly, and that edge takes a lane.
			name: "longest path",
			nodes: []jobs.GraphNode{
				layoutNode("src", "source"), layoutNode("a", "operator", "src"), layoutNode("b", "operator", "a", "src:rebalance"), layoutNode("out", "sink", "b"),
			},
			want:  map[string]layoutPlace{"src": {0, 0}, "a": {1, 0}, "b": {2, 0}, "out": {3, 0}},
			lanes: []string{"src->b"},
		},
		{
			// Rows follow the inputs: the consumer of the lower source is
			// drawn lower although it is listed first.
			name: "crossing avoided",
			nodes: []jobs.GraphNode{
				layoutNode("s1", "source"), layoutNode("s2", "source"), layoutNode("f2", "operator", "s2"), layoutNode("f1", "operator", "s1"),
			},
			want: map[string]layoutPlace{"s1": {0, 0}, "s2": {0, 1}, "f1": {1, 0}, "f2": {1, 1}},
		},
		{
			name: "fan out",
			nodes: []jobs.GraphNode{
				layoutNode("src", "source"), layoutNode("a", "sink", "src:forward"), layoutNode("b", "sink", "src:key"), layoutNode("c", "sink", "src:broadcast"),
			},
			want: map[string]layoutPlace{"src": {0, 0}, "a": {1, 0}, "b": {1, 1}, "c": {1, 2}},
		},
		{
			// A main and a side output into one consumer: two edges
			// between the same nodes, which must not coincide.
			name: "twin edges",
			nodes: []jobs.GraphNode{
				layoutNode("src", "source"), layoutNode("op", "operator", "src"), layoutNode("out", "sink", "op", "op:forward:late"),
			},
			want: map[string]layoutPlace{"src": {0, 0}, "op": {1, 0}, "out": {2, 0}},
		},
		{
			name:  "unknown input ignored",
			nodes: []jobs.GraphNode{layoutNode("a", "operator", "ghost")},
			want:  map[string]layoutPlace{"a": {0, 0}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := console.LayoutGraph(tc.nodes)
			if len(g.Nodes) != len(tc.nodes) {
				t.Fatalf("%d nodes placed, want %d", len(g.Nodes), len(tc.nodes))
			}
			byID := map[string]console.NodePlace{}
			for i, n := range g.Nodes {
				if n.ID != tc.nodes[i].ID {
					t.Fatalf("node %d is %q, want %q (the graph's order)", i, n.ID, tc.nodes[i].ID)
				}
				byID[n.ID] = n
				if got := (layoutPlace{n.Layer, n.Row}); got != tc.want[n.ID] {
					t.Errorf("%s at column %d row %d, want column %d row %d", n.ID, got.layer, got.row, tc.want[n.ID].layer, tc.want[n.ID].row)
				}
				if n.X < 0 || n.Y < 0 || n.X+n.W > g.Width || n.Y+n.H > g.Height {
					t.Errorf("%s's box %+v leaves the drawing %dx%d", n.ID, n, g.Width, g.Height)
				}
			}
			checkLayoutGeometry(t, g, byID)
			// Every known input is an edge, in consumer then input order.
			var want []string
			for _, n := range tc.nodes {
				for k, in := range n.Inputs {
					if _, ok := byID[in.From]; ok {
						want = append(want, fmt.Sprintf("%s->%s#%d %s %s", in.From, n.ID, k, in.Partition, in.Output))
					}
				}
			}
			var got []string
			for _, e := range g.Edges {
				got = append(got, fmt.Sprintf("%s->%s#%d %s %s", e.From, e.To, e.Input, e.Partition, e.Output))
			}
			if strings.Join(got, ", ") != strings.Join(want, ", ") {
				t.Errorf("edges %v, want %v", got, want)
			}
			for _, e := range g.Edges {
				checkLayoutEdge(t, e, byID, slices.Contains(tc.lanes, e.From+"->"+e.To))
				if e.LabelY-18 < 0 || e.LabelY+18 > g.Height {
					t.Errorf("edge %s->%s: label at y %d leaves the drawing (height %d)", e.From, e.To, e.LabelY, g.Height)
				}
			}
			// Labels never overlap, and no two edges share their path.
			for i, a := range g.Edges {
				for _, b := range g.Edges[i+1:] {
					if a.LabelX == b.LabelX && layoutAbs(a.LabelY-b.LabelY) < 36 {
						t.Errorf("labels of %s->%s and %s->%s overlap: y %d and %d", a.From, a.To, b.From, b.To, a.LabelY, b.LabelY)
					}
					if a.Path == b.Path {
						t.Errorf("edges %s->%s and %s->%s share the path %s", a.From, a.To, b.From, b.To, a.Path)
					}
				}
			}
		})
	}
}

func layoutAbs(n int) int { return max(n, -n) }

// checkLayoutGeometry: columns go left to right by layer, rows top to bottom,
// and no two boxes overlap.
func checkLayoutGeometry(t *testing.T, g console.GraphLayout, byID map[string]console.NodePlace) {
	t.Helper()
	for _, a := range g.Nodes {
		for _, b := range g.Nodes {
			if a.ID == b.ID {
				continue
			}
			if a.Layer < b.Layer && a.X+a.W >= b.X {
				t.Errorf("%s (column %d) does not end left of %s (column %d)", a.ID, a.Layer, b.ID, b.Layer)
			}
			if a.Layer == b.Layer && a.Row < b.Row && a.Y+a.H > b.Y {
				t.Errorf("%s (row %d) overlaps %s (row %d) below it", a.ID, a.Row, b.ID, b.Row)
			}
		}
	}
}

var layoutPathNum = regexp.MustCompile(`-?\d+`)

// checkLayoutEdge: the path starts at the right side of the producer's box and
// ends at the left side of the consumer's, its label lies between the two
// columns, and an edge that skips columns runs straight through them at
// a height clear of every node there.
func checkLayoutEdge(t *testing.T, e console.EdgePlace, byID map[string]console.NodePlace, wantLane bool) {
	t.Helper()
	from, to := byID[e.From], byID[e.To]
	nums := layoutPathNum.FindAllString(e.Path, -1)
	if !strings.HasPrefix(e.Path, "M") || len(nums) < 8 {
		t.Fatalf("edge %s->%s: path %q", e.From, e.To, e.Path)
	}
	n := func(i int) int { v, _ := strconv.Atoi(nums[i]); return v }
	if n(0) != from.X+from.W || n(1) < from.Y || n(1) > from.Y+from.H {
		t.Errorf("edge %s->%s starts at %d,%d, not on the right side of %+v", e.From, e.To, n(0), n(1), from)
	}
	last := len(nums) - 2
	if n(last) != to.X || n(last+1) < to.Y || n(last+1) > to.Y+to.H {
		t.Errorf("edge %s->%s ends at %d,%d, not on the left side of %+v", e.From, e.To, n(last), n(last+1), to)
	}
	if e.LabelX <= from.X+from.W || e.LabelX >= from.X+from.W+110 {
		t.Errorf("edge %s->%s: label at x %d, not in the gap after %s", e.From, e.To, e.LabelX, e.From)
	}
	lanes := regexp.MustCompile(`L(\d+) (\d+)`).FindAllStringSubmatch(e.Path, -1)
	if wantLane != (len(lanes) > 0) {
		t.Errorf("edge %s->%s: path %q, want lanes %v", e.From, e.To, e.Path, wantLane)
	}
	for _, l := range lanes {
		x, _ := strconv.Atoi(l[1])
		y, _ := strconv.Atoi(l[2])
		for _, b := range byID {
			if x > b.X && x <= b.X+b.W && y >= b.Y && y <= b.Y+b.H {
				t.Errorf("edge %s->%s passes through %s at %d,%d", e.From, e.To, b.ID, x, y)
			}
		}
	}
}

func TestLayoutGraphEmptyAndCycle(t *testing.T) {
	if g := console.LayoutGraph(nil); g.Width != 0 || len(g.Nodes) != 0 || len(g.Edges) != 0 {
		t.Fatalf("empty graph laid out as %+v", g)
	}
	// A cycle cannot pass spec validation; the layout must still end and
	// draw every edge.
	g := console.LayoutGraph([]jobs.GraphNode{layoutNode("a", "operator", "b"), layoutNode("b", "operator", "a")})
	if len(g.Nodes) != 2 || len(g.Edges) != 2 || g.Nodes[0].Layer == g.Nodes[1].Layer {
		t.Fatalf("cycle laid out as %+v", g)
	}
}

// ---- The pages, against a real platform ----

var (
	jobWasmOnce sync.Once
	jobWasm     map[string][]byte
	jobWasmErr  error
)

// jobTestModule builds the test's modules once per test binary:
// examples/wordcount, and the counter that keeps its "count" state as a
// map, which cannot start from wordcount's savepoints (an upgrade to it
// rolls back).
func jobTestModule(t *testing.T, name string) []byte {
	t.Helper()
	jobWasmOnce.Do(func() {
		jobWasm, jobWasmErr = clienttest.Modules(map[string]clienttest.Source{
			"wordcount":       {Pkg: "wordcount"},
			"counter-mapkind": {Pkg: "testdata/counter", Tags: "mapkind"},
		})
	})
	if jobWasmErr != nil {
		t.Fatal(jobWasmErr)
	}
	return jobWasm[name]
}

// jobBrowser is a cookie-keeping HTTP client that does not follow
// redirects (the tests look at them).
// jobBrowser is a signed-in browser (session_test.go's).
type jobBrowser struct{ *browser }

func newJobBrowser(t *testing.T, base, token string) *jobBrowser {
	t.Helper()
	b := &jobBrowser{newBrowser(t, base)}
	if code, h, _ := b.do("POST", "/signin", url.Values{"token": {token}}); code != http.StatusSeeOther || h.Get("Location") != "/jobs" {
		t.Fatalf("sign-in: %d to %q", code, h.Get("Location"))
	}
	return b
}

// page GETs a page that must answer 200 and returns it with its CSRF token.
func (b *jobBrowser) page(path string) (string, string) {
	b.t.Helper()
	code, _, body := b.do("GET", path, nil)
	if code != http.StatusOK {
		b.t.Fatalf("GET %s: %d\n%s", path, code, body)
	}
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		b.t.Fatalf("GET %s: no CSRF token in the page", path)
	}
	return body, m[1]
}

// live GETs the job's live JSON.
func (b *jobBrowser) live(id string, after uint64) jobLiveJSON {
	b.t.Helper()
	code, h, body := b.do("GET", fmt.Sprintf("/jobs/%s/live?after=%d", id, after), nil)
	if code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		b.t.Fatalf("GET live: %d %s\n%s", code, h.Get("Content-Type"), body)
	}
	var l jobLiveJSON
	if err := json.Unmarshal([]byte(body), &l); err != nil {
		b.t.Fatalf("live JSON: %v\n%s", err, body)
	}
	return l
}

// jobLiveJSON is what the test reads of GET /jobs/{id}/live.
type jobLiveJSON struct {
	State      string `json:"state"`
	Generation int    `json:"generation"`
	Vertices   []struct {
		Nodes      []string `json:"nodes"`
		Key        string   `json:"key"`
		RecordsIn  int64    `json:"records_in"`
		RecordsOut int64    `json:"records_out"`
	} `json:"vertices"`
	Checkpoints jobs.CheckpointSummary `json:"checkpoints"`
	Logs        []struct {
		Seq     uint64 `json:"seq"`
		Message string `json:"message"`
		Clock   string `json:"clock"`
	} `json:"logs"`
	After uint64 `json:"after"`
}

// recordsIn is the records the vertex holding node took in.
func (l jobLiveJSON) recordsIn(layoutNode string) int64 {
	for _, v := range l.Vertices {
		for _, n := range v.Nodes {
			if n == layoutNode {
				return v.RecordsIn
			}
		}
	}
	return -1
}

// jobWaitFor polls cond until it holds, failing after the deadline.
func jobWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond) // well under the tenant's requests per second
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

const jobWordsSpec = `
name: words
parallelism: 1
modules: {wc: wordcount}
checkpoints: {interval: 200ms}
nodes:
  - {id: gen, source: datagen, config: {rate: 2000, value: {kind: oneOf, values: ["the quick brown fox", "jumps over the lazy dog"]}}}
  - {id: split, module: wc, operator: split, inputs: [{from: gen, partition: rebalance}]}
  - {id: count, module: wc, operator: count, inputs: [{from: split, partition: key}]}
  - {id: sink, sink: blackhole, inputs: [count]}
`

// jobCountingSpec is a keyed count straight from the source, so that its
// savepoint holds the count operator's state.
const jobCountingSpec = `
name: counting
parallelism: 1
modules: {wc: wordcount}
nodes:
  - {id: gen, source: datagen, config: {rate: 500, key: {kind: sequence, end: 9}}}
  - {id: count, module: wc, operator: count, inputs: [{from: gen, partition: key}]}
  - {id: sink, sink: blackhole, inputs: [count]}
`

// TestJobPage drives the job page of a running job against a real
// platform: the graph, tables and live data; a savepoint through its
// operation page; the forms' checks and confirmations; tenancy and roles.
func TestJobPage(t *testing.T) {
	srv := clienttest.Start(t, platform.Options{})
	ctx := context.Background()
	admin := client.New(srv.URL, srv.AdminToken, nil)
	for _, id := range []string{"acme", "other"} {
		if _, err := admin.CreateTenant(ctx, id, nil); err != nil {
			t.Fatal(err)
		}
	}
	key := func(tenant string, role tenants.Role) string {
		k, err := admin.CreateKey(ctx, tenant, string(role), role, nil)
		if err != nil {
			t.Fatal(err)
		}
		return k.Token
	}
	devToken, viewerToken, otherToken := key("acme", tenants.RoleDeveloper), key("acme", tenants.RoleViewer), key("other", tenants.RoleDeveloper)
	dev := client.New(srv.URL, devToken, nil)
	if _, _, err := dev.UploadModule(ctx, "wordcount", jobTestModule(t, "wordcount")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := dev.UploadModule(ctx, "counter", jobTestModule(t, "counter-mapkind")); err != nil {
		t.Fatal(err)
	}
	j, err := dev.Deploy(ctx, []byte(jobWordsSpec), "", false)
	if err != nil {
		t.Fatal(err)
	}
	jobURL := "/jobs/" + j.ID
	b := newJobBrowser(t, srv.URL, devToken)

	// Live data: the counts rise between two polls, and the log lines
	// continue after the sequence number given.
	first := b.live(j.ID, 0)
	if first.State != "running" || first.Generation != 1 {
		t.Fatalf("live: state %q generation %d", first.State, first.Generation)
	}
	var base int64
	jobWaitFor(t, "records to reach count", func() bool { base = b.live(j.ID, 0).recordsIn("count"); return base > 0 })
	var later jobLiveJSON
	jobWaitFor(t, "count's records to rise", func() bool { later = b.live(j.ID, 0); return later.recordsIn("count") > base })
	if later.After > 0 {
		if l := b.live(j.ID, later.After); len(l.Logs) > 0 && l.Logs[0].Seq <= later.After {
			t.Fatalf("live after %d returned line %d", later.After, l.Logs[0].Seq)
		}
	}
	jobWaitFor(t, "a completed checkpoint", func() bool { return b.live(j.ID, 0).Checkpoints.Completed > 0 })

	// The page: header, graph, tables.
	page, csrf := b.page(jobURL)
	for _, want := range []string{
		`<h1>words <span id="job-state" class="state state-running">running</span></h1>`,
		`<code>wc</code> → <code>wordcount@1</code>`,
		`<svg id="job-graph"`, `role="img"`, `<title id="job-graph-title">`, `<desc id="job-graph-desc">`,
		`data-node="gen"`, `data-node="split"`, `data-node="count"`, `data-node="sink"`,
		`>rebalance</text>`, `>key</text>`, `>default</text>`, `>source · datagen</text>`, `>operator · wc.split</text>`,
		`<table id="job-vertices">`, `<table id="job-checkpoints">`, `id="checkpoints-h"`, `id="job-logs"`, `id="job-chart"`,
		`aria-live="polite"`, `<script src="/static/job.js" defer></script>`,
		`action="/jobs/` + j.ID + `/savepoint"`, `action="/jobs/` + j.ID + `/upgrade"`, `action="/jobs/` + j.ID + `/rescale"`,
		`<option value="wordcount@1" selected>wordcount@1 (running)</option>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("job page lacks %s", want)
		}
	}
	// Edges within one vertex say "chained"; the others show the producer
	// vertex's rate. Which edges are chained is the engine's choice: read
	// it from the API's vertices.
	d, err := dev.Job(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameVertex := func(a, b string) bool {
		for _, v := range d.Vertices {
			if strings.Contains("+"+strings.Join(v.Nodes, "+")+"+", "+"+a+"+") && strings.Contains("+"+strings.Join(v.Nodes, "+")+"+", "+"+b+"+") {
				return true
			}
		}
		return false
	}
	for _, e := range [][2]string{{"gen", "split"}, {"split", "count"}, {"count", "sink"}} {
		re := regexp.MustCompile(`data-from="` + e[0] + `" data-to="` + e[1] + `">[\s\S]*?data-producer="` + e[0] + `"( data-chained="true")?>([^<]*)</text>`)
		m := re.FindStringSubmatch(page)
		if m == nil {
			t.Errorf("no rate label on edge %s->%s", e[0], e[1])
			continue
		}
		chained := sameVertex(e[0], e[1])
		if chained != (m[1] != "") || chained != (m[2] == "chained") || !chained && !strings.HasSuffix(m[2], "/s") {
			t.Errorf("edge %s->%s: label %q (chained attribute %q), chained in the engine: %v", e[0], e[1], m[2], m[1], chained)
		}
	}

	// A POST without the CSRF token is refused.
	if code, _, _ := b.do("POST", jobURL+"/savepoint", url.Values{}); code != http.StatusForbidden {
		t.Fatalf("savepoint without CSRF: %d, want 403", code)
	}

	// A savepoint: 303 to its operation, which completes; the savepoint is
	// then listed on the job page.
	code, h, body := b.do("POST", jobURL+"/savepoint", url.Values{"csrf": {csrf}, "request_id": {"sp-1"}})
	if code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/operations/") {
		t.Fatalf("savepoint: %d to %q\n%s", code, h.Get("Location"), body)
	}
	opURL := h.Get("Location")
	var op jobs.Operation
	jobWaitFor(t, "the savepoint operation", func() bool {
		code, _, body := b.do("GET", opURL+"?format=json", nil)
		if code != http.StatusOK || json.Unmarshal([]byte(body), &op) != nil {
			t.Fatalf("GET %s?format=json: %d\n%s", opURL, code, body)
		}
		return op.Done
	})
	if op.Error != "" || op.Kind != jobs.OpSavepoint || op.Job != j.ID {
		t.Fatalf("savepoint operation: %+v", op)
	}
	var sp jobs.Savepoint
	if err := json.Unmarshal(op.Result, &sp); err != nil || sp.ID == "" {
		t.Fatalf("savepoint result %s: %v", op.Result, err)
	}
	// The same form sent again (same request id) is the same operation.
	if _, h, _ := b.do("POST", jobURL+"/savepoint", url.Values{"csrf": {csrf}, "request_id": {"sp-1"}}); h.Get("Location") != opURL {
		t.Fatalf("resent savepoint form went to %q, want %q", h.Get("Location"), opURL)
	}
	opPage, _ := b.page(opURL)
	for _, want := range []string{"Savepoint of job " + j.ID, "Done.", sp.ID, `href="/jobs/` + j.ID + `"`} {
		if !strings.Contains(opPage, want) {
			t.Errorf("operation page lacks %q", want)
		}
	}
	if page, _ = b.page(jobURL); !strings.Contains(page, `<table id="job-savepoints">`) || !strings.Contains(page, "<code>"+sp.ID+"</code>") {
		t.Fatalf("job page does not list savepoint %s", sp.ID)
	}

	// The forms' own checks answer at the form, on the job page.
	for _, tc := range []struct {
		path string
		form url.Values
		want string
	}{
		{"/upgrade", url.Values{"module.wc": {"wordcount@1"}}, "Pick a module version other than the one the job runs."},
		{"/upgrade", url.Values{"module.wc": {"wordcount@7"}}, "wordcount@7"},
		{"/rescale", url.Values{}, "Give the job&#39;s parallelism, or a node&#39;s."},
		{"/rescale", url.Values{"parallelism": {"0"}}, "Parallelism: &#34;0&#34; is not a whole number of at least 1"},
		{"/rescale", url.Values{"node.count": {"two"}}, "Parallelism of count: &#34;two&#34; is not a whole number"},
	} {
		tc.form.Set("csrf", csrf)
		code, _, body := b.do("POST", jobURL+tc.path, tc.form)
		if code < 400 || code >= 500 || !strings.Contains(body, `id="action-error"`) || !strings.Contains(body, tc.want) {
			t.Errorf("POST %s %v: %d, want a 4xx job page saying %q\n%.3000s", tc.path, tc.form, code, tc.want, jobErrorOf(body))
		}
	}

	// Stop and cancel ask first without scripts.
	code, _, body = b.do("POST", jobURL+"/stop", url.Values{"csrf": {csrf}, "request_id": {"stop-1"}})
	if code != http.StatusOK || !strings.Contains(body, `name="confirm" value="yes"`) || !strings.Contains(body, `name="request_id" value="stop-1"`) ||
		!strings.Contains(body, `action="/jobs/`+j.ID+`/stop"`) {
		t.Fatalf("stop without confirm: %d, want the confirmation page\n%s", code, body)
	}
	code, _, body = b.do("POST", jobURL+"/cancel", url.Values{"csrf": {csrf}})
	if code != http.StatusOK || !strings.Contains(body, "Cancel words ("+j.ID+")?") || !strings.Contains(body, `name="confirm" value="yes"`) {
		t.Fatalf("cancel without confirm: %d, want the confirmation page\n%s", code, body)
	}
	if d, err := dev.Job(ctx, j.ID); err != nil || d.State != jobs.StateRunning {
		t.Fatalf("after an unconfirmed cancel the job is %s (%v), want running", d.State, err)
	}

	// A viewer sees the job but no forms, and the API refuses its POSTs.
	viewer := newJobBrowser(t, srv.URL, viewerToken)
	vpage, vcsrf := viewer.page(jobURL)
	if !strings.Contains(vpage, `data-node="count"`) || strings.Contains(vpage, `action="/jobs/`) || strings.Count(vpage, "<form") != 1 {
		t.Fatalf("viewer's job page has action forms (or no graph)")
	}
	if code, _, body := viewer.do("POST", jobURL+"/savepoint", url.Values{"csrf": {vcsrf}}); code != http.StatusForbidden || !strings.Contains(body, `id="action-error"`) {
		t.Fatalf("viewer's savepoint: %d, want 403 shown on the job page\n%s", code, jobErrorOf(body))
	}

	// Another tenant's job does not exist for it.
	other := newJobBrowser(t, srv.URL, otherToken)
	_, ocsrf := other.page("/jobs")
	if code, _, body := other.do("GET", jobURL, nil); code != http.StatusNotFound || !strings.Contains(body, "404 Not Found") {
		t.Fatalf("other tenant's GET %s: %d, want the 404 page", jobURL, code)
	}
	if code, _, body := other.do("GET", jobURL+"/live", nil); code != http.StatusNotFound || !strings.Contains(body, `"error"`) {
		t.Fatalf("other tenant's GET live: %d %s, want a 404 JSON error", code, body)
	}
	if code, _, _ := other.do("POST", jobURL+"/cancel", url.Values{"csrf": {ocsrf}}); code != http.StatusNotFound {
		t.Fatalf("other tenant's cancel: %d, want 404 (not a confirmation page)", code)
	}
	if code, _, _ := other.do("GET", opURL, nil); code != http.StatusNotFound {
		t.Fatalf("other tenant's GET %s: %d, want 404", opURL, code)
	}

	// A rescale of one node: its operation completes, and the page shows
	// the new generation with the node's new parallelism.
	code, h, body = b.do("POST", jobURL+"/rescale", url.Values{"csrf": {csrf}, "node.split": {"2"}})
	if code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/operations/") {
		t.Fatalf("rescale: %d to %q\n%s", code, h.Get("Location"), jobErrorOf(body))
	}
	rescaleURL := h.Get("Location")
	jobWaitFor(t, "the rescale operation", func() bool {
		_, _, body := b.do("GET", rescaleURL+"?format=json", nil)
		op = jobs.Operation{}
		return json.Unmarshal([]byte(body), &op) == nil && op.Done
	})
	if op.Error != "" || op.Kind != jobs.OpRescale {
		t.Fatalf("rescale operation: %+v", op)
	}
	page, csrf = b.page(jobURL)
	if !strings.Contains(page, `<dt>Generation</dt><dd>2`) ||
		!regexp.MustCompile(`data-node="split"[\s\S]*?<text class="node-par"[^>]*>×2</text>`).MatchString(page) {
		t.Fatalf("job page after the rescale does not show generation 2 with split ×2")
	}

	// An upgrade that cannot start rolls back; the operation page says
	// so, with the reason.
	counting, err := dev.Deploy(ctx, []byte(jobCountingSpec), "", false)
	if err != nil {
		t.Fatal(err)
	}
	countingURL := "/jobs/" + counting.ID
	jobWaitFor(t, "records to reach the counting job's count", func() bool { return b.live(counting.ID, 0).recordsIn("count") > 0 })
	page, _ = b.page(countingURL)
	if !strings.Contains(page, `<option value="counter@1">counter@1</option>`) {
		t.Fatalf("the upgrade form does not offer counter@1")
	}
	code, h, body = b.do("POST", countingURL+"/upgrade", url.Values{"csrf": {csrf}, "module.wc": {"counter@1"}})
	if code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/operations/") {
		t.Fatalf("upgrade: %d to %q\n%s", code, h.Get("Location"), jobErrorOf(body))
	}
	upgradeURL := h.Get("Location")
	jobWaitFor(t, "the upgrade operation", func() bool {
		_, _, body := b.do("GET", upgradeURL+"?format=json", nil)
		op = jobs.Operation{}
		return json.Unmarshal([]byte(body), &op) == nil && op.Done
	})
	if !op.RolledBack || op.Error == "" {
		t.Fatalf("upgrade to the map-state counter: %+v, want a rollback", op)
	}
	opPage, _ = b.page(upgradeURL)
	if !strings.Contains(opPage, `<div class="error rolled-back" role="alert">`) || !strings.Contains(opPage, "<strong>Reason:</strong>") ||
		!strings.Contains(html.UnescapeString(opPage), op.Error) {
		t.Fatalf("the rolled-back upgrade's page does not show the rollback and its reason %q\n%s", op.Error, opPage)
	}
	if d, err := dev.Job(ctx, counting.ID); err != nil || d.Modules["wc"] != "wordcount@1" {
		t.Fatalf("after the rollback the job runs %v (%v), want wordcount@1", d.Modules, err)
	}

	// Confirmed, the cancel happens; the page then offers nothing to do.
	code, h, _ = b.do("POST", jobURL+"/cancel", url.Values{"csrf": {csrf}, "confirm": {"yes"}})
	if code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), jobURL+"?flash=") {
		t.Fatalf("confirmed cancel: %d to %q", code, h.Get("Location"))
	}
	if d, err := dev.Job(ctx, j.ID); err != nil || d.State != jobs.StateCanceled {
		t.Fatalf("after cancel the job is %s (%v)", d.State, err)
	}
	page, _ = b.page(h.Get("Location"))
	if !strings.Contains(page, `class="state state-canceled">canceled</span>`) || !strings.Contains(page, `role="status">Job `+j.ID+` is canceled.`) ||
		strings.Contains(page, `action="/jobs/`+j.ID+`/cancel"`) || !strings.Contains(page, `data-over="true"`) {
		t.Fatalf("canceled job's page\n%s", page)
	}
}

// jobErrorOf is the error paragraph of a page, for failure messages.
func jobErrorOf(page string) string {
	if i := strings.Index(page, `class="error"`); i >= 0 {
		return page[i:min(len(page), i+400)]
	}
	return page
}

// BenchmarkLayoutGraph lays out a 30-node graph (ten stages of three,
// each node fed by every node of the stage before, and a skip edge from
// each source to the last stage): what a job page view costs in layout.
func BenchmarkLayoutGraph(b *testing.B) {
	var nodes []jobs.GraphNode
	for s := range 10 {
		for k := range 3 {
			n := jobs.GraphNode{ID: fmt.Sprintf("n%d_%d", s, k), Kind: "operator", Parallelism: 4}
			if s > 0 {
				for p := range 3 {
					n.Inputs = append(n.Inputs, jobs.GraphEdge{From: fmt.Sprintf("n%d_%d", s-1, p), Partition: "key"})
				}
			}
			if s == 9 {
				n.Inputs = append(n.Inputs, jobs.GraphEdge{From: fmt.Sprintf("n0_%d", k), Partition: "rebalance"})
			}
			nodes = append(nodes, n)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if g := console.LayoutGraph(nodes); len(g.Edges) != 9*9+3 {
			b.Fatalf("%d edges", len(g.Edges))
		}
	}
}

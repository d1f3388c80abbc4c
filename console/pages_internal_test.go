package console

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/weirstream/weir/platform/api"
	"github.com/weirstream/weir/platform/jobs"
	"github.com/weirstream/weir/platform/registry"
	"github.com/weirstream/weir/runtime"
	"github.com/weirstream/weir/tenants"
)

func TestParseFieldPath(t *testing.T) {
	key := func(k string) pathStep { return pathStep{key: k} }
	idx := func(i int) pathStep { return pathStep{index: i, isIndex: true} }
	for _, tc := range []struct {
		in   string
		want []pathStep
	}{
		{"parallelism", []pathStep{key("parallelism")}},
		{"checkpoints.interval", []pathStep{key("checkpoints"), key("interval")}},
		{"nodes[1] (count).inputs[0].partition", []pathStep{key("nodes"), idx(1), key("inputs"), idx(0), key("partition")}},
		{"nodes[0]", []pathStep{key("nodes"), idx(0)}},
		{"nodes[2] (a.b).config.values[3]", []pathStep{key("nodes"), idx(2), key("config"), key("values"), idx(3)}},
		{"modules.wc.ref", []pathStep{key("modules"), key("wc"), key("ref")}},
		{"nodes.count", []pathStep{key("nodes"), key("count")}},
		{"", nil},
	} {
		if got := parseFieldPath(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseFieldPath(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

// annotatedSpec numbers its lines in the comments at their ends, so the
// expected lines below can be checked by eye.
const annotatedSpec = `name: wc                                   # 1
parallelism: 2                             # 2
modules:                                   # 3
  wc: wordcount@9                          # 4
restart: {strategy: fixed, delay: 100ms}   # 5
nodes:                                     # 6
  - id: lines                              # 7
    source: datagen                        # 8
  - id: count                              # 9
    module: wc                             # 10
    operator: count                        # 11
    inputs:                                # 12
      - from: lines                        # 13
        partition: hash                    # 14
  - {id: out, sink: print, inputs: [count]} # 15
`

func TestAnnotateSpecPlacesErrorsAtTheirLines(t *testing.T) {
	for _, tc := range []struct {
		field, problem string
		line           int
	}{
		{"nodes[1] (count).inputs[0].partition", "must be forward, key, rebalance or broadcast", 14},
		{"modules.wc.ref", "no version 9", 4}, // a shorthand ref: the key's line
		{"restart.delay", "must be at least 1s", 5},
		{"nodes[2] (out).sink", "unknown sink", 15},
		{"nodes[2] (out).inputs[0]", "no such node", 15},
		{"nodes[1] (count)", "must set exactly one of source, operator or sink", 9},
		{"nodes[1] (count).config.count", "cannot use string", 9}, // no config: the node
		{"nodes.count", "parallelism must be positive", 9},        // named, not counted
		{"nodes[7].id", "required", 6},                            // no such item: the list
		{"from_savepoint", "no savepoint sp-1", 0},                // not in the spec: the top
		{"", "line 3: mapping values are not allowed here", 3},
		{"", "a job needs a name", 0},
	} {
		a := annotateSpec(annotatedSpec, []api.FieldProblem{{Field: tc.field, Problem: tc.problem}}, "")
		if len(a.Summary) != 1 || a.Summary[0].Line != tc.line {
			t.Errorf("%q: placed at %+v, want line %d", tc.field, a.Summary, tc.line)
			continue
		}
		for _, l := range a.Lines {
			want := 0
			if l.N == tc.line {
				want = 1
			}
			if len(l.Errors) != want {
				t.Errorf("%q: line %d has %d errors, want %d", tc.field, l.N, len(l.Errors), want)
			}
		}
		if tc.line == 0 && (len(a.Unplaced) != 1 || a.Unplaced[0].Problem != tc.problem) {
			t.Errorf("%q: unplaced = %+v", tc.field, a.Unplaced)
		}
	}
}

func TestAnnotateSpecKeepsLinesAndOrder(t *testing.T) {
	spec := "a: 1\r\n\nb:\n  c: 2" // no final newline; a blank line
	a := annotateSpec(strings.ReplaceAll(spec, "\r\n", "\n"), []api.FieldProblem{
		{Field: "b.c", Problem: "second"}, {Field: "a", Problem: "first"}, {Field: "b.c", Problem: "third"},
	}, "")
	var texts []string
	for _, l := range a.Lines {
		texts = append(texts, l.Text)
	}
	if want := []string{"a: 1", "", "b:", "  c: 2"}; !reflect.DeepEqual(texts, want) {
		t.Fatalf("lines %q, want %q", texts, want)
	}
	if got := a.Lines[3].Errors; len(got) != 2 || got[0].Problem != "second" || got[1].Problem != "third" {
		t.Errorf("line 4 errors %+v, want second then third", got)
	}
	var order []string
	for _, e := range a.Summary {
		order = append(order, e.Problem)
	}
	if want := []string{"second", "first", "third"}; !reflect.DeepEqual(order, want) {
		t.Errorf("summary order %q, want the API's %q", order, want)
	}
	// No errors[]: the detail is the one error.
	if a := annotateSpec("x: [", nil, "line 1: did not find expected node content"); len(a.Summary) != 1 || a.Summary[0].Line != 1 {
		t.Errorf("a detail only: %+v", a.Summary)
	}
	// A spec that does not parse places fields nowhere, lines by number.
	a = annotateSpec("nodes: [\n", []api.FieldProblem{{Field: "nodes", Problem: "x"}, {Problem: "line 9: beyond the end"}}, "")
	if a.Summary[0].Line != 0 || a.Summary[1].Line != 0 {
		t.Errorf("unparsable spec: %+v", a.Summary)
	}
}

func TestStarterSpec(t *testing.T) {
	for _, tc := range []struct {
		name string
		ops  []registry.Operator
		// want is each node's id, kind and partitioning of its input.
		want [][3]string
	}{
		{"wordcount", []registry.Operator{{Name: "split"}, {Name: "count", Keyed: true}}, [][3]string{
			{"sentences", "source", ""}, {"split", "operator", "rebalance"}, {"count", "operator", "key"}, {"log", "sink", "rebalance"}}},
		{"odd.names", []registry.Operator{{Name: "log"}, {Name: "sentences", Keyed: true}, {Name: "a b/c"}}, [][3]string{
			{"sentences", "source", ""}, {"log", "operator", "rebalance"}, {"sentences-2", "operator", "key"}, {"a-b-c", "operator", "rebalance"}, {"log-2", "sink", "rebalance"}}},
		{"none", nil, [][3]string{{"sentences", "source", ""}, {"log", "sink", "rebalance"}}},
	} {
		v := registry.Version{Name: tc.name, Version: 3, Operators: tc.ops}
		text := starterSpec(v)
		spec, err := runtime.ParseSpec([]byte(text))
		if err != nil {
			t.Fatalf("%s: the starter spec does not parse: %v\n%s", tc.name, err, text)
		}
		if spec.Name != tc.name || spec.Modules[tc.name].Ref != tc.name+"@3" {
			t.Errorf("%s: name %q, modules %+v", tc.name, spec.Name, spec.Modules)
		}
		var got [][3]string
		for i, n := range spec.Nodes {
			part := ""
			if len(n.Inputs) == 1 {
				part = n.Inputs[0].Partition
				if prev := spec.Nodes[i-1].ID; n.Inputs[0].From != prev {
					t.Errorf("%s: node %s reads %s, want %s", tc.name, n.ID, n.Inputs[0].From, prev)
				}
			}
			got = append(got, [3]string{n.ID, n.Kind().String(), part})
			if n.Kind() == runtime.KindOperator && (n.Module != tc.name || n.Operator != tc.ops[i-1].Name) {
				t.Errorf("%s: node %s runs %s/%s", tc.name, n.ID, n.Module, n.Operator)
			}
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: nodes %v, want %v\n%s", tc.name, got, tc.want, text)
		}
		if !strings.Contains(text, "# Operators of the module:") {
			t.Errorf("%s: the starter spec does not list the operators", tc.name)
		}
	}
}

func TestYAMLScalar(t *testing.T) {
	for in, want := range map[string]string{
		"count": "count", "a.b-c_d": "a.b-c_d", "true": `"true"`, "12": `"12"`, "a: b": `"a: b"`, "x#y": `"x#y"`, "": `""`, `q"`: `"q\""`,
	} {
		if got := yamlScalar(in); got != want {
			t.Errorf("yamlScalar(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestModuleNameFromFile(t *testing.T) {
	for in, want := range map[string]string{
		"wordcount.wasm":          "wordcount",
		"WordCount v2.WASM":       "wordcount-v2",
		`C:\build\fraud_v1.wasm`:  "fraud_v1",
		"/tmp/x/--my  mod!!.wasm": "my-mod",
		"___.wasm":                "",
		strings.Repeat("a", 70):   strings.Repeat("a", 63),
	} {
		if got := moduleNameFromFile(in); got != want {
			t.Errorf("moduleNameFromFile(%q) = %q, want %q", in, got, want)
		} else if got != "" {
			if err := registry.ValidateName(got); err != nil {
				t.Errorf("moduleNameFromFile(%q) = %q, not a valid name: %v", in, got, err)
			}
		}
	}
}

func TestJobListRate(t *testing.T) {
	graph := []jobs.GraphNode{{ID: "src", Kind: "source"}, {ID: "op", Kind: "operator"}, {ID: "out", Kind: "sink"}, {ID: "late", Kind: "sink"}}
	for _, tc := range []struct {
		name string
		vs   []jobs.Vertex
		want float64
	}{
		{"sinks' input summed", []jobs.Vertex{
			{Nodes: []string{"src"}, RecordsOutPerSecond: 100},
			{Nodes: []string{"op"}, RecordsInPerSecond: 100, RecordsOutPerSecond: 40},
			{Nodes: []string{"out"}, RecordsInPerSecond: 30},
			{Nodes: []string{"late"}, RecordsInPerSecond: 10}}, 40},
		{"a sink chained behind an operator", []jobs.Vertex{
			{Nodes: []string{"src"}, RecordsOutPerSecond: 100},
			{Nodes: []string{"op", "out"}, RecordsInPerSecond: 90}}, 90},
		{"all in one chain: the source's output", []jobs.Vertex{
			{Nodes: []string{"src", "op", "out"}, RecordsOutPerSecond: 55}}, 55},
		{"sinks idle: the source's output", []jobs.Vertex{
			{Nodes: []string{"src"}, RecordsOutPerSecond: 7}, {Nodes: []string{"out"}}}, 7},
		{"no vertices", nil, 0},
	} {
		if got := jobListRate(jobs.Detail{Graph: graph, Vertices: tc.vs}); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestParseQuotas(t *testing.T) {
	q, bad := parseQuotas(map[string]string{
		"slots": "3", "memory_pages": "70000", "call_timeout": "1m30s", "modules": "", "module_bytes": "1048576",
		"state_bytes": "0", "retained_checkpoints": "2", "savepoints": "4", "requests_per_second": "2.5", "request_burst": "10",
	})
	want := tenants.Quotas{Slots: 3, MemoryPages: 70000, CallTimeout: tenants.Duration(90 * time.Second), ModuleBytes: 1 << 20,
		RetainedCheckpoints: 2, Savepoints: 4, RequestsPerSecond: 2.5, RequestBurst: 10}
	if len(bad) != 0 || q != want {
		t.Fatalf("parseQuotas = %+v, %v; want %+v", q, bad, want)
	}
	_, bad = parseQuotas(map[string]string{"slots": "many", "memory_pages": "-1", "call_timeout": "soon", "requests_per_second": "fast", "module_bytes": "1.5"})
	var fields []string
	for _, b := range bad {
		fields = append(fields, b.Field)
	}
	if want := []string{"slots", "memory_pages", "call_timeout", "module_bytes", "requests_per_second"}; !reflect.DeepEqual(fields, want) {
		t.Errorf("bad fields %v, want %v", fields, want)
	}
	// Every quota has a row and a form field, in the API's order.
	var names []string
	for _, r := range quotaRows(tenants.DefaultQuotas(), nil) {
		names = append(names, r.Field)
	}
	if want := []string{"slots", "memory_pages", "call_timeout", "modules", "module_bytes", "state_bytes", "retained_checkpoints", "savepoints", "requests_per_second", "request_burst"}; !reflect.DeepEqual(names, want) {
		t.Errorf("quota rows %v, want %v", names, want)
	}
}

func TestShownProblemFieldProblem(t *testing.T) {
	p := &shownProblem{Fields: []api.FieldProblem{{Field: "quotas.slots", Problem: "a"}, {Field: "slots", Problem: "b"}, {Field: "name", Problem: "c"}}}
	if got := p.FieldProblem("slots"); got != "a; b" {
		t.Errorf("slots: %q", got)
	}
	if got := p.FieldProblem("role"); got != "" {
		t.Errorf("role: %q", got)
	}
	if got := (*shownProblem)(nil).FieldProblem("slots"); got != "" {
		t.Errorf("nil: %q", got)
	}
}

func TestTokenReveals(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s := newTokenReveals(func() time.Time { return now })
	s.put("s1", tokenReveal{Scope: "tenant", Token: "weir_a"})
	if _, ok := s.take("s1", "admin:acme"); ok {
		t.Fatal("another page took the token")
	}
	if _, ok := s.take("s2", "tenant"); ok {
		t.Fatal("another session took the token")
	}
	if tok, ok := s.take("s1", "tenant"); !ok || tok.Token != "weir_a" {
		t.Fatalf("take = %+v, %v", tok, ok)
	}
	if _, ok := s.take("s1", "tenant"); ok {
		t.Fatal("the token was shown twice")
	}
	// Unclaimed tokens expire, and a later put drops them from memory.
	s.put("s1", tokenReveal{Scope: "tenant", Token: "weir_b"})
	now = now.Add(revealTTL + time.Second)
	if _, ok := s.take("s1", "tenant"); ok {
		t.Fatal("an expired token was shown")
	}
	s.put("s3", tokenReveal{Scope: "tenant", Token: "weir_c"})
	if len(s.m) != 1 {
		t.Errorf("%d tokens kept, want 1", len(s.m))
	}
}

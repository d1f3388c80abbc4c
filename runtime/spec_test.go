package runtime

import (
	"context"
	"strings"
	"testing"
)

func TestSpecErrors(t *testing.T) {
	const mods = "modules: {go: {path: x}}\n"
	const pipe = "nodes:\n  - {id: s, source: src}\n  - {id: o, sink: collect, inputs: [s]}\n"
	cases := []struct {
		name, spec string
		want       []string // substrings of the error
	}{
		{"empty", ``, []string{"empty job spec"}},
		{"unknown top-level field", "nodez: []\n", []string{"line 1", "nodez"}},
		{"unknown node field", "nodes:\n  - {id: s, source: src, paralelism: 2}\n", []string{"line 2", "paralelism"}},
		{"unknown input field", "nodes:\n  - {id: s, source: src}\n  - {id: o, sink: collect, inputs: [{from: s, partiton: key}]}\n",
			[]string{"line 3", "partiton"}},
		{"no nodes", "name: x\n", []string{"nodes: a job needs at least one node"}},
		{"unknown input node", "nodes:\n  - {id: s, source: src}\n  - {id: o, sink: collect, inputs: [nope]}\n",
			[]string{`nodes[1] (o).inputs[0].from: unknown node "nope"`}},
		{"cycle", mods + `nodes:
  - {id: s, source: src}
  - {id: a, module: go, operator: split, inputs: [s, b]}
  - {id: b, module: go, operator: split, inputs: [a]}
  - {id: o, sink: collect, inputs: [b]}
`, []string{"cycle", "a -> b"}},
		{"parallelism zero job", "parallelism: -1\nnodes:\n  - {id: s, source: src}\n  - {id: o, sink: collect, inputs: [s]}\n",
			[]string{"parallelism: must be >= 1"}},
		{"node parallelism above max", "maxParallelism: 4\nnodes:\n  - {id: s, source: src, parallelism: 5}\n  - {id: o, sink: collect, inputs: [s]}\n",
			[]string{"nodes[0] (s).parallelism: 5 exceeds maxParallelism 4"}},
		{"missing module file", "modules: {wc: {path: /nonexistent/wc.wasm}}\nnodes:\n  - {id: s, source: src}\n  - {id: a, module: wc, operator: split, inputs: [s]}\n  - {id: o, sink: collect, inputs: [a]}\n",
			[]string{"modules.wc.path", "no such test module"}},
		{"undeclared module", "nodes:\n  - {id: s, source: src}\n  - {id: a, module: zz, operator: split, inputs: [s]}\n  - {id: o, sink: collect, inputs: [a]}\n",
			[]string{`nodes[1] (a).module: unknown module "zz"`}},
		{"operator not exported", mods + "nodes:\n  - {id: s, source: src}\n  - {id: a, module: go, operator: splt, inputs: [s]}\n  - {id: o, sink: collect, inputs: [a]}\n",
			[]string{`nodes[1] (a).operator: "splt" is not exported by module "go" (it exports: count, fail, split)`}},
		{"key partition into unkeyed operator", mods + "nodes:\n  - {id: s, source: src}\n  - {id: a, module: go, operator: split, inputs: [{from: s, partition: key}]}\n  - {id: o, sink: collect, inputs: [a]}\n",
			[]string{"nodes[1] (a).inputs[0].partition", "reads no key"}},
		{"keyed operator without key partition", mods + "nodes:\n  - {id: s, source: src}\n  - {id: a, module: go, operator: count, inputs: [{from: s, partition: rebalance}]}\n  - {id: o, sink: collect, inputs: [a]}\n",
			[]string{"nodes[1] (a).inputs[0].partition", "is keyed", "must use partition: key"}},
		{"forward with other parallelism", "nodes:\n  - {id: s, source: src}\n  - {id: o, sink: collect, parallelism: 2, inputs: [{from: s, partition: forward}]}\n",
			[]string{"forward needs equal parallelism"}},
		{"bad partition", "nodes:\n  - {id: s, source: src}\n  - {id: o, sink: collect, inputs: [{from: s, partition: hash}]}\n",
			[]string{`must be forward, key, rebalance or broadcast, got "hash"`}},
		{"sink as input", "nodes:\n  - {id: s, source: src}\n  - {id: o, sink: collect, inputs: [s]}\n  - {id: p, sink: collect, inputs: [o]}\n",
			[]string{`"o" is a sink`}},
		{"duplicate id", "nodes:\n  - {id: s, source: src}\n  - {id: s, sink: collect, inputs: [s]}\n", []string{`duplicate node id "s"`}},
		{"two kinds", "nodes:\n  - {id: s, source: src, sink: collect}\n", []string{"exactly one of source, operator"}},
		{"source with inputs", "nodes:\n  - {id: s, source: src, inputs: [s]}\n", []string{"a source has no inputs"}},
		{"unread output", "nodes:\n  - {id: s, source: src}\n", []string{"nodes[0] (s): its output is read by no node"}},
		{"late output of a source", "nodes:\n  - {id: s, source: src}\n  - {id: o, sink: collect, inputs: [{from: s, output: late}]}\n",
			[]string{"only operators have a late output"}},
		{"unknown source", "nodes:\n  - {id: s, source: kafka}\n  - {id: o, sink: collect, inputs: [s]}\n", []string{`nodes[0] (s).source: unknown source "kafka"`}},
		{"bad connector config", "nodes:\n  - {id: s, source: src}\n  - {id: o, sink: collect, config: {path: x}, inputs: [s]}\n",
			[]string{"nodes[1] (o): config.path: unknown field"}},
		{"bad state backend", "state: {backend: rocks}\nnodes:\n  - {id: s, source: src}\n  - {id: o, sink: collect, inputs: [s]}\n",
			[]string{`state.backend: must be memory or pebble, got "rocks"`}},
		{"watermarks on a sink", "nodes:\n  - {id: s, source: src}\n  - {id: o, sink: collect, watermarks: {outOfOrderness: 1s}, inputs: [s]}\n",
			[]string{"only sources generate watermarks"}},
		{"bad duration", "nodes:\n  - {id: s, source: src, watermarks: {outOfOrderness: soon}}\n  - {id: o, sink: collect, inputs: [s]}\n",
			[]string{"soon"}},
		{"bad checkpoint mode", "checkpoints: {interval: 1s, mode: twice}\n" + pipe, []string{`checkpoints.mode: must be exactly-once or at-least-once, got "twice"`}},
		{"checkpoint interval too short", "checkpoints: {interval: 1ms}\n" + pipe, []string{"checkpoints.interval: must be at least 10ms"}},
		{"negative checkpoint timeout", "checkpoints: {timeout: -1s}\n" + pipe, []string{"checkpoints.timeout: must not be negative"}},
		{"bad retain", "checkpoints: {retain: -2}\n" + pipe, []string{"checkpoints.retain: must be between 1 and 1000"}},
		{"unknown checkpoint field", "checkpoints: {intervall: 1s}\n" + pipe, []string{"line 1", "intervall"}},
		{"bad restart strategy", "restart: {strategy: always}\n" + pipe, []string{`restart.strategy: must be none, fixed or exponential, got "always"`}},
		{"failure rate without interval", "restart: {strategy: fixed, maxFailures: 3}\n" + pipe, []string{"restart.failureInterval: required with restart.maxFailures"}},
		{"bad multiplier", "restart: {strategy: exponential, multiplier: 0.5}\n" + pipe, []string{"restart.multiplier: must be >= 1"}},
	}
	env := &testEnv{sources: map[string][]rec{"src": nil}, col: newCollector(), mod: wordModule}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec, err := ParseSpec([]byte(c.spec))
			if err == nil {
				_, err = Compile(context.Background(), spec, env.options())
			}
			if err == nil {
				t.Fatal("spec accepted")
			}
			if !IsSpecError(err) {
				t.Errorf("error %v is not a spec error", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestSpecJSONAccepted(t *testing.T) {
	env := &testEnv{sources: map[string][]rec{"src": {{"k", "v", 1}}}, col: newCollector(), mod: wordModule}
	runSpec(t, env, `{"name": "j", "nodes": [{"id": "s", "source": "src"}, {"id": "o", "sink": "collect", "inputs": [{"from": "s"}]}]}`)
	equalLines(t, env.col.sorted("o"), []string{"k=v@1"})
}

// TestValidateDoesNotChangeTheSpec: Validate reports structural problems
// without filling defaults into the spec it was given.
func TestValidateDoesNotChangeTheSpec(t *testing.T) {
	spec, err := ParseSpec([]byte(`
nodes:
  - {id: a, source: datagen}
  - {id: b, sink: blackhole, inputs: [{from: a, partition: hash}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	errs := spec.Validate()
	if len(errs) != 1 || errs[0].Field != "nodes[1] (b).inputs[0].partition" {
		t.Fatalf("Validate = %v", errs)
	}
	if spec.Name != "" || spec.Parallelism != 0 || spec.MaxParallelism != 0 {
		t.Fatalf("Validate filled defaults into the spec: %+v", spec)
	}
}

package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/weirstream/weir/platform/api"
	"github.com/weirstream/weir/platform/client"
	"github.com/weirstream/weir/platform/jobs"
	"github.com/weirstream/weir/platform/registry"
	"github.com/weirstream/weir/tenants"
)

// The deploy page: pick a module version (the server writes a starter spec
// for it into the editor), edit the YAML job spec, deploy. The API
// validates the spec; its errors name fields (nodes[1] (count).inputs[0].partition),
// which this page places on the spec's lines, so that each message shows
// right under the line it is about.

// deployRoutes are the deploy page and its form.
func (c *Console) deployRoutes() []route {
	return []route{
		{http.MethodGet, "/deploy", c.deployPage},
		{http.MethodPost, "/deploy", c.deploy},
	}
}

// deployForm is what the deploy page's forms hold.
type deployForm struct {
	// Module and Version are the picked module version ("" : none; Version
	// "" is the latest).
	Module, Version string
	Spec            string
	FromSavepoint   string
	// AllowNonRestored lets a savepoint's state without a node be dropped.
	AllowNonRestored bool
}

// deployPage shows the form. ?module=&version= write a starter spec for
// that version into the editor; ?from_savepoint= preselects a savepoint.
func (c *Console) deployPage(r *request) error {
	f := deployForm{Module: r.QueryParam("module"), Version: r.QueryParam("version"), FromSavepoint: r.QueryParam("from_savepoint")}
	return c.showDeploy(r, http.StatusOK, f, nil)
}

// showDeploy renders the deploy page with f; extra adds to its data (a
// problem, the spec's annotated errors).
func (c *Console) showDeploy(r *request, status int, f deployForm, extra map[string]any) error {
	ctx := r.Ctx()
	mods, err := r.API.Modules(ctx)
	if err != nil {
		return r.fail(0, err)
	}
	data := map[string]any{"Modules": mods, "CanWrite": callerCan(r, tenants.ActWrite),
		"PickedLatest": f.Version == "" || f.Version == "latest"}
	if f.Module != "" {
		m, err := r.API.Module(ctx, f.Module)
		if err != nil {
			return r.fail(0, err)
		}
		versions := slices.Clone(m.Versions)
		slices.Reverse(versions)
		data["Versions"] = versions
		v, ok := pickVersion(versions, f.Version)
		if !ok {
			return r.fail(http.StatusNotFound, fmt.Errorf("module %s has no version %q", f.Module, f.Version))
		}
		data["Picked"] = v
		if f.Spec == "" {
			f.Spec = starterSpec(v)
		}
	}
	sps, err := r.API.Savepoints(ctx, "")
	if err != nil {
		return r.fail(0, err)
	}
	data["Savepoints"] = sps
	data["Form"] = f
	for k, v := range extra {
		data[k] = v
	}
	return r.render(status, "deploy", data)
}

// pickVersion finds version ("" or "latest": the newest) among versions,
// newest first.
func pickVersion(versions []registry.Version, version string) (registry.Version, bool) {
	if len(versions) == 0 {
		return registry.Version{}, false
	}
	if version == "" || version == "latest" {
		return versions[0], true
	}
	for _, v := range versions {
		if strconv.Itoa(v.Version) == version {
			return v, true
		}
	}
	return registry.Version{}, false
}

// deploy takes the spec form: a new job goes to its page; an invalid spec
// comes back with its errors at their lines; any other problem (a quota,
// no free slots) in the error box.
func (c *Console) deploy(r *request) error {
	f := deployForm{
		// The picked module version, kept so a failed deploy shows it again.
		Module:           r.FormValue("module"),
		Version:          r.FormValue("version"),
		Spec:             strings.ReplaceAll(r.FormValue("spec"), "\r\n", "\n"),
		FromSavepoint:    r.FormValue("from_savepoint"),
		AllowNonRestored: r.FormValue("allow_non_restored") == "1",
	}
	if strings.TrimSpace(f.Spec) == "" {
		return c.showDeploy(r, http.StatusBadRequest, f, map[string]any{"Problem": &shownProblem{
			Status: http.StatusBadRequest, Title: "No job spec", Message: "Write a job spec, or pick a module version for a starter spec."}})
	}
	j, err := r.API.Deploy(r.Ctx(), []byte(f.Spec), f.FromSavepoint, f.AllowNonRestored)
	if err != nil {
		var pe *client.ProblemError
		if errors.As(err, &pe) && pe.Code() == "invalid-job-spec" {
			a := annotateSpec(f.Spec, pe.Errors, pe.Detail)
			return c.showDeploy(r, pe.Status, f, map[string]any{"SpecErrors": a})
		}
		return showOrFail(r, err, func(p *shownProblem) error {
			return c.showDeploy(r, p.Status, f, map[string]any{"Problem": p})
		})
	}
	return flashRedirect(r, "/jobs/"+url.PathEscape(j.ID), deployedMessage(j))
}

func deployedMessage(j jobs.Job) string {
	return fmt.Sprintf("Deployed %s: job %s is %s.", j.Name, j.ID, j.State)
}

// starterSpec is a job spec to start from for a module version: generated
// sentences through each of its operators, in the module's order, to the
// job's log. Keyed operators get key partitioning, the others rebalance.
// It runs as it is for modules whose operators take text (the examples);
// for others it shows the shape to edit.
func starterSpec(v registry.Version) string {
	alias := yamlScalar(v.Name)
	var b strings.Builder
	fmt.Fprintf(&b, "# A starter spec for %s: generated sentences -> each operator -> the job's log.\n", v.Ref())
	b.WriteString("# Operators of the module:")
	for i, op := range v.Operators {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(" " + op.Name)
		if op.Keyed {
			b.WriteString(" (keyed)")
		}
	}
	if len(v.Operators) == 0 {
		b.WriteString(" none")
	}
	b.WriteString("\n# Edit the source, the order of the operators and the sink to fit your data.\n")
	fmt.Fprintf(&b, "name: %s\nparallelism: 1\nmodules:\n  %s: %s\ncheckpoints: {interval: 10s}\nnodes:\n", yamlScalar(v.Name), alias, v.Ref())
	used := map[string]bool{}
	id := func(want string) string {
		s := strings.Map(func(r rune) rune {
			if r == '/' || r == ' ' || r == '\t' || r == '\n' || r == ':' || r == '#' || r == ',' || r == '{' || r == '}' || r == '[' || r == ']' {
				return '-'
			}
			return r
		}, want)
		if s == "" {
			s = "op"
		}
		out := s
		for n := 2; used[out]; n++ {
			out = s + "-" + strconv.Itoa(n)
		}
		used[out] = true
		return out
	}
	prev := id("sentences")
	b.WriteString("  - id: " + yamlScalar(prev) + "\n    source: datagen\n    parallelism: 1\n    config:\n      rate: 10\n")
	b.WriteString(`      value: {kind: oneOf, values: ["the quick brown fox", "jumps over the lazy dog", "a stream never ends"]}` + "\n")
	for _, op := range v.Operators {
		n := id(op.Name)
		part := "rebalance"
		if op.Keyed {
			part = "key"
		}
		fmt.Fprintf(&b, "  - id: %s\n    module: %s\n    operator: %s\n    inputs: [{from: %s, partition: %s}]\n", yamlScalar(n), alias, yamlScalar(op.Name), yamlScalar(prev), part)
		prev = n
	}
	fmt.Fprintf(&b, "  - id: %s\n    sink: print\n    parallelism: 1\n    config: {format: kv}\n    inputs: [{from: %s, partition: rebalance}]\n", yamlScalar(id("log")), yamlScalar(prev))
	return b.String()
}

// yamlScalar writes s as a YAML scalar: plain when that reads back as the
// same string, else double-quoted.
func yamlScalar(s string) string {
	var m map[string]any
	if s != "" && !strings.ContainsAny(s, "#:{}[],&*!|>'\"%@`\\") && yaml.Unmarshal([]byte("x: "+s), &m) == nil {
		if v, ok := m["x"].(string); ok && v == s {
			return s
		}
	}
	return strconv.Quote(s)
}

// specAnnotation is an invalid spec as the deploy page shows it: its lines,
// numbered, each with the errors placed on it, and every error in a summary.
type specAnnotation struct {
	Lines []specLine
	// Summary lists every error in the API's order; Line 0 is an error the
	// page could not place on a line (it shows at the top).
	Summary []placedError
	// Unplaced are the errors of Summary with Line 0.
	Unplaced []placedError
}

// specLine is one line of the spec.
type specLine struct {
	N      int
	Text   string
	Errors []placedError
}

// placedError is a field error with the line it is about.
type placedError struct {
	Field, Problem string
	Line           int
}

// lineOfMessage finds the line a field-less error names ("line 7: ...",
// "yaml: line 7: ...": the parser's syntax errors).
var lineOfMessage = regexp.MustCompile(`\bline (\d+)\b`)

// annotateSpec places the API's field errors on the spec's lines: a field
// path is followed through the spec's YAML tree (mapping keys, sequence
// indexes) to the line of its key; a path that resolves only partly lands
// on the deepest part that does, and one that does not resolve at all (or
// a spec that does not parse) on no line, shown at the top. detail is the
// problem's detail, used when it has no errors[].
func annotateSpec(spec string, errs []api.FieldProblem, detail string) specAnnotation {
	if len(errs) == 0 {
		errs = []api.FieldProblem{{Problem: detail}}
	}
	var root yaml.Node
	parsed := yaml.Unmarshal([]byte(spec), &root) == nil
	lines := strings.Split(strings.TrimSuffix(spec, "\n"), "\n")
	a := specAnnotation{Lines: make([]specLine, len(lines))}
	for i, l := range lines {
		a.Lines[i] = specLine{N: i + 1, Text: l}
	}
	for _, e := range errs {
		pe := placedError{Field: e.Field, Problem: e.Problem}
		switch {
		case e.Field != "" && parsed:
			pe.Line = fieldLine(&root, e.Field)
		case e.Field == "":
			if m := lineOfMessage.FindStringSubmatch(e.Problem); m != nil {
				pe.Line, _ = strconv.Atoi(m[1])
			}
		}
		if pe.Line < 1 || pe.Line > len(lines) {
			pe.Line = 0
			a.Unplaced = append(a.Unplaced, pe)
		} else {
			a.Lines[pe.Line-1].Errors = append(a.Lines[pe.Line-1].Errors, pe)
		}
		a.Summary = append(a.Summary, pe)
	}
	return a
}

// pathStep is one step of a field path: a mapping key, or a sequence
// index.
type pathStep struct {
	key     string
	index   int
	isIndex bool
}

// parseFieldPath splits a field path as the API writes it:
// "nodes[1] (count).inputs[0].partition" -> nodes, [1], inputs, [0],
// partition. The " (count)" after an index names the node; it is skipped
// (the index says which).
func parseFieldPath(p string) []pathStep {
	var steps []pathStep
	for i := 0; i < len(p); {
		switch {
		case p[i] == '.':
			i++
		case p[i] == '[':
			end := strings.IndexByte(p[i:], ']')
			if end < 0 {
				return append(steps, pathStep{key: p[i:]})
			}
			inner := p[i+1 : i+end]
			if n, err := strconv.Atoi(inner); err == nil {
				steps = append(steps, pathStep{index: n, isIndex: true})
			} else {
				steps = append(steps, pathStep{key: inner})
			}
			i += end + 1
		case strings.HasPrefix(p[i:], " ("):
			end := strings.IndexByte(p[i:], ')')
			if end < 0 {
				return steps
			}
			i += end + 1
		default:
			j := i
			for j < len(p) && p[j] != '.' && p[j] != '[' && !strings.HasPrefix(p[j:], " (") {
				j++
			}
			steps = append(steps, pathStep{key: p[i:j]})
			i = j
		}
	}
	return steps
}

// fieldLine is the line of field in the spec's YAML tree: the line of the
// deepest step of its path that resolves (a key's own line, a sequence
// item's first line), 0 when not even its first step does.
func fieldLine(root *yaml.Node, field string) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := 0
	for _, st := range parseFieldPath(field) {
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			n = n.Alias
		}
		next, at := stepInto(n, st)
		if next == nil {
			break
		}
		n, line = next, at
	}
	return line
}

// stepInto follows one step from n: the value under a key (and the key's
// line), a sequence's item by index, or — a step that names rather than
// counts, like "nodes.count" — the item whose id is the name.
func stepInto(n *yaml.Node, st pathStep) (*yaml.Node, int) {
	switch n.Kind {
	case yaml.MappingNode:
		if st.isIndex {
			return nil, 0
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i]; k.Value == st.key {
				return n.Content[i+1], k.Line
			}
		}
	case yaml.SequenceNode:
		if st.isIndex {
			if st.index >= 0 && st.index < len(n.Content) {
				it := n.Content[st.index]
				return it, it.Line
			}
			return nil, 0
		}
		for _, it := range n.Content {
			if it.Kind != yaml.MappingNode {
				continue
			}
			for i := 0; i+1 < len(it.Content); i += 2 {
				if it.Content[i].Value == "id" && it.Content[i+1].Value == st.key {
					return it, it.Line
				}
			}
		}
	}
	return nil, 0
}

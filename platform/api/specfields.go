package api

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/weirstream/weir/runtime"
)

// The job spec's parser (YAML's decoder) reports what it rejects by line:
// "line 2: field colour not found in type runtime.JobSpec", "line 3:
// invalid duration \"soon\"". A client needs the field, as the engine's own
// validation gives it, so locateSpecErrors finds the field at that line in
// the spec's YAML tree. Problems it cannot place (a syntax error) keep
// their line and have no field.

// lineProblem is one "line N: ..." item of a parser error.
var lineProblem = regexp.MustCompile(`^line (\d+): (.*)$`)

// unknownField is the decoder's message for a field the spec's types lack.
var unknownField = regexp.MustCompile(`^field (\S+) not found in type `)

// quoted finds the offending value a message quotes: "soon" or `two`.
var quoted = regexp.MustCompile("\"([^\"]*)\"|`([^`]*)`")

// locateSpecErrors returns err with field paths for the spec errors that
// only name a line; any other error is returned as it is.
func locateSpecErrors(spec []byte, err error) error {
	var errs runtime.SpecErrors
	if !errors.As(err, &errs) {
		return err
	}
	var root yaml.Node
	if yaml.Unmarshal(spec, &root) != nil {
		return err // a syntax error: the line is all there is
	}
	var out runtime.SpecErrors
	changed := false
	for _, e := range errs {
		if e.Field != "" {
			out = append(out, e)
			continue
		}
		text := strings.TrimPrefix(e.Problem, "unmarshal errors:")
		for _, item := range strings.Split(strings.TrimSpace(text), "\n") {
			item = strings.TrimSpace(item)
			m := lineProblem.FindStringSubmatch(item)
			if m == nil {
				out = append(out, &runtime.SpecError{Problem: item})
				continue
			}
			line, _ := strconv.Atoi(m[1])
			field := fieldAt(&root, line, m[2])
			if field == "" {
				out = append(out, &runtime.SpecError{Problem: item})
				continue
			}
			changed = true
			out = append(out, &runtime.SpecError{Field: field, Problem: fmt.Sprintf("%s (line %d)", m[2], line)})
		}
	}
	if !changed {
		return err
	}
	return out
}

// pair is a mapping entry of the spec with its field path.
type pair struct {
	path       string
	key, value *yaml.Node
}

// fieldAt names the field a parser message about line is about: the key
// an unknown-field message names, else the entry on that line whose value
// the message quotes, else the only entry on that line.
func fieldAt(root *yaml.Node, line int, msg string) string {
	var onLine []pair
	walkSpec(root, "", func(p pair) {
		if p.key.Line == line || p.value.Line == line {
			onLine = append(onLine, p)
		}
	})
	if m := unknownField.FindStringSubmatch(msg); m != nil {
		for _, p := range onLine {
			if p.key.Line == line && p.key.Value == m[1] {
				return p.path
			}
		}
		return ""
	}
	if q := quoted.FindStringSubmatch(msg); q != nil {
		v := q[1] + q[2]
		for _, p := range onLine {
			if p.value.Kind == yaml.ScalarNode && p.value.Line == line && p.value.Value == v {
				return p.path
			}
		}
	}
	var keyed []pair
	for _, p := range onLine {
		if p.key.Line == line {
			keyed = append(keyed, p)
		}
	}
	if len(keyed) == 1 {
		return keyed[0].path
	}
	return ""
}

// walkSpec calls fn for every mapping entry below n, with paths as the
// engine writes them: checkpoints.interval, nodes[1] (count).inputs[0].from.
func walkSpec(n *yaml.Node, path string, fn func(pair)) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			walkSpec(c, path, fn)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			fn(pair{path: p, key: k, value: v})
			walkSpec(v, p, fn)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			if path == "nodes" && c.Kind == yaml.MappingNode {
				for j := 0; j+1 < len(c.Content); j += 2 {
					if c.Content[j].Value == "id" && c.Content[j+1].Kind == yaml.ScalarNode && c.Content[j+1].Value != "" {
						p = fmt.Sprintf("%s (%s)", p, c.Content[j+1].Value)
					}
				}
			}
			walkSpec(c, p, fn)
		}
	}
}

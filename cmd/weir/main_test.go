package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// buildWordcount compiles the word-count example module into dir.
func buildWordcount(t *testing.T, dir string) string {
	t.Helper()
	out := filepath.Join(dir, "wordcount.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "../../examples/wordcount")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	return out
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRunWordCount(t *testing.T) {
	dir := t.TempDir()
	buildWordcount(t, dir)
	writeFile(t, filepath.Join(dir, "input.txt"), "b a\na b b\n")
	writeFile(t, filepath.Join(dir, "job.yaml"), `
name: wc
nodes:
  - {id: lines, source: file, config: {path: input.txt}}
  - {id: split, module: wordcount, operator: split, inputs: [lines]}
  - {id: count, module: wordcount, operator: count, inputs: [split]}
  - {id: out, sink: file, config: {path: out, format: kv}, inputs: [count]}
modules: {wordcount: {path: wordcount.wasm}}
`)
	for _, backend := range []string{"memory", "pebble"} {
		var stdout, stderr bytes.Buffer
		code := run([]string{"run", filepath.Join(dir, "job.yaml"), "--state", backend, "--parallelism", "3", "--cache-dir", filepath.Join(dir, "cache")}, &stdout, &stderr)
		if code != exitOK {
			t.Fatalf("%s: exit %d\n%s", backend, code, stderr.String())
		}
		if !strings.Contains(stderr.String(), "wc finished") || !strings.Contains(stderr.String(), "count+out") {
			t.Fatalf("%s: no progress/summary in output:\n%s", backend, stderr.String())
		}
		files, _ := filepath.Glob(filepath.Join(dir, "out", "part-*"))
		if len(files) != 3 {
			t.Fatalf("%s: %d part files, want 3 (parallelism 3)", backend, len(files))
		}
		var lines []string
		for _, f := range files {
			b, _ := os.ReadFile(f)
			lines = append(lines, strings.Fields(strings.ReplaceAll(string(b), "\t", "="))...)
		}
		sort.Strings(lines)
		if got, want := strings.Join(lines, " "), "a=1 a=2 b=1 b=2 b=3"; got != want {
			t.Fatalf("%s: output %q, want %q", backend, got, want)
		}
	}
}

func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	buildWordcount(t, dir)
	writeFile(t, filepath.Join(dir, "input.txt"), "x\n")
	writeFile(t, filepath.Join(dir, "notwasm.wasm"), "this is not wasm")
	cases := []struct {
		name, spec string
		code       int
		want       []string
	}{
		{"unknown operator", `
modules: {wordcount: {path: wordcount.wasm}}
nodes:
  - {id: lines, source: file, config: {path: input.txt}}
  - {id: split, module: wordcount, operator: splitter, inputs: [lines]}
  - {id: out, sink: print, inputs: [split]}
`, exitUsage, []string{`nodes[1] (split).operator: "splitter" is not exported by module "wordcount" (it exports: split, count)`}},
		{"not wasm", `
modules: {bad: {path: notwasm.wasm}}
nodes:
  - {id: lines, source: file, config: {path: input.txt}}
  - {id: op, module: bad, operator: x, inputs: [lines]}
  - {id: out, sink: print, inputs: [op]}
`, exitUsage, []string{"modules.bad.path", "notwasm.wasm"}},
		{"missing module file", `
modules: {m: {path: nope.wasm}}
nodes:
  - {id: lines, source: file, config: {path: input.txt}}
  - {id: op, module: m, operator: x, inputs: [lines]}
  - {id: out, sink: print, inputs: [op]}
`, exitUsage, []string{"modules.m.path", "nope.wasm"}},
		{"bad connector config", `
nodes:
  - {id: lines, source: file, config: {path: input.txt, format: xml}}
  - {id: out, sink: print, inputs: [lines]}
`, exitUsage, []string{"nodes[0] (lines)", "config.format"}},
		{"missing input file fails the job", `
nodes:
  - {id: lines, source: file, config: {path: missing.txt}}
  - {id: out, sink: print, inputs: [lines]}
`, exitFailed, []string{"failed", "missing.txt"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".yaml")
			writeFile(t, spec, c.spec)
			var stdout, stderr bytes.Buffer
			code := run([]string{"run", "--progress", "0", "--cache-dir", "", spec}, &stdout, &stderr)
			if code != c.code {
				t.Fatalf("exit %d, want %d\n%s", code, c.code, stderr.String())
			}
			for _, w := range c.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr does not mention %q:\n%s", w, stderr.String())
				}
			}
		})
	}
	var out, errb bytes.Buffer
	if code := run([]string{"frobnicate"}, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), `unknown command "frobnicate"`) {
		t.Fatalf("unknown command: exit %d, %q", code, errb.String())
	}
}

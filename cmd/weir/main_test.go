package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weirstream/weir/connectors"
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
		code := run([]string{"run", filepath.Join(dir, "job.yaml"), "--state", backend, "--parallelism", "3", "--cache-dir", filepath.Join(dir, "cache"), "--checkpoint-dir", filepath.Join(dir, "ckpt")}, &stdout, &stderr)
		if code != exitOK {
			t.Fatalf("%s: exit %d\n%s", backend, code, stderr.String())
		}
		if !strings.Contains(stderr.String(), "wc finished") || !strings.Contains(stderr.String(), "count+out") {
			t.Fatalf("%s: no progress/summary in output:\n%s", backend, stderr.String())
		}
		files, _ := filepath.Glob(filepath.Join(dir, "out", "part-*"))
		// Committed transactions only: a subtask that wrote nothing has
		// no part file.
		if len(files) == 0 || len(files) > 3 {
			t.Fatalf("%s: %d part files, want 1 to 3 (parallelism 3)", backend, len(files))
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
			code := run([]string{"run", "--progress", "0", "--cache-dir", "", "--checkpoint-dir", filepath.Join(dir, "ckpt"), spec}, &stdout, &stderr)
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

// syncBuffer is a bytes.Buffer safe for the job's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestStopWithSavepointSignalAndResume: SIGUSR2 stops `weir run` with a
// savepoint and prints where it is; `--from-savepoint` continues from it,
// at another parallelism, and the two runs' committed output equals one
// uninterrupted run's.
func TestStopWithSavepointSignalAndResume(t *testing.T) {
	dir := t.TempDir()
	buildWordcount(t, dir)
	spec := `
name: wcsp
nodes:
  - id: lines
    source: datagen
    config: {count: 6000, rate: %d, value: {kind: oneOf, values: ["a b", "b c", "c d e"]}}
  - {id: split, module: wordcount, operator: split, inputs: [lines]}
  - {id: count, module: wordcount, operator: count, inputs: [split]}
  - {id: out, sink: file, config: {path: %s, format: kv}, inputs: [count]}
modules: {wordcount: {path: wordcount.wasm}}
`
	writeFile(t, filepath.Join(dir, "slow.yaml"), fmt.Sprintf(spec, 3000, "out"))
	writeFile(t, filepath.Join(dir, "fast.yaml"), fmt.Sprintf(spec, 0, "ref"))
	common := []string{"--cache-dir", filepath.Join(dir, "cache"), "--checkpoint-dir", filepath.Join(dir, "ckpt"), "--progress", "0"}

	// The reference: one uninterrupted run.
	var out, errb bytes.Buffer
	if code := run(append([]string{"run", filepath.Join(dir, "fast.yaml")}, common...), &out, &errb); code != exitOK {
		t.Fatalf("reference run: exit %d\n%s", code, errb.String())
	}
	want := readKV(t, filepath.Join(dir, "ref"))

	var stderr syncBuffer
	codes := make(chan int, 1)
	go func() {
		codes <- run(append([]string{"run", filepath.Join(dir, "slow.yaml"), "--parallelism", "2"}, common...), &out, &stderr)
	}()
	waitFor(t, "the job to run", func() bool { return strings.Contains(stderr.String(), "weir: running wcsp") })
	waitFor(t, "output to be written", func() bool {
		files, _ := filepath.Glob(filepath.Join(dir, "out", ".pending", "*"))
		return len(files) > 0
	})
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	var code int
	select {
	case code = <-codes:
	case <-time.After(time.Minute):
		t.Fatal("weir run did not stop after SIGUSR2")
	}
	if code != exitOK {
		t.Fatalf("stop with savepoint: exit %d\n%s", code, stderr.String())
	}
	m := regexp.MustCompile(`savepoint written to (\S+)`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no savepoint path printed:\n%s", stderr.String())
	}
	first := readKV(t, filepath.Join(dir, "out"))
	if len(first) == 0 || len(first) >= len(want) {
		t.Fatalf("the stopped run wrote %d of %d records", len(first), len(want))
	}
	errb.Reset()
	args := append([]string{"run", filepath.Join(dir, "slow.yaml"), "--parallelism", "3", "--from-savepoint", m[1]}, common...)
	if code := run(args, &out, &errb); code != exitOK {
		t.Fatalf("run from savepoint: exit %d\n%s", code, errb.String())
	}
	got := readKV(t, filepath.Join(dir, "out"))
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("stopped + resumed output differs from one run:\n got %v\nwant %v", got, want)
	}

	// A savepoint of another job's state is refused with the reason.
	errb.Reset()
	writeFile(t, filepath.Join(dir, "other.yaml"), strings.NewReplacer("id: count,", "id: counter,", "inputs: [count]", "inputs: [counter]").Replace(fmt.Sprintf(spec, 0, "other")))
	args = append([]string{"run", filepath.Join(dir, "other.yaml"), "--from-savepoint", m[1]}, common...)
	if code := run(args, &out, &errb); code != exitFailed || !strings.Contains(errb.String(), `node "count"`) {
		t.Fatalf("mismatched savepoint: exit %d\n%s", code, errb.String())
	}
}

// readKV returns the committed lines of a file sink's folder, sorted.
func readKV(t *testing.T, dir string) []string {
	t.Helper()
	lines, err := connectors.ReadCommitted(dir)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return lines
}

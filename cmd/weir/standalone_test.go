package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/weirstream/weir/connectors"
)

// TestStandaloneDemo runs `weir standalone --demo` as `make run` does (on
// 127.0.0.1:0): the demo tenant's key it prints works, the demo jobs are
// listed, the word-count job's committed output equals the example's
// expected counts, and the admin token file authenticates as admin. A
// second start on the same data directory resumes instead of duplicating.
func TestStandaloneDemo(t *testing.T) {
	examples := t.TempDir()
	for _, name := range demoModules {
		dir := filepath.Join(examples, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", filepath.Join(dir, name+".wasm"), "../../examples/"+name)
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", name, err, b)
		}
	}
	for _, in := range demoInputs {
		b, err := os.ReadFile(filepath.Join("../../examples", in))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(examples, in), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data := t.TempDir()

	url, token, out, stop := startStandalone(t, "--listen", "127.0.0.1:0", "--data-dir", data, "--demo", examples, "--cache-dir", "")
	if !strings.Contains(out, "admin API key") {
		t.Errorf("first start prints no admin key:\n%s", out)
	}
	var jobs struct {
		Items []struct{ ID, Name, State string }
	}
	getJSON(t, url+"/v1/jobs", token, &jobs)
	names := map[string]string{}
	for _, j := range jobs.Items {
		names[j.Name] = j.ID
	}
	for _, want := range []string{"wordcount", "wordcount-live", "windowed-sum"} {
		if names[want] == "" {
			t.Errorf("demo job %s not deployed; jobs: %+v", want, jobs.Items)
		}
	}
	// The bounded word count finishes with the example's expected output.
	deadline := time.Now().Add(60 * time.Second)
	for {
		var j struct{ State, Error string }
		getJSON(t, url+"/v1/jobs/"+names["wordcount"], token, &j)
		if j.State == "finished" {
			break
		}
		if j.State == "failed" || time.Now().After(deadline) {
			t.Fatalf("wordcount job is %s (%s)", j.State, j.Error)
		}
		time.Sleep(20 * time.Millisecond)
	}
	recs, err := connectors.ReadCommitted(filepath.Join(data, "files", "demo", "wordcount", "output"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, string(r))
	}
	sort.Strings(got)
	wantB, err := os.ReadFile("../../examples/wordcount/expected.txt")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Split(strings.TrimSpace(string(wantB)), "\n")
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("wordcount output differs from examples/wordcount/expected.txt: got %d lines, want %d", len(got), len(want))
	}
	admin, err := os.ReadFile(filepath.Join(data, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	var me struct{ Role string }
	getJSON(t, url+"/v1/me", strings.TrimSpace(string(admin)), &me)
	if me.Role != "admin" {
		t.Errorf("admin.token authenticates as %q", me.Role)
	}
	stop()

	// Second start: no new admin key, no duplicate jobs, the live job resumes.
	url, token, out, stop = startStandalone(t, "--listen", "127.0.0.1:0", "--data-dir", data, "--demo", examples, "--cache-dir", "")
	defer stop()
	if strings.Contains(out, "admin API key") {
		t.Errorf("second start created another admin key:\n%s", out)
	}
	getJSON(t, url+"/v1/jobs", token, &jobs)
	if len(jobs.Items) != 3 {
		t.Errorf("after a restart there are %d jobs, want the 3 demo jobs: %+v", len(jobs.Items), jobs.Items)
	}
	for _, j := range jobs.Items {
		if j.Name == "wordcount-live" && j.State != "running" {
			t.Errorf("wordcount-live is %s after a restart, want running", j.State)
		}
	}
}

// startStandalone runs runStandalone until the returned stop is called,
// and returns the API URL and the demo key it printed, with its output up
// to "serving".
func startStandalone(t *testing.T, args ...string) (url, token, out string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	var stderr strings.Builder
	go func() {
		done <- runStandalone(ctx, args, pw, &stderr)
		pw.Close()
	}()
	var b strings.Builder
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(sc.Text(), "serving") {
			break
		}
	}
	go io.Copy(io.Discard, pr)
	out = b.String()
	if m := regexp.MustCompile(`API (http://\S+)/v1`).FindStringSubmatch(out); m != nil {
		url = m[1]
	}
	if m := regexp.MustCompile(`WEIR_TOKEN=(\S+)`).FindStringSubmatch(out); m != nil {
		token = m[1]
	}
	if url == "" || token == "" {
		cancel()
		t.Fatalf("standalone did not print its URL and demo key:\n%s\nstderr:\n%s", out, stderr.String())
	}
	return url, token, out, func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("standalone exited %d\n%s", code, stderr.String())
		}
	}
}

func getJSON(t *testing.T, url, token string, v any) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(fmt.Errorf("GET %s: %w: %s", url, err, b))
	}
}

package checkpoint

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weirstream/weir/runtime/clock"
)

// harness is a coordinator over real local storage with recording hooks.
type harness struct {
	t     *testing.T
	c     *Coordinator
	clk   *clock.Fake
	store Storage
	root  string

	mu        sync.Mutex
	triggered []Barrier
	completed []int64
	aborted   map[int64]error
	fail      error // returned by Trigger
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	store, err := OpenLocal(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, clk: clock.NewFake(time.Unix(1000, 0)), store: store, root: "tenants/t1/jobs/j1", aborted: map[int64]error{}}
	h.c = NewCoordinator(cfg, Options{
		Clock: h.clk, Storage: store, Root: h.root, Job: "j1", MaxParallelism: 128,
		Hooks: Hooks{
			Trigger: func(b Barrier) error {
				h.mu.Lock()
				defer h.mu.Unlock()
				h.triggered = append(h.triggered, b)
				return h.fail
			},
			Completed: func(b Barrier) {
				h.mu.Lock()
				defer h.mu.Unlock()
				h.completed = append(h.completed, b.ID)
			},
			Aborted: func(b Barrier, err error) {
				h.mu.Lock()
				defer h.mu.Unlock()
				h.aborted[b.ID] = err
			},
		},
	})
	h.c.Start([]string{"a[0]", "b[0]"})
	return h
}

// ack uploads a private file and, if shared != "", references the shared
// file of that name (uploading it when new), like a task would.
func (h *harness) ack(id int64, task string, shared ...string) {
	h.t.Helper()
	ctx := context.Background()
	dir := h.c.CheckpointDir(id)
	priv := path.Join(dir, strings.NewReplacer("[", "-", "]", "").Replace(task), "state")
	info, err := h.store.Put(ctx, priv, bytes.NewReader([]byte(task)))
	if err != nil {
		h.t.Fatal(err)
	}
	st := TaskState{Task: task, Nodes: []string{task[:1]}, Subtask: 0, Parallelism: 1, KeyGroups: [2]int{0, 128},
		State: &StateHandle{Format: FormatPebble, Files: []FileRef{{Name: "MANIFEST", Path: Relative(dir, priv), Size: info.Size, CRC32C: info.CRC32C}}}}
	for _, s := range shared {
		name := path.Join(h.c.SharedDir(), s)
		if _, err := h.store.Stat(ctx, name); errors.Is(err, ErrNotFound) {
			if _, err := h.store.Put(ctx, name, bytes.NewReader([]byte(s))); err != nil {
				h.t.Fatal(err)
			}
		}
		st.State.Files = append(st.State.Files, FileRef{Name: s, Path: Relative(dir, name), Size: int64(len(s)), Shared: true})
	}
	h.c.Ack(ctx, id, st)
}

func (h *harness) objects() []string {
	h.t.Helper()
	objs, err := h.store.List(context.Background(), h.root+"/")
	if err != nil {
		h.t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, strings.TrimPrefix(o.Name, h.root+"/"))
	}
	sort.Strings(names)
	return names
}

func (h *harness) exists(name string) bool {
	_, err := h.store.Stat(context.Background(), path.Join(h.root, name))
	return err == nil
}

func TestCompletesOnlyWhenEveryTaskAcked(t *testing.T) {
	h := newHarness(t, Config{})
	id, err := h.c.TriggerCheckpoint()
	if err != nil || id != 1 {
		t.Fatalf("trigger: %d %v", id, err)
	}
	h.ack(1, "a[0]")
	if h.exists("checkpoints/chk-1/_metadata") || len(h.completed) != 0 {
		t.Fatal("completed before every task acked")
	}
	h.ack(1, "b[0]")
	if !h.exists("checkpoints/chk-1/_metadata") || len(h.completed) != 1 {
		t.Fatalf("not completed after all acks: %v", h.objects())
	}
	m, err := ReadMetadata(context.Background(), h.store, h.c.CheckpointDir(1))
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != 1 || len(m.Tasks) != 2 || m.Tasks[0].Task != "a[0]" || m.Tasks[1].Task != "b[0]" || m.Job != "j1" {
		t.Fatalf("metadata: %+v", m)
	}
	if err := Verify(context.Background(), h.store, h.c.CheckpointDir(1), h.root, m); err != nil {
		t.Fatal(err)
	}
	st := h.c.History()
	if len(st) != 1 || st[0].Status != "completed" || st[0].Acked != 2 || st[0].Size != 8 {
		t.Fatalf("history: %+v", st)
	}
}

func TestRetentionDeletesUnreferencedFiles(t *testing.T) {
	h := newHarness(t, Config{Retain: 2})
	// chk-1 uses s1, s2; chk-2 s2, s3; chk-3 s3, s4. With two retained,
	// completing chk-3 drops chk-1 and s1 (s2 is still used by chk-2).
	shared := map[int64][]string{1: {"s1", "s2"}, 2: {"s2", "s3"}, 3: {"s3", "s4"}}
	for id := int64(1); id <= 3; id++ {
		if _, err := h.c.TriggerCheckpoint(); err != nil {
			t.Fatal(err)
		}
		h.ack(id, "a[0]", shared[id]...)
		h.ack(id, "b[0]")
	}
	want := []string{
		"checkpoints/chk-2/_metadata", "checkpoints/chk-2/a-0/state", "checkpoints/chk-2/b-0/state",
		"checkpoints/chk-3/_metadata", "checkpoints/chk-3/a-0/state", "checkpoints/chk-3/b-0/state",
		"shared/s2", "shared/s3", "shared/s4",
	}
	if got := h.objects(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("objects:\n got %v\nwant %v", got, want)
	}
	r := h.c.Retained()
	if len(r) != 2 || r[0].ID != 3 || r[1].ID != 2 {
		t.Fatalf("retained: %v", r)
	}
}

func TestTimeoutAbortsAndLateAckIsDiscarded(t *testing.T) {
	h := newHarness(t, Config{Timeout: time.Second})
	if _, err := h.c.TriggerCheckpoint(); err != nil {
		t.Fatal(err)
	}
	h.ack(1, "a[0]", "s1")
	h.clk.Advance(time.Second)
	h.c.expire(h.clk.Now())
	if _, ok := h.aborted[1]; !ok {
		t.Fatal("not aborted at the timeout")
	}
	if !errors.Is(h.aborted[1], ErrAborted) || !strings.Contains(h.aborted[1].Error(), "timed out") {
		t.Fatalf("abort error: %v", h.aborted[1])
	}
	h.ack(1, "b[0]", "s2") // late
	if got := h.objects(); len(got) != 0 {
		t.Fatalf("files of an aborted checkpoint remain: %v", got)
	}
	if h.c.History()[0].Status != "aborted" {
		t.Fatal("history does not say aborted")
	}
}

func TestDeclineAbortAllAndTriggerFailure(t *testing.T) {
	h := newHarness(t, Config{MaxConcurrent: 3})
	for range 2 {
		if _, err := h.c.TriggerCheckpoint(); err != nil {
			t.Fatal(err)
		}
	}
	h.c.Decline(1, "a[0]", errors.New("source finished"))
	if err := h.aborted[1]; err == nil || !strings.Contains(err.Error(), "declined by task a[0]") {
		t.Fatalf("decline: %v", err)
	}
	h.c.AbortAll(errors.New("task b[0] failed"))
	if err := h.aborted[2]; err == nil || !strings.Contains(err.Error(), "task b[0] failed") {
		t.Fatalf("abort all: %v", err)
	}
	h.fail = errors.New("source is gone")
	if _, err := h.c.TriggerCheckpoint(); err == nil {
		t.Fatal("trigger failure not reported")
	}
	if _, ok := h.aborted[3]; !ok {
		t.Fatal("a checkpoint whose trigger failed is not aborted")
	}
	h.c.Pause()
	if _, err := h.c.TriggerCheckpoint(); err == nil {
		t.Fatal("triggered while paused")
	}
}

// TestPeriodicTriggerWithFakeClock drives Run with the fake clock:
// checkpoints every interval, at most MaxConcurrent in flight, MinPause
// after a completion.
func TestPeriodicTriggerWithFakeClock(t *testing.T) {
	h := newHarness(t, Config{Interval: 100 * time.Millisecond, MinPause: 300 * time.Millisecond, MaxConcurrent: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { h.c.Run(ctx); close(done) }()
	triggered := func() int {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.triggered)
	}
	// step advances the clock once Run waits on it.
	step := func(d time.Duration) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			n, changed := h.clk.Waiters()
			if n > 0 {
				break
			}
			select {
			case <-changed:
			case <-deadline:
				t.Fatal("Run never waited on the clock")
			}
		}
		h.clk.Advance(d)
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			runtimeGosched()
		}
	}
	step(100 * time.Millisecond)
	waitFor("first trigger", func() bool { return triggered() == 1 })
	// One in flight: the next interval triggers nothing.
	step(100 * time.Millisecond)
	step(100 * time.Millisecond)
	if n := triggered(); n != 1 {
		t.Fatalf("%d triggers with MaxConcurrent 1 and one pending", n)
	}
	h.ack(1, "a[0]")
	h.ack(1, "b[0]")
	// MinPause: nothing for 300ms after the completion.
	step(200 * time.Millisecond)
	if n := triggered(); n != 1 {
		t.Fatalf("triggered during the min pause (%d)", n)
	}
	step(200 * time.Millisecond)
	waitFor("second trigger after the pause", func() bool { return triggered() == 2 })
	cancel()
	<-done
}

func TestSavepointIsSelfContainedAndNotRetained(t *testing.T) {
	h := newHarness(t, Config{})
	dir := path.Join(h.root, "savepoints", "sp1")
	res := make(chan error, 1)
	var meta *Metadata
	go func() {
		m, err := h.c.TriggerSavepoint(context.Background(), dir, false)
		meta = m
		res <- err
	}()
	var b Barrier
	deadline := time.Now().Add(10 * time.Second)
	for {
		h.mu.Lock()
		if len(h.triggered) == 1 {
			b = h.triggered[0]
		}
		h.mu.Unlock()
		if b.ID != 0 || time.Now().After(deadline) {
			break
		}
		runtimeGosched()
	}
	if !b.Savepoint || b.Dir != dir {
		t.Fatalf("barrier %+v", b)
	}
	for _, task := range []string{"a[0]", "b[0]"} {
		name := path.Join(dir, task[:1], "state")
		info, err := h.store.Put(context.Background(), name, bytes.NewReader([]byte("x")))
		if err != nil {
			t.Fatal(err)
		}
		h.c.Ack(context.Background(), b.ID, TaskState{Task: task, Nodes: []string{"n"}, Parallelism: 1,
			State: &StateHandle{Format: FormatCanonical, Files: []FileRef{{Name: "state", Path: Relative(dir, name), Size: info.Size, CRC32C: info.CRC32C}}}})
	}
	if err := <-res; err != nil {
		t.Fatal(err)
	}
	if meta == nil || !meta.Savepoint {
		t.Fatalf("savepoint metadata %+v", meta)
	}
	for _, ts := range meta.Tasks {
		for _, f := range ts.State.Files {
			if strings.HasPrefix(f.Path, "..") {
				t.Fatalf("savepoint references %s outside itself", f.Path)
			}
		}
	}
	if len(h.c.Retained()) != 0 {
		t.Fatal("a savepoint counts as a retained checkpoint")
	}
}

func TestLoadSkipsDamagedAndContinuesNumbering(t *testing.T) {
	h := newHarness(t, Config{Retain: 5})
	for id := int64(1); id <= 3; id++ {
		if _, err := h.c.TriggerCheckpoint(); err != nil {
			t.Fatal(err)
		}
		h.ack(id, "a[0]", fmt.Sprintf("s%d", id))
		h.ack(id, "b[0]")
	}
	// Damage chk-2's metadata; leave an incomplete chk-4 (no metadata).
	ctx := context.Background()
	if _, err := h.store.Put(ctx, path.Join(h.c.CheckpointDir(2), MetadataName), strings.NewReader("{not json")); err != nil {
		t.Fatal(err)
	}
	if _, err := h.store.Put(ctx, path.Join(h.c.CheckpointDir(4), "a-0", "state"), strings.NewReader("partial")); err != nil {
		t.Fatal(err)
	}
	c2 := NewCoordinator(Config{}, Options{Clock: h.clk, Storage: h.store, Root: h.root, Job: "j1", MaxParallelism: 128,
		Hooks: Hooks{Trigger: func(Barrier) error { return nil }}})
	if err := c2.Load(ctx); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, m := range c2.Retained() {
		ids = append(ids, m.ID)
	}
	if fmt.Sprint(ids) != "[3 1]" {
		t.Fatalf("retained after load: %v", ids)
	}
	c2.Start([]string{"a[0]"})
	if id, err := c2.TriggerCheckpoint(); err != nil || id != 5 {
		t.Fatalf("next id after load: %d %v", id, err)
	}
	c2.AbortAll(errors.New("test over"))
	// Sweep removes what no retained checkpoint references: chk-2's
	// remains, chk-4, s2.
	if err := c2.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{"shared/s2", "checkpoints/chk-4/a-0/state", "checkpoints/chk-2/_metadata"} {
		if h.exists(gone) {
			t.Errorf("%s survived the sweep", gone)
		}
	}
	for _, kept := range []string{"shared/s1", "shared/s3", "checkpoints/chk-3/_metadata", "checkpoints/chk-1/a-0/state"} {
		if !h.exists(kept) {
			t.Errorf("%s was swept", kept)
		}
	}
}

func TestResolveAndRelative(t *testing.T) {
	cases := []struct{ dir, target, rel string }{
		{"r/checkpoints/chk-1", "r/shared/a/1.sst", "../../shared/a/1.sst"},
		{"r/checkpoints/chk-1", "r/checkpoints/chk-1/t/x", "t/x"},
		{"sp", "sp/t/state", "t/state"},
	}
	for _, c := range cases {
		if got := Relative(c.dir, c.target); got != c.rel {
			t.Errorf("Relative(%q, %q) = %q, want %q", c.dir, c.target, got, c.rel)
		}
		root := "r"
		if !strings.HasPrefix(c.dir, "r/") {
			root = ""
		}
		if got, err := Resolve(c.dir, c.rel, root); err != nil || got != c.target {
			t.Errorf("Resolve(%q, %q) = %q, %v", c.dir, c.rel, got, err)
		}
	}
	for _, bad := range []struct{ dir, rel, root string }{
		{"r/checkpoints/chk-1", "../../../other/x", "r"},
		{"sp", "../x", ""},
		{"", "../x", ""},
		{"sp", "/abs", ""},
		{"sp", "", ""},
	} {
		if _, err := Resolve(bad.dir, bad.rel, bad.root); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Resolve(%q, %q, %q) accepted", bad.dir, bad.rel, bad.root)
		}
	}
}

func TestDecodeMetadataRejectsBadInput(t *testing.T) {
	good := `{"format":1,"job":"j","id":1,"triggeredAt":0,"completedAt":0,"maxParallelism":128,"tasks":[{"task":"a[0]","nodes":["a"],"subtask":0,"parallelism":1,"keyGroups":[0,128],"alignmentMs":0,"syncMs":0,"asyncMs":0}]}`
	if _, err := DecodeMetadata([]byte(good), "x"); err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string]string{
		"not json":        `{`,
		"unknown field":   strings.Replace(good, `"job"`, `"jobb"`, 1),
		"format":          strings.Replace(good, `"format":1`, `"format":9`, 1),
		"maxParallelism":  strings.Replace(good, `"maxParallelism":128`, `"maxParallelism":0`, 1),
		"subtask":         strings.Replace(good, `"subtask":0`, `"subtask":3`, 1),
		"no task name":    strings.Replace(good, `"task":"a[0]"`, `"task":""`, 1),
		"unknown state":   strings.Replace(good, `"alignmentMs"`, `"state":{"format":"zip","files":[]},"alignmentMs"`, 1),
		"key groups wide": strings.Replace(good, `"alignmentMs"`, `"state":{"format":"canonical","files":[]},"keyGroups":[0,999],"alignmentMs"`, 1),
	} {
		if _, err := DecodeMetadata([]byte(bad), "x"); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: accepted (%v)", name, err)
		}
	}
}

func runtimeGosched() { time.Sleep(100 * time.Microsecond) }

func TestStatsJSON(t *testing.T) {
	s := Stats{ID: 7, Status: "completed", TriggeredAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Duration: 1500 * time.Millisecond,
		Size: 10, Uploaded: 3, AlignmentMs: 1.5, SyncMs: 0.25, Acked: 4, Tasks: 4, Err: "x"}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":7,"savepoint":false,"status":"completed","triggered_at":"2026-01-02T03:04:05Z","duration":"1.5s","duration_ms":1500,"size":10,"uploaded":3,"alignment_ms":1.5,"sync_ms":0.25,"acked":4,"tasks":4,"error":"x"}`
	if string(b) != want {
		t.Fatalf("JSON\n got %s\nwant %s", b, want)
	}
	var back Stats
	if err := json.Unmarshal(b, &back); err != nil || back != s {
		t.Fatalf("round trip: %+v, %v; want %+v", back, err, s)
	}
}

package cluster

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weirstream/weir/checkpoint"
	"github.com/weirstream/weir/connectors"
	"github.com/weirstream/weir/runtime"
)

// inProcess is a coordinator and workers in this process, talking gRPC
// over loopback (so the race detector sees both sides).
type inProcess struct {
	coord   *Coordinator
	workers []*Worker
	storage checkpoint.Storage
	files   string
	cancel  context.CancelFunc
}

func startInProcess(t testing.TB, workers, slots int) *inProcess {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := checkpoint.OpenLocal(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &inProcess{storage: st, files: t.TempDir(), cancel: cancel}
	secret := []byte("s3cret")
	c.coord, err = NewCoordinator(CoordinatorConfig{Secret: secret, HeartbeatInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = c.coord.Serve(ctx, ln); close(done) }()
	var wdone []chan struct{}
	for i := range workers {
		wl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		w, err := NewWorker(WorkerConfig{ID: fmt.Sprintf("w%d", i), Coordinator: ln.Addr().String(), Slots: slots, Secret: secret,
			DataDir: t.TempDir(), Storage: st}, wl)
		if err != nil {
			t.Fatal(err)
		}
		c.workers = append(c.workers, w)
		d := make(chan struct{})
		wdone = append(wdone, d)
		go func() { _ = w.Serve(ctx); close(d) }()
	}
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := c.coord.WaitForSlots(wctx, workers*slots); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		for _, d := range wdone {
			<-d
		}
		<-done
	})
	return c
}

// run runs spec on the cluster with checkpoints and returns the job.
func (c *inProcess) run(t testing.TB, spec string) *runtime.Job {
	t.Helper()
	s, err := runtime.ParseSpec([]byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	var conns runtime.Connectors
	connectors.RegisterWithOptions(&conns, connectors.RegisterOptions{BaseDir: c.files})
	job, err := runtime.Compile(context.Background(), s, runtime.Options{
		Connectors: conns,
		Checkpoint: &runtime.CheckpointOptions{Storage: c.storage, Tenant: "t", Job: "j"},
		Cluster:    c.coord.ForJob("t", "j", ConnectorPolicy{BaseDir: c.files, AnyBroker: true}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := job.Run(context.Background()); err != nil {
		t.Fatalf("run: %v", err)
	}
	return job
}

// TestJobAcrossWorkers: records cross workers in both directions (key
// partitioning at parallelism 4 over 2 workers), checkpoints complete,
// the exactly-once file sink commits, and each key's records arrive once.
func TestJobAcrossWorkers(t *testing.T) {
	c := startInProcess(t, 2, 2)
	const n, keys = 20000, 97
	job := c.run(t, fmt.Sprintf(`
name: across
parallelism: 4
exchange: {batchBytes: 1024, buffers: 2}
checkpoints: {interval: 50ms}
nodes:
  - id: gen
    source: datagen
    config: {count: %d, rate: 5000, key: {kind: sequence, start: 0, end: %d}, value: {kind: sequence, start: 0, end: 1000000000}}
  - {id: out, sink: file, config: {path: out, format: kv}, inputs: [{from: gen, partition: key}]}
`, n, keys-1))
	recs, err := connectors.ReadCommitted(filepath.Join(c.files, "out"))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != n {
		t.Fatalf("%d records committed, want %d", len(recs), n)
	}
	seen := map[string]bool{}
	for _, r := range recs {
		if seen[string(r)] {
			t.Fatalf("record %q twice", r)
		}
		seen[string(r)] = true
	}
	completed := 0
	for _, h := range job.History() {
		if h.Status == "completed" {
			completed++
		}
	}
	if completed == 0 {
		t.Fatal("no checkpoint completed")
	}
	var in int64
	for _, s := range job.Stats() {
		if strings.HasPrefix(s.Task, "out[") {
			in += s.RecordsIn
		}
	}
	if in != n {
		t.Errorf("stats: the sinks received %d records, want %d", in, n)
	}
	if got := c.coord.Capacity(); got != 4 {
		t.Errorf("capacity %d, want 4", got)
	}
	for _, w := range c.coord.Workers() {
		if w.Used != 0 {
			t.Errorf("worker %s holds %d slots after the job ended", w.ID, w.Used)
		}
	}
}

// TestPlacement: spread balances slots over workers, pack fills them in
// turn, a job that does not fit waits SlotWait and then says so, and a
// tenant's slot quota is enforced.
func TestPlacement(t *testing.T) {
	c := &Coordinator{cfg: CoordinatorConfig{Placement: PlaceSpread}, workers: map[string]*workerEntry{}, attempts: map[string]*attemptEntry{}, changed: make(chan struct{})}
	for _, id := range []string{"a", "b", "c"} {
		c.workers[id] = &workerEntry{id: id, slots: 3}
	}
	c.workers["a"].used = 1
	place := func(placement string, need int) string {
		c.cfg.Placement = placement
		ws, err := c.placeLocked("t", need)
		if err != nil {
			return err.Error()
		}
		var ids []string
		for _, w := range ws {
			ids = append(ids, w.id)
		}
		return strings.Join(ids, ",")
	}
	for _, tc := range []struct {
		placement string
		need      int
		want      string
	}{
		{PlaceSpread, 3, "b,c,a"},
		{PlaceSpread, 6, "b,c,a,b,c,a"},
		{PlacePack, 4, "a,a,b,b"},
		{PlacePack, 8, "a,a,b,b,b,c,c,c"},
		{PlaceSpread, 9, "9 slots needed, 8 free on 3 workers: not enough free slots"},
	} {
		if got := place(tc.placement, tc.need); got != tc.want {
			t.Errorf("%s %d: got %s, want %s", tc.placement, tc.need, got, tc.want)
		}
	}
	c.cfg.SlotQuota = func(string) int { return 2 }
	if got := place(PlaceSpread, 3); !strings.Contains(got, "slot quota 2") {
		t.Errorf("quota: %s", got)
	}
}

// TestRefusals: a worker with the wrong secret or protocol version gets a
// clear error from Serve and is not registered.
func TestRefusals(t *testing.T) {
	c := startInProcess(t, 1, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	coordAddr := ""
	for _, w := range c.workers {
		coordAddr = w.cfg.Coordinator
	}
	for _, tc := range []struct {
		secret, protocol, want string
	}{
		{"wrong", ProtocolVersion, "refused: wrong cluster secret"},
		{"s3cret", "9", "refused: cluster protocol version 9 is not supported: this member speaks version " + ProtocolVersion},
	} {
		cfg := WorkerConfig{ID: "intruder", Coordinator: coordAddr, Slots: 1, Secret: []byte(tc.secret), DataDir: t.TempDir(), Storage: c.storage}
		SetProtocolForTesting(&cfg, tc.protocol)
		w, err := NewWorker(cfg, ln)
		if err != nil {
			t.Fatal(err)
		}
		err = w.Serve(context.Background())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Serve: %v, want %q", err, tc.want)
		}
		ln, _ = net.Listen("tcp", "127.0.0.1:0")
	}
	if ws := c.coord.Workers(); len(ws) != 1 {
		t.Errorf("%d workers registered, want 1", len(ws))
	}
}

func TestWritePrometheus(t *testing.T) {
	var b strings.Builder
	stats := []JobStats{{Tenant: "a", Job: `j"1`, TaskStats: runtime.TaskStats{Task: "src[0]", RecordsIn: 5, RecordsOut: 4, Watermark: 1000, Backpressure: 1500 * time.Millisecond}}}
	if err := WritePrometheus(&b, "w1", stats, []JobCheckpoints{{Tenant: "a", Job: "j", Completed: 2, LastAt: time.Unix(10, 0), LastTook: 250 * time.Millisecond}}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"# TYPE weir_task_records_in_total counter\n",
		`weir_task_records_in_total{tenant="a",job="j\"1",task="src[0]",subtask="0",worker="w1"} 5` + "\n",
		`weir_task_backpressure_seconds_total{tenant="a",job="j\"1",task="src[0]",subtask="0",worker="w1"} 1.5` + "\n",
		`weir_task_watermark_milliseconds{tenant="a",job="j\"1",task="src[0]",subtask="0",worker="w1"} 1000` + "\n",
		`weir_job_checkpoints_completed_total{tenant="a",job="j"} 2` + "\n",
		`weir_job_last_checkpoint_duration_seconds{tenant="a",job="j"} 0.25` + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, l := range lines {
		if !strings.HasPrefix(l, "# ") && !strings.HasPrefix(l, "weir_") {
			t.Errorf("malformed line %q", l)
		}
	}
}

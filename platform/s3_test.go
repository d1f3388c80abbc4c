package platform_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weirstream/weir/checkpoint"
	"github.com/weirstream/weir/checkpoint/miniotest"
	"github.com/weirstream/weir/platform"
	"github.com/weirstream/weir/platform/jobs"
	"github.com/weirstream/weir/platform/registry"
)

// TestPlatformOnS3 runs the platform with its storage on a real MinIO
// server: module bytes, checkpoints and savepoints land in the bucket under
// the tenant's prefix, and a restarted platform resumes the job from its
// checkpoint in the bucket.
func TestPlatformOnS3(t *testing.T) {
	srv := miniotest.Start(t)
	wasm := buildWasm(t, "wordcount")
	opts := platform.Options{
		DataDir:        t.TempDir(),
		Storage:        "s3://" + srv.Bucket + "/weir?endpoint=" + srv.Endpoint + "&secure=false",
		StorageOptions: checkpoint.StorageOptions{AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey},
	}
	ctx := context.Background()
	p, err := platform.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Tenants.CreateTenant("acme", nil); err != nil {
		t.Fatal(err)
	}
	v, _, err := p.Registry.Upload(ctx, "acme", "wordcount", wasm, registry.Limits{MaxModules: 10, MaxBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	spec := `
name: live
parallelism: 2
modules: {wc: wordcount@1}
checkpoints: {interval: 100ms}
nodes:
  - {id: gen, source: datagen, parallelism: 1, config: {rate: 2000, value: {kind: oneOf, values: ["a b c", "b c", "c"]}}}
  - {id: split, module: wc, operator: split, inputs: [{from: gen, partition: rebalance}]}
  - {id: count, module: wc, operator: count, inputs: [{from: split, partition: key}]}
  - {id: out, sink: blackhole, inputs: [count]}
`
	job, err := p.Jobs.Deploy("acme", jobs.DeployRequest{Spec: []byte(spec)})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a completed checkpoint", func() bool {
		d, err := p.Jobs.Get("acme", job.ID)
		return err == nil && d.Checkpoints.Completed > 0
	})
	op, err := p.Jobs.TriggerSavepoint("acme", job.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the savepoint", func() bool {
		o, err := p.Jobs.Operation("acme", op.ID)
		if err == nil && o.Done && o.Error != "" {
			t.Fatalf("savepoint failed: %s", o.Error)
		}
		return err == nil && o.Done
	})
	objs, err := p.Storage.List(ctx, "tenants/acme")
	if err != nil {
		t.Fatal(err)
	}
	var module, checkpoints, savepoints int
	for _, o := range objs {
		switch {
		case o.Name == "tenants/acme/modules/sha256-"+strings.TrimPrefix(v.Digest, "sha256:")+".wasm":
			module++
		case strings.HasPrefix(o.Name, "tenants/acme/jobs/"+job.ID+"/checkpoints/"):
			checkpoints++
		case strings.HasPrefix(o.Name, "tenants/acme/jobs/"+job.ID+"/savepoints/"):
			savepoints++
		}
	}
	if module != 1 || checkpoints == 0 || savepoints == 0 {
		t.Fatalf("bucket holds module=%d checkpoint objects=%d savepoint objects=%d; want 1, >0, >0", module, checkpoints, savepoints)
	}

	// A restarted platform resumes the job from its checkpoint in S3.
	p.Close()
	p, err = platform.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	waitUntil(t, "the resumed job's first checkpoint", func() bool {
		d, err := p.Jobs.Get("acme", job.ID)
		if err == nil && d.State != jobs.StateRunning {
			t.Fatalf("resumed job is %s: %s", d.State, d.Error)
		}
		return err == nil && d.Checkpoints.Completed > 0
	})
	lines, _, err := p.Jobs.Logs("acme", job.ID, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	restored := false
	for _, l := range lines {
		restored = restored || strings.Contains(l.Message, "restored from")
	}
	if !restored {
		t.Errorf("the resumed job's log does not say it restored a checkpoint: %+v", lines)
	}
}

// buildWasm compiles examples/<name> to Wasm.
func buildWasm(t testing.TB, name string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), name+".wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "../examples/"+name)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", name, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// waitUntil polls cond until it holds, failing after a deadline.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

package registry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/runtime"
	"github.com/weirstream/weir/wasmhost"
)

func TestLoaderCompilesOncePerDigest(t *testing.T) {
	f := newFixture(t)
	wc := wordcount(t)
	f.upload("acme", "wc", wc)
	f.upload("acme", "alias", wc)
	f.reopen() // a fresh cache: loads compile from storage

	// Concurrent first loads, by several references to the same bytes.
	refs := []string{"wc", "wc@1", "alias", digestOf(wc), "alias@" + digestOf(wc), "wc@latest", "wc", "alias@1"}
	mods := make([]*wasmhost.Module, len(refs))
	errs := make([]error, len(refs))
	var wg sync.WaitGroup
	for i, ref := range refs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mods[i], _, errs[i] = f.reg.LoadRef(ctx, "acme", ref)
		}()
	}
	wg.Wait()
	for i := range refs {
		if errs[i] != nil {
			t.Fatalf("LoadRef(%q): %v", refs[i], errs[i])
		}
		if mods[i] != mods[0] {
			t.Fatalf("LoadRef(%q) returned another module than LoadRef(%q)", refs[i], refs[0])
		}
	}
	if n := f.reg.cache.compiles.Load(); n != 1 {
		t.Fatalf("%d compilations for one digest, want 1", n)
	}

	// The runtime loader wraps the same module, and its instances run.
	load := f.reg.Loader("acme")
	m1, err := load(ctx, "wc", runtime.ModuleSpec{Ref: "wc@1"})
	if err != nil {
		t.Fatal(err)
	}
	m2, err := load(ctx, "other", runtime.ModuleSpec{Ref: "alias"})
	if err != nil {
		t.Fatal(err)
	}
	if m1 != m2 || m1 != runtime.WasmModule(mods[0]) {
		t.Fatal("the loader did not share the compiled module")
	}
	if n := f.reg.cache.compiles.Load(); n != 1 {
		t.Fatalf("%d compilations after the loader, want 1", n)
	}
	if got := fmt.Sprint(m1.Operators()); got != "[{split 0} {count 1}]" {
		t.Fatalf("operators = %s", got)
	}
	words := runSplit(t, m1, "The cat, the HAT")
	if want := "[the cat the hat]"; fmt.Sprint(words) != want {
		t.Fatalf("split emitted %v, want %s", words, want)
	}

	// Paths are refused: a platform job never reads the host's files.
	if _, err := load(ctx, "wc", runtime.ModuleSpec{Path: "/etc/passwd"}); err == nil || !strings.Contains(err.Error(), "/etc/passwd") {
		t.Fatalf("loading a path: %v", err)
	}
	if _, err := load(ctx, "wc", runtime.ModuleSpec{Ref: "wc@9"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("loading a missing version: %v", err)
	}
	if _, err := f.reg.Loader("intruder")(ctx, "wc", runtime.ModuleSpec{Ref: digestOf(wc)}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another tenant loaded the digest: %v", err)
	}
}

// runSplit runs wordcount's split operator on one line through the
// runtime.Module interface and returns the words it emitted.
func runSplit(t *testing.T, m runtime.Module, line string) []string {
	t.Helper()
	inst, err := m.NewInstance(ctx, runtime.InstanceEnv{Name: "test/split[0]"})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(ctx)
	if err := inst.Open(ctx, abi.OpenInfo{Operator: "split", NodeID: "split", Parallelism: 1, MaxParallelism: 128, Inputs: 1}); err != nil {
		t.Fatal(err)
	}
	var enc abi.Encoder
	enc.Record(abi.TagMain, nil, []byte(line), 1)
	out, err := inst.Process(ctx, 0, enc.B)
	if err != nil {
		t.Fatal(err)
	}
	var words []string
	dec := abi.NewDecoder(out)
	for dec.More() {
		var ev abi.Event
		if err := dec.Next(&ev); err != nil {
			t.Fatal(err)
		}
		words = append(words, string(ev.Value))
	}
	return words
}

func TestCompiledModulesSharedAcrossTenantsUntilReleased(t *testing.T) {
	f := newFixture(t)
	wc := wordcount(t)
	f.upload("a", "wc", wc)
	f.upload("b", "wc", wc)
	ma, _, err := f.reg.LoadRef(ctx, "a", "wc")
	if err != nil {
		t.Fatal(err)
	}
	mb, _, err := f.reg.LoadRef(ctx, "b", "wc")
	if err != nil {
		t.Fatal(err)
	}
	if ma != mb {
		t.Fatal("two tenants with the same bytes got two compiled modules")
	}
	// a deletes its version: b still uses the compiled module.
	if err := f.reg.DeleteName(ctx, "a", "wc", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := runtime.WasmModule(mb).NewInstance(ctx, runtime.InstanceEnv{Name: "b"}); err != nil {
		t.Fatalf("b's module after a's delete: %v", err)
	}
	// b deletes its last version: the module is closed and forgotten.
	if err := f.reg.Delete(ctx, "b", "wc", "1", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := mb.Instantiate(ctx, wasmhost.InstanceConfig{Name: "after"}); !errors.Is(err, wasmhost.ErrClosed) {
		t.Fatalf("instantiating a released module: %v, want ErrClosed", err)
	}
	f.upload("b", "wc", wc)
	m2, _, err := f.reg.LoadRef(ctx, "b", "wc")
	if err != nil {
		t.Fatal(err)
	}
	if m2 == mb {
		t.Fatal("a released module was handed out again")
	}
	if _, err := runtime.WasmModule(m2).NewInstance(ctx, runtime.InstanceEnv{Name: "b2"}); err != nil {
		t.Fatalf("the re-uploaded module: %v", err)
	}
}

// TestConcurrentUploads hammers one tenant and another with uploads of the
// same and different bytes: every version number is given once, and the
// store stays consistent (run with -race).
func TestConcurrentUploads(t *testing.T) {
	f := newFixture(t)
	wc := wordcount(t)
	const n = 6
	var wg sync.WaitGroup
	got := make([]Version, 2*n)
	errs := make([]error, 2*n)
	for i := range 2 * n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tenant := []string{"x", "y"}[i%2]
			got[i], _, errs[i] = f.reg.Upload(ctx, tenant, "m", variant(wc, i/2%3), Limits{MaxModules: 3})
		}()
	}
	wg.Wait()
	seen := map[string]string{}
	for i, v := range got {
		if errs[i] != nil {
			t.Fatalf("upload %d: %v", i, errs[i])
		}
		tenant := []string{"x", "y"}[i%2]
		key := fmt.Sprintf("%s@%d", tenant, v.Version)
		if d, ok := seen[key]; ok && d != v.Digest {
			t.Fatalf("%s given to two digests", key)
		}
		seen[key] = v.Digest
	}
	for _, tenant := range []string{"x", "y"} {
		vs, err := f.reg.Versions(tenant, "m")
		if err != nil || len(vs) != 3 {
			t.Fatalf("tenant %s: %d versions, %v; want 3 (three distinct modules)", tenant, len(vs), err)
		}
		for i, v := range vs {
			if v.Version != i+1 {
				t.Fatalf("tenant %s: versions %+v", tenant, vs)
			}
		}
	}
}

// TestCacheWaiterLoadsItsOwnBytes: when the load a caller waits for fails
// (another tenant's corrupt object), the waiter does not get that error,
// which names the other tenant's object: it loads its own bytes.
func TestCacheWaiterLoadsItsOwnBytes(t *testing.T) {
	c := newModuleCache(wasmRuntime(t))
	defer c.close(ctx)
	wc := wordcount(t)
	hexDigest := strings.TrimPrefix(digestOf(wc), "sha256:")
	release := make(chan struct{})
	aErr := make(chan error, 1)
	go func() {
		_, err := c.get(ctx, hexDigest, "a", func(context.Context) ([]byte, error) {
			<-release
			return nil, errors.New("object tenants/a/modules/x is corrupt")
		})
		aErr <- err
	}()
	waitFor(t, "a's load to start", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.entries[hexDigest] != nil
	})
	type result struct {
		m   *wasmhost.Module
		err error
	}
	bRes := make(chan result, 1)
	go func() {
		m, err := c.get(ctx, hexDigest, "b", func(context.Context) ([]byte, error) { return wc, nil })
		bRes <- result{m, err}
	}()
	waitFor(t, "b to wait for a's load", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		e := c.entries[hexDigest]
		_, ok := e.users["b"]
		return ok
	})
	close(release)
	if err := <-aErr; err == nil || !strings.Contains(err.Error(), "tenants/a/") {
		t.Fatalf("a's load: %v, want its own failure", err)
	}
	r := <-bRes
	if r.err != nil || r.m == nil || r.m.Digest() != hexDigest {
		t.Fatalf("b's load: %v", r.err)
	}
	if n := c.compiles.Load(); n != 1 {
		t.Fatalf("%d compilations, want 1 (b's)", n)
	}
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

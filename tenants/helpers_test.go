package tenants

import (
	"errors"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weirstream/weir/platform/meta"
	"github.com/weirstream/weir/runtime/clock"
)

// t0 is the fake clock's start; times in golden values derive from it.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fixture is a service over a real Pebble store in a temporary directory.
type fixture struct {
	dir   string
	store *meta.Store
	clk   *clock.Fake
	svc   *Service
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir(), clk: clock.NewFake(t0)}
	f.open(t)
	t.Cleanup(func() { f.store.Close() })
	return f
}

// open (re)opens the store and loads a new service from it.
func (f *fixture) open(t testing.TB) {
	t.Helper()
	st, err := meta.Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	f.store = st
	svc, err := New(st, f.clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
}

// reopen closes the store and opens it again: only what was committed
// survives.
func (f *fixture) reopen(t testing.TB) {
	t.Helper()
	if err := f.store.Close(); err != nil {
		t.Fatal(err)
	}
	f.open(t)
}

func (f *fixture) mustTenant(t testing.TB, id string, q *Quotas) Tenant {
	t.Helper()
	tn, err := f.svc.CreateTenant(id, q)
	if err != nil {
		t.Fatal(err)
	}
	return tn
}

func (f *fixture) mustKey(t testing.TB, tenant string, role Role, expiresAt *time.Time) (Key, string) {
	t.Helper()
	k, token, err := f.svc.CreateKey(tenant, role, "test key", expiresAt)
	if err != nil {
		t.Fatal(err)
	}
	return k, token
}

// keysIn lists the store's keys under prefix.
func keysIn(t testing.TB, kv KV, prefix string) []string {
	t.Helper()
	var out []string
	if err := kv.Scan(prefix, func(k string, _ []byte) error {
		out = append(out, k)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// failingKV wraps a KV and fails Commit while fail is set.
type failingKV struct {
	KV
	fail bool
}

var errCommit = errors.New("disk on fire")

func (f *failingKV) Commit(puts map[string][]byte, deletes []string) error {
	if f.fail {
		return errCommit
	}
	return f.KV.Commit(puts, deletes)
}

// memKV is a KV in a map, for benchmarks that create many keys and measure
// only the in-memory paths (a Pebble commit is an fsync).
type memKV struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (kv *memKV) Scan(prefix string, fn func(key string, value []byte) error) error {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	keys := make([]string, 0, len(kv.m))
	for k := range kv.m {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := fn(k, kv.m[k]); err != nil {
			return err
		}
	}
	return nil
}

func (kv *memKV) Commit(puts map[string][]byte, deletes []string) error {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	if kv.m == nil {
		kv.m = map[string][]byte{}
	}
	for k, v := range puts {
		kv.m[k] = v
	}
	for _, k := range deletes {
		delete(kv.m, k)
	}
	return nil
}

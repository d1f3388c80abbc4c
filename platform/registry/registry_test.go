package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/weirstream/weir/checkpoint"
	"github.com/weirstream/weir/wasmhost"
)

var ctx = context.Background()

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func TestUploadVersionsAndRetry(t *testing.T) {
	f := newFixture(t)
	wc, ws := wordcount(t), windowedSum(t)

	v1, created, err := f.reg.Upload(ctx, "acme", "wordcount", wc, Limits{MaxModules: 10, MaxBytes: 64 << 20})
	if err != nil || !created {
		t.Fatalf("first upload: created=%v err=%v", created, err)
	}
	want1 := Version{
		Name: "wordcount", Version: 1, Digest: digestOf(wc), Size: int64(len(wc)), ABIVersion: 1,
		Operators: []Operator{{Name: "split", Keyed: false}, {Name: "count", Keyed: true}},
		CreatedAt: epoch,
	}
	if !reflect.DeepEqual(v1, want1) {
		t.Fatalf("v1 = %+v\nwant %+v", v1, want1)
	}

	f.now = epoch.Add(time.Minute)
	v2 := f.upload("acme", "wordcount", ws)
	if v2.Version != 2 || v2.Digest != digestOf(ws) || v2.CreatedAt != epoch.Add(time.Minute) {
		t.Fatalf("v2 = %+v", v2)
	}
	if ops := fmt.Sprint(v2.Operators); ops != "[{parse false} {sum true}]" {
		t.Fatalf("v2 operators = %s", ops)
	}

	// The same bytes again: a retry, not a version.
	again, created, err := f.reg.Upload(ctx, "acme", "wordcount", wc, Limits{})
	if err != nil || created || !reflect.DeepEqual(again, v1) {
		t.Fatalf("retry: %+v created=%v err=%v, want v1 and created=false", again, created, err)
	}

	vs, err := f.reg.Versions("acme", "wordcount")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(vs, []Version{v1, v2}) {
		t.Fatalf("Versions = %+v", vs)
	}
	if n := f.reg.Count("acme"); n != 2 {
		t.Fatalf("Count = %d, want 2", n)
	}
	wantObjects := []string{
		"tenants/acme/modules/sha256-" + strings.TrimPrefix(digestOf(ws), "sha256:") + ".wasm",
		"tenants/acme/modules/sha256-" + strings.TrimPrefix(digestOf(wc), "sha256:") + ".wasm",
	}
	if wantObjects[0] > wantObjects[1] {
		wantObjects[0], wantObjects[1] = wantObjects[1], wantObjects[0]
	}
	if got := f.objectNames(); !reflect.DeepEqual(got, wantObjects) {
		t.Fatalf("objects = %v, want %v", got, wantObjects)
	}
	b, err := f.reg.Bytes(ctx, "acme", v1)
	if err != nil || !bytes.Equal(b, wc) {
		t.Fatalf("Bytes(v1): %d bytes, err %v", len(b), err)
	}

	// The record's JSON is the API's ModuleVersion.
	js, _ := json.Marshal(v1)
	for _, field := range []string{`"name":"wordcount"`, `"version":1`, `"digest":"sha256:`, `"size":`, `"abi_version":1`,
		`"operators":[{"name":"split","keyed":false},{"name":"count","keyed":true}]`, `"created_at":"2025-03-01T12:00:00Z"`} {
		if !strings.Contains(string(js), field) {
			t.Errorf("JSON %s lacks %s", js, field)
		}
	}
}

func TestSameBytesUnderTwoNamesShareOneObject(t *testing.T) {
	f := newFixture(t)
	wc := wordcount(t)
	a := f.upload("acme", "a", wc)
	b := f.upload("acme", "b", wc)
	if a.Version != 1 || b.Version != 1 || a.Digest != b.Digest {
		t.Fatalf("a = %+v, b = %+v", a, b)
	}
	obj, _ := ObjectName("acme", a.Digest)
	if got := f.objectNames(); !reflect.DeepEqual(got, []string{obj}) {
		t.Fatalf("objects = %v, want only %s", got, obj)
	}
	if err := f.reg.Delete(ctx, "acme", "a", "1", nil); err != nil {
		t.Fatal(err)
	}
	if got := f.objectNames(); !reflect.DeepEqual(got, []string{obj}) {
		t.Fatalf("after deleting a@1 (b@1 still uses the bytes): objects = %v", got)
	}
	if _, err := f.reg.Bytes(ctx, "acme", b); err != nil {
		t.Fatalf("b's bytes after deleting a: %v", err)
	}
	if err := f.reg.Delete(ctx, "acme", "b", "latest", nil); err != nil {
		t.Fatal(err)
	}
	if got := f.objectNames(); len(got) != 0 {
		t.Fatalf("after deleting the last version: objects = %v", got)
	}
	// Only the counters remain: numbers are never given again.
	if got := fmt.Sprint(f.metaKeys()); got != "[modules/acme/n/a modules/acme/n/b]" {
		t.Fatalf("metadata after deleting everything: %s", got)
	}
}

func TestRejectedUploadsLeaveNothing(t *testing.T) {
	wc := wordcount(t)
	cases := []struct {
		name   string
		module string
		wasm   []byte
		lim    Limits
		check  func(t *testing.T, err error)
	}{
		{"not wasm", "m", []byte("definitely not wasm"), Limits{}, moduleError(wasmhost.ModuleNotWasm)},
		{"empty", "m", nil, Limits{}, moduleError(wasmhost.ModuleNotWasm)},
		{"wasm without the ABI", "m", []byte("\x00asm\x01\x00\x00\x00"), Limits{}, moduleError(wasmhost.ModuleMissingExport)},
		{"truncated wasm", "m", wc[:len(wc)/2], Limits{}, moduleError(wasmhost.ModuleMalformed)},
		{"too big", "m", wc, Limits{MaxBytes: int64(len(wc)) - 1}, func(t *testing.T, err error) {
			var le *LimitError
			if !errors.As(err, &le) || *le != (LimitError{Quota: "module_bytes", Limit: int64(len(wc)) - 1, Used: 0, Requested: int64(len(wc))}) {
				t.Fatalf("err = %v (%#v), want a module_bytes LimitError", err, le)
			}
		}},
		{"bad name", "Word Count", wc, Limits{}, func(t *testing.T, err error) {
			if !errors.Is(err, ErrInvalidName) || !strings.Contains(err.Error(), `"Word Count"`) {
				t.Fatalf("err = %v, want ErrInvalidName naming the name", err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			v, created, err := f.reg.Upload(ctx, "acme", c.module, c.wasm, c.lim)
			if err == nil || created || !reflect.DeepEqual(v, Version{}) {
				t.Fatalf("Upload = %+v, %v, %v; want an error", v, created, err)
			}
			c.check(t, err)
			if keys := f.metaKeys(); len(keys) != 0 {
				t.Errorf("metadata keys after a rejected upload: %v", keys)
			}
			if objs := f.objectNames(); len(objs) != 0 {
				t.Errorf("objects after a rejected upload: %v", objs)
			}
		})
	}
}

func moduleError(code wasmhost.ModuleErrorCode) func(t *testing.T, err error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var me *wasmhost.ModuleError
		if !errors.As(err, &me) || me.Code() != code {
			t.Fatalf("err = %v, want a ModuleError %s", err, code)
		}
		if !strings.Contains(err.Error(), "module m") {
			t.Fatalf("err = %v does not name the module", err)
		}
	}
}

func TestModulesQuota(t *testing.T) {
	f := newFixture(t)
	wc, ws := wordcount(t), windowedSum(t)
	lim := Limits{MaxModules: 2}
	for _, m := range []struct {
		name string
		wasm []byte
	}{{"a", wc}, {"b", ws}} {
		if _, _, err := f.reg.Upload(ctx, "acme", m.name, m.wasm, lim); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err := f.reg.Upload(ctx, "acme", "c", wc, lim)
	var le *LimitError
	if !errors.As(err, &le) || *le != (LimitError{Quota: "modules", Limit: 2, Used: 2, Requested: 1}) {
		t.Fatalf("third version: err = %v, want a modules LimitError 2/2", err)
	}
	// A retry of existing bytes charges nothing, even at the limit.
	if v, created, err := f.reg.Upload(ctx, "acme", "a", wc, lim); err != nil || created || v.Version != 1 {
		t.Fatalf("retry at the limit: %+v created=%v err=%v", v, created, err)
	}
	// The quota is per tenant.
	if _, _, err := f.reg.Upload(ctx, "other", "c", wc, lim); err != nil {
		t.Fatalf("another tenant: %v", err)
	}
	if err := f.reg.Delete(ctx, "acme", "b", "1", nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.reg.Upload(ctx, "acme", "c", wc, lim); err != nil {
		t.Fatalf("after a delete, under the quota again: %v", err)
	}
}

func TestResolve(t *testing.T) {
	f := newFixture(t)
	wc, ws := wordcount(t), windowedSum(t)
	wc1 := f.upload("acme", "wc", wc)             // wc@1
	wc2 := f.upload("acme", "wc", ws)             // wc@2
	wc3 := f.upload("acme", "wc", variant(wc, 1)) // wc@3
	other := f.upload("acme", "other", ws)        // other@1: same bytes as wc@2
	dup := f.upload("acme", "dup", variant(wc, 1))
	dup2 := f.upload("acme", "dup", wc) // dup@2 has wc@1's bytes
	_, _ = dup, dup2
	dws, dwc, dv1 := digestOf(ws), digestOf(wc), digestOf(variant(wc, 1))
	missing := "sha256:" + strings.Repeat("ab", 32)

	cases := []struct {
		ref  string
		want Version
		err  error
	}{
		{"wc", wc3, nil},
		{"wc@latest", wc3, nil},
		{"wc@1", wc1, nil},
		{"wc@2", wc2, nil},
		{"wc@" + dws, wc2, nil},
		{"other@" + dws, other, nil},
		{dws, other, nil}, // versions wc@2 and other@1: the lowest number
		{dwc, wc1, nil},   // wc@1 and dup@2
		{dv1, dup, nil},   // wc@3 and dup@1
		{"wc@4", Version{}, ErrNotFound},
		{"nope", Version{}, ErrNotFound},
		{"nope@1", Version{}, ErrNotFound},
		{missing, Version{}, ErrNotFound},
		{"other@" + dwc, Version{}, ErrNotFound},
		{"", Version{}, ErrBadRef},
		{"@1", Version{}, ErrBadRef},
		{"wc@", Version{}, ErrBadRef},
		{"wc@0", Version{}, ErrBadRef},
		{"wc@01", Version{}, ErrBadRef},
		{"wc@-1", Version{}, ErrBadRef},
		{"wc@+1", Version{}, ErrBadRef},
		{"wc@1.0", Version{}, ErrBadRef},
		{"wc@99999999999", Version{}, ErrBadRef},
		{"wc@newest", Version{}, ErrBadRef},
		{"wc@1@2", Version{}, ErrBadRef},
		{"WC", Version{}, ErrBadRef},
		{"wc/x", Version{}, ErrBadRef},
		{"sha256:", Version{}, ErrBadRef},
		{"sha256:abc", Version{}, ErrBadRef},
		{strings.ToUpper(dwc[:7]) + dwc[7:], Version{}, ErrBadRef},   // "SHA256:" is a name, and invalid
		{"sha256:" + strings.ToUpper(dwc[7:]), Version{}, ErrBadRef}, // upper-case hex
		{dwc + "0", Version{}, ErrBadRef},
		{"wc@sha256:xyz", Version{}, ErrBadRef},
		{"wc@sha1:" + strings.Repeat("a", 40), Version{}, ErrBadRef},
	}
	for _, c := range cases {
		t.Run(c.ref, func(t *testing.T) {
			got, err := f.reg.Resolve("acme", c.ref)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("Resolve(%q) = %+v, %v; want %v", c.ref, got, err, c.err)
				}
				if c.ref != "" && !strings.Contains(err.Error(), c.ref) {
					t.Fatalf("error %q does not name the reference", err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Fatalf("Resolve(%q) = %s, %v; want %s", c.ref, got.Ref(), err, c.want.Ref())
			}
		})
	}

	// Get: the REST path form.
	getCases := []struct {
		name, version string
		want          Version
		err           error
	}{
		{"wc", "latest", wc3, nil},
		{"wc", "2", wc2, nil},
		{"wc", dws, wc2, nil},
		{"wc", "9", Version{}, ErrNotFound},
		{"wc", "", Version{}, ErrBadRef},
		{"wc", "two", Version{}, ErrBadRef},
		{"Wc", "1", Version{}, ErrInvalidName},
		{"nope", "latest", Version{}, ErrNotFound},
	}
	for _, c := range getCases {
		got, err := f.reg.Get("acme", c.name, c.version)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("Get(%q, %q) = %+v, %v; want %v", c.name, c.version, got, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("Get(%q, %q) = %s, %v; want %s", c.name, c.version, got.Ref(), err, c.want.Ref())
		}
	}
}

func TestNamesAndVersions(t *testing.T) {
	f := newFixture(t)
	wc, ws := wordcount(t), windowedSum(t)
	// Key order of "<name>/" differs from name order for these names.
	for _, name := range []string{"a.b", "a", "a-b", "b"} {
		f.upload("acme", name, wc)
	}
	aV2 := f.upload("acme", "a", ws)
	names, err := f.reg.Names("acme")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range names {
		got = append(got, fmt.Sprintf("%s:%d/%d", n.Name, n.Latest.Version, n.Versions))
	}
	if want := "[a:2/2 a-b:1/1 a.b:1/1 b:1/1]"; fmt.Sprint(got) != want {
		t.Fatalf("Names = %v, want %s", got, want)
	}
	if !reflect.DeepEqual(names[0].Latest, aV2) {
		t.Fatalf("latest of a = %+v, want %+v", names[0].Latest, aV2)
	}
	if _, err := f.reg.Versions("acme", "zzz"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Versions of an unknown name: %v", err)
	}
	if names, err := f.reg.Names("empty"); err != nil || len(names) != 0 {
		t.Fatalf("Names of a tenant without modules = %v, %v", names, err)
	}
}

func TestTenantIsolation(t *testing.T) {
	f := newFixture(t)
	wc, ws := wordcount(t), windowedSum(t)
	a := f.upload("t1", "secret", wc)
	f.upload("t10", "mine", ws) // t1 is a prefix of t10

	for _, ref := range []string{"secret", "secret@1", "secret@latest", a.Digest, "secret@" + a.Digest} {
		if v, err := f.reg.Resolve("t10", ref); !errors.Is(err, ErrNotFound) {
			t.Errorf("t10 resolved t1's %q: %+v, %v", ref, v, err)
		}
		if _, _, err := f.reg.LoadRef(ctx, "t10", ref); !errors.Is(err, ErrNotFound) {
			t.Errorf("t10 loaded t1's %q: %v", ref, err)
		}
	}
	if _, err := f.reg.Get("t10", "secret", "1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("t10 got t1's module: %v", err)
	}
	if _, err := f.reg.Versions("t10", "secret"); !errors.Is(err, ErrNotFound) {
		t.Errorf("t10 listed t1's versions: %v", err)
	}
	names, err := f.reg.Names("t10")
	if err != nil || len(names) != 1 || names[0].Name != "mine" {
		t.Errorf("t10's names = %+v, %v", names, err)
	}
	if err := f.reg.Delete(ctx, "t10", "secret", "1", nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("t10 deleted t1's version: %v", err)
	}
	if err := f.reg.DeleteName(ctx, "t10", "secret", nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("t10 deleted t1's name: %v", err)
	}
	// Bytes of t1's version asked for t10: t10 has no such object.
	if _, err := f.reg.Bytes(ctx, "t10", a); !errors.Is(err, ErrNotFound) {
		t.Errorf("t10 read t1's bytes: %v", err)
	}
	if n := f.reg.Count("t1"); n != 1 {
		t.Errorf("Count(t1) = %d", n)
	}
	// t10 uploading the same bytes gets its own version 1 and its own object.
	b := f.upload("t10", "secret", wc)
	if b.Version != 1 || len(f.objectNames()) != 3 {
		t.Fatalf("t10's copy: %+v, objects %v", b, f.objectNames())
	}
	if _, err := f.reg.Resolve("t1", "secret"); err != nil {
		t.Fatalf("t1 lost its module: %v", err)
	}

	// Deleting a tenant removes its records and objects only.
	if err := f.reg.DeleteTenant(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	for _, k := range f.metaKeys() {
		if strings.HasPrefix(k, "modules/t1/") {
			t.Errorf("key %s survived DeleteTenant(t1)", k)
		}
	}
	for _, o := range f.objectNames() {
		if !strings.HasPrefix(o, "tenants/t10/") {
			t.Errorf("object %s survived DeleteTenant(t1)", o)
		}
	}
	if n := f.reg.Count("t10"); n != 2 {
		t.Errorf("Count(t10) after deleting t1 = %d, want 2", n)
	}
	if _, err := f.reg.Bytes(ctx, "t10", b); err != nil {
		t.Errorf("t10's bytes after deleting t1: %v", err)
	}
	// A deleted tenant starts again at version 1.
	if v := f.upload("t1", "secret", wc); v.Version != 1 {
		t.Errorf("after DeleteTenant: version %d", v.Version)
	}
}

func TestDeleteInUse(t *testing.T) {
	f := newFixture(t)
	wc, ws := wordcount(t), windowedSum(t)
	v1 := f.upload("acme", "m", wc)
	v2 := f.upload("acme", "m", ws)
	used := map[string]bool{v1.Digest: true}
	inUse := func(d string) bool { return used[d] }

	err := f.reg.Delete(ctx, "acme", "m", "1", inUse)
	var iu *InUseError
	if !errors.As(err, &iu) || *iu != (InUseError{Name: "m", Version: 1, Digest: v1.Digest}) {
		t.Fatalf("Delete of a used version: %v", err)
	}
	err = f.reg.DeleteName(ctx, "acme", "m", inUse)
	if !errors.As(err, &iu) || iu.Version != 1 {
		t.Fatalf("DeleteName with a used version: %v", err)
	}
	if vs, _ := f.reg.Versions("acme", "m"); len(vs) != 2 || len(f.objectNames()) != 2 {
		t.Fatalf("a refused delete removed something: %v, %v", vs, f.objectNames())
	}
	// Unused: deleted, and the numbering continues past it.
	if err := f.reg.Delete(ctx, "acme", "m", v2.Digest, inUse); err != nil {
		t.Fatal(err)
	}
	if v := f.upload("acme", "m", variant(ws, 7)); v.Version != 3 {
		t.Fatalf("after deleting version 2, the next is %d, want 3", v.Version)
	}
	used = map[string]bool{}
	if err := f.reg.DeleteName(ctx, "acme", "m", inUse); err != nil {
		t.Fatal(err)
	}
	if _, err := f.reg.Versions("acme", "m"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("versions after DeleteName: %v", err)
	}
	if objs := f.objectNames(); len(objs) != 0 {
		t.Fatalf("objects after DeleteName: %v", objs)
	}
	if v := f.upload("acme", "m", wc); v.Version != 4 {
		t.Fatalf("after DeleteName, the next version is %d, want 4", v.Version)
	}
	if err := f.reg.Delete(ctx, "acme", "m", "3", nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting a deleted version: %v", err)
	}
}

func TestReopenPersistsAndNumberingContinues(t *testing.T) {
	f := newFixture(t)
	wc, ws := wordcount(t), windowedSum(t)
	v1 := f.upload("acme", "m", wc)
	v2 := f.upload("acme", "m", ws)
	if err := f.reg.Delete(ctx, "acme", "m", "2", nil); err != nil {
		t.Fatal(err)
	}
	f.reopen()
	vs, err := f.reg.Versions("acme", "m")
	if err != nil || !reflect.DeepEqual(vs, []Version{v1}) {
		t.Fatalf("after reopen: %+v, %v", vs, err)
	}
	if v := f.upload("acme", "m", ws); v.Version != 3 || v.Digest != v2.Digest {
		t.Fatalf("after reopen the next version is %+v, want 3", v)
	}
	if _, created, err := f.reg.Upload(ctx, "acme", "m", wc, Limits{}); created || err != nil {
		t.Fatalf("retry after reopen: created=%v err=%v", created, err)
	}
	m, v, err := f.reg.LoadRef(ctx, "acme", "m@1")
	if err != nil || v.Version != 1 || m.Digest() != strings.TrimPrefix(v1.Digest, "sha256:") {
		t.Fatalf("LoadRef after reopen: %v %+v", err, v)
	}
}

func TestFailedCommitRemovesItsObject(t *testing.T) {
	f := newFixture(t)
	wc := wordcount(t)
	boom := errors.New("injected commit failure")
	f.reg.beforeCommit = func() error { return boom }
	if _, _, err := f.reg.Upload(ctx, "acme", "a", wc, Limits{}); !errors.Is(err, boom) {
		t.Fatalf("Upload = %v, want the injected failure", err)
	}
	if keys, objs := f.metaKeys(), f.objectNames(); len(keys) != 0 || len(objs) != 0 {
		t.Fatalf("after a failed commit: keys %v, objects %v", keys, objs)
	}
	// An object another version references survives the failure.
	f.reg.beforeCommit = nil
	a := f.upload("acme", "a", wc)
	f.reg.beforeCommit = func() error { return boom }
	if _, _, err := f.reg.Upload(ctx, "acme", "b", wc, Limits{}); !errors.Is(err, boom) {
		t.Fatalf("Upload = %v, want the injected failure", err)
	}
	if _, err := f.reg.Bytes(ctx, "acme", a); err != nil {
		t.Fatalf("a's bytes after b's failed upload: %v", err)
	}
	if _, err := f.reg.Versions("acme", "b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("b exists after its failed upload: %v", err)
	}
}

// failingStorage fails every Put.
type failingStorage struct{ checkpoint.Storage }

func (failingStorage) Put(context.Context, string, io.Reader) (checkpoint.ObjectInfo, error) {
	return checkpoint.ObjectInfo{}, errors.New("injected storage failure")
}

func TestStorageFailureRecordsNothing(t *testing.T) {
	f := newFixture(t)
	f.reg.objects = failingStorage{f.objects}
	_, _, err := f.reg.Upload(ctx, "acme", "a", wordcount(t), Limits{})
	if err == nil || !strings.Contains(err.Error(), "injected storage failure") || !strings.Contains(err.Error(), "acme") {
		t.Fatalf("Upload = %v, want the storage failure with the tenant", err)
	}
	if keys := f.metaKeys(); len(keys) != 0 {
		t.Fatalf("keys after a storage failure: %v", keys)
	}
}

func TestBytesDetectsCorruption(t *testing.T) {
	wc := wordcount(t)
	cases := []struct {
		name   string
		damage func([]byte) []byte
	}{
		{"flipped byte", func(b []byte) []byte { b[len(b)/2] ^= 1; return b }},
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }},
		{"extended", func(b []byte) []byte { return append(b, 0) }},
		{"empty", func([]byte) []byte { return nil }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			v := f.upload("acme", "m", wc)
			obj, _ := ObjectName("acme", v.Digest)
			path := filepath.Join(f.objects.Root(), filepath.FromSlash(obj))
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, c.damage(b), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err = f.reg.Bytes(ctx, "acme", v)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), obj) {
				t.Fatalf("Bytes = %v, want ErrCorrupt naming %s", err, obj)
			}
			// A fresh registry (no compiled module cached) cannot load it.
			f.reopen()
			if _, _, err := f.reg.LoadRef(ctx, "acme", "m@1"); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("LoadRef of a corrupt module = %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestValidateName(t *testing.T) {
	ok := []string{"a", "0", "wordcount", "word-count_2.1", strings.Repeat("x", 63), "sha256"}
	bad := []string{"", "-a", ".a", "_a", "A", "a b", "a/b", "a@1", "a:b", "é", strings.Repeat("x", 64), ".", ".."}
	for _, n := range ok {
		if err := ValidateName(n); err != nil {
			t.Errorf("ValidateName(%q) = %v", n, err)
		}
	}
	for _, n := range bad {
		if err := ValidateName(n); !errors.Is(err, ErrInvalidName) {
			t.Errorf("ValidateName(%q) = %v, want ErrInvalidName", n, err)
		}
	}
}

func TestInvalidTenant(t *testing.T) {
	f := newFixture(t)
	for _, tenant := range []string{"", "../x", "T1", "a/b"} {
		if _, _, err := f.reg.Upload(ctx, tenant, "m", wordcount(t), Limits{}); err == nil {
			t.Errorf("Upload for tenant %q accepted", tenant)
		}
		if _, err := f.reg.Resolve(tenant, "m"); err == nil {
			t.Errorf("Resolve for tenant %q accepted", tenant)
		}
	}
	if keys, objs := f.metaKeys(), f.objectNames(); len(keys) != 0 || len(objs) != 0 {
		t.Fatalf("invalid tenants stored something: %v %v", keys, objs)
	}
}

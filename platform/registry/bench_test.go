package registry

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/weirstream/weir/checkpoint"
	"github.com/weirstream/weir/platform/meta"
	"github.com/weirstream/weir/wasmhost"
)

// BenchmarkUpload measures an upload of the wordcount module (about 2.8 MB):
//
//   - new: new bytes each time (a custom section differs): hash, validate
//     (wazero reuses the machine code of the identical code section, so
//     this is instrumentation, the validation instance and the checks),
//     store the object (fsynced) and commit the records (fsynced);
//   - cold: the same on a fresh runtime without a compilation cache: what
//     the first upload of a module costs, machine-code generation included;
//   - retry: the same bytes again (the idempotent path: hash and lookups).
func BenchmarkUpload(b *testing.B) {
	wc := wordcount(b)
	b.Run("new", func(b *testing.B) {
		f := newFixture(b)
		b.SetBytes(int64(len(wc)))
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for i := range b.N {
			if _, _, err := f.reg.Upload(ctx, "acme", "wc", variant(wc, i), Limits{}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(b.N), "ms/upload")
	})
	b.Run("cold", func(b *testing.B) {
		store, err := meta.Open(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		defer store.Close()
		objects, err := checkpoint.OpenLocal(b.TempDir(), nil)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(wc)))
		var took time.Duration
		for i := range b.N {
			b.StopTimer()
			rt, err := wasmhost.NewRuntime(ctx, wasmhost.Config{})
			if err != nil {
				b.Fatal(err)
			}
			reg := New(store, objects, rt, nil, nil)
			b.StartTimer()
			start := time.Now()
			if _, _, err := reg.Upload(ctx, "acme", fmt.Sprintf("wc%d", i), variant(wc, i), Limits{}); err != nil {
				b.Fatal(err)
			}
			took += time.Since(start)
			b.StopTimer()
			_ = reg.Close(ctx)
			_ = rt.Close(context.Background())
			b.StartTimer()
		}
		b.ReportMetric(float64(took.Milliseconds())/float64(b.N), "ms/upload")
	})
	b.Run("retry", func(b *testing.B) {
		f := newFixture(b)
		f.upload("acme", "wc", wc)
		b.SetBytes(int64(len(wc)))
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if _, created, err := f.reg.Upload(ctx, "acme", "wc", wc, Limits{}); err != nil || created {
				b.Fatal(created, err)
			}
		}
	})
}

// BenchmarkLookup measures what a job start does per module: resolve a
// reference, and load it (cached after the first).
func BenchmarkLookup(b *testing.B) {
	f := newFixture(b)
	wc := wordcount(b)
	for i := range 5 {
		f.upload("acme", "wc", variant(wc, i))
	}
	b.Run("resolve-latest", func(b *testing.B) {
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if _, err := f.reg.Resolve("acme", "wc"); err != nil {
				b.Fatal(err)
			}
		}
	})
	d := digestOf(variant(wc, 2))
	b.Run("resolve-digest", func(b *testing.B) {
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if _, err := f.reg.Resolve("acme", d); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("load-cached", func(b *testing.B) {
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if _, _, err := f.reg.LoadRef(ctx, "acme", "wc@3"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

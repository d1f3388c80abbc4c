package tenants

import (
	"fmt"
	"testing"
	"time"
)

// benchService has 100 tenants with 10 keys each and 5 admin keys, so that
// lookups are in maps of realistic size. It runs over a map KV: the
// benchmarks measure the in-memory paths, and 1000 synced Pebble commits
// would dominate the run. now is the service's clock.
func benchService(b *testing.B, now func() time.Time) (*Service, []string) {
	svc, err := New(&memKV{}, now)
	if err != nil {
		b.Fatal(err)
	}
	var tokens []string
	for i := range 100 {
		id := fmt.Sprintf("tenant-%03d", i)
		if _, err := svc.CreateTenant(id, &Quotas{RequestsPerSecond: 1e6, RequestBurst: 1_000_000}); err != nil {
			b.Fatal(err)
		}
		for range 10 {
			_, tok, err := svc.CreateKey(id, RoleDeveloper, "", nil)
			if err != nil {
				b.Fatal(err)
			}
			tokens = append(tokens, tok)
		}
	}
	for range 5 {
		if _, _, err := svc.CreateKey("", RoleAdmin, "", nil); err != nil {
			b.Fatal(err)
		}
	}
	return svc, tokens
}

func BenchmarkAuthenticate(b *testing.B) {
	svc, tokens := benchService(b, time.Now)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := svc.Authenticate(tokens[i%len(tokens)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkAuthenticateParallel(b *testing.B) {
	svc, tokens := benchService(b, time.Now)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := svc.Authenticate(tokens[i%len(tokens)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

func BenchmarkAuthenticateWrongSecret(b *testing.B) {
	svc, tokens := benchService(b, time.Now)
	bad := tokens[0][:18] + tokens[1][18:]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := svc.Authenticate(bad); err == nil {
			b.Fatal("wrong secret accepted")
		}
	}
}

// BenchmarkAllowParallel: all goroutines on one tenant (the contended case)
// and spread over tenants. The clock is time.Now, as in production (the fake
// clock's mutex would be the bottleneck).
func BenchmarkAllowParallel(b *testing.B) {
	svc, _ := benchService(b, time.Now)
	b.Run("one-tenant", func(b *testing.B) {
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				svc.Allow("tenant-000")
			}
		})
	})
	b.Run("many-tenants", func(b *testing.B) {
		ids := make([]string, 100)
		for i := range ids {
			ids[i] = fmt.Sprintf("tenant-%03d", i)
		}
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				svc.Allow(ids[i%len(ids)])
				i++
			}
		})
	})
}

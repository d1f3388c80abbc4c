package tenants_test

import (
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/weirstream/weir/platform/meta"
	"github.com/weirstream/weir/tenants"
)

func Example() {
	dir, err := os.MkdirTemp("", "weir-meta")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store, err := meta.Open(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	svc, err := tenants.New(store, func() time.Time { return now })
	if err != nil {
		log.Fatal(err)
	}

	if _, err := svc.CreateTenant("acme", &tenants.Quotas{Slots: 4}); err != nil {
		log.Fatal(err)
	}
	key, token, err := svc.CreateKey("acme", tenants.RoleDeveloper, "ci", nil)
	if err != nil {
		log.Fatal(err)
	}

	// On every request: who is calling, may they, and are they within rate.
	p, err := svc.Authenticate(token)
	if err != nil {
		log.Fatal(err)
	}
	ok, _ := svc.Allow(p.Tenant)
	fmt.Println(p.KeyID == key.ID, p.Tenant, p.Role, p.Can(tenants.ActWrite), p.Can(tenants.ActManageKeys), ok)

	// Quota checks name the quota.
	t, _ := svc.Tenant("acme")
	fmt.Println(tenants.Check(tenants.QuotaSlots, int64(t.Quotas.Slots), 3, 2))

	if err := svc.RevokeKey("acme", key.ID); err != nil {
		log.Fatal(err)
	}
	_, err = svc.Authenticate(token)
	fmt.Println(errors.Is(err, tenants.ErrRevoked), errors.Is(err, tenants.ErrUnauthenticated))
	// Output:
	// true acme developer true false true
	// quota "slots" exceeded: 3 of 4 used, 2 more requested
	// true true
}

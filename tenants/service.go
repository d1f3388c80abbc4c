package tenants

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weirstream/weir/checkpoint"
)

// KV is what the service needs from the metadata store (*meta.Store
// satisfies it). Values are JSON records; the service owns these keys:
//
//	tenants/<tenant>   a Tenant
//	keys/<key id>      a Key and the SHA-256 of its secret
//
// Keys below a tenant ("tenants/<tenant>/...") belong to other packages and
// are ignored. Key ids are global (a token names only the key), so keys are
// not nested under their tenant.
//
// The service reads the store only in New (memory is authoritative after
// that), so KV has no Get.
type KV interface {
	// Scan calls fn for every key with the prefix, in key order; the value is
	// only valid during the call.
	Scan(prefix string, fn func(key string, value []byte) error) error
	// Commit applies puts and deletes atomically and durably.
	Commit(puts map[string][]byte, deletes []string) error
}

// Key prefixes in the KV.
const (
	tenantPrefix = "tenants/"
	keyPrefix    = "keys/"
)

// Tenant is an isolated customer of the platform.
type Tenant struct {
	// ID is 1 to 63 of a-z, 0-9, '-' and '_', starting with a letter or
	// digit (checkpoint.ValidateID): it names folders and metadata keys.
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"created_at"`
	// Quotas are complete: every zero was replaced by its default.
	Quotas Quotas `json:"quotas"`
}

// Service owns tenants and keys. It keeps all of them in memory, so that
// Authenticate and Allow, which run on every request, neither read the store
// nor take a lock: readers load an immutable snapshot through an atomic
// pointer. Writers serialise on a mutex, commit to the KV first and only then
// publish a new snapshot, so a failed Commit leaves the service unchanged.
// It is safe for concurrent use.
type Service struct {
	kv  KV
	now func() time.Time
	// secretEncoding decodes token secrets: unpadded base64url, strict so
	// that each secret has exactly one spelling. Kept here because Strict
	// returns a new Encoding.
	secretEncoding *base64.Encoding

	// mu serialises writers; readers never take it.
	mu   sync.Mutex
	snap atomic.Pointer[snapshot]
}

// snapshot is an immutable view of every tenant and key. A write copies the
// maps it changes; entries are never modified once published (except the
// limiter, which is atomic and deliberately shared across snapshots).
type snapshot struct {
	tenants map[string]*tenantEntry
	keys    map[string]*keyEntry // by key id
}

// tenantEntry is a tenant with what Allow derives from its quotas.
type tenantEntry struct {
	tenant Tenant
	// limiter survives quota changes (the new entry shares it), so a change
	// takes effect on the next request without resetting the bucket.
	limiter *limiter
	// interval and window are the rate limit in nanoseconds (see Allow).
	interval, window int64
}

func newTenantEntry(t Tenant, l *limiter) *tenantEntry {
	if l == nil {
		l = new(limiter)
	}
	interval := int64(float64(time.Second) / t.Quotas.RequestsPerSecond)
	return &tenantEntry{tenant: t, limiter: l, interval: interval, window: interval * int64(t.Quotas.RequestBurst)}
}

// New loads every tenant and key from kv. now is the clock for creation
// times, key expiry and rate limiting.
func New(kv KV, now func() time.Time) (*Service, error) {
	if kv == nil || now == nil {
		return nil, errors.New("tenants: New needs a KV and a clock")
	}
	s := &Service{kv: kv, now: now, secretEncoding: base64.RawURLEncoding.Strict()}
	snap := &snapshot{tenants: map[string]*tenantEntry{}, keys: map[string]*keyEntry{}}
	err := kv.Scan(tenantPrefix, func(k string, v []byte) error {
		id := k[len(tenantPrefix):]
		if strings.Contains(id, "/") {
			return nil // another package's record under the tenant
		}
		var t Tenant
		if err := json.Unmarshal(v, &t); err != nil {
			return fmt.Errorf("tenants: record %q: %w", k, err)
		}
		if t.ID != id {
			return fmt.Errorf("tenants: record %q holds tenant %q", k, t.ID)
		}
		if err := checkpoint.ValidateID("tenant", id); err != nil {
			return fmt.Errorf("tenants: record %q: %w", k, err)
		}
		// Defaults first: a record written before a quota existed has zero.
		t.Quotas = t.Quotas.WithDefaults()
		if err := t.Quotas.Validate(); err != nil {
			return fmt.Errorf("tenants: record %q: %w", k, err)
		}
		snap.tenants[id] = newTenantEntry(t, nil)
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = kv.Scan(keyPrefix, func(k string, v []byte) error {
		e, err := decodeKey(k[len(keyPrefix):], v)
		if err != nil {
			return fmt.Errorf("tenants: record %q: %w", k, err)
		}
		snap.keys[e.key.ID] = e
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.snap.Store(snap)
	return s, nil
}

// clone copies the snapshot's maps for a writer to change.
func (s *snapshot) clone() *snapshot {
	n := &snapshot{
		tenants: make(map[string]*tenantEntry, len(s.tenants)+1),
		keys:    make(map[string]*keyEntry, len(s.keys)+1),
	}
	for k, v := range s.tenants {
		n.tenants[k] = v
	}
	for k, v := range s.keys {
		n.keys[k] = v
	}
	return n
}

// CreateTenant creates a tenant with quotas q (nil: the defaults; zero fields
// take their default).
func (s *Service) CreateTenant(id string, q *Quotas) (Tenant, error) {
	if err := checkpoint.ValidateID("tenant", id); err != nil {
		return Tenant{}, fmt.Errorf("create tenant: %w", invalid(err))
	}
	var quotas Quotas
	if q != nil {
		quotas = *q
	}
	quotas = quotas.WithDefaults()
	if err := quotas.Validate(); err != nil {
		return Tenant{}, fmt.Errorf("create tenant %q: %w", id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.snap.Load()
	if _, ok := cur.tenants[id]; ok {
		return Tenant{}, fmt.Errorf("create tenant %q: %w", id, ErrExists)
	}
	t := Tenant{ID: id, CreatedAt: s.stamp(), Quotas: quotas}
	if err := s.commitTenant(t); err != nil {
		return Tenant{}, fmt.Errorf("create tenant %q: %w", id, err)
	}
	next := cur.clone()
	next.tenants[id] = newTenantEntry(t, nil)
	s.snap.Store(next)
	return t, nil
}

// Tenant returns the tenant id.
func (s *Service) Tenant(id string) (Tenant, error) {
	e, ok := s.snap.Load().tenants[id]
	if !ok {
		return Tenant{}, fmt.Errorf("tenant %q: %w", id, ErrNotFound)
	}
	return e.tenant, nil
}

// Tenants returns every tenant, sorted by id.
func (s *Service) Tenants() []Tenant {
	snap := s.snap.Load()
	out := make([]Tenant, 0, len(snap.tenants))
	for _, e := range snap.tenants {
		out = append(out, e.tenant)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// SetQuotas replaces the quotas of tenant id (zero fields take their
// default). Rate limit changes apply from the next Allow.
func (s *Service) SetQuotas(id string, q Quotas) (Tenant, error) {
	q = q.WithDefaults()
	if err := q.Validate(); err != nil {
		return Tenant{}, fmt.Errorf("set quotas of tenant %q: %w", id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.snap.Load()
	e, ok := cur.tenants[id]
	if !ok {
		return Tenant{}, fmt.Errorf("set quotas of tenant %q: %w", id, ErrNotFound)
	}
	t := e.tenant
	t.Quotas = q
	if err := s.commitTenant(t); err != nil {
		return Tenant{}, fmt.Errorf("set quotas of tenant %q: %w", id, err)
	}
	next := cur.clone()
	next.tenants[id] = newTenantEntry(t, e.limiter)
	s.snap.Store(next)
	return t, nil
}

// DeleteTenant deletes tenant id and all its keys, in one commit: its keys
// stop authenticating at once. Its other resources (modules, jobs,
// storage) are the platform's to delete.
func (s *Service) DeleteTenant(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.snap.Load()
	if _, ok := cur.tenants[id]; !ok {
		return fmt.Errorf("delete tenant %q: %w", id, ErrNotFound)
	}
	deletes := []string{tenantPrefix + id}
	for kid, e := range cur.keys {
		if e.key.Tenant == id {
			deletes = append(deletes, keyPrefix+kid)
		}
	}
	if err := s.kv.Commit(nil, deletes); err != nil {
		return fmt.Errorf("delete tenant %q: %w", id, err)
	}
	next := cur.clone()
	delete(next.tenants, id)
	for _, k := range deletes[1:] {
		delete(next.keys, k[len(keyPrefix):])
	}
	s.snap.Store(next)
	return nil
}

// commitTenant writes t's record.
func (s *Service) commitTenant(t Tenant) error {
	v, err := json.Marshal(t)
	if err != nil {
		return err
	}
	return s.kv.Commit(map[string][]byte{tenantPrefix + t.ID: v}, nil)
}

// stamp is the clock's time as stored: UTC without a monotonic reading, so it
// is equal to itself after a JSON round trip.
func (s *Service) stamp() time.Time { return s.now().Round(0).UTC() }

package tenants

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"
	"unicode"
	"unicode/utf8"
)

// Key is an API key as the API shows it: never its secret nor its hash.
type Key struct {
	// ID is 12 characters of a-z and 2-7, unique across tenants; it is
	// public (it appears in lists and in the token).
	ID string `json:"id"`
	// Tenant is empty for admin keys.
	Tenant    string    `json:"tenant"`
	Role      Role      `json:"role"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is nil for a key that does not expire.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// RevokedAt is nil for a key in force.
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// Principal is who a request authenticated as.
type Principal struct {
	KeyID string
	// Tenant is empty for admin keys.
	Tenant string
	Role   Role
	// ExpiresAt is shared with the service's copy of the key: read it, do
	// not modify it (Authenticate does not allocate to copy it).
	ExpiresAt *time.Time
}

// Can reports whether the principal's role may perform a.
func (p Principal) Can(a Action) bool { return p.Role.Can(a) }

// Token format: "weir_" + key id + "_" + secret, where the key id is
// keyIDLen characters of keyIDAlphabet (60 random bits: ids only need to be
// unique, the store rejects collisions) and the secret is secretLen random
// bytes in unpadded base64url. The parts sit at fixed offsets, so parsing
// does not split on '_' (which base64url also uses).
const (
	tokenPrefix   = "weir_"
	keyIDLen      = 12
	keyIDAlphabet = "abcdefghijklmnopqrstuvwxyz234567"
	secretLen     = 32
	secretTextLen = 43 // base64.RawURLEncoding.EncodedLen(secretLen)
	tokenLen      = len(tokenPrefix) + keyIDLen + 1 + secretTextLen
	maxKeyNameLen = 100
)

// keyEntry is a key with what Authenticate needs, computed once.
type keyEntry struct {
	key       Key
	hash      [sha256.Size]byte // of the secret's bytes
	principal Principal
}

func newKeyEntry(k Key, hash [sha256.Size]byte) *keyEntry {
	return &keyEntry{key: k, hash: hash, principal: Principal{KeyID: k.ID, Tenant: k.Tenant, Role: k.Role, ExpiresAt: k.ExpiresAt}}
}

// keyRecord is a key as stored.
type keyRecord struct {
	Key
	SecretSHA256 string `json:"secret_sha256"`
}

func decodeKey(id string, v []byte) (*keyEntry, error) {
	var r keyRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, err
	}
	if r.ID != id {
		return nil, fmt.Errorf("holds key %q", r.ID)
	}
	if _, err := ParseRole(string(r.Role)); err != nil {
		return nil, err
	}
	if (r.Tenant == "") != (r.Role == RoleAdmin) {
		return nil, fmt.Errorf("key of tenant %q has role %s", r.Tenant, r.Role)
	}
	var hash [sha256.Size]byte
	if n, err := hex.Decode(hash[:], []byte(r.SecretSHA256)); err != nil || n != len(hash) || len(r.SecretSHA256) != 2*len(hash) {
		return nil, fmt.Errorf("secret_sha256 is not %d hex bytes", len(hash))
	}
	return newKeyEntry(r.Key, hash), nil
}

// CreateKey creates a key and returns it with its token, which is shown only
// now: the service keeps only a hash of the secret. Admin keys have tenant ""
// and role admin, and only they have that role; a tenant key names an
// existing tenant. name is at most 100 characters; expiresAt, if set, is in
// the future.
func (s *Service) CreateKey(tenant string, role Role, name string, expiresAt *time.Time) (Key, string, error) {
	what := "create key"
	if tenant != "" {
		what = fmt.Sprintf("create key of tenant %q", tenant)
	}
	if _, err := ParseRole(string(role)); err != nil {
		return Key{}, "", fmt.Errorf("%s: %w", what, err)
	}
	if tenant == "" && role != RoleAdmin {
		return Key{}, "", fmt.Errorf("%s: %w", what, invalid(fmt.Errorf("a key without a tenant must have role admin, not %s", role)))
	}
	if tenant != "" && role == RoleAdmin {
		return Key{}, "", fmt.Errorf("%s: %w", what, invalid(errors.New("a tenant key cannot have role admin: admin keys belong to no tenant")))
	}
	if err := validateKeyName(name); err != nil {
		return Key{}, "", fmt.Errorf("%s: %w", what, invalid(err))
	}
	now := s.stamp()
	k := Key{Tenant: tenant, Role: role, Name: name, CreatedAt: now}
	if expiresAt != nil {
		exp := expiresAt.Round(0).UTC()
		if !exp.After(now) {
			return Key{}, "", fmt.Errorf("%s: %w", what, invalid(fmt.Errorf("expires_at %s is not in the future", exp.Format(time.RFC3339))))
		}
		k.ExpiresAt = &exp
	}
	var secret [secretLen]byte
	rand.Read(secret[:])
	hash := sha256.Sum256(secret[:])

	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.snap.Load()
	if tenant != "" {
		if _, ok := cur.tenants[tenant]; !ok {
			return Key{}, "", fmt.Errorf("%s: tenant %q: %w", what, tenant, ErrNotFound)
		}
	}
	for k.ID == "" || cur.keys[k.ID] != nil {
		k.ID = newKeyID()
	}
	if err := s.commitKey(k, hash); err != nil {
		return Key{}, "", fmt.Errorf("%s: %w", what, err)
	}
	next := cur.clone()
	next.keys[k.ID] = newKeyEntry(k, hash)
	s.snap.Store(next)
	token := tokenPrefix + k.ID + "_" + base64.RawURLEncoding.EncodeToString(secret[:])
	return cloneKey(k), token, nil
}

// validateKeyName accepts up to maxKeyNameLen characters of printable UTF-8.
func validateKeyName(name string) error {
	if !utf8.ValidString(name) {
		return errors.New("key name is not UTF-8")
	}
	if n := utf8.RuneCountInString(name); n > maxKeyNameLen {
		return fmt.Errorf("key name is %d characters, more than %d", n, maxKeyNameLen)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("key name %q has the unprintable character %U", name, r)
		}
	}
	return nil
}

// newKeyID draws a key id; each byte picks one of 32 characters, and 32
// divides 256, so every character is equally likely.
func newKeyID() string {
	var b [keyIDLen]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = keyIDAlphabet[b[i]%32]
	}
	return string(b[:])
}

func (s *Service) commitKey(k Key, hash [sha256.Size]byte) error {
	v, err := json.Marshal(keyRecord{Key: k, SecretSHA256: hex.EncodeToString(hash[:])})
	if err != nil {
		return err
	}
	return s.kv.Commit(map[string][]byte{keyPrefix + k.ID: v}, nil)
}

// cloneKey copies k's times so that callers cannot change the service's.
func cloneKey(k Key) Key {
	if k.ExpiresAt != nil {
		t := *k.ExpiresAt
		k.ExpiresAt = &t
	}
	if k.RevokedAt != nil {
		t := *k.RevokedAt
		k.RevokedAt = &t
	}
	return k
}

// Keys returns the keys of tenant ("" for admin keys), revoked and expired
// ones included, sorted by id. An unknown tenant has none.
func (s *Service) Keys(tenant string) []Key {
	var out []Key
	for _, e := range s.snap.Load().keys {
		if e.key.Tenant == tenant {
			out = append(out, cloneKey(e.key))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Key returns key id of tenant ("" for admin keys). A key of another tenant
// is ErrNotFound, as if it did not exist.
func (s *Service) Key(tenant, id string) (Key, error) {
	e, ok := s.snap.Load().keys[id]
	if !ok || e.key.Tenant != tenant {
		return Key{}, fmt.Errorf("key %q: %w", id, ErrNotFound)
	}
	return cloneKey(e.key), nil
}

// RevokeKey revokes key id of tenant ("" for admin keys). Revoking a revoked
// key does nothing; a key of another tenant is ErrNotFound.
func (s *Service) RevokeKey(tenant, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.snap.Load()
	e, ok := cur.keys[id]
	if !ok || e.key.Tenant != tenant {
		return fmt.Errorf("revoke key %q: %w", id, ErrNotFound)
	}
	if e.key.RevokedAt != nil {
		return nil
	}
	k := e.key
	now := s.stamp()
	k.RevokedAt = &now
	if err := s.commitKey(k, e.hash); err != nil {
		return fmt.Errorf("revoke key %q: %w", id, err)
	}
	next := cur.clone()
	next.keys[id] = newKeyEntry(k, e.hash)
	s.snap.Store(next)
	return nil
}

// HasAdminKey reports whether an admin key is in force (neither revoked nor
// expired). The platform creates a bootstrap admin key when there is none,
// which is also the way back in after every admin key was revoked.
func (s *Service) HasAdminKey() bool {
	now := s.now()
	for _, e := range s.snap.Load().keys {
		k := &e.key
		if k.Tenant == "" && k.RevokedAt == nil && (k.ExpiresAt == nil || now.Before(*k.ExpiresAt)) {
			return true
		}
	}
	return false
}

// Authenticate returns who token belongs to. A malformed token, an unknown
// key and a wrong secret are all ErrUnauthenticated, indistinguishable; only
// a caller holding the right secret learns that the key is revoked
// (ErrRevoked) or expired (ErrExpired). The keys of a deleted tenant are gone.
//
// It runs on every request: it reads the in-memory snapshot, compares hashes
// in constant time and does not allocate on success.
func (s *Service) Authenticate(token string) (Principal, error) {
	if len(token) != tokenLen || token[:len(tokenPrefix)] != tokenPrefix || token[len(tokenPrefix)+keyIDLen] != '_' {
		return Principal{}, ErrUnauthenticated
	}
	id := token[len(tokenPrefix) : len(tokenPrefix)+keyIDLen]
	// Copy the secret's text into an array so that decoding needs no
	// []byte(string) allocation. Strict decoding rejects non-canonical
	// trailing bits, so each secret has exactly one spelling.
	var text [secretTextLen]byte
	copy(text[:], token[len(tokenPrefix)+keyIDLen+1:])
	var secret [secretLen]byte
	if n, err := s.secretEncoding.Decode(secret[:], text[:]); err != nil || n != secretLen {
		return Principal{}, ErrUnauthenticated
	}
	// Hash before the lookup, so an unknown id costs what a wrong secret does.
	hash := sha256.Sum256(secret[:])
	snap := s.snap.Load()
	e, ok := snap.keys[id]
	if !ok || subtle.ConstantTimeCompare(hash[:], e.hash[:]) != 1 {
		return Principal{}, ErrUnauthenticated
	}
	if e.key.Tenant != "" {
		if _, ok := snap.tenants[e.key.Tenant]; !ok {
			return Principal{}, ErrUnauthenticated
		}
	}
	if e.key.RevokedAt != nil {
		return Principal{}, fmt.Errorf("key %s: %w", id, ErrRevoked)
	}
	if e.key.ExpiresAt != nil && !s.now().Before(*e.key.ExpiresAt) {
		return Principal{}, fmt.Errorf("key %s: %w", id, ErrExpired)
	}
	return e.principal, nil
}

// Package meta is the platform's metadata store: tenants, API keys, module
// versions, job records and operations, kept in an embedded Pebble database
// under the data directory (`<data-dir>/meta`). It stores opaque values under
// string keys; the packages that own the records (tenants, registry, jobs)
// encode them. Writes go through Commit, one atomic Pebble batch synced to
// disk, so a record and its indexes are created together or not at all.
//
// It must not know what the records mean.
package meta

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Store is a Pebble-backed key-value store. It is safe for concurrent use;
// callers that read-modify-write serialise themselves.
type Store struct {
	db  *pebble.DB
	dir string
}

// Open opens (creating if needed) the store in dir.
func Open(dir string) (*Store, error) {
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietLogger{}})
	if err != nil {
		return nil, fmt.Errorf("metadata store %s: %w", dir, err)
	}
	return &Store{db: db, dir: dir}, nil
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

// Get returns the value under key; ok is false when there is none.
func (s *Store) Get(key string) (value []byte, ok bool, err error) {
	v, closer, err := s.db.Get([]byte(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("metadata store %s: get %q: %w", s.dir, key, err)
	}
	out := append([]byte(nil), v...)
	return out, true, closer.Close()
}

// Scan calls fn for every key with the prefix, in key order. fn's value is
// only valid during the call. An error from fn stops the scan and is returned.
func (s *Store) Scan(prefix string, fn func(key string, value []byte) error) error {
	var opts pebble.IterOptions
	if prefix != "" { // an empty non-nil bound trips Pebble's invariant checks
		opts.LowerBound, opts.UpperBound = []byte(prefix), prefixEnd([]byte(prefix))
	}
	it, err := s.db.NewIter(&opts)
	if err != nil {
		return fmt.Errorf("metadata store %s: scan %q: %w", s.dir, prefix, err)
	}
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return fmt.Errorf("metadata store %s: scan %q: %w", s.dir, prefix, err)
		}
		if err := fn(string(it.Key()), v); err != nil {
			it.Close()
			return err
		}
	}
	return it.Close()
}

// Commit applies puts and deletes atomically and durably.
func (s *Store) Commit(puts map[string][]byte, deletes []string) error {
	b := s.db.NewBatch()
	defer b.Close()
	for k, v := range puts {
		if err := b.Set([]byte(k), v, nil); err != nil {
			return err
		}
	}
	for _, k := range deletes {
		if err := b.Delete([]byte(k), nil); err != nil {
			return err
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("metadata store %s: commit: %w", s.dir, err)
	}
	return nil
}

// prefixEnd is the smallest key greater than every key with the prefix (nil:
// no upper bound).
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// quietLogger drops Pebble's informational logs; Fatalf still panics, as
// Pebble requires.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)         {}
func (quietLogger) Errorf(string, ...any)        {}
func (quietLogger) Fatalf(f string, args ...any) { panic(fmt.Sprintf(f, args...)) }

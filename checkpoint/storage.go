package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"
)

// Storage is where checkpoints and savepoints are kept: a flat namespace of
// objects, written whole and replaced whole, addressed by slash-separated
// relative names ("tenants/t1/jobs/j/checkpoints/chk-7/_metadata";
// LAYOUT.md says which). Folders exist only as name prefixes, as in S3.
//
// Every implementation is safe for concurrent use. Names are checked by
// every method: empty elements, ".", "..", a leading or trailing slash,
// backslashes, control characters and invalid UTF-8 are rejected with
// ErrInvalidName, so a name can never reach outside the storage root, and
// a name means the same object on every backend.
//
// Prefixes (List, DeletePrefix) are folders, not string prefixes: "a/b"
// and "a/b/" both mean the objects whose names start with "a/b/", never
// "a/bc". This is what keeps tenant t1 from listing tenant t10's files.
type Storage interface {
	// Put stores the bytes of r under name, replacing any object there.
	// It is atomic: readers see the old object (or none) until Put
	// returns, then the whole new one; a failing r or a cancelled ctx
	// leaves nothing visible. The result carries the size and CRC32C of
	// the bytes stored, computed while they streamed.
	Put(ctx context.Context, name string, r io.Reader) (ObjectInfo, error)
	// PutFile stores the local file at localPath under name, like Put.
	// With ImmutableFile, local storage may hard-link the file instead
	// of copying it (see LocalFile).
	PutFile(ctx context.Context, name, localPath string, mode LocalFile) (ObjectInfo, error)
	// Open returns the object's bytes. A missing object is ErrNotFound,
	// reported by Open itself, not by the first Read.
	Open(ctx context.Context, name string) (io.ReadCloser, error)
	// GetFile writes the object to localPath (created atomically; parent
	// folders are created). When want.HasCRC32C, it checks the object's
	// size and CRC32C against want and fails with a *CorruptObjectError
	// (errors.Is(err, ErrCorrupt)) leaving nothing at localPath. With
	// ImmutableFile, local storage may hard-link instead of copying.
	GetFile(ctx context.Context, name, localPath string, want ObjectInfo, mode LocalFile) error
	// Stat describes one object; ErrNotFound when it is missing.
	Stat(ctx context.Context, name string) (ObjectInfo, error)
	// Delete removes one object. A missing object is not an error, so
	// deleting is idempotent (retention retries it freely).
	Delete(ctx context.Context, name string) error
	// List returns every object under the folder prefix, recursively,
	// sorted by name; "" lists the whole storage. Names are full names,
	// usable with the other methods.
	List(ctx context.Context, prefix string) ([]ObjectInfo, error)
	// DeletePrefix removes every object under the folder prefix (which
	// must not be ""). Objects written under it concurrently may survive.
	DeletePrefix(ctx context.Context, prefix string) error
}

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	// Name is the object's full name in its storage.
	Name string
	// Size is the object's length in bytes.
	Size int64
	// CRC32C is the Castagnoli CRC-32 of the object's bytes, valid when
	// HasCRC32C. Put and PutFile always set it: callers record it (with
	// Size) in checkpoint metadata and hand it back to GetFile, which is
	// where corruption is caught.
	CRC32C uint32
	// HasCRC32C says CRC32C is known. Stat and List set it only when the
	// backend keeps the checksum (S3 servers that store full-object
	// CRC32C checksums do, for Stat); a local directory does not.
	HasCRC32C bool
	// ModTime is when the object was written, as the backend reports it.
	ModTime time.Time
}

// LocalFile says what the caller promises about the local file given to
// PutFile or GetFile.
type LocalFile int

const (
	// MutableFile: the file may be written in place later, so storage
	// must copy it. The safe default.
	MutableFile LocalFile = iota
	// ImmutableFile: nobody writes to, truncates or appends to the file
	// (or its stored copy) in place, ever; it may only be deleted or
	// renamed. Local storage may then share the file by hard link when
	// both sides are on one filesystem, which makes incremental Pebble
	// checkpoints and restores nearly free. Pebble SSTs qualify; a
	// MANIFEST, which Pebble appends to, does not.
	ImmutableFile
)

func (m LocalFile) String() string {
	switch m {
	case MutableFile:
		return "MutableFile"
	case ImmutableFile:
		return "ImmutableFile"
	}
	return fmt.Sprintf("LocalFile(%d)", int(m))
}

var (
	// ErrNotFound reports a missing object, from every implementation.
	ErrNotFound = errors.New("checkpoint object not found")
	// ErrInvalidName reports an object name or prefix that is not a
	// clean relative slash-separated path (see Storage).
	ErrInvalidName = errors.New("invalid checkpoint object name")
)

// CorruptObjectError reports an object whose bytes differ from what was
// recorded when it was stored. It matches ErrCorrupt with errors.Is, so
// recovery treats the checkpoint holding it as damaged.
type CorruptObjectError struct {
	// Where locates the object: its name with the storage's location
	// ("file:///data/chk/...", "s3://bucket/prefix/...").
	Where string
	// WantSize and WantCRC32C were recorded; GotSize and GotCRC32C were
	// read. GotCRC32C is meaningful only when GotSize == WantSize.
	WantSize, GotSize     int64
	WantCRC32C, GotCRC32C uint32
}

func (e *CorruptObjectError) Error() string {
	if e.GotSize != e.WantSize {
		return fmt.Sprintf("checkpoint object %s is corrupt: %d bytes, recorded %d", e.Where, e.GotSize, e.WantSize)
	}
	return fmt.Sprintf("checkpoint object %s is corrupt: crc32c %08x, recorded %08x (%d bytes)", e.Where, e.GotCRC32C, e.WantCRC32C, e.GotSize)
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptObjectError) Is(target error) bool { return target == ErrCorrupt }

// storageCRCTable is the Castagnoli table: hardware-accelerated on amd64
// and arm64 (several GB/s), and the checksum S3 itself offers, so the
// value we record can be compared with the server's.
var storageCRCTable = crc32.MakeTable(crc32.Castagnoli)

// maxObjectNameLen is S3's key limit; local storage enforces it too so a
// layout that works locally works on S3.
const maxObjectNameLen = 1024

// localTempPrefix starts the names of the temporary files local storage
// writes before renaming them into place. No object name element may
// start with it, so List never confuses one with an object.
const localTempPrefix = ".weir-tmp-"

// CheckObjectName returns an error wrapping ErrInvalidName, naming what is
// wrong, unless name is a clean relative slash-separated path.
func CheckObjectName(name string) error {
	if name == "" {
		return fmt.Errorf("object name is empty: %w", ErrInvalidName)
	}
	if len(name) > maxObjectNameLen {
		return fmt.Errorf("object name %.40q... is %d bytes, more than %d: %w", name, len(name), maxObjectNameLen, ErrInvalidName)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("object name %q is not UTF-8: %w", name, ErrInvalidName)
	}
	if name[0] == '/' {
		return fmt.Errorf("object name %q is absolute: %w", name, ErrInvalidName)
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f || c == '\\' {
			return fmt.Errorf("object name %q contains the character %q: %w", name, c, ErrInvalidName)
		}
	}
	for elem := range strings.SplitSeq(name, "/") {
		switch {
		case elem == "":
			return fmt.Errorf("object name %q has an empty element: %w", name, ErrInvalidName)
		case elem == "." || elem == "..":
			return fmt.Errorf("object name %q has the element %q: %w", name, elem, ErrInvalidName)
		case strings.HasPrefix(elem, localTempPrefix):
			return fmt.Errorf("object name %q has the element %q (prefix %q is reserved): %w", name, elem, localTempPrefix, ErrInvalidName)
		}
	}
	return nil
}

// cleanPrefix turns a folder prefix ("", "a/b" or "a/b/") into its
// canonical form without the trailing slash, checking it like a name.
func cleanPrefix(prefix string) (string, error) {
	p := strings.TrimSuffix(prefix, "/")
	if p == "" {
		if prefix != "" {
			return "", fmt.Errorf("prefix %q: %w", prefix, ErrInvalidName)
		}
		return "", nil
	}
	if err := CheckObjectName(p); err != nil {
		return "", fmt.Errorf("prefix: %w", err)
	}
	return p, nil
}

// crcReader computes the size and CRC32C of what is read through it, so
// uploads are checksummed while they stream.
type crcReader struct {
	r   io.Reader
	n   int64
	crc uint32
}

func (c *crcReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.crc = crc32.Update(c.crc, storageCRCTable, p[:n])
		c.n += int64(n)
	}
	return n, err
}

// verifyReader checks at EOF that what was read matches want.
type verifyReader struct {
	rc    io.ReadCloser
	where string
	want  ObjectInfo
	crc   crcReader
}

// VerifyingReader wraps rc (an object opened from storage) so that reading
// it to the end fails with a *CorruptObjectError instead of io.EOF when
// its size or CRC32C differ from want, and reading more than want.Size
// bytes fails as soon as it happens. where names the object in the error.
// Without want.HasCRC32C it returns rc unchanged. Use it when streaming an
// object (Open) instead of fetching it (GetFile, which verifies itself):
// the consumer must read to EOF before trusting what it read.
func VerifyingReader(rc io.ReadCloser, where string, want ObjectInfo) io.ReadCloser {
	if !want.HasCRC32C {
		return rc
	}
	v := &verifyReader{rc: rc, where: where, want: want}
	v.crc.r = rc
	return v
}

func (v *verifyReader) Read(p []byte) (int, error) {
	n, err := v.crc.Read(p)
	if v.crc.n > v.want.Size {
		return n, v.corrupt()
	}
	if err == io.EOF && (v.crc.n != v.want.Size || v.crc.crc != v.want.CRC32C) {
		return n, v.corrupt()
	}
	return n, err
}

func (v *verifyReader) corrupt() error {
	return &CorruptObjectError{Where: v.where, WantSize: v.want.Size, GotSize: v.crc.n, WantCRC32C: v.want.CRC32C, GotCRC32C: v.crc.crc}
}

func (v *verifyReader) Close() error { return v.rc.Close() }

// StorageOptions configure OpenStorage. The zero value is usable: S3
// credentials then come from the environment.
type StorageOptions struct {
	// AccessKeyID, SecretAccessKey and SessionToken are S3 credentials.
	// When AccessKeyID is empty, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
	// and AWS_SESSION_TOKEN are read through Getenv.
	AccessKeyID, SecretAccessKey, SessionToken string
	// Getenv reads the environment; nil means os.Getenv. Tests inject it.
	Getenv func(string) string
	// PartSize is the S3 multipart part size and the largest object Put
	// sends in one request (it buffers up to this much). 0 means
	// DefaultPartSize; S3 requires at least 5 MiB.
	PartSize int64
	// Transport carries S3 requests; nil means minio-go's default.
	Transport http.RoundTripper
	// Logger receives what storage reports but does not return (failed
	// cleanup of temporary files). nil discards.
	Logger *slog.Logger
}

// DefaultPartSize is the S3 part size when StorageOptions.PartSize is 0.
const DefaultPartSize = 16 << 20

// OpenStorage opens the storage a URI names:
//
//   - file:///abs/dir, or a plain path (absolute or relative): a local
//     directory, created if missing;
//   - s3://bucket/optional/prefix?endpoint=host:port&secure=false&region=r:
//     an S3 bucket (endpoint defaults to s3.amazonaws.com, secure to true),
//     every object name prefixed by the URI's path. The bucket must exist;
//     nothing is sent to the server until the first operation.
//
// Errors name the part of the URI that is wrong.
func OpenStorage(uri string, opts StorageOptions) (Storage, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	scheme, _, hasScheme := strings.Cut(uri, "://")
	if !hasScheme {
		if uri == "" {
			return nil, errors.New("checkpoint storage URI is empty")
		}
		if i := strings.IndexByte(uri, ':'); i > 0 && !strings.ContainsAny(uri[:i], `/\.`) {
			return nil, fmt.Errorf("checkpoint storage URI %q: scheme %q needs \"://\" (file:///abs/dir or s3://bucket/prefix)", uri, uri[:i])
		}
		return OpenLocal(uri, opts.Logger)
	}
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("checkpoint storage URI %q: %w", uri, err)
	}
	switch strings.ToLower(scheme) {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("checkpoint storage URI %q: host %q: a file URI names a local path (file:///abs/dir)", uri, u.Host)
		}
		if u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("checkpoint storage URI %q: a file URI takes no query or fragment", uri)
		}
		if u.Path == "" || !filepath.IsAbs(u.Path) {
			return nil, fmt.Errorf("checkpoint storage URI %q: path %q is not absolute (file:///abs/dir)", uri, u.Path)
		}
		return OpenLocal(u.Path, opts.Logger)
	case "s3":
		return openS3URI(uri, u, opts)
	default:
		return nil, fmt.Errorf("checkpoint storage URI %q: scheme %q is not supported (file or s3)", uri, scheme)
	}
}

// Within returns a view of s in which every name is relative to the folder
// prefix: the view cannot name anything outside it. Give a job's tasks
// Within(s, JobPrefix(tenant, job)) and they cannot reach another job's or
// tenant's files; a savepoint read through Within(s, its folder) sees the
// relative names it was written with, wherever it was copied.
func Within(s Storage, prefix string) (Storage, error) {
	p, err := cleanPrefix(prefix)
	if err != nil {
		return nil, err
	}
	if p == "" {
		return s, nil
	}
	if w, ok := s.(*within); ok {
		return &within{s: w.s, prefix: w.prefix + "/" + p}, nil
	}
	return &within{s: s, prefix: p}, nil
}

type within struct {
	s      Storage
	prefix string
}

// full prefixes a name after checking it, so that a bad name is reported
// as the caller wrote it.
func (w *within) full(name string) (string, error) {
	if err := CheckObjectName(name); err != nil {
		return "", err
	}
	return w.prefix + "/" + name, nil
}

func (w *within) Put(ctx context.Context, name string, r io.Reader) (ObjectInfo, error) {
	full, err := w.full(name)
	if err != nil {
		return ObjectInfo{}, err
	}
	info, err := w.s.Put(ctx, full, r)
	if err != nil {
		return ObjectInfo{}, err
	}
	info.Name = name
	return info, nil
}

func (w *within) PutFile(ctx context.Context, name, localPath string, mode LocalFile) (ObjectInfo, error) {
	full, err := w.full(name)
	if err != nil {
		return ObjectInfo{}, err
	}
	info, err := w.s.PutFile(ctx, full, localPath, mode)
	if err != nil {
		return ObjectInfo{}, err
	}
	info.Name = name
	return info, nil
}

func (w *within) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	full, err := w.full(name)
	if err != nil {
		return nil, err
	}
	return w.s.Open(ctx, full)
}

func (w *within) GetFile(ctx context.Context, name, localPath string, want ObjectInfo, mode LocalFile) error {
	full, err := w.full(name)
	if err != nil {
		return err
	}
	return w.s.GetFile(ctx, full, localPath, want, mode)
}

func (w *within) Stat(ctx context.Context, name string) (ObjectInfo, error) {
	full, err := w.full(name)
	if err != nil {
		return ObjectInfo{}, err
	}
	info, err := w.s.Stat(ctx, full)
	if err != nil {
		return ObjectInfo{}, err
	}
	info.Name = name
	return info, nil
}

func (w *within) Delete(ctx context.Context, name string) error {
	full, err := w.full(name)
	if err != nil {
		return err
	}
	return w.s.Delete(ctx, full)
}

func (w *within) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	p, err := cleanPrefix(prefix)
	if err != nil {
		return nil, err
	}
	full := w.prefix
	if p != "" {
		full += "/" + p
	}
	objs, err := w.s.List(ctx, full)
	if err != nil {
		return nil, err
	}
	for i := range objs {
		objs[i].Name = strings.TrimPrefix(objs[i].Name, w.prefix+"/")
	}
	return objs, nil
}

func (w *within) DeletePrefix(ctx context.Context, prefix string) error {
	p, err := cleanPrefix(prefix)
	if err != nil {
		return err
	}
	if p == "" {
		return fmt.Errorf("delete prefix: the prefix is empty: %w", ErrInvalidName)
	}
	return w.s.DeletePrefix(ctx, w.prefix+"/"+p)
}

func (w *within) String() string { return fmt.Sprintf("%v/%s", w.s, w.prefix) }

// openRegular opens the local file PutFile uploads, refusing anything but
// a regular file (a directory or a device would upload nonsense).
func openRegular(path string) (*os.File, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, errors.New("not a regular file")
	}
	return f, st, nil
}

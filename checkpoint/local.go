package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// localCopyBuf is the buffer size of local copies: large enough that the
// per-call overhead vanishes next to the copy itself, small enough to keep
// a few around per storage.
const localCopyBuf = 1 << 20

// LocalStorage keeps objects as files under a root directory: the object
// "a/b/c" is the file root/a/b/c. Writes go to a temporary file in the
// target folder that is fsynced and renamed into place, and the folder is
// fsynced, so an object is durable and all-or-nothing once Put returns.
//
// One limit S3 does not have: an object and a folder cannot share a name
// ("a/b" and "a/b/c" cannot both exist). The checkpoint layout never does
// that.
type LocalStorage struct {
	root string // absolute and clean
	log  *slog.Logger
	bufs sync.Pool // *[]byte of localCopyBuf bytes
}

var _ Storage = (*LocalStorage)(nil)

// OpenLocal opens (creating it if needed) a local storage rooted at dir.
// log may be nil.
func OpenLocal(dir string, log *slog.Logger) (*LocalStorage, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("checkpoint storage %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("checkpoint storage %q: %w", dir, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("checkpoint storage %q: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("checkpoint storage %q: not a directory", dir)
	}
	l := &LocalStorage{root: abs, log: log}
	l.bufs.New = func() any { b := make([]byte, localCopyBuf); return &b }
	return l, nil
}

// Root is the storage's directory.
func (l *LocalStorage) Root() string { return l.root }

// String is the storage's URI.
func (l *LocalStorage) String() string { return "file://" + filepath.ToSlash(l.root) }

// where names an object (or prefix) in errors.
func (l *LocalStorage) where(name string) string {
	return "file://" + filepath.ToSlash(l.root) + "/" + name
}

// path maps a checked name to its file. CheckObjectName rejects "..",
// absolute names and empty elements, so the result is always under root.
func (l *LocalStorage) path(name string) (string, error) {
	if err := CheckObjectName(name); err != nil {
		return "", fmt.Errorf("checkpoint storage %s: %w", l, err)
	}
	return filepath.Join(l.root, filepath.FromSlash(name)), nil
}

// Put implements Storage.
func (l *LocalStorage) Put(ctx context.Context, name string, r io.Reader) (ObjectInfo, error) {
	dst, err := l.path(name)
	if err != nil {
		return ObjectInfo{}, err
	}
	info, err := l.writeAtomic(ctx, name, dst, func(w io.Writer) (int64, uint32, error) {
		return l.copy(ctx, w, r)
	})
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("put %s: %w", l.where(name), err)
	}
	return info, nil
}

// PutFile implements Storage. With ImmutableFile it hard-links the file
// into the storage when both are on one filesystem (reading it once for
// its checksum and fsyncing it), and copies it otherwise.
func (l *LocalStorage) PutFile(ctx context.Context, name, localPath string, mode LocalFile) (ObjectInfo, error) {
	dst, err := l.path(name)
	if err != nil {
		return ObjectInfo{}, err
	}
	src, st, err := openRegular(localPath)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("put %s from %s: %w", l.where(name), localPath, err)
	}
	defer src.Close()
	if mode == ImmutableFile {
		info, linked, err := l.putLink(ctx, name, dst, localPath, src)
		if err != nil {
			return ObjectInfo{}, fmt.Errorf("put %s from %s: %w", l.where(name), localPath, err)
		}
		if linked {
			return info, nil
		}
	}
	info, err := l.writeAtomic(ctx, name, dst, func(w io.Writer) (int64, uint32, error) {
		return l.copy(ctx, w, src)
	})
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("put %s from %s: %w", l.where(name), localPath, err)
	}
	if info.Size != st.Size() {
		// The caller broke its promise (or another process wrote to the
		// file): what was stored is not the file it described.
		return ObjectInfo{}, fmt.Errorf("put %s from %s: the file changed size while being copied (%d bytes, then %d)", l.where(name), localPath, st.Size(), info.Size)
	}
	return info, nil
}

// putLink stores src by hard link. linked is false (with no error) when
// linking is impossible here and the caller should copy instead.
func (l *LocalStorage) putLink(ctx context.Context, name, dst, localPath string, src *os.File) (info ObjectInfo, linked bool, err error) {
	dir := filepath.Dir(dst)
	if err := l.mkdirAll(dir); err != nil {
		return ObjectInfo{}, false, err
	}
	tmp, err := localLinkTemp(localPath, dir)
	if err != nil {
		l.log.Debug("checkpoint storage: cannot hard-link, copying", "file", localPath, "err", err)
		return ObjectInfo{}, false, nil
	}
	defer func() {
		if err != nil {
			l.removeTemp(tmp)
		}
	}()
	n, crc, err := l.copy(ctx, io.Discard, src)
	if err != nil {
		return ObjectInfo{}, false, err
	}
	// The file is now part of a checkpoint: its bytes must be on disk
	// before the rename makes it one. Cheap when the writer (Pebble)
	// already synced it.
	if err := src.Sync(); err != nil {
		return ObjectInfo{}, false, err
	}
	st, err := src.Stat()
	if err != nil {
		return ObjectInfo{}, false, err
	}
	if st.Size() != n {
		return ObjectInfo{}, false, fmt.Errorf("the file changed size while being read (%d bytes read, now %d)", n, st.Size())
	}
	if err := localRenameLink(tmp, dst); err != nil {
		return ObjectInfo{}, false, err
	}
	if err := localSyncDir(dir); err != nil {
		return ObjectInfo{}, false, err
	}
	return ObjectInfo{Name: name, Size: n, CRC32C: crc, HasCRC32C: true, ModTime: st.ModTime()}, true, nil
}

// writeAtomic creates dst through a synced temporary file that fill writes.
func (l *LocalStorage) writeAtomic(ctx context.Context, name, dst string, fill func(io.Writer) (int64, uint32, error)) (info ObjectInfo, err error) {
	if err := ctx.Err(); err != nil {
		return ObjectInfo{}, err
	}
	dir := filepath.Dir(dst)
	if err := l.mkdirAll(dir); err != nil {
		return ObjectInfo{}, err
	}
	f, tmp, err := localCreateTemp(dir)
	if err != nil {
		return ObjectInfo{}, err
	}
	defer func() {
		if err != nil {
			f.Close()
			l.removeTemp(tmp)
		}
	}()
	n, crc, err := fill(f)
	if err != nil {
		return ObjectInfo{}, err
	}
	if err := f.Sync(); err != nil {
		return ObjectInfo{}, err
	}
	st, err := f.Stat()
	if err != nil {
		return ObjectInfo{}, err
	}
	if err := f.Close(); err != nil {
		return ObjectInfo{}, err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return ObjectInfo{}, err
	}
	if err := localSyncDir(dir); err != nil {
		return ObjectInfo{}, err
	}
	return ObjectInfo{Name: name, Size: n, CRC32C: crc, HasCRC32C: true, ModTime: st.ModTime()}, nil
}

// copy copies src to dst, returning the size and CRC32C of the bytes and
// stopping when ctx is done.
func (l *LocalStorage) copy(ctx context.Context, dst io.Writer, src io.Reader) (n int64, crc uint32, err error) {
	bp := l.bufs.Get().(*[]byte)
	defer l.bufs.Put(bp)
	buf := *bp
	for {
		if err := ctx.Err(); err != nil {
			return n, crc, err
		}
		nr, rerr := src.Read(buf)
		if nr > 0 {
			crc = crc32.Update(crc, storageCRCTable, buf[:nr])
			if _, err := dst.Write(buf[:nr]); err != nil {
				return n, crc, err
			}
			n += int64(nr)
		}
		if rerr == io.EOF {
			return n, crc, nil
		}
		if rerr != nil {
			return n, crc, rerr
		}
	}
}

// Open implements Storage.
func (l *LocalStorage) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	f, _, err := l.open(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", l.where(name), err)
	}
	return f, nil
}

// open opens an object's file, mapping "missing" (including "is a folder")
// to ErrNotFound.
func (l *LocalStorage) open(ctx context.Context, name string) (*os.File, os.FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	p, err := l.path(name)
	if err != nil {
		return nil, nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, localNotFound(err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("a folder, not an object: %w", ErrNotFound)
	}
	return f, st, nil
}

// GetFile implements Storage. With ImmutableFile it hard-links the object
// to localPath when both are on one filesystem (reading it once to verify
// it), and copies it otherwise. The result is not fsynced: a restored
// working copy that a crash damages is restored again from storage.
func (l *LocalStorage) GetFile(ctx context.Context, name, localPath string, want ObjectInfo, mode LocalFile) (err error) {
	src, _, err := l.open(ctx, name)
	if err != nil {
		return fmt.Errorf("get %s: %w", l.where(name), err)
	}
	defer src.Close()
	fail := func(err error) error { return fmt.Errorf("get %s to %s: %w", l.where(name), localPath, err) }
	dir := filepath.Dir(localPath)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	if mode == ImmutableFile {
		if tmp, lerr := localLinkTemp(src.Name(), dir); lerr == nil {
			return l.finishLinkedGet(ctx, name, tmp, localPath, want, fail)
		}
	}
	f, tmp, err := localCreateTemp(dir)
	if err != nil {
		return fail(err)
	}
	defer func() {
		if err != nil {
			f.Close()
			l.removeTemp(tmp)
		}
	}()
	r := VerifyingReader(src, l.where(name), want)
	if _, _, err := l.copy(ctx, f, r); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, localPath); err != nil {
		return fail(err)
	}
	return nil
}

// finishLinkedGet verifies the object linked at tmp and renames it to
// localPath. It reads the link, not the object's path, so that what is
// verified is exactly what the caller gets.
func (l *LocalStorage) finishLinkedGet(ctx context.Context, name, tmp, localPath string, want ObjectInfo, fail func(error) error) (err error) {
	defer func() {
		if err != nil {
			l.removeTemp(tmp)
		}
	}()
	if want.HasCRC32C {
		f, err := os.Open(tmp)
		if err != nil {
			return fail(err)
		}
		_, _, err = l.copy(ctx, io.Discard, VerifyingReader(f, l.where(name), want))
		f.Close()
		if err != nil {
			return fail(err)
		}
	}
	if err := localRenameLink(tmp, localPath); err != nil {
		return fail(err)
	}
	return nil
}

// Stat implements Storage. Local storage keeps no checksums: HasCRC32C is
// false.
func (l *LocalStorage) Stat(ctx context.Context, name string) (ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return ObjectInfo{}, err
	}
	p, err := l.path(name)
	if err != nil {
		return ObjectInfo{}, err
	}
	st, err := os.Stat(p)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("stat %s: %w", l.where(name), localNotFound(err))
	}
	if !st.Mode().IsRegular() {
		return ObjectInfo{}, fmt.Errorf("stat %s: a folder, not an object: %w", l.where(name), ErrNotFound)
	}
	return ObjectInfo{Name: name, Size: st.Size(), ModTime: st.ModTime()}, nil
}

// Delete implements Storage. Empty folders are left behind: removing them
// would race with a concurrent Put creating a file in them (the
// coordinator deletes old shared files while tasks upload new ones into
// the same folder); DeletePrefix removes whole folders.
func (l *LocalStorage) Delete(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := l.path(name)
	if err != nil {
		return err
	}
	st, err := os.Lstat(p)
	if err != nil {
		if errors.Is(localNotFound(err), ErrNotFound) {
			return nil
		}
		return fmt.Errorf("delete %s: %w", l.where(name), err)
	}
	if st.IsDir() {
		return nil // a folder is not an object; there is no object by this name
	}
	if err := os.Remove(p); err != nil && !errors.Is(localNotFound(err), ErrNotFound) {
		return fmt.Errorf("delete %s: %w", l.where(name), err)
	}
	return nil
}

// List implements Storage.
func (l *LocalStorage) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	p, err := cleanPrefix(prefix)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", l, err)
	}
	base := l.root
	if p != "" {
		base = filepath.Join(l.root, filepath.FromSlash(p))
	}
	if st, err := os.Lstat(base); err != nil || !st.IsDir() {
		if err == nil || errors.Is(localNotFound(err), ErrNotFound) {
			return nil, nil // nothing under it (an object of that very name is not under it)
		}
		return nil, fmt.Errorf("list %s: %w", l.where(p), err)
	}
	var out []ObjectInfo
	err = filepath.WalkDir(base, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // deleted while listing
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() || strings.HasPrefix(d.Name(), localTempPrefix) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		rel, err := filepath.Rel(l.root, path)
		if err != nil {
			return err
		}
		out = append(out, ObjectInfo{Name: filepath.ToSlash(rel), Size: info.Size(), ModTime: info.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", l.where(p), err)
	}
	// WalkDir's per-folder order is not the byte order of full names
	// ("a.b" < "a/b"), which S3 and callers expect.
	slices.SortFunc(out, func(a, b ObjectInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// DeletePrefix implements Storage.
func (l *LocalStorage) DeletePrefix(ctx context.Context, prefix string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := cleanPrefix(prefix)
	if err != nil {
		return fmt.Errorf("delete prefix in %s: %w", l, err)
	}
	if p == "" {
		return fmt.Errorf("delete prefix in %s: the prefix is empty: %w", l, ErrInvalidName)
	}
	base := filepath.Join(l.root, filepath.FromSlash(p))
	st, err := os.Lstat(base)
	if err != nil {
		if errors.Is(localNotFound(err), ErrNotFound) {
			return nil
		}
		return fmt.Errorf("delete prefix %s: %w", l.where(p), err)
	}
	if !st.IsDir() {
		return nil // an object named like the prefix is not under it
	}
	if err := os.RemoveAll(base); err != nil {
		return fmt.Errorf("delete prefix %s: %w", l.where(p), err)
	}
	return nil
}

// removeTemp removes a temporary file after a failure; a failure to do so
// leaves only an invisible file, so it is logged, not returned.
func (l *LocalStorage) removeTemp(path string) {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		l.log.Warn("checkpoint storage: cannot remove a temporary file", "path", path, "err", err)
	}
}

// mkdirAll creates dir and its missing parents, fsyncing each parent whose
// entries changed, so that a synced file in a new folder is reachable
// after a crash.
func (l *LocalStorage) mkdirAll(dir string) error {
	st, err := os.Stat(dir)
	if err == nil {
		if st.IsDir() {
			return nil
		}
		return &fs.PathError{Op: "mkdir", Path: dir, Err: syscall.ENOTDIR}
	}
	if !errors.Is(err, fs.ErrNotExist) || dir == l.root {
		return err
	}
	parent := filepath.Dir(dir)
	if err := l.mkdirAll(parent); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return l.mkdirAll(dir) // created concurrently; still must be a folder
		}
		return err
	}
	return localSyncDir(parent)
}

// localNotFound maps the errors of a missing file, or of a path through a
// file ("a/b" when "a" is an object), to ErrNotFound.
func localNotFound(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("%w (%v)", ErrNotFound, err)
	}
	return err
}

// localTempName returns a fresh temporary file name in dir.
func localTempName(dir string) string {
	return filepath.Join(dir, localTempPrefix+strconv.FormatUint(rand.Uint64(), 36))
}

// localCreateTemp creates a new temporary file in dir. Unlike os.CreateTemp it
// uses the reserved prefix and the mode objects get (0644).
func localCreateTemp(dir string) (*os.File, string, error) {
	for range 10 {
		name := localTempName(dir)
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			return f, name, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, "", err
		}
	}
	return nil, "", fmt.Errorf("cannot create a temporary file in %s", dir)
}

// localLinkTemp hard-links src to a fresh temporary name in dir.
func localLinkTemp(src, dir string) (string, error) {
	for range 10 {
		name := localTempName(dir)
		err := os.Link(src, name)
		if err == nil {
			return name, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("cannot create a temporary link in %s", dir)
}

// localRenameLink renames the hard link tmp to dst. When dst already is a
// link to the same file (the same SST stored, or restored, twice), POSIX
// rename does nothing and succeeds, leaving tmp behind: it is removed.
func localRenameLink(tmp, dst string) error {
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// localSyncDir fsyncs a folder, making renames and new entries in it durable.
func localSyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

package checkpoint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

func localHarness() storageHarness {
	return storageHarness{
		open: func(t *testing.T) Storage {
			s, err := OpenLocal(filepath.Join(t.TempDir(), "root"), nil)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		corrupt: func(t *testing.T, s Storage, name string, data []byte) {
			// In place, like bit rot: the inode stays, its bytes change.
			if err := os.WriteFile(filepath.Join(s.(*LocalStorage).Root(), name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		},
	}
}

func TestLocalConformance(t *testing.T) {
	runStorageConformance(t, localHarness())
}

// TestLocalStaysInsideRoot checks that rejected names did not touch the
// filesystem outside the root (the conformance suite checks the inside).
func TestLocalStaysInsideRoot(t *testing.T) {
	parent := t.TempDir()
	s, err := OpenLocal(filepath.Join(parent, "tenants", "t1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	for _, name := range []string{"../t2/x", "../../x", "/" + filepath.Join(parent, "abs")} {
		if _, err := s.Put(ctx, name, bytes.NewReader([]byte("x"))); !errors.Is(err, ErrInvalidName) {
			t.Fatalf("Put(%q) = %v", name, err)
		}
	}
	var found []string
	err = filepath.WalkDir(parent, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			found = append(found, p)
		}
		return err
	})
	if err != nil || len(found) != 0 {
		t.Fatalf("files created: %v (%v)", found, err)
	}
}

func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	sa, err := os.Stat(a)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := os.Stat(b)
	if err != nil {
		t.Fatal(err)
	}
	return os.SameFile(sa, sb)
}

// TestLocalHardLinks: ImmutableFile shares the inode, MutableFile copies.
func TestLocalHardLinks(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenLocal(filepath.Join(dir, "storage"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	src, crc := randomFile(t, dir, 1<<20+3, 9)
	for _, tc := range []struct {
		mode   LocalFile
		linked bool
	}{{MutableFile, false}, {ImmutableFile, true}} {
		t.Run(fmt.Sprint(tc.mode), func(t *testing.T) {
			name := fmt.Sprintf("shared/task-0/%d-000001.sst", tc.mode)
			info, err := s.PutFile(ctx, name, src, tc.mode)
			if err != nil {
				t.Fatal(err)
			}
			if info.Size != 1<<20+3 || info.CRC32C != crc || !info.HasCRC32C {
				t.Fatalf("PutFile = %+v, want crc %08x", info, crc)
			}
			stored := filepath.Join(s.Root(), filepath.FromSlash(name))
			if got := sameFile(t, src, stored); got != tc.linked {
				t.Fatalf("PutFile linked = %v, want %v", got, tc.linked)
			}
			dst := filepath.Join(dir, "restore", fmt.Sprint(tc.mode), "000001.sst")
			if err := s.GetFile(ctx, name, dst, info, tc.mode); err != nil {
				t.Fatal(err)
			}
			if got := sameFile(t, stored, dst); got != tc.linked {
				t.Fatalf("GetFile linked = %v, want %v", got, tc.linked)
			}
			if n, c := fileCRC(t, dst); n != info.Size || c != crc {
				t.Fatalf("restored %d bytes crc %08x", n, c)
			}
			// Storing and restoring the same file again (the same SST in
			// the next checkpoint; a second restore into one folder)
			// works and leaves no temporary link behind.
			if _, err := s.PutFile(ctx, name, src, tc.mode); err != nil {
				t.Fatal(err)
			}
			if err := s.GetFile(ctx, name, dst, info, tc.mode); err != nil {
				t.Fatal(err)
			}
			for _, d := range []string{filepath.Dir(stored), filepath.Dir(dst)} {
				entries, err := os.ReadDir(d)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range entries {
					if e.Name() != filepath.Base(stored) && e.Name() != filepath.Base(dst) {
						t.Fatalf("%s holds a leftover %s", d, e.Name())
					}
				}
			}
			// Deleting the object leaves the caller's files alone.
			if err := s.Delete(ctx, name); err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{src, dst} {
				if n, c := fileCRC(t, p); n != info.Size || c != crc {
					t.Fatalf("%s changed after Delete: %d bytes crc %08x", p, n, c)
				}
			}
		})
	}
}

// TestLocalLinkFallsBackToCopy: across filesystems a hard link is
// impossible and ImmutableFile quietly copies.
func TestLocalLinkFallsBackToCopy(t *testing.T) {
	const other = "/dev/shm"
	dir := t.TempDir()
	var a, b syscall.Stat_t
	if syscall.Stat(other, &a) != nil || syscall.Stat(dir, &b) != nil || a.Dev == b.Dev {
		t.Skipf("needs %s on another filesystem than %s", other, dir)
	}
	shm, err := os.MkdirTemp(other, "weir-test-")
	if err != nil {
		t.Skipf("cannot write to %s: %v", other, err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	s, err := OpenLocal(filepath.Join(dir, "storage"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	src, crc := randomFile(t, shm, 100000, 3)
	info, err := s.PutFile(ctx, "x/sst", src, ImmutableFile)
	if err != nil || info.CRC32C != crc {
		t.Fatalf("PutFile across filesystems = %+v, %v", info, err)
	}
	if sameFile(t, src, filepath.Join(s.Root(), "x", "sst")) {
		t.Fatal("linked across filesystems?")
	}
	dst := filepath.Join(shm, "restored")
	if err := s.GetFile(ctx, "x/sst", dst, info, ImmutableFile); err != nil {
		t.Fatal(err)
	}
	if n, c := fileCRC(t, dst); n != 100000 || c != crc {
		t.Fatalf("restored %d bytes crc %08x", n, c)
	}
}

// TestLocalLeavesNoTemporaryFiles: failed writes clean up, and temporary
// files (of a crashed writer) never show up as objects.
func TestLocalLeavesNoTemporaryFiles(t *testing.T) {
	s, err := OpenLocal(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	mustPut(t, s, "d/keep", []byte("x"))
	if _, err := s.Put(ctx, "d/obj", newFailingReader(5<<20)); !errors.Is(err, errReaderBroke) {
		t.Fatalf("Put = %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.PutFile(cancelled, "d/obj", filepath.Join(s.Root(), "d", "keep"), ImmutableFile); !errors.Is(err, context.Canceled) {
		t.Fatalf("PutFile with a cancelled context = %v", err)
	}
	entries, err := os.ReadDir(filepath.Join(s.Root(), "d"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, []string{"keep"}) {
		t.Fatalf("folder holds %q after failed writes, want only keep", got)
	}
	// A crashed writer's temporary file.
	if err := os.WriteFile(filepath.Join(s.Root(), "d", localTempPrefix+"crashed"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := mustList(t, s, ""); !slices.Equal(got, []string{"d/keep"}) {
		t.Fatalf("List shows %q", got)
	}
}

func TestOpenLocalRejectsAFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenLocal(f, nil); err == nil {
		t.Fatal("OpenLocal of a file succeeded")
	}
	if _, err := OpenStorage("file://"+f, StorageOptions{}); err == nil {
		t.Fatal("OpenStorage of a file succeeded")
	}
}

// benchmarkStorage measures Put and Get throughput (b.SetBytes: MB/s).
func benchmarkStorage(b *testing.B, open func(b *testing.B) Storage) {
	for _, size := range []int64{1 << 20, 64 << 20} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(i * 7)
		}
		src := filepath.Join(b.TempDir(), "src")
		if err := os.WriteFile(src, data, 0o644); err != nil {
			b.Fatal(err)
		}
		label := fmt.Sprintf("%dMiB", size>>20)
		b.Run("Put/"+label, func(b *testing.B) {
			s := open(b)
			b.SetBytes(size)
			for b.Loop() {
				if _, err := s.Put(context.Background(), "bench/obj", bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("PutFile/"+label, func(b *testing.B) {
			s := open(b)
			b.SetBytes(size)
			for b.Loop() {
				if _, err := s.PutFile(context.Background(), "bench/obj", src, MutableFile); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("Open/"+label, func(b *testing.B) {
			s := open(b)
			if _, err := s.Put(context.Background(), "bench/obj", bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(size)
			for b.Loop() {
				rc, err := s.Open(context.Background(), "bench/obj")
				if err != nil {
					b.Fatal(err)
				}
				if n, err := io.Copy(io.Discard, rc); err != nil || n != size {
					b.Fatal(n, err)
				}
				rc.Close()
			}
		})
		b.Run("GetFile/"+label, func(b *testing.B) {
			s := open(b)
			info, err := s.Put(context.Background(), "bench/obj", bytes.NewReader(data))
			if err != nil {
				b.Fatal(err)
			}
			// A fresh destination each time, as in a restore: renaming
			// over an existing file makes ext4 flush it (auto_da_alloc),
			// which a restore never pays.
			dir := b.TempDir()
			i := 0
			b.SetBytes(size)
			for b.Loop() {
				i++
				if err := s.GetFile(context.Background(), "bench/obj", filepath.Join(dir, fmt.Sprint(i)), info, MutableFile); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkLocalStorage(b *testing.B) {
	benchmarkStorage(b, func(b *testing.B) Storage {
		s, err := OpenLocal(b.TempDir(), nil)
		if err != nil {
			b.Fatal(err)
		}
		return s
	})
}

// BenchmarkLocalLinks measures the hard-link paths used for Pebble SSTs:
// the cost is one read for the checksum (and an fsync that finds nothing
// to write), no copy.
func BenchmarkLocalLinks(b *testing.B) {
	const size = 64 << 20
	s, err := OpenLocal(filepath.Join(b.TempDir(), "s"), nil)
	if err != nil {
		b.Fatal(err)
	}
	src := filepath.Join(b.TempDir(), "src")
	if err := os.WriteFile(src, make([]byte, size), 0o644); err != nil {
		b.Fatal(err)
	}
	var info ObjectInfo
	b.Run("PutFile/64MiB", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			if info, err = s.PutFile(context.Background(), "obj", src, ImmutableFile); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("GetFile/64MiB", func(b *testing.B) {
		dir := b.TempDir()
		i := 0
		b.SetBytes(size)
		for b.Loop() {
			i++
			if err := s.GetFile(context.Background(), "obj", filepath.Join(dir, fmt.Sprint(i)), info, ImmutableFile); err != nil {
				b.Fatal(err)
			}
		}
	})
}

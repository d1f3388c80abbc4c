package checkpoint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// storageHarness adapts one Storage implementation to the conformance
// suite.
type storageHarness struct {
	// open returns a fresh, empty storage.
	open func(t *testing.T) Storage
	// corrupt replaces the stored bytes of name behind the storage's back
	// (bit rot, a truncated upload, a tampered bucket).
	corrupt func(t *testing.T, s Storage, name string, data []byte)
	// partSize is the size above which the implementation switches to a
	// different upload path (0 when there is none).
	partSize int64
}

// testCtx bounds every storage call of a test.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// crcOf is the reference CRC32C, computed by the standard library
// independently of the package's streaming code.
func crcOf(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }

func mustPut(t *testing.T, s Storage, name string, data []byte) ObjectInfo {
	t.Helper()
	info, err := s.Put(testCtx(t), name, bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Put(%s): %v", name, err)
	}
	return info
}

func readAll(t *testing.T, s Storage, name string) []byte {
	t.Helper()
	rc, err := s.Open(testCtx(t), name)
	if err != nil {
		t.Fatalf("Open(%s): %v", name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading %s: %v", name, err)
	}
	return b
}

func names(objs []ObjectInfo) []string {
	out := []string{}
	for _, o := range objs {
		out = append(out, o.Name)
	}
	return out
}

func mustList(t *testing.T, s Storage, prefix string) []string {
	t.Helper()
	objs, err := s.List(testCtx(t), prefix)
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return names(objs)
}

// failingReader yields n pseudo-random bytes, then fails.
type failingReader struct {
	n   int64
	err error
	rng *rand.ChaCha8
}

var errReaderBroke = errors.New("reader broke on purpose")

func newFailingReader(n int64) *failingReader {
	return &failingReader{n: n, err: errReaderBroke, rng: rand.NewChaCha8([32]byte{7})}
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	if int64(len(p)) > f.n {
		p = p[:f.n]
	}
	n, _ := f.rng.Read(p)
	f.n -= int64(n)
	return n, nil
}

// randomFile writes size pseudo-random bytes to a new file and returns its
// path and CRC32C (computed as it was generated).
func randomFile(t *testing.T, dir string, size int64, seed byte) (string, uint32) {
	t.Helper()
	path := filepath.Join(dir, fmt.Sprintf("random-%d-%d", size, seed))
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rng := rand.NewChaCha8([32]byte{seed})
	buf := make([]byte, 1<<20)
	var crc uint32
	table := crc32.MakeTable(crc32.Castagnoli)
	for left := size; left > 0; {
		n := min(int64(len(buf)), left)
		rng.Read(buf[:n])
		crc = crc32.Update(crc, table, buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			t.Fatal(err)
		}
		left -= n
	}
	return path, crc
}

// fileCRC reads a file back and returns its size and CRC32C.
func fileCRC(t *testing.T, path string) (int64, uint32) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	n, err := io.Copy(h, f)
	if err != nil {
		t.Fatal(err)
	}
	return n, h.Sum32()
}

// runStorageConformance is what every Storage must do.
func runStorageConformance(t *testing.T, h storageHarness) {
	t.Run("PutOpenStat", func(t *testing.T) {
		s := h.open(t)
		ctx := testCtx(t)
		// 0xe3069283 is the published CRC-32C check value of "123456789".
		info := mustPut(t, s, "tenants/t1/jobs/j/chk-1/_metadata", []byte("123456789"))
		if info.Name != "tenants/t1/jobs/j/chk-1/_metadata" || info.Size != 9 || !info.HasCRC32C || info.CRC32C != 0xe3069283 {
			t.Fatalf("Put returned %+v, want size 9 crc32c e3069283", info)
		}
		if got := readAll(t, s, "tenants/t1/jobs/j/chk-1/_metadata"); string(got) != "123456789" {
			t.Fatalf("Open read %q", got)
		}
		st, err := s.Stat(ctx, "tenants/t1/jobs/j/chk-1/_metadata")
		if err != nil {
			t.Fatal(err)
		}
		if st.Name != info.Name || st.Size != 9 || (st.HasCRC32C && st.CRC32C != 0xe3069283) {
			t.Fatalf("Stat returned %+v", st)
		}
		if st.ModTime.IsZero() {
			t.Fatalf("Stat returned no ModTime: %+v", st)
		}
	})

	t.Run("OverwriteAndEmpty", func(t *testing.T) {
		s := h.open(t)
		mustPut(t, s, "a/b", []byte("first version"))
		info := mustPut(t, s, "a/b", []byte("second"))
		if got := readAll(t, s, "a/b"); string(got) != "second" {
			t.Fatalf("after overwrite, read %q", got)
		}
		if info.Size != 6 || info.CRC32C != crcOf([]byte("second")) {
			t.Fatalf("overwrite returned %+v", info)
		}
		empty := mustPut(t, s, "a/empty", nil)
		if empty.Size != 0 || !empty.HasCRC32C || empty.CRC32C != 0 {
			t.Fatalf("empty object: %+v", empty)
		}
		if got := readAll(t, s, "a/empty"); len(got) != 0 {
			t.Fatalf("empty object read %q", got)
		}
		dst := filepath.Join(t.TempDir(), "empty")
		if err := s.GetFile(testCtx(t), "a/empty", dst, empty, MutableFile); err != nil {
			t.Fatal(err)
		}
		if n, _ := fileCRC(t, dst); n != 0 {
			t.Fatalf("empty GetFile wrote %d bytes", n)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		s := h.open(t)
		ctx := testCtx(t)
		mustPut(t, s, "dir/obj", []byte("x"))
		for _, name := range []string{"missing", "dir/missing", "dir", "dir/obj/below"} {
			if _, err := s.Open(ctx, name); !errors.Is(err, ErrNotFound) {
				t.Errorf("Open(%s) = %v, want ErrNotFound", name, err)
			} else if !strings.Contains(err.Error(), name) {
				t.Errorf("Open(%s) error does not name the object: %v", name, err)
			}
			if _, err := s.Stat(ctx, name); !errors.Is(err, ErrNotFound) {
				t.Errorf("Stat(%s) = %v, want ErrNotFound", name, err)
			}
			dst := filepath.Join(t.TempDir(), "out")
			if err := s.GetFile(ctx, name, dst, ObjectInfo{}, MutableFile); !errors.Is(err, ErrNotFound) {
				t.Errorf("GetFile(%s) = %v, want ErrNotFound", name, err)
			}
			if _, err := os.Stat(dst); err == nil {
				t.Errorf("GetFile(%s) of a missing object created %s", name, dst)
			}
			if err := s.Delete(ctx, name); err != nil {
				t.Errorf("Delete(%s) of a missing object = %v, want nil", name, err)
			}
		}
		if got := readAll(t, s, "dir/obj"); string(got) != "x" {
			t.Fatalf("dir/obj damaged: %q", got)
		}
	})

	t.Run("ListAndPrefixIsolation", func(t *testing.T) {
		s := h.open(t)
		ctx := testCtx(t)
		all := []string{
			"tenants/t1.b/x",
			"tenants/t1/jobs/j/a",
			"tenants/t1/jobs/j/sub/b",
			"tenants/t1/z",
			"tenants/t10/jobs/j/a",
			"tenants/t1x",
			"top",
		}
		for i, n := range slices.Backward(all) { // insertion order must not matter
			mustPut(t, s, n, bytes.Repeat([]byte{'v'}, i))
		}
		for _, tc := range []struct {
			prefix string
			want   []string
		}{
			{"", all},
			{"tenants/t1", []string{"tenants/t1/jobs/j/a", "tenants/t1/jobs/j/sub/b", "tenants/t1/z"}},
			{"tenants/t1/", []string{"tenants/t1/jobs/j/a", "tenants/t1/jobs/j/sub/b", "tenants/t1/z"}},
			{"tenants/t10", []string{"tenants/t10/jobs/j/a"}},
			{"tenants/t1/jobs/j/sub", []string{"tenants/t1/jobs/j/sub/b"}},
			{"tenants/t1x", []string{}}, // an object, not a folder
			{"top", []string{}},
			{"nothing/here", []string{}},
		} {
			if got := mustList(t, s, tc.prefix); !slices.Equal(got, tc.want) {
				t.Errorf("List(%q) = %q, want %q", tc.prefix, got, tc.want)
			}
		}
		objs, err := s.List(ctx, "tenants/t1/jobs")
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			if want := int64(slices.Index(all, o.Name)); o.Size != want {
				t.Errorf("List: %s has size %d, want %d", o.Name, o.Size, want)
			}
		}

		if err := s.Delete(ctx, "tenants/t1/z"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeletePrefix(ctx, "tenants/t1/"); err != nil {
			t.Fatal(err)
		}
		want := []string{"tenants/t1.b/x", "tenants/t10/jobs/j/a", "tenants/t1x", "top"}
		if got := mustList(t, s, ""); !slices.Equal(got, want) {
			t.Fatalf("after DeletePrefix(tenants/t1/): %q, want %q", got, want)
		}
		if err := s.DeletePrefix(ctx, "tenants/t1x"); err != nil { // an object, not a folder
			t.Fatal(err)
		}
		if err := s.DeletePrefix(ctx, "no/such/folder"); err != nil {
			t.Fatalf("DeletePrefix of a missing folder: %v", err)
		}
		if got := mustList(t, s, ""); !slices.Equal(got, want) {
			t.Fatalf("DeletePrefix removed what is not under it: %q, want %q", got, want)
		}
		for _, p := range []string{"", "/"} {
			if err := s.DeletePrefix(ctx, p); !errors.Is(err, ErrInvalidName) {
				t.Errorf("DeletePrefix(%q) = %v, want ErrInvalidName", p, err)
			}
		}
		// A Put into a folder that DeletePrefix removed recreates it.
		mustPut(t, s, "tenants/t1/jobs/j/again", []byte("x"))
		if got := mustList(t, s, "tenants/t1"); !slices.Equal(got, []string{"tenants/t1/jobs/j/again"}) {
			t.Fatalf("List after re-put: %q", got)
		}
	})

	t.Run("AtomicPut", func(t *testing.T) {
		s := h.open(t)
		ctx := testCtx(t)
		mustPut(t, s, "keep/obj", []byte("old content"))
		sizes := []int64{0, 100, 3 << 20}
		if h.partSize > 0 {
			sizes = append(sizes, h.partSize+1<<20) // the multipart path
		}
		for _, n := range sizes {
			for _, name := range []string{"new/obj", "keep/obj"} {
				_, err := s.Put(ctx, name, newFailingReader(n))
				if !errors.Is(err, errReaderBroke) {
					t.Fatalf("Put(%s) with a reader failing after %d bytes = %v, want the reader's error", name, n, err)
				}
			}
			if _, err := s.Stat(ctx, "new/obj"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("after a failed Put of %d bytes, Stat(new/obj) = %v, want ErrNotFound", n, err)
			}
			if got := readAll(t, s, "keep/obj"); string(got) != "old content" {
				t.Fatalf("a failed Put of %d bytes changed keep/obj to %d bytes", n, len(got))
			}
		}
		if got := mustList(t, s, ""); !slices.Equal(got, []string{"keep/obj"}) {
			t.Fatalf("failed Puts left objects: %q", got)
		}
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.Put(cancelled, "new/obj", bytes.NewReader([]byte("x"))); !errors.Is(err, context.Canceled) {
			t.Fatalf("Put with a cancelled context = %v", err)
		}
		if got := mustList(t, s, ""); !slices.Equal(got, []string{"keep/obj"}) {
			t.Fatalf("a cancelled Put left objects: %q", got)
		}
	})

	t.Run("GetFileDetectsCorruption", func(t *testing.T) {
		s := h.open(t)
		ctx := testCtx(t)
		data := bytes.Repeat([]byte("checkpoint state "), 1000)
		flipped := bytes.Clone(data)
		flipped[len(flipped)/2] ^= 0x01
		for _, tc := range []struct {
			name    string
			corrupt []byte
		}{
			{"flipped bit", flipped},
			{"truncated", data[:len(data)-1]},
			{"extended", append(bytes.Clone(data), 0)},
		} {
			for _, mode := range []LocalFile{MutableFile, ImmutableFile} {
				name := "tenants/t/jobs/j/shared/task-0/sst-" + strings.ReplaceAll(tc.name, " ", "-")
				want := mustPut(t, s, name, data)
				dst := filepath.Join(t.TempDir(), "restored", "000001.sst")
				if err := s.GetFile(ctx, name, dst, want, mode); err != nil {
					t.Fatalf("GetFile of an intact object: %v", err)
				}
				if n, crc := fileCRC(t, dst); n != int64(len(data)) || crc != crcOf(data) {
					t.Fatalf("GetFile wrote %d bytes crc %08x", n, crc)
				}
				h.corrupt(t, s, name, tc.corrupt)
				dst2 := filepath.Join(t.TempDir(), "restored", "000001.sst")
				err := s.GetFile(ctx, name, dst2, want, mode)
				var ce *CorruptObjectError
				if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) {
					t.Fatalf("%s (mode %d): GetFile = %v, want a CorruptObjectError", tc.name, mode, err)
				}
				if !strings.Contains(err.Error(), name) || !strings.Contains(ce.Where, name) {
					t.Fatalf("the error does not name the object: %v", err)
				}
				if ce.WantSize != int64(len(data)) || ce.WantCRC32C != want.CRC32C {
					t.Fatalf("error records %+v", ce)
				}
				if _, err := os.Stat(dst2); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("GetFile of a corrupt object left %s (%v)", dst2, err)
				}
				leftovers, _ := os.ReadDir(filepath.Dir(dst2))
				if len(leftovers) != 0 {
					t.Fatalf("GetFile of a corrupt object left files: %v", leftovers)
				}
				// The restored copy from before is untouched by the
				// corruption of the stored object only when it was copied.
				if mode == MutableFile {
					if n, crc := fileCRC(t, dst); n != int64(len(data)) || crc != crcOf(data) {
						t.Fatalf("the earlier copy changed: %d bytes crc %08x", n, crc)
					}
				}
				// Streaming through VerifyingReader catches it too.
				rc, err := s.Open(ctx, name)
				if err != nil {
					t.Fatal(err)
				}
				_, err = io.Copy(io.Discard, VerifyingReader(rc, name, want))
				rc.Close()
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("VerifyingReader over Open = %v, want ErrCorrupt", err)
				}
				// Without a recorded checksum nothing is checked.
				if err := s.GetFile(ctx, name, dst2, ObjectInfo{Size: want.Size}, mode); err != nil {
					t.Fatalf("GetFile without want.HasCRC32C: %v", err)
				}
			}
		}
	})

	t.Run("RejectsEscapingNames", func(t *testing.T) {
		s := h.open(t)
		ctx := testCtx(t)
		bad := []string{
			"", "/etc/passwd", "..", "../x", "a/../../x", "a/..", "./a", "a/./b", "a//b", "a/",
			`a\b`, `..\x`, "a/\x00b", "a/\nb", "a/.weir-tmp-123", "\xff", strings.Repeat("a", 1025),
		}
		for _, name := range bad {
			checks := map[string]error{}
			_, checks["Put"] = s.Put(ctx, name, strings.NewReader("x"))
			_, checks["PutFile"] = s.PutFile(ctx, name, "/dev/null", MutableFile)
			_, checks["Open"] = s.Open(ctx, name)
			checks["GetFile"] = s.GetFile(ctx, name, filepath.Join(t.TempDir(), "x"), ObjectInfo{}, MutableFile)
			_, checks["Stat"] = s.Stat(ctx, name)
			checks["Delete"] = s.Delete(ctx, name)
			for op, err := range checks {
				if !errors.Is(err, ErrInvalidName) {
					t.Errorf("%s(%q) = %v, want ErrInvalidName", op, name, err)
				}
			}
		}
		for _, prefix := range []string{"..", "../t2", "a/../..", "/abs", "a//"} {
			if _, err := s.List(ctx, prefix); !errors.Is(err, ErrInvalidName) {
				t.Errorf("List(%q) = %v, want ErrInvalidName", prefix, err)
			}
			if err := s.DeletePrefix(ctx, prefix); !errors.Is(err, ErrInvalidName) {
				t.Errorf("DeletePrefix(%q) = %v, want ErrInvalidName", prefix, err)
			}
		}
		if got := mustList(t, s, ""); len(got) != 0 {
			t.Fatalf("rejected names created objects: %q", got)
		}
	})

	t.Run("LargePutFile", func(t *testing.T) {
		s := h.open(t)
		ctx := testCtx(t)
		const size = 64 << 20
		src, crc := randomFile(t, t.TempDir(), size, 1)
		for _, mode := range []LocalFile{MutableFile, ImmutableFile} {
			name := fmt.Sprintf("big/%d", mode)
			info, err := s.PutFile(ctx, name, src, mode)
			if err != nil {
				t.Fatal(err)
			}
			if info.Size != size || !info.HasCRC32C || info.CRC32C != crc || info.Name != name {
				t.Fatalf("PutFile returned %+v, want size %d crc %08x", info, size, crc)
			}
			st, err := s.Stat(ctx, name)
			if err != nil || st.Size != size || (st.HasCRC32C && st.CRC32C != crc) {
				t.Fatalf("Stat = %+v, %v", st, err)
			}
			dst := filepath.Join(t.TempDir(), "restored")
			if err := s.GetFile(ctx, name, dst, info, mode); err != nil {
				t.Fatal(err)
			}
			if n, got := fileCRC(t, dst); n != size || got != crc {
				t.Fatalf("restored %d bytes crc %08x, want %d %08x", n, got, size, crc)
			}
		}
		// A file of exactly the part size and one byte more take
		// different paths on S3.
		if h.partSize > 0 {
			for _, n := range []int64{h.partSize, h.partSize + 1} {
				p, c := randomFile(t, t.TempDir(), n, 2)
				info, err := s.PutFile(ctx, "edge", p, MutableFile)
				if err != nil || info.Size != n || info.CRC32C != c {
					t.Fatalf("PutFile of %d bytes = %+v, %v; want crc %08x", n, info, err, c)
				}
				info, err = s.Put(ctx, "edge-stream", io.LimitReader(rand.NewChaCha8([32]byte{2}), n))
				if err != nil || info.Size != n || info.CRC32C != c {
					t.Fatalf("Put of %d bytes = %+v, %v; want crc %08x", n, info, err, c)
				}
			}
		}
		if _, err := s.PutFile(ctx, "x", filepath.Join(t.TempDir(), "missing"), MutableFile); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("PutFile of a missing file = %v", err)
		}
		if _, err := s.PutFile(ctx, "x", t.TempDir(), MutableFile); err == nil {
			t.Fatal("PutFile of a directory succeeded")
		}
	})

	t.Run("ConcurrentPuts", func(t *testing.T) {
		s := h.open(t)
		ctx := testCtx(t)
		const writers = 6
		contents := make([][]byte, writers)
		for i := range contents {
			contents[i] = bytes.Repeat([]byte{byte('a' + i)}, 64<<10+i)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 2*writers)
		for i := range writers {
			wg.Go(func() {
				for range 3 {
					if _, err := s.Put(ctx, "same/name", bytes.NewReader(contents[i])); err != nil {
						errs <- err
					}
					if _, err := s.Put(ctx, fmt.Sprintf("own/%d", i), bytes.NewReader(contents[i])); err != nil {
						errs <- err
					}
				}
			})
		}
		// Readers never see a partial object.
		wg.Go(func() {
			for range 20 {
				rc, err := s.Open(ctx, "same/name")
				if errors.Is(err, ErrNotFound) {
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				b, err := io.ReadAll(rc)
				rc.Close()
				if err != nil {
					errs <- err
					return
				}
				if !slices.ContainsFunc(contents, func(c []byte) bool { return bytes.Equal(c, b) }) {
					errs <- fmt.Errorf("a reader saw %d bytes that no writer wrote", len(b))
					return
				}
			}
		})
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		got := readAll(t, s, "same/name")
		if !slices.ContainsFunc(contents, func(c []byte) bool { return bytes.Equal(c, got) }) {
			t.Fatalf("same/name holds %d bytes that no writer wrote whole", len(got))
		}
		want := []string{}
		for i := range writers {
			want = append(want, fmt.Sprintf("own/%d", i))
		}
		if got := mustList(t, s, "own"); !slices.Equal(got, want) {
			t.Fatalf("List(own) = %q", got)
		}
	})

	t.Run("Within", func(t *testing.T) {
		base := h.open(t)
		ctx := testCtx(t)
		mustPut(t, base, "tenants/t2/secret", []byte("t2"))
		sp, err := Within(base, "tenants/t1/jobs/j/savepoints/sp-1/")
		if err != nil {
			t.Fatal(err)
		}
		info := mustPut(t, sp, "task-0/state", []byte("state"))
		if info.Name != "task-0/state" {
			t.Fatalf("Within Put returned name %q", info.Name)
		}
		if got := mustList(t, base, "tenants/t1"); !slices.Equal(got, []string{"tenants/t1/jobs/j/savepoints/sp-1/task-0/state"}) {
			t.Fatalf("base sees %q", got)
		}
		if got := mustList(t, sp, ""); !slices.Equal(got, []string{"task-0/state"}) {
			t.Fatalf("view lists %q", got)
		}
		st, err := sp.Stat(ctx, "task-0/state")
		if err != nil || st.Name != "task-0/state" || st.Size != 5 {
			t.Fatalf("view Stat = %+v, %v", st, err)
		}
		for _, name := range []string{"../../../../t2/secret", "/tenants/t2/secret", "..", ""} {
			if _, err := sp.Open(ctx, name); !errors.Is(err, ErrInvalidName) {
				t.Errorf("view Open(%q) = %v, want ErrInvalidName", name, err)
			}
		}
		nested, err := Within(sp, "task-0")
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(t.TempDir(), "state")
		if err := nested.GetFile(ctx, "state", dst, info, MutableFile); err != nil {
			t.Fatal(err)
		}
		if err := sp.DeletePrefix(ctx, ""); !errors.Is(err, ErrInvalidName) {
			t.Fatalf("view DeletePrefix(\"\") = %v", err)
		}
		if err := sp.DeletePrefix(ctx, "task-0"); err != nil {
			t.Fatal(err)
		}
		if got := mustList(t, base, ""); !slices.Equal(got, []string{"tenants/t2/secret"}) {
			t.Fatalf("after the view's DeletePrefix, base holds %q", got)
		}
		if _, err := Within(base, "../x"); !errors.Is(err, ErrInvalidName) {
			t.Fatalf("Within(../x) = %v", err)
		}
	})
}

func TestCheckObjectName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"tenants/t1/jobs/j/checkpoints/chk-7/_metadata", true},
		{"shared/op-1/0001-000123.sst", true},
		{"ünïcode/名前", true},
		{"a..b/c.d", true},
		{".hidden", true},
		{"", false},
		{"/a", false},
		{"a/", false},
		{"a//b", false},
		{".", false},
		{"a/.", false},
		{"../a", false},
		{"a/../b", false},
		{`a\b`, false},
		{"a\tb", false},
		{"a\x7fb", false},
		{"\xc3", false},
		{".weir-tmp-1", false},
		{"a/.weir-tmp-x/b", false},
		{strings.Repeat("x", 1024), true},
		{strings.Repeat("x", 1025), false},
	} {
		err := CheckObjectName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("CheckObjectName(%.30q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidName) {
			t.Errorf("CheckObjectName(%.30q) = %v, not ErrInvalidName", tc.name, err)
		}
	}
}

func TestVerifyingReader(t *testing.T) {
	data := []byte("123456789")
	want := ObjectInfo{Size: 9, CRC32C: 0xe3069283, HasCRC32C: true}
	for _, tc := range []struct {
		name    string
		data    string
		corrupt bool
	}{
		{"intact", "123456789", false},
		{"flipped", "123456780", true},
		{"short", "12345678", true},
		{"long", "1234567890", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := VerifyingReader(io.NopCloser(strings.NewReader(tc.data)), "obj", want)
			got, err := io.ReadAll(r)
			if tc.corrupt {
				var ce *CorruptObjectError
				if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
					t.Fatalf("ReadAll = %v, want a CorruptObjectError", err)
				}
				if ce.Where != "obj" || !strings.Contains(err.Error(), "obj") {
					t.Fatalf("error %v does not name the object", err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("ReadAll = %q, %v", got, err)
			}
		})
	}
	rc := io.NopCloser(strings.NewReader("anything"))
	if r := VerifyingReader(rc, "obj", ObjectInfo{Size: 3}); r != rc {
		t.Fatal("VerifyingReader without a checksum wrapped the reader")
	}
}

func TestOpenStorageURI(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"AWS_ACCESS_KEY_ID": "envkey", "AWS_SECRET_ACCESS_KEY": "envsecret"}
	getenv := func(k string) string { return env[k] }
	for _, tc := range []struct {
		uri     string
		opts    StorageOptions
		want    string // String() of the storage
		wantErr string // substring naming what is wrong
	}{
		{uri: "file://" + dir + "/a", want: "file://" + dir + "/a"},
		{uri: "file://localhost" + dir + "/b", want: "file://" + dir + "/b"},
		{uri: dir + "/c", want: "file://" + dir + "/c"},
		{uri: "s3://bucket-1/some/prefix?endpoint=127.0.0.1:9000&secure=false&region=us-east-1", want: "s3://bucket-1/some/prefix"},
		{uri: "s3://bucket-1", want: "s3://bucket-1"},
		{uri: "s3://bucket-1/", want: "s3://bucket-1"},
		{uri: "s3://bucket-1/p?endpoint=minio:9000", opts: StorageOptions{AccessKeyID: "k", SecretAccessKey: "s"}, want: "s3://bucket-1/p"},
		{uri: "", wantErr: "empty"},
		{uri: "file://otherhost/x", wantErr: `host "otherhost"`},
		{uri: "file://", wantErr: "not absolute"},
		{uri: "file:///x?y=1", wantErr: "no query"},
		{uri: "s3:bucket", wantErr: `scheme "s3" needs`},
		{uri: "gs://bucket/x", wantErr: `scheme "gs"`},
		{uri: "s3:///prefix", wantErr: "bucket is empty"},
		{uri: "s3://Bad_Bucket/x", wantErr: `bucket "Bad_Bucket"`},
		{uri: "s3://bucket-1/a/../b", wantErr: "path"},
		{uri: "s3://bucket-1/a//b", wantErr: "path"},
		{uri: "s3://bucket-1/x?endpont=h:1", wantErr: `unknown parameter "endpont"`},
		{uri: "s3://bucket-1/x?secure=maybe", wantErr: `secure "maybe"`},
		{uri: "s3://bucket-1/x?endpoint=http://h:1", wantErr: `endpoint "http://h:1"`},
		{uri: "s3://bucket-1/x?region=a&region=b", wantErr: `"region" is given 2 times`},
		{uri: "s3://key:secret@bucket-1/x", wantErr: "user info"},
		{uri: "s3://bucket-1/x", opts: StorageOptions{Getenv: func(string) string { return "" }}, wantErr: "credentials missing"},
		{uri: "s3://bucket-1/x", opts: StorageOptions{PartSize: 1 << 20}, wantErr: "part size"},
	} {
		t.Run(tc.uri, func(t *testing.T) {
			if tc.opts.Getenv == nil {
				tc.opts.Getenv = getenv
			}
			s, err := OpenStorage(tc.uri, tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("OpenStorage(%q) = %v, want an error containing %q", tc.uri, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("OpenStorage(%q): %v", tc.uri, err)
			}
			if got := fmt.Sprint(s); got != tc.want {
				t.Fatalf("OpenStorage(%q) opened %s, want %s", tc.uri, got, tc.want)
			}
		})
	}
	// Credentials: options win over the environment.
	s, err := OpenStorage("s3://b-1/x?endpoint=h:1", StorageOptions{Getenv: getenv})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s.(*S3Storage).client.GetCreds(); err != nil || v.AccessKeyID != "envkey" || v.SecretAccessKey != "envsecret" {
		t.Fatalf("credentials from the environment: %+v, %v", v, err)
	}
	s, err = OpenStorage("s3://b-1/x?endpoint=h:1", StorageOptions{Getenv: getenv, AccessKeyID: "optkey", SecretAccessKey: "optsecret"})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s.(*S3Storage).client.GetCreds(); err != nil || v.AccessKeyID != "optkey" {
		t.Fatalf("credentials from options: %+v, %v", v, err)
	}
}

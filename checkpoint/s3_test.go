package checkpoint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/weirstream/weir/checkpoint/miniotest"
)

// bitFlipTransport flips a bit in the body of every PUT request with a
// body of more than 50 bytes (object and part uploads, not the small XML
// of multipart initiation or completion).
type bitFlipTransport struct {
	base    http.RoundTripper
	flipped atomic.Int64
}

func (f *bitFlipTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPut && req.Body != nil && req.ContentLength > 50 {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		b[len(b)/2] ^= 0x10
		f.flipped.Add(1)
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.GetBody = nil
	}
	return f.base.RoundTrip(req)
}

// s3TestPartSize is the smallest part S3 allows: it keeps the multipart
// paths cheap to exercise.
const s3TestPartSize = 5 << 20

// s3Harness runs storages on srv, each in a fresh key prefix of the bucket
// (so subtests cannot see each other's objects), or at the bucket root
// for a fresh bucket when atRoot.
func s3Harness(srv *miniotest.Server, n *atomic.Int64, atRoot bool) storageHarness {
	return storageHarness{
		partSize: s3TestPartSize,
		open: func(t *testing.T) Storage {
			cfg := S3Config{
				Endpoint:        srv.Endpoint,
				Bucket:          srv.Bucket,
				AccessKeyID:     srv.AccessKey,
				SecretAccessKey: srv.SecretKey,
				PartSize:        s3TestPartSize,
			}
			if atRoot {
				cfg.Bucket = srv.MakeBucket(t, fmt.Sprintf("root-%d", n.Add(1)))
			} else {
				cfg.Prefix = fmt.Sprintf("test-%d/under", n.Add(1))
			}
			s, err := OpenS3(cfg)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		corrupt: func(t *testing.T, s Storage, name string, data []byte) {
			// Overwrite the object with other bytes behind the storage's
			// back; the test keeps the ObjectInfo of the original.
			s3 := s.(*S3Storage)
			key, err := s3.key(name)
			if err != nil {
				t.Fatal(err)
			}
			_, err = srv.Client.PutObject(testCtx(t), s3.bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
		},
	}
}

func TestS3Conformance(t *testing.T) {
	srv := miniotest.Start(t)
	var n atomic.Int64 // numbers prefixes and buckets: every storage is fresh
	t.Run("prefixed", func(t *testing.T) { runStorageConformance(t, s3Harness(srv, &n, false)) })
	t.Run("bucket-root", func(t *testing.T) { runStorageConformance(t, s3Harness(srv, &n, true)) })
	t.Run("specifics", func(t *testing.T) { testS3Specifics(t, srv, s3Harness(srv, &n, false)) })
}

func testS3Specifics(t *testing.T, srv *miniotest.Server, h storageHarness) {

	t.Run("StatReportsTheServersCRC32C", func(t *testing.T) {
		s := h.open(t)
		ctx := testCtx(t)
		for _, size := range []int64{0, 10, s3TestPartSize, s3TestPartSize + 1, 2*s3TestPartSize + 7} {
			data := bytes.Repeat([]byte{0xa5, 0x17, 0x3c}, int(size/3)+1)[:size]
			for _, put := range []string{"Put", "PutFile"} {
				var info ObjectInfo
				var err error
				if put == "Put" {
					info, err = s.Put(ctx, "obj", bytes.NewReader(data))
				} else {
					src, _ := randomFile(t, t.TempDir(), size, byte(size))
					info, err = s.PutFile(ctx, "obj", src, MutableFile)
					data = nil
				}
				if err != nil {
					t.Fatal(err)
				}
				if data != nil && info.CRC32C != crcOf(data) {
					t.Fatalf("%s of %d bytes: crc %08x, want %08x", put, size, info.CRC32C, crcOf(data))
				}
				st, err := s.Stat(ctx, "obj")
				if err != nil {
					t.Fatal(err)
				}
				// MinIO keeps no checksum for an empty object.
				if (size > 0 && !st.HasCRC32C) || st.CRC32C != info.CRC32C || st.Size != size {
					t.Fatalf("%s of %d bytes: Stat = %+v, want the full-object crc32c %08x", put, size, st, info.CRC32C)
				}
			}
		}
	})

	t.Run("FailedMultipartLeavesNoUpload", func(t *testing.T) {
		s := h.open(t).(*S3Storage)
		ctx := testCtx(t)
		if _, err := s.Put(ctx, "big", newFailingReader(2*s3TestPartSize+1)); !errors.Is(err, errReaderBroke) {
			t.Fatalf("Put = %v", err)
		}
		key, _ := s.key("big")
		for u := range srv.Client.ListIncompleteUploads(ctx, s.bucket, key, true) {
			if u.Err != nil {
				t.Fatal(u.Err)
			}
			t.Fatalf("an aborted Put left the multipart upload %s of %s", u.UploadID, u.Key)
		}
	})

	t.Run("CorruptionInTransitIsRejected", func(t *testing.T) {
		// A transport that flips one bit of every upload body: the
		// server must refuse the bytes (their CRC32C, or the chunk
		// signature, does not match) and no object may appear.
		flip := &bitFlipTransport{base: http.DefaultTransport}
		s, err := OpenS3(S3Config{
			Endpoint: srv.Endpoint, Bucket: srv.Bucket, Prefix: fmt.Sprintf("transit-%d", time.Now().UnixNano()),
			AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey,
			PartSize: s3TestPartSize, Transport: flip,
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx := testCtx(t)
		for _, size := range []int64{100, s3TestPartSize + 100} {
			src, _ := randomFile(t, t.TempDir(), size, 5)
			if _, err := s.PutFile(ctx, "obj", src, MutableFile); err == nil {
				t.Fatalf("PutFile of %d bytes succeeded although the body was damaged on the way", size)
			}
			if _, err := s.Stat(ctx, "obj"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("after a rejected upload, Stat = %v", err)
			}
		}
		if flip.flipped.Load() == 0 {
			t.Fatal("the transport damaged nothing; the test tests nothing")
		}
	})

	t.Run("MissingBucket", func(t *testing.T) {
		s, err := OpenS3(S3Config{Endpoint: srv.Endpoint, Bucket: "no-such-bucket", AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey})
		if err != nil {
			t.Fatal(err)
		}
		ctx := testCtx(t)
		_, err = s.Put(ctx, "x", strings.NewReader("x"))
		if err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `bucket "no-such-bucket" does not exist`) {
			t.Fatalf("Put into a missing bucket = %v", err)
		}
		if _, err := s.List(ctx, ""); err == nil || !strings.Contains(err.Error(), "no-such-bucket") {
			t.Fatalf("List of a missing bucket = %v", err)
		}
	})

	t.Run("WrongCredentials", func(t *testing.T) {
		s, err := OpenS3(S3Config{Endpoint: srv.Endpoint, Bucket: srv.Bucket, AccessKeyID: srv.AccessKey, SecretAccessKey: "wrong-secret"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Stat(testCtx(t), "x"); err == nil || errors.Is(err, ErrNotFound) {
			t.Fatalf("Stat with wrong credentials = %v, want an access error", err)
		}
	})

	t.Run("OpenStorageURI", func(t *testing.T) {
		env := map[string]string{"AWS_ACCESS_KEY_ID": srv.AccessKey, "AWS_SECRET_ACCESS_KEY": srv.SecretKey}
		uri := "s3://" + srv.Bucket + "/via-uri/x?endpoint=" + srv.Endpoint + "&secure=false&region=us-east-1"
		s, err := OpenStorage(uri, StorageOptions{Getenv: func(k string) string { return env[k] }})
		if err != nil {
			t.Fatal(err)
		}
		ctx := testCtx(t)
		mustPut(t, s, "tenants/t/obj", []byte("via uri"))
		got, err := srv.Client.GetObject(ctx, srv.Bucket, "via-uri/x/tenants/t/obj", minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer got.Close()
		b, err := io.ReadAll(got)
		if err != nil || string(b) != "via uri" {
			t.Fatalf("the object is not where the URI says: %q, %v", b, err)
		}
	})

	t.Run("ListSkipsFolderMarkers", func(t *testing.T) {
		s := h.open(t).(*S3Storage)
		ctx := testCtx(t)
		mustPut(t, s, "d/obj", []byte("x"))
		key := s.prefix + "/d/sub/"
		if _, err := srv.Client.PutObject(ctx, s.bucket, key, bytes.NewReader(nil), 0, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		if got := mustList(t, s, "d"); !slices.Equal(got, []string{"d/obj"}) {
			t.Fatalf("List = %q", got)
		}
	})

	t.Run("DeletePrefixManyObjects", func(t *testing.T) {
		// More than one multi-object delete request (1000 keys each).
		s := h.open(t)
		ctx := testCtx(t)
		const objects, writers = 1010, 4
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Go(func() {
				for i := w; i < objects; i += writers {
					if _, err := s.Put(ctx, fmt.Sprintf("many/%04d", i), bytes.NewReader(nil)); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if got := mustList(t, s, "many"); len(got) != objects {
			t.Fatalf("listed %d objects, put %d", len(got), objects)
		}
		mustPut(t, s, "manyx", []byte("stays"))
		if err := s.DeletePrefix(ctx, "many"); err != nil {
			t.Fatal(err)
		}
		if got := mustList(t, s, ""); !slices.Equal(got, []string{"manyx"}) {
			t.Fatalf("after DeletePrefix: %d objects, first %q", len(got), got[:min(3, len(got))])
		}
	})

	t.Run("CancelledContext", func(t *testing.T) {
		s := h.open(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := s.List(ctx, ""); !errors.Is(err, context.Canceled) {
			t.Fatalf("List = %v", err)
		}
		if err := s.DeletePrefix(ctx, "x"); !errors.Is(err, context.Canceled) {
			t.Fatalf("DeletePrefix = %v", err)
		}
	})
}

func BenchmarkS3Storage(b *testing.B) {
	srv := miniotest.Start(b)
	var n atomic.Int64
	benchmarkStorage(b, func(b *testing.B) Storage {
		s, err := OpenS3(S3Config{
			Endpoint:        srv.Endpoint,
			Bucket:          srv.Bucket,
			Prefix:          fmt.Sprintf("bench-%d", n.Add(1)),
			AccessKeyID:     srv.AccessKey,
			SecretAccessKey: srv.SecretKey,
		})
		if err != nil {
			b.Fatal(err)
		}
		return s
	})
}

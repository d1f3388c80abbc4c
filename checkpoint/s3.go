package checkpoint

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// minS3PartSize is S3's smallest multipart part (the last part aside).
const minS3PartSize = 5 << 20

// S3Config configures OpenS3.
type S3Config struct {
	// Endpoint is the server's host[:port] (s3.amazonaws.com for AWS).
	Endpoint string
	// Secure selects HTTPS.
	Secure bool
	// Region is the bucket's region; "" lets the client discover it.
	Region string
	// Bucket must exist.
	Bucket string
	// Prefix is prepended (with a slash) to every object name; "" for
	// none. It must be a valid object name itself.
	Prefix string
	// AccessKeyID, SecretAccessKey and SessionToken are the credentials.
	AccessKeyID, SecretAccessKey, SessionToken string
	// PartSize: see StorageOptions.PartSize.
	PartSize int64
	// Transport carries requests; nil means minio-go's default.
	Transport http.RoundTripper
	// Logger may be nil.
	Logger *slog.Logger
}

// S3Storage keeps objects in an S3 bucket through minio-go. An object is
// the key Prefix/name. S3 makes every PUT and every completed multipart
// upload atomic, which is what makes Put atomic here: a Put that fails
// aborts its multipart upload and leaves no object.
//
// Objects up to PartSize are buffered and sent in one request (one round
// trip, retried by minio-go on transient errors); larger ones stream as
// multipart uploads of PartSize parts, each buffered and so retryable.
// Every request carries a CRC32C of its body that the server checks.
type S3Storage struct {
	client   *minio.Client
	bucket   string
	prefix   string // "" or a clean name without trailing slash
	partSize int64
	log      *slog.Logger
	bufs     sync.Pool // *bytes.Buffer for buffered puts
}

var _ Storage = (*S3Storage)(nil)

// OpenS3 returns an S3 storage. It sends nothing to the server: a wrong
// endpoint, credentials or bucket surface at the first operation.
func OpenS3(cfg S3Config) (*S3Storage, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Endpoint == "" {
		return nil, errors.New("s3 storage: endpoint is empty")
	}
	if strings.Contains(cfg.Endpoint, "/") {
		return nil, fmt.Errorf("s3 storage: endpoint %q must be host[:port], without scheme or path", cfg.Endpoint)
	}
	if err := s3utils.CheckValidBucketNameStrict(cfg.Bucket); err != nil {
		return nil, fmt.Errorf("s3 storage: bucket %q: %w", cfg.Bucket, err)
	}
	prefix, err := cleanPrefix(cfg.Prefix)
	if err != nil {
		return nil, fmt.Errorf("s3 storage: %w", err)
	}
	if cfg.AccessKeyID == "" || cfg.SecretAccessKey == "" {
		return nil, errors.New("s3 storage: credentials missing: set the access key id and secret access key (options or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
	}
	partSize := cfg.PartSize
	if partSize == 0 {
		partSize = DefaultPartSize
	}
	if partSize < minS3PartSize || partSize > 5<<30 {
		return nil, fmt.Errorf("s3 storage: part size %d is outside S3's [5 MiB, 5 GiB]", partSize)
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken),
		Secure:    cfg.Secure,
		Region:    cfg.Region,
		Transport: cfg.Transport,
		// Declares server support for trailing checksums, which also makes
		// minio-go announce the checksum algorithm and full-object mode
		// when it starts a multipart upload; without that announcement the
		// server checks the completed upload against a composite checksum
		// and rejects our full-object one.
		TrailingHeaders: true,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 storage: endpoint %q: %w", cfg.Endpoint, err)
	}
	s := &S3Storage{client: client, bucket: cfg.Bucket, prefix: prefix, partSize: partSize, log: cfg.Logger}
	s.bufs.New = func() any { return new(bytes.Buffer) }
	return s, nil
}

// openS3URI parses s3://bucket/prefix?endpoint=&secure=&region=.
func openS3URI(uri string, u *url.URL, opts StorageOptions) (*S3Storage, error) {
	cfg := S3Config{
		Bucket:    u.Host,
		Prefix:    strings.TrimPrefix(u.Path, "/"),
		Endpoint:  "s3.amazonaws.com",
		Secure:    true,
		PartSize:  opts.PartSize,
		Transport: opts.Transport,
		Logger:    opts.Logger,
	}
	if u.User != nil {
		return nil, fmt.Errorf("checkpoint storage URI %q: user info: credentials do not belong in the URI (use options or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)", uri)
	}
	if u.Fragment != "" {
		return nil, fmt.Errorf("checkpoint storage URI %q: fragment %q is not allowed", uri, u.Fragment)
	}
	if cfg.Bucket == "" {
		return nil, fmt.Errorf("checkpoint storage URI %q: bucket is empty (s3://bucket/prefix)", uri)
	}
	if err := s3utils.CheckValidBucketNameStrict(cfg.Bucket); err != nil {
		return nil, fmt.Errorf("checkpoint storage URI %q: bucket %q: %w", uri, cfg.Bucket, err)
	}
	if cfg.Prefix != "" {
		if _, err := cleanPrefix(cfg.Prefix); err != nil {
			return nil, fmt.Errorf("checkpoint storage URI %q: path: %w", uri, err)
		}
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("checkpoint storage URI %q: query: %w", uri, err)
	}
	for k, vs := range q {
		if len(vs) != 1 {
			return nil, fmt.Errorf("checkpoint storage URI %q: parameter %q is given %d times", uri, k, len(vs))
		}
		v := vs[0]
		switch k {
		case "endpoint":
			if v == "" || strings.Contains(v, "/") {
				return nil, fmt.Errorf("checkpoint storage URI %q: endpoint %q must be host[:port]", uri, v)
			}
			cfg.Endpoint = v
		case "secure":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("checkpoint storage URI %q: secure %q is not a boolean", uri, v)
			}
			cfg.Secure = b
		case "region":
			cfg.Region = v
		default:
			return nil, fmt.Errorf("checkpoint storage URI %q: unknown parameter %q (endpoint, secure, region)", uri, k)
		}
	}
	cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken = opts.AccessKeyID, opts.SecretAccessKey, opts.SessionToken
	if cfg.AccessKeyID == "" {
		cfg.AccessKeyID = opts.Getenv("AWS_ACCESS_KEY_ID")
		cfg.SecretAccessKey = opts.Getenv("AWS_SECRET_ACCESS_KEY")
		cfg.SessionToken = opts.Getenv("AWS_SESSION_TOKEN")
	}
	s, err := OpenS3(cfg)
	if err != nil {
		return nil, fmt.Errorf("checkpoint storage URI %q: %w", uri, err)
	}
	return s, nil
}

// String is the storage's URI (without credentials).
func (s *S3Storage) String() string {
	if s.prefix == "" {
		return "s3://" + s.bucket
	}
	return "s3://" + s.bucket + "/" + s.prefix
}

func (s *S3Storage) where(name string) string { return s.String() + "/" + name }

// key maps a checked name to its S3 key.
func (s *S3Storage) key(name string) (string, error) {
	if err := CheckObjectName(name); err != nil {
		return "", fmt.Errorf("checkpoint storage %s: %w", s, err)
	}
	if s.prefix == "" {
		return name, nil
	}
	return s.prefix + "/" + name, nil
}

// Put implements Storage.
func (s *S3Storage) Put(ctx context.Context, name string, r io.Reader) (ObjectInfo, error) {
	info, err := s.put(ctx, name, r, -1)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("put %s: %w", s.where(name), err)
	}
	return info, nil
}

// PutFile implements Storage; mode does not matter to S3.
func (s *S3Storage) PutFile(ctx context.Context, name, localPath string, _ LocalFile) (ObjectInfo, error) {
	if _, err := s.key(name); err != nil {
		return ObjectInfo{}, err
	}
	f, st, err := openRegular(localPath)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("put %s from %s: %w", s.where(name), localPath, err)
	}
	defer f.Close()
	info, err := s.put(ctx, name, f, st.Size())
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("put %s from %s: %w", s.where(name), localPath, err)
	}
	return info, nil
}

// put uploads r, of size bytes or -1 when unknown. The CRC32C is computed
// by a crcReader in front of everything minio-go reads, in order: minio-go
// reads its input sequentially on these paths because the crcReader hides
// any io.ReaderAt (which would make it read parts in parallel).
func (s *S3Storage) put(ctx context.Context, name string, r io.Reader, size int64) (ObjectInfo, error) {
	key, err := s.key(name)
	if err != nil {
		return ObjectInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return ObjectInfo{}, err
	}
	cr := &crcReader{r: r}
	opts := minio.PutObjectOptions{
		ContentType: "application/octet-stream",
		PartSize:    uint64(s.partSize),
		// Every part and single PUT carries its CRC32C, which the server
		// verifies; the full-object mode makes S3 keep one CRC32C of the
		// whole object (equal to ours), which Stat reports.
		AutoChecksum: minio.ChecksumFullObjectCRC32C,
	}
	var up minio.UploadInfo
	if size >= 0 && size > s.partSize {
		up, err = s.client.PutObject(ctx, s.bucket, key, cr, size, opts)
	} else {
		buf := s.bufs.Get().(*bytes.Buffer)
		defer func() {
			// Keep only part-sized buffers: a pool must not pin an
			// outlier's memory.
			if buf.Cap() <= int(s.partSize)+bytes.MinRead*2 {
				buf.Reset()
				s.bufs.Put(buf)
			}
		}()
		buf.Reset()
		if _, err := buf.ReadFrom(io.LimitReader(cr, s.partSize+1)); err != nil {
			return ObjectInfo{}, err
		}
		if size >= 0 && int64(buf.Len()) != size {
			return ObjectInfo{}, fmt.Errorf("the file changed size while being read (%d bytes, read %d)", size, buf.Len())
		}
		if int64(buf.Len()) <= s.partSize {
			// Whole object in memory: one atomic PUT, retryable because a
			// bytes.Reader can seek. Its CRC32C is known before sending,
			// so the request declares it and the server refuses bytes
			// that do not match what we read: end-to-end integrity.
			opts.AutoChecksum = minio.ChecksumNone
			opts.UserMetadata = map[string]string{
				"x-amz-checksum-crc32c": base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, cr.crc)),
			}
			up, err = s.client.PutObject(ctx, s.bucket, key, bytes.NewReader(buf.Bytes()), int64(buf.Len()), opts)
		} else {
			// Larger than a part: multipart, the buffered head first.
			// minio-go aborts the upload when the reader fails.
			rest := io.MultiReader(bytes.NewReader(buf.Bytes()), cr)
			up, err = s.client.PutObject(ctx, s.bucket, key, rest, -1, opts)
		}
	}
	if err != nil {
		return ObjectInfo{}, s.mapErr(err)
	}
	if size >= 0 && cr.n != size {
		// minio-go checks a short file; a file that grew past its size
		// is only noticed here (the object holds its first size bytes).
		return ObjectInfo{}, fmt.Errorf("the file changed size while being uploaded (%d bytes, read %d)", size, cr.n)
	}
	if up.Size != cr.n {
		return ObjectInfo{}, fmt.Errorf("server stored %d bytes, %d were sent", up.Size, cr.n)
	}
	if crc, ok := parseS3CRC32C(up.ChecksumCRC32C); ok && crc != cr.crc {
		return ObjectInfo{}, fmt.Errorf("server computed crc32c %08x, %08x was sent", crc, cr.crc)
	}
	return ObjectInfo{Name: name, Size: cr.n, CRC32C: cr.crc, HasCRC32C: true, ModTime: up.LastModified}, nil
}

// parseS3CRC32C decodes an S3 full-object CRC32C checksum (base64 of the
// big-endian value). Composite multipart checksums ("...-N") are not the
// object's CRC32C and do not parse.
func parseS3CRC32C(v string) (uint32, bool) {
	if v == "" || strings.Contains(v, "-") {
		return 0, false
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil || len(b) != 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(b), true
}

// Open implements Storage. The GET is sent here, so a missing object is
// reported by Open.
func (s *S3Storage) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	rc, _, err := s.open(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", s.where(name), err)
	}
	return rc, nil
}

func (s *S3Storage) open(ctx context.Context, name string) (io.ReadCloser, minio.ObjectInfo, error) {
	key, err := s.key(name)
	if err != nil {
		return nil, minio.ObjectInfo{}, err
	}
	// Core.GetObject sends the request now and returns the body stream
	// (Client.GetObject defers the request to the first Read).
	rc, info, _, err := minio.Core{Client: s.client}.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, minio.ObjectInfo{}, s.mapErr(err)
	}
	return rc, info, nil
}

// GetFile implements Storage; mode does not matter to S3. The download
// goes to a temporary file next to localPath, renamed when complete and
// verified.
func (s *S3Storage) GetFile(ctx context.Context, name, localPath string, want ObjectInfo, _ LocalFile) (err error) {
	fail := func(err error) error { return fmt.Errorf("get %s to %s: %w", s.where(name), localPath, err) }
	rc, _, err := s.open(ctx, name)
	if err != nil {
		return fail(err)
	}
	defer rc.Close()
	dir := filepath.Dir(localPath)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	f, tmp, err := localCreateTemp(dir)
	if err != nil {
		return fail(err)
	}
	defer func() {
		if err != nil {
			f.Close()
			if rerr := os.Remove(tmp); rerr != nil {
				s.log.Warn("checkpoint storage: cannot remove a temporary file", "path", tmp, "err", rerr)
			}
		}
	}()
	// io.Copy uses f's ReadFrom, which reads through r in 32 KiB steps:
	// the verifying reader sees every byte once.
	r := VerifyingReader(rc, s.where(name), want)
	if _, err := io.Copy(f, r); err != nil {
		return fail(s.mapErr(err))
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, localPath); err != nil {
		return fail(err)
	}
	return nil
}

// Stat implements Storage. It reports the object's CRC32C when the server
// keeps a full-object checksum for it (objects written by this package on
// servers that support it).
func (s *S3Storage) Stat(ctx context.Context, name string) (ObjectInfo, error) {
	key, err := s.key(name)
	if err != nil {
		return ObjectInfo{}, err
	}
	oi, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{Checksum: true})
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("stat %s: %w", s.where(name), s.mapErr(err))
	}
	info := ObjectInfo{Name: name, Size: oi.Size, ModTime: oi.LastModified}
	info.CRC32C, info.HasCRC32C = parseS3CRC32C(oi.ChecksumCRC32C)
	return info, nil
}

// Delete implements Storage.
func (s *S3Storage) Delete(ctx context.Context, name string) error {
	key, err := s.key(name)
	if err != nil {
		return err
	}
	if err := s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil {
		if err := s.mapErr(err); !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("delete %s: %w", s.where(name), err)
		}
	}
	return nil
}

// listKeyPrefix is the key prefix of the objects under a folder prefix.
func (s *S3Storage) listKeyPrefix(prefix string) (string, error) {
	p, err := cleanPrefix(prefix)
	if err != nil {
		return "", err
	}
	switch {
	case s.prefix == "" && p == "":
		return "", nil
	case s.prefix == "":
		return p + "/", nil
	case p == "":
		return s.prefix + "/", nil
	default:
		return s.prefix + "/" + p + "/", nil
	}
}

// List implements Storage. S3 lists keys in byte order, which is name
// order. Keys ending in "/" (folder markers some tools create) are not
// objects and are skipped.
func (s *S3Storage) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	kp, err := s.listKeyPrefix(prefix)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", s, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops minio-go's listing goroutine on an early return
	var out []ObjectInfo
	strip := len(s.prefix)
	if strip > 0 {
		strip++
	}
	for oi := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: kp, Recursive: true}) {
		if oi.Err != nil {
			return nil, fmt.Errorf("list %s: %w", s.where(strings.TrimSuffix(kp[strip:], "/")), s.mapErr(oi.Err))
		}
		if strings.HasSuffix(oi.Key, "/") {
			continue
		}
		out = append(out, ObjectInfo{Name: oi.Key[strip:], Size: oi.Size, ModTime: oi.LastModified})
	}
	// S3 promises byte order; sorting costs little and makes the order a
	// property of this package rather than of the server.
	slices.SortFunc(out, func(a, b ObjectInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// DeletePrefix implements Storage, with multi-object delete requests.
func (s *S3Storage) DeletePrefix(ctx context.Context, prefix string) error {
	p, err := cleanPrefix(prefix)
	if err != nil {
		return fmt.Errorf("delete prefix in %s: %w", s, err)
	}
	if p == "" {
		return fmt.Errorf("delete prefix in %s: the prefix is empty: %w", s, ErrInvalidName)
	}
	kp, err := s.listKeyPrefix(p)
	if err != nil {
		return fmt.Errorf("delete prefix in %s: %w", s, err)
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// A listing error must stop the deletion and be reported; minio-go's
	// RemoveObjects would skip such entries silently, so filter here.
	var listErr error
	objs := make(chan minio.ObjectInfo)
	listed := make(chan struct{})
	go func() {
		defer close(listed)
		defer close(objs)
		for oi := range s.client.ListObjects(lctx, s.bucket, minio.ListObjectsOptions{Prefix: kp, Recursive: true}) {
			if oi.Err != nil {
				listErr = oi.Err
				return
			}
			select {
			case objs <- oi:
			case <-lctx.Done():
				return
			}
		}
	}()
	var firstErr error
	for re := range s.client.RemoveObjects(lctx, s.bucket, objs, minio.RemoveObjectsOptions{}) {
		if re.Err != nil && firstErr == nil {
			if err := s.mapErr(re.Err); !errors.Is(err, ErrNotFound) {
				firstErr = fmt.Errorf("delete prefix %s: object %s: %w", s.where(p), re.ObjectName, err)
			}
		}
	}
	cancel()
	<-listed // listErr is settled
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("delete prefix %s: %w", s.where(p), ctx.Err())
	case firstErr != nil:
		return firstErr
	case listErr != nil:
		return fmt.Errorf("delete prefix %s: %w", s.where(p), s.mapErr(listErr))
	}
	return nil
}

// mapErr turns S3's "no such key" into ErrNotFound and names a missing
// bucket, which is a configuration error, not a missing object.
func (s *S3Storage) mapErr(err error) error {
	resp := minio.ToErrorResponse(err)
	switch resp.Code {
	case "NoSuchKey":
		return fmt.Errorf("%w (%v)", ErrNotFound, err)
	case "NoSuchBucket":
		return fmt.Errorf("bucket %q does not exist on %s: %w", s.bucket, s.client.EndpointURL().Host, err)
	}
	return err
}

// Package miniotest starts a real MinIO server for tests of the S3
// checkpoint storage: the server binary that scripts/minio.sh builds from
// the Go module proxy at a pinned version, run on 127.0.0.1 with a random
// port and a test-owned data folder, killed when the test ends.
//
// It owns finding the binary, starting and stopping the server and making
// buckets. It knows nothing about checkpoints: tests get an endpoint,
// credentials and a bucket. A missing binary fails the test with
// instructions (run scripts/minio.sh) instead of skipping, so S3 coverage
// cannot silently disappear; WEIR_SKIP_S3=1 skips on purpose.
package miniotest

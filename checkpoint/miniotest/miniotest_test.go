package miniotest

import (
	"context"
	"os"
	"regexp"
	"testing"
	"time"
)

// TestVersionMatchesScript keeps the pin here equal to the one
// scripts/minio.sh builds, or the tests would look for a binary the
// script never makes.
func TestVersionMatchesScript(t *testing.T) {
	b, err := os.ReadFile("../../scripts/minio.sh")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^MINIO_VERSION=(\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("scripts/minio.sh has no MINIO_VERSION= line")
	}
	if got := string(m[1]); got != Version {
		t.Fatalf("scripts/minio.sh pins %s, miniotest.Version is %s", got, Version)
	}
}

func TestBinaryPath(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"explicit", map[string]string{EnvBinary: "/opt/minio"}, "/opt/minio"},
		{"tools dir", map[string]string{EnvBinary: "", EnvToolsDir: "/t"}, "/t/minio-" + Version + "/minio"},
		{"xdg", map[string]string{EnvBinary: "", EnvToolsDir: "", "XDG_CACHE_HOME": "/x"}, "/x/weir/bin/minio-" + Version + "/minio"},
		{"home", map[string]string{EnvBinary: "", EnvToolsDir: "", "XDG_CACHE_HOME": "", "HOME": "/h"}, "/h/.cache/weir/bin/minio-" + Version + "/minio"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			got, err := BinaryPath()
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("BinaryPath() = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestStart starts a server and checks it serves the bucket, then that
// stopping it (the cleanup) really stops it.
func TestStart(t *testing.T) {
	var s *Server
	t.Run("server", func(t *testing.T) {
		s = Start(t)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ok, err := s.Client.BucketExists(ctx, s.Bucket)
		if err != nil || !ok {
			t.Fatalf("bucket %s exists = %v, %v", s.Bucket, ok, err)
		}
	})
	if s == nil {
		return // skipped
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.Client.BucketExists(ctx, s.Bucket); err == nil {
		t.Fatalf("server %s still answers after its test ended", s.Endpoint)
	}
}

package miniotest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Version is the pinned MinIO server version (a pseudo version of the
// github.com/minio/minio module: the project tags releases RELEASE.<date>,
// which the module proxy does not serve). scripts/minio.sh pins the same;
// TestVersionMatchesScript keeps them equal.
const Version = "v0.0.0-20260212201848-7aac2a2c5b7c"

// Environment variables the helper reads.
const (
	// EnvBinary overrides where the server binary is.
	EnvBinary = "WEIR_MINIO_BIN"
	// EnvToolsDir overrides the cache folder scripts/minio.sh builds into.
	EnvToolsDir = "WEIR_TOOLS_DIR"
	// EnvSkip set to 1 skips every test that needs the server.
	EnvSkip = "WEIR_SKIP_S3"
)

// Credentials of the servers this package starts.
const (
	AccessKey = "weirtest"
	SecretKey = "weirtest-secret" // MinIO wants at least 8 characters
)

// startTimeout bounds how long a server may take to answer its health
// check; MinIO usually needs 1-3 s here.
const startTimeout = 60 * time.Second

// Server is a running MinIO server owned by one test.
type Server struct {
	// Endpoint is host:port on 127.0.0.1, plain HTTP.
	Endpoint string
	// AccessKey and SecretKey are the root credentials.
	AccessKey, SecretKey string
	// Bucket exists when Start returns.
	Bucket string
	// Client talks to the server with the root credentials.
	Client *minio.Client
}

// BinaryPath returns where the server binary is expected: $WEIR_MINIO_BIN,
// or the path scripts/minio.sh installs to
// (${WEIR_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/weir/bin}/minio-<Version>/minio).
func BinaryPath() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		return p, nil
	}
	dir := os.Getenv(EnvToolsDir)
	if dir == "" {
		cache := os.Getenv("XDG_CACHE_HOME")
		if cache == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", fmt.Errorf("locating the MinIO binary: %w (set %s)", err, EnvBinary)
			}
			cache = filepath.Join(home, ".cache")
		}
		dir = filepath.Join(cache, "weir", "bin")
	}
	return filepath.Join(dir, "minio-"+Version, "minio"), nil
}

// Start starts a server for t, with a fresh data folder, and creates a
// bucket. The server is stopped when t's cleanups run. Without the binary
// it fails t, saying how to build it; with WEIR_SKIP_S3=1 it skips t.
func Start(t testing.TB) *Server {
	t.Helper()
	if os.Getenv(EnvSkip) == "1" {
		t.Skipf("%s=1: skipping the test that needs a MinIO server", EnvSkip)
	}
	bin, err := BinaryPath()
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(bin); err != nil || st.IsDir() {
		t.Fatalf("MinIO server binary not found at %s: run scripts/minio.sh to build it (a few minutes, once), "+
			"or set %s to a minio binary, or set %s=1 to skip S3 tests", bin, EnvBinary, EnvSkip)
	}
	var lastErr error
	// A free port found by binding port 0 can be taken by someone else
	// before MinIO binds it; then MinIO exits and a new port is tried.
	for range 3 {
		s, retry, err := start(t, bin)
		if err == nil {
			s.Bucket = s.MakeBucket(t, "weir-test")
			return s
		}
		lastErr = err
		if !retry {
			break
		}
	}
	t.Fatalf("starting MinIO (%s): %v", bin, lastErr)
	return nil
}

// start makes one attempt. retry says the failure may be a port race.
func start(t testing.TB, bin string) (s *Server, retry bool, err error) {
	root := t.TempDir()
	port, err := freePort()
	if err != nil {
		return nil, false, err
	}
	consolePort, err := freePort()
	if err != nil {
		return nil, false, err
	}
	endpoint := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	log := &syncBuffer{}
	cmd := exec.Command(bin, "server", "--quiet",
		"--address", endpoint,
		"--console-address", net.JoinHostPort("127.0.0.1", strconv.Itoa(consolePort)),
		"--certs-dir", filepath.Join(root, "certs"), // keeps MinIO out of $HOME
		filepath.Join(root, "data"))
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+AccessKey,
		"MINIO_ROOT_PASSWORD="+SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return nil, false, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := sync.OnceFunc(func() {
		// SIGTERM lets MinIO shut down cleanly; a server that does not
		// stop in time is killed.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		timer := time.NewTimer(10 * time.Second)
		defer timer.Stop()
		select {
		case <-exited:
		case <-timer.C:
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	// Registered after t.TempDir, so it runs before the folder's removal.
	t.Cleanup(stop)

	if err := waitReady(endpoint, exited); err != nil {
		stop()
		out := log.String()
		return nil, strings.Contains(out, "address already in use"), fmt.Errorf("%w\nserver output:\n%s", err, tail(out, 4000))
	}
	client, err := minio.New(endpoint, &minio.Options{Creds: credentials.NewStaticV4(AccessKey, SecretKey, "")})
	if err != nil {
		return nil, false, err
	}
	return &Server{Endpoint: endpoint, AccessKey: AccessKey, SecretKey: SecretKey, Client: client}, false, nil
}

// waitReady polls the server's readiness endpoint until it answers 200,
// the process exits, or startTimeout passes.
func waitReady(endpoint string, exited <-chan error) error {
	url := "http://" + endpoint + "/minio/health/ready"
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-exited:
			return fmt.Errorf("server exited before becoming ready: %v", err)
		case <-deadline.C:
			return fmt.Errorf("server not ready at %s after %v", url, startTimeout)
		case <-tick.C:
		}
	}
}

// MakeBucket creates a bucket on the server and returns its name.
func (s *Server) MakeBucket(t testing.TB, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Client.MakeBucket(ctx, name, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("creating bucket %q on MinIO %s: %v", name, s.Endpoint, err)
	}
	return name
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// syncBuffer collects the server's output; the process writes it from
// exec's copying goroutines while the test may read it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

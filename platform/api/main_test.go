package api_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/weirstream/weir/platform"
)

// fx is the fixture of the test binary, set up once by TestMain and
// read-only afterwards: the example modules (building them takes seconds
// and compiling them in the registry more, so they are built and uploaded
// as few times as possible) and one platform with its HTTP server, shared
// by every test that does not need a platform of its own. Tests on the
// shared platform work in tenants of their own, so they cannot see each
// other's resources (which is itself what the isolation tests check).
var fx struct {
	modules map[string][]byte // see builds
	srv     *server
}

// builds are the modules the tests upload: name -> (package, build tags).
var builds = map[string][2]string{
	"counter":         {"./examples/testdata/counter", ""},
	"counter-v2":      {"./examples/testdata/counter", "v2"},
	"counter-mapkind": {"./examples/testdata/counter", "mapkind"},
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "weir-api-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if fx.modules, err = buildModules(filepath.Join(dir, "wasm")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv, err := startServer(context.Background(), platform.Options{
		DataDir: filepath.Join(dir, "data"),
		// Enough for every test's jobs at once: slot exhaustion of the
		// process is not what these tests are about (quotas are).
		Slots: 64,
		// An upgrade counts as started after this long without a failure;
		// the incompatible module fails at restore, well within it.
		UpgradeGrace: 300 * time.Millisecond,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fx.srv = srv
	defer srv.close()
	code := m.Run()
	if testing.Verbose() {
		// Every one of these was checked against the catalogue when answered.
		fmt.Printf("problem types answered on the shared server: %v\n", srv.seen)
	}
	return code
}

// buildModules builds every module of builds for wasip1 into dir.
func buildModules(dir string) (map[string][]byte, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for name, b := range builds {
		file := filepath.Join(dir, name+".wasm")
		cmd := exec.Command("go", "build", "-trimpath", "-buildmode=c-shared", "-tags", b[1], "-o", file, b[0])
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if o, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("building %s (%s, tags %q) for wasip1: %v\n%s", name, b[0], b[1], err, o)
		}
		if out[name], err = os.ReadFile(file); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// repoRoot is the module root: the tests run in platform/api.
func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	root := filepath.Clean(filepath.Join(wd, "..", ".."))
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return "", fmt.Errorf("no go.mod two levels above %s: %w", wd, err)
	}
	return root, nil
}
